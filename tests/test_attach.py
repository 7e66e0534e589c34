"""Attach mode, against real daemons.

An outer fixture spawns the daemon (``mode="spawn"``, so that it spawns
even when this suite itself runs under ``fixtures-daemons run``) and
shares it (``share=True``: it exports ``FIXTURES_DAEMONS_<DAEMON>_STATE``);
the fixtures made after it attach to that daemon, each in a namespace of its own (a PostgreSQL or
MySQL database, a Redis database number or key prefix, a memcached key
prefix), removed again on cleanUp. The CLI tests run the real
``python -m fixtures_daemons run`` around a small Python script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
import uuid

import fixtures
import psycopg
import pymysql  # type: ignore[import-untyped]
import redis

from fixtures_daemons import (
    AdminError,
    DaemonError,
    DaemonFixture,
    MemcachedFixture,
    MisuseError,
    MysqlFixture,
    PostgresqlFixture,
    RedisFixture,
)
from fixtures_daemons.base.namespaces import POOL_PREFIX, close_database_pools
from tests import base
from tests.test_memcached import client as memcached_client
from tests.test_mysql import NO_SUCH_TABLE, UNKNOWN_DATABASE
from tests.test_mysql import connect as mysql_connect
from tests.test_mysql import databases as mysql_databases
from tests.test_mysql import rows as mysql_rows
from tests.test_postgresql import connect as pg_connect
from tests.test_postgresql import databases as pg_databases
from tests.test_redis import no_retry
from tests.test_redis import raw as redis_raw

#: Where the counting template hooks record each build (one line a build).
BUILD_LOG_ENV = "FXD_TEST_TEMPLATE_BUILDS"

CATALOGUE_SQL = """
CREATE TABLE catalogue (name varchar(40) PRIMARY KEY, price integer NOT NULL);
INSERT INTO catalogue VALUES ('apple', 3), ('pear', 4), ('plum', 5);
"""


def _record_build(what: str) -> None:
    path = os.environ.get(BUILD_LOG_ENV)
    if path:
        with open(path, "a") as f:
            f.write("%s %d\n" % (what, os.getpid()))


def pg_catalogue_hook(template: PostgresqlFixture) -> None:
    """A PostgreSQL template hook: the catalogue, built through psycopg."""
    _record_build(template.database)
    with pg_connect(template) as conn:
        conn.execute(CATALOGUE_SQL)


def mysql_catalogue_hook(template: MysqlFixture) -> None:
    """A MySQL template hook: the catalogue, built through PyMySQL."""
    _record_build(template.database)
    conn = mysql_connect(template)
    try:
        with conn.cursor() as cursor:
            for statement in CATALOGUE_SQL.split(";"):
                if statement.strip():
                    cursor.execute(statement)
    finally:
        conn.close()


def pg_rows(daemon: PostgresqlFixture, sql: str) -> list[tuple[typing.Any, ...]]:
    with pg_connect(daemon) as conn:
        return conn.execute(sql).fetchall()


def held(server: PostgresqlFixture) -> set[str]:
    """The server's databases but those its pools hold, unclaimed."""
    return {name for name in pg_databases(server) if not name.startswith(POOL_PREFIX)}


def pg_templates(server: PostgresqlFixture) -> set[str]:
    rows = pg_rows(server, "SELECT datname FROM pg_database WHERE datname LIKE 'fxd_template_%'")
    return {row[0] for row in rows}


def mysql_templates(server: MysqlFixture) -> set[str]:
    return {name for name in mysql_databases(server) if name.startswith("fxd_template_")}


CATALOGUE = [("apple", 3), ("pear", 4), ("plum", 5)]


class AttachTestCase(base.TestCase):
    """Helpers: the outer daemon, attached fixtures, manual cleanUp."""

    def spawnServer(self, cls: type[DaemonFixture], **kwargs: typing.Any) -> typing.Any:
        server = self.useFixture(cls(mode="spawn", share=True, **kwargs))
        self.assertFalse(server.attached)
        self.assertIn(server.state_variable(), os.environ)
        return server

    def attach(self, cls: type[DaemonFixture], **kwargs: typing.Any) -> typing.Any:
        """An attached fixture that the test may clean up itself, midway;
        cleaned up at the end of the test otherwise."""
        fixture = cls(**kwargs)
        fixture.setUp()
        self.assertTrue(fixture.attached)
        self.assertIsNone(fixture.process)
        done: list[bool] = []
        original = fixture.cleanUp

        def clean_up(*args: typing.Any, **kw: typing.Any) -> typing.Any:
            if done:
                return None
            done.append(True)
            return original(*args, **kw)

        fixture.cleanUp = clean_up  # type: ignore[method-assign]
        self.addCleanup(clean_up)
        return fixture

    def sqlFile(self, text: str) -> str:
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, "schema.sql")
        with open(path, "w") as f:
            f.write(text)
        return path

    def buildLog(self) -> str:
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, "builds")
        self.useFixture(fixtures.EnvironmentVariable(BUILD_LOG_ENV, path))
        return path

    def builds(self, path: str) -> list[str]:
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def raceAttach(self, code: str, children: int = 4) -> list[dict[str, typing.Any]]:
        """Start ``children`` Pythons that import everything, say "ready",
        wait for "go" on stdin, then run ``code`` (which prints one "result
        <json>" line); return the results once all have exited with 0."""
        script = "import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n" + code
        procs = [self.spawnPython(script) for _ in range(children)]
        readers = [base.LineReader(proc.stdout) for proc in procs]  # type: ignore[arg-type]
        for reader in readers:
            self.readLine(reader, 60, prefix="ready")
        for proc in procs:  # all are waiting: let them race
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        results = []
        for proc, reader in zip(procs, readers, strict=True):
            line = self.readLine(reader, 120, prefix="result ")
            results.append(json.loads(line[len("result ") :]))
            self.assertEqual(0, proc.wait(60), reader.seen.decode("utf-8", "replace"))
        return results


# -- every daemon --------------------------------------------------------------


class TestModes(AttachTestCase):
    """What the contract (tests.daemon_base.AttachContract) does not cover."""

    def test_attach_honours_env_prefix(self) -> None:
        server = self.spawnServer(RedisFixture, env_prefix="FXDTEST")
        self.assertNotIn("FIXTURES_DAEMONS_REDIS_STATE", os.environ)
        attached = self.attach(RedisFixture, mode="attach", env_prefix="FXDTEST")
        self.assertEqual(server.port, attached.port)
        # Another prefix does not see it.
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_REDIS_STATE"))
        self.assertSetUpFails(DaemonError, RedisFixture(mode="attach"))


# -- PostgreSQL ----------------------------------------------------------------


class TestPostgresqlAttach(AttachTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = self.spawnServer(PostgresqlFixture)
        self.before = pg_databases(self.server)

    def assertNoDatabasesLeft(self) -> None:
        # The pools' databases, and those released to the background, are
        # dropped first: then nothing of ours may be left.
        self.assertTrue(close_database_pools(60))
        self.assertEqual(self.before, pg_databases(self.server))

    def test_own_databases_invisible_to_each_other(self) -> None:
        one = self.attach(PostgresqlFixture)
        two = self.attach(PostgresqlFixture, mode="attach")
        self.assertEqual((self.server.port, self.server.port), (one.port, two.port))
        self.assertEqual(3, len({self.server.database, one.database, two.database}))
        with pg_connect(one) as conn:
            conn.execute("CREATE TABLE secret (v text)")
            conn.execute("INSERT INTO secret VALUES ('one')")
        for other in (two, self.server):
            with pg_connect(other) as conn:
                self.assertRaises(
                    psycopg.errors.UndefinedTable, conn.execute, "SELECT * FROM secret"
                )
        self.assertEqual([("one",)], pg_rows(one, "SELECT v FROM secret"))
        self.assertEqual(self.before | {one.database, two.database}, held(self.server))
        one.cleanUp()
        two.cleanUp()
        self.assertNoDatabasesLeft()

    def test_exports_its_own_database(self) -> None:
        one = self.attach(PostgresqlFixture)
        self.assertEqual(one.url, os.environ["FIXTURES_DAEMONS_POSTGRESQL_URL"])
        self.assertEqual(one.database, os.environ["FIXTURES_DAEMONS_POSTGRESQL_DATABASE"])
        # A fixture made now attaches to the same server, not to one's database.
        two = self.attach(PostgresqlFixture)
        self.assertNotEqual(one.database, two.database)
        two.cleanUp()
        one.cleanUp()
        self.assertEqual(self.server.url, os.environ["FIXTURES_DAEMONS_POSTGRESQL_URL"])
        self.assertNoDatabasesLeft()

    def test_named_database(self) -> None:
        name = "named_" + uuid.uuid4().hex[:8]
        one = self.attach(PostgresqlFixture, database=name)
        self.assertEqual(name, one.database)
        self.assertIn(name, pg_databases(self.server))
        one.cleanUp()
        self.assertNoDatabasesLeft()

    def test_a_named_database_taken_by_another_fixture(self) -> None:
        name = "named_" + uuid.uuid4().hex[:8]
        self.attach(PostgresqlFixture, database=name)
        error = self.assertSetUpFails(AdminError, PostgresqlFixture(database=name))
        self.assertIn("already exists", str(error))
        self.assertIn(name, error.request)

    def test_cleanup_drops_database_with_a_connection_open(self) -> None:
        one = self.attach(PostgresqlFixture)
        conn = pg_connect(one)
        self.addCleanup(conn.close)
        conn.execute("CREATE TABLE t (v int)")
        one.cleanUp()
        # Cut off and renamed when cleanUp returns, dropped in the background.
        self.assertNotIn(one.database, pg_databases(self.server))
        self.assertRaises(psycopg.OperationalError, conn.execute, "SELECT 1")
        self.assertNoDatabasesLeft()

    def test_reset_leaves_others_alone(self) -> None:
        one = self.attach(PostgresqlFixture)
        two = self.attach(PostgresqlFixture)
        for fixture in (one, two):
            with pg_connect(fixture) as conn:
                conn.execute("CREATE TABLE t (v text)")
                conn.execute("INSERT INTO t VALUES (%s)", (fixture.database,))
        open_conn = pg_connect(one)  # reset drops it even so
        self.addCleanup(open_conn.close)
        name = one.database
        one.reset()
        self.assertEqual(name, one.database)
        with pg_connect(one) as conn:
            self.assertRaises(psycopg.errors.UndefinedTable, conn.execute, "SELECT * FROM t")
        self.assertEqual([(two.database,)], pg_rows(two, "SELECT v FROM t"))
        one.cleanUp()
        two.cleanUp()
        self.assertNoDatabasesLeft()

    def test_sql_file_template(self) -> None:
        path = self.sqlFile(CATALOGUE_SQL)
        one = self.attach(PostgresqlFixture, template=path)
        two = self.attach(PostgresqlFixture, template=path)
        for fixture in (one, two):
            self.assertEqual(CATALOGUE, pg_rows(fixture, "SELECT * FROM catalogue ORDER BY name"))
        with pg_connect(one) as conn:
            conn.execute("DELETE FROM catalogue")
        self.assertEqual(CATALOGUE, pg_rows(two, "SELECT * FROM catalogue ORDER BY name"))
        self.assertEqual(1, len(pg_templates(self.server)))
        # reset() gives a fresh copy of the template, too.
        one.reset()
        self.assertEqual(CATALOGUE, pg_rows(one, "SELECT * FROM catalogue ORDER BY name"))
        one.cleanUp()
        two.cleanUp()
        self.assertNoDatabasesLeft()

    def test_callable_template(self) -> None:
        log = self.buildLog()
        fixtures_ = [self.attach(PostgresqlFixture, template=pg_catalogue_hook) for _ in range(3)]
        for fixture in fixtures_:
            self.assertEqual(CATALOGUE, pg_rows(fixture, "SELECT * FROM catalogue ORDER BY name"))
        builds = self.builds(log)
        self.assertEqual(1, len(builds), str(builds))
        (template,) = pg_templates(self.server)
        self.assertTrue(builds[0].startswith(template + "_build "), builds)
        for fixture in fixtures_:
            fixture.cleanUp()
        self.assertNoDatabasesLeft()

    def test_changed_sql_file_gives_a_new_template(self) -> None:
        path = self.sqlFile(CATALOGUE_SQL)
        one = self.attach(PostgresqlFixture, template=path)
        with open(path, "a") as f:
            f.write("INSERT INTO catalogue VALUES ('quince', 6);\n")
        two = self.attach(PostgresqlFixture, template=path)
        three = self.attach(PostgresqlFixture, template=path)
        self.assertEqual(CATALOGUE, pg_rows(one, "SELECT * FROM catalogue ORDER BY name"))
        for fixture in (two, three):
            self.assertEqual(
                CATALOGUE + [("quince", 6)],
                pg_rows(fixture, "SELECT * FROM catalogue ORDER BY name"),
            )
        self.assertEqual(2, len(pg_templates(self.server)))
        for fixture in (one, two, three):
            fixture.cleanUp()
        self.assertNoDatabasesLeft()

    def test_template_built_once_by_racing_processes(self) -> None:
        log = self.buildLog()
        results = self.raceAttach(
            "import json, psycopg\n"
            "from fixtures_daemons import PostgresqlFixture\n"
            "from tests.test_attach import pg_catalogue_hook\n"
            "f = PostgresqlFixture(mode='attach', template=pg_catalogue_hook)\n"
            "f.setUp()\n"
            "try:\n"
            "    with psycopg.connect(f.url) as c:\n"
            "        rows = c.execute('SELECT * FROM catalogue ORDER BY name').fetchall()\n"
            "    print('result ' + json.dumps([f.database, rows]), flush=True)\n"
            "finally:\n"
            "    f.cleanUp()\n"
        )
        self.assertEqual(1, len(self.builds(log)), str(self.builds(log)))
        self.assertEqual(4, len({database for database, _ in results}))
        for _, rows in results:
            self.assertEqual([list(row) for row in CATALOGUE], rows)
        self.assertEqual(1, len(pg_templates(self.server)))
        self.assertNoDatabasesLeft()

    def test_a_missing_template_file_fails_before_anything_starts(self) -> None:
        error = self.assertRaises(
            MisuseError, PostgresqlFixture, template="/nonexistent/schema.sql"
        )
        self.assertIn("/nonexistent/schema.sql", error.call)
        self.assertIn("no such file", str(error))

    def test_failing_hook_leaves_no_template(self) -> None:
        path = self.sqlFile("CREATE TABLE fine (a int);\nCREATE TABLE broken (;\n")
        fixture = PostgresqlFixture(template=path)
        error = self.assertSetUpFails(AdminError, fixture)
        # It names the file and the statement.
        self.assertEqual("the template %s" % path, error.request)
        self.assertIn("syntax error", str(error))
        self.assertIn("at line 2: CREATE TABLE broken (;", str(error))
        self.assertEqual(set(), pg_templates(self.server))
        # The next try builds it again, from the fixed file.
        with open(path, "w") as f:
            f.write(CATALOGUE_SQL)
        one = self.attach(PostgresqlFixture, template=path)
        self.assertEqual(CATALOGUE, pg_rows(one, "SELECT * FROM catalogue ORDER BY name"))
        one.cleanUp()
        (template,) = pg_templates(self.server)
        self.assertFalse(template.endswith("_build"), template)
        self.assertNoDatabasesLeft()


# -- MySQL ---------------------------------------------------------------------


class TestMysqlAttach(AttachTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = self.spawnServer(MysqlFixture)
        self.before = mysql_databases(self.server)

    def assertNoDatabasesLeft(self, templates: int = 0) -> None:
        self.assertEqual(templates, len(mysql_templates(self.server)))
        self.assertEqual(self.before, mysql_databases(self.server) - mysql_templates(self.server))

    def test_own_databases_invisible_to_each_other(self) -> None:
        one = self.attach(MysqlFixture)
        two = self.attach(MysqlFixture, mode="attach")
        self.assertEqual(3, len({self.server.database, one.database, two.database}))
        conn = mysql_connect(one)
        try:
            with conn.cursor() as cursor:
                cursor.execute("CREATE TABLE secret (v text)")
                cursor.execute("INSERT INTO secret VALUES ('one')")
        finally:
            conn.close()
        for other in (two, self.server):
            error = self.assertRaises(
                pymysql.err.ProgrammingError, mysql_rows, other, "SELECT * FROM secret"
            )
            self.assertEqual(NO_SUCH_TABLE, error.args[0])
        self.assertEqual([("one",)], mysql_rows(one, "SELECT v FROM secret"))
        one.cleanUp()
        two.cleanUp()
        self.assertNoDatabasesLeft()

    def test_cleanup_drops_database_with_a_connection_open(self) -> None:
        one = self.attach(MysqlFixture)
        conn = mysql_connect(one)
        self.addCleanup(conn.close)
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE t (v int)")
        one.cleanUp()
        self.assertNotIn(one.database, mysql_databases(self.server))
        error = self.assertRaises(
            pymysql.err.OperationalError, mysql_connect, self.server, database=one.database
        )
        self.assertEqual(UNKNOWN_DATABASE, error.args[0])
        self.assertNoDatabasesLeft()

    def test_reset_leaves_others_alone(self) -> None:
        one = self.attach(MysqlFixture)
        two = self.attach(MysqlFixture)
        for fixture in (one, two):
            conn = mysql_connect(fixture)
            try:
                with conn.cursor() as cursor:
                    cursor.execute("CREATE TABLE t (v text)")
                    cursor.execute("INSERT INTO t VALUES (%s)", (fixture.database,))
            finally:
                conn.close()
        one.reset()
        error = self.assertRaises(pymysql.err.ProgrammingError, mysql_rows, one, "SELECT * FROM t")
        self.assertEqual(NO_SUCH_TABLE, error.args[0])
        self.assertEqual([(two.database,)], mysql_rows(two, "SELECT v FROM t"))
        one.cleanUp()
        two.cleanUp()
        self.assertNoDatabasesLeft()

    def test_sql_file_template(self) -> None:
        path = self.sqlFile(CATALOGUE_SQL)
        one = self.attach(MysqlFixture, template=path)
        two = self.attach(MysqlFixture, template=path)
        for fixture in (one, two):
            self.assertEqual(
                CATALOGUE, mysql_rows(fixture, "SELECT * FROM catalogue ORDER BY name")
            )
        conn = mysql_connect(one)
        try:
            with conn.cursor() as cursor:
                cursor.execute("DELETE FROM catalogue")
        finally:
            conn.close()
        self.assertEqual(CATALOGUE, mysql_rows(two, "SELECT * FROM catalogue ORDER BY name"))
        one.reset()
        self.assertEqual(CATALOGUE, mysql_rows(one, "SELECT * FROM catalogue ORDER BY name"))
        one.cleanUp()
        two.cleanUp()
        self.assertNoDatabasesLeft(templates=1)

    def test_callable_template(self) -> None:
        log = self.buildLog()
        fixtures_ = [self.attach(MysqlFixture, template=mysql_catalogue_hook) for _ in range(3)]
        for fixture in fixtures_:
            self.assertEqual(
                CATALOGUE, mysql_rows(fixture, "SELECT * FROM catalogue ORDER BY name")
            )
        self.assertEqual(1, len(self.builds(log)), str(self.builds(log)))
        for fixture in fixtures_:
            fixture.cleanUp()
        self.assertNoDatabasesLeft(templates=1)

    def test_changed_sql_file_gives_a_new_template(self) -> None:
        path = self.sqlFile(CATALOGUE_SQL)
        one = self.attach(MysqlFixture, template=path)
        with open(path, "a") as f:
            f.write("INSERT INTO catalogue VALUES ('quince', 6);\n")
        two = self.attach(MysqlFixture, template=path)
        three = self.attach(MysqlFixture, template=path)
        self.assertEqual(CATALOGUE, mysql_rows(one, "SELECT * FROM catalogue ORDER BY name"))
        for fixture in (two, three):
            self.assertEqual(
                CATALOGUE + [("quince", 6)],
                mysql_rows(fixture, "SELECT * FROM catalogue ORDER BY name"),
            )
        for fixture in (one, two, three):
            fixture.cleanUp()
        self.assertNoDatabasesLeft(templates=2)

    def test_a_syntax_error_in_the_template_names_the_file_and_line(self) -> None:
        path = self.sqlFile("CREATE TABLE fine (a int);\nCREATE TABLE broken (;\n")
        error = self.assertSetUpFails(AdminError, MysqlFixture(template=path))
        self.assertEqual("the template %s" % path, error.request)
        self.assertIn("at line 2", str(error))
        self.assertNoDatabasesLeft()

    def test_template_views_are_not_copied(self) -> None:
        path = self.sqlFile(CATALOGUE_SQL + "CREATE VIEW cheap AS SELECT name FROM catalogue;")
        one = self.attach(MysqlFixture, template=path)
        self.assertEqual([("catalogue", "BASE TABLE")], mysql_rows(one, "SHOW FULL TABLES"))
        self.assertEqual(CATALOGUE, mysql_rows(one, "SELECT * FROM catalogue ORDER BY name"))
        one.cleanUp()
        self.assertNoDatabasesLeft(templates=1)

    def test_failed_copy_leaves_no_database(self) -> None:
        # A generated column cannot be copied with INSERT ... SELECT *.
        path = self.sqlFile(
            "CREATE TABLE g (a int, b int AS (a + 1)); INSERT INTO g (a) VALUES (1);"
        )
        self.assertSetUpFails(AdminError, MysqlFixture(template=path))
        self.assertNoDatabasesLeft(templates=1)

    def test_template_built_once_by_racing_processes(self) -> None:
        log = self.buildLog()
        results = self.raceAttach(
            "import json\n"
            "from fixtures_daemons import MysqlFixture\n"
            "from tests.test_attach import mysql_catalogue_hook\n"
            "from tests.test_mysql import rows\n"
            "f = MysqlFixture(mode='attach', template=mysql_catalogue_hook)\n"
            "f.setUp()\n"
            "try:\n"
            "    found = rows(f, 'SELECT * FROM catalogue ORDER BY name')\n"
            "    print('result ' + json.dumps([f.database, found]), flush=True)\n"
            "finally:\n"
            "    f.cleanUp()\n"
        )
        self.assertEqual(1, len(self.builds(log)), str(self.builds(log)))
        self.assertEqual(4, len({database for database, _ in results}))
        for _, rows in results:
            self.assertEqual([list(row) for row in CATALOGUE], rows)
        self.assertNoDatabasesLeft(templates=1)


# -- Redis ---------------------------------------------------------------------


class TestRedisAttach(AttachTestCase):
    CLAIM = "fixtures-daemons:db:%d"

    def claims(self, server: RedisFixture) -> list[str]:
        with redis_raw(server, decode_responses=True) as r:
            return sorted(r.keys("fixtures-daemons:*"))

    def client(self, fixture: RedisFixture) -> redis.Redis:
        return redis.Redis.from_url(fixture.url, decode_responses=True, **no_retry())

    def test_own_db_numbers(self) -> None:
        server = self.spawnServer(RedisFixture)
        attached = [self.attach(RedisFixture) for _ in range(3)]
        self.assertEqual([1, 2, 3], sorted(fixture.db for fixture in attached))
        self.assertEqual(["", "", ""], [fixture.key_prefix for fixture in attached])
        self.assertEqual([self.CLAIM % n for n in (1, 2, 3)], self.claims(server))
        for fixture in attached:
            with self.client(fixture) as r:
                r.set("key", "db%d" % fixture.db)
        for fixture in attached:
            with self.client(fixture) as r:
                self.assertEqual(["key"], r.keys("*"))
                self.assertEqual("db%d" % fixture.db, r.get("key"))
        with redis_raw(server) as r:
            self.assertIsNone(r.get("key"))
        for fixture in attached:
            fixture.cleanUp()
        self.assertEqual([], self.claims(server))

    def test_cleanup_releases_claim_and_flushes(self) -> None:
        server = self.spawnServer(RedisFixture)
        one = self.attach(RedisFixture)
        number = one.db
        with self.client(one) as r:
            r.set("left", "behind")
        one.cleanUp()
        self.assertEqual([], self.claims(server))
        with redis_raw(server, db=number) as r:
            self.assertEqual(0, r.dbsize())
        # The number is free again.
        two = self.attach(RedisFixture)
        self.assertEqual(number, two.db)

    def test_stale_data_in_a_claimed_db_is_flushed(self) -> None:
        server = self.spawnServer(RedisFixture)
        with redis_raw(server, db=1) as r:
            r.set("stale", "x")
        one = self.attach(RedisFixture)
        self.assertEqual(1, one.db)
        with self.client(one) as r:
            self.assertEqual([], r.keys("*"))

    def test_out_of_db_numbers_falls_back_to_a_key_prefix(self) -> None:
        server = self.spawnServer(RedisFixture, databases=2)
        one = self.attach(RedisFixture)
        two = self.attach(RedisFixture)
        three = self.attach(RedisFixture)
        self.assertEqual((1, ""), (one.db, one.key_prefix))
        self.assertEqual(0, two.db)
        self.assertEqual(0, three.db)
        self.assertTrue(two.key_prefix)
        self.assertTrue(three.key_prefix)
        self.assertNotEqual(two.key_prefix, three.key_prefix)
        self.assertEqual(two.key_prefix, two.env["FIXTURES_DAEMONS_REDIS_KEY_PREFIX"])
        for fixture in (one, two, three):
            with self.client(fixture) as r:
                r.set(fixture.key_prefix + "a", "1")
                r.set(fixture.key_prefix + "b", "2")
        two.reset()
        with self.client(two) as r:
            self.assertEqual([], r.keys(two.key_prefix + "*"))
        with self.client(three) as r:
            self.assertEqual(2, len(r.keys(three.key_prefix + "*")))
        three.cleanUp()
        two.cleanUp()
        with redis_raw(server, decode_responses=True) as r:
            self.assertEqual([self.CLAIM % 1], r.keys("*"))  # only one's claim is left
        with self.client(one) as r:
            self.assertEqual(["a", "b"], sorted(r.keys("*")))
        one.cleanUp()
        with redis_raw(server) as r:
            self.assertEqual(0, r.dbsize())
        with redis_raw(server, db=1) as r:
            self.assertEqual(0, r.dbsize())

    def test_reset_leaves_others_alone(self) -> None:
        server = self.spawnServer(RedisFixture)
        one = self.attach(RedisFixture)
        two = self.attach(RedisFixture)
        for fixture in (one, two):
            with self.client(fixture) as r:
                r.set("key", fixture.db)
        one.reset()
        with self.client(one) as r:
            self.assertEqual([], r.keys("*"))
        with self.client(two) as r:
            self.assertEqual(str(two.db), r.get("key"))
        # and its claim is still held
        self.assertEqual(sorted(self.CLAIM % f.db for f in (one, two)), self.claims(server))


# -- memcached -----------------------------------------------------------------


class TestMemcachedAttach(AttachTestCase):
    def test_key_prefixes(self) -> None:
        server = self.spawnServer(MemcachedFixture)
        self.assertEqual("", server.key_prefix)
        one = self.attach(MemcachedFixture)
        two = self.attach(MemcachedFixture)
        self.assertEqual(server.port, one.port)
        self.assertTrue(one.key_prefix)
        self.assertTrue(two.key_prefix)
        self.assertNotEqual(one.key_prefix, two.key_prefix)
        self.assertEqual(two.key_prefix, os.environ["FIXTURES_DAEMONS_MEMCACHED_KEY_PREFIX"])
        c = memcached_client(server)
        self.addCleanup(c.close)
        c.set(one.key_prefix + "k", "one", noreply=False)
        c.set(two.key_prefix + "k", "two", noreply=False)
        self.assertIsNone(c.get("k"))
        old = one.key_prefix
        one.reset()
        self.assertNotEqual(old, one.key_prefix)
        self.assertNotEqual(two.key_prefix, one.key_prefix)
        self.assertIsNone(c.get(one.key_prefix + "k"))  # fresh for one
        self.assertEqual(b"two", c.get(two.key_prefix + "k"))  # two's untouched
        self.assertEqual(b"one", c.get(old + "k"))  # nothing flushed


# -- the real CLI --------------------------------------------------------------

#: Run by `python -m fixtures_daemons run redis -- python -c ...`: attaches
#: two fixtures, prints what it saw as one JSON line.
REDIS_SCRIPT = """
import json, os, redis
from fixtures_daemons import RedisFixture
prefix = os.environ.get("SCRIPT_PREFIX", "FIXTURES_DAEMONS")
seen = {"variables": sorted(k for k in os.environ if k.endswith("_REDIS_STATE"))}
one = RedisFixture(mode="attach", env_prefix=prefix)
two = RedisFixture(mode="attach", env_prefix=prefix)
one.setUp()
two.setUp()
redis.Redis.from_url(one.url).set("k", "one")
seen["dbs"] = [one.db, two.db]
seen["two_sees"] = redis.Redis.from_url(two.url).get("k")
host, port, password = one.host, one.port, one.password
two.cleanUp()
one.cleanUp()
seen["left"] = [redis.Redis(host, port, db=n, password=password).dbsize() for n in (0, 1, 2)]
print("result " + json.dumps(seen), flush=True)
"""

PG_SCRIPT = """
import json, sys, psycopg
from fixtures_daemons import PostgresqlFixture
from fixtures_daemons.base.namespaces import close_database_pools
one = PostgresqlFixture(mode="attach", template=sys.argv[1])
one.setUp()
with psycopg.connect(one.url, autocommit=True) as c:
    rows = c.execute("SELECT count(*) FROM catalogue").fetchone()[0]
    c.execute("DELETE FROM catalogue")
two = PostgresqlFixture(mode="attach", template=sys.argv[1])
two.setUp()
with psycopg.connect(two.url, autocommit=True) as c:
    rows_two = c.execute("SELECT count(*) FROM catalogue").fetchone()[0]
two.cleanUp()
one.cleanUp()
close_database_pools()
with psycopg.connect(one.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
    left = [r[0] for r in c.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")]
print("result " + json.dumps([one.database, two.database, rows, rows_two, left]), flush=True)
"""


class TestCliAttach(AttachTestCase):
    def runCli(self, *args: str, **env: str) -> str:
        # Whatever this test process has (an outer run) must not leak in.
        environ = {k: v for k, v in base.python_env(**env).items() if not k.endswith("_STATE")}
        result = subprocess.run(
            [sys.executable, "-m", "fixtures_daemons", *args],
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
        output = result.stdout.decode("utf-8", "replace")
        self.assertEqual(0, result.returncode, output)
        return output

    def result(self, output: str) -> typing.Any:
        for line in output.splitlines():
            if line.startswith("result "):
                return json.loads(line[len("result ") :])
        self.fail("no result line in:\n" + output)

    def test_redis_under_the_cli(self) -> None:
        seen = self.result(self.runCli("run", "redis", "--", sys.executable, "-c", REDIS_SCRIPT))
        self.assertEqual(["FIXTURES_DAEMONS_REDIS_STATE"], seen["variables"])
        self.assertEqual([1, 2], sorted(seen["dbs"]))
        self.assertIsNone(seen["two_sees"])
        self.assertEqual([0, 0, 0], seen["left"])

    def test_prefixed_state_variable(self) -> None:
        output = self.runCli(
            "run",
            "-e",
            "FXDCLI",
            "redis",
            "--",
            sys.executable,
            "-c",
            REDIS_SCRIPT,
            SCRIPT_PREFIX="FXDCLI",
        )
        seen = self.result(output)
        self.assertEqual(["FIXTURES_DAEMONS_REDIS_STATE", "FXDCLI_REDIS_STATE"], seen["variables"])
        self.assertEqual([1, 2], sorted(seen["dbs"]))
        self.assertEqual([0, 0, 0], seen["left"])

    def test_postgresql_template_under_the_cli(self) -> None:
        path = self.sqlFile(CATALOGUE_SQL)
        seen = self.result(
            self.runCli("run", "postgresql", "--", sys.executable, "-c", PG_SCRIPT, path)
        )
        one, two, rows, rows_two, left = seen
        self.assertNotEqual(one, two)
        self.assertEqual((3, 3), (rows, rows_two))
        self.assertEqual(["postgres"], left)
