"""``fixtures-daemons run postgresql -- true`` vs ``pifpaf run postgresql -- true``.

What a user of either command waits for around a test run: the whole
command, from its start (a fresh Python interpreter) until it has exited,
having started PostgreSQL, run ``true`` with the daemon's variables, stopped
PostgreSQL and removed its files. Both contenders run in one process,
interleaved round by round (:mod:`benchmarks._bench`: each once per round,
the starting one rotated), after warm-up rounds that are not counted; the
first warm-up round builds fixtures-daemons' template cache (a private one
for this run, removed at the end), which is what every later run of the
command copies instead of running ``initdb``, and compiles both tools'
bytecode (into a private ``PYTHONPYCACHEPREFIX``: the checkout's
``__pycache__`` may be stale and not writable by the benchmark's user).

* ``fixtures-daemons``: ``python -m fixtures_daemons run postgresql -- true``
  (the installed ``fixtures-daemons`` script runs the same code).
* ``pifpaf``: ``pifpaf run postgresql --port PORT -- true``, on a port
  reserved for the run (pifpaf's default is a fixed port).

Both make their temp dirs in the same memory-backed root (``TMPDIR`` for
pifpaf, ``$FIXTURES_DAEMONS_TMPDIR`` for ours), so the file system is not
what differs.

pifpaf's PostgreSQL driver cannot run as root (``initdb`` refuses it), so
both run as an ordinary user: started as root, the script creates the user
``--user`` (default ``fxdbench``) if it is missing, runs itself again as
that user through ``runuser``, then checks, as root, that nothing of the run
is left. Run it from the repository root (readable by that user)::

    python -m benchmarks.bench_cli                 # 10 rounds, 2 warm-up
    python -m benchmarks.bench_cli --rounds 20

The floor: ours at least 8x faster than pifpaf (median over median). Exits
2 when it is missed, 1 when something is left behind.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing
import uuid

import psutil

from benchmarks import _bench
from fixtures_daemons import reserve_port
from fixtures_daemons.base.templates import CACHE_ENV
from fixtures_daemons.process.tempdirs import TMPDIR_ENV, default_temp_root

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESCRIPTION = "`fixtures-daemons run postgresql -- true` vs `pifpaf run postgresql -- true`"
DEFAULT_USER = "fxdbench"
OURS = "fixtures-daemons"
PIFPAF = "pifpaf"
#: pifpaf's median over ours must be at least this.
FLOOR = 8.0
#: Every process of the run carries this variable (children inherit it).
MARKER_ENV = "FXD_BENCH_CLI_RUN"


class Command:
    """Run a command to its end; fail loudly if it fails."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        self.env = env

    def __call__(self) -> None:
        _reap()  # the orphans of the last run (pg_ctl's postgres): microseconds
        result = subprocess.run(
            self.argv,
            env=self.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                "%s exited %d:\n%s"
                % (" ".join(self.argv), result.returncode, (result.stdout + result.stderr).decode())
            )


def parse_args(argv: typing.Sequence[str]) -> tuple[argparse.Namespace, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_cli",
        description=DESCRIPTION + " (--rounds and --warmup: see below)",
        add_help=False,
    )
    parser.add_argument(
        "--user", default=DEFAULT_USER, help="started as root, run as this user (%(default)s)"
    )
    parser.add_argument(
        "--pifpaf-tmpdir",
        default="",
        help="pifpaf's TMPDIR: 'same' for ours (memory-backed when there is room), a path, "
        "or empty for what it uses when run as typed (the default)",
    )
    ours, rest = parser.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        parser.print_help()
        print()
    if not any(arg.startswith("--rounds") for arg in rest):
        rest = ["--rounds", "10", *rest]  # each pifpaf round takes seconds
    if not any(arg.startswith("--warmup") for arg in rest):
        rest = ["--warmup", "2", *rest]
    return ours, _bench.parse_args(rest, DESCRIPTION, min_warmup=1)


def _become_subreaper() -> bool:
    """Make orphaned descendants (pg_ctl's postgres, a watchdog) our children
    instead of init's: what the run leaves stays in our process tree, and
    another run on the machine (as the same user) is not blamed for it."""
    import ctypes

    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0)


def _reap() -> None:
    """Collect exited orphans (nobody else will)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _descendants() -> list[str]:
    """Our live descendants, as "pid comm: cmdline" (zombies reaped)."""
    _reap()
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(
                    "%d %s: %s" % (process.pid, process.name(), " ".join(process.cmdline()))
                )
        except psutil.Error:
            pass
    return found


def _marked(marker: str) -> list[str]:
    """Live processes carrying the run's marker, as "pid comm"."""
    needle = ("%s=%s" % (MARKER_ENV, marker)).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                environ = f.read().split(b"\0")
            with open("/proc/%s/comm" % entry) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if needle in environ:
            found.append("%s %s" % (entry, comm))
    return found


def run_as_user(argv: typing.Sequence[str], user: str) -> int:
    """As root: run this benchmark again as ``user`` (created if missing),
    then check, as root, that none of its processes is left."""
    marker = uuid.uuid4().hex
    print("running as %s (pifpaf's PostgreSQL refuses root)" % user)
    status = _bench.rerun_as(user, "benchmarks.bench_cli", argv, {MARKER_ENV: marker})
    deadline = time.monotonic() + 5  # watchdogs finish a moment after their process
    while True:
        left = _marked(marker)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if left:
        print("LEAK (seen as root): %s" % "; ".join(left))
        return 1
    print("checked as root: no process carrying the run's marker is left")
    return status


def benchmark(argv: typing.Sequence[str]) -> int:
    """Run the benchmark as ourselves (not root)."""
    ours, bench = parse_args(argv)
    pifpaf = os.path.join(os.path.dirname(sys.executable), "pifpaf")
    if not os.access(pifpaf, os.X_OK):
        pifpaf = shutil.which("pifpaf") or ""
    if not pifpaf:
        print("pifpaf is not installed (pip install pifpaf): nothing to compare with")
        return 1
    subreaper = _become_subreaper()
    root = tempfile.mkdtemp(prefix="fxd-bench-cli-", dir=default_temp_root())
    temp_root = os.path.join(root, "tmp")
    os.mkdir(temp_root)
    env = dict(os.environ)
    env.update(
        {
            CACHE_ENV: os.path.join(root, "cache"),  # built by the first warm-up round
            TMPDIR_ENV: temp_root,
            "PYTHONPATH": REPO_ROOT,
            # pifpaf runs pg_config from PATH; Debian has it in /usr/bin.
            "PATH": env.get("PATH", os.defpath) + ":/usr/bin",
            # Bytecode compiled once (in the first warm-up round), as for an
            # installed package, not on every run because the checkout's
            # __pycache__ is stale or not ours to write.
            "PYTHONPYCACHEPREFIX": os.path.join(root, "pycache"),
        }
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # pifpaf makes its temp dir in $TMPDIR (not ours: our locks live in the
    # system temp dir, which every fixtures-daemons process must agree on).
    pifpaf_env = dict(env)
    if ours.pifpaf_tmpdir == "same":
        pifpaf_env["TMPDIR"] = temp_root
    elif ours.pifpaf_tmpdir:
        pifpaf_env["TMPDIR"] = ours.pifpaf_tmpdir
    pifpaf_tmp = pifpaf_env.get("TMPDIR") or tempfile.gettempdir()
    problems: list[str] = []
    with reserve_port(what="pifpaf") as port:
        contenders: dict[str, _bench.Run] = {
            OURS: Command(
                [sys.executable, "-m", "fixtures_daemons", "run", "postgresql", "--", "true"], env
            ),
            PIFPAF: Command(
                [pifpaf, "run", "postgresql", "--port", str(port.port), "--", "true"], pifpaf_env
            ),
        }
        print(DESCRIPTION)
        print(
            "as user %s; temp dirs in %s, pifpaf's in %s"
            % (pwd.getpwuid(os.geteuid()).pw_name, temp_root, pifpaf_tmp)
        )
        print("before: " + _bench._machine())
        print(
            "%d rounds (+%d warm-up, not counted; the first builds the template cache), "
            "contenders interleaved, the first one rotated each round"
            % (bench.rounds, bench.warmup)
        )
        sys.stdout.flush()
        try:
            samples = _bench.measure(contenders, bench.rounds, bench.warmup)
        finally:
            print("after:  " + _bench._machine())
            deadline = time.monotonic() + 5  # watchdogs exit a moment after their process
            while _descendants() and time.monotonic() < deadline:
                time.sleep(0.05)
            problems += ["process left: " + p for p in _descendants()]
            left = sorted(os.listdir(temp_root))
            if left:
                problems.append("temp dirs left in %s: %s" % (temp_root, left))
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(_bench.format_table(samples, baseline=OURS))
    print()
    ratio = statistics.median(samples[PIFPAF]) / statistics.median(samples[OURS])
    met = ratio >= FLOOR
    print(
        "floor: pifpaf / fixtures-daemons = %.1fx, wanted >= %gx: %s"
        % (ratio, FLOOR, "met" if met else "MISSED")
    )
    for problem in problems:
        print("LEAK: " + problem)
    if problems:
        return 1
    print(
        "no leaks: no process left below this one%s, no temp dir left"
        % (" (a subreaper)" if subreaper else "")
    )
    return 0 if met else 2


def main(argv: typing.Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.geteuid() == 0:
        ours, _ = parse_args(argv)
        return run_as_user(argv, ours.user)
    return benchmark(argv)


if __name__ == "__main__":
    sys.exit(main())
