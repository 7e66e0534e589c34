"""Display numbers reserved like ports: fixtures_daemons.process.displays."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from fixtures_daemons import DisplayUnavailable
from fixtures_daemons.process import displays
from fixtures_daemons.process.displays import (
    DisplayFixture,
    reserve_display,
    x_lock_path,
    x_socket_path,
)
from tests import base

WORKER = os.path.join(base.HERE, "programs", "xvfb_worker.py")


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class TestDisplays(base.TestCase):
    def reserved(self, display: int | None = None) -> displays.DisplayReservation:
        reservation = reserve_display(display)
        self.addCleanup(reservation.release)
        return reservation

    def free_number(self) -> int:
        """A number free now (reserved, then released)."""
        with reserve_display() as reservation:
            return reservation.display

    def removeOnCleanUp(self, path: str) -> None:
        self.addCleanup(lambda: os.path.lexists(path) and os.unlink(path))

    def test_fixture_reserves_until_cleanup(self) -> None:
        fixture = self.useFixture(DisplayFixture())
        self.assertEqual(":%d" % fixture.display, fixture.name)
        self.assertTrue(1000 <= fixture.display <= 29999)
        error = self.assertRaises(DisplayUnavailable, reserve_display, fixture.display)
        self.assertEqual(fixture.display, error.display)
        self.assertIn("reserved by another fixtures-daemons user", str(error))
        self.assertIn("leave display unset", str(error))
        fixture.cleanUp()
        self.reserved(fixture.display)  # free again

    def test_two_reservations_differ(self) -> None:
        numbers = {self.reserved().display for _ in range(20)}
        self.assertEqual(20, len(numbers))

    def test_bad_number(self) -> None:
        for bad in (-1, 70000, True):
            error = self.assertRaises(DisplayUnavailable, reserve_display, bad)
            self.assertIn("not a display number", str(error))

    def test_live_lock_file_is_skipped(self) -> None:
        number = self.free_number()
        path = x_lock_path(number)
        self.removeOnCleanUp(path)
        with open(path, "x") as f:
            f.write("%10d\n" % os.getpid())  # alive: us
        error = self.assertRaises(DisplayUnavailable, reserve_display, number)
        self.assertIn("names the live process %d" % os.getpid(), str(error))
        self.assertTrue(os.path.exists(path))  # not ours to remove

    def test_answering_socket_is_skipped(self) -> None:
        number = self.free_number()
        path = x_socket_path(number)
        displays.ensure_socket_dir()
        if not os.access(displays.X_SOCKET_DIR, os.W_OK):
            self.skipTest("%s is not writable here" % displays.X_SOCKET_DIR)
        self.removeOnCleanUp(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(path)
        listener.listen(4)
        error = self.assertRaises(DisplayUnavailable, reserve_display, number)
        self.assertIn("an X server listens on %s" % path, str(error))
        listener.close()  # now a stale socket file: reclaimed
        self.assertEqual(number, self.reserved(number).display)
        self.assertFalse(os.path.lexists(path))

    def test_abstract_socket_is_skipped(self) -> None:
        number = self.free_number()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind("\0" + x_socket_path(number))
        listener.listen(4)
        error = self.assertRaises(DisplayUnavailable, reserve_display, number)
        self.assertIn("abstract socket", str(error))

    def test_stale_lock_file_is_reclaimed(self) -> None:
        number = self.free_number()
        path = x_lock_path(number)
        self.removeOnCleanUp(path)
        with open(path, "x") as f:
            f.write("%10d\n" % dead_pid())
        self.assertEqual(number, self.reserved(number).display)
        self.assertFalse(os.path.exists(path))

    def test_garbage_lock_file_is_skipped(self) -> None:
        number = self.free_number()
        path = x_lock_path(number)
        self.removeOnCleanUp(path)
        with open(path, "x") as f:
            f.write("garbage")
        error = self.assertRaises(DisplayUnavailable, reserve_display, number)
        self.assertIn("does not hold a pid", str(error))

    def test_free_search_skips_taken_numbers(self) -> None:
        # Only two numbers to draw from: one taken by a live X lock file.
        number = self.free_number()
        other = number + 1 if number < 29999 else number - 1
        low, high = min(number, other), max(number, other)
        self.patch(displays, "_LOW", low)
        self.patch(displays, "_HIGH", high)
        path = x_lock_path(number)
        self.removeOnCleanUp(path)
        with open(path, "x") as f:
            f.write("%10d\n" % os.getpid())
        got = self.reserved()
        self.assertEqual(other, got.display)
        # Both taken now: a typed error, not a hang.
        error = self.assertRaises(DisplayUnavailable, reserve_display)
        self.assertEqual(0, error.display)
        self.assertIn("no free X display number", str(error))

    def test_sigkilled_holder_frees_its_number(self) -> None:
        child = self.spawnPython(
            "import runpy, sys; sys.argv = ['w', 'reserve']; "
            "runpy.run_path(%r, run_name='__main__')" % WORKER
        )
        assert child.stdout is not None
        line = self.readLine(base.LineReader(child.stdout), prefix="display ")
        number = int(line.split()[1])
        self.assertRaises(DisplayUnavailable, reserve_display, number)
        child.kill()
        child.wait()
        self.assertEqual(number, self.reserved(number).display)
