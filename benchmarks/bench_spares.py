"""A fresh daemon per test, with and without spare servers, as a test sees it.

For PostgreSQL, MariaDB and Redis, three contenders run the same "test"
(setUp, a test body, cleanUp), side by side in one run (every contender
once per round, the starting one rotated; a round is ``--tests`` tests in a
row, so that the spare of each test is there for the next):

* ``bare floor``: the daemon's program started directly on a ready data
  dir and polled every millisecond until it answers a real request, then
  stopped and waited for (:mod:`benchmarks._floors`, as in
  ``bench_daemons``): what the daemon itself costs, with no copy at all;
* ``no spares``: ``<Daemon>Fixture(mode="spawn")`` with
  ``$FIXTURES_DAEMONS_SPARES=0``: started while the test waits, stopped
  while it waits;
* ``spare servers``: the same fixture with spares on (the default): setUp
  adopts the daemon started while the previous test ran, cleanUp signals
  it and returns.

Reported per contender: the median setUp and cleanUp latency, and the CPU
the whole round cost (this process and every daemon it started, reaped;
the spare left at the end of a round is cleaned up inside it, so each
round pays for one spare nobody used), per test.

Then the cost for a busy test: the body is a CPU-bound loop of pure
Python (about ``--busy-ms`` ms); its own duration is reported with no
fixture, with spares off and with spares on. On a 2-core machine the
spare's start runs beside the loop.

Then, with ``--suites``, the wall time of 100 tests that each take a
fresh PostgreSQL (``PostgresqlFixture(mode="spawn")`` and one query) under
``stestr run --concurrency N`` for N = 1, 2 and 4, with spares and
without, beside the same 100 tests in attach mode (``fixtures-daemons run
postgresql -- stestr run``: a database per test), each run once per round,
rotated.

Run it from the repository root, with the test requirements and the
daemons installed (as root, PostgreSQL and MariaDB run as
``$FIXTURES_DAEMONS_USER`` or nobody; the floors need an ordinary user,
so run it as one)::

    python -m benchmarks.bench_spares --rounds 5
    python -m benchmarks.bench_spares --daemons postgresql --tests 30
    python -m benchmarks.bench_spares --daemons "" --suites --rounds 3

With ``--enforce-floors``, exits 2 if the PostgreSQL spare-server setUp
median is above 5 ms or its cleanUp median above 2 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing

import fixtures_daemons
from benchmarks.bench_daemons import DAEMONS
from fixtures_daemons import DaemonFixture, close_spare_servers, reserve_port
from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.base.spares import SPARES_ENV
from fixtures_daemons.base.templates import CACHE_ENV
from fixtures_daemons.process.tempdirs import TMPDIR_ENV, default_temp_root

FLOOR = "bare floor"
NO_SPARES = "no spares"
SPARES = "spare servers"
CONTENDERS = (FLOOR, NO_SPARES, SPARES)
SETUP_FLOOR_MS = 5.0
CLEANUP_FLOOR_MS = 2.0


class Samples:
    def __init__(self) -> None:
        self.setup: list[float] = []
        self.cleanup: list[float] = []
        self.cpu: list[float] = []  # per test, from whole rounds
        self.body: list[float] = []


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def busy(ms: float) -> None:
    """About ``ms`` ms of pure-Python work (calibrated once)."""
    n = 0
    for _ in range(int(ms * busy.per_ms)):  # type: ignore[attr-defined]
        n += 1


def calibrate() -> None:
    busy.per_ms = 1000  # type: ignore[attr-defined]
    start = time.perf_counter()
    busy(100)
    busy.per_ms = int(1000 * 100 / ((time.perf_counter() - start) * 1000))  # type: ignore[attr-defined]


def fixture_round(
    cls: type[DaemonFixture], spares: bool, tests: int, body: typing.Callable[[], None], s: Samples
) -> None:
    os.environ[SPARES_ENV] = "1" if spares else "0"
    cpu = cpu_now()
    for _ in range(tests):
        fixture = cls(mode="spawn")
        t0 = time.perf_counter()
        fixture.setUp()
        t1 = time.perf_counter()
        b0 = time.perf_counter()
        body()
        s.body.append(time.perf_counter() - b0)
        t2 = time.perf_counter()
        fixture.cleanUp()
        t3 = time.perf_counter()
        s.setup.append(t1 - t0)
        s.cleanup.append(t3 - t2)
    close_spare_servers()  # the unused spare and the stops under way: this round's
    s.cpu.append((cpu_now() - cpu) / tests)


def floor_round(floor: typing.Any, tests: int, body: typing.Callable[[], None], s: Samples) -> None:
    cpu = cpu_now()
    for _ in range(tests):
        t0 = time.perf_counter()
        process = floor.start(floor.command(), floor.answers)
        t1 = time.perf_counter()
        b0 = time.perf_counter()
        body()
        s.body.append(time.perf_counter() - b0)
        t2 = time.perf_counter()
        floor.stop(process)
        t3 = time.perf_counter()
        s.setup.append(t1 - t0)
        s.cleanup.append(t3 - t2)
    s.cpu.append((cpu_now() - cpu) / tests)


def ms(values: typing.Sequence[float]) -> str:
    return "%.1f" % (statistics.median(values) * 1000) if values else "-"


def run_daemon(name: str, args: argparse.Namespace, work: str) -> dict[str, dict[str, Samples]]:
    daemon = DAEMONS[name]
    cls = getattr(fixtures_daemons, daemon.fixture)
    binary = find_executable(cls.executable, None, name)
    workdir = tempfile.mkdtemp(prefix="floor-", dir=work)
    port = reserve_port("127.0.0.1")
    floor = daemon.floor(binary, workdir, port.port)
    floor.prepare()
    results: dict[str, dict[str, Samples]] = {}
    try:
        for kind, body in (
            ("idle", lambda: time.sleep(args.idle_ms / 1000)),
            ("busy", lambda: busy(args.busy_ms)),
        ):
            samples = {c: Samples() for c in CONTENDERS}
            # Warm-up: the template, the program's version, the imports.
            fixture_round(cls, True, 3, body, Samples())
            for r in range(args.rounds):
                order = CONTENDERS[r % 3 :] + CONTENDERS[: r % 3]
                for contender in order:
                    if contender == FLOOR:
                        floor_round(floor, args.tests, body, samples[contender])
                    else:
                        fixture_round(
                            cls, contender == SPARES, args.tests, body, samples[contender]
                        )
            results[kind] = samples
    finally:
        port.release()
        os.environ.pop(SPARES_ENV, None)
    return results


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE_TESTS = 100
SUITE = (
    """
import os, unittest
import psycopg, testtools
from fixtures_daemons import PostgresqlFixture

MODE = os.environ.get("BENCH_MODE", "spawn")

class T(testtools.TestCase):
    def check(self):
        pg = self.useFixture(PostgresqlFixture(mode=MODE))
        with psycopg.connect(pg.url) as conn:
            self.assertEqual(1, conn.execute("SELECT 1").fetchone()[0])

for n in range(%d):
    setattr(T, "test_%%03d" %% n, T.check)
"""
    % SUITE_TESTS
)


def suite_run(way: str, concurrency: int, work: str) -> float:
    """One stestr run of the suite; its wall time (it must pass)."""
    suite = os.path.join(work, "suite")
    if not os.path.isdir(suite):
        os.makedirs(os.path.join(suite, "tests"))
        with open(os.path.join(suite, "tests", "__init__.py"), "w"):
            pass
        with open(os.path.join(suite, "tests", "test_fresh.py"), "w") as f:
            f.write(SUITE)
        with open(os.path.join(suite, ".stestr.conf"), "w") as f:
            f.write("[DEFAULT]\ntest_path=./tests\ntop_dir=./\n")
    repo_dir = tempfile.mkdtemp(prefix="stestr-", dir=work)
    python = sys.executable
    command = [python, "-m", "stestr", "--repo-url", repo_dir, "run"]
    command += ["--concurrency", str(concurrency)]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", BENCH_MODE="spawn")
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env[SPARES_ENV] = "0" if way == "no spares" else "1"
    if way == "attach":
        env["BENCH_MODE"] = "attach"
        command = [python, "-m", "fixtures_daemons", "run", "postgresql", "--"] + command
    start = time.perf_counter()
    try:
        result = subprocess.run(
            command, cwd=suite, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(repo_dir, ignore_errors=True)
    elapsed = time.perf_counter() - start
    output = result.stdout.decode("utf-8", "replace")
    passed = re.findall(r"^ - Passed: (\d+)$", output, re.MULTILINE)
    if result.returncode != 0 or passed != [str(SUITE_TESTS)]:
        raise RuntimeError("%s -c%d failed:\n%s" % (way, concurrency, output[-3000:]))
    return elapsed


def run_suites(args: argparse.Namespace, work: str) -> None:
    ways = ("no spares", "spare servers", "attach")
    times: dict[tuple[str, int], list[float]] = {}
    for way in ways:  # warm-up: the template cache, the bytecode
        suite_run(way, 2, work)
    for r in range(args.rounds):
        for concurrency in (1, 2, 4):
            order = ways[r % 3 :] + ways[: r % 3]
            for way in order:
                times.setdefault((way, concurrency), []).append(suite_run(way, concurrency, work))
    print()
    print("%d tests, each a fresh PostgreSQL (attach: a database each); wall time, median of %d"
          % (SUITE_TESTS, args.rounds))  # fmt: skip
    print("%-14s %10s %10s %10s" % ("way", "-c 1", "-c 2", "-c 4"))
    for way in ways:
        cells = ["%.2f s" % statistics.median(times[(way, c)]) for c in (1, 2, 4)]
        print("%-14s %10s %10s %10s" % (way, *cells))


def main(argv: typing.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--daemons", default="postgresql,mysql,redis")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tests", type=int, default=20, help="tests per round")
    parser.add_argument("--idle-ms", type=float, default=50.0, help="an idle test body")
    parser.add_argument("--busy-ms", type=float, default=10.0, help="a CPU-bound test body")
    parser.add_argument("--suites", action="store_true", help="also the 100-test stestr runs")
    parser.add_argument("--enforce-floors", action="store_true")
    args = parser.parse_args(argv)
    calibrate()
    work = tempfile.mkdtemp(prefix="bench-spares-", dir=default_temp_root())
    cache = tempfile.mkdtemp(prefix="bench-spares-cache-")
    os.environ[TMPDIR_ENV] = work
    os.environ[CACHE_ENV] = cache
    failed = False
    try:
        print(
            "%d rounds of %d tests; medians; CPU per test (process + daemons); "
            "idle body %.0f ms, busy body %.0f ms"
            % (args.rounds, args.tests, args.idle_ms, args.busy_ms)
        )
        header = "%-11s %-14s %10s %10s %10s %12s %13s" % (
            "daemon", "contender", "setUp ms", "cleanUp ms", "CPU ms", "busy setUp", "busy body ms",
        )  # fmt: skip
        print(header)
        print("-" * len(header))
        for name in filter(None, args.daemons.split(",")):
            results = run_daemon(name, args, work)
            for contender in CONTENDERS:
                idle, busy_ = results["idle"][contender], results["busy"][contender]
                print(
                    "%-11s %-14s %10s %10s %10s %12s %13s"
                    % (
                        name,
                        contender,
                        ms(idle.setup),
                        ms(idle.cleanup),
                        ms(idle.cpu),
                        ms(busy_.setup),
                        ms(busy_.body),
                    )  # fmt: skip
                )
            if name == "postgresql":
                spare = results["idle"][SPARES]
                if statistics.median(spare.setup) * 1000 > SETUP_FLOOR_MS:
                    failed = True
                    print("floor missed: PostgreSQL setUp above %.0f ms" % SETUP_FLOOR_MS)
                if statistics.median(spare.cleanup) * 1000 > CLEANUP_FLOOR_MS:
                    failed = True
                    print("floor missed: PostgreSQL cleanUp above %.0f ms" % CLEANUP_FLOOR_MS)
        bare = Samples()
        for _ in range(args.rounds * args.tests):
            b0 = time.perf_counter()
            busy(args.busy_ms)
            bare.body.append(time.perf_counter() - b0)
        print("busy body with no daemon at all: %s ms" % ms(bare.body))
        if args.suites:
            run_suites(args, work)
    finally:
        close_spare_servers()
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 2 if failed and args.enforce_floors else 0


if __name__ == "__main__":
    sys.exit(main())
