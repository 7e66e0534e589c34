"""Free TCP ports that stay ours until the daemon has bound them.

Binding port 0 and closing the socket leaves a window in which another
parallel worker gets the same port. Here a port is *reserved*: an exclusive
``flock`` on a per-port lock file, held for the fixture's lifetime, so no
other process using this library on the machine (another stestr worker,
another test run, another user) can take it. The kernel drops a flock when
its holder dies, so a crashed worker's reservations free themselves. Ports
are drawn at random below the kernel's ephemeral range, where outgoing
connections never land. See doc/source/design.rst, 'Reserved ports'.
"""

from __future__ import annotations

import os
import random
import socket

from fixtures_daemons.errors import PortUnavailable
from fixtures_daemons.process._fixture import Fixture
from fixtures_daemons.process.locks import try_lock

__all__ = ["PortReservation", "PortFixture", "reserve_port"]

_ATTEMPTS = 200


def _candidate_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    if low > 12000:
        return 10000, low - 1
    return 20000, 29999  # unusual setup: keep away from the common defaults


def _bindable(host: str, port: int) -> OSError | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Daemons set SO_REUSEADDR, so a port in TIME_WAIT is fine for them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return None
    except OSError as exc:
        return exc
    finally:
        sock.close()


def _holder(host: str, port: int) -> str:
    """Best effort: which program listens on the port."""
    try:
        import psutil

        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid:
                    return "held by pid %d (%s)" % (conn.pid, psutil.Process(conn.pid).name())
                return "held by another program"
    except Exception:  # no permission to list sockets: say what we know
        return "held by another program"
    return "held by another program"


class PortReservation:
    """A port reserved for us until :meth:`release`."""

    def __init__(self, host: str, port: int, fd: int) -> None:
        self.host = host
        self.port = port
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return "<PortReservation %s:%d>" % (self.host, self.port)


def reserve_port(
    host: str = "127.0.0.1", port: int | None = None, what: str = ""
) -> PortReservation:
    """Reserve ``port`` (or a free one) on ``host``.

    Raises :class:`~fixtures_daemons.PortUnavailable` when a requested port is
    reserved by another fixture or bound by another program.
    """
    if port:
        fd = try_lock("port-%d" % port)
        if fd is None:
            raise PortUnavailable(what, host, port, "reserved by another fixtures-daemons user")
        error = _bindable(host, port)
        if error is not None:
            os.close(fd)
            raise PortUnavailable(what, host, port, _holder(host, port))
        return PortReservation(host, port, fd)
    low, high = _candidate_range()
    rng = random.SystemRandom()
    for _ in range(_ATTEMPTS):
        candidate = rng.randint(low, high)
        fd = try_lock("port-%d" % candidate)
        if fd is None:
            continue
        if _bindable(host, candidate) is None:
            return PortReservation(host, candidate, fd)
        os.close(fd)
    raise PortUnavailable(what, host, 0, "no free port found in %d tries" % _ATTEMPTS)


class PortFixture(Fixture):
    """A reserved port for the fixture's lifetime: ``self.port``."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, what: str = "") -> None:
        super().__init__()
        self.host = host
        self.requested = port
        self.what = what

    def _setUp(self) -> None:
        reservation = reserve_port(self.host, self.requested, self.what)
        self.addCleanup(reservation.release)
        self.port = reservation.port
