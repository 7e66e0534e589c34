"""Endpoint: how a client reaches a daemon, and nothing else.

An :class:`Endpoint` is small, typed and immutable. It is the one thing
about a daemon that crosses processes: the variables a fixture exports are
derived from it, ``fixtures-daemons run`` serialises it for the fixtures
that attach in the test workers, and a named daemon's record stores it.
A daemon with several ports names them (etcd's ``client`` and ``peer``);
a daemon with no port at all (an X server) has a ``display`` and no URL.

What a fixture owns inside a shared daemon narrows its endpoint: a
database of its own (``database``), a Redis database number (also
``database``, the URL's path), a key prefix (``key_prefix``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
import urllib.parse

from fixtures_daemons.errors import StateError

__all__ = ["Endpoint"]

_Mapping = typing.Mapping[str, typing.Any]


def _frozen(value: typing.Mapping[str, typing.Any] | None) -> typing.Mapping[str, typing.Any]:
    return types.MappingProxyType(dict(value or {}))


#: The key of ``Endpoint.extra`` that marks a server the library did not
#: start (its value: ``"1"``): its admin is the daemon's server admin, and
#: its URL carries the query (TLS options) it was given.
SERVER_MARK = "server"
#: The key of ``Endpoint.extra`` with the query string of a server's URL.
QUERY = "query"
#: The key of ``Endpoint.extra`` with the options of a server's URL that
#: only its admin reads (``DaemonFixture.server_admin_options``): clients
#: never see them.
ADMIN_QUERY = "admin_query"


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL: mask what would be a password in one
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
    if password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc="%s:***@%s" % (user, netloc[2])))


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """How a client reaches a daemon.

    :param scheme: the URL scheme (``postgresql``, ``redis``, ...); empty
        for a daemon that has no URL (an X server).
    :param host: the address it listens on.
    :param ports: named TCP ports; the first is :attr:`port`.
    :param sockets: named unix sockets (paths); the first is :attr:`socket`.
    :param user: the user a client logs in as.
    :param password: its password, if any.
    :param database: what the URL's path names: an SQL database, a Redis
        database number, a vhost.
    :param key_prefix: a prefix for every key (a namespace on a daemon that
        has nothing better).
    :param display: an X display (``:99``).
    :param directory: the daemon's private temp dir, when it is ours and on
        this machine.
    :param pid: the daemon's process id, when it is ours and on this
        machine; with ``pid_start`` it tells a live daemon from a dead one.
    :param pid_start: the process's start time, as the kernel counts it.
    :param extra: daemon-specific facts (a socket dir, a node name), as text.
    """

    scheme: str = ""
    host: str = "127.0.0.1"
    ports: typing.Mapping[str, int] = dataclasses.field(default_factory=dict)
    sockets: typing.Mapping[str, str] = dataclasses.field(default_factory=dict)
    user: str = ""
    password: str = ""
    database: str = ""
    key_prefix: str = ""
    display: str = ""
    directory: str = ""
    pid: int = 0
    pid_start: str = ""
    extra: typing.Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only views: an endpoint is shared, and must not change under
        # the fixtures that hold it.
        for name in ("ports", "sockets", "extra"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    # -- derived -------------------------------------------------------------

    @property
    def port(self) -> int | None:
        """The first (main) port, or None for a daemon without one."""
        return next(iter(self.ports.values()), None)

    @property
    def socket(self) -> str:
        """The first (main) unix socket, or ``""``."""
        return next(iter(self.sockets.values()), "")

    @property
    def url(self) -> str:
        """``scheme://[user[:password]@]host[:port][/database]``; ``""``
        for a daemon without a scheme."""
        if not self.scheme:
            return ""
        auth = ""
        user, password = self.user, self.password
        if self.extra.get(SERVER_MARK):  # someone else's: any characters
            user, password = (urllib.parse.quote(x, safe="") for x in (user, password))
        if user or password:
            auth = user + (":" + password if password else "") + "@"
        host = "[%s]" % self.host if ":" in self.host else self.host
        port = ":%d" % self.port if self.port is not None else ""
        path = "/" + self.database if self.database else ""
        query = "?" + self.extra[QUERY] if self.extra.get(QUERY) else ""
        return "%s://%s%s%s%s%s" % (self.scheme, auth, host, port, path, query)

    def replace(self, **changes: typing.Any) -> Endpoint:
        """A copy with ``changes`` (a narrower namespace, say)."""
        return dataclasses.replace(self, **changes)

    # -- crossing processes --------------------------------------------------

    def to_dict(self) -> dict[str, typing.Any]:
        return {
            field.name: (
                dict(getattr(self, field.name))
                if isinstance(getattr(self, field.name), typing.Mapping)
                else getattr(self, field.name)
            )
            for field in dataclasses.fields(self)
        }

    def to_json(self) -> str:
        # Not sort_keys: the order of the ports says which is the main one.
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: object, source: str = "") -> Endpoint:
        """The endpoint ``data`` describes; :class:`~fixtures_daemons.StateError`
        naming ``source`` when it is not one (a damaged variable or record)."""
        if not isinstance(data, dict):
            raise StateError(source, "expected a JSON object, got %s" % type(data).__name__)
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise StateError(source, "unknown field(s) %s" % ", ".join(unknown))
        for name, value in data.items():
            _check_field(name, value, source)
        return cls(**data)

    @classmethod
    def from_json(cls, text: str, source: str = "") -> Endpoint:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StateError(source, "not JSON (%s)" % exc) from None
        return cls.from_dict(data, source)


_TYPES: dict[str, type] = {
    "scheme": str,
    "host": str,
    "user": str,
    "password": str,
    "database": str,
    "key_prefix": str,
    "display": str,
    "directory": str,
    "pid": int,
    "pid_start": str,
}
_MAPPINGS: dict[str, type] = {"ports": int, "sockets": str, "extra": str}


def _check_field(name: str, value: object, source: str) -> None:
    if name in _MAPPINGS:
        kind = _MAPPINGS[name]
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, kind) and not isinstance(v, bool)
            for k, v in value.items()
        ):
            raise StateError(source, "%s must map names to %s" % (name, kind.__name__))
        if name == "ports" and not all(0 < v < 65536 for v in value.values()):
            raise StateError(source, "ports must be between 1 and 65535")
        return
    kind = _TYPES[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise StateError(source, "%s must be %s, not %r" % (name, kind.__name__, value))
