"""pytest-services' fixtures, on the library (see :mod:`fixtures_daemons.compat.services`).

Not a plugin by itself: :mod:`fixtures_daemons.compat.services` registers
this module once the other plugins are configured, so that these
fixtures win over the same names of the main plugin (``memcached``,
``mysql``, ``xvfb``) and of pytest-xdist (``worker_id``).

Each fixture has the name, scope and return value of pytest-services'
(2.2); what differs is said in its docstring and in
doc/source/user/from-services.rst.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import typing
import uuid
import warnings

import pytest

from fixtures_daemons.daemons.memcached import MemcachedFixture
from fixtures_daemons.daemons.mysql import MysqlAdmin, MysqlFixture
from fixtures_daemons.daemons.xvfb import XvfbFixture
from fixtures_daemons.errors import CommandFailed, ExecutableNotFound, MisuseError
from fixtures_daemons.process import probes
from fixtures_daemons.process.commands import run_command
from fixtures_daemons.process.displays import reserve_display
from fixtures_daemons.process.fixture import ProcessFixture
from fixtures_daemons.process.locks import lock_dir as _library_lock_dir
from fixtures_daemons.process.ports import reserve_port
from fixtures_daemons.process.tempdirs import PrivateDirFixture, default_temp_root

if typing.TYPE_CHECKING:
    import subprocess

    from fixtures_daemons.base.daemon import DaemonFixture

#: What pytest-services replaces in a worker id to make it a file name.
_WRONG_FILE_NAME_CHARS = re.compile(r"[^\w_-]")

#: The Popen keyword arguments of ``watcher_getter(kwargs=...)`` that have
#: no meaning here: the output goes to the process's log file, and the
#: library opens its own files.
_IGNORED_POPEN_KWARGS = frozenset(
    {
        "stdin",
        "stdout",
        "stderr",
        "close_fds",
        "bufsize",
        "universal_newlines",
        "text",
        "encoding",
        "errors",
    }
)


def _option(request: pytest.FixtureRequest, name: str) -> typing.Any:
    return getattr(request.config.option, name, None)


def _start(request: pytest.FixtureRequest, daemon: DaemonFixture) -> DaemonFixture:
    """``daemon`` set up, cleaned up when ``request``'s scope ends."""
    daemon.setUp()
    request.addfinalizer(daemon.cleanUp)
    return daemon


def _popen(daemon: DaemonFixture) -> subprocess.Popen[bytes]:
    """The :class:`subprocess.Popen` of a daemon this process started: what
    pytest-services' ``memcached``, ``mysql`` and ``xvfb`` return."""
    process = daemon.process
    if process is None or process.process is None:  # pragma: no cover - always spawned here
        raise MisuseError(daemon.daemon_name, "popen", "the daemon was not started here")
    return process.process


# -- the run ------------------------------------------------------------------


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """The pytest-xdist worker's id (``gw0``, ``gw1``...), ``local`` without
    xdist (pytest-services' value; xdist's own fixture says ``master``),
    made a file name."""
    workerinput = getattr(request.config, "workerinput", {})
    return _WRONG_FILE_NAME_CHARS.sub("_", workerinput.get("workerid", "local"))


@pytest.fixture(scope="session")
def slave_id(worker_id: str) -> str:
    """Deprecated by pytest-services: ``worker_id``."""
    warnings.warn(
        "The `slave_id` fixture is deprecated; use `worker_id` instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return worker_id


@pytest.fixture(scope="session")
def run_services(request: pytest.FixtureRequest, worker_id: str) -> bool:
    """Whether the services run: under pytest-xdist, or with
    ``--run-services``. When false, ``memcached``, ``mysql``, ``xvfb``
    and their companions give ``None``, as pytest-services' do."""
    return worker_id != "local" or bool(_option(request, "run_services"))


@pytest.fixture(scope="session")
def session_id(worker_id: str) -> str:
    """A globally unique id of this session (of this worker):
    ``<uuid4 hex>-<worker_id>``."""
    return "%s-%s" % (uuid.uuid4().hex, worker_id)


@pytest.fixture(scope="session")
def services_log(worker_id: str) -> logging.Logger:
    """A DEBUG logger named after the worker. Unlike pytest-services', it
    does not write to syslog: its records reach pytest's log capture (a
    failing test's "Captured log" section)."""
    logger = logging.getLogger("[%s] fixtures_daemons.compat.services" % worker_id)
    logger.setLevel(logging.DEBUG)
    return logger


# -- directories -------------------------------------------------------------


@pytest.fixture(scope="session")
def root_dir() -> str:
    """Where ``base_dir`` is made: the system temp dir."""
    return tempfile.gettempdir()


@pytest.fixture(scope="session")
def memory_root_dir(root_dir: str) -> str:
    """Where ``memory_base_dir`` is made: ``/dev/shm`` when it has room
    (``$FIXTURES_DAEMONS_TMPDIR`` when set), else ``root_dir``."""
    root = default_temp_root()
    return root if root != tempfile.gettempdir() else root_dir


def _session_dir(
    request: pytest.FixtureRequest, session_id: str, root: str, log: logging.Logger
) -> str:
    """A private dir (``fxd-sr-<session_id>-*``, mode 0700) under ``root``,
    removed at the end of the session, and by the library's watchdog when
    the worker is killed."""
    made = PrivateDirFixture("sr-%s" % session_id, root=root)
    made.setUp()
    request.addfinalizer(made.cleanUp)
    log.debug("creating base dir: %s", made.path)
    return made.path


@pytest.fixture(scope="session")
def base_dir(
    request: pytest.FixtureRequest, session_id: str, root_dir: str, services_log: logging.Logger
) -> str:
    """The session's artifact dir, removed at its end (and when the
    worker dies: pytest-services leaves it behind then)."""
    return _session_dir(request, session_id, root_dir, services_log)


@pytest.fixture(scope="session")
def temp_dir(base_dir: str, services_log: logging.Logger) -> str:
    """``<base_dir>/tmp``."""
    return _tmp_in(base_dir, services_log)


@pytest.fixture(scope="session")
def memory_base_dir(
    request: pytest.FixtureRequest,
    session_id: str,
    memory_root_dir: str,
    services_log: logging.Logger,
) -> str:
    """The session's artifact dir in memory (``/dev/shm`` when it has
    room), removed at its end and when the worker dies."""
    return _session_dir(request, session_id, memory_root_dir, services_log)


@pytest.fixture(scope="session")
def memory_temp_dir(memory_base_dir: str, services_log: logging.Logger) -> str:
    """``<memory_base_dir>/tmp``."""
    return _tmp_in(memory_base_dir, services_log)


def _tmp_in(base: str, services_log: logging.Logger) -> str:
    path = os.path.join(base, "tmp")
    services_log.debug("creating temp dir: %s", path)
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def lock_dir(services_log: logging.Logger) -> str:
    """The machine-wide lock dir every user of the library shares
    (``/tmp/fixtures-daemons-locks``, ``$FIXTURES_DAEMONS_LOCK_DIR``), where
    the ports and displays are reserved; sticky and world-writable like
    ``/tmp``. Lock files of your own may go there too."""
    path = _library_lock_dir()
    services_log.debug("ensuring lock dir: %s", path)
    return path


@pytest.fixture(scope="session")
def run_dir(memory_temp_dir: str, services_log: logging.Logger) -> str:
    """``<memory_temp_dir>/run`` (like a local ``/var/run``)."""
    path = os.path.join(memory_temp_dir, "run")
    services_log.debug("creating run dir: %s", path)
    os.makedirs(path, exist_ok=True)
    return path


# -- ports and displays --------------------------------------------------------


@pytest.fixture(scope="session")
def lock_resource_timeout() -> int:
    """Kept for suites that override it; nothing waits for a lock here (a
    reservation is taken at once or another number is tried)."""
    return 20


@pytest.fixture(scope="session")
def port_getter(
    request: pytest.FixtureRequest, services_log: logging.Logger
) -> typing.Callable[[], int]:
    """``port_getter()`` reserves a free loopback TCP port and returns it;
    the reservation is held until the end of the session. It is the
    library's reservation (an exclusive ``flock`` per port), which the
    kernel frees when the worker dies: a crashed worker cannot leak it."""

    def get_port() -> int:
        reservation = reserve_port(what="port_getter")
        request.addfinalizer(reservation.release)
        services_log.debug("resource chosen port: %d", reservation.port)
        return reservation.port

    return get_port


@pytest.fixture(scope="session")
def display_getter(
    request: pytest.FixtureRequest, services_log: logging.Logger
) -> typing.Callable[[], int]:
    """``display_getter()`` reserves a free X display number and returns
    it, held until the end of the session; a display another X server
    holds (``/tmp/.X<n>-lock``, its socket) is never given."""

    def get_display() -> int:
        reservation = reserve_display(what="display_getter")
        request.addfinalizer(reservation.release)
        services_log.debug("resource chosen display: %d", reservation.display)
        return reservation.display

    return get_display


# -- any program -----------------------------------------------------------------


def _process_env(popen_env: typing.Mapping[str, str]) -> dict[str, str | None]:
    """Popen's ``env`` replaces the environment; ProcessFixture's adds to
    it (``None`` removes)."""
    env: dict[str, str | None] = {name: None for name in os.environ if name not in popen_env}
    env.update(popen_env)
    return env


@pytest.fixture(scope="session")
def watcher_getter(
    request: pytest.FixtureRequest, services_log: logging.Logger
) -> typing.Callable[..., subprocess.Popen[bytes]]:
    """``watcher_getter(name, arguments=None, kwargs=None, timeout=20,
    checker=None, request=None)`` starts the program ``name`` (searched
    on ``PATH``) and returns its :class:`subprocess.Popen` once
    ``checker()`` returns true; it is stopped, with every process it
    started, when ``request``'s scope ends.

    Through :class:`~fixtures_daemons.ProcessFixture`: ``checker`` is
    polled with backoff (from 1 ms, not once a second), a program that
    exits first fails at once with
    :class:`~fixtures_daemons.DaemonExited` and its log's last lines, a
    ``checker`` still false after ``timeout`` seconds raises
    :class:`~fixtures_daemons.StartupTimeout`, and the watchdog kills
    the program if the worker dies. Its output goes to a log file, not to
    the ``stdout``/``stderr`` of ``kwargs`` (ignored); of the other
    Popen arguments ``env`` and ``cwd`` are honoured, and any other is a
    :class:`~fixtures_daemons.MisuseError`.
    """
    session_request = request

    def watcher_getter_function(
        name: str,
        arguments: typing.Sequence[str] | None = None,
        kwargs: typing.Mapping[str, typing.Any] | None = None,
        timeout: float = 20,
        checker: typing.Callable[[], object] | None = None,
        request: pytest.FixtureRequest | None = None,
    ) -> subprocess.Popen[bytes]:
        if request is None:
            warnings.warn(
                "Omitting the `request` parameter will result in an unstable order of finalizers.",
                stacklevel=2,
            )
            request = session_request
        popen_kwargs = dict(kwargs or {})
        unknown = sorted(set(popen_kwargs) - _IGNORED_POPEN_KWARGS - {"env", "cwd"})
        if unknown:
            raise MisuseError(
                name,
                "watcher_getter(%r, kwargs=...)" % name,
                "%s: not supported (env and cwd are; the output goes to the process's log)"
                % ", ".join(unknown),
            )
        executable = shutil.which(name)
        if not executable:
            raise ExecutableNotFound(name, name, os.get_exec_path())
        services_log.debug("Starting %s: %s", name, arguments)
        env = popen_kwargs.get("env")
        fixture = ProcessFixture(
            [executable, *(arguments or [])],
            probe=probes.Callable(checker, "the checker of %s" % name) if checker else None,
            timeout=timeout,
            stop_timeout=max(timeout / 2, 0.1),
            env=_process_env(env) if env is not None else None,
            cwd=popen_kwargs.get("cwd"),
            name=os.path.basename(name),  # a name, not a path: its log is <name>.log
        )
        fixture.setUp()
        request.addfinalizer(fixture.cleanUp)
        assert fixture.process is not None
        return fixture.process

    return watcher_getter_function


# -- memcached -------------------------------------------------------------------


@pytest.fixture(scope="session")
def services_memcached_daemon(
    request: pytest.FixtureRequest, run_services: bool, services_log: logging.Logger
) -> MemcachedFixture | None:
    """The worker's :class:`~fixtures_daemons.MemcachedFixture` (``None``
    when the services do not run); ``memcached`` and its companions
    describe it. Not in pytest-services."""
    if not run_services:
        return None
    services_log.debug("Starting memcached")
    return typing.cast(
        MemcachedFixture, _start(request, MemcachedFixture(mode="spawn", export_env=False))
    )


@pytest.fixture(scope="session")
def memcached_socket(services_memcached_daemon: MemcachedFixture | None) -> str | None:
    """The server's address, ``127.0.0.1:<port>``, what memcached clients
    take (pylibmc, pymemcache, Django's ``LOCATION``). pytest-services'
    was a unix socket's path: the library's memcached listens on a
    reserved loopback port."""
    if services_memcached_daemon is None:
        return None
    return "%s:%d" % (services_memcached_daemon.host, services_memcached_daemon.port)


@pytest.fixture(scope="session")
def memcached(
    services_memcached_daemon: MemcachedFixture | None, memcached_socket: str | None
) -> subprocess.Popen[bytes] | None:
    """The worker's memcached, ready: its :class:`subprocess.Popen`."""
    if services_memcached_daemon is None:
        return None
    return _popen(services_memcached_daemon)


@pytest.fixture(scope="session")
def memcached_connection(memcached_socket: str | None) -> str | None:
    """The connection string of the worker's memcached: its address,
    ``127.0.0.1:<port>`` (pytest-services' was ``unix:<socket>``)."""
    return memcached_socket


@pytest.fixture
def do_memcached_clean(run_services: bool) -> bool:
    """Whether ``memcached_clean`` flushes the cache."""
    return run_services


@pytest.fixture(scope="session")
def memcached_client(memcached_socket: str | None, memcached: object) -> typing.Any:
    """A ``pylibmc.Client`` of the worker's memcached (the test is skipped
    when pylibmc is not installed, as with pytest-services)."""
    pylibmc = pytest.importorskip("pylibmc")
    if memcached_socket is None:
        raise MisuseError(
            "memcached",
            "memcached_client",
            "the services do not run: use --run-services, or run under pytest-xdist",
        )
    return pylibmc.Client([memcached_socket])


@pytest.fixture
def memcached_clean(memcached_client: typing.Any, do_memcached_clean: bool) -> None:
    """Flush the worker's memcached before the test."""
    if do_memcached_clean:
        memcached_client.flush_all()


# -- MySQL ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def services_mysql_daemon(
    request: pytest.FixtureRequest, run_services: bool, services_log: logging.Logger
) -> MysqlFixture | None:
    """The worker's :class:`~fixtures_daemons.MysqlFixture` (MariaDB or
    MySQL, whichever is installed; ``None`` when the services do not
    run). Not in pytest-services."""
    if not run_services:
        return None
    services_log.debug("Starting mysqld")
    return typing.cast(MysqlFixture, _start(request, MysqlFixture(mode="spawn", export_env=False)))


@pytest.fixture(scope="session")
def mysql_socket(services_mysql_daemon: MysqlFixture | None) -> str | None:
    """The path of the server's unix socket."""
    if services_mysql_daemon is None:
        return None
    return services_mysql_daemon.socket_path


@pytest.fixture(scope="session")
def mysql_connection(run_services: bool, mysql_socket: str | None) -> str | None:
    """``mysql://root@localhost/?unix_socket=<socket>&charset=utf8``:
    ``root`` has no password."""
    if not run_services or mysql_socket is None:
        return None
    return "mysql://root@localhost/?unix_socket=%s&charset=utf8" % mysql_socket


@pytest.fixture(scope="session")
def mysql_watcher(
    services_mysql_daemon: MysqlFixture | None,
) -> subprocess.Popen[bytes] | None:
    """The server's :class:`subprocess.Popen`, once it accepts
    connections."""
    if services_mysql_daemon is None:
        return None
    return _popen(services_mysql_daemon)


@pytest.fixture(scope="session")
def mysql_database_name() -> str:
    """The name of the database ``mysql`` creates."""
    return "pytest_services_test"


def _load_time_zones(daemon: MysqlFixture, log: logging.Logger) -> None:
    """The server's time zone tables from the system's zoneinfo, as
    pytest-services loads them (``CONVERT_TZ(..., 'Europe/Paris')``
    works): once per server, and only when the tool and the zoneinfo
    exist."""
    if getattr(daemon, "_services_time_zones", False):
        return
    daemon._services_time_zones = True  # type: ignore[attr-defined]
    tool = shutil.which("mariadb-tzinfo-to-sql") or shutil.which("mysql_tzinfo_to_sql")
    if not tool or not os.path.isdir("/usr/share/zoneinfo"):
        log.debug("no time zone tables: mysql_tzinfo_to_sql or /usr/share/zoneinfo missing")
        return
    try:
        sql = run_command([tool, "/usr/share/zoneinfo"], "mysql_tzinfo_to_sql", daemon.timeout)
    except CommandFailed as exc:
        log.debug("no time zone tables: %s", exc)
        return
    # Megabytes of SQL: too long for the client's command line.
    path = daemon.write_file("services-time-zones.sql", sql)
    try:
        typing.cast(MysqlAdmin, daemon.admin).query("SOURCE %s" % path, "mysql")
    finally:
        os.unlink(path)


@pytest.fixture(scope="session")
def mysql_database_getter(
    services_mysql_daemon: MysqlFixture | None,
    mysql_watcher: object,
    services_log: logging.Logger,
) -> typing.Callable[[str], None] | None:
    """``mysql_database_getter(name)`` creates the database ``name`` in
    the worker's server (an :class:`~fixtures_daemons.AdminError` if it
    exists); the server's time zone tables are loaded on the first call."""
    daemon = services_mysql_daemon
    if daemon is None:
        return None

    def getter(database_name: str) -> None:
        typing.cast(MysqlAdmin, daemon.admin).create_database(database_name)
        _load_time_zones(daemon, services_log)

    return getter


@pytest.fixture(scope="session")
def mysql_database(
    mysql_database_getter: typing.Callable[[str], None] | None, mysql_database_name: str
) -> None:
    """Creates ``mysql_database_name``."""
    if mysql_database_getter is not None:
        mysql_database_getter(mysql_database_name)


@pytest.fixture(scope="session")
def mysql(mysql_watcher: subprocess.Popen[bytes] | None, mysql_database: None) -> typing.Any:
    """The worker's MySQL or MariaDB server, ready, with the database
    ``mysql_database_name``: its :class:`subprocess.Popen`."""
    return mysql_watcher


# -- Xvfb ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def xvfb_resolution() -> tuple[int, int, int]:
    """The screen's (width, height, depth)."""
    return (1366, 768, 8)


@pytest.fixture(scope="session")
def services_xvfb_daemon(
    request: pytest.FixtureRequest,
    run_services: bool,
    xvfb_resolution: typing.Sequence[int],
    services_log: logging.Logger,
) -> XvfbFixture | None:
    """The worker's :class:`~fixtures_daemons.XvfbFixture` on a reserved
    display (``None`` with ``--xvfb-display`` or when the services do not
    run). Not in pytest-services."""
    if _option(request, "display") or not run_services:
        return None
    resolution = "x".join(str(value) for value in xvfb_resolution)
    services_log.debug("Starting Xvfb at %s", resolution)
    return typing.cast(
        XvfbFixture,
        _start(request, XvfbFixture(mode="spawn", export_env=False, resolution=resolution)),
    )


@pytest.fixture(scope="session")
def xvfb_display(
    request: pytest.FixtureRequest,
    run_services: bool,
    services_xvfb_daemon: XvfbFixture | None,
) -> int | str | None:
    """The display the tests use, also set as ``DISPLAY`` (and, for the
    library's Xvfb, ``XAUTHORITY``: only clients with its cookie may
    connect) until the session ends: ``--xvfb-display`` when given, else
    the number of the worker's Xvfb (``None`` when the services do not
    run)."""
    if not run_services:
        return None
    environ = pytest.MonkeyPatch()
    request.addfinalizer(environ.undo)
    given = _option(request, "display")
    if given:
        text = str(given)
        environ.setenv("DISPLAY", text if ":" in text else ":" + text)
        return typing.cast(str, given)
    assert services_xvfb_daemon is not None
    for name, value in services_xvfb_daemon.client_exports(services_xvfb_daemon.endpoint).items():
        environ.setenv(name, value)
    return services_xvfb_daemon.display_number


@pytest.fixture(scope="session")
def xvfb(
    services_xvfb_daemon: XvfbFixture | None, xvfb_display: object
) -> subprocess.Popen[bytes] | None:
    """The worker's Xvfb, ready: its :class:`subprocess.Popen` (``None``
    with ``--xvfb-display`` or when the services do not run)."""
    if services_xvfb_daemon is None:
        return None
    return _popen(services_xvfb_daemon)
