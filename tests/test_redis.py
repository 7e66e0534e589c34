"""RedisFixture, with the real redis-server and redis-py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import typing

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from fixtures_daemons import (
    AttachError,
    DaemonExited,
    DaemonFixture,
    MisuseError,
    PortUnavailable,
    RedisFixture,
    reserve_port,
)
from fixtures_daemons.daemons.redis import RedisAdmin
from fixtures_daemons.process.ports import PortFixture
from tests import daemon_base, test_cli


def no_retry() -> dict[str, typing.Any]:
    """redis-py retries a failed connection 3 times, with a backoff: a test
    of a failure must see the first one."""
    return {"socket_timeout": 10, "retry": Retry(NoBackoff(), 0)}


def client(daemon: RedisFixture) -> redis.Redis:
    return redis.Redis.from_url(daemon.url, decode_responses=True, **no_retry())


def raw(daemon: RedisFixture, **kwargs: typing.Any) -> redis.Redis:
    """A client on host and port, not through the url: with the fixture's
    password unless told otherwise (``password=None``: none)."""
    kwargs.setdefault("password", daemon.password or None)
    return redis.Redis(daemon.host, daemon.port, **kwargs, **no_retry())


def admin(daemon: RedisFixture) -> RedisAdmin:
    return typing.cast(RedisAdmin, daemon.admin)


def sentinel_of(daemon: RedisFixture, **kwargs: typing.Any) -> Sentinel:
    """redis-py's Sentinel on the fixture's Sentinel, with the fixture's
    password (for the Sentinel and for the server) unless told otherwise;
    closed at the end of the test by :func:`close_sentinel`."""
    password = kwargs.pop("password", daemon.password)
    return Sentinel(
        daemon.sentinels,
        sentinel_kwargs=dict(no_retry(), password=password),
        password=password,
        **kwargs,
        **no_retry(),
    )


def close_sentinel(sentinel: Sentinel) -> None:
    for connection in sentinel.sentinels:
        connection.close()


class RedisClient:
    """How the contracts talk to Redis and Valkey: redis-py on the URL."""

    def write(self, fixture: RedisFixture, key: str, value: str) -> None:
        with client(fixture) as r:
            r.set(key, value)

    def read(self, fixture: RedisFixture, key: str) -> str | None:
        with client(fixture) as r:
            value: str | None = r.get(key)
        return value

    def assertCannotConnect(self: typing.Any, fixture: RedisFixture) -> None:
        with client(fixture) as r:
            self.assertRaises(redis.exceptions.ConnectionError, r.ping)


class TestRedis(
    RedisClient,
    daemon_base.DaemonContract,
    daemon_base.AttachContract,
    daemon_base.DaemonTestCase,
):
    daemon_class = RedisFixture

    # -- Redis specifics -------------------------------------------------------

    def test_url(self) -> None:
        daemon = self.useFixture(RedisFixture())
        self.assertRegex(daemon.password, r"^[0-9a-f]{32}$")  # its own, random
        self.assertEqual("redis://:%s@127.0.0.1:%d/0" % (daemon.password, daemon.port), daemon.url)
        with raw(daemon, password=None) as anonymous:  # another local user, without it: refused
            self.assertRaises(redis.exceptions.AuthenticationError, anonymous.set, "k", "v")
        self.assertEqual(daemon.socket_path, daemon.env["FIXTURES_DAEMONS_REDIS_SOCKET"])
        # No Sentinel unless asked for.
        self.assertEqual((None, []), (daemon.sentinel_port, daemon.sentinels))
        self.assertNotIn("FIXTURES_DAEMONS_REDIS_SENTINEL_PORT", daemon.env)
        self.assertEqual(["redis.log", "redis.sock"], sorted(os.listdir(daemon.temp_dir)))
        self.assertRaises(MisuseError, admin(daemon).sentinel_master)

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
            unix_socket_path=daemon.socket_path,
            password=daemon.password,
            decode_responses=True,
            **no_retry(),
        ) as r:
            r.set("key", "value")
        self.assertEqual("value", self.read(daemon, "key"))
        self.assertEqual("PONG", daemon.command("PING"))

    def test_no_password(self) -> None:
        daemon = self.useFixture(RedisFixture(password=""))
        self.assertEqual("redis://127.0.0.1:%d/0" % daemon.port, daemon.url)
        with raw(daemon, password=None) as anonymous:
            anonymous.set("k", "v")

    def test_password(self) -> None:
        daemon = self.useFixture(RedisFixture(password="s3cret"))
        self.assertEqual("redis://:s3cret@127.0.0.1:%d/0" % daemon.port, daemon.url)
        with raw(daemon, password=None) as anonymous:
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
        with raw(daemon, password=None) as anonymous:
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


class TestRedisClaims(daemon_base.DaemonTestCase):
    """The database numbers attached fixtures claim on a shared server."""

    daemon_class = RedisFixture

    def dead_owner_claim(self, token: str) -> str:
        """A claim as a process that has exited left it (SIGKILLed before
        its cleanUp): this machine, a pid that no longer has that start."""
        child = subprocess.Popen([sys.executable, "-c", ""])
        child.wait()
        return json.dumps(
            {
                "boot": open("/proc/sys/kernel/random/boot_id").read().strip(),
                "host": socket.gethostname(),
                "pid": child.pid,
                "start": "1",  # no live process started at tick 1
                "token": token,
            },
            sort_keys=True,
        )

    def test_a_dead_owners_claim_is_taken_over(self) -> None:
        server = self.useFixture(RedisFixture(databases=3, share=True))
        with raw(server) as r:
            r.set("fixtures-daemons:db:1", self.dead_owner_claim("dead"))
        with raw(server, db=1) as r1:
            r1.set("left", "by the dead owner")
        attached = self.useFixture(RedisFixture())
        self.assertEqual(1, attached.db)  # taken over, not db 2
        with raw(server, db=1) as r1:
            self.assertIsNone(r1.get("left"))  # and emptied first

    def test_a_live_owners_claim_is_left_alone(self) -> None:
        server = self.useFixture(RedisFixture(databases=3, share=True))
        one = self.useFixture(RedisFixture())
        two = self.useFixture(RedisFixture())
        self.assertEqual([1, 2], sorted([one.db, two.db]))
        with raw(server, db=one.db) as r:
            r.set("mine", "one's")
        # Every number taken by a live owner: a key prefix in database 0.
        three = self.useFixture(RedisFixture())
        self.assertEqual((0, True), (three.db, bool(three.key_prefix)))
        three.cleanUp()
        with raw(server, db=one.db) as r:
            self.assertEqual(b"one's", r.get("mine"))

    def test_release_never_flushes_another_owners_database(self) -> None:
        server = self.useFixture(RedisFixture(databases=3, share=True))
        admin_ = admin(server)
        self.assertTrue(admin_.claim_number(1, "mine"))
        with raw(server) as r:
            r.set("fixtures-daemons:db:1", json.dumps({"token": "someone else's"}))
        with raw(server, db=1) as r1:
            r1.set("theirs", "kept")
        admin_.release_number(1, "mine")
        with raw(server, db=1) as r1:
            self.assertEqual(b"kept", r1.get("theirs"))


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


class BrokenSentinel(RedisFixture):
    """A Sentinel that exits at start: a directive it does not know."""

    def sentinel_config(self) -> str:
        return super().sentinel_config() + "no-such-directive 1\n"


class TestRedisSentinel(daemon_base.DaemonTestCase):
    """``sentinel=True``: a Sentinel watching the server under pifpaf's
    master name, used through redis-py's Sentinel class."""

    def sentinel_pid(self, daemon: RedisFixture) -> int:
        assert daemon.sentinel_process is not None and daemon.sentinel_process.pid is not None
        return daemon.sentinel_process.pid

    def test_discover_write_read_clean_up(self) -> None:
        daemon = self.startManually(RedisFixture(sentinel=True))
        sentinel = sentinel_of(daemon)
        self.addCleanup(close_sentinel, sentinel)
        self.assertEqual(("127.0.0.1", daemon.port), sentinel.discover_master("pifpaf"))
        with sentinel.master_for("pifpaf", decode_responses=True) as master:
            master.set("key", "through the sentinel")
            self.assertEqual("through the sentinel", master.get("key"))
        with client(daemon) as r:  # the very server the fixture describes
            self.assertEqual("through the sentinel", r.get("key"))
        # What it exports, and what it is.
        self.assertEqual("pifpaf", daemon.sentinel_master)
        self.assertEqual([("127.0.0.1", daemon.sentinel_port)], daemon.sentinels)
        self.assertEqual(
            str(daemon.sentinel_port), os.environ["FIXTURES_DAEMONS_REDIS_SENTINEL_PORT"]
        )
        self.assertEqual("pifpaf", os.environ["FIXTURES_DAEMONS_REDIS_SENTINEL_MASTER"])
        self.assertEqual(str(daemon.port), os.environ["FIXTURES_DAEMONS_REDIS_PORT"])
        sentinel_pid = self.sentinel_pid(daemon)
        addresses = daemon_base.listening_addresses(sentinel_pid)
        self.assertIn(("127.0.0.1", daemon.sentinel_port, "tcp"), addresses)
        self.assertEqual({"127.0.0.1"}, {ip for ip, _, _ in addresses})
        self.assertEqual(
            self.expectedUser(daemon), daemon_base.process_tree(sentinel_pid)[0].uids().real
        )
        # Its configuration is in the private temp dir, and it rewrote it.
        self.assertEqual(daemon.temp_dir, os.path.dirname(daemon.sentinel_config_path))
        with open(daemon.sentinel_config_path) as f:
            self.assertIn("sentinel myid", f.read())
        self.assertIn("redis-sentinel-log", daemon.getDetails())
        # cleanUp: both processes gone, both ports free again.
        sentinel_tree = daemon_base.process_tree(sentinel_pid)
        sentinel_port = daemon.sentinel_port
        self.assertCleanedUp(daemon)
        self.assertGone(*sentinel_tree)
        assert sentinel_port is not None
        reserve_port("127.0.0.1", sentinel_port).release()
        self.assertIsNone(daemon.sentinel_process)

    def test_stopped_stops_the_server_only(self) -> None:
        daemon = self.useFixture(RedisFixture(sentinel=True))
        sentinel = sentinel_of(daemon)
        self.addCleanup(close_sentinel, sentinel)
        master = sentinel.master_for("pifpaf", decode_responses=True)
        self.addCleanup(master.close)
        master.set("key", "kept")
        sentinel_pid = self.sentinel_pid(daemon)
        with daemon.stopped():
            # MasterNotFoundError, or a refused connection: both are
            # ConnectionErrors.
            self.assertRaises(redis.exceptions.ConnectionError, master.get, "key")
            self.assertEqual(sentinel_pid, self.sentinel_pid(daemon))
        self.assertEqual(("127.0.0.1", daemon.port), sentinel.discover_master("pifpaf"))
        self.assertEqual("kept", master.get("key"))
        self.assertEqual(sentinel_pid, self.sentinel_pid(daemon))

    def test_password(self) -> None:
        daemon = self.useFixture(RedisFixture(sentinel=True, password="s3cret"))
        with redis.Redis(daemon.host, daemon.sentinel_port, **no_retry()) as anonymous:
            self.assertRaises(redis.exceptions.AuthenticationError, anonymous.ping)
        sentinel = sentinel_of(daemon)
        self.addCleanup(close_sentinel, sentinel)
        with sentinel.master_for("pifpaf", decode_responses=True) as master:
            master.set("key", "value")
        with client(daemon) as r:
            self.assertEqual("value", r.get("key"))
        self.assertEqual(("127.0.0.1", daemon.port), admin(daemon).sentinel_master())

    def test_password_with_spaces_and_quotes(self) -> None:
        password = 'a "b" \\c d'
        daemon = self.useFixture(RedisFixture(sentinel=True, password=password))
        sentinel = sentinel_of(daemon)
        self.addCleanup(close_sentinel, sentinel)
        self.assertEqual(("127.0.0.1", daemon.port), sentinel.discover_master("pifpaf"))
        with sentinel.master_for("pifpaf", decode_responses=True) as master:
            self.assertTrue(master.ping())

    def test_sentinel_as_another_user(self) -> None:
        if not daemon_base.IS_ROOT:
            self.skipTest("needs root")
        daemon = self.useFixture(RedisFixture(sentinel=True, os_user="nobody"))
        self.assertRunsAs(daemon_base.NOBODY.pw_uid, daemon)
        uids = daemon_base.process_tree(self.sentinel_pid(daemon))[0].uids()
        self.assertEqual(daemon_base.NOBODY.pw_uid, uids.effective)
        with open(daemon.sentinel_config_path) as f:  # it could rewrite it
            self.assertIn("sentinel myid", f.read())

    def test_attach_asking_for_a_missing_sentinel(self) -> None:
        self.useFixture(RedisFixture(share=True))
        error = self.assertSetUpRaises(AttachError, RedisFixture(sentinel=True))
        self.assertIn("no Sentinel", str(error))
        self.assertIn("FIXTURES_DAEMONS_REDIS_STATE", str(error))

    def test_pinned_sentinel_port(self) -> None:
        reservation = reserve_port("127.0.0.1")
        port = reservation.port
        reservation.release()
        daemon = self.useFixture(RedisFixture(sentinel=True, sentinel_port=port))
        self.assertEqual(port, daemon.sentinel_port)
        self.assertEqual(str(port), daemon.env["FIXTURES_DAEMONS_REDIS_SENTINEL_PORT"])
        self.assertIn(
            ("127.0.0.1", port, "tcp"),
            daemon_base.listening_addresses(self.sentinel_pid(daemon)),
        )

    def test_sentinel_port_needs_sentinel(self) -> None:
        error = self.assertRaises(ValueError, RedisFixture, sentinel_port=26379)
        self.assertIn("sentinel=True", str(error))

    def test_sentinel_port_taken(self) -> None:
        temp_root, tagged = self.ownTempRoot(), self.taggedPids()
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        error = self.assertSetUpRaises(
            PortUnavailable, RedisFixture(sentinel=True, sentinel_port=port, temp_root=temp_root)
        )
        self.assertEqual(port, error.port)
        self.assertIn("sentinel", str(error))
        self.assertNothingLeft(temp_root, tagged)

    def test_sentinel_exits_during_startup(self) -> None:
        temp_root, tagged = self.ownTempRoot(), self.taggedPids()
        daemon = BrokenSentinel(sentinel=True, temp_root=temp_root)
        error = self.assertSetUpRaises(DaemonExited, daemon)
        self.assertIn("redis-sentinel", str(error))
        self.assertIn("no-such-directive", error.log_tail)
        self.assertEqual("--sentinel", error.command[-1])
        # The server it had started is gone too, and both ports are free.
        self.assertNothingLeft(temp_root, tagged, daemon.ports["main"])
        reserve_port("127.0.0.1", daemon.ports["sentinel"]).release()

    def test_attached_fixtures_share_the_sentinel(self) -> None:
        # As under `fixtures-daemons run redis --sentinel`: the tests'
        # fixtures attach, and reach their own database through the Sentinel.
        server = self.useFixture(RedisFixture(sentinel=True, share=True))
        attached = self.useFixture(RedisFixture())
        self.assertTrue(attached.attached)
        self.assertNotEqual(0, attached.db)
        self.assertEqual(server.sentinels, attached.sentinels)
        self.assertEqual(
            str(server.sentinel_port), attached.env["FIXTURES_DAEMONS_REDIS_SENTINEL_PORT"]
        )
        sentinel = sentinel_of(attached)
        self.addCleanup(close_sentinel, sentinel)
        with sentinel.master_for("pifpaf", db=attached.db, decode_responses=True) as master:
            master.set("key", "mine")
        with client(attached) as r:
            self.assertEqual("mine", r.get("key"))
        with client(server) as r:
            self.assertIsNone(r.get("key"))


class PifpafComparison(test_cli.CliTestCase):
    """Compares ``fixtures-daemons -e PIFPAF run`` with ``pifpaf run``: test_cli's
    TestPifpafCompatibility's comparison, borrowed method by method
    (importing that class would run its tests here too). Skips unless
    pifpaf and the :attr:`programs` its driver runs are installed."""

    environments = test_cli.TestPifpafCompatibility.environments
    normalise = staticmethod(test_cli.TestPifpafCompatibility.normalise)
    assertSameExports = test_cli.TestPifpafCompatibility.assertSameExports

    #: (program, Debian package) that pifpaf's driver runs from PATH.
    programs: typing.ClassVar[tuple[tuple[str, str], ...]] = ()

    def setUp(self) -> None:
        super().setUp()
        self.pifpaf = self.pifpafCommand()
        for program, package in self.programs:
            if not shutil.which(program):
                self.skipTest(
                    "%s is not installed (Debian/Ubuntu: %s): pifpaf's driver runs it"
                    % (program, package)
                )

    def pifpafPorts(self) -> tuple[str, str]:
        """Two free ports for pifpaf (main, sentinel)."""
        main, sentinel = (self.useFixture(PortFixture()).port for _ in range(2))
        return str(main), str(sentinel)


class TestRedisSentinelPifpafExports(PifpafComparison):
    """``fixtures-daemons -e PIFPAF run redis --sentinel`` exports what
    ``pifpaf run redis --sentinel`` does (ours runs ``redis-server
    --sentinel``; pifpaf runs ``redis-sentinel``)."""

    programs = (("redis-server", "redis-server"), ("redis-sentinel", "redis-sentinel"))

    def test_sentinel(self) -> None:
        port, sentinel_port = self.pifpafPorts()
        theirs, ours = self.environments(
            "redis",
            ["--port", port, "--sentinel", "--sentinel-port", sentinel_port, "--password", "pw"],
            ["--sentinel", "--password", "pw"],
        )
        self.assertEqual("{port}", theirs["PIFPAF_REDIS_SENTINEL_PORT"])
        self.assertEqual("redis://:pw@localhost:{port}", theirs["PIFPAF_URL"])
        self.assertSameExports(theirs, ours)
