"""The example suite (examples/shop) the three ways, and the cost of an
isolated database on a shared PostgreSQL.

Part 1, the suites: the shop's 218 tests (PostgreSQL and Redis) run with
stestr, exactly as ``examples/run-all-ways.sh`` runs them, each way at
concurrency 1 and 2, side by side in one run (:mod:`benchmarks._bench`:
every contender once per round, the starting one rotated):

* ``class``: ``SHOP_TESTS=class stestr run``: a PostgreSQL and a Redis
  per test class (8 classes), reset before each test;
* ``shared``: ``SHOP_TESTS=shared stestr run``: testresources, each
  daemon started once per stestr worker and reset before each test;
* ``attach``: ``python -m fixtures_daemons run postgresql -- python -m
  fixtures_daemons run redis -- stestr run``: one of each for the run;
  each test attaches (a database copied from the template, a Redis db
  number) and removes its namespace again.

Each run has a new stestr repository (no timing data: stestr partitions
the tests the same way every time) and must pass every test.

Part 2, the per-test cost of attach mode: on one spawned PostgreSQL,
``PostgresqlFixture(mode="attach")`` ``setUp()`` then ``cleanUp()`` (a
database of its own, dropped again), without and with the shop's template,
with the database pool (the default) and without it
(``$FIXTURES_DAEMONS_DATABASE_POOL=0``: created and dropped while the test
waits); beside them the floor of doing it by hand, ``CREATE DATABASE ...
STRATEGY FILE_COPY`` and ``DROP DATABASE`` on one open connection. The
median with the pool must be at most 3 ms without the template (the
floor). For scale, a ``PostgresqlFixture(mode="spawn")`` of its own,
started and stopped.

Part 3, what the background work costs a busy test: a CPU-bound loop
(about 10 ms of pure Python) timed inside each attached fixture, with and
without the pool, and with no fixture at all; on a 2-core machine the
pool's refills and drops run beside the loop.

Run it from the repository root, with the test requirements and the
daemons installed::

    python -m benchmarks.bench_sharing                    # 3 rounds
    python -m benchmarks.bench_sharing --rounds 5 --attach-rounds 100

Exits 1 if a suite run fails, 2 with ``--enforce-floors`` if the floor is
missed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import typing

from benchmarks import _bench
from fixtures_daemons import PostgresqlFixture
from fixtures_daemons.base.namespaces import POOL_ENV, close_database_pools
from fixtures_daemons.daemons import _pgwire

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOP = os.path.join(REPO, "examples", "shop")
SCHEMA = os.path.join(SHOP, "shop", "schema.sql")
WAYS = ("class", "shared", "attach")
#: Attached setUp + cleanUp, median, without a template, pooled: at most this.
FLOOR_MS = 3.0


class SuiteFailed(Exception):
    pass


def suite_command(way: str, concurrency: int, repo_dir: str) -> list[str]:
    python = sys.executable
    stestr = [python, "-m", "stestr", "--repo-url", repo_dir, "run"]
    stestr += ["--concurrency", str(concurrency)]
    if way != "attach":
        return stestr
    cli = [python, "-m", "fixtures_daemons", "run"]
    return cli + ["postgresql", "--"] + cli + ["redis", "--"] + stestr


def suite_runner(way: str, concurrency: int, work: str, counts: dict[str, int]) -> _bench.Run:
    name = "%s -c%d" % (way, concurrency)
    env = dict(os.environ, SHOP_TESTS=way, PYTHONDONTWRITEBYTECODE="1")
    # The package from this checkout, when it is not installed.
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

    def run() -> None:
        repo_dir = tempfile.mkdtemp(prefix="stestr-", dir=work)
        try:
            result = subprocess.run(
                suite_command(way, concurrency, repo_dir),
                cwd=SHOP,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                check=False,
            )
        finally:
            shutil.rmtree(repo_dir, ignore_errors=True)
        output = result.stdout.decode("utf-8", "replace")
        passed = re.findall(r"^ - Passed: (\d+)$", output, re.MULTILINE)
        failed = re.findall(r"^ - Failed: (\d+)$", output, re.MULTILINE)
        if result.returncode != 0 or not passed or failed != ["0"]:
            raise SuiteFailed(
                "%s failed (status %d):\n%s" % (name, result.returncode, output[-5000:])
            )
        counts[name] = int(passed[-1])

    return run


def pg_runner(mode: str, template: str | None = None, pool: bool = True) -> _bench.Run:
    def run() -> None:
        with pool_setting(pool):
            fixture = PostgresqlFixture(mode=mode, template=template)
            fixture.setUp()
            fixture.cleanUp()

    return run


class pool_setting:
    """``$FIXTURES_DAEMONS_DATABASE_POOL`` unset (the default pool), or 0."""

    def __init__(self, pool: bool) -> None:
        self.pool = pool

    def __enter__(self) -> None:
        self.old = os.environ.pop(POOL_ENV, None)
        if not self.pool:
            os.environ[POOL_ENV] = "0"

    def __exit__(self, *exc_info: object) -> None:
        os.environ.pop(POOL_ENV, None)
        if self.old is not None:
            os.environ[POOL_ENV] = self.old


def raw_runner(server: PostgresqlFixture) -> _bench.Run:
    """The floor: CREATE and DROP on one connection that stays open."""
    conn = _pgwire.connect(server.socket_path, server.user, "postgres")
    counter = [0]

    def run() -> None:
        counter[0] += 1
        name = '"raw_%d_%d"' % (os.getpid(), counter[0])
        conn.query("CREATE DATABASE %s TEMPLATE template0 STRATEGY FILE_COPY" % name)
        conn.query("DROP DATABASE %s" % name)

    return run


def busy_loop() -> float:
    """About 10 ms of pure Python; its duration."""
    start = time.perf_counter()
    total = 0
    for i in range(250_000):
        total += i * i
    return time.perf_counter() - start


def busy_runner(pool: bool | None, loops: list[float]) -> _bench.Run:
    def run() -> None:
        if pool is None:
            loops.append(busy_loop())
            return
        with pool_setting(pool):
            fixture = PostgresqlFixture(mode="attach")
            fixture.setUp()
            loops.append(busy_loop())
            fixture.cleanUp()

    return run


def main(argv: typing.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="suite rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="suite warm-up rounds (default 1)")
    parser.add_argument(
        "--attach-rounds", type=int, default=60, help="attach rounds (default 60, min 50)"
    )
    parser.add_argument("--ways", default=",".join(WAYS), help="which ways (default: all)")
    parser.add_argument("--concurrency", default="1,2", help="stestr concurrencies (default 1,2)")
    parser.add_argument("--no-suites", action="store_true", help="skip part 1 (the suites)")
    parser.add_argument("--enforce-floors", action="store_true", help="exit 2 on a missed floor")
    args = parser.parse_args(argv)
    if args.rounds < 3 or args.attach_rounds < 50:
        parser.error("--rounds must be at least 3 and --attach-rounds at least 50")
    ways = [way for way in args.ways.split(",") if way]
    if set(ways) - set(WAYS):
        parser.error("--ways: choose from %s" % ", ".join(WAYS))
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    status = 0
    if not args.no_suites:
        status = run_suites(args, ways, concurrencies)
        if status == 1:
            return status
    return run_attach(args) or status


def run_suites(args: argparse.Namespace, ways: list[str], concurrencies: list[int]) -> int:
    counts: dict[str, int] = {}
    status = 0
    with tempfile.TemporaryDirectory(prefix="bench-sharing-") as work:
        contenders = {
            "%s -c%d" % (way, c): suite_runner(way, c, work, counts)
            for c in concurrencies
            for way in ways
        }
        print("Part 1: the example suite (examples/shop), stestr run, wall time of one run")
        print("before: " + _bench._machine())
        print(
            "%d rounds (+%d warm-up, not counted), contenders interleaved, start rotated "
            "each round" % (args.rounds, args.warmup)
        )
        sys.stdout.flush()
        try:
            samples = _bench.measure(contenders, args.rounds, args.warmup)
        except SuiteFailed as exc:
            print(exc)
            return 1
        print("after:  " + _bench._machine())
        print()
        print(_bench.format_table(samples, next(iter(contenders))))
        print("tests per run: %s" % ", ".join("%s %d" % item for item in counts.items()))
        if len(set(counts.values())) != 1:
            print("the runs did not all run the same tests")
            status = 1
    return status


def run_attach(args: argparse.Namespace) -> int:
    status = 0
    print()
    print("Part 2: attached PostgresqlFixture setUp + cleanUp on one shared PostgreSQL")
    server = PostgresqlFixture(mode="spawn", share=True)
    server.setUp()
    loops: dict[str, list[float]] = {"no fixture": [], "pool": [], "no pool": []}
    try:
        samples = _bench.measure(
            {
                "attach": pg_runner("attach"),
                "attach, no pool": pg_runner("attach", pool=False),
                "attach + template": pg_runner("attach", SCHEMA),
                "attach + template, no pool": pg_runner("attach", SCHEMA, pool=False),
                "raw CREATE + DROP (floor)": raw_runner(server),
                "spawn (for scale)": pg_runner("spawn"),
            },
            args.attach_rounds,
            5,
        )
        print("%d rounds (+5 warm-up), after: %s" % (args.attach_rounds, _bench._machine()))
        print()
        print(_bench.format_table(samples, "attach, no pool"))
        median = _bench.summarize(samples["attach"]).median * 1e3
        verdict = "met" if median <= FLOOR_MS else "MISSED"
        print()
        print("floor: attach median %.2f ms, at most %.0f ms: %s" % (median, FLOOR_MS, verdict))
        if median > FLOOR_MS and args.enforce_floors:
            status = status or 2

        print()
        print("Part 3: a CPU-bound loop (~10 ms) inside each attached fixture")
        _bench.measure(
            {
                "no fixture": busy_runner(None, loops["no fixture"]),
                "pool": busy_runner(True, loops["pool"]),
                "no pool": busy_runner(False, loops["no pool"]),
            },
            args.attach_rounds,
            5,
        )
        base = _bench.summarize(loops["no fixture"][5:])
        for name, values in loops.items():
            summary = _bench.summarize(values[5:])
            print(
                "  %-12s loop median %.2f ms (%+.1f%%), min %.2f ms"
                % (
                    name,
                    summary.median * 1e3,
                    (summary.median / base.median - 1) * 100,
                    summary.minimum * 1e3,
                )
            )
    finally:
        close_database_pools()
        server.cleanUp()
    return status


if __name__ == "__main__":
    sys.exit(main())
