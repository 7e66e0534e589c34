"""MemcachedFixture, with the real memcached and pymemcache."""

from __future__ import annotations

import signal
import typing

from pymemcache.client.base import Client  # type: ignore[import-untyped]

from fixtures_daemons import DaemonExited, DaemonFixture, MemcachedFixture
from fixtures_daemons.base.binaries import find_executable
from tests import daemon_base


def client(daemon: MemcachedFixture) -> Client:
    return Client((daemon.host, daemon.port), connect_timeout=10, timeout=10)


class TestMemcached(
    daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    daemon_class = MemcachedFixture
    # Documented: like a real memcached restart, stopped() brings it back empty.
    keeps_data_over_restart = False

    def write(self, fixture: MemcachedFixture, key: str, value: str) -> None:
        c = client(fixture)
        try:
            self.assertTrue(c.set(key, value, noreply=False))
        finally:
            c.close()

    def read(self, fixture: MemcachedFixture, key: str) -> str | None:
        c = client(fixture)
        try:
            value = c.get(key)
        finally:
            c.close()
        return None if value is None else value.decode()

    def assertCannotConnect(self, fixture: MemcachedFixture) -> None:
        c = client(fixture)
        try:
            self.assertRaises(ConnectionRefusedError, c.version)
        finally:
            c.close()

    # -- memcached specifics ---------------------------------------------------

    def test_url(self) -> None:
        daemon = self.useFixture(MemcachedFixture())
        self.assertEqual("memcached://127.0.0.1:%d" % daemon.port, daemon.url)
        self.assertEqual(str(daemon.port), daemon.env["FIXTURES_DAEMONS_MEMCACHED_PORT"])

    def test_memory_and_threads(self) -> None:
        daemon = self.useFixture(MemcachedFixture(memory=8, threads=3))
        c = client(daemon)
        try:
            stats = c.stats()
        finally:
            c.close()
        self.assertEqual(8 * 1024 * 1024, stats[b"limit_maxbytes"])
        self.assertEqual(3, stats[b"threads"])

    def test_no_udp(self) -> None:
        daemon = self.useFixture(MemcachedFixture())
        kinds = {kind for _, _, kind in daemon_base.listening_addresses(daemon_base.pid_of(daemon))}
        self.assertEqual({"tcp"}, kinds)

    def test_command_helper(self) -> None:
        daemon = self.useFixture(MemcachedFixture())
        self.assertTrue(daemon.command("version").startswith("VERSION "))
        self.write(daemon, "key", "value")
        self.assertEqual("OK", daemon.command("flush_all"))
        self.assertIsNone(self.read(daemon, "key"))


class TestMemcachedBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = MemcachedFixture
    package = "memcached"
    rejected = {"settings": {"no-such-option": "1"}}
    complaint = "unrecognized option '--no-such-option=1'"
    crash_complaint = "memcached crashing on purpose"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        # memcached has no data to corrupt: a wrapper that starts it and
        # crashes (killed by a signal) before it answers.
        real = find_executable(MemcachedFixture.executable)
        wrapper = self.writeScript(
            self.scriptsDir(),
            "memcached",
            "#!/bin/sh\necho 'memcached crashing on purpose'\n"
            'kill -%d $$\nexec %s "$@"\n' % (signal.SIGKILL, real),
        )
        return MemcachedFixture(binary=wrapper, **kwargs)

    def test_killed_by_a_signal(self) -> None:
        error = self.assertSetUpRaises(DaemonExited, self.broken(temp_root=self.temp_root))
        self.assertEqual(-signal.SIGKILL, error.returncode)
        self.assertIn("killed by signal %d" % signal.SIGKILL, str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)
