"""Servers the library did not start: a PostgreSQL configured as a managed
one would be (a role that may only create databases, scram-sha-256, TLS
with a certificate made for the test), reached by URL.

The server is one of our own fixtures, but the fixtures under test reach it
only through its URL, as any other server: psycopg over TCP and TLS, as a
role that is not a superuser.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import typing
import urllib.parse
import urllib.request

import etcd3gw  # type: ignore[import-untyped]
import fixtures
import pika  # type: ignore[import-untyped]
import psycopg
import pymysql  # type: ignore[import-untyped]
import redis
from kazoo.client import KazooClient  # type: ignore[import-untyped]

from fixtures_daemons import (
    EtcdFixture,
    MisuseError,
    MysqlFixture,
    PortFixture,
    PostgresqlFixture,
    RabbitmqFixture,
    RedisFixture,
    ServerError,
    XvfbFixture,
    ZookeeperFixture,
)
from fixtures_daemons.base import makers
from fixtures_daemons.base.certificates import ServerCertificates, server_certificates
from fixtures_daemons.base.makers import MARK_PREFIX as SERVER_MARK_PREFIX
from fixtures_daemons.daemons.etcd_server import EtcdServerAdmin
from fixtures_daemons.daemons.mysql_server import MysqlServerAdmin
from fixtures_daemons.daemons.postgresql_server import TEMPLATE_MARK, PostgresqlServerAdmin
from fixtures_daemons.daemons.rabbitmq_server import RabbitmqServerAdmin
from fixtures_daemons.daemons.redis_server import RedisServerAdmin
from fixtures_daemons.daemons.zookeeper_server import ZookeeperServerAdmin
from fixtures_daemons.process.users import default_daemon_user, resolve_user
from fixtures_daemons.process.waiting import wait_for
from fixtures_daemons.process.watchdog import Watchdog
from tests import base
from tests.test_cli import CliTestCase

ROLE = "app"
PASSWORD = "p@ss/word:1"  # characters a URL must quote


class ManagedServer(fixtures.Fixture):
    """A PostgreSQL with TLS on, and a role with CREATEDB and nothing else."""

    def _setUp(self) -> None:
        certs = self.useFixture(fixtures.TempDir()).path
        os.chmod(certs, 0o755)
        owner = resolve_user(default_daemon_user()) if os.geteuid() == 0 else None
        self.files = server_certificates().write(certs, owner)
        self.server = self.useFixture(
            PostgresqlFixture(
                mode="spawn",
                export_env=False,
                settings={
                    "ssl": "on",
                    "ssl_cert_file": self.files.cert,
                    "ssl_key_file": self.files.key,
                },
            )
        )
        with self.admin() as conn:
            conn.execute("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'" % (ROLE, PASSWORD))
            conn.execute("CREATE ROLE plain LOGIN PASSWORD 'plain'")
            # A role whose password is stored as md5, asked for it as md5.
            conn.execute("SET password_encryption = 'md5'")
            conn.execute("CREATE ROLE legacy LOGIN CREATEDB PASSWORD 'legacy'")
        hba = os.path.join(self.server.data_dir, "pg_hba.conf")
        with open(hba) as f:
            rules = f.read()
        with open(hba, "w") as f:
            f.write("host all legacy 127.0.0.1/32 md5\n" + rules)
        with self.admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
        # The reload is a signal: the rule is in force once md5 works.
        assert wait_for(self._legacy_logs_in, 30), "the md5 rule was not loaded"

    def _legacy_logs_in(self) -> bool:
        try:
            psycopg.connect(self.url(user="legacy", password="legacy"), connect_timeout=5).close()
        except psycopg.OperationalError:
            return False
        return True

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.server.url, autocommit=True, connect_timeout=10)

    def url(
        self,
        user: str = ROLE,
        password: str = PASSWORD,
        sslmode: str = "verify-full",
        ca: str | None = None,
        port: int | None = None,
    ) -> str:
        query = urllib.parse.urlencode(
            {"sslmode": sslmode, "sslrootcert": ca or self.files.ca_cert}
        )
        return "postgresql://%s:%s@127.0.0.1:%d/postgres?%s" % (
            urllib.parse.quote(user, safe=""),
            urllib.parse.quote(password, safe=""),
            port or self.server.port,
            query,
        )

    def databases(self) -> dict[str, str]:
        """name -> comment of the databases but the three of every server."""
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') "
                "FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')"
            ).fetchall()
        return {row[0]: row[1] for row in rows}


class ServerTestCase(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        for name in list(os.environ):
            if name.startswith("FIXTURES_DAEMONS_POSTGRESQL_"):
                self.useFixture(fixtures.EnvironmentVariable(name))
        self.managed = self.useFixture(ManagedServer())
        # Each test sweeps as a new process would.
        PostgresqlServerAdmin._swept.clear()
        self.addCleanup(PostgresqlServerAdmin._swept.clear)


class TestServer(ServerTestCase):
    def test_a_database_per_fixture_over_tls_as_a_plain_role(self) -> None:
        url = self.managed.url()
        one = PostgresqlFixture(server=url)
        two = PostgresqlFixture(server=url)
        with one, two:
            self.assertTrue(one.attached)
            self.assertNotEqual(one.database, two.database)
            self.assertIn("sslmode=verify-full", one.url)
            self.assertEqual(two.url, os.environ["FIXTURES_DAEMONS_POSTGRESQL_URL"])
            with psycopg.connect(one.url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT current_user, current_database(), ssl FROM pg_stat_ssl "
                    "WHERE pid = pg_backend_pid()"
                ).fetchone()
                self.assertEqual((ROLE, one.database, True), row)
                conn.execute("CREATE TABLE mine (v int)")
            with psycopg.connect(two.url, autocommit=True) as conn:
                tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'mine'")
                self.assertEqual((0,), tables.fetchone())
            made = self.managed.databases()
            self.assertEqual({one.database, two.database}, set(made))
            for comment in made.values():
                self.assertTrue(comment.startswith(SERVER_MARK_PREFIX), comment)
            one.reset()  # its database again, empty
            with psycopg.connect(one.url, autocommit=True) as conn:
                tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'mine'")
                self.assertEqual((0,), tables.fetchone())
        self.assertEqual({}, self.managed.databases())

    def test_an_md5_password(self) -> None:
        url = self.managed.url(user="legacy", password="legacy")
        with PostgresqlFixture(server=url) as fixture, psycopg.connect(fixture.url) as conn:
            self.assertEqual(("legacy",), conn.execute("SELECT current_user").fetchone())
        self.assertEqual({}, self.managed.databases())

    def test_the_variable_and_a_template(self) -> None:
        sql = os.path.join(self.useFixture(fixtures.TempDir()).path, "schema.sql")
        with open(sql, "w") as f:
            f.write("CREATE TABLE items (name text); INSERT INTO items VALUES ('seed');\n")
        variable = "FIXTURES_DAEMONS_POSTGRESQL_SERVER_URL"
        self.useFixture(fixtures.EnvironmentVariable(variable, self.managed.url()))
        with PostgresqlFixture(template=sql) as one:
            self.assertTrue(one.attached)
            with psycopg.connect(one.url, autocommit=True) as conn:
                self.assertEqual([("seed",)], conn.execute("SELECT name FROM items").fetchall())
                conn.execute("DELETE FROM items")
            with PostgresqlFixture(template=sql) as two, psycopg.connect(two.url) as conn:
                self.assertEqual([("seed",)], conn.execute("SELECT name FROM items").fetchall())
        # The template stays for the next runs, marked as one; nothing else.
        left = self.managed.databases()
        self.assertEqual([TEMPLATE_MARK], list(left.values()), left)

    def test_leftovers_of_dead_creators_are_removed(self) -> None:
        url = self.managed.url()
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import os, signal\n"
                "from fixtures_daemons import PostgresqlFixture\n"
                "f = PostgresqlFixture(server=%r)\n"
                "f.setUp()\n"
                "print(f.database, flush=True)\n"
                "os.kill(os.getpid(), signal.SIGKILL)\n" % url,
            ],
            env=base.python_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(-signal.SIGKILL, child.returncode, child.stderr)
        orphan = child.stdout.strip()
        self.assertIn(orphan, self.managed.databases())
        # From other hosts: one old enough to count as left, one recent.
        now = time.time()
        as_role = url.replace("/postgres?", "/postgres?application_name=t&")
        with psycopg.connect(as_role, autocommit=True) as conn:  # the same role
            for name, age in (("old_elsewhere", 3 * 86400), ("recent_elsewhere", 60)):
                conn.execute("CREATE DATABASE %s" % name)
                conn.execute(
                    "COMMENT ON DATABASE %s IS '%sother-host 1_1 at %d'"
                    % (name, SERVER_MARK_PREFIX, now - age)
                )
            conn.execute("CREATE DATABASE not_ours")  # no mark: never touched
        with PostgresqlFixture(server=url) as fixture:
            left = self.managed.databases()
            self.assertNotIn(orphan, left)
            self.assertNotIn("old_elsewhere", left)
            self.assertEqual({fixture.database, "recent_elsewhere", "not_ours"}, set(left))
        self.useFixture(fixtures.EnvironmentVariable(makers.MAX_AGE_ENV, "30"))
        PostgresqlServerAdmin._swept.clear()
        with PostgresqlFixture(server=url):
            pass
        self.assertEqual({"not_ours"}, set(self.managed.databases()))

    def test_bad_servers_are_typed_and_leave_nothing(self) -> None:
        wrong_ca = os.path.join(self.useFixture(fixtures.TempDir()).path, "ca.pem")
        with open(wrong_ca, "wb") as f:
            f.write(ServerCertificates.create().ca_cert)
        cases = [
            (self.managed.url(password="wrong"), "refuses the credentials"),
            (self.managed.url(user="plain", password="plain"), "ALTER ROLE"),
            (self.managed.url(ca=wrong_ca), "TLS failed"),
            (self.managed.url(port=1), "does not answer"),
            ("redis://127.0.0.1:6379/0", "not a postgresql URL"),
            ("postgresql://[::1", "not a URL"),
        ]
        for url, expected in cases:
            started = time.monotonic()
            error = self.assertRaises(ServerError, PostgresqlFixture(server=url, timeout=5).setUp)
            self.assertLess(time.monotonic() - started, 30)
            self.assertIn(expected, str(error))
            self.assertNotIn(":wrong@", str(error))  # the password is not shown
        self.assertEqual({}, self.managed.databases())

    def test_a_daemon_without_a_server_admin_refuses(self) -> None:
        error = self.assertRaises(MisuseError, XvfbFixture(server="x11://127.0.0.1:1").setUp)
        self.assertIn("cannot use a server it did not start", str(error))


class ServerCliTestCase(CliTestCase):
    def setUp(self) -> None:
        # The managed server is this process's fixture: its watchdog starts
        # before the CLI test marks what it starts.
        Watchdog.get()
        super().setUp()


class TestServerCli(ServerCliTestCase):
    def test_run_with_server_starts_nothing_and_workers_attach(self) -> None:
        managed = self.useFixture(ManagedServer())
        PostgresqlServerAdmin._swept.clear()
        path = os.path.join(self.work, "worker.json")
        worker = (
            "import json, sys\n"
            "from fixtures_daemons import PostgresqlFixture\n"
            "with PostgresqlFixture() as f:\n"
            "    json.dump({'attached': f.attached, 'url': f.url, 'db': f.database},"
            " open(sys.argv[1], 'w'))\n"
        )
        result = self.cli("run", "postgresql", "--server", managed.url(), "--", sys.executable,
                          "-c", worker, path)  # fmt: skip
        self.assertStatus(0, result)
        with open(path) as f:
            seen = json.load(f)
        self.assertTrue(seen["attached"])
        self.assertIn("@127.0.0.1:%d/%s" % (managed.server.port, seen["db"]), seen["url"])
        self.assertEqual({}, managed.databases())
        env = self.runDump("run", "postgresql", "--server", managed.url())
        self.assertEqual(ROLE, env["FIXTURES_DAEMONS_POSTGRESQL_USER"])
        self.assertIn("FIXTURES_DAEMONS_POSTGRESQL_STATE", env)
        self.assertEqual({}, managed.databases())

    def test_leftovers_lists_and_removes(self) -> None:
        managed = self.useFixture(ManagedServer())
        url = managed.url()
        with psycopg.connect(url, autocommit=True) as conn:  # as the role
            conn.execute("CREATE DATABASE dead_ones")
            conn.execute(
                "COMMENT ON DATABASE dead_ones IS '%s%s 1_1 at %d'"
                % (SERVER_MARK_PREFIX, socket.gethostname(), time.time())
            )
            conn.execute("CREATE DATABASE kept_template")
            conn.execute("COMMENT ON DATABASE kept_template IS '%s'" % TEMPLATE_MARK)
            conn.execute("CREATE DATABASE not_ours")
        listed = self.cli("leftovers", "postgresql", url)
        self.assertStatus(0, listed)
        self.assertEqual(["dead_ones"], listed.stdout.split())
        both = self.cli("leftovers", "postgresql", url, "--templates")
        self.assertEqual(["dead_ones", "kept_template"], sorted(both.stdout.split()))
        removed = self.cli("leftovers", "postgresql", url, "--remove", "--templates")
        self.assertStatus(0, removed)
        self.assertEqual({"not_ours"}, set(managed.databases()))
        bad = self.cli("leftovers", "postgresql", managed.url(password="nope"))
        self.assertNotEqual(0, bad.returncode)
        self.assertIn("refuses the credentials", bad.stderr)
        self.assertNotIn(":nope@", bad.stderr)


class ManagedRedis(fixtures.Fixture):
    """A Redis with TLS on its own port, a password, and an ACL user that
    may touch only the keys fixtures use."""

    def _setUp(self) -> None:
        certs = self.useFixture(fixtures.TempDir()).path
        os.chmod(certs, 0o755)
        owner = resolve_user(default_daemon_user()) if os.geteuid() == 0 else None
        self.files = server_certificates().write(certs, owner)
        self.tls_port = self.useFixture(PortFixture()).port
        self.server = self.useFixture(
            RedisFixture(
                mode="spawn",
                export_env=False,
                settings={
                    "tls-port": str(self.tls_port),
                    "tls-cert-file": self.files.cert,
                    "tls-key-file": self.files.key,
                    "tls-ca-cert-file": self.files.ca_cert,
                    "tls-auth-clients": "no",
                },
            )
        )
        self.admin = redis.Redis.from_url(self.server.url)
        self.addCleanup(self.admin.close)
        self.admin.execute_command(
            "ACL", "SETUSER", ROLE, "on", ">" + PASSWORD, "~fxd-*", "~fixtures-daemons:*",
            "+@read", "+@write", "+@keyspace", "+@connection",
        )  # fmt: skip
        self.admin.execute_command("ACL", "SETUSER", "reader", "on", ">r", "~*", "+@read", "+ping")
        self.admin.set("someone-elses", "keep")

    def url(self, user: str = ROLE, password: str = PASSWORD, ca: str | None = "") -> str:
        query = "" if ca is None else "?ssl_ca_certs=" + (ca or self.files.ca_cert)
        return "rediss://%s:%s@127.0.0.1:%d/0%s" % (
            urllib.parse.quote(user, safe=""),
            urllib.parse.quote(password, safe=""),
            self.tls_port,
            query,
        )

    def keys(self) -> set[str]:
        return {key.decode() for key in self.admin.keys("*")}


class TestRedisServer(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        for name in list(os.environ):
            if name.startswith("FIXTURES_DAEMONS_REDIS_"):
                self.useFixture(fixtures.EnvironmentVariable(name))
        self.managed = self.useFixture(ManagedRedis())
        RedisServerAdmin._swept.clear()
        self.addCleanup(RedisServerAdmin._swept.clear)

    def test_a_key_prefix_per_fixture_over_tls_as_an_acl_user(self) -> None:
        url = self.managed.url()
        with RedisFixture(server=url) as one, RedisFixture(server=url) as two:
            self.assertTrue(one.attached)
            self.assertTrue(one.url.startswith("rediss://"))
            prefixes = [one.endpoint.key_prefix, two.endpoint.key_prefix]
            self.assertNotEqual(prefixes[0], prefixes[1])
            for fixture in (one, two):
                client = redis.Redis.from_url(fixture.url)
                client.set(fixture.endpoint.key_prefix + "k", fixture.endpoint.key_prefix)
                client.close()
            one.reset()
            self.assertNotIn(prefixes[0] + "k", self.managed.keys())
            self.assertIn(prefixes[1] + "k", self.managed.keys())
        self.assertEqual({"someone-elses"}, self.managed.keys())

    def test_leftovers_of_a_killed_runner_are_removed(self) -> None:
        url = self.managed.url()
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import os, signal, redis\n"
                "from fixtures_daemons import RedisFixture\n"
                "f = RedisFixture(server=%r)\n"
                "f.setUp()\n"
                "redis.Redis.from_url(f.url).set(f.endpoint.key_prefix + 'k', 'v')\n"
                "print(f.endpoint.key_prefix, flush=True)\n"
                "os.kill(os.getpid(), signal.SIGKILL)\n" % url,
            ],
            env=base.python_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(-signal.SIGKILL, child.returncode, child.stderr)
        prefix = child.stdout.strip()
        self.assertIn(prefix + "k", self.managed.keys())
        with RedisFixture(server=url) as fixture:
            keys = self.managed.keys()
            self.assertNotIn(prefix + "k", keys)
            self.assertEqual(
                {"someone-elses", "fixtures-daemons:prefix:" + fixture.endpoint.key_prefix}, keys
            )
        self.assertEqual({"someone-elses"}, self.managed.keys())

    def test_bad_servers_are_typed(self) -> None:
        cases = [
            (self.managed.url(password="nope"), "refuses the credentials"),
            (self.managed.url(ca=None), "TLS failed"),
            (self.managed.url(user="reader", password="r"), "lacks a right"),
            ("redis://127.0.0.1:1/0", "does not answer"),
            ("http://127.0.0.1/", "not a redis URL"),
        ]
        for url, expected in cases:
            error = self.assertRaises(ServerError, RedisFixture(server=url, timeout=5).setUp)
            self.assertIn(expected, str(error))
            self.assertNotIn(":nope@", str(error))
        self.assertEqual({"someone-elses"}, self.managed.keys())


class TestRedisServerCli(ServerCliTestCase):
    def test_run_with_server_and_leftovers(self) -> None:
        managed = self.useFixture(ManagedRedis())
        RedisServerAdmin._swept.clear()
        url = managed.url()
        path = os.path.join(self.work, "worker.json")
        worker = (
            "import json, sys\n"
            "from fixtures_daemons import RedisFixture\n"
            "with RedisFixture() as f:\n"
            "    json.dump({'attached': f.attached, 'prefix': f.endpoint.key_prefix},"
            " open(sys.argv[1], 'w'))\n"
        )
        result = self.cli("run", "redis", "--server", url, "--", sys.executable, "-c", worker, path)
        self.assertStatus(0, result)
        with open(path) as f:
            seen = json.load(f)
        self.assertTrue(seen["attached"])
        self.assertTrue(seen["prefix"].startswith("fxd-"))
        self.assertEqual({"someone-elses"}, managed.keys())
        # A prefix whose maker is dead (pid 1 never has start time "1").
        managed.admin.set("fixtures-daemons:prefix:fxd-dead:", "%s%s 1_1 at %d" % (
            SERVER_MARK_PREFIX, socket.gethostname(), time.time()))  # fmt: skip
        managed.admin.set("fxd-dead:k", "v")
        listed = self.cli("leftovers", "redis", url)
        self.assertStatus(0, listed)
        self.assertEqual(["fxd-dead:"], listed.stdout.split())
        self.assertStatus(0, self.cli("leftovers", "redis", url, "--remove"))
        self.assertEqual({"someone-elses"}, managed.keys())


class ManagedMysql(fixtures.Fixture):
    """A MariaDB/MySQL with TLS, and a user that must use it and may touch
    only the databases fixtures make."""

    def _setUp(self) -> None:
        certs = self.useFixture(fixtures.TempDir()).path
        os.chmod(certs, 0o755)
        owner = resolve_user(default_daemon_user()) if os.geteuid() == 0 else None
        self.files = server_certificates().write(certs, owner)
        self.server = self.useFixture(
            MysqlFixture(
                mode="spawn",
                export_env=False,
                settings={
                    "ssl-ca": self.files.ca_cert,
                    "ssl-cert": self.files.cert,
                    "ssl-key": self.files.key,
                },
            )
        )
        for sql in (
            "CREATE USER '%s'@'%%' IDENTIFIED BY '%s' REQUIRE SSL" % (ROLE, PASSWORD),
            "GRANT ALL PRIVILEGES ON `test\\_%%`.* TO '%s'@'%%'" % ROLE,
            "GRANT ALL PRIVILEGES ON `fxd\\_template\\_%%`.* TO '%s'@'%%'" % ROLE,
            "CREATE USER 'plain'@'%' IDENTIFIED BY 'plain'",
            "CREATE DATABASE not_ours",
        ):
            self.run(sql)

    def run(self, sql: str) -> list[tuple[typing.Any, ...]]:
        parts = urllib.parse.urlsplit(self.server.url)
        conn = pymysql.connect(
            host="127.0.0.1",
            port=self.server.port,
            user=parts.username,
            password=urllib.parse.unquote(parts.password or ""),
            autocommit=True,
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def url(self, user: str = ROLE, password: str = PASSWORD, ca: str | None = "") -> str:
        query = "" if ca is None else "?ssl_verify_cert=true&ssl_ca=" + (ca or self.files.ca_cert)
        return "mysql://%s:%s@127.0.0.1:%d/%s" % (
            urllib.parse.quote(user, safe=""),
            urllib.parse.quote(password, safe=""),
            self.server.port,
            query,
        )

    def databases(self) -> set[str]:
        builtin = {"information_schema", "mysql", "performance_schema", "sys", "test"}
        return {row[0] for row in self.run("SHOW DATABASES")} - builtin


class TestMysqlServer(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        for name in list(os.environ):
            if name.startswith("FIXTURES_DAEMONS_MYSQL_"):
                self.useFixture(fixtures.EnvironmentVariable(name))
        self.managed = self.useFixture(ManagedMysql())
        MysqlServerAdmin._swept.clear()
        self.addCleanup(MysqlServerAdmin._swept.clear)

    def test_a_database_per_fixture_from_a_template_over_tls(self) -> None:
        sql = os.path.join(self.useFixture(fixtures.TempDir()).path, "schema.sql")
        with open(sql, "w") as f:
            f.write("CREATE TABLE items (name text); INSERT INTO items VALUES ('seed');\n")
        url = self.managed.url()
        with MysqlFixture(server=url, template=sql) as one:
            with MysqlFixture(server=url, template=sql) as two:
                self.assertTrue(one.attached)
                self.assertNotEqual(one.database, two.database)
                self.assertTrue(one.database.startswith(makers.NAME_PREFIX), one.database)
                rows = self.managed.run("SELECT name FROM `%s`.items" % one.database)
                self.assertEqual([("seed",)], rows)
                self.managed.run("DELETE FROM `%s`.items" % one.database)
                self.assertEqual(
                    [("seed",)], self.managed.run("SELECT name FROM `%s`.items" % two.database)
                )
        # What stays: the template, for the next runs, and what is not ours.
        left = self.managed.databases()
        self.assertEqual({"not_ours"}, {n for n in left if not n.startswith("fxd_template_")})

    def test_leftovers_of_a_killed_runner_are_removed(self) -> None:
        url = self.managed.url()
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import os, signal\n"
                "from fixtures_daemons import MysqlFixture\n"
                "f = MysqlFixture(server=%r)\n"
                "f.setUp()\n"
                "print(f.database, flush=True)\n"
                "os.kill(os.getpid(), signal.SIGKILL)\n" % url,
            ],
            env=base.python_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(-signal.SIGKILL, child.returncode, child.stderr)
        orphan = child.stdout.strip()
        self.assertIn(orphan, self.managed.databases())
        with MysqlFixture(server=url) as fixture:
            self.assertEqual({fixture.database, "not_ours"}, self.managed.databases())
        self.assertEqual({"not_ours"}, self.managed.databases())

    def test_bad_servers_are_typed(self) -> None:
        wrong_ca = os.path.join(self.useFixture(fixtures.TempDir()).path, "ca.pem")
        with open(wrong_ca, "wb") as f:
            f.write(ServerCertificates.create().ca_cert)
        cases = [
            (self.managed.url(password="nope"), "refuses the credentials"),
            (self.managed.url(ca=wrong_ca), "TLS failed"),
            (self.managed.url(user="plain", password="plain", ca=None), "GRANT ALL"),
            ("mysql://app:x@127.0.0.1:1/", "does not answer"),
        ]
        for url, expected in cases:
            error = self.assertRaises(ServerError, MysqlFixture(server=url, timeout=5).setUp)
            self.assertIn(expected, str(error))
            self.assertNotIn(":nope@", str(error))
        self.assertEqual({"not_ours"}, self.managed.databases())


#: A suite whose every test takes a database and a key prefix on the
#: servers the variables name.
PARALLEL_SUITE = """
import psycopg, redis, testtools
from fixtures_daemons import MysqlFixture, PostgresqlFixture, RedisFixture


class TestParallel(testtools.TestCase):
    def check(self, n):
        pg = self.useFixture(PostgresqlFixture())
        rd = self.useFixture(RedisFixture())
        my = self.useFixture(MysqlFixture())
        my.run_sql("CREATE TABLE mine (n int); INSERT INTO mine VALUES (%%d);" %% n)
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE mine (n int)")
            conn.execute("INSERT INTO mine VALUES (%%s)", (n,))
            self.assertEqual([(n,)], conn.execute("SELECT n FROM mine").fetchall())
        client = redis.Redis.from_url(rd.url)
        client.set(rd.endpoint.key_prefix + "n", n)
        self.assertEqual(1, len(client.keys(rd.endpoint.key_prefix + "*")))
        client.close()

%(tests)s
"""


class TestParallelOnServers(base.TestCase):
    def test_stestr_with_four_workers_leaves_nothing(self) -> None:
        MysqlServerAdmin._swept.clear()
        postgresql = self.useFixture(ManagedServer())
        valkey = self.useFixture(ManagedRedis())
        mariadb = self.useFixture(ManagedMysql())
        work = self.useFixture(fixtures.TempDir()).path
        tests = "\n".join(
            "    def test_%d(self):\n        self.check(%d)\n" % (n, n) for n in range(40)
        )
        os.mkdir(os.path.join(work, "suite"))
        with open(os.path.join(work, "suite", "__init__.py"), "w"):
            pass
        with open(os.path.join(work, "suite", "test_parallel.py"), "w") as f:
            f.write(PARALLEL_SUITE % {"tests": tests})
        with open(os.path.join(work, ".stestr.conf"), "w") as f:
            f.write("[DEFAULT]\ntest_path=./suite\ntop_dir=./\n")
        env = base.python_env(
            FIXTURES_DAEMONS_POSTGRESQL_SERVER_URL=postgresql.url(),
            FIXTURES_DAEMONS_REDIS_SERVER_URL=valkey.url(),
            FIXTURES_DAEMONS_MYSQL_SERVER_URL=mariadb.url(),
        )
        env["PYTHONPATH"] = work + os.pathsep + env["PYTHONPATH"]
        result = subprocess.run(
            [sys.executable, "-m", "stestr", "run", "--concurrency", "4"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.assertEqual(0, result.returncode, result.stdout[-3000:] + result.stderr[-3000:])
        self.assertIn("Passed: 40", result.stdout)
        self.assertEqual({}, postgresql.databases())
        self.assertEqual({"someone-elses"}, valkey.keys())
        self.assertEqual({"not_ours"}, mariadb.databases())


class TestEtcdServer(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        for name in list(os.environ):
            if name.startswith("FIXTURES_DAEMONS_ETCD_"):
                self.useFixture(fixtures.EnvironmentVariable(name))
        self.server = self.useFixture(EtcdFixture(mode="spawn", export_env=False))
        self.client = etcd3gw.client(host="127.0.0.1", port=self.server.port)
        self.client.put("someone-elses", "keep")
        self.url = "etcd://127.0.0.1:%d" % self.server.port
        EtcdServerAdmin._swept.clear()
        self.addCleanup(EtcdServerAdmin._swept.clear)

    def keys(self) -> set[str]:
        return {meta["key"].decode() for _, meta in self.client.get_all()}

    def test_a_key_prefix_per_fixture_and_leftovers(self) -> None:
        # A prefix whose maker is dead (pid 1 never has start time "1").
        self.client.put("fixtures-daemons/prefix/fxd-dead:", "%s%s 1_1 at %d" % (
            SERVER_MARK_PREFIX, socket.gethostname(), time.time()))  # fmt: skip
        self.client.put("fxd-dead:k", "v")
        with EtcdFixture(server=self.url) as one, EtcdFixture(server=self.url) as two:
            self.assertTrue(one.attached)
            self.assertNotEqual(one.endpoint.key_prefix, two.endpoint.key_prefix)
            self.assertNotIn("fxd-dead:k", self.keys())  # swept
            self.client.put(one.endpoint.key_prefix + "k", "1")
            self.client.put(two.endpoint.key_prefix + "k", "2")
            one.reset()
            self.assertNotIn(one.endpoint.key_prefix + "k", self.keys())
            self.assertIn(two.endpoint.key_prefix + "k", self.keys())
        self.assertEqual({"someone-elses"}, self.keys())

    def test_bad_servers_are_typed(self) -> None:
        for url, expected in (
            ("etcd://127.0.0.1:1", "does not answer"),
            ("etcds://127.0.0.1:%d" % self.server.port, "TLS failed"),
            ("redis://127.0.0.1:1", "not an etcd URL"),
        ):
            error = self.assertRaises(ServerError, EtcdFixture(server=url, timeout=5).setUp)
            self.assertIn(expected, str(error))
        self.assertEqual({"someone-elses"}, self.keys())


class TestZookeeperServer(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        for name in list(os.environ):
            if name.startswith("FIXTURES_DAEMONS_ZOOKEEPER_"):
                self.useFixture(fixtures.EnvironmentVariable(name))
        self.server = self.useFixture(ZookeeperFixture(mode="spawn", export_env=False))
        self.zk = KazooClient(hosts="127.0.0.1:%d" % self.server.port)
        self.zk.start(timeout=30)
        self.addCleanup(self.zk.close)
        self.addCleanup(self.zk.stop)
        self.zk.create("/someone-elses", b"keep")
        self.url = "zookeeper://127.0.0.1:%d" % self.server.port
        ZookeeperServerAdmin._swept.clear()
        self.addCleanup(ZookeeperServerAdmin._swept.clear)

    def nodes(self) -> set[str]:
        return set(self.zk.get_children("/")) - {"zookeeper"}

    def test_a_chroot_per_fixture_and_leftovers(self) -> None:
        dead = "%s%s 1_1 at %d" % (SERVER_MARK_PREFIX, socket.gethostname(), time.time())
        self.zk.create("/test_dead/inside", makepath=True)
        self.zk.set("/test_dead", dead.encode())
        with ZookeeperFixture(server=self.url) as one, ZookeeperFixture(server=self.url) as two:
            self.assertTrue(one.attached)
            self.assertNotEqual(one.chroot, two.chroot)
            self.assertNotIn("test_dead", self.nodes())  # swept
            self.zk.create(one.chroot + "/mine", b"1")
            one.reset()
            self.assertIsNone(self.zk.exists(one.chroot + "/mine"))
        self.assertEqual({"someone-elses"}, self.nodes())

    def test_bad_servers_are_typed(self) -> None:
        for url, expected in (
            ("zookeeper://127.0.0.1:1", "does not answer"),
            ("redis://127.0.0.1:1", "not a zookeeper URL"),
        ):
            error = self.assertRaises(ServerError, ZookeeperFixture(server=url, timeout=3).setUp)
            self.assertIn(expected, str(error))
        self.assertEqual({"someone-elses"}, self.nodes())


class TestRabbitmqServer(base.TestCase):
    """A broker with the management plugin on a port of its own, and a
    user of its own reached by URL."""

    def setUp(self) -> None:
        super().setUp()
        for name in list(os.environ):
            if name.startswith("FIXTURES_DAEMONS_RABBITMQ_"):
                self.useFixture(fixtures.EnvironmentVariable(name))
        self.api_port = self.useFixture(PortFixture()).port
        self.server = self.useFixture(
            RabbitmqFixture(
                mode="spawn",
                export_env=False,
                plugins=["rabbitmq_management"],
                args=[
                    "-rabbitmq_management",
                    "tcp_config",
                    '[{port,%d},{ip,"127.0.0.1"}]' % self.api_port,
                ],
            )
        )
        self.call("PUT", "users/app", {"password": PASSWORD, "tags": "administrator"})
        self.url = "amqp://app:%s@127.0.0.1:%d/?management=http://127.0.0.1:%d" % (
            urllib.parse.quote(PASSWORD, safe=""),
            self.server.port,
            self.api_port,
        )
        RabbitmqServerAdmin._swept.clear()
        self.addCleanup(RabbitmqServerAdmin._swept.clear)

    def call(self, method: str, path: str, body: object = None) -> typing.Any:
        request = urllib.request.Request(  # noqa: S310 (http, a local test broker)
            "http://127.0.0.1:%d/api/%s" % (self.api_port, path),
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
        )
        request.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")  # guest:guest
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            text = reply.read()
        return json.loads(text) if text.strip() else None

    def vhosts(self) -> set[str]:
        return {vhost["name"] for vhost in self.call("GET", "vhosts")}

    def test_a_vhost_per_fixture_and_leftovers(self) -> None:
        dead = "%s%s 1_1 at %d" % (SERVER_MARK_PREFIX, socket.gethostname(), time.time())
        self.call("PUT", "vhosts/test_dead", {"description": dead})
        with RabbitmqFixture(server=self.url) as one, RabbitmqFixture(server=self.url) as two:
            self.assertTrue(one.attached)
            self.assertNotEqual(one.vhost, two.vhost)
            self.assertNotIn("management", one.url)  # an admin option: clients never see it
            self.assertEqual({"/", one.vhost, two.vhost}, self.vhosts())  # test_dead swept
            connection = pika.BlockingConnection(pika.URLParameters(one.url))
            channel = connection.channel()
            channel.queue_declare("jobs")
            channel.basic_publish("", "jobs", b"resize")
            connection.close()
        self.assertEqual({"/"}, self.vhosts())

    def test_bad_servers_are_typed(self) -> None:
        for url, expected in (
            (self.url.replace(urllib.parse.quote(PASSWORD, safe=""), "nope"), "credentials"),
            ("amqp://app:x@127.0.0.1:%d/" % self.server.port, "management API does not answer"),
        ):
            error = self.assertRaises(ServerError, RabbitmqFixture(server=url, timeout=5).setUp)
            self.assertIn(expected, str(error))
            self.assertNotIn(":nope@", str(error))
        self.assertEqual({"/"}, self.vhosts())
