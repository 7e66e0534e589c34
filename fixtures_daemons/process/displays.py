"""Free X display numbers that stay ours for the fixture's lifetime.

A display number is reserved the way a port is
(:mod:`fixtures_daemons.process.ports`): an exclusive ``flock`` on
``display-<n>.lock`` in the machine-wide lock dir
(:func:`~fixtures_daemons.process.locks.lock_dir`), held until released, so
no other process using this library (another stestr worker, another test
run, another user) takes the same number; the kernel drops the flock when
its holder dies.

X servers that do not use this library (``xvfb-run``, a desktop, Xvnc)
announce a display with ``/tmp/.X<n>-lock`` (the server's pid) and listen
on ``/tmp/.X11-unix/X<n>`` (and, on Linux, the abstract socket of the same
name). A number is skipped when its lock file names a live process or one
of its sockets answers. A lock file whose process is dead, and a socket
file nobody listens on, are what a crashed run left: they are removed
(while we hold the flock, so no fixture of ours can be starting a server
there) and the number is used. One we may not remove (another user's, in
the sticky /tmp) makes the number skipped: the X server could not take it
either.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import stat

from fixtures_daemons.errors import DisplayUnavailable
from fixtures_daemons.process._fixture import Fixture
from fixtures_daemons.process.locks import try_lock

__all__ = [
    "DisplayReservation",
    "DisplayFixture",
    "reserve_display",
    "x_lock_path",
    "x_socket_path",
    "ensure_socket_dir",
    "X_SOCKET_DIR",
]

#: Where X servers put their sockets (fixed by the X transport library,
#: whatever ``$TMPDIR`` says).
X_SOCKET_DIR = "/tmp/.X11-unix"

#: Drawn from here: away from the low numbers desktops, VNC servers and
#: ``xvfb-run`` (99) use. ``-nolisten tcp``: no TCP port (6000 + n) is involved.
_LOW, _HIGH = 1000, 29999
_ATTEMPTS = 200


def x_lock_path(display: int) -> str:
    """The lock file an X server makes for ``display``."""
    return "/tmp/.X%d-lock" % display


def x_socket_path(display: int) -> str:
    """The unix socket an X server listens on for ``display``."""
    return os.path.join(X_SOCKET_DIR, "X%d" % display)


def ensure_socket_dir() -> None:
    """Make ``/tmp/.X11-unix`` (root's, mode 1777, as systemd-tmpfiles
    does) when it is missing and we are root. As another user, nothing:
    the X server makes it itself (owned by that user, with a warning in its
    log)."""
    if os.geteuid() != 0 or os.path.isdir(X_SOCKET_DIR):
        return
    try:
        os.mkdir(X_SOCKET_DIR, 0o1777)
        os.chmod(X_SOCKET_DIR, 0o1777)  # noqa: S103 - every user's X sockets, sticky like /tmp
    except FileExistsError:
        pass


def _pid_alive(pid: int) -> bool:
    """True when ``pid`` runs; a zombie (a server that died and that no
    one has reaped yet) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: alive, for all we know
    return state not in (b"Z", b"X")


def _answers(address: str) -> bool | None:
    """True when something listens at the unix ``address``; False when
    nothing does (a stale socket file: refused); None when there is no
    such socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1.0)
    try:
        sock.connect(address)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ConnectionRefusedError:
        return False
    except OSError as exc:
        # A socket we may not connect to, or a listener too busy to
        # accept within the second: in use, for all we know.
        return exc.errno != errno.ENOENT
    finally:
        sock.close()


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _taken(display: int) -> str:
    """Why an X server (ours or not) has ``display``, or ``""`` when it is
    free; what a crashed server left there is removed. Call with the
    display's flock held."""
    lock = x_lock_path(display)
    try:
        with open(lock, "rb") as f:
            text = f.read(64)
    except FileNotFoundError:
        text = None
    except OSError as exc:
        return "%s cannot be read (%s)" % (lock, exc.strerror)
    if text is not None:
        try:
            pid = int(text.strip())
        except ValueError:
            return "%s does not hold a pid" % lock
        if pid > 0 and _pid_alive(pid):
            return "%s names the live process %d" % (lock, pid)
        if not _remove(lock):
            return "%s, left by the dead process %d, cannot be removed" % (lock, pid)
    if _answers("\0" + x_socket_path(display)):  # the abstract socket (Linux)
        return "an X server listens on the abstract socket @%s" % x_socket_path(display)
    path = x_socket_path(display)
    state = _answers(path)
    if state:
        return "an X server listens on %s" % path
    if state is False:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return ""
        if not stat.S_ISSOCK(mode) or not _remove(path):
            return "%s, left by a server that is gone, cannot be removed" % path
    return ""


class DisplayReservation:
    """An X display number reserved for us until :meth:`release`."""

    def __init__(self, display: int, fd: int) -> None:
        self.display = display
        self._fd: int | None = fd

    @property
    def name(self) -> str:
        """``:<n>``, what ``DISPLAY`` holds."""
        return ":%d" % self.display

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> DisplayReservation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return "<DisplayReservation :%d>" % self.display


def reserve_display(display: int | None = None, what: str = "") -> DisplayReservation:
    """Reserve the X display number ``display`` (or a free one).

    Raises :class:`DisplayUnavailable` when a requested number is reserved
    by another fixture or taken by another X server, or when no free one
    is found.
    """
    if display is not None:
        if not isinstance(display, int) or isinstance(display, bool) or not 0 <= display <= 59535:
            raise DisplayUnavailable(
                what, 0, "%r is not a display number (0 to 59535)" % (display,)
            )
        fd = try_lock("display-%d" % display)
        if fd is None:
            raise DisplayUnavailable(what, display, "reserved by another fixtures-daemons user")
        reason = _taken(display)
        if reason:
            os.close(fd)
            raise DisplayUnavailable(what, display, reason)
        return DisplayReservation(display, fd)
    rng = random.SystemRandom()
    for _ in range(_ATTEMPTS):
        candidate = rng.randint(_LOW, _HIGH)
        fd = try_lock("display-%d" % candidate)
        if fd is None:
            continue
        if not _taken(candidate):
            return DisplayReservation(candidate, fd)
        os.close(fd)
    raise DisplayUnavailable(
        what, 0, "%d numbers tried between %d and %d" % (_ATTEMPTS, _LOW, _HIGH)
    )


class DisplayFixture(Fixture):
    """A reserved X display number for the fixture's lifetime, for a
    program that starts its own X server: ``display`` (the number) and
    ``name`` (``:<n>``, for ``DISPLAY``).

    :param display: the number wanted (default: a free one).
    :param what: what error messages call it.
    """

    def __init__(self, display: int | None = None, what: str = "") -> None:
        super().__init__()
        self.requested = display
        self.what = what
        self.display = 0
        self.name = ""

    def _setUp(self) -> None:
        reservation = reserve_display(self.requested, self.what)
        self.addCleanup(reservation.release)
        self.display = reservation.display
        self.name = reservation.name
