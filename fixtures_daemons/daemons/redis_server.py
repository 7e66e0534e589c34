"""Redis (and Valkey) servers the library did not start: a key prefix per
fixture.

A CI service container or a shared Redis is reached through redis-py (the
``redis`` extra): a password, an ACL user (``redis://user:password@...``)
and TLS (``rediss://``, redis-py's ``ssl_*`` options in the URL's query)
are the client library's. Other people may use the server's database
numbers, so a fixture never claims or flushes a whole database there: it
gets a key prefix in the URL's database (``/0`` by default), and cleanUp
deletes the keys under it (``SCAN`` and ``UNLINK``), nothing else.

Each prefix is recorded with its maker's mark
(:mod:`fixtures_daemons.base.makers`) under
``fixtures-daemons:prefix:<prefix>`` in the same database; the first
fixture of a process on a server deletes the keys of prefixes whose maker
is dead. The user needs, on the keys ``fxd-*`` and ``fixtures-daemons:*``:
``GET``, ``SET``, ``SCAN``, ``UNLINK``, ``PING`` (and ``SELECT`` for a
database other than 0); for instance ``ACL SETUSER app on >secret
~fxd-* ~fixtures-daemons:* +@read +@write +@keyspace +@connection``.
"""

from __future__ import annotations

import os
import threading
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.endpoint import redact
from fixtures_daemons.base.makers import left, mark
from fixtures_daemons.errors import AdminError, ClientLibraryMissing, ServerError

__all__ = ["RedisServerAdmin", "PREFIX_RECORD"]

#: The key that records a prefix's maker.
PREFIX_RECORD = "fixtures-daemons:prefix:%s"


def _redis(name: str, request: str) -> typing.Any:
    try:
        import redis
    except ImportError:
        raise ClientLibraryMissing(name, request, "redis", "fixtures-daemons[redis]") from None
    return redis


#: This process's clients, by URL, database and timeout.
_clients: dict[tuple[object, ...], typing.Any] = {}
_clients_lock = threading.Lock()
#: The servers (URLs) this process has checked.
_checked: set[str] = set()


def _forget_clients() -> None:
    # A forked child's connections would be the parent's sockets.
    global _clients_lock
    _clients.clear()
    _clients_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_clients)


class RedisServerAdmin(Admin):
    """Key prefixes on a Redis server the library did not start, through
    redis-py, as the URL's user, in the URL's database."""

    def client(self, number: int | None = None) -> typing.Any:
        """A new redis-py client of the server, in database ``number``
        (default: the URL's); the caller closes it."""
        redis = _redis(self.name, "connect to %s" % redact(self.endpoint.url))
        endpoint = self.endpoint
        if number is not None:
            endpoint = endpoint.replace(database=str(number))
        return redis.Redis.from_url(
            endpoint.url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
        )

    def _call(
        self, request: str, use: typing.Callable[[typing.Any], typing.Any], number: int = 0
    ) -> typing.Any:
        """``use(client)`` with this process's client of the server (its
        connection pool keeps connections open: no handshake per request;
        redis-py's clients are thread-safe)."""
        redis = _redis(self.name, request)
        key = (self.endpoint.url, number, self.timeout)
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self.client(number)
        try:
            return use(client)
        except redis.RedisError as exc:
            raise AdminError(self.name, request, str(exc)) from None

    def answers(self) -> bool:
        try:
            return bool(self._call("PING", lambda c: c.ping(), self._number()))
        except AdminError:
            return False

    def _number(self) -> int:
        return int(self.endpoint.database) if self.endpoint.database.isdigit() else 0

    def check_server(self, source: str) -> None:
        if self.endpoint.url in _checked:  # once per process
            return
        url = redact(self.endpoint.url)
        redis = _redis(self.name, "connect to %s" % url)
        client = self.client(self._number())
        probe = PREFIX_RECORD % "check"
        try:
            client.ping()
            # What a fixture needs: write, read, list and remove its keys.
            client.set(probe, mark(), px=60000)
            client.get(probe)
            client.scan(0, match=PREFIX_RECORD % "*", count=10)
            client.unlink(probe)
        except redis.AuthenticationError as exc:
            raise ServerError(
                self.name,
                source,
                url,
                "it refuses the credentials (%s)" % exc,
                "check the user and password in the URL",
            ) from None
        except redis.exceptions.NoPermissionError as exc:
            raise ServerError(
                self.name,
                source,
                url,
                "the user lacks a right (%s)" % exc,
                "grant it GET, SET, SCAN, UNLINK on ~fxd-* ~fixtures-daemons:* "
                "(see the guide, 'Servers')",
            ) from None
        except redis.ConnectionError as exc:
            text = str(exc)
            if "ssl" in text.lower() or "certificate" in text.lower():
                reason, hint = (
                    "TLS failed (%s)" % text,
                    ("check rediss://, ssl_ca_certs and the server's certificate"),
                )
            elif "auth" in text.lower() or "password" in text.lower():
                reason, hint = (
                    "it refuses the credentials (%s)" % text,
                    ("check the user and password in the URL"),
                )
            else:
                reason, hint = "it does not answer (%s)" % text, "check the host and port"
            raise ServerError(self.name, source, url, reason, hint) from None
        except redis.RedisError as exc:
            raise ServerError(self.name, source, url, str(exc)) from None
        finally:
            client.close()
        _checked.add(self.endpoint.url)

    # -- key prefixes ----------------------------------------------------------------

    def mark_prefix(self, prefix: str, number: int = 0) -> None:
        self.sweep()
        self._call(
            "SET %s" % PREFIX_RECORD % prefix,
            lambda c: c.set(PREFIX_RECORD % prefix, mark()),
            number,
        )

    def unmark_prefix(self, prefix: str, number: int = 0) -> None:
        self._call(
            "UNLINK %s" % PREFIX_RECORD % prefix, lambda c: c.unlink(PREFIX_RECORD % prefix), number
        )

    def delete_prefixed(self, prefix: str, number: int = 0) -> bool:
        def delete(client: typing.Any) -> bool:
            batch: list[bytes] = []
            for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)
            return True

        return bool(self._call("delete the keys %s*" % prefix, delete, number))

    # -- what dead makers left -------------------------------------------------------

    def leftovers(self, remove: bool = False, templates: bool = False) -> list[str]:
        number = self._number()
        start = len(PREFIX_RECORD % "")

        def find(client: typing.Any) -> list[str]:
            found = []
            for key in client.scan_iter(match=PREFIX_RECORD % "*", count=1000):
                value = client.get(key)
                if value is not None and left(value.decode("utf-8", "replace")):
                    found.append(key.decode("utf-8", "replace")[start:])
            return found

        found = typing.cast(list[str], self._call("list the prefixes fixtures made", find, number))
        if remove:
            for prefix in found:
                try:
                    self.delete_prefixed(prefix, number)
                    self.unmark_prefix(prefix, number)
                except AdminError:
                    pass  # the next sweep
        return found


def _glob_escape(text: str) -> str:
    """``text`` with the glob characters of ``SCAN MATCH`` escaped."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
