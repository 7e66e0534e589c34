"""The same 200-test pytest suite under pytest-postgresql and under this
library's pytest plugin, serial and with ``-n 4``; and the per-test cost
of a namespace.

Part 1, the suites, side by side in one run (:mod:`benchmarks._bench`:
every contender once per round, the starting one rotated). Each of the
200 tests gets a fresh database, connects with psycopg, creates a table,
inserts a row and reads it back:

* ``pytest-postgresql``: its ``postgresql_proc`` + ``postgresql``
  fixtures (``-p no:fixtures_daemons``; ``--postgresql-exec`` is the
  installed ``pg_ctl``);
* ``fxd``: this plugin's ``postgresql_proc`` + ``postgresql``
  (``-p no:pytest_postgresql``), one PostgreSQL per worker;
* ``fxd-shared``: the same with ``--fxd-shared postgresql``: one
  PostgreSQL for the whole run, started before the workers.

Each contender serial (``-p no:xdist``) and with ``-n 4``. Every run must
pass its 200 tests.

Part 2, the per-test cost of a namespace: on one PostgreSQL and one Redis
started here, ``DaemonProc.namespace()`` then ``cleanUp()`` (what the
``postgresql`` and ``redis`` fixtures do around each test), medians.

pytest-postgresql's ``pg_ctl`` refuses root: as root, the benchmark runs
itself again as ``fxd-ci`` (``--user``), after writing the plugins'
bytecode caches (see :func:`warm_bytecode`). Run it from the repository root::

    python -m benchmarks.bench_pytest              # 3 rounds
    python -m benchmarks.bench_pytest --rounds 5

Exits 1 if a suite run fails.
"""

from __future__ import annotations

import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time
import typing

try:
    from benchmarks import _bench
except ImportError:  # run as a script
    import _bench  # type: ignore[no-redef]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = 200

SUITE = """
import psycopg
import pytest

FXD = %(fxd)r


def connect(postgresql):
    if FXD:
        return psycopg.connect(postgresql.url, autocommit=True)
    return postgresql  # pytest-postgresql's fixture is a connection


@pytest.mark.parametrize("n", range(%(tests)d))
def test_database(n, postgresql):
    conn = connect(postgresql)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE mine (n int)")
            cur.execute("INSERT INTO mine VALUES (%%s)", (n,))
            cur.execute("SELECT n FROM mine")
            assert cur.fetchall() == [(n,)]
    finally:
        if FXD:
            conn.close()
"""


def _pg_ctl() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return found[-1] if found else "pg_ctl"


def _suite(directory: str, fxd: bool) -> str:
    path = os.path.join(directory, "fxd" if fxd else "pgpytest")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "test_suite.py"), "w") as f:
        f.write(SUITE % {"fxd": fxd, "tests": TESTS})
    return path


def _runner(path: str, args: list[str], failures: list[str]) -> typing.Callable[[], None]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]

    def run() -> None:
        result = subprocess.run(
            command, cwd=path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
        )
        output = result.stdout.decode("utf-8", "replace")
        if result.returncode != 0 or "%d passed" % TESTS not in output:
            failures.append("%s: %s" % (" ".join(args), output[-2000:]))

    return run


def suites(argv: typing.Sequence[str], directory: str) -> int:
    failures: list[str] = []
    theirs = _suite(directory, fxd=False)
    ours = _suite(directory, fxd=True)
    pgp = ["-p", "no:fixtures_daemons", "--postgresql-exec", _pg_ctl()]
    fxd = ["-p", "no:pytest_postgresql"]
    contenders = {
        "pytest-postgresql serial": _runner(theirs, pgp + ["-p", "no:xdist"], failures),
        "fxd serial": _runner(ours, fxd + ["-p", "no:xdist"], failures),
        "pytest-postgresql -n 4": _runner(theirs, pgp + ["-n", "4"], failures),
        "fxd -n 4": _runner(ours, fxd + ["-n", "4"], failures),
        "fxd-shared -n 4": _runner(ours, fxd + ["-n", "4", "--fxd-shared", "postgresql"], failures),
    }
    samples = _bench.main(
        contenders,
        baseline="pytest-postgresql serial",
        description="the same %d-test pytest suite (a database each, psycopg), "
        "one whole pytest run per sample" % TESTS,
        argv=argv,
    )
    median = {name: statistics.median(values) for name, values in samples.items()}
    print()
    for mode, theirs_name in (
        ("serial", "pytest-postgresql serial"),
        ("-n 4", "pytest-postgresql -n 4"),
    ):
        for ours_name in [n for n in median if n.startswith("fxd") and n.endswith(mode)]:
            print(
                "%s is %.1fx faster than %s"
                % (ours_name, median[theirs_name] / median[ours_name], theirs_name)
            )
    if failures:
        print("FAILED runs:\n" + "\n".join(failures))
        return 1
    return 0


def namespace_cost(rounds: int = 50) -> None:
    from fixtures_daemons.integrations.pytest.procs import start_proc
    from fixtures_daemons.integrations.pytest.settings import Settings
    from fixtures_daemons.integrations.registry import daemon_class

    print()
    print("per-test cost of a namespace (namespace() + cleanUp()), %d each:" % rounds)
    for name in ("postgresql", "redis"):
        cls = daemon_class(name)
        proc = start_proc(cls, {"mode": "spawn"}, Settings())
        try:
            times = []
            for _ in range(rounds + 3):
                start = time.perf_counter()
                proc.namespace().cleanUp()
                times.append(time.perf_counter() - start)
            times = times[3:]  # warm-up
            print(
                "  %-10s median %.2f ms, min %.2f ms"
                % (name, statistics.median(times) * 1e3, min(times) * 1e3)
            )
        finally:
            proc.stop()


def warm_bytecode() -> None:
    """Write the bytecode caches of every pytest plugin, as the user who
    can: pytest rewrites the asserts of every module of a distribution that
    registers a plugin (this library's and pytest-postgresql's alike), and
    a user who cannot write them (``fxd-ci`` in a tree root owns) would
    compile them again in every pytest process, which an installed package
    never does after its first run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = REPO
    with tempfile.TemporaryDirectory(prefix="bench-pytest-warm-") as empty:
        subprocess.run(
            [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider"],
            cwd=empty,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


def main(argv: typing.Sequence[str]) -> int:
    warm_bytecode()
    if os.geteuid() == 0 and "--as-root" not in argv:
        print("running as fxd-ci (pytest-postgresql's pg_ctl refuses root)")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": REPO}
        return _bench.rerun_as("fxd-ci", "benchmarks.bench_pytest", list(argv), env)
    argv = [arg for arg in argv if arg != "--as-root"]
    if not any(arg.startswith("--rounds") for arg in argv):
        argv = ["--rounds", "3", *argv]
    if not any(arg.startswith("--warmup") for arg in argv):
        argv = ["--warmup", "1", *argv]
    with tempfile.TemporaryDirectory(prefix="bench-pytest-") as directory:
        status = suites(argv, directory)
    namespace_cost()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
