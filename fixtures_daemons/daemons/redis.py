"""Redis, and Valkey (its fork) by parameter: one module, two programs."""

from __future__ import annotations

import signal
import typing

from fixtures_daemons import _resp
from fixtures_daemons.binaries import Executable
from fixtures_daemons.daemon import DaemonFixture
from fixtures_daemons.probes import Callable, Probe

__all__ = ["RedisFixture"]

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

    Attributes: ``url`` (``redis://[:password@]host:port/0``),
    ``socket_path``, ``password``, ``databases``.
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

    def command(self, *args: str) -> object:
        """Run one command through the built-in minimal client."""
        commands: list[tuple[str, ...]] = []
        if self.password:
            commands.append(("AUTH", self.password))
        commands.append(tuple(args))
        return _resp.command(self.socket_path, *commands)[-1]

    def _probe(self) -> Probe:
        return Callable(lambda: self.command("PING") == "PONG", "PING answered with PONG")

    @property
    def url(self) -> str:
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s%s:%d/0" % (auth, self.host, self.port)

    def _pifpaf_url(self) -> str:
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%slocalhost:%d" % (auth, self.port)

    def _extra_exports(self) -> dict[str, str]:
        return {"SOCKET": self.socket_path}

    def reset(self) -> None:
        """FLUSHALL: every database emptied."""
        self.command("FLUSHALL")
