"""Just enough of the Redis protocol (RESP2) for probes and resets.

The core must not depend on a Redis client library; PING, AUTH, SELECT,
SET/GET/DEL of namespace claims, FLUSHALL/FLUSHDB and SCAN are all it needs.
"""

from __future__ import annotations

import socket

__all__ = ["RespError", "command"]


class RespError(Exception):
    """An error reply from the server."""


def _encode(args: tuple[str, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def exact(self, n: int) -> bytes:
        while len(self.buffer) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n + 2 :]
        return data

    def reply(self) -> object:
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.exact(size)
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.reply() for _ in range(size)]
        raise ConnectionError("unexpected reply %r" % line[:50])


def command(
    address: str | tuple[str, int], *commands: tuple[str, ...], timeout: float = 5.0
) -> list[object]:
    """Send ``commands`` on one connection; return their replies.

    ``address`` is a unix socket path or a (host, port) pair. An error reply
    raises :class:`RespError`.
    """
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(b"".join(_encode(c) for c in commands))
        reader = _Reader(sock)
        return [reader.reply() for _ in commands]
