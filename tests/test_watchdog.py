"""No orphans: the watchdog cleans up after a test runner that was killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import fixtures
import psutil

from fixtures_daemons.process import _reaper
from fixtures_daemons.process.probes import LogPattern
from fixtures_daemons.process.waiting import Deadline
from fixtures_daemons.process.watchdog import TAG_ENV, Watchdog
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
