"""memcached, killed at cleanUp: its data is thrown away."""

from __future__ import annotations

import signal
import socket
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import KeyPrefix
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.process.probes import Callable, Probe

__all__ = ["MemcachedFixture", "MemcachedResource", "MemcachedAdmin"]


class MemcachedAdmin(Admin):
    """A memcached server, through its text protocol. It cannot list its
    keys, so a key prefix is retired, not deleted."""

    def command(self, line: str) -> str:
        """Send one text-protocol command; return the first reply line."""
        address = (self.endpoint.host, self.endpoint.port or 0)
        with socket.create_connection(address, timeout=min(self.timeout, 5.0)) as sock:
            sock.sendall(line.encode() + b"\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode("utf-8", "replace").split("\r\n", 1)[0]

    def answers(self) -> bool:
        try:
            return self.command("version").startswith("VERSION")
        except OSError:
            return False

    def flush(self) -> None:
        self.command("flush_all")


class MemcachedFixture(DaemonFixture):
    """A memcached server on loopback TCP (UDP off).

    memcached is slow to exit on SIGTERM; its data is thrown away anyway,
    so cleanUp kills it. It is a cache: like a real memcached restart,
    :meth:`stopped` brings it back empty (its warm restart,
    ``--memory-file``, refuses its own metadata in 1.6.18 and slows every
    start). See :doc:`/design`, 'Where the time goes'.

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
    scheme = "memcached"
    namespace = KeyPrefix
    admin_class = MemcachedAdmin

    def __init__(self, *, memory: int = 64, threads: int = 2, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self.memory = memory
        self.threads = threads

    def server_settings(self) -> dict[str, str]:
        return {
            "listen": self.requested_host,
            "port": str(self.port),
            "udp-port": "0",
            "memory-limit": str(self.memory),
            "threads": str(self.threads),
        }

    def command_line(self) -> list[str]:
        return [self.binary] + ["--%s=%s" % item for item in self.settings().items()]

    def probe(self) -> Probe:
        return Callable(self.admin.answers, "version answered")

    # -- what tests use ------------------------------------------------------

    @property
    def key_prefix(self) -> str:
        return self.endpoint.key_prefix

    def command(self, line: str) -> str:
        """Send one text-protocol command; return the first reply line."""
        return typing.cast(MemcachedAdmin, self.admin).command(line)

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        return "memcached://localhost:%d" % (endpoint.port or 0)


class MemcachedResource(DaemonResource):
    """A testresources manager sharing one :class:`MemcachedFixture`."""

    fixture_class = MemcachedFixture
