"""Redis, and Valkey (its fork) by parameter: one module, two programs."""

from __future__ import annotations

import signal
import typing
import uuid

from fixtures_daemons import _resp
from fixtures_daemons.binaries import Executable
from fixtures_daemons.daemon import DaemonFixture
from fixtures_daemons.probes import Callable, Probe
from fixtures_daemons.resources import DaemonResource

__all__ = ["RedisFixture", "RedisResource"]

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
        self.db = 0
        self.key_prefix = ""

    def _settings(self) -> dict[str, str]:
        settings = {
            "bind": self.host,
            "port": str(self.port),
            "unixsocket": self.socket_path,
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

    @property
    def socket_path(self) -> str:
        return self.path("redis.sock")

    def _command(self) -> list[str]:
        command = [self.binary]
        for key, value in self.settings().items():
            command += ["--" + key, value]
        return command

    def command(self, *args: str, db: int = 0) -> object:
        """Run one command (in database ``db``) through the built-in
        minimal client."""
        commands: list[tuple[str, ...]] = []
        if self.password:
            commands.append(("AUTH", self.password))
        if db:
            commands.append(("SELECT", str(db)))
        commands.append(tuple(args))
        return _resp.command(self.socket_path, *commands)[-1]

    def _probe(self) -> Probe:
        return Callable(lambda: self.command("PING") == "PONG", "PING answered with PONG")

    @property
    def url(self) -> str:
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s%s:%d/%d" % (auth, self.host, self.port, self.db)

    def _pifpaf_url(self) -> str:
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%slocalhost:%d" % (auth, self.port)

    def _extra_exports(self) -> dict[str, str]:
        return {"SOCKET": self.socket_path, "DB": str(self.db), "KEY_PREFIX": self.key_prefix}

    _CLAIM = "fixtures-daemons:db:%d"

    def _enter_namespace(self) -> None:
        # Attached to a shared server: claim a free database number (the
        # claims are keys in database 0, set only if absent, so two workers
        # never get the same), or, when all are taken, a key prefix.
        token = uuid.uuid4().hex
        self.db, self.key_prefix = 0, ""
        for number in range(1, self.databases):
            if self.command("SET", self._CLAIM % number, token, "NX") == "OK":
                self.db = number
                self.command("FLUSHDB", db=number)
                self.addCleanup(self._release, number, token)
                return
        self.key_prefix = "fxd:%s:" % token[:12]
        self.addCleanup(self._delete_prefixed)

    def _release(self, number: int, token: str) -> None:
        self.command("FLUSHDB", db=number)
        if self.command("GET", self._CLAIM % number) == token.encode():
            self.command("DEL", self._CLAIM % number)

    def _delete_prefixed(self) -> None:
        cursor = "0"
        while True:
            reply = typing.cast(
                list[typing.Any],
                self.command("SCAN", cursor, "MATCH", self.key_prefix + "*", "COUNT", "1000"),
            )
            cursor, keys = reply[0].decode(), reply[1]
            if keys:
                self.command("DEL", *(key.decode() for key in keys))
            if cursor == "0":
                return

    def reset(self) -> None:
        """Empty what this fixture owns: every database (FLUSHALL) when it
        started the server; its database (FLUSHDB) or its prefixed keys when
        attached to a shared one."""
        if not self.attached:
            self.command("FLUSHALL")
        elif self.key_prefix:
            self._delete_prefixed()
        else:
            self.command("FLUSHDB", db=self.db)


class RedisResource(DaemonResource):
    """A testresources manager sharing one :class:`RedisFixture`."""

    fixture_class = RedisFixture
