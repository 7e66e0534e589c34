"""Xvfb in ``bench_daemons``: its bare floor, and a stand-in for pifpaf.

The floor is ``Xvfb`` started directly with the fixture's options (a
display number reserved for the whole run, ``-screen 0 1280x1024x24
-nolisten tcp -noreset``, a cookie file made once outside the timed part),
polled every millisecond with an X connection setup until the server
accepts it, then stopped with SIGTERM (as the fixture's cleanUp: Xvfb
removes its lock file and socket on it).

pifpaf has no Xvfb driver. The third column is what test suites write by
hand instead (pytest-xvfb and PyVirtualDisplay do this): ``Xvfb
-displayfd`` on a pipe, ready when the server writes its display number,
no cookie, stopped with SIGTERM.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess

import fixtures

from benchmarks._floors import Daemon, Floor
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.daemons.xvfb import XvfbAdmin, xauthority_entry
from fixtures_daemons.process.displays import reserve_display, x_socket_path


class XvfbFloor(Floor):
    """``Xvfb`` with the fixture's options; ready = an X connection setup
    with the cookie succeeds."""

    stop_signal = signal.SIGTERM

    def prepare(self) -> None:
        self.reservation = reserve_display(what="xvfb floor")  # for the whole run
        number = self.reservation.display
        self.xauthority = os.path.join(self.workdir, "Xauthority")
        with open(self.xauthority, "wb") as f:
            f.write(xauthority_entry(number, os.urandom(16)))
        endpoint = Endpoint(
            display=":%d" % number,
            sockets={"x11": x_socket_path(number)},
            extra={"xauthority": self.xauthority},
        )
        self.admin = XvfbAdmin(endpoint, "xvfb", 1.0)

    def command(self) -> list[str]:
        return [
            self.binary,
            ":%d" % self.reservation.display,
            "-screen",
            "0",
            "1280x1024x24",
            "-nolisten",
            "tcp",
            "-auth",
            self.xauthority,
            "-noreset",
        ]

    def answers(self) -> bool:
        return self.admin.answers()


class HandWrittenXvfb(fixtures.Fixture):
    """``Xvfb -displayfd`` as suites start it by hand (no cookie, no lock
    file: the server picks the first free number itself)."""

    def __init__(self, temp_root: str) -> None:
        super().__init__()
        self.temp_root = temp_root

    def _setUp(self) -> None:
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24"]
                + ["-nolisten", "tcp"],
                pass_fds=[write_end],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.temp_root,
            )
            self.addCleanup(process.wait)
            self.addCleanup(process.terminate)
            os.close(write_end)
            write_end = -1
            data = b""
            while not data.endswith(b"\n"):
                readable, _, _ = select.select([read_end], [], [], 60)
                chunk = os.read(read_end, 16) if readable else b""
                if not chunk:
                    raise RuntimeError("Xvfb -displayfd did not say its display")
                data += chunk
            self.display = ":" + data.decode().strip()
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)


def _hand_written(port: int, temp_root: str) -> fixtures.Fixture:
    return HandWrittenXvfb(temp_root)


DAEMON = Daemon(
    "xvfb",
    "XvfbFixture",
    XvfbFloor,
    _hand_written,
    max_x_floor=1.5,
    programs=("Xvfb",),
)
