"""PostgresqlFixture, with the real postgres and psycopg."""

from __future__ import annotations

import os
import typing

import psycopg
from psycopg import errors as pg_errors

from fixtures_daemons import DaemonExited, DaemonFixture, PostgresqlFixture
from tests import daemon_base


def connect(daemon: PostgresqlFixture, dbname: str | None = None) -> psycopg.Connection[typing.Any]:
    if dbname is None:
        return psycopg.connect(daemon.url, autocommit=True, connect_timeout=10)
    return psycopg.connect(
        host=daemon.host,
        port=daemon.port,
        user=daemon.user,
        password=daemon.password,
        dbname=dbname,
        autocommit=True,
        connect_timeout=10,
    )


def scalar(daemon: PostgresqlFixture, sql: str, dbname: str | None = None) -> typing.Any:
    with connect(daemon, dbname) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def databases(daemon: PostgresqlFixture) -> set[str]:
    with connect(daemon) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
    return {row[0] for row in rows}


class TestPostgresql(
    daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    daemon_class = PostgresqlFixture

    def write(self, fixture: PostgresqlFixture, key: str, value: str) -> None:
        with connect(fixture) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v text)")
            conn.execute(
                "INSERT INTO kv VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (key, value),
            )

    def read(self, fixture: PostgresqlFixture, key: str) -> str | None:
        with connect(fixture) as conn:
            try:
                row = conn.execute("SELECT v FROM kv WHERE k = %s", (key,)).fetchone()
            except pg_errors.UndefinedTable:
                return None
        return None if row is None else row[0]

    def assertCannotConnect(self, fixture: PostgresqlFixture) -> None:
        self.assertRaises(psycopg.OperationalError, connect, fixture)

    # -- PostgreSQL specifics --------------------------------------------------

    def test_url_and_dsn(self) -> None:
        pg = self.useFixture(PostgresqlFixture())
        self.assertEqual(
            "postgresql://postgres:%s@127.0.0.1:%d/postgres" % (pg.password, pg.port), pg.url
        )
        self.assertRegex(pg.password, r"^[0-9a-f]{32}$")
        with psycopg.connect(pg.dsn) as conn:
            row = conn.execute("SELECT current_user, current_database()").fetchone()
        self.assertEqual(("postgres", "postgres"), row)
        self.assertIn("PostgreSQL", pg.version())

    def test_tcp_needs_the_password(self) -> None:
        # Another local user reaches loopback TCP, not the private socket:
        # without the password the server refuses them.
        pg = self.useFixture(PostgresqlFixture())
        for password in ("", "wrong"):
            error = self.assertRaises(
                psycopg.OperationalError,
                psycopg.connect,
                host=pg.host,
                port=pg.port,
                user=pg.user,
                password=password,
                dbname="postgres",
                connect_timeout=10,
            )
            self.assertRegex(str(error), "no password supplied|password authentication failed")

    def test_unix_socket(self) -> None:
        pg = self.useFixture(PostgresqlFixture())
        with psycopg.connect(
            host=pg.socket_dir, port=pg.port, user=pg.user, dbname="postgres"
        ) as c:
            row = c.execute("SELECT inet_server_addr()").fetchone()
        self.assertEqual((None,), row)  # None: not over TCP

    def test_other_database_created(self) -> None:
        pg = self.useFixture(PostgresqlFixture(database="other"))
        self.assertTrue(pg.url.endswith(":%d/other" % pg.port), pg.url)
        self.assertEqual("other", scalar(pg, "SELECT current_database()"))
        self.assertEqual("other", pg.env["FIXTURES_DAEMONS_POSTGRESQL_DATABASE"])

    def test_reset_with_other_database(self) -> None:
        pg = self.useFixture(PostgresqlFixture(database="other"))
        self.write(pg, "key", "value")
        pg.reset()
        self.assertIsNone(self.read(pg, "key"))
        self.assertEqual({"postgres", "other"}, databases(pg))

    def test_create_and_drop_database(self) -> None:
        pg = self.useFixture(PostgresqlFixture())
        name = pg.create_database()
        self.assertIn(name, databases(pg))
        self.assertEqual("mine", pg.create_database("mine"))
        with connect(pg, "mine") as conn:
            conn.execute("CREATE TABLE t (x int)")
        copy = pg.create_database(template="mine")
        self.assertEqual(0, scalar(pg, "SELECT count(*) FROM t", copy))
        pg.drop_database(name)
        pg.drop_database("mine")
        pg.drop_database("never-existed")  # not an error
        self.assertEqual({"postgres", copy}, databases(pg))

    def test_drop_database_while_connected(self) -> None:
        pg = self.useFixture(PostgresqlFixture())
        name = pg.create_database()
        conn = connect(pg, name)
        self.addCleanup(conn.close)
        conn.execute("SELECT 1")
        pg.drop_database(name)
        self.assertNotIn(name, databases(pg))
        self.assertRaises(psycopg.OperationalError, conn.execute, "SELECT 1")
        self.assertRaises(psycopg.OperationalError, connect, pg, name)

    def test_reset_drops_created_databases_and_connections(self) -> None:
        pg = self.useFixture(PostgresqlFixture())
        extra = pg.create_database()
        conn = connect(pg)
        self.addCleanup(conn.close)
        conn.execute("CREATE TABLE t (x int)")
        pg.reset()
        self.assertEqual({"postgres"}, databases(pg))
        self.assertRaises(psycopg.OperationalError, conn.execute, "SELECT 1")
        self.assertRaises(psycopg.OperationalError, connect, pg, extra)

    def test_fast_settings_by_default(self) -> None:
        pg = self.useFixture(PostgresqlFixture())
        self.assertEqual("off", scalar(pg, "SHOW fsync"))
        self.assertEqual("off", scalar(pg, "SHOW synchronous_commit"))

    def test_durable(self) -> None:
        pg = self.useFixture(PostgresqlFixture(durable=True))
        self.assertEqual("on", scalar(pg, "SHOW fsync"))
        self.assertEqual("on", scalar(pg, "SHOW full_page_writes"))
        self.write(pg, "key", "value")
        self.assertEqual("value", self.read(pg, "key"))

    def test_user_settings_override(self) -> None:
        pg = self.useFixture(PostgresqlFixture(settings={"work_mem": "7MB", "fsync": "on"}))
        self.assertEqual("7MB", scalar(pg, "SHOW work_mem"))
        self.assertEqual("on", scalar(pg, "SHOW fsync"))

    def test_query_helper(self) -> None:
        pg = self.useFixture(PostgresqlFixture())
        self.assertEqual([("3",)], pg.query("SELECT 1 + 2"))


class BrokenPostgresql(PostgresqlFixture):
    def prepare(self) -> None:
        super().prepare()
        os.unlink(os.path.join(self.data_dir, "global", "pg_control"))


class TestPostgresqlBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = PostgresqlFixture
    package = "postgresql"
    rejected = {"settings": {"no_such_setting": "1"}}
    complaint = 'unrecognized configuration parameter "no_such_setting"'
    crash_complaint = "pg_control"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenPostgresql(**kwargs)

    def test_rejected_value(self) -> None:
        error = self.assertSetUpRaises(DaemonExited, self.make(settings={"shared_buffers": "x"}))
        self.assertIn("shared_buffers", error.log_tail)
        self.assertNothingLeft(self.temp_root, self.tagged)
