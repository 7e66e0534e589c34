"""Port reservations: distinct, exclusive, released, and freed by a crash."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

from fixtures_daemons import PortFixture, PortUnavailable, reserve_port
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
