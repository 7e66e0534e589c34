"""Stress the watchdog and the spares: parallel workers, fresh daemons,
random SIGKILLs; nothing may be left behind.

What ``stestr --concurrency 4`` does to the library, harder: ``--workers``
test processes share one temp root and set up and clean up fresh daemons
(``PostgresqlFixture(mode="spawn")`` by default), one after another, until
``--fixtures`` of them have been used; from its second daemon on, every
worker's watchdog prepares a spare copy of the template that any worker may
claim. Meanwhile the supervisor SIGKILLs, at random moments of random
fixtures, ``--kills`` times in all: a worker (its watchdog must clean up
after it), a worker's watchdog (the worker must go on, its next use
starting another watchdog that takes over), or both (the next watchdog
started on the machine must sweep what they left). Every ``--recycle``
fixtures a worker exits normally and is replaced: its watchdog then removes
its unclaimed spares while the other workers claim them.

A fixture that fails in a worker that was not killed is a failure. At the
end, after every worker has exited and a last process has started a
watchdog (which sweeps), nothing of the run may be left: no process
carrying the run's marker variable or working in the temp root, nothing in
the temp root, no journal of the run's watchdogs in the registry and, with
``--cold`` (a template cache of the run's own, built under the kills), no
staging dir in the cache.

Run it by hand from the repository root (it takes minutes; the test suite
runs a small one, ``tests.test_watchdog.TestStress``)::

    python tools/stress_watchdog.py --workers 4 --fixtures 1000 --kills 40

It prints a JSON report on its last line and exits 0 when nothing failed
and nothing was left, 1 otherwise, 77 when the daemon is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import typing

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from fixtures_daemons.process import _reaper  # noqa: E402
from fixtures_daemons.process.tempdirs import TMPDIR_ENV, default_temp_root  # noqa: E402
from fixtures_daemons.process.waiting import wait_for  # noqa: E402

try:
    from fixtures_daemons.process.watchdog import registry_dir
except ImportError:  # a version without a registry (to compare with)

    def registry_dir() -> str | None:
        return None


#: Marks every process of a run (daemons inherit it, unless they overwrite
#: their environment, as PostgreSQL's children do: those work in the temp
#: root).
RUN_ENV = "FIXTURES_DAEMONS_STRESS_RUN"

WORKER = """
import json, os, sys, traceback
import fixtures_daemons
from fixtures_daemons.process.watchdog import Watchdog

cls = getattr(fixtures_daemons, sys.argv[1])

def say(**report):
    watchdog = Watchdog.get()
    report.update(watchdog=watchdog.process.pid, token=watchdog.token,
                  restarts=getattr(watchdog, "restarts", 0))
    sys.stdout.write(json.dumps(report) + "\\n")
    sys.stdout.flush()

say(hello=os.getpid())
for line in sys.stdin:
    n = int(line)
    try:
        fixture = cls(mode="spawn")
        fixture.setUp()
        say(up=n)
        fixture.query("SELECT 1")
        fixture.cleanUp()
        say(done=n)
    except Exception:
        say(error=n, traceback=traceback.format_exc())
"""

#: The last process: starts a watchdog, which sweeps, and waits until told.
SWEEPER = """
import sys
from fixtures_daemons.process.watchdog import Watchdog
print(Watchdog.get().process.pid, flush=True)
sys.stdin.read()
"""


class Worker:
    def __init__(self, fixture_class: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, fixture_class],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO_ROOT,
        )
        assert self.process.stdout is not None
        self.fd = self.process.stdout.fileno()
        self.buffer = b""
        self.busy: int | None = None  # the fixture it works on
        self.started = 0.0
        self.used = 0
        self.watchdog = 0
        self.killed = False
        self.closing = False
        self.restarts = 0  # of its watchdog

    @property
    def pid(self) -> int:
        return self.process.pid

    def give(self, n: int) -> None:
        assert self.process.stdin is not None
        self.busy = n
        self.started = time.monotonic()
        self.process.stdin.write(b"%d\n" % n)
        self.process.stdin.flush()

    def close(self) -> None:
        self.closing = True
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def read(self) -> list[dict[str, typing.Any]] | None:
        """The reports that arrived; None at EOF."""
        data = os.read(self.fd, 65536)
        if not data:
            return None
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]


def environ(pid: int) -> bytes:
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def cwd(pid: int) -> str:
    try:
        return os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        return ""


def run_processes(run_id: str, root: str) -> list[str]:
    """The live processes of the run: by marker, or working in the root."""
    marker = ("%s=%s" % (RUN_ENV, run_id)).encode()
    found = []
    for pid in _reaper._pids():
        if pid == os.getpid() or not _reaper.start_time(pid):
            continue
        where = cwd(pid)
        if marker in environ(pid).split(b"\0") or where == root or where.startswith(root + "/"):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                cmdline = "?"
            found.append("process %d (cwd %s): %s" % (pid, where or "?", cmdline.strip()))
    return found


def watchdog_of(pid: int) -> int:
    """The watchdog child of the worker ``pid`` (0 if none)."""
    for child in _reaper.find_descendants(pid):
        try:
            with open("/proc/%d/cmdline" % child, "rb") as f:
                if b"_reaper.py" in f.read():
                    return child
        except OSError:
            continue
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--fixtures", type=int, default=1000, help="fixtures used in all")
    parser.add_argument("--kills", type=int, default=40, help="SIGKILLs in all")
    parser.add_argument("--recycle", type=int, default=25, help="fixtures per worker")
    parser.add_argument("--fixture-class", default="PostgresqlFixture")
    parser.add_argument("--cold", action="store_true", help="a template cache of its own")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=0, help="seconds (default: scaled)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)  # noqa: S311 - reproducible kills, not secrets

    import fixtures_daemons
    from fixtures_daemons.base.binaries import find_executable

    try:
        find_executable(getattr(fixtures_daemons, args.fixture_class).executable)
    except fixtures_daemons.ExecutableNotFound as exc:
        print("skipped: %s" % exc)
        return 77

    run_id = "%d-%s" % (os.getpid(), os.urandom(4).hex())
    root = tempfile.mkdtemp(prefix="stress-root-", dir=default_temp_root())
    os.chmod(root, 0o755)  # noqa: S103 - the daemon's user (nobody under root) enters it
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    env[TMPDIR_ENV] = root
    env[RUN_ENV] = run_id
    cache = ""
    if args.cold:
        cache = tempfile.mkdtemp(prefix="stress-cache-")
        env["FIXTURES_DAEMONS_CACHE_DIR"] = cache

    kinds = ["runner", "watchdog", "both"]
    began = time.monotonic()
    timeout = args.timeout or 120 + 3.0 * args.fixtures / max(1, args.workers) * 4
    # Kills at random fixtures of the first 80 % (a kill whose fixture is
    # over before its moment hits the next one), of each kind in turn.
    early = args.fixtures * 4 // 5
    kill_at = set(rng.sample(range(early), min(args.kills, early)))
    kill_kinds = [kinds[i % len(kinds)] for i in range(len(kill_at))]
    rng.shuffle(kill_kinds)
    report: dict[str, typing.Any] = {
        "seed": seed,
        "workers": args.workers,
        "fixtures": 0,
        "fixtures_lost_to_kills": 0,
        "kills": {kind: 0 for kind in kinds},
        "watchdog_restarts": 0,
        "workers_started": 0,
        "failures": [],
        "left": [],
    }
    workers: dict[int, Worker] = {}
    tokens: set[str] = set()
    durations: list[float] = []
    next_n = 0
    carried: list[str] = []  # kills whose fixture was over before their moment
    pending_kills: list[tuple[float, int, int, str]] = []  # when, worker, fixture, kind

    def start_worker() -> None:
        worker = Worker(args.fixture_class, env)
        workers[worker.fd] = worker
        report["workers_started"] += 1

    try:
        while report["fixtures"] < args.fixtures:
            if time.monotonic() - began > timeout:
                report["failures"].append("timed out after %.0f s" % timeout)
                break
            if len(report["failures"]) >= 20:
                report["failures"].append("given up after 20 failures")
                break
            live = [w for w in workers.values() if not w.closing]
            for _ in range(args.workers - len(live)):
                start_worker()
            for worker in workers.values():
                in_flight = sum(1 for w in workers.values() if w.busy is not None)
                if (
                    worker.busy is None
                    and not worker.closing
                    # Killed right after it reported its last fixture done.
                    and not worker.killed
                    and worker.watchdog  # said hello
                    and report["fixtures"] + in_flight < args.fixtures
                ):
                    n = next_n
                    next_n += 1
                    worker.give(n)
                    kind = kill_kinds.pop() if n in kill_at else carried.pop() if carried else ""
                    if kind:
                        typical = statistics.median(durations[-20:]) if durations else 0.3
                        when = time.monotonic() + rng.uniform(0, typical * 1.2)
                        pending_kills.append((when, worker.fd, n, kind))
            pending_kills.sort()
            wait = 1.0
            if pending_kills:
                wait = max(0.0, min(wait, pending_kills[0][0] - time.monotonic()))
            readable, _, _ = select.select(list(workers), [], [], wait)
            now = time.monotonic()
            while pending_kills and pending_kills[0][0] <= now:
                _, fd, n, kind = pending_kills.pop(0)
                target = workers.get(fd)
                if target is None or target.busy != n or target.killed:
                    carried.append(kind)  # done already: the next fixture's
                    continue
                watchdog = watchdog_of(target.pid)
                if kind in ("watchdog", "both") and watchdog:
                    _reaper.kill_quietly(watchdog, signal.SIGKILL)
                if kind in ("runner", "both"):
                    target.killed = True
                    _reaper.kill_quietly(target.pid, signal.SIGKILL)
                report["kills"][kind] += 1
            for fd in readable:
                worker = workers[fd]
                reports = worker.read()
                if reports is None:  # exited
                    status = worker.process.wait()
                    if worker.busy is not None:
                        if worker.killed:
                            report["fixtures_lost_to_kills"] += 1
                        else:
                            report["failures"].append(
                                "worker %d exited (%s) during fixture %d"
                                % (worker.pid, status, worker.busy)
                            )
                    elif not (worker.killed or worker.closing):
                        report["failures"].append("worker %d exited (%s)" % (worker.pid, status))
                    worker.process.stdout.close()  # type: ignore[union-attr]
                    worker.close()
                    report["watchdog_restarts"] += worker.restarts
                    del workers[fd]
                    continue
                for item in reports:
                    tokens.add(item["token"])
                    worker.watchdog = item["watchdog"]
                    worker.restarts = item["restarts"]
                    if "done" in item:
                        durations.append(time.monotonic() - worker.started)
                        worker.busy = None
                        worker.used += 1
                        report["fixtures"] += 1
                        if worker.used >= args.recycle:
                            worker.close()
                    elif "error" in item:
                        worker.busy = None
                        report["failures"].append(item["traceback"])
    finally:
        for worker in workers.values():
            worker.close()
        for worker in workers.values():
            try:
                worker.process.wait(60)
            except subprocess.TimeoutExpired:
                report["failures"].append("worker %d did not exit" % worker.pid)
                worker.process.kill()
                worker.process.wait()
            assert worker.process.stdout is not None
            worker.process.stdout.close()
            report["watchdog_restarts"] += worker.restarts

    # The watchdogs clean up after their workers, then exit; a last process
    # starts one, which sweeps what the killed pairs left.
    registry = registry_dir()

    def own_entries() -> list[str]:
        if registry is None:
            return []
        return sorted(n for n in os.listdir(registry) if n.split(".", 1)[0] in tokens)

    def watchdogs_gone() -> bool:
        return not any(b"_reaper.py" in line for line in run_processes_cmdlines(run_id))

    wait_for(watchdogs_gone, 60, cap=0.1)
    sweeper = subprocess.Popen(
        [sys.executable, "-c", SWEEPER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={k: v for k, v in env.items() if k != RUN_ENV},
        cwd=REPO_ROOT,
    )
    assert sweeper.stdout is not None and sweeper.stdin is not None
    sweeper.stdout.readline()

    def nothing_left() -> bool:
        return not (os.listdir(root) or own_entries() or run_processes(run_id, root))

    wait_for(nothing_left, 60, cap=0.1)
    sweeper.stdin.close()
    sweeper.wait(60)
    sweeper.stdout.close()
    report["left"] += run_processes(run_id, root)
    report["left"] += ["in the temp root: %s" % name for name in sorted(os.listdir(root))]
    report["left"] += ["in the registry: %s" % name for name in own_entries()]
    if cache:
        strays = [n for n in os.listdir(cache) if n.startswith(".") and n != ".versions.json"]
        report["left"] += ["in the cache: %s" % name for name in strays]
        shutil.rmtree(cache, ignore_errors=True)
    if not report["left"]:
        os.rmdir(root)
    report["kills_not_done"] = len(carried) + len(pending_kills)
    report["seconds"] = round(time.monotonic() - began, 1)
    for failure in report["failures"]:
        sys.stderr.write("FAILURE: %s\n" % failure)
    for left in report["left"]:
        sys.stderr.write("LEFT: %s\n" % left)
    print(json.dumps(report))
    return 1 if report["failures"] or report["left"] else 0


def run_processes_cmdlines(run_id: str) -> list[bytes]:
    marker = ("%s=%s" % (RUN_ENV, run_id)).encode()
    found = []
    for pid in _reaper._pids():
        if marker in environ(pid).split(b"\0"):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    found.append(f.read())
            except OSError:
                continue
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
