"""Namespaces: what one fixture owns inside a daemon.

A fixture that started its daemon owns all of it (:class:`WholeDaemon`).
A fixture attached to a shared daemon (started by ``fixtures-daemons run``,
a named daemon, a testresources resource) owns a namespace inside it,
made on setUp and removed on cleanUp, so that tests sharing the daemon
never see each other's data: an SQL database copied from the template
(:class:`Database`; also a vhost or a chroot, for the daemons that have
those), a Redis database number (:class:`DatabaseNumber`), a key prefix
(:class:`KeyPrefix`). ``reset()`` empties what the fixture owns and
nothing else.

A namespace narrows the fixture's :class:`~fixtures_daemons.Endpoint`
(its ``database`` or ``key_prefix``), so URLs and exported variables name
the namespace, not the whole daemon. Names are random: stestr gives
workers no id to build them from. Every operation goes through the
daemon's :class:`~fixtures_daemons.base.admin.Admin`.
"""

from __future__ import annotations

import typing
import uuid

from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.errors import NotOwnedError

if typing.TYPE_CHECKING:
    from fixtures_daemons.base.daemon import DaemonFixture

__all__ = ["Namespace", "WholeDaemon", "Database", "DatabaseNumber", "KeyPrefix"]


def random_name(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:12]


class Namespace:
    """Base class: what one fixture owns inside a daemon.

    :param fixture: the fixture that owns it; its ``admin`` does the work.
    """

    #: The endpoint fields this kind of namespace may set (so they are
    #: always exported, empty when unset, and a nested fixture never leaves
    #: an outer one's value visible).
    narrows: typing.ClassVar[tuple[str, ...]] = ()

    def __init__(self, fixture: DaemonFixture) -> None:
        self.fixture = fixture

    def enter(self, endpoint: Endpoint) -> Endpoint:
        """Make the namespace on the daemon at ``endpoint``; return the
        endpoint narrowed to it. Its removal is registered on the fixture."""
        return endpoint

    def reset(self) -> None:
        """Empty what the namespace holds, cheaply."""
        raise NotImplementedError("%s.reset" % type(self).__name__)


class WholeDaemon(Namespace):
    """The whole daemon: what a fixture that started it owns.

    :param shared: True when others use the daemon too (a fixture told to
        attach to a daemon that has no namespaces): then :meth:`reset` would
        empty their data as well, and refuses.
    """

    def __init__(self, fixture: DaemonFixture, shared: bool = False) -> None:
        super().__init__(fixture)
        self.shared = shared

    def reset(self) -> None:
        if self.shared:
            raise NotOwnedError(
                self.fixture.daemon_name,
                "reset()",
                "this fixture shares the whole daemon with others (%s has no namespaces); "
                "use mode='spawn' for a daemon of its own" % self.fixture.daemon_name,
            )
        self.fixture.admin.flush()


class Database(Namespace):
    """A named space (an SQL database) of its own, a copy of the fixture's
    template when it has one.

    :param name: its name; random (``test_...``) when None.
    :param exists: the daemon was just started and already has ``name``
        (PostgreSQL's ``postgres``): kept as it is without a template, else
        replaced by a copy of the template.
    :param daemon_is_ours: the fixture started the daemon, so the database
        goes with it: no drop on cleanUp.
    """

    narrows = ("database",)

    def __init__(
        self,
        fixture: DaemonFixture,
        name: str | None = None,
        exists: bool = False,
        daemon_is_ours: bool = False,
    ) -> None:
        super().__init__(fixture)
        self.name = name or random_name("test_")
        self.exists = exists
        self.daemon_is_ours = daemon_is_ours
        self.template: str | None = None

    def enter(self, endpoint: Endpoint) -> Endpoint:
        admin = self.fixture.admin
        self.template = self.fixture.template_database()
        if self.exists and self.template is None:
            return endpoint.replace(database=self.name)
        if self.exists:
            admin.drop_database(self.name)
        admin.create_database(self.name, self.template)
        if not self.daemon_is_ours:
            self.fixture.addCleanup(admin.drop_database, self.name)
        return endpoint.replace(database=self.name)

    def reset(self) -> None:
        admin = self.fixture.admin
        admin.drop_database(self.name)
        admin.create_database(self.name, self.template)


class KeyPrefix(Namespace):
    """A key prefix of its own; its keys are deleted on cleanUp where the
    daemon can list them, and on a daemon that cannot (memcached) a reset
    moves to a new prefix, which hides the old keys."""

    narrows = ("key_prefix",)

    #: The database number the keys live in (Redis).
    number = 0
    #: What ends the prefix: a topic level's ``/`` (MQTT), a subject
    #: token's ``.`` (NATS).
    separator = ":"

    def enter(self, endpoint: Endpoint) -> Endpoint:
        self.prefix = random_name("fxd-") + self.separator
        self.fixture.addCleanup(self._delete)
        return endpoint.replace(key_prefix=self.prefix)

    def _delete(self) -> None:
        self.fixture.admin.delete_prefixed(self.prefix, self.number)

    def reset(self) -> None:
        if not self.fixture.admin.delete_prefixed(self.prefix, self.number):
            self.prefix = random_name("fxd-") + self.separator
            self.fixture.narrow(key_prefix=self.prefix)


class DatabaseNumber(Namespace):
    """A numbered database of its own (Redis), claimed atomically so that
    two workers never get the same; when every number is taken, a
    :class:`KeyPrefix` in database 0 instead."""

    narrows = ("database", "key_prefix")

    def enter(self, endpoint: Endpoint) -> Endpoint:
        admin = self.fixture.admin
        token = uuid.uuid4().hex
        self.inner: KeyPrefix | None = None
        for number in range(1, admin.database_count()):
            if admin.claim_number(number, token):
                self.number = number
                admin.flush_number(number)  # a crashed holder's data
                self.fixture.addCleanup(admin.release_number, number, token)
                return endpoint.replace(database=str(number), key_prefix="")
        self.number = 0
        self.inner = KeyPrefix(self.fixture)
        return self.inner.enter(endpoint.replace(database="0"))

    def reset(self) -> None:
        if self.inner is not None:
            self.inner.reset()
        else:
            self.fixture.admin.flush_number(self.number)
