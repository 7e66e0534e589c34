"""Redis, and Valkey (its fork) by parameter: one module, two programs."""

from __future__ import annotations

import signal
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import DatabaseNumber
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.daemons import _resp
from fixtures_daemons.errors import AdminError
from fixtures_daemons.process.probes import Callable, Probe

__all__ = ["RedisFixture", "RedisResource", "RedisAdmin"]

SERVERS = {
    "redis": Executable(
        names=("redis-server",),
        packages={"Debian/Ubuntu": "redis-server", "Homebrew": "redis"},
        env_var="FIXTURES_DAEMONS_REDIS_SERVER",
    ),
    "valkey": Executable(
        names=("valkey-server",),
        packages={"Debian/Ubuntu": "valkey-server", "Homebrew": "valkey"},
        env_var="FIXTURES_DAEMONS_VALKEY_SERVER",
    ),
}


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

    def flush(self) -> None:
        self.command("FLUSHALL")

    def database_count(self) -> int:
        return int(self.endpoint.extra.get("databases", "16"))

    # The claims are keys in database 0, set only if absent, so two workers
    # never get the same number.
    def claim_number(self, number: int, token: str) -> bool:
        return self.command("SET", self._CLAIM % number, token, "NX") == "OK"

    def release_number(self, number: int, token: str) -> None:
        self.command("FLUSHDB", db=number)
        if self.command("GET", self._CLAIM % number) == token.encode():
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
    """A Redis (or Valkey) server on loopback and on a unix socket.

    It is ready when it answers PING. cleanUp kills it (its data is thrown
    away); :meth:`stopped` shuts it down with a save, so the data is back
    after the restart.

    :param server: ``redis`` or ``valkey``: which program to run.
    :param password: require this password (``requirepass``).
    :param databases: how many numbered databases it has.

    Attributes: ``url`` (``redis://[:password@]host:port/db``),
    ``socket_path``, ``password``, ``databases``, ``db`` (the database
    number this fixture owns: 0, or another when attached), ``key_prefix``
    (set when attached and every database number was taken: prefix your
    keys with it).
    """

    daemon_name = "redis"
    executable = SERVERS["redis"]
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGTERM  # shuts down with a SAVE (a save point is set)
    scheme = "redis"
    namespace = DatabaseNumber
    admin_class = RedisAdmin

    def __init__(
        self,
        *,
        server: str = "redis",
        password: str | None = None,
        databases: int = 16,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        if server not in SERVERS:
            raise ValueError("server must be one of %s, not %r" % (", ".join(SERVERS), server))
        self.server = server
        self.daemon_name = server
        self.executable = SERVERS[server]
        self.password = password
        self.databases = databases

    def server_settings(self) -> dict[str, str]:
        settings = {
            "bind": self.requested_host,
            "port": str(self.port),
            "unixsocket": self.path("redis.sock"),
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
        if self.password:
            settings["requirepass"] = self.password
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
                password=self.password or "",
                database="0",
                sockets={"main": self.path("redis.sock")},
                extra={"databases": str(self.settings().get("databases", self.databases))},
            )
        )

    # -- what tests use ------------------------------------------------------

    @property
    def socket_path(self) -> str:
        return self.endpoint.socket

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

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        auth = ":%s@" % endpoint.password if endpoint.password else ""
        return "redis://%slocalhost:%d" % (auth, endpoint.port or 0)

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        return {"DB": endpoint.database or "0"}


class RedisResource(DaemonResource):
    """A testresources manager sharing one :class:`RedisFixture`."""

    fixture_class = RedisFixture
