"""etcd servers the library did not start: a key prefix per fixture.

Reached through etcd3gw (the ``etcd`` extra), etcd's v3 JSON gateway over
HTTP, or HTTPS with the URL's ``ca_cert`` (and ``cert_cert`` and
``cert_key`` for a client certificate): ``etcd://host:2379`` or
``etcds://host:2379?ca_cert=/path/ca.pem``. etcd3gw has no user and
password: a server with authentication on is not reachable this way.

A fixture gets a key prefix (``fxd-<random>:``), recorded with its maker's
mark (:mod:`fixtures_daemons.base.makers`) under
``fixtures-daemons/prefix/<prefix>``; cleanUp deletes the keys under the
prefix and the record, nothing else; the first fixture of a process
deletes the keys of prefixes whose maker is dead.
"""

from __future__ import annotations

import typing
import urllib.parse

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.endpoint import QUERY, redact
from fixtures_daemons.base.makers import left, mark
from fixtures_daemons.errors import AdminError, ClientLibraryMissing, ServerError

__all__ = ["EtcdServerAdmin", "PREFIX_RECORD"]

#: The key that records a prefix's maker.
PREFIX_RECORD = "fixtures-daemons/prefix/"

_OPTIONS = ("ca_cert", "cert_cert", "cert_key")


def _etcd3gw(name: str, request: str) -> typing.Any:
    try:
        import etcd3gw
    except ImportError:
        raise ClientLibraryMissing(name, request, "etcd3gw", "fixtures-daemons[etcd]") from None
    return etcd3gw


class EtcdServerAdmin(Admin):
    """Key prefixes on an etcd server the library did not start, through
    etcd3gw."""

    def client(self) -> typing.Any:
        etcd3gw = _etcd3gw(self.name, "connect to %s" % redact(self.endpoint.url))
        endpoint = self.endpoint
        options = {
            key: value
            for key, value in urllib.parse.parse_qsl(endpoint.extra.get(QUERY, ""))
            if key in _OPTIONS
        }
        return etcd3gw.client(
            host=endpoint.host,
            port=endpoint.port or 2379,
            protocol="https" if endpoint.scheme in ("etcds", "https") else "http",
            timeout=self.timeout,
            **options,
        )

    def _call(self, request: str, use: typing.Callable[[typing.Any], typing.Any]) -> typing.Any:
        etcd3gw = _etcd3gw(self.name, request)
        try:
            return use(self.client())
        except (etcd3gw.exceptions.Etcd3Exception, OSError) as exc:
            raise AdminError(self.name, request, str(exc) or type(exc).__name__) from None

    def answers(self) -> bool:
        try:
            self._call("status", lambda c: c.status())
        except AdminError:
            return False
        return True

    def check_server(self, source: str) -> None:
        url = redact(self.endpoint.url)
        etcd3gw = _etcd3gw(self.name, "connect to %s" % url)
        try:
            self.client().status()
        except etcd3gw.exceptions.ConnectionFailedError as exc:
            # etcd3gw's own error says nothing: what requests said is its cause.
            text = str(exc) or str(exc.__cause__ or exc.__context__ or "")
            lowered = text.lower()
            # Over HTTPS, a server that does not speak TLS answers the
            # handshake with an SSL error or by resetting the connection.
            refused = "refused" in lowered or "timed out" in lowered or "resolve" in lowered
            tls = self.endpoint.scheme in ("etcds", "https")
            if "ssl" in lowered or "certificate" in lowered or (tls and not refused):
                reason, hint = (
                    "TLS failed (%s)" % text,
                    "check that the server serves HTTPS, ca_cert and its certificate",
                )
            else:
                reason, hint = "it does not answer (%s)" % text, "check the host and port"
            raise ServerError(self.name, source, url, reason, hint) from None
        except (etcd3gw.exceptions.Etcd3Exception, OSError) as exc:
            raise ServerError(self.name, source, url, str(exc) or type(exc).__name__) from None

    # -- key prefixes ------------------------------------------------------------

    def mark_prefix(self, prefix: str, number: int = 0) -> None:
        self.sweep()
        self._call("put the record of %s" % prefix, lambda c: c.put(PREFIX_RECORD + prefix, mark()))

    def unmark_prefix(self, prefix: str, number: int = 0) -> None:
        self._call("delete the record of %s" % prefix, lambda c: c.delete(PREFIX_RECORD + prefix))

    def delete_prefixed(self, prefix: str, number: int = 0) -> bool:
        self._call("delete the keys %s*" % prefix, lambda c: c.delete_prefix(prefix))
        return True

    def leftovers(self, remove: bool = False, templates: bool = False) -> list[str]:
        def find(client: typing.Any) -> list[str]:
            found = []
            for value, meta in client.get_prefix(PREFIX_RECORD):
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                key = meta.get("key", b"")
                key = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
                if left(text):
                    found.append(key[len(PREFIX_RECORD) :])
            return found

        found = typing.cast(list[str], self._call("list the prefixes fixtures made", find))
        if remove:
            for prefix in found:
                try:
                    self.delete_prefixed(prefix)
                    self.unmark_prefix(prefix)
                except AdminError:
                    pass  # the next sweep
        return found
