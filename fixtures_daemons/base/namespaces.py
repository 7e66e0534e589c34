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

Where the admin can (:attr:`~fixtures_daemons.base.admin.Admin.pools_databases`:
PostgreSQL), an attached :class:`Database` is not made while the test
waits: a small pool per server and template, made ahead by one background
thread of the process, is claimed with an atomic rename, and the database
is renamed by its cleanUp (which cuts its clients off: its name is free
again when cleanUp returns) and dropped in the background.
Every database the pool makes or hands over carries its owner (pid and
start time, in its name or its comment), so that whatever a killed process
leaves is dropped by the next process that pools on that server.
``$FIXTURES_DAEMONS_DATABASE_POOL`` sets the pool's size (0: no pool, no
background work).
"""

from __future__ import annotations

import atexit
import collections
import os
import threading
import time
import typing
import uuid

from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.errors import DaemonError, MisuseError, NotOwnedError
from fixtures_daemons.process import _reaper

if typing.TYPE_CHECKING:
    from fixtures_daemons.base.admin import Admin
    from fixtures_daemons.base.daemon import DaemonFixture

__all__ = [
    "Namespace",
    "WholeDaemon",
    "Database",
    "DatabaseNumber",
    "KeyPrefix",
    "pool_size",
    "settle_databases",
    "close_database_pools",
]

#: The variable that sets how many databases a pool makes ahead.
POOL_ENV = "FIXTURES_DAEMONS_DATABASE_POOL"
DEFAULT_POOL_SIZE = 2
MAX_POOL_SIZE = 16
#: How a pool database's name starts: then its owner's mark.
POOL_PREFIX = "fxd_pool_"
#: How a released database's name starts, until it is dropped: then its
#: owner's mark.
TRASH_PREFIX = "fxd_trash_"
#: How the comment of a database a fixture holds starts: then its owner's mark.
MARK_PREFIX = "fixtures-daemons owner "
#: Pending drops beyond which the background thread drops before it refills.
_MAX_PENDING_DROPS = 8
#: A pool that failed this many times in a row makes no more.
_MAX_FAILURES = 3
#: How long the idle background thread waits for work before it ends.
_IDLE_SECONDS = 5.0


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


def pool_size() -> int:
    """How many databases a pool makes ahead (``$FIXTURES_DAEMONS_DATABASE_POOL``,
    default 2; 0 turns pooling and its background work off)."""
    text = os.environ.get(POOL_ENV, "").strip()
    if not text:
        return DEFAULT_POOL_SIZE
    if not text.isdigit() or int(text) > MAX_POOL_SIZE:
        raise MisuseError(
            "",
            "$%s=%r" % (POOL_ENV, text),
            "expected a whole number from 0 (no pool) to %d" % MAX_POOL_SIZE,
        )
    return int(text)


_owner: tuple[int, str] = (0, "")


def owner_mark() -> str:
    """This process, as pool databases and held databases are marked:
    ``<pid>_<start time>`` (a reused pid has another start time)."""
    global _owner
    pid = os.getpid()
    if _owner[0] != pid:
        _owner = (pid, "%d_%s" % (pid, _reaper.start_time(pid)))
    return _owner[1]


def owner_alive(mark: str) -> bool:
    """Whether the process a mark names still runs (a mark we cannot read
    is taken as alive: what we do not understand, we leave alone)."""
    pid, _, start = mark.partition("_")
    if not pid.isdigit() or not start.isdigit():
        return True
    return _reaper.start_time(int(pid)) == start


def _owner_of(name: str, mark: str) -> str:
    if mark:
        return mark
    for prefix in (POOL_PREFIX, TRASH_PREFIX):
        if name.startswith(prefix):
            return name[len(prefix) :].rpartition("_")[0]
    return ""


def _server_key(admin: Admin) -> tuple[object, ...]:
    endpoint = admin.endpoint
    return (
        type(admin).__qualname__,
        endpoint.socket,
        endpoint.host,
        endpoint.port,
        endpoint.user,
        endpoint.pid,
        endpoint.pid_start,
    )


class _Pool:
    """The databases made ahead on one server from one template (None:
    empty ones)."""

    def __init__(self, admin: Admin, template: str | None, size: int) -> None:
        self.admin = admin.for_background()
        self.template = template
        self.size = size
        #: Ordered only from the second claim on: a one-off use pays nothing.
        self.active = False
        self.ready: list[str] = []
        self.making = 0
        self.failures = 0

    def wanted(self) -> bool:
        return (
            self.active
            and self.failures < _MAX_FAILURES
            and len(self.ready) + self.making < self.size
        )


class _Background:
    """This process's pools and the thread that fills them and drops what
    tests released. Everything is guarded by ``cond``."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pools: dict[tuple[object, ...], _Pool] = {}
        self.drops: collections.deque[tuple[Admin, str]] = collections.deque()
        self.sweeps: collections.deque[Admin] = collections.deque()
        self.swept: set[tuple[object, ...]] = set()
        self.running = 0
        self.thread: threading.Thread | None = None

    # -- called with cond held -------------------------------------------------

    def _start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._work, name="fixtures-daemons database pool", daemon=True
            )
            self.thread.start()
        self.cond.notify_all()

    def _sweep_once(self, admin: Admin) -> None:
        key = _server_key(admin)
        if key not in self.swept:
            self.swept.add(key)
            self.sweeps.append(admin.for_background())

    def _next(self) -> typing.Callable[[], None] | None:
        if len(self.drops) < _MAX_PENDING_DROPS:
            for pool in self.pools.values():
                if pool.wanted():
                    pool.making += 1
                    return lambda: self._make(pool)
        if self.sweeps:
            admin = self.sweeps.popleft()
            return lambda: self._sweep(admin)
        if self.drops:
            admin, name = self.drops.popleft()
            return lambda: self._drop(admin, name)
        return None

    def _idle(self) -> bool:
        return (
            not self.running
            and not self.drops
            and not self.sweeps
            and not any(pool.making or pool.wanted() for pool in self.pools.values())
        )

    # -- the thread ------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self.cond:
                task = self._next()
                if task is None:
                    self.cond.wait(_IDLE_SECONDS)
                    task = self._next()
                    if task is None:
                        self.thread = None
                        self.cond.notify_all()
                        return
                self.running += 1
            try:
                task()
            finally:
                with self.cond:
                    self.running -= 1
                    self.cond.notify_all()

    def _make(self, pool: _Pool) -> None:
        name = "%s%s_%s" % (POOL_PREFIX, owner_mark(), uuid.uuid4().hex[:8])
        try:
            pool.admin.create_pooled(name, pool.template)
        except Exception:  # noqa: BLE001 (claims fall back to creating; they report)
            with self.cond:
                pool.making -= 1
                pool.failures += 1
                if pool.failures >= _MAX_FAILURES:
                    self.pools = {k: p for k, p in self.pools.items() if p is not pool}
                self.drops.append((pool.admin, name))  # half made, or made late
            return
        with self.cond:
            pool.making -= 1
            pool.failures = 0
            if any(p is pool for p in self.pools.values()):
                pool.ready.append(name)
            else:  # closed meanwhile
                self.drops.append((pool.admin, name))

    def _drop(self, admin: Admin, name: str) -> None:
        try:
            admin.drop_database(name)
        except Exception:  # noqa: BLE001,S110 (the server is gone, and the database with it)
            pass

    def _sweep(self, admin: Admin) -> None:
        mine = owner_mark()
        try:
            found = admin.marked_databases((POOL_PREFIX, TRASH_PREFIX))
        except Exception:  # noqa: BLE001
            return
        for name, mark in found:
            owner = _owner_of(name, mark)
            if owner and owner != mine and not owner_alive(owner):
                self._drop(admin, name)

    # -- what fixtures call ----------------------------------------------------

    def claim(self, admin: Admin, template: str | None, name: str) -> bool:
        """Name a pool database ``name``; False when there is none to
        claim (the caller creates it)."""
        size = pool_size()
        if not size or not admin.pools_databases:
            return False
        key = _server_key(admin) + (template,)
        deadline = time.monotonic() + admin.timeout
        with self.cond:
            pool = self.pools.get(key)
            if pool is None:
                self.pools[key] = _Pool(admin, template, size)
                return False
            if not pool.active:
                pool.active = True
                self._sweep_once(admin)
                self._start()
            while not pool.ready and (pool.making or pool.wanted()):
                self._start()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
            if not pool.ready:
                return False
            pooled = pool.ready.pop(0)
            self._start()  # refill
        try:
            return admin.claim_database(pooled, name, owner_mark())
        except DaemonError:
            with self.cond:  # still there (the name was taken): back in the pool
                pool.ready.append(pooled)
            raise

    def release(self, admin: Admin, name: str) -> None:
        """Cut the database's clients off and free its name now (renamed
        to a trash name that carries our mark); drop it in the background."""
        if not pool_size() or not admin.pools_databases:
            admin.drop_database(name)
            return
        trash = "%s%s_%s" % (TRASH_PREFIX, owner_mark(), uuid.uuid4().hex[:8])
        admin.retire_database(name, trash)
        with self.cond:
            self.drops.append((admin.for_background(), trash))
            self._start()

    def settle(self, timeout: float) -> bool:
        """Wait until the background work is done; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self._idle():
                # Wake the thread too: it may be idling (up to
                # _IDLE_SECONDS) on work added since it last looked.
                self._start()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
            return True

    def close(self, timeout: float) -> bool:
        """Drop every database the pools hold, and what dead processes
        left on the servers pooled on; forget the pools."""
        with self.cond:
            for pool in self.pools.values():
                self.drops.extend((pool.admin, name) for name in pool.ready)
                pool.ready = []
                self.swept.discard(_server_key(pool.admin))
                self._sweep_once(pool.admin)
            self.pools = {}
        return self.settle(timeout)


_background = _Background()


def _after_fork_in_child() -> None:
    # The parent's pools are the parent's; its thread does not exist here.
    global _background
    _background = _Background()


os.register_at_fork(after_in_child=_after_fork_in_child)


def settle_databases(timeout: float = 60.0) -> bool:
    """Wait (at most ``timeout`` seconds) until the databases released by
    cleanUps are dropped and the pools are full; False on timeout."""
    return _background.settle(timeout)


def close_database_pools(timeout: float = 60.0) -> bool:
    """Drop the databases this process's pools made ahead, after the
    background drops; also drop what killed processes left on those
    servers. Pools start again at the next claims. Runs at exit."""
    return _background.close(timeout)


atexit.register(close_database_pools, 30.0)


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
        #: The name is ours to choose (the admin may choose it: see enter()).
        self.chosen = name is None
        self.exists = exists
        self.daemon_is_ours = daemon_is_ours
        self.template: str | None = None

    def enter(self, endpoint: Endpoint) -> Endpoint:
        admin = self.fixture.admin
        if self.chosen and not self.daemon_is_ours:
            self.name = admin.new_database_name()
        self.template = self.fixture.template_database()
        if self.exists and self.template is None:
            return endpoint.replace(database=self.name)
        if self.exists:
            admin.drop_database(self.name)
        if self.daemon_is_ours:
            admin.create_database(self.name, self.template)
        else:
            self._make(admin)
            self.fixture.addCleanup(self._remove)
        return endpoint.replace(database=self.name)

    def _make(self, admin: Admin) -> None:
        """Claim a pool database, else create it and mark it ours."""
        if _background.claim(admin, self.template, self.name):
            return
        admin.create_database(self.name, self.template)
        if admin.pools_databases:
            try:
                admin.mark_database(self.name, owner_mark())
            except BaseException:
                admin.drop_database(self.name)
                raise

    def _remove(self) -> None:
        _background.release(self.fixture.admin, self.name)

    def reset(self) -> None:
        admin = self.fixture.admin
        admin.drop_database(self.name)
        if self.daemon_is_ours:
            admin.create_database(self.name, self.template)
        else:
            self._make(admin)


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
        if endpoint.database.isdigit():  # a server's own database number
            self.number = int(endpoint.database)
        self.prefix = random_name("fxd-") + self.separator
        # Marked as ours where the admin keeps marks (a server the library
        # did not start), so that a killed runner's keys are found.
        self.fixture.admin.mark_prefix(self.prefix, self.number)
        self.fixture.addCleanup(self._delete)
        return endpoint.replace(key_prefix=self.prefix)

    def _delete(self) -> None:
        admin = self.fixture.admin
        admin.delete_prefixed(self.prefix, self.number)
        admin.unmark_prefix(self.prefix, self.number)

    def reset(self) -> None:
        admin = self.fixture.admin
        if not admin.delete_prefixed(self.prefix, self.number):
            admin.unmark_prefix(self.prefix, self.number)
            self.prefix = random_name("fxd-") + self.separator
            admin.mark_prefix(self.prefix, self.number)
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
