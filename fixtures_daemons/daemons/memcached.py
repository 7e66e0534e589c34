"""memcached, stopped in milliseconds."""

from __future__ import annotations

import signal
import socket
import typing
import uuid

from fixtures_daemons.binaries import Executable
from fixtures_daemons.daemon import DaemonFixture
from fixtures_daemons.probes import Callable, Probe
from fixtures_daemons.resources import DaemonResource

__all__ = ["MemcachedFixture", "MemcachedResource"]


class MemcachedFixture(DaemonFixture):
    """A memcached server on loopback TCP (UDP off).

    memcached takes a full second to exit on SIGTERM; its data is thrown
    away anyway, so cleanUp kills it (about 1 ms). It is a cache: like a
    real memcached restart, :meth:`stopped` brings it back empty (its warm
    restart, ``--memory-file``, refuses its own metadata in 1.6.18 and makes
    every start 30 ms slower).

    :param memory: the cache size in megabytes.
    :param threads: worker threads.

    Attributes: ``url`` (``memcached://host:port``), ``memory``,
    ``key_prefix`` (empty, or when attached to a shared server this
    fixture's own prefix: put it in front of your keys).
    """

    daemon_name = "memcached"
    executable = Executable(
        names=("memcached",),
        packages={"Debian/Ubuntu": "memcached", "Homebrew": "memcached"},
        env_var="FIXTURES_DAEMONS_MEMCACHED",
    )
    refuses_root = True
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGKILL

    def __init__(self, *, memory: int = 64, threads: int = 2, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self.memory = memory
        self.threads = threads
        self.key_prefix = ""

    def _settings(self) -> dict[str, str]:
        return {
            "listen": self.host,
            "port": str(self.port),
            "udp-port": "0",
            "memory-limit": str(self.memory),
            "threads": str(self.threads),
        }

    def _command(self) -> list[str]:
        return [self.binary] + ["--%s=%s" % item for item in self.settings().items()]

    def command(self, line: str) -> str:
        """Send one text-protocol command; return the first reply line."""
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(line.encode() + b"\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode("utf-8", "replace").split("\r\n", 1)[0]

    def _probe(self) -> Probe:
        return Callable(lambda: self.command("version").startswith("VERSION"), "version answered")

    @property
    def url(self) -> str:
        return "memcached://%s:%d" % (self.host, self.port)

    def _pifpaf_url(self) -> str:
        return "memcached://localhost:%d" % self.port

    def _extra_exports(self) -> dict[str, str]:
        return {"KEY_PREFIX": self.key_prefix}

    def _enter_namespace(self) -> None:
        # memcached has no databases: an attached fixture gets a key prefix.
        self.key_prefix = "fxd-%s:" % uuid.uuid4().hex[:12]

    def reset(self) -> None:
        """flush_all (every item invalidated) when this fixture started the
        server; when attached, a new key prefix, which hides the old keys
        from this fixture without touching anyone else's."""
        if self.attached:
            self._enter_namespace()
        else:
            self.command("flush_all")


class MemcachedResource(DaemonResource):
    """A testresources manager sharing one :class:`MemcachedFixture`."""

    fixture_class = MemcachedFixture
