"""Start + stop of PostgreSQL, MariaDB, Redis and memcached, three ways.

For each daemon three contenders do the same job, interleaved round by
round in one run (:mod:`benchmarks._bench`: every contender once per round,
the starting one rotated):

* ``bare floor``: the daemon's program started directly, with the settings
  the fixture gives it, on a data dir prepared once outside the timed part
  (PostgreSQL: ``initdb``; MariaDB: ``mariadb-install-db``, both with the
  fixture's options) and reused by every round; polled every millisecond
  until it answers a real request (PostgreSQL: a libpq connection through
  its unix socket; MariaDB: a PyMySQL connection through its unix socket;
  Redis: PING; memcached: ``version``), then stopped the way the fixture
  stops it (PostgreSQL: SIGQUIT, the others: SIGKILL) and waited for. No
  template copy, no port reservation, no watchdog: what a careful
  hand-written harness costs. The reused PostgreSQL and MariaDB dirs were
  not shut down cleanly, so those floors include a short crash recovery
  (about 5 ms for PostgreSQL), and their real connection costs a few ms
  more than the fixtures' log-line check: not a strict lower bound.
* ``fixtures-daemons``: ``<Daemon>Fixture(mode="spawn")``, its temp root from
  ``$FIXTURES_DAEMONS_TMPDIR`` as for users, ``setUp()`` then ``cleanUp()``.
  The first warm-up round builds the template (a private template cache for
  this run, removed at the end).
* ``pifpaf``: ``pifpaf.drivers.<daemon>.<Daemon>Driver``, ``setUp()`` then
  ``cleanUp()``, on a free port, with its temp dir in the same
  memory-backed root as the others (``--pifpaf-temp-root`` to change it).

pifpaf's PostgreSQL and MariaDB drivers cannot run as root (``initdb`` and
``mariadbd`` refuse it), so every contender runs as an ordinary user:
started as root, the script runs itself again as ``--user`` (default
``fxdbench``; create it with ``useradd -m fxdbench``) through ``runuser``,
then checks, as root, that nothing of the run is left. Run it from the
repository root (readable by that user)::

    python -m benchmarks.bench_daemons --rounds 20
    python -m benchmarks.bench_daemons --daemons redis,memcached

The floors checked after the table: PostgreSQL at least 10x faster than
pifpaf, MariaDB at least 3x, Redis and memcached within 3x of their bare
floor. Leaks are looked for after the run: the process makes itself a
subreaper, so every daemon a contender started stays below it in the
process tree; and, started as root, the script also looks for processes
carrying the run's marker variable and for daemons of the benchmark user.
Exits 1 if a process or a temp dir is left behind; with
``--enforce-floors``, 2 if a floor is missed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pwd
import shutil
import signal
import statistics
import sys
import tempfile
import time
import typing
import uuid

import fixtures
import psycopg
import pymysql
from pifpaf.drivers.memcached import MemcachedDriver
from pifpaf.drivers.mysql import MySQLDriver
from pifpaf.drivers.postgresql import PostgreSQLDriver
from pifpaf.drivers.redis import RedisDriver

import fixtures_daemons
from benchmarks import _bench
from benchmarks._floors import HOST, Daemon, Floor, ask, initdb, run
from fixtures_daemons import DaemonFixture, reserve_port
from fixtures_daemons.base.binaries import find_executable, program_version, sibling
from fixtures_daemons.base.templates import CACHE_ENV
from fixtures_daemons.process.tempdirs import TMPDIR_ENV, default_temp_root
from fixtures_daemons.process.waiting import wait_for
from fixtures_daemons.process.watchdog import Watchdog

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Every process of the run carries this variable (children inherit it):
#: how leftovers are found, whoever started them.
MARKER_ENV = "FXD_BENCH_RUN"
#: Names of the daemons' programs as /proc/<pid>/comm shows them.
DEFAULT_USER = "fxdbench"
FLOOR = "bare floor"
FIXTURE = "fixtures-daemons"
PIFPAF = "pifpaf"
DESCRIPTION = "start + stop of a daemon: bare floor vs fixtures-daemons vs pifpaf"
#: How long a floor's daemon may take to answer.


# -- the bare floors ------------------------------------------------------------


class PostgresqlFloor(Floor):
    """``postgres`` on an initdb'd dir; ready = a libpq connection works."""

    stop_signal = signal.SIGQUIT  # immediate shutdown, as the fixture's cleanUp

    def prepare(self) -> None:
        self.data_dir = os.path.join(self.workdir, "data")
        # The fixture's initdb options (PostgresqlFixture._init_options).
        initdb(self.binary, self.data_dir)

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": self.workdir,
            "log_destination": "stderr",
            "logging_collector": "off",
            "dynamic_shared_memory_type": "mmap",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        command = [self.binary, "-D", self.data_dir, "-p", str(self.port)]
        for item in settings.items():
            command += ["-c", "%s=%s" % item]
        return command

    def answers(self) -> bool:
        try:
            psycopg.connect(
                host=self.workdir,
                port=self.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=5,
            ).close()
        except psycopg.OperationalError:
            return False
        return True


class MysqlFloor(Floor):
    """``mariadbd`` on an installed datadir; ready = PyMySQL connects."""

    # The fixture's InnoDB file options (MysqlFixture._INNODB_FILES).
    files = ("--innodb-log-file-size=4M", "--innodb-data-file-path=ibdata1:4M:autoextend")

    def prepare(self) -> None:
        self.data_dir = os.path.join(self.workdir, "data")
        self.socket_path = os.path.join(self.workdir, "mysqld.sock")
        run(
            [
                sibling(self.binary, "mariadb-install-db"),
                "--no-defaults",
                "--datadir=" + self.data_dir,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                *self.files,
            ]
        )

    def command(self) -> list[str]:
        # The fixture's settings for MariaDB (MysqlFixture._settings).
        return [
            self.binary,
            "--no-defaults",
            "--datadir=" + self.data_dir,
            "--socket=" + self.socket_path,
            "--port=%d" % self.port,
            "--bind-address=" + HOST,
            "--pid-file=" + os.path.join(self.workdir, "mysqld.pid"),
            "--tmpdir=" + self.workdir,
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--innodb-buffer-pool-size=16M",
            "--innodb-buffer-pool-dump-at-shutdown=OFF",
            "--innodb-buffer-pool-load-at-startup=OFF",
            "--skip-log-bin",
            *self.files,
            "--innodb-use-native-aio=OFF",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=OFF",
            "--sync-binlog=0",
        ]

    def answers(self) -> bool:
        try:
            pymysql.connect(unix_socket=self.socket_path, user="root", connect_timeout=5).close()
        except pymysql.MySQLError:
            return False
        return True


class RedisFloor(Floor):
    """``redis-server`` with the fixture's settings; ready = PING answers."""

    def command(self) -> list[str]:
        settings = {
            "bind": HOST,
            "port": str(self.port),
            "unixsocket": os.path.join(self.workdir, "redis.sock"),
            "unixsocketperm": "700",
            "dir": self.workdir,
            "databases": "16",
            "daemonize": "no",
            "logfile": "",
            "save": "86400 2147483647",
            "appendonly": "no",
        }
        command = [self.binary]
        for key, value in settings.items():
            command += ["--" + key, value]
        return command

    def answers(self) -> bool:
        return ask(self.port, b"PING\r\n", b"+PONG")


class MemcachedFloor(Floor):
    """``memcached`` with the fixture's settings; ready = ``version`` answers."""

    def command(self) -> list[str]:
        return [
            self.binary,
            "--listen=" + HOST,
            "--port=%d" % self.port,
            "--udp-port=0",
            "--memory-limit=64",
            "--threads=2",
        ]

    def answers(self) -> bool:
        return ask(self.port, b"version\r\n", b"VERSION")


# -- the daemons ----------------------------------------------------------------


# pifpaf's drivers default to fixed ports: each gets a reserved one.


def _pifpaf_postgresql(port: int, temp_root: str) -> fixtures.Fixture:
    return typing.cast(fixtures.Fixture, PostgreSQLDriver(port=port, tmp_rootdir=temp_root))


def _pifpaf_mysql(port: int, temp_root: str) -> fixtures.Fixture:
    # It listens on its unix socket only (--skip-networking): no port.
    return typing.cast(fixtures.Fixture, MySQLDriver(tmp_rootdir=temp_root))


def _pifpaf_redis(port: int, temp_root: str) -> fixtures.Fixture:
    return typing.cast(fixtures.Fixture, RedisDriver(port=port, tmp_rootdir=temp_root))


def _pifpaf_memcached(port: int, temp_root: str) -> fixtures.Fixture:
    return typing.cast(fixtures.Fixture, MemcachedDriver(port=port, tmp_rootdir=temp_root))


def _all_daemons() -> dict[str, Daemon]:
    """The four here, and one more per ``benchmarks/daemons_<name>.py``
    module, which defines ``DAEMON`` (a :class:`Daemon`) with its floor and
    its pifpaf driver: a new daemon's benchmark touches no shared file."""
    found = [
        Daemon(
            "postgresql",
            "PostgresqlFixture",
            PostgresqlFloor,
            _pifpaf_postgresql,
            min_x_pifpaf=10,
            programs=("postgres",),
        ),
        Daemon(
            "mysql",
            "MysqlFixture",
            MysqlFloor,
            _pifpaf_mysql,
            min_x_pifpaf=3,
            programs=("mariadbd", "mysqld"),
        ),
        Daemon(
            "redis",
            "RedisFixture",
            RedisFloor,
            _pifpaf_redis,
            max_x_floor=3,
            programs=("redis-server",),
        ),
        Daemon(
            "memcached",
            "MemcachedFixture",
            MemcachedFloor,
            _pifpaf_memcached,
            max_x_floor=3,
            programs=("memcached",),
        ),
    ]
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sorted(os.listdir(here)):
        if entry.startswith("daemons_") and entry.endswith(".py"):
            module = importlib.import_module("benchmarks." + entry[: -len(".py")])
            found.append(module.DAEMON)
    return {d.name: d for d in found}


DAEMONS = _all_daemons()
DAEMON_PROGRAMS = tuple(program for d in DAEMONS.values() for program in d.programs)


class FixtureRun:
    """The fixture's setUp + cleanUp; remembers its temp dirs in ``dirs``."""

    def __init__(
        self,
        cls: type[DaemonFixture],
        temp_root: str,
        dirs: list[str],
        kwargs: typing.Mapping[str, typing.Any] | None = None,
    ) -> None:
        self.cls = cls
        self.kwargs = dict(kwargs or {})
        self.temp_root = temp_root
        self.temp_dirs = dirs

    def __call__(self) -> None:
        # spawn: never attach to a daemon a *_STATE variable describes. The
        # temp root comes from $FIXTURES_DAEMONS_TMPDIR, as the default one
        # does, so cleanUp hands the dir to the watchdog as it does for users.
        fixture = self.cls(mode="spawn", **self.kwargs)
        fixture.setUp()
        try:
            self.temp_dirs.append(fixture.temp_dir)
        finally:
            fixture.cleanUp()


class PifpafRun:
    """The pifpaf driver's setUp + cleanUp."""

    def __init__(
        self, make: typing.Callable[[int, str], fixtures.Fixture], port: int, root: str
    ) -> None:
        self.make = make
        self.port = port
        self.root = root

    def __call__(self) -> None:
        driver = self.make(self.port, self.root)
        driver.setUp()
        driver.cleanUp()


# -- leaks ----------------------------------------------------------------------
#
# Three ways to find what the run left, because none sees everything:
# redis-server and some PostgreSQL children overwrite their environment
# with their process title (so the marker is gone), and a daemon that
# double-forked has left our process tree unless we are its subreaper.


class Proc(typing.NamedTuple):
    pid: int
    ppid: int
    uid: int
    state: str
    comm: str
    environ: bytes

    def describe(self) -> str:
        try:
            with open("/proc/%d/cmdline" % self.pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmdline = "?"
        return "pid %d (%s, user %s): %s" % (self.pid, self.comm, _user_name(self.uid), cmdline)


def processes() -> list[Proc]:
    """Every process we can see (environments: all as root, ours otherwise)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read()
            uid = os.stat("/proc/%s" % entry).st_uid
        except OSError:
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                environ = f.read()
        except OSError:
            environ = b""
        comm = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode(errors="replace")
        fields = stat[stat.rindex(b")") + 2 :].split()
        found.append(Proc(int(entry), int(fields[1]), uid, fields[0].decode(), comm, environ))
    return found


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def marked(procs: typing.Iterable[Proc], marker: str) -> list[Proc]:
    """Live processes whose environment carries the run's marker."""
    needle = ("%s=%s" % (MARKER_ENV, marker)).encode()
    return [p for p in procs if p.state != "Z" and needle in p.environ.split(b"\0")]


def daemons_of(procs: typing.Iterable[Proc], uid: int) -> list[Proc]:
    """Live daemon processes (by program name) run by ``uid``."""
    return [p for p in procs if p.state != "Z" and p.uid == uid and p.comm in DAEMON_PROGRAMS]


def descendants(procs: typing.Iterable[Proc], pid: int) -> list[Proc]:
    """The processes below ``pid`` in the process tree."""
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def become_subreaper() -> bool:
    """Make orphaned descendants (a daemon whose starter exited, such as
    pg_ctl's postgres) our children instead of init's, so that they stay in
    our process tree where :func:`descendants` finds them."""
    import ctypes

    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0)


def reap_orphans() -> int:
    """Collect the exit status of orphans that were reparented to us and
    have exited (nobody else will); return how many."""
    me = os.getpid()
    reaped = 0
    for p in processes():
        if p.ppid == me and p.state == "Z":
            try:
                if os.waitpid(p.pid, os.WNOHANG)[0]:
                    reaped += 1
            except ChildProcessError:
                pass
    return reaped


def wait_for_none(find: typing.Callable[[], list[Proc]], timeout: float = 3.0) -> list[Proc]:
    """What ``find`` still finds after ``timeout`` (the run's watchdog exits
    shortly after the run's process)."""
    deadline = time.monotonic() + timeout
    while True:
        left = find()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


# -- running ----------------------------------------------------------------------


def parse_args(argv: typing.Sequence[str]) -> tuple[argparse.Namespace, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_daemons",
        description=DESCRIPTION + " (--rounds and --warmup: see below)",
        add_help=False,
    )
    parser.add_argument(
        "--daemons",
        default=",".join(DAEMONS),
        help="comma-separated, among %s (default: all)" % ", ".join(DAEMONS),
    )
    parser.add_argument(
        "--user",
        default=DEFAULT_USER,
        help="started as root, run as this user (default %(default)s)",
    )
    parser.add_argument(
        "--pifpaf-temp-root",
        default=None,
        help="where pifpaf makes its temp dirs (default: the run's memory-backed root, "
        "as for the other contenders)",
    )
    parser.add_argument(
        "--enforce-floors", action="store_true", help="exit 2 when a floor is missed"
    )
    ours, rest = parser.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        parser.print_help()
        print()
    daemons = [name.strip() for name in ours.daemons.split(",") if name.strip()]
    unknown = [name for name in daemons if name not in DAEMONS]
    if unknown or not daemons:
        parser.error("--daemons: unknown %s; choose among %s" % (unknown, ", ".join(DAEMONS)))
    ours.daemons = daemons
    return ours, _bench.parse_args(rest, DESCRIPTION, min_warmup=1)


def run_as_user(argv: typing.Sequence[str], user: str) -> int:
    """As root: run this benchmark again as ``user``, then check, as root,
    that none of its processes is left."""
    marker = uuid.uuid4().hex
    print("running as %s (pifpaf's PostgreSQL and MariaDB refuse root)" % user)
    status = _bench.rerun_as(user, "benchmarks.bench_daemons", argv, {MARKER_ENV: marker})
    uid = pwd.getpwnam(user).pw_uid

    def left() -> list[Proc]:
        procs = processes()
        found = {p.pid: p for p in marked(procs, marker) + daemons_of(procs, uid)}
        return list(found.values())

    leaked = wait_for_none(left)
    if leaked:
        print("\n".join("LEAK (seen as root): " + p.describe() for p in leaked))
        return 1
    print(
        "checked as root: no process of the run is left, and %s runs no %s"
        % (user, "/".join(DAEMON_PROGRAMS))
    )
    return status


def _ratio_cell(value: float | None) -> str:
    return "" if value is None else "%.2fx" % value


def format_table(samples: typing.Mapping[str, typing.Mapping[str, typing.Sequence[float]]]) -> str:
    """One table for all daemons; ratios of medians to the floor and to pifpaf."""
    header = ("daemon", "contender", "median ms", "min ms", "p90 ms", "x floor", "x pifpaf")
    rows: list[tuple[str, ...]] = []
    for daemon, per_contender in samples.items():
        stats = {name: _bench.summarize(values) for name, values in per_contender.items()}
        floor = stats[FLOOR].median
        pifpaf = stats[PIFPAF].median if PIFPAF in stats else None
        for i, (name, s) in enumerate(stats.items()):
            rows.append(
                (
                    daemon if i == 0 else "",
                    name,
                    "%.1f" % (s.median * 1e3),
                    "%.1f" % (s.minimum * 1e3),
                    "%.1f" % (s.p90 * 1e3),
                    _ratio_cell(s.median / floor),
                    _ratio_cell(s.median / pifpaf) if pifpaf else "-",
                )
            )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: typing.Sequence[str]) -> str:
        left = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
        right = [cell.rjust(width) for cell, width in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def check_floors(
    samples: typing.Mapping[str, typing.Mapping[str, typing.Sequence[float]]],
) -> list[str]:
    """Print the floors; return those missed."""
    missed = []
    for name, per_contender in samples.items():
        daemon = DAEMONS[name]
        ours = statistics.median(per_contender[FIXTURE])
        floor = statistics.median(per_contender[FLOOR])
        checks = []
        if daemon.min_x_pifpaf is not None and PIFPAF in per_contender:
            pifpaf = statistics.median(per_contender[PIFPAF])
            ratio = pifpaf / ours
            ok = ratio >= daemon.min_x_pifpaf
            checks.append(
                (ok, "pifpaf / %s = %.2fx, wanted >= %gx" % (FIXTURE, ratio, daemon.min_x_pifpaf))
            )
        if daemon.max_x_floor is not None:
            ratio = ours / floor
            ok = ratio <= daemon.max_x_floor
            checks.append(
                (ok, "%s / floor = %.2fx, wanted <= %gx" % (FIXTURE, ratio, daemon.max_x_floor))
            )
        for ok, text in checks:
            print(
                "  %-10s %s: %s (%s %.1f ms over the floor)"
                % (name, text, "met" if ok else "MISSED", FIXTURE, (ours - floor) * 1e3)
            )
            if not ok:
                missed.append("%s: %s" % (name, text))
    return missed


def versions(names: typing.Iterable[str]) -> list[str]:
    """Which program each daemon runs, and its version."""
    lines = []
    for name in names:
        cls = getattr(fixtures_daemons, DAEMONS[name].fixture)
        binary = find_executable(cls.executable, None, name)
        version = (program_version(binary, cls.executable.version_args).splitlines() or ["?"])[0]
        lines.append("%s: %s (%s)" % (name, binary, version))
    return lines


def leftovers(
    root: str, pifpaf_root: str, pifpaf_before: set[str], fixture_dirs: list[str]
) -> list[str]:
    """What the run left: processes below this one (but the watchdog, which
    exits with it), and temp dirs."""
    watchdog = Watchdog._instance
    watchdog_pid = watchdog.process.pid if watchdog is not None else -1
    problems = [
        "leaked process " + p.describe()
        for p in descendants(processes(), os.getpid())
        if p.state != "Z" and p.pid != watchdog_pid
    ]
    dirs = [d for d in fixture_dirs if os.path.lexists(d)]
    # In the run's root only the template cache may remain (the floors'
    # dirs are removed after each daemon, the fixtures' and pifpaf's by
    # their cleanUp).
    # Spares (the next instance's copy) belong to the watchdog, which removes
    # them when this process exits; trash is being deleted by it right now.
    wait_for(lambda: not [n for n in os.listdir(root) if n.endswith(".trash")], 5.0)
    dirs += [
        os.path.join(root, n)
        for n in sorted(os.listdir(root))
        if n != "cache" and not n.startswith(".fxd-spare-")
    ]
    if pifpaf_root != root:  # a shared dir: only what we made there counts
        for name in set(os.listdir(pifpaf_root)) - pifpaf_before:
            path = os.path.join(pifpaf_root, name)
            try:
                if os.lstat(path).st_uid == os.geteuid():
                    dirs.append(path)
            except OSError:
                pass
    problems += ["leaked temp dir " + d for d in sorted(set(dirs))]
    return problems


def measure_daemon(
    daemon: Daemon, rounds: int, warmup: int, root: str, pifpaf_root: str, fixture_dirs: list[str]
) -> dict[str, list[float]]:
    """The three contenders of one daemon, interleaved."""
    cls = getattr(fixtures_daemons, daemon.fixture)
    binary = find_executable(cls.executable, None, daemon.name)
    workdir = os.path.join(root, "floor-" + daemon.name)
    os.mkdir(workdir, 0o700)
    try:
        with (
            reserve_port(HOST, what=daemon.name) as floor_port,
            reserve_port(HOST, what=daemon.name) as pifpaf_port,
        ):
            floor = daemon.floor(binary, workdir, floor_port.port)
            floor.prepare()
            contenders: dict[str, _bench.Run] = {
                FLOOR: floor,
                FIXTURE: FixtureRun(cls, root, fixture_dirs, daemon.fixture_kwargs),
            }
            if daemon.pifpaf is not None:
                contenders[PIFPAF] = PifpafRun(daemon.pifpaf, pifpaf_port.port, pifpaf_root)
            return _bench.measure(contenders, rounds, warmup)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def benchmark(argv: typing.Sequence[str]) -> int:
    """Run the benchmark as ourselves (not root)."""
    ours, bench = parse_args(argv)
    subreaper = become_subreaper()
    logging.getLogger("pifpaf").setLevel(logging.ERROR)  # its "already gone" chatter
    root = tempfile.mkdtemp(prefix="fxd-bench-", dir=default_temp_root())
    os.environ[CACHE_ENV] = os.path.join(root, "cache")  # built by the first warm-up
    os.environ[TMPDIR_ENV] = root
    pifpaf_root = ours.pifpaf_temp_root or root
    pifpaf_before = set(os.listdir(pifpaf_root))
    print(DESCRIPTION)
    print("as user %s; temp root %s; pifpaf's %s" % (_user_name(os.geteuid()), root, pifpaf_root))
    for line in versions(ours.daemons):
        print("  " + line)
    print("before: " + _bench._machine())
    print(
        "%d rounds (+%d warm-up, not counted); a daemon's 3 contenders interleaved, "
        "the first one rotated each round" % (bench.rounds, bench.warmup)
    )
    sys.stdout.flush()
    samples: dict[str, dict[str, list[float]]] = {}
    fixture_dirs: list[str] = []
    try:
        for name in ours.daemons:
            start = time.monotonic()
            samples[name] = measure_daemon(
                DAEMONS[name], bench.rounds, bench.warmup, root, pifpaf_root, fixture_dirs
            )
            print("  %s: %.0f s" % (name, time.monotonic() - start))
            sys.stdout.flush()
    finally:
        print("after:  " + _bench._machine())
        problems = leftovers(root, pifpaf_root, pifpaf_before, fixture_dirs)
        orphans = reap_orphans()
        shutil.rmtree(root, ignore_errors=True)
        if problems:
            print("\n".join("LEAK: " + p for p in problems))
    print()
    print(format_table(samples))
    print()
    print("floors:")
    missed = check_floors(samples)
    print()
    if problems:
        return 1
    print(
        "no leaks: no process is left below this one%s but its watchdog (which exits with "
        "it), and no temp dir (%d fixture temp dirs made and removed); %d exited orphans reaped"
        % (" (a subreaper)" if subreaper else "", len(fixture_dirs), orphans)
    )
    return 2 if missed and ours.enforce_floors else 0


def main(argv: typing.Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.geteuid() == 0:
        ours, _ = parse_args(argv)
        return run_as_user(argv, ours.user)
    return benchmark(argv)


if __name__ == "__main__":
    sys.exit(main())
