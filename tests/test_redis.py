"""RedisFixture, with the real redis-server and redis-py."""

from __future__ import annotations

import os
import shutil
import typing

import fixtures
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fixtures_daemons import DaemonFixture, ExecutableNotFound, RedisFixture
from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.daemons.redis import SERVERS
from tests import daemon_base


def no_retry() -> dict[str, typing.Any]:
    """redis-py retries a failed connection 3 times, with a backoff: a test
    of a failure must see the first one."""
    return {"socket_timeout": 10, "retry": Retry(NoBackoff(), 0)}


def client(daemon: RedisFixture) -> redis.Redis:
    return redis.Redis.from_url(daemon.url, decode_responses=True, **no_retry())


def raw(daemon: RedisFixture, **kwargs: typing.Any) -> redis.Redis:
    """A client on host and port, without the url's password."""
    return redis.Redis(daemon.host, daemon.port, **kwargs, **no_retry())


class TestRedis(daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase):
    daemon_class = RedisFixture

    def write(self, fixture: RedisFixture, key: str, value: str) -> None:
        with client(fixture) as r:
            r.set(key, value)

    def read(self, fixture: RedisFixture, key: str) -> str | None:
        with client(fixture) as r:
            value: str | None = r.get(key)
        return value

    def assertCannotConnect(self, fixture: RedisFixture) -> None:
        with client(fixture) as r:
            self.assertRaises(redis.exceptions.ConnectionError, r.ping)

    # -- Redis specifics -------------------------------------------------------

    def test_url(self) -> None:
        daemon = self.useFixture(RedisFixture())
        self.assertEqual("redis://127.0.0.1:%d/0" % daemon.port, daemon.url)
        self.assertEqual(daemon.socket_path, daemon.env["FIXTURES_DAEMONS_REDIS_SOCKET"])

    def test_reset_empties_every_database(self) -> None:
        daemon = self.useFixture(RedisFixture())
        with client(daemon) as r0, raw(daemon, db=5) as r5:
            r0.set("a", "1")
            r5.set("b", "2")
            daemon.reset()
            self.assertEqual((0, 0), (r0.dbsize(), r5.dbsize()))

    def test_unix_socket(self) -> None:
        daemon = self.useFixture(RedisFixture())
        with redis.Redis(
            unix_socket_path=daemon.socket_path, decode_responses=True, **no_retry()
        ) as r:
            r.set("key", "value")
        self.assertEqual("value", self.read(daemon, "key"))
        self.assertEqual("PONG", daemon.command("PING"))

    def test_password(self) -> None:
        daemon = self.useFixture(RedisFixture(password="s3cret"))
        self.assertEqual("redis://:s3cret@127.0.0.1:%d/0" % daemon.port, daemon.url)
        with raw(daemon) as anonymous:
            self.assertRaises(redis.exceptions.AuthenticationError, anonymous.set, "k", "v")
        with raw(daemon, password="wrong") as wrong:
            self.assertRaises(redis.exceptions.AuthenticationError, wrong.ping)
        self.write(daemon, "key", "value")  # the url carries the password
        self.assertEqual("value", self.read(daemon, "key"))
        daemon.reset()  # the built-in client authenticates too
        self.assertIsNone(self.read(daemon, "key"))

    def test_password_survives_restart(self) -> None:
        daemon = self.useFixture(RedisFixture(password="s3cret"))
        self.write(daemon, "key", "value")
        with daemon.stopped():
            pass
        self.assertEqual("value", self.read(daemon, "key"))
        with raw(daemon) as anonymous:
            self.assertRaises(redis.exceptions.AuthenticationError, anonymous.get, "key")

    def test_databases(self) -> None:
        daemon = self.useFixture(RedisFixture(databases=2))
        with client(daemon) as r:
            self.assertEqual({"databases": "2"}, r.config_get("databases"))
        with raw(daemon, db=1) as r1:
            r1.set("key", "one")
            self.assertEqual(b"one", r1.get("key"))
        with raw(daemon, db=2) as r2:
            error = self.assertRaises(redis.exceptions.ResponseError, r2.ping)
        self.assertIn("out of range", str(error))
        self.assertIsNone(self.read(daemon, "key"))  # db 0 is another database

    def test_durable(self) -> None:
        daemon = self.useFixture(RedisFixture(durable=True))
        with client(daemon) as r:
            self.assertEqual({"appendonly": "yes"}, r.config_get("appendonly"))
            self.assertEqual({"appendfsync": "always"}, r.config_get("appendfsync"))
        self.write(daemon, "key", "value")
        self.assertEqual("value", self.read(daemon, "key"))

    def test_not_durable_by_default(self) -> None:
        daemon = self.useFixture(RedisFixture())
        with client(daemon) as r:
            self.assertEqual({"appendonly": "no"}, r.config_get("appendonly"))

    def test_unknown_server(self) -> None:
        error = self.assertRaises(ValueError, RedisFixture, server="keydb")
        self.assertIn("keydb", str(error))

    def test_valkey_missing(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(SERVERS["valkey"].env_var))
        try:
            find_executable(SERVERS["valkey"])
        except ExecutableNotFound:
            pass
        else:
            self.skipTest("valkey is installed")
        temp_root = self.ownTempRoot()
        tagged = self.taggedPids()
        error = self.assertSetUpRaises(
            ExecutableNotFound, RedisFixture(server="valkey", temp_root=temp_root)
        )
        self.assertEqual("valkey-server", error.executable)
        self.assertIn("valkey-server", str(error))
        self.assertIn("FIXTURES_DAEMONS_VALKEY_SERVER", str(error))
        self.assertNothingLeft(temp_root, tagged)

    def test_valkey(self) -> None:
        path = shutil.which("valkey-server") or os.environ.get(SERVERS["valkey"].env_var)
        if not path:
            self.skipTest("valkey is not installed")
        daemon = self.useFixture(RedisFixture(server="valkey"))
        self.assertEqual("valkey", daemon.daemon_name)
        self.assertIn("FIXTURES_DAEMONS_VALKEY_URL", daemon.env)
        self.write(daemon, "key", "value")
        self.assertEqual("value", self.read(daemon, "key"))


class BrokenRedis(RedisFixture):
    def prepare(self) -> None:
        super().prepare()
        with open(self.path("dump.rdb"), "wb") as f:
            f.write(b"REDIS0011 but not a dump")


class TestRedisBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = RedisFixture
    package = "redis-server"
    rejected = {"args": ["--no-such-option", "1"]}
    complaint = "Bad directive"
    crash_complaint = "Fatal error loading the DB"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenRedis(**kwargs)
