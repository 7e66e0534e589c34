"""Port reservations: distinct, exclusive, released, and freed by a crash."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import fixtures

from fixtures_daemons import PortFixture, PortUnavailable, TempDirError, reserve_port
from fixtures_daemons.process import locks
from fixtures_daemons.process.waiting import Deadline
from tests import base

#: A child that reserves a port when told "go", prints it, and holds it
#: until its stdin closes.
HOLDER = """
import sys
from fixtures_daemons.process.ports import reserve_port
print("waiting", flush=True)
sys.stdin.readline()
reservation = reserve_port()
print("port %d" % reservation.port, flush=True)
sys.stdin.read()
"""


class TestReservations(base.TestCase):
    def reserve(self, port: int | None = None) -> int:
        reservation = reserve_port(port=port)
        self.addCleanup(reservation.release)
        return reservation.port

    def test_two_reservations_differ(self) -> None:
        first, second = self.reserve(), self.reserve()
        self.assertNotEqual(first, second)
        for port in (first, second):
            self.assertGreater(port, 1024)

    def test_reserved_port_cannot_be_reserved_again(self) -> None:
        reservation = reserve_port()
        self.addCleanup(reservation.release)
        error = self.assertRaises(PortUnavailable, reserve_port, port=reservation.port)
        self.assertEqual(reservation.port, error.port)
        self.assertIn(str(reservation.port), str(error))
        reservation.release()
        self.reserve(reservation.port)

    def test_release_is_idempotent(self) -> None:
        with reserve_port() as reservation:
            port = reservation.port
            reservation.release()
        reservation.release()
        self.reserve(port)

    def test_port_in_use_by_a_plain_socket(self) -> None:
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        error = self.assertRaises(PortUnavailable, reserve_port, port=port)
        self.assertEqual(port, error.port)
        self.assertEqual("127.0.0.1", error.host)
        self.assertIn("already in use", str(error))
        # The failed attempt did not keep the port locked.
        listener.close()
        self.reserve(port)

    def test_fixture_releases_on_cleanup(self) -> None:
        fixture = PortFixture()
        fixture.setUp()
        port = fixture.port
        self.assertRaises(PortUnavailable, reserve_port, port=port)
        fixture.cleanUp()
        self.reserve(port)

    def test_fixture_pinned_port(self) -> None:
        port = self.reserve()
        self.assertRaises(PortUnavailable, self.useFixture, PortFixture(port=port))


class TestAcrossProcesses(base.TestCase):
    def holder(self) -> tuple[base.LineReader, subprocess.Popen[bytes]]:
        child = self.spawnPython(HOLDER)
        assert child.stdout is not None
        return base.LineReader(child.stdout), child

    def go(self, child: subprocess.Popen[bytes]) -> None:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()

    def test_reservation_of_a_killed_process_is_freed(self) -> None:
        reader, child = self.holder()
        self.readLine(reader, prefix="waiting")
        self.go(child)
        port = int(self.readLine(reader, prefix="port ").split()[1])
        self.assertRaises(PortUnavailable, reserve_port, port=port)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        reserve_port(port=port).release()

    def test_parallel_reservations_are_distinct(self) -> None:
        count = 12
        children = [self.holder() for _ in range(count)]
        deadline = Deadline(60)
        # Every child is ready to reserve; then all are told at once.
        for reader, _ in children:
            self.readLine(reader, deadline.remaining(), prefix="waiting")
        for _, child in children:
            self.go(child)
        ports = [
            int(self.readLine(reader, deadline.remaining(), prefix="port ").split()[1])
            for reader, _ in children
        ]
        self.assertEqual(count, len(set(ports)), sorted(ports))


class TestLockDir(base.TestCase):
    def test_one_lock_per_port_whatever_tmpdir_says(self) -> None:
        # Two processes with different TMPDIR must not both reserve a port.
        held = reserve_port()
        self.addCleanup(held.release)
        other = self.useFixture(fixtures.TempDir()).path
        code = (
            "import sys\n"
            "from fixtures_daemons import PortUnavailable, reserve_port\n"
            "try:\n"
            "    reserve_port(port=%d)\n"
            "except PortUnavailable as exc:\n"
            "    print('refused', exc)\n" % held.port
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=base.python_env(TMPDIR=other),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertTrue(result.stdout.startswith("refused"), result.stdout)

    def test_a_lock_dir_whose_parent_is_missing(self) -> None:
        missing = os.path.join(self.useFixture(fixtures.TempDir()).path, "no", "locks")
        self.useFixture(fixtures.EnvironmentVariable(locks.LOCK_DIR_ENV, missing))
        error = self.assertRaises(TempDirError, reserve_port)
        self.assertEqual(missing, error.root)
        self.assertIn(locks.LOCK_DIR_ENV, str(error))
        self.assertFalse(os.path.exists(missing))
