"""This checkout against another one (an earlier commit), side by side.

A change that reshapes code must not make it slower; timing the two in
separate runs would compare the machine's mood at two moments. Here each
round runs, for each checkout in turn (the order rotated every round):

* ``import``: ``python -c "import fixtures_daemons"``, the whole process;
* ``<daemon>``: a child process that imports the checkout, makes one
  fixture of the daemon (``mode="spawn"``) as a warm-up, then times
  ``--cycles`` ``setUp()`` + ``cleanUp()`` of fresh fixtures and reports
  their median: what a test that makes a fresh daemon pays, in a process
  that has made one before (so the template copy may come from the
  background copy, as in a real suite);
* ``cli``: ``python -m fixtures_daemons run postgresql -- true``, the whole
  process.

Make the other checkout with ``git worktree add /tmp/fxd-before <commit>``
(it must be readable by the user the benchmark runs as) and run, from this
checkout's root::

    python -m benchmarks.bench_versions --other /tmp/fxd-before --rounds 10

The table gives each figure's median over the rounds for both checkouts and
the ratio this/other (below 1.00x: this checkout is faster). Both use the
same template cache, built in the warm-up round. Exits 1 if a temp dir of
ours is left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import typing

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Run in a child process with the checkout on its path: prints one JSON
#: line, the median seconds of the cycles.
CHILD = """
import json, statistics, sys, time
import fixtures_daemons
cls = getattr(fixtures_daemons, sys.argv[1])
cycles = int(sys.argv[2])
warm = cls(mode="spawn")
warm.setUp()
warm.cleanUp()
times = []
for _ in range(cycles):
    fixture = cls(mode="spawn")
    start = time.perf_counter()
    fixture.setUp()
    fixture.cleanUp()
    times.append(time.perf_counter() - start)
print(json.dumps(statistics.median(times)))
"""

DAEMONS = {
    "postgresql": "PostgresqlFixture",
    "mysql": "MysqlFixture",
    "redis": "RedisFixture",
    "memcached": "MemcachedFixture",
}


def _env(checkout: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = checkout
    return env


def _timed(command: list[str], checkout: str) -> float:
    """Seconds the whole command took; it must succeed."""
    start = time.perf_counter()
    subprocess.run(command, cwd=checkout, env=_env(checkout), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _cycles(checkout: str, class_name: str, cycles: int) -> float:
    """The median seconds of one setUp + cleanUp, measured in a child."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, class_name, str(cycles)],
        cwd=checkout,
        env=_env(checkout),
        check=True,
        capture_output=True,
        text=True,
    )
    value: float = json.loads(result.stdout.strip().splitlines()[-1])
    return value


def figures(daemons: typing.Sequence[str], cycles: int) -> dict[str, typing.Callable[[str], float]]:
    found: dict[str, typing.Callable[[str], float]] = {
        "import": lambda checkout: _timed(
            [sys.executable, "-c", "import fixtures_daemons"], checkout
        )
    }
    for daemon in daemons:
        found[daemon] = lambda checkout, name=DAEMONS[daemon]: _cycles(checkout, name, cycles)
    if "postgresql" in daemons:
        found["cli run postgresql"] = lambda checkout: _timed(
            [sys.executable, "-m", "fixtures_daemons", "run", "postgresql", "--", "true"],
            checkout,
        )
    return found


def leftovers(before: set[str]) -> list[str]:
    """Temp dirs of ours that appeared during the run and are still there
    a few seconds later (the children's watchdogs delete their trash and
    spares in the background, just after the children exit)."""
    from fixtures_daemons.process.tempdirs import default_temp_root
    from fixtures_daemons.process.waiting import wait_for

    root = default_temp_root()

    def left() -> list[str]:
        return sorted(
            os.path.join(root, entry)
            for entry in set(os.listdir(root)) - before
            if entry.startswith("fxd-") or entry.startswith(".fxd-")
        )

    wait_for(lambda: not left(), 10.0)
    return left()


def main(argv: typing.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", required=True, help="the other checkout's root")
    parser.add_argument("--rounds", type=int, default=10, help="counted rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="rounds not counted (default 1)")
    parser.add_argument("--cycles", type=int, default=15, help="setUp+cleanUp per child")
    parser.add_argument(
        "--daemons", default=",".join(DAEMONS), help="comma-separated (default: all four)"
    )
    args = parser.parse_args(argv)
    other = os.path.abspath(args.other)
    checkouts = {"this": HERE, "other": other}
    daemons = [d for d in args.daemons.split(",") if d]
    jobs = figures(daemons, args.cycles)
    from fixtures_daemons.process.tempdirs import default_temp_root

    before = set(os.listdir(default_temp_root()))
    print("this: %s, other: %s" % (HERE, other))
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    samples: dict[tuple[str, str], list[float]] = {
        (job, which): [] for job in jobs for which in checkouts
    }
    order = list(checkouts)
    for round_no in range(args.warmup + args.rounds):
        shift = round_no % len(order)
        for which in order[shift:] + order[:shift]:
            for job, run in jobs.items():
                value = run(checkouts[which])
                if round_no >= args.warmup:
                    samples[(job, which)].append(value)
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    print(
        "%d rounds (+%d warm-up); daemons: median of %d setUp+cleanUp per child, "
        "then the median over the rounds" % (args.rounds, args.warmup, args.cycles)
    )
    print()
    header = ("figure", "this ms", "other ms", "this/other")
    rows = []
    for job in jobs:
        mine = statistics.median(samples[(job, "this")]) * 1e3
        theirs = statistics.median(samples[(job, "other")]) * 1e3
        rows.append((job, "%.2f" % mine, "%.2f" % theirs, "%.2fx" % (mine / theirs)))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        cells = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join([row[0].ljust(widths[0]), *cells]))
    left = leftovers(before)
    if left:
        print("LEFT BEHIND: %s" % ", ".join(left))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
