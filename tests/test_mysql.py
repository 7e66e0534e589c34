"""MysqlFixture, with the real mariadbd (or mysqld) and PyMySQL."""

from __future__ import annotations

import os
import shutil
import typing

import fixtures
import pymysql  # type: ignore[import-untyped]

from fixtures_daemons import DaemonFixture, MysqlFixture
from fixtures_daemons.base.templates import CACHE_ENV
from tests import daemon_base

NO_SUCH_TABLE = 1146
UNKNOWN_DATABASE = 1049


def connect(daemon: MysqlFixture, **overrides: typing.Any) -> pymysql.connections.Connection:
    kwargs = dict(daemon.connect_kwargs, autocommit=True, connect_timeout=10)
    kwargs.update(overrides)
    return pymysql.connect(**kwargs)


def rows(daemon: MysqlFixture, sql: str, **overrides: typing.Any) -> list[tuple[typing.Any, ...]]:
    conn = connect(daemon, **overrides)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        conn.close()


def databases(daemon: MysqlFixture) -> set[str]:
    return {row[0] for row in rows(daemon, "SHOW DATABASES")} - {
        "information_schema",
        "mysql",
        "performance_schema",
        "sys",
    }


class TestMysql(daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase):
    daemon_class = MysqlFixture

    def write(self, fixture: MysqlFixture, key: str, value: str) -> None:
        conn = connect(fixture)
        try:
            with conn.cursor() as cursor:
                cursor.execute("CREATE TABLE IF NOT EXISTS kv (k VARCHAR(64) PRIMARY KEY, v TEXT)")
                cursor.execute("REPLACE INTO kv VALUES (%s, %s)", (key, value))
        finally:
            conn.close()

    def read(self, fixture: MysqlFixture, key: str) -> str | None:
        conn = connect(fixture)
        try:
            with conn.cursor() as cursor:
                try:
                    cursor.execute("SELECT v FROM kv WHERE k = %s", (key,))
                except pymysql.err.ProgrammingError as error:
                    if error.args[0] == NO_SUCH_TABLE:
                        return None
                    raise
                row = cursor.fetchone()
        finally:
            conn.close()
        return None if row is None else row[0]

    def assertCannotConnect(self, fixture: MysqlFixture) -> None:
        self.assertRaises(pymysql.err.OperationalError, connect, fixture)

    # -- MySQL specifics -------------------------------------------------------

    def test_url_and_connect_kwargs(self) -> None:
        my = self.useFixture(MysqlFixture())
        password = my.endpoint.password
        self.assertRegex(password, r"^[0-9a-f]{32}$")
        self.assertEqual("mysql+pymysql://root:%s@127.0.0.1:%d/test" % (password, my.port), my.url)
        self.assertEqual(
            {
                "host": "127.0.0.1",
                "port": my.port,
                "user": "root",
                "password": password,
                "database": "test",
            },
            my.connect_kwargs,
        )
        [(user, database)] = rows(my, "SELECT CURRENT_USER(), DATABASE()")
        self.assertEqual(("root", "test"), (user.split("@")[0], database))

    def test_tcp_needs_the_password(self) -> None:
        # Another local user reaches loopback TCP, not the private socket:
        # without this server's password, as root or as anyone, refused.
        my = self.useFixture(MysqlFixture())
        for user, password in (("root", ""), ("root", "wrong"), ("", "")):
            error = self.assertRaises(
                pymysql.err.OperationalError,
                pymysql.connect,
                host=my.host,
                port=my.port,
                user=user,
                password=password,
                connect_timeout=10,
            )
            self.assertEqual(1045, error.args[0], error)  # access denied

    def test_unix_socket(self) -> None:
        my = self.useFixture(MysqlFixture())
        conn = pymysql.connect(unix_socket=my.socket_path, user="root", database=my.database)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
                self.assertEqual((1,), cursor.fetchone())
        finally:
            conn.close()

    def test_flavour(self) -> None:
        my = self.useFixture(MysqlFixture())
        [(version,)] = rows(my, "SELECT VERSION()")
        self.assertEqual("mariadb" if "MariaDB" in version else "mysql", my.flavour)

    def test_other_database_created(self) -> None:
        my = self.useFixture(MysqlFixture(database="other"))
        self.assertTrue(my.url.endswith(":%d/other" % my.port), my.url)
        self.assertEqual([("other",)], rows(my, "SELECT DATABASE()"))
        self.assertEqual("other", my.env["FIXTURES_DAEMONS_MYSQL_DATABASE"])

    def test_create_and_drop_database(self) -> None:
        my = self.useFixture(MysqlFixture())
        name = my.create_database()
        self.assertEqual("mine", my.create_database("mine"))
        self.assertEqual({"test", name, "mine"}, databases(my))
        rows(my, "CREATE TABLE t (x INT)", database="mine")
        my.drop_database("mine")
        my.drop_database("never-existed")  # not an error
        self.assertEqual({"test", name}, databases(my))
        error = self.assertRaises(pymysql.err.OperationalError, connect, my, database="mine")
        self.assertEqual(UNKNOWN_DATABASE, error.args[0])

    def test_drop_database_while_connected(self) -> None:
        my = self.useFixture(MysqlFixture())
        name = my.create_database()
        conn = connect(my, database=name)
        self.addCleanup(conn.close)
        conn.query("CREATE TABLE t (x INT)")
        my.drop_database(name)
        self.assertNotIn(name, databases(my))

    def test_reset_drops_created_databases(self) -> None:
        my = self.useFixture(MysqlFixture())
        extra = my.create_database()
        self.write(my, "key", "value")
        my.reset()
        self.assertEqual({"test"}, databases(my))
        self.assertIsNone(self.read(my, "key"))
        error = self.assertRaises(pymysql.err.OperationalError, connect, my, database=extra)
        self.assertEqual(UNKNOWN_DATABASE, error.args[0])

    def test_fast_settings_by_default(self) -> None:
        my = self.useFixture(MysqlFixture())
        self.assertEqual([(0,)], rows(my, "SELECT @@innodb_flush_log_at_trx_commit"))

    def test_durable(self) -> None:
        my = self.useFixture(MysqlFixture(durable=True))
        self.assertEqual([(1,)], rows(my, "SELECT @@innodb_flush_log_at_trx_commit"))
        self.write(my, "key", "value")
        self.assertEqual("value", self.read(my, "key"))

    def test_user_settings_override(self) -> None:
        my = self.useFixture(MysqlFixture(settings={"max-connections": "17"}))
        self.assertEqual([(17,)], rows(my, "SELECT @@max_connections"))

    def test_query_helper(self) -> None:
        my = self.useFixture(MysqlFixture())
        self.assertEqual([["3"]], my.query("SELECT 1 + 2"))


class TestMysqlAsRoot(daemon_base.DaemonTestCase):
    daemon_class = MysqlFixture

    def test_a_tmpdir_only_root_can_use(self) -> None:
        # As root the server and mariadb-install-db run as nobody: our
        # TMPDIR (root's own, 0700) must not be where they write.
        if os.geteuid() != 0:
            self.skipTest("needs root")
        private = self.useFixture(fixtures.TempDir()).path
        os.chmod(private, 0o700)
        self.useFixture(fixtures.EnvironmentVariable("TMPDIR", private))
        cache = self.useFixture(fixtures.TempDir()).path  # a cold cache: a build
        self.useFixture(fixtures.EnvironmentVariable(CACHE_ENV, cache))
        my = self.useFixture(MysqlFixture(mode="spawn"))
        self.assertEqual([["1"]], my.query("SELECT 1"))


class BrokenMysql(MysqlFixture):
    def prepare(self) -> None:
        super().prepare()
        shutil.rmtree(os.path.join(self.data_dir, "mysql"))


class TestMysqlBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = MysqlFixture
    package = "mariadb-server"
    rejected = {"settings": {"no-such-option": "1"}}
    complaint = "unknown variable 'no-such-option=1'"
    crash_complaint = "privilege tables"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenMysql(**kwargs)
