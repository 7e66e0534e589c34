"""Just enough of the PostgreSQL protocol for administration.

Creating, dropping and resetting databases must not need a client library
(psycopg and friends are optional) and must be fast: spawning ``psql`` costs
more than the ``CREATE DATABASE`` itself. This speaks the simple-query
protocol, version 3, with trust authentication, which is how our servers
are configured.
"""

from __future__ import annotations

import socket
import struct

__all__ = ["PgError", "connect", "Connection"]


class PgError(Exception):
    """An ErrorResponse from the server: ``.code`` is the SQLSTATE."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        self.code = fields.get("C", "")
        super().__init__(
            "%s: %s (SQLSTATE %s)" % (fields.get("S", "ERROR"), fields.get("M", ""), self.code)
        )


def _parse_error(body: bytes) -> dict[str, str]:
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


class Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        #: What the server reported at startup (server_version, ...).
        self.parameters: dict[str, str] = {}

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _message(self) -> tuple[bytes, bytes]:
        kind, length = struct.unpack("!cI", self._read(5))
        return kind, self._read(length - 4)

    def _startup(self, user: str, database: str) -> None:
        params = b"user\0%s\0database\0%s\0\0" % (user.encode(), database.encode())
        self.sock.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
        while True:
            kind, body = self._message()
            if kind == b"R":
                (code,) = struct.unpack("!I", body[:4])
                if code != 0:
                    raise PgError(
                        {
                            "M": "authentication method %d is not supported; "
                            "only trust authentication is" % code
                        }
                    )
            elif kind == b"S":
                key, value, _ = body.split(b"\0", 2)
                self.parameters[key.decode()] = value.decode("utf-8", "replace")
            elif kind == b"E":
                raise PgError(_parse_error(body))
            elif kind == b"Z":
                return

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run ``sql`` (one or more statements); return the rows, as text."""
        data = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!I", len(data) + 4) + data)
        rows: list[tuple[str | None, ...]] = []
        error: PgError | None = None
        while True:
            kind, body = self._message()
            if kind == b"D":
                (count,) = struct.unpack("!H", body[:2])
                offset, row = 2, list[str | None]()
                for _ in range(count):
                    (size,) = struct.unpack("!i", body[offset : offset + 4])
                    offset += 4
                    if size < 0:
                        row.append(None)
                    else:
                        row.append(body[offset : offset + size].decode())
                        offset += size
                rows.append(tuple(row))
            elif kind == b"E":
                error = PgError(_parse_error(body))
            elif kind == b"Z":
                if error is not None:
                    raise error
                return rows

    def close(self) -> None:
        try:
            self.sock.sendall(b"X\0\0\0\4")
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(socket_path: str, user: str, database: str, timeout: float = 30.0) -> Connection:
    """Connect through the unix socket at ``socket_path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        conn = Connection(sock)
        conn._startup(user, database)
    except BaseException:
        sock.close()
        raise
    return conn


def quote_ident(name: str) -> str:
    return '"%s"' % name.replace('"', '""')
