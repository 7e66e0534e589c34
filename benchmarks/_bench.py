"""A tiny side-by-side benchmark harness (standard library only).

Benchmarks here compare *contenders* doing the same job (a bare subprocess,
this library, another library). Timing them in separate runs would compare
the machine's mood at different moments, so every contender runs once per
round, rounds repeat, and the starting contender rotates from round to round:
noise, CPU frequency changes and cache effects hit all contenders alike, and
none always runs right after the same neighbour. Warm-up rounds absorb
one-time costs (imports, page cache, a helper process started on first use)
and are not counted.

Use::

    from benchmarks import _bench   # or "import _bench" when run as a script

    _bench.main({"bare": run_bare, "mine": run_mine}, baseline="bare",
                description="what one run does")
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import typing

__all__ = ["Stats", "main", "measure", "format_table", "parse_args", "summarize"]

#: A contender: one run of the thing being measured; its return value is ignored.
Run = typing.Callable[[], object]

DEFAULT_ROUNDS = 20
DEFAULT_WARMUP = 3


class Stats(typing.NamedTuple):
    """Summary of one contender's samples, in seconds."""

    median: float
    minimum: float
    p90: float
    runs: int


def parse_args(
    argv: typing.Sequence[str] | None, description: str, min_warmup: int = 0
) -> argparse.Namespace:
    """--rounds and --warmup; ``min_warmup`` guards one-time costs that a
    benchmark must keep out of the counted rounds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help="counted rounds, each running every contender once (default %(default)s, min 2)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=max(DEFAULT_WARMUP, min_warmup),
        help="rounds run first and not counted (default %%(default)s, min %d)" % min_warmup,
    )
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (a p90 needs two samples)")
    if args.warmup < min_warmup:
        parser.error("--warmup must be at least %d for this benchmark" % min_warmup)
    return args


def measure(
    contenders: typing.Mapping[str, Run], rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Run the contenders round-robin; return wall-clock seconds per run.

    Garbage is collected before each run, outside the timed part, so one
    contender's leftovers are not charged to the next.
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(warmup + rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            run = contenders[name]
            gc.collect()
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            if round_no >= warmup:
                samples[name].append(elapsed)
    return samples


def summarize(values: typing.Sequence[float]) -> Stats:
    """Median, minimum and 90th percentile (inclusive method) of ``values``."""
    p90 = statistics.quantiles(values, n=10, method="inclusive")[-1]
    return Stats(statistics.median(values), min(values), p90, len(values))


def format_table(samples: typing.Mapping[str, typing.Sequence[float]], baseline: str) -> str:
    """A plain-text table; the ratio is median over the baseline's median."""
    stats = {name: summarize(values) for name, values in samples.items()}
    base = stats[baseline].median
    header = ("contender", "median ms", "min ms", "p90 ms", "x %s" % baseline)
    rows = [
        (
            name,
            "%.2f" % (s.median * 1e3),
            "%.2f" % (s.minimum * 1e3),
            "%.2f" % (s.p90 * 1e3),
            "%.2fx" % (s.median / base),
        )
        for name, s in stats.items()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: typing.Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _machine() -> str:
    load = "%.2f %.2f %.2f" % os.getloadavg()
    return "python %s on %s, %s CPUs, load average %s" % (
        platform.python_version(),
        platform.platform(terse=True),
        os.cpu_count(),
        load,
    )


def main(
    contenders: typing.Mapping[str, Run],
    baseline: str,
    description: str,
    argv: typing.Sequence[str] | None = None,
    min_warmup: int = 0,
    notes: typing.Sequence[str] = (),
) -> dict[str, list[float]]:
    """Parse --rounds/--warmup, run, print the table; return the samples so
    the caller can check for leaks or assert a floor afterwards."""
    if baseline not in contenders:
        raise ValueError("baseline %r is not one of the contenders" % baseline)
    args = parse_args(argv, description, min_warmup)
    print(description)
    for note in notes:
        print("note: " + note)
    print("before: " + _machine())
    print(
        "%d rounds (+%d warm-up, not counted), contenders interleaved, "
        "start rotated each round" % (args.rounds, args.warmup)
    )
    sys.stdout.flush()
    samples = measure(contenders, args.rounds, args.warmup)
    print("after:  " + _machine())
    print()
    print(format_table(samples, baseline))
    return samples


def rerun_as(user: str, module: str, argv: typing.Sequence[str], env: dict[str, str]) -> int:
    """As root: run ``python -m module argv`` again as ``user`` (created
    with ``useradd -m`` if missing), from the repository root, with a small
    clean environment plus ``env``; return its exit status. pifpaf's
    PostgreSQL and MariaDB refuse root, so the benchmarks that compare with
    them run this way."""
    import pwd
    import subprocess

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        print("creating user %s (useradd -m %s)" % (user, user))
        subprocess.run(["useradd", "-m", user], check=True)
        entry = pwd.getpwnam(user)
    home = entry.pw_dir if os.path.isdir(entry.pw_dir) else "/tmp"
    sys.stdout.flush()
    variables = {"HOME": home, "USER": user, "LOGNAME": user, "PYTHONDONTWRITEBYTECODE": "1"}
    variables.update(env)
    command = ["runuser", "-u", user, "--", "env"]
    command += ["%s=%s" % item for item in variables.items()]
    command += [sys.executable, "-m", module, *argv]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.call(command, cwd=repo)
