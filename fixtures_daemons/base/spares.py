"""Spare servers: the next instance of a daemon, started before it is asked for.

Most of a fresh daemon's setUp is waiting for the program to start (see
doc/source/design.rst, 'Spare servers'). So from the second spawned
instance of the same fixture in a process on, the next one is set up in a
background thread while the test runs: a fixture of the same class, made
from the same arguments, in its own private temp dir, on its own reserved
ports, answering. The next setUp with the same arguments and environment
*adopts* it: it takes over the spare's state and its cleanups, then
exports its variables as a fresh one would. Nothing is shared between two
instances: the spare was set up for nobody before, from a fresh copy of
the template.

The rules:

* at most one spare per fixture kind (class, arguments, user), so spares
  never pile up: one is ordered after each setUp that did not find one
  ready, and after each claim;
* none for a one-off use (the CLI's), a fixture with ``settings=``,
  ``args=`` or ``durable=True``, a pinned port, a ``temp_root`` the caller
  chose (it may remove it), an argument that is not plain data (a
  callable, another fixture), a daemon that declares
  ``spare_servers = False``, or with ``$FIXTURES_DAEMONS_SPARES=0``;
* a spare set up under other environment variables than the claim's (the
  variables fixtures export aside) is not used, nor one whose daemon
  died meanwhile: they are cleaned up, and setUp starts a fresh one;
* :func:`close_spare_servers` stops the spares and waits for the stops
  under way; at exit, the watchdog does it (it stops whatever the process
  watched once the process has exited, however it exited), so that an
  exit never waits for a spare still starting; a forked child never sees
  its parent's spares.

The cleanUp of a fixture that adopted a spare signals its daemon and
returns: the same thread waits for the daemon to exit, then releases its
ports and removes its dir. So a spare's whole life, but for the claim and
the signal, is off the test's path.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import typing

from fixtures_daemons.errors import MisuseError
from fixtures_daemons.process.waiting import Deadline

if typing.TYPE_CHECKING:
    from fixtures_daemons.base.daemon import DaemonFixture

__all__ = ["SPARES_ENV", "claim", "order", "retire", "note_exports", "close_spare_servers"]

#: ``0`` turns spare servers off.
SPARES_ENV = "FIXTURES_DAEMONS_SPARES"

#: Variables a fixture of this process exported: they change from test to
#: test and say nothing about how a spare is set up.
_exported: set[str] = set()

_PLAIN = (str, int, float, bool, type(None))


def _plain(value: object) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _file_stamp(value: object) -> object:
    """A path argument (a template SQL file) is keyed by its file too: a
    spare set up from an older version of the file is not the same."""
    if isinstance(value, str) and os.sep in value:
        try:
            st = os.stat(value)
        except OSError:
            return value
        return (value, st.st_mtime_ns, st.st_size)
    return value


def spares_wanted() -> bool:
    """False when ``$FIXTURES_DAEMONS_SPARES`` turns spare servers off."""
    text = os.environ.get(SPARES_ENV, "").strip().lower()
    if text in ("", "1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise MisuseError(
        "", "$%s=%r" % (SPARES_ENV, text), "expected 1 (spare servers, the default) or 0 (none)"
    )


def note_exports(names: typing.Iterable[str]) -> None:
    """Record the names of variables a fixture exported."""
    _exported.update(names)


def _environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k not in _exported))


def _key(fixture: DaemonFixture) -> tuple[object, ...] | None:
    """What makes two fixtures interchangeable, or None when ``fixture``
    gets no spare."""
    if fixture.is_spare or not type(fixture).spare_servers:
        return None
    if not spares_wanted():
        return None
    arguments = dict(fixture.arguments)
    arguments.pop("export_env", None)
    if (
        fixture.extra_settings
        or fixture.extra_args
        or fixture.durable
        or fixture.requested_port is not None
        or fixture.temp_root is not None
        or not all(_plain(value) for value in arguments.values())
    ):
        return None
    return (
        type(fixture),
        tuple(sorted((k, repr(_file_stamp(v))) for k, v in arguments.items())),
        os.geteuid(),
    )


class _Spare:
    """A fixture being set up in the background, then ready to adopt."""

    def __init__(self, fixture: DaemonFixture, environment: tuple[tuple[str, str], ...]) -> None:
        self.fixture = fixture
        self.environment = environment
        self.started = False
        self.done = threading.Event()
        self.ok = False

    def set_up(self) -> None:
        # The setUp reads the variables as they are when it runs (the temp
        # root, the user, the daemon's own environment): made under others
        # than those it was ordered with, it is not the spare it should be.
        self.started = True
        try:
            if _environment() == self.environment:
                self.fixture.setUp()
                self.ok = True
                if _environment() != self.environment:
                    self.discard()
        except BaseException:  # the claim starts a fresh one, which says why
            self.ok = False
        finally:
            self.done.set()

    def discard(self) -> None:
        if self.ok:
            self.ok = False
            # A spare that died idle: nobody used it, nobody to tell.
            _quietly(self.fixture.cleanUp)


class _Pool:
    """This process's spares, and the thread that sets them up and cleans
    up those not used."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cond = threading.Condition()
        self.spares: dict[tuple[object, ...], _Spare] = {}
        self.uses: dict[tuple[object, ...], int] = {}
        self.work: list[typing.Callable[[], None]] = []
        self.closed = False
        self.abandoned = False  # at exit: the watchdog does the rest
        self.thread: threading.Thread | None = None

    def submit(self, job: typing.Callable[[], None]) -> None:
        with self.cond:
            self.work.append(job)
            self.cond.notify()
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="fixtures-daemons-spares", daemon=True
                )
                self.thread.start()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.work and not self.closed:
                    self.cond.wait()
                if not self.work or self.abandoned:
                    return
                job = self.work.pop(0)
            job()

    def close(self) -> None:
        """Stop the thread after the work it has, then clean up every
        spare (at exit)."""
        with self.cond:
            self.closed = True
            self.cond.notify()
            thread = self.thread
            spares = list(self.spares.values())
            self.spares.clear()
        if thread is not None:
            thread.join(max((s.fixture.timeout for s in spares), default=60.0))
        for spare in spares:
            spare.done.wait(0)
            spare.discard()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _get_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = _Pool()  # a forked child's own: the parent's spares are not its
        return _pool


def claim(fixture: DaemonFixture) -> DaemonFixture | None:
    """The spare set up for ``fixture``'s kind, ready and answering, or
    None. Waits for one still starting (it started earlier than a fresh
    one would), within the fixture's timeout."""
    key = _key(fixture)
    if key is None:
        return None
    pool = _get_pool()
    with pool.cond:
        pool.uses[key] = pool.uses.get(key, 0) + 1
        spare = pool.spares.pop(key, None)
    if spare is None:
        return None
    usable = spare.environment == _environment()
    if usable and not spare.done.wait(Deadline(fixture.timeout).remaining()):
        usable = False
    process = spare.fixture.process if spare.ok else None
    if not usable or process is None or not process.running:
        pool.submit(spare.discard)
        return None
    return spare.fixture


def order(fixture: DaemonFixture) -> None:
    """After ``fixture``'s setUp: have the next instance of its kind set up
    in the background, from its second use in this process on."""
    key = _key(fixture)
    if key is None:
        return
    pool = _get_pool()
    with pool.cond:
        if pool.closed or pool.uses.get(key, 0) < 2 or key in pool.spares:
            return
        made = type(fixture)(**dict(fixture.arguments, export_env=False))
        made.is_spare = True
        # Its own daemon, whatever another fixture exports meanwhile.
        made.mode = "spawn"
        spare = _Spare(made, _environment())
        pool.spares[key] = spare
    pool.submit(spare.set_up)


def retire(spare: DaemonFixture) -> None:
    """The cleanUp of a fixture that adopted ``spare``: signal its daemon
    and return; the pool's thread waits for it to exit, then releases its
    ports and removes its dir (the watchdog does it if this process dies
    first). A daemon that had died on its own is cleaned up here and now,
    so that its death is reported to the test."""
    process = spare.process
    if process is None or not process.request_stop():
        spare.cleanUp()
        return
    _get_pool().submit(lambda: _quietly(spare.cleanUp))


def _quietly(call: typing.Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        call()


def close_spare_servers() -> None:
    """Finish the cleanUps under way and clean up this process's spare
    servers, waiting for each; later fixtures start afresh. Not needed at
    exit (the watchdog stops what is left), but before checking that
    nothing of a test runs any more."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None and pool.pid == os.getpid():
        pool.close()


#: Seconds an exiting process waits for a spare still starting.
EXIT_WAIT = 1.0


def _at_exit() -> None:
    """Signal the spares to stop and leave the rest, and the stops under
    way, to the watchdog: it finishes the stops and removes whatever this
    process watched as soon as the process has exited. A spare still
    starting is waited for briefly (a daemon killed in the middle of its
    start may leave files behind, as Xvfb its lock file), not for a whole
    slow start (seconds for RabbitMQ) on every exit."""
    with _pool_lock:
        pool = _pool
    if pool is None or pool.pid != os.getpid():
        return
    with pool.cond:
        pool.closed = pool.abandoned = True
        pool.work.clear()
        pool.cond.notify()
        spares = list(pool.spares.values())
    deadline = Deadline(EXIT_WAIT)
    for spare in spares:
        if spare.started and spare.done.wait(deadline.remaining()) and spare.ok:
            process = spare.fixture.process
            if process is not None:
                process.request_stop()


atexit.register(_at_exit)
