"""The admin of ZooKeeper servers: four-letter words over a socket to see
whether one serves, kazoo (the ``zookeeper`` extra, imported when needed)
for znodes."""

from __future__ import annotations

import contextlib
import socket
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.errors import AdminError, ClientLibraryMissing

if typing.TYPE_CHECKING:
    from kazoo.client import KazooClient  # type: ignore[import-untyped]

__all__ = ["EXTRA", "NOT_SERVING", "SERVING", "SERVING_END", "ZookeeperAdmin", "kazoo"]

#: The Python extra that brings kazoo.
EXTRA = "fixtures-daemons[zookeeper]"
#: What ``srvr`` answers once the server serves requests (``ruok`` answers
#: ``imok`` as soon as the port is open, before the database is loaded),
#: the last line of that answer, and its answer before.
SERVING = "Zookeeper version:"
SERVING_END = "Node count:"
NOT_SERVING = "not currently serving requests"


def kazoo(name: str, request: str) -> typing.Any:
    try:
        from kazoo import client, exceptions  # type: ignore[import-untyped]
    except ImportError:
        raise ClientLibraryMissing(name, request, "kazoo", EXTRA) from None
    return client, exceptions


class ZookeeperAdmin(Admin):
    """One ZooKeeper server: four-letter words over a socket to see whether
    it serves, kazoo (imported here, when needed) for znodes. A chroot is
    a "database": the znode ``/<name>``."""

    def four_letter(
        self, word: str, complete: typing.Callable[[str], bool] = lambda reply: False
    ) -> str:
        """Send a four-letter command (it must be whitelisted); return its
        reply, read until the server closes the connection or
        ``complete(reply)``."""
        address = (self.endpoint.host, self.endpoint.port or 0)
        with socket.create_connection(address, timeout=min(self.timeout, 5.0)) as sock:
            sock.sendall(word.encode())
            reply = ""
            while not complete(reply):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk.decode("utf-8", "replace")
        return reply

    def answers(self) -> bool:
        """True once ``srvr`` says the server serves requests."""

        def complete(reply: str) -> bool:
            # ZooKeeper 3.8 may leave the connection open after answering
            # ``srvr`` while it starts (an exception in its close): read
            # the reply, not until the end of the connection.
            last = reply.rstrip("\n").rsplit("\n", 1)[-1]
            done = NOT_SERVING in reply or last.startswith(SERVING_END)
            return done and reply.endswith("\n")

        try:
            return self.four_letter("srvr", complete).startswith(SERVING)
        except OSError:
            return False

    @contextlib.contextmanager
    def client(self, request: str) -> typing.Iterator[KazooClient]:
        """A connected kazoo client on the whole server, for one request;
        kazoo's errors become :class:`~fixtures_daemons.AdminError`."""
        client, exceptions = kazoo(self.name, request)
        endpoint = self.endpoint
        zk = client.KazooClient(
            hosts="%s:%d" % (endpoint.host, endpoint.port or 2181),
            timeout=max(self.timeout, 1.0),
            connection_retry={"max_tries": 0},
            command_retry={"max_tries": 0},
            auth_data=self.auth_data() or None,
        )
        try:
            zk.start(timeout=self.timeout)
            yield zk
        except exceptions.KazooException as exc:
            raise AdminError(self.name, request, "%s: %s" % (type(exc).__name__, exc)) from exc
        except zk.handler.timeout_exception as exc:
            raise AdminError(self.name, request, "no answer within %.1f s" % self.timeout) from exc
        finally:
            zk.stop()
            zk.close()

    def auth_data(self) -> list[tuple[str, str]]:
        """kazoo's ``auth_data`` for the session: none on our own servers."""
        return []

    def flush(self) -> None:
        """Delete every znode but ZooKeeper's own ``/zookeeper``."""
        with self.client("delete every znode") as zk:
            for child in zk.get_children("/"):
                if child != "zookeeper":
                    zk.delete("/" + child, recursive=True)

    def database_exists(self, name: str) -> bool:
        with self.client("exists /%s" % name) as zk:
            return zk.exists("/" + name) is not None

    def create_database(self, name: str, template: str | None = None) -> None:
        with self.client("create /%s" % name) as zk:
            zk.create("/" + name)

    def drop_database(self, name: str) -> None:
        _, exceptions = kazoo(self.name, "delete /%s" % name)
        with self.client("delete /%s" % name) as zk:
            try:
                zk.delete("/" + name, recursive=True)
            except exceptions.NoNodeError:
                pass
