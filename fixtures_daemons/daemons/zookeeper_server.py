"""ZooKeeper servers the library did not start: a chroot per fixture.

Reached through kazoo (the ``zookeeper`` extra), as ``zookeeper://host:2181``
(``zookeeper://user:password@host:2181`` adds ``digest`` authentication to
the session). A fixture gets a chroot, the znode ``/test_<random>``,
whose data is its maker's mark (:mod:`fixtures_daemons.base.makers`);
cleanUp deletes it with everything under it, nothing else; the first
fixture of a process deletes the chroots whose maker is dead. The server's
four-letter words are not used: a managed server may not allow them.
"""

from __future__ import annotations

from fixtures_daemons.base.endpoint import redact
from fixtures_daemons.base.makers import left, mark
from fixtures_daemons.daemons.zookeeper_admin import ZookeeperAdmin, kazoo
from fixtures_daemons.errors import AdminError, ServerError

__all__ = ["ZookeeperServerAdmin"]


class ZookeeperServerAdmin(ZookeeperAdmin):
    """Chroots on a ZooKeeper server the library did not start, through
    kazoo."""

    def auth_data(self) -> list[tuple[str, str]]:
        endpoint = self.endpoint
        if not endpoint.user:
            return []
        return [("digest", "%s:%s" % (endpoint.user, endpoint.password))]

    def answers(self) -> bool:
        try:
            with self.client("exists /") as zk:
                return zk.exists("/") is not None
        except AdminError:
            return False

    def check_server(self, source: str) -> None:
        url = redact(self.endpoint.url)
        try:
            with self.client("connect") as zk:
                zk.exists("/")
        except AdminError as exc:
            lowered = exc.reason.lower()
            if "auth" in lowered:
                reason, hint = (
                    "it refuses the credentials (%s)" % exc.reason,
                    ("check the user and password in the URL"),
                )
            else:
                reason, hint = "it does not answer (%s)" % exc.reason, "check the host and port"
            raise ServerError(self.name, source, url, reason, hint) from None

    def flush(self) -> None:
        self._lacks("flush()", "way to be emptied that spares other people's znodes")

    def create_database(self, name: str, template: str | None = None) -> None:
        self.sweep()
        with self.client("create /%s" % name) as zk:
            zk.create("/" + name, mark().encode())

    def leftovers(self, remove: bool = False, templates: bool = False) -> list[str]:
        _, exceptions = kazoo(self.name, "list the chroots fixtures made")
        found = []
        with self.client("list the chroots fixtures made") as zk:
            for child in zk.get_children("/"):
                try:
                    data, _ = zk.get("/" + child)
                except exceptions.NoNodeError:
                    continue
                if data and left(data.decode("utf-8", "replace")):
                    found.append(child)
            if remove:
                for child in found:
                    try:
                        zk.delete("/" + child, recursive=True)
                    except exceptions.KazooException:
                        pass  # the next sweep
        return found
