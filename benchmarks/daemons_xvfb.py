"""Xvfb in ``bench_daemons``: its bare floor (pifpaf has no Xvfb driver).

The floor is ``Xvfb`` started directly with the fixture's options (a
display number reserved for the whole run, ``-screen 0 1280x1024x24
-nolisten tcp -noreset``, a cookie file made once outside the timed part),
polled every millisecond with an X connection setup until the server
accepts it, then stopped with SIGTERM (as the fixture's cleanUp: Xvfb
removes its lock file and socket on it).
"""

from __future__ import annotations

import os
import signal

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


DAEMON = Daemon(
    "xvfb",
    "XvfbFixture",
    XvfbFloor,
    None,
    max_x_floor=1.5,
    programs=("Xvfb",),
)
