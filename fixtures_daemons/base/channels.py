"""Long-lived client connections to servers the library did not start.

A connection per request costs a server admin a TCP (and TLS) handshake
and an authentication each time: with ``scram-sha-256``'s 4096 iterations
and TLS, most of a fixture's setUp. So the server admins keep one
connection per server, user and database in the process, used by one
thread at a time; a connection that broke (the server restarted, closed
it) is opened again, once per request; a forked child opens its own
(the parent's are the parent's).
"""

from __future__ import annotations

import os
import threading
import typing

from fixtures_daemons.errors import AdminError

__all__ = ["Channels"]

_C = typing.TypeVar("_C")
_T = typing.TypeVar("_T")


class _Channel:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: typing.Any = None


class Channels:
    """This process's connections of one kind, by key.

    :param close: closes a connection (errors ignored).
    :param usable: whether a connection is still usable after a request
        on it failed; one that is not is dropped, and the request tried
        once more on a new one when the failed one was not new.
    """

    def __init__(
        self,
        close: typing.Callable[[typing.Any], None],
        usable: typing.Callable[[typing.Any], bool],
    ) -> None:
        self._close = close
        self._usable = usable
        self._lock = threading.Lock()
        self._channels: dict[object, _Channel] = {}
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._channels = {}

    def use(
        self,
        key: object,
        connect: typing.Callable[[], _C],
        use: typing.Callable[[_C], _T],
        timeout: float,
        name: str,
        request: str,
    ) -> _T:
        """``use(connection)`` on the connection of ``key`` (made with
        ``connect()`` when there is none)."""
        with self._lock:
            channel = self._channels.setdefault(key, _Channel())
        if not channel.lock.acquire(timeout=timeout):
            raise AdminError(name, request, "the connection stayed busy for %.1f s" % timeout)
        try:
            for attempt in (1, 2):
                fresh = channel.conn is None
                if fresh:
                    channel.conn = connect()
                try:
                    return use(channel.conn)
                except Exception:
                    if self._usable(channel.conn):
                        raise
                    conn, channel.conn = channel.conn, None
                    try:
                        self._close(conn)
                    except Exception:  # noqa: BLE001,S110 (broken already)
                        pass
                    if fresh or attempt == 2:
                        raise
            raise AssertionError("unreachable")
        finally:
            channel.lock.release()

    def close_all(self) -> None:
        """Close every connection (they open again when needed)."""
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            with channel.lock:
                if channel.conn is not None:
                    try:
                        self._close(channel.conn)
                    except Exception:  # noqa: BLE001,S110
                        pass
                    channel.conn = None
