"""Redis, optionally watched by a Sentinel (a second process of the same
fixture). Valkey, its fork, is the same fixture with another program:
:mod:`fixtures_daemons.daemons.valkey`."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import DatabaseNumber, KeyPrefix, Namespace
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.daemons import _resp
from fixtures_daemons.daemons.redis_server import RedisServerAdmin
from fixtures_daemons.errors import AdminError, AttachError
from fixtures_daemons.process import _reaper
from fixtures_daemons.process.fixture import ProcessFixture
from fixtures_daemons.process.probes import Callable, Probe

__all__ = ["RedisFixture", "RedisResource", "RedisAdmin"]

#: The name the Sentinel watches the server under: pifpaf's, so that jobs
#: written for ``pifpaf run redis --sentinel`` (tooz, oslo.cache) run as
#: they are.
SENTINEL_MASTER = "pifpaf"


def _quoted(value: str) -> str:
    """``value`` as a double-quoted string of a Redis configuration file."""
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


#: Set KEYS[1] to ARGV[2] if it still holds ARGV[1].
_TAKE_OVER = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('SET', KEYS[1], ARGV[2]) else return false end"
)


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _claim_value(token: str) -> str:
    pid = os.getpid()
    owner = {"boot": _boot_id(), "pid": pid, "start": _reaper.start_time(pid)}
    return json.dumps(dict(owner, token=token, host=socket.gethostname()), sort_keys=True)


def _claim_token(value: str) -> str:
    try:
        return str(json.loads(value)["token"])
    except (ValueError, KeyError, TypeError):
        return value  # a bare token


def _owner_dead(value: str) -> bool:
    """True when the claim's owner ran on this machine and is gone (its pid
    has another start time, or the machine has booted since); False when
    it lives or cannot be told (another machine, a claim of another form)."""
    try:
        owner = json.loads(value)
        boot, pid, start = str(owner["boot"]), int(owner["pid"]), str(owner["start"])
        host = str(owner["host"])
    except (ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or not boot:
        return False
    return boot != _boot_id() or _reaper.start_time(pid) != start


class RedisAdmin(Admin):
    """One of our Redis servers, through the built-in minimal client on
    its unix socket (TCP when it has none)."""

    _CLAIM = "fixtures-daemons:db:%d"

    def command(self, *args: str, db: int = 0) -> object:
        """Run one command in database ``db``; return its reply."""
        endpoint = self.endpoint
        commands: list[tuple[str, ...]] = []
        if endpoint.password:
            commands.append(("AUTH", endpoint.password))
        if db:
            commands.append(("SELECT", str(db)))
        commands.append(tuple(args))
        address: str | tuple[str, int] = endpoint.socket or (endpoint.host, endpoint.port or 0)
        try:
            return _resp.command(address, *commands, timeout=self.timeout)[-1]
        except _resp.RespError as exc:
            raise AdminError(self.name, " ".join(args[:2]), str(exc)) from exc

    def answers(self) -> bool:
        try:
            return self.command("PING") == "PONG"
        except (OSError, AdminError):
            return False

    def sentinel_master(self) -> tuple[str, int] | None:
        """The address the Sentinel (the endpoint's ``sentinel`` port) gives
        for ``SENTINEL_MASTER``; None when it does not know it yet."""
        endpoint = self.endpoint
        if "sentinel" not in endpoint.ports:
            self._lacks("sentinel_master()", "Sentinel (start it with sentinel=True)")
        commands: list[tuple[str, ...]] = []
        if endpoint.password and endpoint.extra.get("sentinel_auth") == "1":
            commands.append(("AUTH", endpoint.password))
        commands.append(("SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER))
        address = (endpoint.host, endpoint.ports["sentinel"])
        try:
            reply = _resp.command(address, *commands, timeout=self.timeout)[-1]
        except _resp.RespError as exc:
            raise AdminError(
                self.name + "-sentinel", "SENTINEL get-master-addr-by-name", str(exc)
            ) from exc
        if not isinstance(reply, list) or len(reply) != 2:
            return None
        return reply[0].decode(), int(reply[1])

    def sentinel_answers(self) -> bool:
        """True when the Sentinel knows the master (the readiness probe)."""
        try:
            return self.sentinel_master() is not None
        except (OSError, AdminError):
            return False

    def flush(self) -> None:
        self.command("FLUSHALL")

    def database_count(self) -> int:
        return int(self.endpoint.extra.get("databases", "16"))

    # The claims are keys in database 0, set only if absent, so two workers
    # never get the same number. A claim names its owner (this machine's
    # boot, the pid and its start time): one whose owner died without
    # releasing it (a SIGKILLed worker) is taken over, atomically, by the
    # next fixture that finds every free number taken.
    def claim_number(self, number: int, token: str) -> bool:
        key = self._CLAIM % number
        value = _claim_value(token)
        if self.command("SET", key, value, "NX") == "OK":
            return True
        current = self.command("GET", key)
        if not isinstance(current, bytes) or not _owner_dead(current.decode("utf-8", "replace")):
            return False
        # Compare and set: only if it is still the dead owner's claim.
        return self.command("EVAL", _TAKE_OVER, "1", key, current.decode(), value) == "OK"

    def release_number(self, number: int, token: str) -> None:
        # Only our own claim: never flush a database another fixture holds.
        current = self.command("GET", self._CLAIM % number)
        if isinstance(current, bytes) and _claim_token(current.decode("utf-8", "replace")) == token:
            self.command("FLUSHDB", db=number)
            self.command("DEL", self._CLAIM % number)

    def flush_number(self, number: int) -> None:
        self.command("FLUSHDB", db=number)

    def delete_prefixed(self, prefix: str, number: int = 0) -> bool:
        cursor = "0"
        while True:
            reply = typing.cast(
                list[typing.Any],
                self.command("SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000", db=number),
            )
            cursor, keys = reply[0].decode(), reply[1]
            if keys:
                self.command("DEL", *(key.decode() for key in keys), db=number)
            if cursor == "0":
                return True


class RedisFixture(DaemonFixture):
    """A Redis server on loopback and on a unix socket, optionally watched
    by a Sentinel.

    It is ready when it answers PING. cleanUp kills it (its data is thrown
    away); :meth:`stopped` shuts it down with a save, so the data is back
    after the restart.

    With ``sentinel=True`` a Sentinel (the same program, with
    ``--sentinel``) runs beside the server, on a port of its own, and
    watches it under pifpaf's master name, ``pifpaf``
    (``SENTINEL_MASTER``); setUp returns once the Sentinel gives the
    master's address. :meth:`stopped` and :meth:`paused` act on the server
    only: the Sentinel sees the outage, as it would in production.

    :param password: the password the server requires (``requirepass``,
        on TCP and on its socket); ``url`` carries it. By default a random
        one of this server's own, so that no other local user gets in (a
        Redis client can make the server write files as its user);
        ``""``: none. A password given here the Sentinel requires too, as
        pifpaf's does; the Sentinel always uses it to reach the server.
    :param databases: how many numbered databases it has.
    :param sentinel: run a Sentinel watching the server.
    :param sentinel_port: pin the Sentinel's port (the default reserves a
        free one); needs ``sentinel``.

    Attributes: ``url`` (``redis://[:password@]host:port/db``),
    ``socket_path``, ``password``, ``databases``, ``db`` (the database
    number this fixture owns: 0, or another when attached), ``key_prefix``
    (set when attached and every database number was taken: prefix your
    keys with it); with a Sentinel, ``sentinel_port``, ``sentinels`` (the
    ``[(host, port)]`` list ``redis.sentinel.Sentinel`` takes),
    ``sentinel_master`` and ``sentinel_process`` (its
    :class:`~fixtures_daemons.ProcessFixture`, when this fixture started
    it).
    """

    daemon_name = "redis"
    executable = Executable(
        names=("redis-server",),
        packages={"Debian/Ubuntu": "redis-server", "Homebrew": "redis"},
        env_var="FIXTURES_DAEMONS_REDIS_SERVER",
    )
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGTERM  # shuts down with a SAVE (a save point is set)
    scheme = "redis"
    server_schemes = ("rediss",)
    namespace = DatabaseNumber
    admin_class = RedisAdmin
    server_admin_class = RedisServerAdmin
    #: The scheme of the URL pifpaf's driver exports.
    pifpaf_scheme: typing.ClassVar[str] = "redis"

    def __init__(
        self,
        *,
        password: str | None = None,
        databases: int = 16,
        sentinel: bool = False,
        sentinel_port: int | None = None,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        if sentinel_port is not None and not sentinel:
            raise ValueError("sentinel_port=%d needs sentinel=True" % sentinel_port)
        self.requested_password = password
        # Made now, not at setUp: stopped() restarts with the same one.
        self._password = password if password is not None else secrets.token_hex(16)
        self.databases = databases
        self.sentinel = sentinel
        self.requested_sentinel_port = sentinel_port
        self.sentinel_process: ProcessFixture | None = None

    # -- the Sentinel: a second process of the same fixture --------------------

    @property
    def sentinel_config_path(self) -> str:
        return self.path("%s-sentinel.conf" % self.daemon_name)

    def sentinel_config(self) -> str:
        """The Sentinel's configuration file (it rewrites it as it runs)."""
        lines = [
            "bind %s" % self.requested_host,
            "port %d" % self.ports["sentinel"],
            "dir %s" % _quoted(self.temp_dir),
            "daemonize no",
            'logfile ""',
            "sentinel monitor %s %s %d 1" % (SENTINEL_MASTER, self.requested_host, self.port),
        ]
        if self._password:
            lines.append("sentinel auth-pass %s %s" % (SENTINEL_MASTER, _quoted(self._password)))
        if self.requested_password:  # as pifpaf: a password given guards the Sentinel too
            lines.append("requirepass %s" % _quoted(self.requested_password))
        return "\n".join(lines) + "\n"

    def needed_ports(self) -> typing.Sequence[str]:
        return ("main", "sentinel") if self.sentinel else ("main",)

    def pinned_ports(self) -> dict[str, int | None]:
        return dict(super().pinned_ports(), sentinel=self.requested_sentinel_port)

    def prepare(self) -> None:
        super().prepare()
        if self.sentinel:  # the Sentinel rewrites its file: the daemon's user owns it
            self.write_file(os.path.basename(self.sentinel_config_path), self.sentinel_config())

    def started(self) -> None:
        super().started()
        if not self.sentinel:
            return
        self.addCleanup(setattr, self, "sentinel_process", None)
        admin = typing.cast(RedisAdmin, self.admin)
        self.sentinel_process = self.spawn_helper(
            "sentinel",
            [self.binary, self.sentinel_config_path, "--sentinel"],
            Callable(admin.sentinel_answers, "the Sentinel knows the master"),
        )

    def attached_namespace(self) -> Namespace:
        if self.sentinel and "sentinel" not in self.server_endpoint.ports:
            source = getattr(self.origin, "variable", "") or "the named daemon %r" % self.reuse
            raise AttachError(
                self.daemon_name,
                source,
                "it has no Sentinel, and sentinel=True asks for one (start it with "
                "`fixtures-daemons run %s --sentinel`, or use mode='spawn')" % self.daemon_name,
            )
        return super().attached_namespace()

    def server_namespace(self) -> Namespace:
        # Other people may use the server's database numbers: a key prefix
        # in the URL's database, never a whole database claimed or flushed.
        return KeyPrefix(self)

    def server_settings(self) -> dict[str, str]:
        settings = {
            "bind": self.requested_host,
            "port": str(self.port),
            "unixsocket": self.path("%s.sock" % self.daemon_name),
            "unixsocketperm": "700",
            "dir": self.temp_dir,
            "databases": str(self.databases),
            "daemonize": "no",
            "logfile": "",
            # A save point that never fires by itself: SIGTERM then saves,
            # which is what stopped() needs; cleanUp uses SIGKILL.
            "save": "86400 2147483647",
            "appendonly": "no",
        }
        if self.durable:
            settings.update(appendonly="yes", appendfsync="always")
        if self._password:
            settings["requirepass"] = self._password
        return settings

    def command_line(self) -> list[str]:
        command = [self.binary]
        for key, value in self.settings().items():
            command += ["--" + key, value]
        return command

    def probe(self) -> Probe:
        admin = self.admin
        return Callable(admin.answers, "PING answered with PONG")

    def build_endpoint(self) -> Endpoint:
        return (
            super()
            .build_endpoint()
            .replace(
                password=self._password,
                database="0",
                sockets={"main": self.path("%s.sock" % self.daemon_name)},
                extra=dict(
                    databases=str(self.settings().get("databases", self.databases)),
                    # The Sentinel asks for the password only when it was
                    # given (as pifpaf's): a random one guards the server.
                    **({"sentinel_auth": "1"} if self.sentinel and self.requested_password else {}),
                ),
            )
        )

    # -- what tests use ------------------------------------------------------

    @property
    def socket_path(self) -> str:
        return self.endpoint.socket

    @property
    def password(self) -> str:
        """The password the server requires (``""``: none)."""
        return self._endpoint.password if self._endpoint is not None else self._password

    @property
    def db(self) -> int:
        """The database number this fixture owns."""
        return int(self.endpoint.database or 0)

    @property
    def key_prefix(self) -> str:
        """Set when this fixture shares a server whose every database number
        was taken: prefix your keys with it."""
        return self.endpoint.key_prefix

    def command(self, *args: str, db: int | None = None) -> object:
        """Run one command (in this fixture's database, or ``db``) through
        the built-in minimal client."""
        return typing.cast(RedisAdmin, self.admin).command(*args, db=self.db if db is None else db)

    @property
    def sentinel_port(self) -> int | None:
        """The Sentinel's port; None when the server has no Sentinel."""
        return self.endpoint.ports.get("sentinel")

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """``[(host, port)]`` of the Sentinel, for ``redis.sentinel.Sentinel``;
        empty when the server has none."""
        port = self.sentinel_port
        return [(self.endpoint.host, port)] if port else []

    @property
    def sentinel_master(self) -> str:
        """The name the Sentinel watches the server under (``pifpaf``)."""
        return SENTINEL_MASTER

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        auth = ":%s@" % endpoint.password if endpoint.password else ""
        return "%s://%slocalhost:%d" % (self.pifpaf_scheme, auth, endpoint.port or 0)

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        exports = {"DB": endpoint.database or "0"}
        if "sentinel" in endpoint.ports:
            exports["SENTINEL_MASTER"] = SENTINEL_MASTER
        return exports


class RedisResource(DaemonResource):
    """A testresources manager sharing one :class:`RedisFixture`."""

    fixture_class = RedisFixture
