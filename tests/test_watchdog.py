"""No orphans: the watchdog cleans up after a test runner that was killed."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import typing

import fixtures
import psutil

from fixtures_daemons.process import _reaper
from fixtures_daemons.process.probes import LogPattern
from fixtures_daemons.process.tempdirs import TMPDIR_ENV, default_temp_root
from fixtures_daemons.process.waiting import Deadline, wait_for
from fixtures_daemons.process.watchdog import COMPACT_AFTER, TAG_ENV, Watchdog, registry_dir
from tests import base

#: A "test runner": sets up several ProcessFixtures (one double-forking, one
#: with a tree of children, one ignoring SIGTERM, one plain), prints every
#: pid and temp dir (the handshake), then blocks until it is killed.
RUNNER = """
import json, os, sys
from fixtures_daemons import ProcessFixture
from fixtures_daemons.process import probes
from fixtures_daemons.process.watchdog import Watchdog

def program(*args):
    return [sys.executable, %(misbehave)r] + [str(arg) for arg in args]

ready = probes.LogPattern("^ready$")
fixtures = [
    ProcessFixture(program("double-fork", "grandchild.pid"), probe=ready, name="forker"),
    ProcessFixture(program("tree", 2, "tree.pids"), probe=ready, name="tree"),
    ProcessFixture(program("ignore-term"), probe=ready, name="stubborn"),
    ProcessFixture(program("ready-after", 0), probe=ready, name="plain"),
]
for fixture in fixtures:
    fixture.setUp()
pids = [fixture.pid for fixture in fixtures]
for fixture, pidfile in ((fixtures[0], "grandchild.pid"), (fixtures[1], "tree.pids")):
    with open(os.path.join(fixture.temp_dir, pidfile)) as f:
        pids += [int(word) for word in f.read().split()]
print("HANDSHAKE " + json.dumps({
    "pids": pids,
    "dirs": [fixture.temp_dir for fixture in fixtures],
    "watchdog": Watchdog.get().process.pid,
}), flush=True)
sys.stdin.read()
""" % {"misbehave": base.MISBEHAVE}


#: The same with real daemons: a PostgreSQL (whose children leave the group
#: and hide their tag), a PostgreSQL paused with SIGSTOP (it must be continued
#: to die), a Redis and a memcached; it prints every pid of their trees.
DAEMON_RUNNER = """
import json, psutil
from fixtures_daemons import MemcachedFixture, PostgresqlFixture, RedisFixture
from fixtures_daemons.process.watchdog import Watchdog

daemons = [PostgresqlFixture(mode="spawn"), PostgresqlFixture(mode="spawn"),
           RedisFixture(mode="spawn"), MemcachedFixture(mode="spawn")]
for daemon in daemons:
    daemon.setUp()
daemons[1].paused().__enter__()
pids = []
for daemon in daemons:
    pids.append(daemon.process.pid)
    pids += [child.pid for child in psutil.Process(daemon.process.pid).children(recursive=True)]
print("HANDSHAKE " + json.dumps({
    "pids": pids,
    "dirs": [daemon.temp_dir for daemon in daemons],
    "watchdog": Watchdog.get().process.pid,
}), flush=True)
input()
"""


class TestKilledRunner(base.TestCase):
    def killRunner(self, code: str, timeout: float) -> list[psutil.Process]:
        """Start the runner ``code``, read its handshake, SIGKILL it, and
        assert that within 2 s its processes and dirs are gone, and then
        its watchdog too; return the processes it reported."""
        runner = self.spawnPython(code)
        assert runner.stdout is not None
        line = self.readLine(base.LineReader(runner.stdout), timeout, prefix="HANDSHAKE ")
        handshake = json.loads(line.split(" ", 1)[1])
        processes = [self.handle(pid) for pid in handshake["pids"]]
        watchdog = self.handle(handshake["watchdog"])
        for process in processes + [watchdog]:
            self.killOnCleanUp(process)
        for path in handshake["dirs"]:
            self.assertTrue(os.path.isdir(path), path)
            self.addCleanup(shutil.rmtree, path, ignore_errors=True)

        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        deadline = Deadline(2.0)
        self.assertGone(*processes, timeout=deadline.remaining())
        self.assertDirGone(*handshake["dirs"], timeout=deadline.remaining())
        # Its work done, the watchdog itself exits too.
        self.assertGone(watchdog, timeout=5)
        return processes

    def test_sigkilled_runner_leaves_nothing(self) -> None:
        processes = self.killRunner(RUNNER, 60)
        self.assertEqual(4 + 1 + 4, len(processes))

    def test_sigkilled_runner_leaves_no_daemon(self) -> None:
        processes = self.killRunner(DAEMON_RUNNER, 120)
        self.assertGreater(len(processes), 4 + 4)  # PostgreSQL's children too


class TestWatchdog(base.TestCase):
    def test_one_per_process(self) -> None:
        watchdog = Watchdog.get()
        self.assertIs(watchdog, Watchdog.get())
        self.assertTrue(watchdog.alive())
        self.assertEqual(os.getpid(), watchdog.owner)

    def test_tags_are_distinct_and_carry_the_token(self) -> None:
        watchdog = Watchdog.get()
        first, second = watchdog.tag(), watchdog.tag()
        self.assertNotEqual(first, second)
        for tag in (first, second):
            self.assertTrue(tag.startswith(watchdog.token + ":"), tag)

    def test_daemon_carries_its_tag(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern("^ready$"))
        environ = self.handle(daemon.pid).environ()
        self.assertTrue(environ[TAG_ENV].startswith(Watchdog.get().token + ":"))
        pid = daemon.pid
        assert pid is not None
        self.assertEqual([pid], _reaper.find_tagged(environ[TAG_ENV]))


class TestReaper(base.TestCase):
    def tagged_child(self, tag: str) -> psutil.Process:
        env = dict(os.environ)
        env[TAG_ENV] = tag
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        assert child.stdin is not None and child.stdout is not None
        self.addCleanup(child.stdout.close)
        self.addCleanup(child.stdin.close)
        # Popen returns at exec's point of no return, before the kernel has
        # set up the new environment (/proc/PID/environ reads empty for a
        # moment): wait until it runs.
        self.readLine(base.LineReader(child.stdout), prefix="up")
        return psutil.Process(child.pid)

    def test_find_and_kill_tagged(self) -> None:
        token = os.urandom(8).hex()
        mine = [self.tagged_child("%s:%d" % (token, n)) for n in range(2)]
        other = self.tagged_child("%s-other:0" % token)
        self.assertEqual(sorted(p.pid for p in mine), sorted(_reaper.find_tagged(token + ":")))
        self.assertEqual([mine[0].pid], _reaper.find_tagged("%s:0" % token))
        killed = _reaper.kill_tagged(token + ":")
        self.assertEqual(sorted(p.pid for p in mine), sorted(killed))
        self.assertGone(*mine, timeout=0)
        self.assertRunning(other)

    def test_start_time(self) -> None:
        me = _reaper.start_time(os.getpid())
        self.assertTrue(me.isdigit(), me)
        self.assertEqual(me, _reaper.start_time(os.getpid()))
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        self.assertEqual("", _reaper.start_time(child.pid))


#: A command that leaks a tagged process and a temp dir, noting the pid.
LEAKER = """
import os, subprocess, sys
tmpdir, pidfile = sys.argv[1:]
env = dict(os.environ, FIXTURES_DAEMONS_TAG="leaktest:%d" % os.getpid())
sleeper = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(120)"],
    env=env,
    start_new_session=True,
    stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL,  # not our pipe: the test reads it to its end
    stderr=subprocess.DEVNULL,
)
with open(pidfile, "w") as f:
    f.write("%d\\n" % sleeper.pid)
os.mkdir(os.path.join(tmpdir, "fxd-leaktest"))
sys.exit(int(os.environ.get("EXIT_STATUS", "0")))
"""


class TestLeakcheck(base.TestCase):
    def leakcheck(self, status: int) -> tuple[subprocess.CompletedProcess[str], psutil.Process]:
        work = self.useFixture(fixtures.TempDir()).path
        tmpdir = os.path.join(work, "tmp")
        os.mkdir(tmpdir)
        pidfile = os.path.join(work, "leaked.pid")
        env = base.python_env(FIXTURES_DAEMONS_TMPDIR=tmpdir, EXIT_STATUS=str(status))
        argv = [sys.executable, "-m", "tests.leakcheck", "--"]
        argv += [sys.executable, "-c", LEAKER, tmpdir, pidfile]
        result = subprocess.run(
            argv, cwd=base.REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        (leaked,) = self.handles_from_file(pidfile)
        self.killOnCleanUp(leaked)
        return result, leaked

    def test_reports_leaks(self) -> None:
        result, leaked = self.leakcheck(0)
        self.assertEqual(1, result.returncode, result.stderr)
        self.assertIn("process %d (tag leaktest:" % leaked.pid, result.stderr)
        self.assertIn("fxd-leaktest", result.stderr)

    def test_failed_command_keeps_its_status(self) -> None:
        result, _ = self.leakcheck(3)
        self.assertEqual(3, result.returncode, result.stderr)
        self.assertIn("fxd-leaktest", result.stderr)


RUNNER_PROGRAM = os.path.join(base.HERE, "programs", "watchdog_runner.py")

#: The next process on this machine that starts a watchdog.
NEXT_PROCESS = """
from fixtures_daemons.process.watchdog import Watchdog
print("up %d" % Watchdog.get().process.pid, flush=True)
input()
"""


class DrivenRunnerTestCase(base.TestCase):
    """Tests that drive tests/programs/watchdog_runner.py: a test process
    with a temp root, a template cache and a work dir of its own."""

    def setUp(self) -> None:
        super().setUp()
        self.work = self.useFixture(fixtures.TempDir()).path
        self.cache = os.path.join(self.work, "cache")
        self.root = tempfile.mkdtemp(prefix="watchdog-tests-root-", dir=default_temp_root())
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)

    def startRunner(self) -> tuple[subprocess.Popen[bytes], base.LineReader]:
        env = base.python_env(WORK=self.work, CACHE=self.cache)
        env[TMPDIR_ENV] = self.root
        runner = subprocess.Popen(
            [sys.executable, RUNNER_PROGRAM],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )

        def reap() -> None:
            if runner.poll() is None:
                runner.kill()
            runner.wait()
            for stream in (runner.stdin, runner.stdout):
                if stream is not None:
                    stream.close()

        self.addCleanup(reap)
        assert runner.stdout is not None
        return runner, base.LineReader(runner.stdout)

    def send(self, runner: subprocess.Popen[bytes], line: str) -> None:
        assert runner.stdin is not None
        runner.stdin.write(line.encode() + b"\n")
        runner.stdin.flush()

    def command(
        self, runner: tuple[subprocess.Popen[bytes], base.LineReader], line: str
    ) -> dict[str, typing.Any]:
        """Run one command in the runner; its state afterwards. Its
        processes and its watchdog are killed at cleanup, should the test
        fail first."""
        self.send(runner[0], line)
        state: dict[str, typing.Any] = json.loads(
            self.readLine(runner[1], 60, prefix="STATE ").split(" ", 1)[1]
        )
        for pid in state["pids"] + [state["watchdog"]]:
            if not base.is_gone(pid):
                self.killOnCleanUp(psutil.Process(pid))
        return state

    def sigkill(self, pid: int) -> None:
        """SIGKILL ``pid``, a child of ours or not; wait until it is gone."""
        process = psutil.Process(pid)
        os.kill(pid, signal.SIGKILL)
        self.assertGone(process, timeout=10)

    def startNextProcess(self) -> None:
        """A new process that starts a watchdog, as the next test run on
        this machine does."""
        child = self.spawnPython(NEXT_PROCESS)
        assert child.stdout is not None
        line = self.readLine(base.LineReader(child.stdout), 30, prefix="up ")
        self.killOnCleanUp(self.handle(int(line.split()[1])))

    def assertRootEmpty(self, timeout: float = 15.0) -> None:
        if not wait_for(lambda: not os.listdir(self.root), timeout):
            self.fail("left in the temp root: %s" % os.listdir(self.root))


def catches(pid: int, signum: int) -> bool:
    """The process ``pid`` has a handler for ``signum``."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    except OSError:
        pass
    return False


class TestDeadWatchdog(DrivenRunnerTestCase):
    """A watchdog killed first: the test process starts another, which
    takes over; if the test process dies too, the next process that starts
    a watchdog sweeps what both left."""

    def test_new_watchdog_takes_over_running_daemons(self) -> None:
        runner = self.startRunner()
        self.command(runner, "up double-fork")
        state = self.command(runner, "up tree 2")
        first = state["watchdog"]
        old = [self.handle(pid) for pid in state["pids"]]
        self.sigkill(first)
        for process in old:  # a dead watchdog kills nothing
            self.assertRunning(process)
        state = self.command(runner, "up ignore-term")  # finds it dead
        self.assertEqual(1, state["restarts"])
        self.assertNotEqual(first, state["watchdog"])
        self.assertTrue(os.path.exists(state["journal"]), state["journal"])
        processes = [self.handle(pid) for pid in state["pids"]]
        watchdog = self.handle(state["watchdog"])

        runner[0].kill()
        runner[0].wait()
        # The new watchdog kills the processes set up before it too.
        deadline = Deadline(10)
        self.assertGone(*processes, timeout=deadline.remaining())
        self.assertDirGone(*state["dirs"], timeout=deadline.remaining())
        self.assertGone(watchdog, timeout=deadline.remaining())
        self.assertFalse(os.path.lexists(state["journal"]))
        self.assertRootEmpty(0)

    def test_leftovers_swept_by_the_next_process(self) -> None:
        runner = self.startRunner()
        self.command(runner, "up double-fork")
        self.command(runner, "up tree 2")
        self.command(runner, "up ignore-term")
        state = self.command(runner, "spare")
        # A deletion the watchdog has not done yet: it is stopped.
        os.kill(state["watchdog"], signal.SIGSTOP)
        state = self.command(runner, "discard 50")
        [trash] = state["trash"]
        [spare] = state["spares"]
        self.assertTrue(os.path.isdir(trash), trash)
        self.assertTrue(os.path.isdir(spare), spare)
        with open(state["journal"]) as f:
            journal = f.read()
        for pid in state["pids"][:1] + [state["pids"][-1]]:  # the daemons themselves
            self.assertIn("+P %d " % pid, journal)
        processes = [self.handle(pid) for pid in state["pids"]]

        self.sigkill(state["watchdog"])
        runner[0].kill()
        runner[0].wait()
        for process in processes:  # nobody left to kill them (a sweep aside)
            self.killOnCleanUp(process)
        self.startNextProcess()
        deadline = Deadline(20)
        self.assertGone(*processes, timeout=deadline.remaining())
        self.assertRootEmpty(deadline.remaining())
        self.assertDirGone(state["journal"], timeout=deadline.remaining())

    def test_removals_left_by_a_dead_watchdog_are_done(self) -> None:
        # A removal sent down the pipe, never read: the next watchdog does
        # it as it starts (the test process lives on).
        runner = self.startRunner()
        state = self.command(runner, "state")
        os.kill(state["watchdog"], signal.SIGSTOP)
        state = self.command(runner, "discard 20")
        [trash] = state["trash"]
        self.assertTrue(os.path.isdir(trash), trash)
        self.sigkill(state["watchdog"])
        state = self.command(runner, "state")  # finds it dead
        self.assertEqual(1, state["restarts"])
        self.assertRootEmpty()

    def test_cleanup_after_the_watchdog_died(self) -> None:
        # The dead watchdog noticed by a cleanUp (its pipe is broken), not
        # by a setUp: the dir is deleted all the same.
        runner = self.startRunner()
        state = self.command(runner, "state")
        self.sigkill(state["watchdog"])
        state = self.command(runner, "discard 20")
        self.assertRootEmpty()
        self.assertEqual(1, state["restarts"])


#: A dead watchdog found by two threads: the first replaces it, the
#: second's restart, coming late, must leave the new one alone (closing its
#: pipe would make it clean up as if the process had died).
LATE_RESTART = """
import json, os, signal
from fixtures_daemons import ProcessFixture
from fixtures_daemons.process.waiting import wait_for
from fixtures_daemons.process.watchdog import Watchdog
watchdog = Watchdog.get()
process = ProcessFixture(["sleep", "60"])
process.setUp()
os.kill(watchdog.process.pid, signal.SIGKILL)
watchdog.process.wait()
watchdog.restart()
replacement = watchdog.process.pid
watchdog.restart()
killed = wait_for(lambda: not process.running, 1.0)
print("REPORT " + json.dumps([replacement == watchdog.process.pid, killed]), flush=True)
process.cleanUp()
"""


class TestLateRestart(base.TestCase):
    def test_a_second_restart_keeps_the_new_watchdog(self) -> None:
        root = self.useFixture(fixtures.TempDir()).path
        child = self.spawnPython(LATE_RESTART, env=base.python_env(**{TMPDIR_ENV: root}))
        assert child.stdout is not None
        line = self.readLine(base.LineReader(child.stdout), 60, prefix="REPORT ")
        kept, killed = json.loads(line.split(" ", 1)[1])
        self.assertTrue(kept, "the new watchdog was replaced again")
        self.assertFalse(killed, "the process was killed by a watchdog told to exit")
        self.assertEqual(0, child.wait(60))


class TestStoppedWatchdog(DrivenRunnerTestCase):
    """A watchdog stopped by SIGTERM finishes what it was asked to do."""

    def test_sigterm_finishes_pending_deletions(self) -> None:
        runner = self.startRunner()
        state = self.command(runner, "up ready-after 0")
        watchdog = self.handle(state["watchdog"])
        daemon = self.handle(state["pids"][0])
        # Not in its first milliseconds, before it handles SIGTERM (where
        # SIGTERM kills it as SIGKILL would: see the tests above).
        self.assertTrue(wait_for(lambda: catches(watchdog.pid, signal.SIGTERM), 30))
        os.kill(watchdog.pid, signal.SIGSTOP)
        state = self.command(runner, "discard 200")  # not yet read by it
        [trash] = state["trash"]
        self.assertTrue(os.path.isdir(trash), trash)
        os.kill(watchdog.pid, signal.SIGTERM)
        os.kill(watchdog.pid, signal.SIGCONT)
        self.assertGone(watchdog, timeout=10)
        self.assertDirGone(trash)
        self.assertGone(daemon)  # stopped: a SIGTERM is a stop
        # The test process lives on: its next use starts a new watchdog,
        # which takes over the journal.
        self.assertTrue(os.path.exists(state["journal"]))
        state = self.command(runner, "up ready-after 0")
        self.assertEqual(1, state["restarts"])
        daemon_pid = state["pids"][-1]
        runner[0].kill()
        runner[0].wait()
        self.assertGone(daemon_pid, timeout=10)  # maybe already a zombie: gone
        self.assertRootEmpty()

    def test_removal_cut_short_is_finished(self) -> None:
        # A SIGTERM arrives in the middle of a removal (the handler raises
        # SystemExit there): the exit's cleanup removes the rest.
        work = self.useFixture(fixtures.TempDir()).path
        trash = os.path.join(work, "trash")
        os.mkdir(trash)
        for n in range(10):
            open(os.path.join(trash, "f%d" % n), "w").close()
        calls: list[str] = []

        def cut_short(path: str) -> None:
            calls.append(path)
            if len(calls) == 1:
                for name in sorted(os.listdir(path))[:5]:
                    os.unlink(os.path.join(path, name))
                raise SystemExit(0)
            shutil.rmtree(path, ignore_errors=True)

        self.useFixture(fixtures.MonkeyPatch(_reaper.__name__ + ".remove_dir", cut_short))
        watchdog = _reaper._Watchdog(os.urandom(16).hex())
        self.assertRaises(SystemExit, watchdog.handle, "R " + trash)
        self.assertEqual(5, len(os.listdir(trash)))
        watchdog.clean()
        self.assertFalse(os.path.lexists(trash))


class TestKilledBuild(DrivenRunnerTestCase):
    """A template build killed at any point leaves no dir behind, in the
    temp root or in the cache, even when its watchdog is killed too."""

    def killBuild(self, command: str, watchdog_too: bool) -> None:
        runner = self.startRunner()
        state = self.command(runner, "state")
        self.send(runner[0], command)
        self.readLine(runner[1], 60, prefix="BUILDING" if command == "build" else "STAGING")
        [workdir] = os.listdir(self.root)
        self.assertTrue(workdir.startswith("fxd-fake-template-"), workdir)
        if command == "stage":
            staging = [n for n in os.listdir(self.cache) if n.startswith(".fake-")]
            self.assertEqual(1, len(staging), os.listdir(self.cache))
        if watchdog_too:
            self.sigkill(state["watchdog"])
        runner[0].kill()
        runner[0].wait()
        if watchdog_too:
            self.startNextProcess()
        self.assertRootEmpty()

        def only_locks() -> bool:
            return all(name.endswith(".lock") for name in os.listdir(self.cache))

        self.assertTrue(wait_for(only_locks, 15), os.listdir(self.cache))

    def test_runner_killed_mid_build(self) -> None:
        self.killBuild("build", watchdog_too=False)

    def test_runner_and_watchdog_killed_mid_build(self) -> None:
        self.killBuild("build", watchdog_too=True)

    def test_runner_and_watchdog_killed_while_staging(self) -> None:
        self.killBuild("stage", watchdog_too=True)


class TestRegistry(base.TestCase):
    def test_a_clean_exit_leaves_no_entry(self) -> None:
        # The test process exits; its watchdog, whose pipe closed at once,
        # waits for it to be gone and removes its journal and lock (a
        # sweep later would too, but the registry should not fill up).
        code = "from fixtures_daemons.process.watchdog import Watchdog; print(Watchdog.get().token)"
        env = dict(os.environ, PYTHONPATH=base.REPO_ROOT)
        token = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        ).stdout.strip()
        registry = registry_dir()
        assert registry is not None
        paths = _reaper.registry_paths(registry, token)
        self.assertTrue(wait_for(lambda: not any(os.path.exists(p) for p in paths), 10), paths)

    def test_private_to_the_user(self) -> None:
        registry = registry_dir()
        assert registry is not None
        st = os.lstat(registry)
        self.assertEqual(os.geteuid(), st.st_uid)
        self.assertEqual(0o700, stat.S_IMODE(st.st_mode))
        watchdog = Watchdog.get()
        self.assertEqual(registry, watchdog.registry)
        lock, journal = _reaper.registry_paths(registry, watchdog.token)
        with open(journal) as f:
            header = f.readline()
        self.assertEqual(
            {"owner": os.getpid(), "start": _reaper.start_time(os.getpid())},
            json.loads(header.split(" ", 1)[1]),
        )
        self.assertEqual(0o600, stat.S_IMODE(os.stat(journal).st_mode))

    def test_live_entries_are_not_swept(self) -> None:
        watchdog = Watchdog.get()
        assert watchdog.registry is not None
        self.assertNotIn(watchdog.token, _reaper.sweep(watchdog.registry))
        lock, journal = _reaper.registry_paths(watchdog.registry, watchdog.token)
        self.assertTrue(os.path.exists(journal))

    def test_another_users_dir_is_not_used(self) -> None:
        work = self.useFixture(fixtures.TempDir()).path
        planted = os.path.join(work, "fixtures-daemons-watchdogs-%d" % os.geteuid())
        os.symlink(work, planted)  # not a dir of ours: a link
        self.useFixture(fixtures.MonkeyPatch("tempfile.gettempdir", lambda: work))
        self.useFixture(fixtures.MonkeyPatch("os.path.isdir", lambda path: path != "/tmp"))
        self.assertIsNone(registry_dir())

    def test_journal_compacted(self) -> None:
        watchdog = Watchdog.get()
        assert watchdog.registry is not None
        _, journal = _reaper.registry_paths(watchdog.registry, watchdog.token)
        work = self.useFixture(fixtures.TempDir()).path
        for n in range(COMPACT_AFTER + 10):
            watchdog.watch_dir(os.path.join(work, "d%d" % n))
            watchdog.forget_dir(os.path.join(work, "d%d" % n))
        watchdog.watch_dir(work)
        self.addCleanup(watchdog.forget_dir, work)
        with open(journal) as f:
            lines = f.read().splitlines()
        # 2021 lines were written: without compaction there would be at
        # least as many. With it, the live entries plus fewer than
        # COMPACT_AFTER lines since the last rewrite.
        self.assertLess(len(lines), COMPACT_AFTER + 100)
        state = _reaper._Watchdog(watchdog.token)
        self.assertTrue(state.load(journal))
        self.assertIn(work, state.dirs)
        self.assertNotIn(os.path.join(work, "d0"), state.dirs)


class TestStress(base.TestCase):
    """tools/stress_watchdog.py, small: 4 workers share a temp root and use
    25 fresh PostgreSQL daemons each, claiming each other's spares, while
    runners and watchdogs are SIGKILLed at random; nothing may fail (but
    the killed workers' fixtures) and nothing may be left."""

    def test_workers_killed_at_random_leave_nothing(self) -> None:
        script = os.path.join(base.REPO_ROOT, "tools", "stress_watchdog.py")
        argv = [sys.executable, script, "--workers", "4", "--fixtures", "100", "--kills", "6"]
        argv += ["--recycle", "10", "--timeout", "240"]
        result = subprocess.run(
            argv, env=base.python_env(), capture_output=True, text=True, timeout=400
        )
        if result.returncode == 77:
            self.skipTest(result.stdout.strip())
        self.assertEqual(0, result.returncode, result.stderr + result.stdout)
        report = json.loads(result.stdout.splitlines()[-1])
        self.assertEqual(100, report["fixtures"])
        # Two of each kind (a kill that came too late for the last fixture
        # is not done).
        self.assertEqual(0, report["kills_not_done"], report)
        self.assertEqual({"runner": 2, "watchdog": 2, "both": 2}, report["kills"])
        self.assertEqual([], report["left"])


class TestSweep(base.TestCase):
    """sweep() on a registry of its own."""

    def setUp(self) -> None:
        super().setUp()
        self.registry = self.useFixture(fixtures.TempDir()).path
        self.work = self.useFixture(fixtures.TempDir()).path
        # A process that is surely dead: exited and reaped.
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        self.dead = child.pid

    def entry(self, owner: int, started: str, *lines: str) -> tuple[str, str]:
        token = os.urandom(16).hex()
        lock, journal = _reaper.registry_paths(self.registry, token)
        open(lock, "w").close()
        with open(journal, "w") as f:
            f.write('H {"owner": %d, "start": "%s"}\n' % (owner, started))
            f.write("".join(line + "\n" for line in lines))
        return token, journal

    def test_dead_entries_swept(self) -> None:
        left = os.path.join(self.work, "left")
        os.mkdir(left)
        trash = os.path.join(self.work, "trash")
        os.mkdir(trash)
        token, journal = self.entry(self.dead, "1", "+D " + left, "R " + trash, "+D cut-short")
        self.assertEqual([token], _reaper.sweep(self.registry))
        self.assertFalse(os.path.lexists(left))
        self.assertFalse(os.path.lexists(trash))
        self.assertEqual([], os.listdir(self.registry))

    def test_locked_entries_kept(self) -> None:
        kept = os.path.join(self.work, "kept")
        os.mkdir(kept)
        token, journal = self.entry(self.dead, "1", "+D " + kept)
        lock, _ = _reaper.registry_paths(self.registry, token)
        with open(lock) as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)  # its owner or watchdog lives
            self.assertEqual([], _reaper.sweep(self.registry))
        self.assertTrue(os.path.isdir(kept))
        self.assertTrue(os.path.exists(journal))

    def test_live_owner_kept(self) -> None:
        # Unlocked (its lock lost somehow), but its owner lives: its own
        # watchdog's business.
        kept = os.path.join(self.work, "kept")
        os.mkdir(kept)
        me = os.getpid()
        self.entry(me, _reaper.start_time(me), "+D " + kept)
        self.assertEqual([], _reaper.sweep(self.registry))
        self.assertTrue(os.path.isdir(kept))

    def test_unnamed_lock_files_swept(self) -> None:
        path = os.path.join(self.registry, ".new-%s.lock" % os.urandom(16).hex())
        open(path, "w").close()
        held = os.path.join(self.registry, ".new-%s.lock" % os.urandom(16).hex())
        with open(held, "w") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)  # being named by a live process
            _reaper.sweep(self.registry)
        self.assertEqual([os.path.basename(held)], os.listdir(self.registry))
