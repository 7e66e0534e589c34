"""PgbouncerFixture, with the real pgbouncer and PostgreSQL, and psycopg."""

from __future__ import annotations

import os
import subprocess
import sys
import typing

import psycopg
from psycopg import errors as pg_errors

from fixtures_daemons import DaemonFixture, MisuseError, PostgresqlFixture
from fixtures_daemons.daemons.pgbouncer import PgbouncerFixture
from tests import base, daemon_base, test_cli


def connect(url: str, autocommit: bool = True) -> psycopg.Connection[typing.Any]:
    # pgbouncer 1.18 in transaction mode has no prepared statements, which
    # psycopg makes of a query run five times on one connection.
    return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, prepare_threshold=None)


def scalar(url: str, sql: str) -> typing.Any:
    with connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def write(url: str, key: str, value: str) -> None:
    with connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v text)")
        conn.execute(
            "INSERT INTO kv VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            (key, value),
        )


def read(url: str, key: str) -> str | None:
    with connect(url) as conn:
        try:
            row = conn.execute("SELECT v FROM kv WHERE k = %s", (key,)).fetchone()
        except pg_errors.UndefinedTable:
            return None
    return None if row is None else row[0]


class TestPgbouncer(
    daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    daemon_class = PgbouncerFixture

    def write(self, fixture: PgbouncerFixture, key: str, value: str) -> None:
        write(fixture.url, key, value)

    def read(self, fixture: PgbouncerFixture, key: str) -> str | None:
        return read(fixture.url, key)

    def assertCannotConnect(self, fixture: PgbouncerFixture) -> None:
        self.assertRaises(psycopg.OperationalError, connect, fixture.url)

    # -- pgbouncer specifics -----------------------------------------------------

    def test_a_query_through_pgbouncer_lands_in_the_upstream(self) -> None:
        pgb = self.useFixture(PgbouncerFixture())
        pg = pgb.upstream
        self.assertFalse(pg.attached)
        self.assertEqual(
            "postgresql://postgres:%s@127.0.0.1:%d/postgres" % (pgb.upstream.password, pgb.port),
            pgb.url,
        )
        self.assertEqual(pg.url, pgb.upstream_url)
        self.assertNotEqual(pg.port, pgb.port)
        env = pgb.env
        own = "FIXTURES_DAEMONS_PGBOUNCER_"
        self.assertEqual(pgb.url, env[own + "URL"])
        self.assertEqual(pg.url, env[own + "UPSTREAM_URL"])
        self.assertEqual("transaction", env[own + "POOL_MODE"])
        self.assertEqual(pgb.socket_dir, env[own + "SOCKET_DIR"])
        self.assertEqual(pgb.temp_dir, pgb.socket_dir)
        # Written through pgbouncer, read from the upstream directly.
        write(pgb.url, "key", "through pgbouncer")
        self.assertEqual("through pgbouncer", read(pg.url, "key"))
        self.assertEqual(pg.port, scalar(pgb.url, "SELECT inet_server_port()"))
        # pgbouncer itself serves the client: its console lists the pool.
        pools = {row[0]: row for row in pgb.console("SHOW POOLS")}
        self.assertIn("postgres", pools)
        self.assertEqual("transaction", pools["postgres"][-1])
        # psycopg in another process, given nothing but the exported URL.
        script = (
            "import os, psycopg\n"
            "url = os.environ['FIXTURES_DAEMONS_PGBOUNCER_URL']\n"
            "with psycopg.connect(url, autocommit=True) as conn:\n"
            "    print(conn.execute('SELECT v FROM kv').fetchone()[0])\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        self.assertEqual(
            (0, "through pgbouncer\n"), (result.returncode, result.stdout), str(result)
        )
        with psycopg.connect(pgb.dsn, prepare_threshold=None) as conn:
            row = conn.execute("SELECT current_user, current_database()").fetchone()
        self.assertEqual(("postgres", "postgres"), row)

    def test_transaction_pooling_shares_a_server_connection(self) -> None:
        pgb = self.useFixture(PgbouncerFixture(settings={"default_pool_size": "1"}))
        with connect(pgb.url) as one, connect(pgb.url) as two:
            pids = [c.execute("SELECT pg_backend_pid()").fetchone() for c in (one, two, one)]
        self.assertEqual(1, len(set(pids)), str(pids))
        self.assertEqual([("default_pool_size", "1")], _config(pgb, "default_pool_size"))

    def test_session_pooling_keeps_a_server_connection_per_client(self) -> None:
        pgb = self.useFixture(PgbouncerFixture(pool_mode="session"))
        self.assertEqual("session", pgb.env["FIXTURES_DAEMONS_PGBOUNCER_POOL_MODE"])
        self.assertEqual([("pool_mode", "session")], _config(pgb, "pool_mode"))
        with connect(pgb.url) as one, connect(pgb.url) as two:
            one.execute("SET application_name = 'first'")
            pids = [c.execute("SELECT pg_backend_pid()").fetchone() for c in (one, two)]
            self.assertEqual(("first",), one.execute("SHOW application_name").fetchone())
        self.assertEqual(2, len(set(pids)), str(pids))

    def test_statement_pooling_refuses_transactions(self) -> None:
        pgb = self.useFixture(PgbouncerFixture(pool_mode="statement"))
        self.assertEqual(2, scalar(pgb.url, "SELECT 1 + 1"))  # single statements work
        with connect(pgb.url, autocommit=False) as conn:
            error = self.assertRaises(psycopg.Error, conn.execute, "SELECT 1")
        self.assertIn("transaction blocks not allowed", str(error))

    def test_upstream_not_set_up_is_set_up_and_cleaned_up_after_pgbouncer(self) -> None:
        pg = PostgresqlFixture(database="app")
        seen: dict[str, typing.Any] = {}
        original = pg.cleanUp

        def clean_up(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
            # pgbouncer must be gone by the time its upstream is cleaned up.
            seen["pgbouncer gone"] = base.is_gone(seen["pgbouncer"])
            popen = pg.process.process if pg.process is not None else None
            seen["upstream running"] = popen is not None and popen.poll()
            return original(*args, **kwargs)

        pg.cleanUp = clean_up  # type: ignore[method-assign]
        pgb = self.startManually(PgbouncerFixture(upstream=pg))
        self.assertIs(pg, pgb.upstream)
        self.assertFalse(pg.attached)
        self.assertEqual("app", pgb.database)
        self.assertTrue(pgb.url.endswith(":%d/app" % pgb.port), pgb.url)
        write(pgb.url, "key", "value")
        self.assertEqual("value", read(pg.url, "key"))
        pgbouncer = seen["pgbouncer"] = daemon_base.process_tree(daemon_base.pid_of(pgb))[0]
        upstream_tree = daemon_base.process_tree(daemon_base.pid_of(pg))
        temp_dirs = (pgb.temp_dir, pg.temp_dir)
        pgb.cleanUp()
        self.assertEqual(
            {"pgbouncer": pgbouncer, "pgbouncer gone": True, "upstream running": None}, seen
        )
        self.assertGone(*upstream_tree)
        self.assertDirGone(*temp_dirs)
        self.assertIsNone(pg.origin)

    def test_upstream_set_up_already_is_used_and_left_running(self) -> None:
        pg = self.useFixture(PostgresqlFixture())
        write(pg.url, "key", "before")
        pgb = self.startManually(PgbouncerFixture(upstream=pg))
        self.assertIs(pg, pgb.upstream)
        self.assertEqual("before", read(pgb.url, "key"))
        pgb.reset()  # its database is the upstream's: reset is the upstream's
        self.assertIsNone(read(pg.url, "key"))
        pgb.cleanUp()
        assert pg.process is not None and pg.process.process is not None
        self.assertIsNone(pg.process.process.poll())
        self.assertEqual(1, scalar(pg.url, "SELECT 1"))

    def test_attaches_its_upstream_to_an_exported_postgresql(self) -> None:
        pg = self.useFixture(PostgresqlFixture(share=True))
        pgb = self.startManually(PgbouncerFixture())
        self.assertFalse(pgb.attached)  # its pgbouncer is its own ...
        self.assertTrue(pgb.upstream.attached)  # ... its PostgreSQL is shared
        self.assertEqual(pg.port, pgb.upstream.port)
        name = pgb.database
        self.assertTrue(name.startswith("test_"), name)
        self.assertEqual(pgb.upstream.url, pgb.upstream_url)
        write(pgb.url, "key", "mine")
        server_db = pg.url.rsplit("/", 1)[0] + "/" + name
        self.assertEqual("mine", read(server_db, "key"))
        self.assertIsNone(read(pg.url, "key"))
        pgb.reset()
        self.assertIsNone(read(server_db, "key"))
        pgb.cleanUp()
        self.assertFalse(pg.admin.database_exists(name))

    def test_attached_fixture_has_no_upstream_fixture(self) -> None:
        self.useFixture(PgbouncerFixture(share=True))
        attached = self.useFixture(PgbouncerFixture())
        self.assertTrue(attached.attached)
        error = self.assertRaises(MisuseError, lambda: attached.upstream)
        self.assertIn("upstream_url", str(error))
        write(attached.url, "key", "value")
        self.assertEqual("value", read(attached.upstream_url, "key"))


def _config(pgb: PgbouncerFixture, key: str) -> list[tuple[str | None, ...]]:
    return [row[:2] for row in pgb.console("SHOW CONFIG") if row[0] == key]


class BrokenPgbouncer(PgbouncerFixture):
    def prepare(self) -> None:
        super().prepare()
        with open(self.path("pgbouncer.ini"), "a") as f:
            f.write("this is not an ini line\n")


class TestPgbouncerBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = PgbouncerFixture
    package = "pgbouncer"
    rejected = {"settings": {"no_such_setting": "1"}}
    complaint = "unknown parameter: pgbouncer/no_such_setting"
    crash_complaint = "syntax error in configuration"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenPgbouncer(**kwargs)

    def test_bad_arguments(self) -> None:
        error = self.assertRaises(MisuseError, PgbouncerFixture, pool_mode="bogus")
        self.assertIn("session, transaction, statement", str(error))
        error = self.assertRaises(
            MisuseError,
            PgbouncerFixture,
            upstream="postgresql://x@127.0.0.1/db",
        )
        self.assertIn(
            "fixtures-daemons run postgresql -- fixtures-daemons run pgbouncer", str(error)
        )
        error = self.assertRaises(
            MisuseError, PgbouncerFixture, upstream=PostgresqlFixture(), database="app"
        )
        self.assertIn("give it to the PostgresqlFixture", str(error))
        error = self.assertRaises(MisuseError, self.make(settings={"x": "1\n[databases]"}).setUp)
        self.assertIn("one line", str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)


#: Run inside `run postgresql -- run pgbouncer --`: writes through
#: pgbouncer, reads from the upstream directly, dumps what it saw.
NESTED = """
import json, os, sys, psycopg
env = os.environ
with psycopg.connect(env["FIXTURES_DAEMONS_PGBOUNCER_URL"], autocommit=True) as conn:
    conn.execute("CREATE TABLE kv (v text)")
    conn.execute("INSERT INTO kv VALUES ('nested')")
    server_port = conn.execute("SELECT inet_server_port()").fetchone()[0]
with psycopg.connect(env["FIXTURES_DAEMONS_PGBOUNCER_UPSTREAM_URL"]) as conn:
    value = conn.execute("SELECT v FROM kv").fetchone()[0]
json.dump({"env": dict(env), "value": value, "server_port": server_port}, open(sys.argv[1], "w"))
"""


class TestPgbouncerCli(test_cli.CliTestCase):
    def test_nested_under_a_postgresql_run(self) -> None:
        path = os.path.join(self.work, "nested.json")
        result = self.cli(
            *("run", "postgresql", "--"),
            *(*test_cli.CLI, "run", "pgbouncer", "--pool-mode", "session", "--"),
            *(sys.executable, "-c", NESTED, path),
        )
        self.assertStatus(0, result)
        seen = self.readJson(path)
        env = seen["env"]
        self.assertEqual("nested", seen["value"])
        outer_port = int(env["FIXTURES_DAEMONS_POSTGRESQL_PORT"])
        self.assertEqual(outer_port, seen["server_port"])  # the outer run's PostgreSQL
        pgb_port = env["FIXTURES_DAEMONS_PGBOUNCER_PORT"]
        database = env["FIXTURES_DAEMONS_PGBOUNCER_DATABASE"]
        self.assertTrue(database.startswith("test_"), database)  # a database of its own
        password = env["FIXTURES_DAEMONS_POSTGRESQL_URL"].split(":")[2].split("@")[0]
        self.assertEqual(
            "postgresql://postgres:%s@127.0.0.1:%s/%s" % (password, pgb_port, database),
            env["FIXTURES_DAEMONS_PGBOUNCER_URL"],
        )
        self.assertEqual(env["FIXTURES_DAEMONS_PGBOUNCER_URL"], env["FIXTURES_DAEMONS_URL"])
        self.assertEqual(
            "postgresql://postgres:%s@127.0.0.1:%d/%s" % (password, outer_port, database),
            env["FIXTURES_DAEMONS_PGBOUNCER_UPSTREAM_URL"],
        )
        self.assertEqual("session", env["FIXTURES_DAEMONS_PGBOUNCER_POOL_MODE"])
        # libpq's variables name pgbouncer now: psql goes through it.
        self.assertEqual((pgb_port, database), (env["PGPORT"], env["PGDATABASE"]))
        self.assertEqual(env["FIXTURES_DAEMONS_PGBOUNCER_SOCKET_DIR"], env["PGHOST"])

    def test_upstream_is_not_an_option(self) -> None:
        result = self.cli("run", "pgbouncer", "--upstream", "x", "--", "true")
        self.assertStatus(2, result)
        self.assertIn("unrecognized arguments: --upstream", result.stderr)
