"""DaemonFixture: what every daemon gets from the base, and bad inputs.

Every bad input must fail setUp with its own typed error (not wrapped in
``MultipleExceptions``) that says what went wrong, and leave nothing
behind: no process, nothing in the temp root, no port reservation.
"""

from __future__ import annotations

import os
import typing
import unittest

import fixtures
import redis
import testtools

import fixtures_daemons
from fixtures_daemons import (
    CommandFailed,
    Executable,
    ExecutableNotFound,
    MemcachedFixture,
    MisuseError,
    PortUnavailable,
    RedisFixture,
    StartupTimeout,
    UserError,
    probes,
)
from tests import daemon_base
from tests.daemon_base import IS_ROOT, NOBODY


def redis_get(daemon: RedisFixture, key: str, **kwargs: typing.Any) -> typing.Any:
    with redis.Redis.from_url(daemon.url, socket_timeout=10, **kwargs) as client:
        return client.get(key)


def redis_config(daemon: RedisFixture, name: str) -> str:
    with redis.Redis.from_url(daemon.url, socket_timeout=10, decode_responses=True) as client:
        value: str = client.config_get(name)[name]
    return value


class FailsAfterStart(RedisFixture):
    """A daemon whose post-start step (creating a database, say) fails."""

    def started(self) -> None:
        raise RuntimeError("boom in _started")


class NeverReady(RedisFixture):
    def probe(self) -> probes.Probe:
        return probes.Callable(lambda: False, "an answer that never comes")


class TestDaemonBase(daemon_base.DaemonTestCase):
    """The base's behaviour, through RedisFixture (the fastest to start)."""

    def test_exports(self) -> None:
        daemon = self.useFixture(RedisFixture())
        expected = {
            "FIXTURES_DAEMONS_REDIS_URL": daemon.url,
            "FIXTURES_DAEMONS_REDIS_HOST": "127.0.0.1",
            "FIXTURES_DAEMONS_REDIS_PORT": str(daemon.port),
            "FIXTURES_DAEMONS_REDIS_SOCKET": daemon.socket_path,
            "FIXTURES_DAEMONS_URL": daemon.url,
        }
        self.assertEqual(expected, {k: daemon.env.get(k) for k in expected})
        for key, value in daemon.env.items():
            self.assertTrue(key.startswith("FIXTURES_DAEMONS_"), key)
            self.assertEqual(value, os.environ[key])
        other = daemon.exports("OTHER")
        self.assertEqual(daemon.url, other["OTHER_REDIS_URL"])
        self.assertEqual(daemon.url, other["OTHER_URL"])
        self.assertNotIn("OTHER_URL", os.environ)

    def test_export_env_false(self) -> None:
        before = dict(os.environ)
        daemon = self.useFixture(RedisFixture(export_env=False))
        self.assertEqual(before, dict(os.environ))
        self.assertEqual(daemon.url, daemon.env["FIXTURES_DAEMONS_REDIS_URL"])

    def test_nested_daemons_restore_the_url(self) -> None:
        outer = self.useFixture(RedisFixture())
        inner = self.startManually(MemcachedFixture())
        self.assertEqual(inner.url, os.environ["FIXTURES_DAEMONS_URL"])
        self.assertEqual(outer.url, os.environ["FIXTURES_DAEMONS_REDIS_URL"])
        inner.cleanUp()
        self.assertEqual(outer.url, os.environ["FIXTURES_DAEMONS_URL"])
        self.assertNotIn("FIXTURES_DAEMONS_MEMCACHED_URL", os.environ)

    def test_user_settings_and_args_win(self) -> None:
        daemon = self.useFixture(
            RedisFixture(databases=16, settings={"databases": "3"}, args=["--maxmemory", "10mb"])
        )
        self.assertEqual("3", redis_config(daemon, "databases"))
        self.assertEqual(str(10 * 1024 * 1024), redis_config(daemon, "maxmemory"))
        self.assertEqual("3", daemon.settings()["databases"])

    def test_set_up_again_after_cleanup(self) -> None:
        daemon = RedisFixture()
        daemon.setUp()
        try:
            first = daemon.temp_dir
            with redis.Redis.from_url(daemon.url) as client:
                client.set("key", "value")
        finally:
            daemon.cleanUp()
        daemon = self.startManually(daemon)
        self.assertNotEqual(first, daemon.temp_dir)
        self.assertDirGone(first)
        self.assertIsNone(redis_get(daemon, "key"))
        self.assertCleanedUp(daemon)

    def test_path_and_log(self) -> None:
        daemon = self.useFixture(RedisFixture())
        self.assertEqual(os.path.join(daemon.temp_dir, "a", "b"), daemon.path("a", "b"))
        self.assertEqual(daemon.temp_dir, os.path.dirname(daemon.log_path))
        with open(daemon.log_path) as log:
            self.assertIn("Ready to accept connections", log.read())

    def test_run_helper_failure(self) -> None:
        daemon = self.useFixture(RedisFixture())
        self.assertEqual("out\n", daemon.run_helper(["sh", "-c", "echo out"]))
        error = self.assertRaises(
            CommandFailed, daemon.run_helper, ["sh", "-c", "echo oops; exit 3"], "helper"
        )
        self.assertEqual(3, error.returncode)
        self.assertEqual("oops\n", error.output)
        self.assertIn("helper", str(error))
        self.assertIn("oops", str(error))

    def test_reset_before_set_up(self) -> None:
        error = self.assertRaises(MisuseError, RedisFixture().reset)
        self.assertEqual("RedisFixture.reset()", error.call)
        self.assertIn("not set up", str(error))

    def test_failure_after_start_undoes_everything(self) -> None:
        temp_root = self.ownTempRoot()
        tagged = self.taggedPids()
        before = dict(os.environ)
        daemon = FailsAfterStart(temp_root=temp_root)
        error = self.assertSetUpRaises(RuntimeError, daemon)
        self.assertEqual("boom in _started", str(error))
        self.assertEqual(before, dict(os.environ))
        self.assertNothingLeft(temp_root, tagged, next(iter(daemon.ports.values()), None))
        # The log is kept as a detail, though its file is gone.
        log = daemon.getDetails()["redis-log"].as_text()
        self.assertIn("Ready to accept connections", log)

    def test_startup_timeout(self) -> None:
        temp_root = self.ownTempRoot()
        tagged = self.taggedPids()
        daemon = NeverReady(temp_root=temp_root, timeout=0.2)
        error = self.assertSetUpRaises(StartupTimeout, daemon)
        self.assertEqual(0.2, error.timeout)
        self.assertIn("an answer that never comes", str(error))
        self.assertIn("Ready to accept connections", error.log_tail)
        self.assertNothingLeft(temp_root, tagged, next(iter(daemon.ports.values()), None))

    def test_port_reserved_by_another_fixture(self) -> None:
        one = self.useFixture(RedisFixture())
        temp_root = self.ownTempRoot()
        tagged = self.taggedPids()
        error = self.assertSetUpRaises(
            PortUnavailable, RedisFixture(port=one.port, mode="spawn", temp_root=temp_root)
        )
        self.assertEqual(one.port, error.port)
        self.assertIn(str(one.port), str(error))
        self.assertNothingLeft(temp_root, tagged)
        self.assertIsNone(redis_get(one, "key"))  # the first one is unharmed

    def test_os_user_under_root(self) -> None:
        if not IS_ROOT:
            self.skipTest("needs root")
        daemon = self.useFixture(RedisFixture(os_user="nobody"))
        self.assertRunsAs(NOBODY.pw_uid, daemon)
        self.assertEqual(NOBODY.pw_uid, os.stat(daemon.temp_dir).st_uid)
        self.assertIsNone(redis_get(daemon, "key"))

    def test_os_user_when_not_root(self) -> None:
        if IS_ROOT:
            self.skipTest("runs as root")
        temp_root = self.ownTempRoot()
        tagged = self.taggedPids()
        error = self.assertSetUpRaises(
            UserError, RedisFixture(os_user="nobody", temp_root=temp_root)
        )
        self.assertEqual("nobody", error.user)
        self.assertIn("only root", str(error))
        self.assertNothingLeft(temp_root, tagged)

    def test_os_user_unknown(self) -> None:
        temp_root = self.ownTempRoot()
        tagged = self.taggedPids()
        error = self.assertSetUpRaises(
            UserError, RedisFixture(os_user="fxd-no-such-user", temp_root=temp_root)
        )
        self.assertIn("fxd-no-such-user", str(error))
        self.assertNothingLeft(temp_root, tagged)


class TestSkipping(daemon_base.DaemonTestCase):
    """A missing program as a skipped test, when asked."""

    def test_skip_unless_installed(self) -> None:
        self.assertTrue(fixtures_daemons.installed(RedisFixture))
        self.assertFalse(fixtures_daemons.installed(NotInstalled))

        @fixtures_daemons.skip_unless_installed(NotInstalled)
        class Inner(testtools.TestCase):
            def test_it(self) -> None:
                raise AssertionError("ran although its daemon is missing")

        result = testtools.TestResult()
        Inner("test_it").run(result)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)
        [(reason, _)] = result.skip_reasons.items()
        self.assertIn("no-such-daemon-program", str(reason))

    def test_skip_missing_variable(self) -> None:
        temp_root = self.ownTempRoot()
        error = self.assertSetUpRaises(ExecutableNotFound, NotInstalled(temp_root=temp_root))
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_SKIP_MISSING", "1"))
        skip = self.assertSetUpRaises(unittest.SkipTest, NotInstalled(temp_root=temp_root))
        self.assertEqual(str(error), str(skip))
        self.assertEqual([], os.listdir(temp_root))


class NotInstalled(RedisFixture):
    """A daemon whose program is nowhere."""

    daemon_name = "notinstalled"
    executable = Executable(
        names=("no-such-daemon-program",), packages={"Debian/Ubuntu": "no-such-package"}
    )
