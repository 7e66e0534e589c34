"""A worker process for the Xvfb display tests.

``stress N [LOW HIGH]``: set up N XvfbFixtures one after the other, each checked
with an X connection (its admin) and against /tmp/.X<n>-lock (the server
that has the display is the fixture's own); prints ``ok D1 D2 ...`` and
exits 0, or prints the failure and exits 1. With LOW and HIGH, display
numbers are drawn from that range only, so that parallel workers contend
for the same few numbers.

``hold``: set up one XvfbFixture, print ``display N PID`` (its number and
the Xvfb's pid) and wait for stdin to close (the test SIGKILLs it).

``reserve``: reserve a display number, print ``display N``, wait likewise.
"""

from __future__ import annotations

import sys

from fixtures_daemons.daemons.xvfb import XvfbAdmin, XvfbFixture
from fixtures_daemons.process import displays
from fixtures_daemons.process.displays import reserve_display, x_lock_path


def stress(count: int) -> int:
    got = []
    for _ in range(count):
        fixture = XvfbFixture(mode="spawn", export_env=False, resolution="320x240x8")
        fixture.setUp()
        try:
            number = fixture.display_number
            with open(x_lock_path(number)) as f:
                holder = int(f.read().strip())
            assert fixture.process is not None
            if holder != fixture.process.pid:
                print(
                    "collision: :%d is held by %d, not ours %d"
                    % (number, holder, fixture.process.pid)
                )
                return 1
            admin = fixture.admin
            assert isinstance(admin, XvfbAdmin)
            if not admin.answers():
                print("collision: :%d does not answer" % number)
                return 1
            got.append(number)
        finally:
            fixture.cleanUp()
    print("ok " + " ".join(map(str, got)), flush=True)
    return 0


def main() -> int:
    mode = sys.argv[1]
    if mode == "stress":
        if len(sys.argv) > 3:
            displays._LOW, displays._HIGH = int(sys.argv[3]), int(sys.argv[4])
        try:
            return stress(int(sys.argv[2]))
        except Exception as exc:  # the test shows it
            print("failed: %s: %s" % (type(exc).__name__, exc), flush=True)
            return 1
    if mode == "hold":
        fixture = XvfbFixture(mode="spawn", export_env=False)
        fixture.setUp()
        assert fixture.process is not None
        print("display %d %d" % (fixture.display_number, fixture.process.pid), flush=True)
        sys.stdin.read()
        fixture.cleanUp()
        return 0
    if mode == "reserve":
        reservation = reserve_display()
        print("display %d" % reservation.display, flush=True)
        sys.stdin.read()
        return 0
    raise SystemExit("unknown mode %r" % mode)


if __name__ == "__main__":
    sys.exit(main())
