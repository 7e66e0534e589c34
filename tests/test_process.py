"""ProcessFixture: spawning, readiness, stopping, outages, users."""

from __future__ import annotations

import os
import pwd
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
import typing

import fixtures
import psutil
import testtools
from testtools.testresult.doubles import ExtendedTestResult

from fixtures_daemons import (
    CommandFailed,
    DaemonDied,
    DaemonExited,
    ExecutableNotFound,
    MisuseError,
    PortFixture,
    ProcessFixture,
    StartupTimeout,
    TempDirError,
    UserError,
    probes,
)
from fixtures_daemons.process._fixture import Fixture
from fixtures_daemons.process.commands import run_command
from fixtures_daemons.process.probes import LogPattern, ProbeContext, Tcp
from fixtures_daemons.process.tempdirs import PREFIX
from fixtures_daemons.process.waiting import wait_for
from fixtures_daemons.process.watchdog import TAG_ENV, Watchdog
from tests import base

READY = r"^ready$"


def started_pid(log_text: str) -> int:
    """The pid the misbehaving program printed first."""
    match = re.search(r"^started pid (\d+)$", log_text, re.MULTILINE)
    assert match is not None, "no 'started pid' line in %r" % log_text
    return int(match.group(1))


class ManualFixture:
    """Set up a fixture that the test cleans up itself, midway; cleaned up
    at the end of the test anyway if the test failed before that."""

    def __init__(self, test: testtools.TestCase, fixture: fixtures.Fixture) -> None:
        self.fixture = fixture
        self.done = False
        fixture.setUp()
        test.addCleanup(self.cleanUp)

    def cleanUp(self) -> None:
        if not self.done:
            self.done = True
            self.fixture.cleanUp()


class TestSpawn(base.TestCase):
    def test_new_session(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY))
        pid = daemon.pid
        assert pid is not None
        self.assertEqual(pid, os.getsid(pid))
        self.assertEqual(pid, os.getpgid(pid))
        self.assertNotEqual(os.getsid(0), os.getsid(pid))

    def test_log_in_private_temp_dir(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY))
        assert daemon.temp_dir is not None
        self.assertEqual(daemon.temp_dir, os.path.dirname(daemon.log_path))
        self.assertTrue(os.path.basename(daemon.temp_dir).startswith(PREFIX))
        self.assertEqual(0o700, stat.S_IMODE(os.stat(daemon.temp_dir).st_mode))
        with open(daemon.log_path) as log:
            text = log.read()
        self.assertEqual(daemon.pid, started_pid(text))
        self.assertIn("ready", text)

    def test_env_overlay(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("FXD_TEST_REMOVED", "present"))
        self.useFixture(fixtures.EnvironmentVariable("FXD_TEST_KEPT", "inherited"))
        daemon = self.useProcess(
            "ready-after",
            0,
            probe=LogPattern(READY),
            env={"FXD_TEST_SET": "overlaid", "FXD_TEST_REMOVED": None},
        )
        environ = self.handle(daemon.pid).environ()
        self.assertEqual("overlaid", environ.get("FXD_TEST_SET"))
        self.assertNotIn("FXD_TEST_REMOVED", environ)
        self.assertEqual("inherited", environ.get("FXD_TEST_KEPT"))
        # The overlay is the child's only: ours is untouched.
        self.assertEqual("present", os.environ.get("FXD_TEST_REMOVED"))
        self.assertNotIn("FXD_TEST_SET", os.environ)

    def test_cwd(self) -> None:
        where = self.useFixture(fixtures.TempDir()).path
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY), cwd=where)
        self.assertEqual(os.path.realpath(where), self.handle(daemon.pid).cwd())

    def test_default_cwd_is_temp_dir(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY))
        assert daemon.temp_dir is not None
        self.assertEqual(os.path.realpath(daemon.temp_dir), self.handle(daemon.pid).cwd())

    def test_missing_cwd_is_not_a_missing_executable(self) -> None:
        missing = os.path.join(self.useFixture(fixtures.TempDir()).path, "missing")
        fixture = ProcessFixture(self.program("ready-after", 0), cwd=missing)
        error = self.assertSetUpFails(MisuseError, fixture)
        self.assertIn(missing, error.call)
        self.assertIn("does not exist", str(error))

    def test_missing_executable(self) -> None:
        missing = os.path.join(self.useFixture(fixtures.TempDir()).path, "no-such-daemon")
        fixture = ProcessFixture([missing, "--flag"])
        error = self.assertSetUpFails(ExecutableNotFound, fixture)
        self.assertEqual(missing, error.executable)
        self.assertIn("no-such-daemon", str(error))

    def test_temp_root(self) -> None:
        root = self.useFixture(fixtures.TempDir()).path
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY), temp_root=root)
        assert daemon.temp_dir is not None
        self.assertEqual(root, os.path.dirname(daemon.temp_dir))

    def test_without_probe_ready_once_started(self) -> None:
        daemon = self.useProcess("never-ready")
        self.assertTrue(daemon.running)
        self.handle(daemon.pid)

    def test_set_up_again_after_clean_up(self) -> None:
        fixture = ProcessFixture(self.program("ready-after", 0), probe=LogPattern(READY))
        first = ManualFixture(self, fixture)
        first_dir = fixture.temp_dir
        first.cleanUp()
        self.useFixture(fixture)
        self.assertTrue(fixture.running)
        assert fixture.temp_dir is not None
        self.assertTrue(os.path.isdir(fixture.temp_dir))
        self.assertNotEqual(first_dir, fixture.temp_dir)


class TestLogDetail(base.TestCase):
    """The log is attached before the wait, so a failed start shows it."""

    def test_failed_start_in_a_test_shows_the_log(self) -> None:
        program = self.program("exit", 3)

        class Inner(testtools.TestCase):
            def test_it(inner) -> None:
                inner.useFixture(ProcessFixture(program, probe=LogPattern(READY), name="exiter"))

        result = ExtendedTestResult()
        Inner("test_it").run(result)
        errors = [event for event in result._events if event[0] == "addError"]
        self.assertEqual(1, len(errors), result._events)
        details = errors[0][2]
        self.assertIn("exiter-log", details)
        self.assertIn("exiting with code 3", details["exiter-log"].as_text())
        self.assertIn("DaemonExited", details["traceback"].as_text())

    def test_failed_start_details_gathered_into_test(self) -> None:
        fixture = ProcessFixture(self.program("exit", 3), probe=LogPattern(READY), name="exiter")
        self.assertRaises(DaemonExited, self.useFixture, fixture)
        details = self.getDetails()
        self.assertIn("exiter-log", details)
        # Materialised: readable although the temp dir is gone by now.
        self.assertIn("exiting with code 3", details["exiter-log"].as_text())

    def test_failed_start_inside_another_fixture(self) -> None:
        program = self.program("exit", 3)

        class Outer(Fixture):  # as the daemon fixtures are built
            def _setUp(self) -> None:
                self.useFixture(ProcessFixture(program, probe=LogPattern(READY), name="exiter"))

        error = self.assertRaises(DaemonExited, self.useFixture, Outer())
        self.assertEqual(3, error.returncode)
        details = self.getDetails()
        self.assertIn("exiter-log", details)
        self.assertIn("exiting with code 3", details["exiter-log"].as_text())

    def test_log_detail_of_running_process(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY), name="ok")
        self.assertIn("ready", daemon.getDetails()["ok-log"].as_text())


class TestReadiness(base.TestCase):
    def test_ready_after_delay(self) -> None:
        start = time.monotonic()
        daemon = self.useProcess("ready-after", 0.3, probe=LogPattern(READY))
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.assertTrue(daemon.running)
        self.assertIn("ready", daemon.log_tail())

    def test_banner_printed_before_the_probe_starts(self) -> None:
        class LateLogPattern(LogPattern):
            """Starts only once the banner is in the log: the order a
            loaded machine may produce."""

            def start(self, context: ProbeContext) -> None:
                def printed() -> bool:
                    with open(context.log_path) as log:
                        return "ready" in log.read()

                assert wait_for(printed, 30), "the program never printed ready"
                super().start(context)

        daemon = self.useProcess("ready-after", 0, probe=LateLogPattern(READY), timeout=5)
        self.assertTrue(daemon.running)

    def test_banner_in_two_halves(self) -> None:
        daemon = self.useProcess("split-banner", probe=LogPattern(READY), timeout=30)
        self.assertTrue(daemon.running)
        self.assertEqual("ready", daemon.log_tail(1))

    def test_flood_does_not_block(self) -> None:
        daemon = self.useProcess("flood", 50, probe=LogPattern(READY), timeout=120)
        self.assertTrue(daemon.running)
        self.assertGreaterEqual(os.path.getsize(daemon.log_path), 50 * 1024 * 1024)
        self.assertEqual("ready", daemon.log_tail(1))

    def test_early_exit(self) -> None:
        fixture = ProcessFixture(
            self.program("exit", 3), probe=LogPattern(READY), timeout=60, name="exiter"
        )
        start = time.monotonic()
        error = self.assertSetUpFails(DaemonExited, fixture)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(3, error.returncode)
        self.assertEqual("exiter", error.name)
        self.assertIn("exiting with code 3", error.log_tail)
        text = str(error)
        self.assertIn("exiting with code 3", text)
        self.assertIn("exited with code 3", text)
        self.assertIn("misbehave.py", text)
        self.assertGone(started_pid(error.log_tail), timeout=0)

    def test_killed_while_starting(self) -> None:
        class KillingProbe(LogPattern):
            """Kills the process it waits for: an OOM kill during startup."""

            def start(self, context: ProbeContext) -> None:
                super().start(context)
                assert context.pid is not None
                os.kill(context.pid, signal.SIGKILL)

        fixture = ProcessFixture(self.program("never-ready"), probe=KillingProbe(READY))
        error = self.assertSetUpFails(DaemonExited, fixture)
        self.assertEqual(-signal.SIGKILL, error.returncode)
        self.assertIn("killed by signal %d" % signal.SIGKILL, str(error))

    def test_never_ready(self) -> None:
        fixture = ProcessFixture(
            self.program("never-ready"), probe=LogPattern(READY), timeout=0.5, name="sloth"
        )
        start = time.monotonic()
        error = self.assertSetUpFails(StartupTimeout, fixture)
        self.assertGreaterEqual(time.monotonic() - start, 0.5)
        self.assertEqual(0.5, error.timeout)
        self.assertIn("log line matching", error.waited_for)
        self.assertIn(READY, error.waited_for)
        self.assertIn("never will be", error.log_tail)
        text = str(error)
        self.assertIn("sloth", text)
        self.assertIn(READY, text)
        self.assertIn("never will be", text)
        # It was stopped before the error was raised.
        self.assertGone(started_pid(error.log_tail), timeout=0)


class TestMisuse(base.TestCase):
    """What a caller can get wrong: a typed error that says what to do."""

    def test_a_string_command(self) -> None:
        error = self.assertRaises(MisuseError, ProcessFixture, "etcd --name x")
        self.assertIn("shlex.split()", str(error))
        self.assertIn("etcd --name x", error.call)

    def test_an_empty_command(self) -> None:
        self.assertRaises(MisuseError, ProcessFixture, [])

    def test_a_probe_of_the_wrong_type(self) -> None:
        error = self.assertRaises(
            MisuseError, ProcessFixture, self.program("ready-after", 0), probe="ready"
        )
        self.assertIn("LogPattern", str(error))

    def test_a_program_that_forks_into_the_background(self) -> None:
        fixture = ProcessFixture(self.program("exit", 0), probe=LogPattern(READY))
        error = self.assertSetUpFails(DaemonExited, fixture)
        self.assertEqual(0, error.returncode)
        self.assertIn("forks into the background", str(error))

    def test_an_empty_log_at_the_timeout(self) -> None:
        fixture = ProcessFixture(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            probe=probes.Callable(lambda: False, "never"),
            timeout=0.3,
        )
        error = self.assertSetUpFails(StartupTimeout, fixture)
        self.assertEqual("", error.log_tail)
        self.assertIn("block-buffered", str(error))

    def test_a_relative_program_path(self) -> None:
        fixture = ProcessFixture(["bin/no-such-daemon"])
        error = self.assertSetUpFails(ExecutableNotFound, fixture)
        self.assertIn("working directory", str(error))
        self.assertIn("private temp dir", str(error))

    def test_a_hung_probe_attempt_stays_within_the_timeout(self) -> None:
        # probes.Command gives one attempt up to 5 s; the wait's deadline
        # caps it.
        fixture = ProcessFixture(
            self.program("never-ready"), probe=probes.Command(["sleep", "30"]), timeout=0.5
        )
        start = time.monotonic()
        self.assertSetUpFails(StartupTimeout, fixture)
        self.assertLess(time.monotonic() - start, 3.0)


class TestStop(base.TestCase):
    def test_sigterm_ignored_then_sigkill(self) -> None:
        daemon = self.useProcess("ignore-term", probe=LogPattern(READY), stop_timeout=0.5)
        process = self.handle(daemon.pid)
        start = time.monotonic()
        returncode = daemon.stop()
        self.assertGreaterEqual(time.monotonic() - start, 0.5)
        self.assertEqual(-signal.SIGKILL, returncode)
        self.assertGone(process, timeout=0)

    def test_stop_with_descriptors_above_1023(self) -> None:
        # The wait for the exit polls a pidfd: select() would fail (or
        # corrupt memory) for a descriptor above FD_SETSIZE.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 1200:
            self.skipTest("cannot open 1100 files here (hard limit %d)" % hard)
        if soft != resource.RLIM_INFINITY and soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY))
        process = self.handle(daemon.pid)
        held = []
        self.addCleanup(lambda: [os.close(fd) for fd in held])
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        self.assertEqual(-signal.SIGTERM, daemon.stop())
        self.assertGone(process, timeout=0)

    def test_double_forked_grandchild_gone_after_cleanup(self) -> None:
        fixture = ProcessFixture(
            self.program("double-fork", "grandchild.pid"), probe=LogPattern(READY)
        )
        manual = ManualFixture(self, fixture)
        assert fixture.temp_dir is not None
        (grandchild,) = self.handles_from_file(os.path.join(fixture.temp_dir, "grandchild.pid"))
        self.killOnCleanUp(grandchild)
        # It really escaped: another session, another process group.
        self.assertNotEqual(fixture.pid, os.getsid(grandchild.pid))
        self.assertNotEqual(fixture.pid, os.getpgid(grandchild.pid))
        manual.cleanUp()
        self.assertGone(grandchild, timeout=0)

    def test_whole_tree_gone_after_cleanup(self) -> None:
        fixture = ProcessFixture(self.program("tree", 3, "tree.pids"), probe=LogPattern(READY))
        manual = ManualFixture(self, fixture)
        assert fixture.temp_dir is not None
        tree = self.handles_from_file(os.path.join(fixture.temp_dir, "tree.pids"))
        self.assertEqual(6, len(tree))
        for process in tree:
            self.killOnCleanUp(process)
        main = self.handle(fixture.pid)
        manual.cleanUp()
        self.assertGone(main, *tree, timeout=0)

    def test_stop_is_idempotent(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY))
        process = self.handle(daemon.pid)
        self.assertEqual(-signal.SIGTERM, daemon.stop())
        self.assertIsNone(daemon.stop())
        self.assertFalse(daemon.running)
        self.assertIsNone(daemon.pid)
        self.assertGone(process, timeout=0)

    def test_stop_after_process_died(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY))
        process = self.handle(daemon.pid)
        process.send_signal(signal.SIGKILL)
        self.assertGone(process)
        self.assertEqual(-signal.SIGKILL, daemon.stop())
        self.assertIsNone(daemon.stop())

    def test_a_name_with_a_slash_keeps_the_log_inside(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY), name="../up/python")
        assert daemon.temp_dir is not None
        self.assertEqual(daemon.temp_dir, os.path.dirname(daemon.log_path))
        self.assertIn("ready", daemon.log_tail())

    def test_keep_leaves_the_dir_and_log_but_stops_the_process(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_KEEP", "1"))
        daemon = ProcessFixture(self.program("ready-after", 0), probe=LogPattern(READY))
        manual = ManualFixture(self, daemon)
        temp_dir, log_path = daemon.temp_dir, daemon.log_path
        assert temp_dir is not None
        self.addCleanup(shutil.rmtree, temp_dir, True)
        process = self.handle(daemon.pid)
        manual.cleanUp()
        self.assertGone(process)
        with open(log_path) as f:
            self.assertIn("ready", f.read())

    def test_death_while_in_use_is_reported_at_cleanup(self) -> None:
        daemon = ProcessFixture(
            self.program("ready-after", 0), probe=LogPattern(READY), name="misbehave"
        )
        manual = ManualFixture(self, daemon)
        temp_dir = daemon.temp_dir
        assert temp_dir is not None
        process = self.handle(daemon.pid)
        process.send_signal(signal.SIGKILL)  # a crash, the OOM killer
        self.assertGone(process)
        error = self.assertRaises(DaemonDied, manual.cleanUp)
        self.assertEqual(-signal.SIGKILL, error.returncode)
        self.assertIn("was killed by signal %d while in use" % signal.SIGKILL, str(error))
        self.assertIn("ready", error.log_tail)  # what it logged before it died
        self.assertDirGone(temp_dir)  # everything else was still cleaned up

    def test_death_after_an_explicit_stop_is_not_reported(self) -> None:
        daemon = ProcessFixture(
            self.program("ready-after", 0), probe=LogPattern(READY), name="misbehave"
        )
        manual = ManualFixture(self, daemon)
        daemon.stop()
        manual.cleanUp()  # stopped on purpose: nothing to report

    def test_start_after_crash_clears_the_old_tree(self) -> None:
        daemon = self.useProcess("double-fork", "grandchild.pid", probe=LogPattern(READY))
        assert daemon.temp_dir is not None
        pidfile = os.path.join(daemon.temp_dir, "grandchild.pid")
        (old_grandchild,) = self.handles_from_file(pidfile)
        self.killOnCleanUp(old_grandchild)
        main = self.handle(daemon.pid)
        main.send_signal(signal.SIGKILL)  # the daemon crashes; its grandchild lives on
        self.assertGone(main)
        os.unlink(pidfile)
        daemon.start()
        self.assertGone(old_grandchild, timeout=0)
        (new_grandchild,) = self.handles_from_file(pidfile)
        self.assertNotEqual(old_grandchild.pid, new_grandchild.pid)
        self.assertTrue(daemon.running)

    def test_stop_paused_process(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY), stop_timeout=30)
        process = self.handle(daemon.pid)
        with daemon.paused():
            start = time.monotonic()
            self.assertEqual(-signal.SIGTERM, daemon.stop())
            self.assertLess(time.monotonic() - start, 10)
        self.assertGone(process, timeout=0)

    def test_cleanup_removes_temp_dir(self) -> None:
        fixture = ProcessFixture(self.program("ready-after", 0), probe=LogPattern(READY))
        manual = ManualFixture(self, fixture)
        temp_dir = fixture.temp_dir
        assert temp_dir is not None
        self.assertTrue(os.path.isdir(temp_dir))
        manual.cleanUp()
        self.assertDirGone(temp_dir)

    def test_without_watchdog(self) -> None:
        # Not registered with the watchdog (it outlives a killed runner),
        # but its own cleanUp still stops it and removes its dir.
        fixture = ProcessFixture(
            self.program("ready-after", 0), probe=LogPattern(READY), watchdog=False
        )
        manual = ManualFixture(self, fixture)
        process = self.handle(fixture.pid)
        tag = process.environ()[TAG_ENV]
        self.assertTrue(tag.startswith("detached:"), tag)
        self.assertNotIn(Watchdog.get().token, tag)
        temp_dir = fixture.temp_dir
        assert temp_dir is not None
        manual.cleanUp()
        self.assertGone(process)
        self.assertDirGone(temp_dir)

    def test_given_temp_dir_is_kept(self) -> None:
        given = self.useFixture(fixtures.TempDir()).path
        fixture = ProcessFixture(
            self.program("ready-after", 0), probe=LogPattern(READY), temp_dir=given
        )
        manual = ManualFixture(self, fixture)
        self.assertEqual(given, os.path.dirname(fixture.log_path))
        log_path = fixture.log_path
        manual.cleanUp()
        self.assertTrue(os.path.isdir(given))
        self.assertTrue(os.path.isfile(log_path))


class TestOutages(base.TestCase):
    def listener(self) -> tuple[ProcessFixture, int]:
        port = self.useFixture(PortFixture()).port
        return self.useProcess("listen", port, probe=Tcp("127.0.0.1", port)), port

    def test_stopped(self) -> None:
        daemon, port = self.listener()
        before = self.handle(daemon.pid)
        command = before.cmdline()
        with daemon.stopped():
            self.assertFalse(daemon.running)
            self.assertGone(before, timeout=0)
            self.assertFalse(Tcp("127.0.0.1", port).ready())
        after = self.handle(daemon.pid)
        self.assertNotEqual(before.pid, after.pid)
        self.assertEqual(command, after.cmdline())
        probe = Tcp("127.0.0.1", port)
        self.assertTrue(probe.ready(), probe.last_error)

    def test_stopped_restores_when_block_raises(self) -> None:
        daemon, port = self.listener()
        before = self.handle(daemon.pid)

        class Boom(Exception):
            pass

        def outage() -> None:
            with daemon.stopped():
                raise Boom()

        self.assertRaises(Boom, outage)
        after = self.handle(daemon.pid)
        self.assertNotEqual(before.pid, after.pid)
        self.assertTrue(Tcp("127.0.0.1", port).ready())

    def assertStatus(self, process: psutil.Process, stopped: bool) -> None:
        def check() -> bool:
            return (process.status() == psutil.STATUS_STOPPED) == stopped

        # The kernel stops and continues asynchronously: wait, bounded.
        self.assertTrue(wait_for(check, 5.0), "status is %s" % process.status())

    def test_paused(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY))
        process = self.handle(daemon.pid)
        with daemon.paused():
            self.assertStatus(process, stopped=True)
        self.assertStatus(process, stopped=False)
        self.assertEqual(process.pid, daemon.pid)

    def test_paused_restores_when_block_raises(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY))
        process = self.handle(daemon.pid)

        def hang() -> typing.NoReturn:
            with daemon.paused():
                self.assertStatus(process, stopped=True)
                raise ValueError("in the block")

        self.assertRaises(ValueError, hang)
        self.assertStatus(process, stopped=False)

    def test_paused_when_not_running(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY))
        daemon.stop()

        def pause() -> None:
            with daemon.paused():
                pass

        self.assertRaises(RuntimeError, pause)


class TestUser(base.TestCase):
    def require_root(self, root: bool) -> None:
        if (os.geteuid() == 0) != root:
            self.skipTest("needs to run %s" % ("as root" if root else "as non-root"))

    def test_root_runs_as_nobody(self) -> None:
        self.require_root(True)
        nobody = pwd.getpwnam("nobody")
        # The misbehaving program is stdlib-only: when this interpreter is
        # closed to nobody (a virtualenv in a 0700 .tox), the system's will do.
        python = sys.executable
        if subprocess.run(["runuser", "-u", "nobody", "--", python, "-c", ""]).returncode:
            python = "/usr/bin/python3"
        command = [python] + self.program("ready-after", 0)[1:]
        daemon = self.useFixture(
            ProcessFixture(command, probe=LogPattern(READY), user="nobody", name="misbehave")
        )
        process = self.handle(daemon.pid)
        self.assertEqual(nobody.pw_uid, process.uids().real)
        self.assertEqual(nobody.pw_uid, process.uids().effective)
        self.assertEqual(nobody.pw_gid, process.gids().real)
        assert daemon.temp_dir is not None
        self.assertEqual(nobody.pw_uid, os.stat(daemon.temp_dir).st_uid)
        self.assertEqual(nobody.pw_uid, os.stat(daemon.log_path).st_uid)

    def test_program_closed_to_the_user(self) -> None:
        self.require_root(True)
        closed = self.useFixture(fixtures.TempDir()).path  # 0700, root's
        program = os.path.join(closed, "daemon")
        shutil.copy("/bin/true", program)
        fixture = ProcessFixture([program], user="nobody")
        error = self.assertSetUpFails(UserError, fixture)
        self.assertEqual("nobody", error.user)
        self.assertIn("permission denied running %s" % program, str(error))

    def test_temp_root_closed_to_the_user(self) -> None:
        self.require_root(True)
        closed = self.useFixture(fixtures.TempDir()).path  # 0700, root's
        fixture = ProcessFixture(self.program("ready-after", 0), user="nobody", temp_root=closed)
        error = self.assertSetUpFails(TempDirError, fixture)
        self.assertIn("nobody cannot enter", str(error))
        self.assertEqual([], os.listdir(closed))  # the dir it made is gone again

    def test_non_root_cannot_run_as_another_user(self) -> None:
        self.require_root(False)
        fixture = ProcessFixture(self.program("ready-after", 0), user="root")
        error = self.assertSetUpFails(UserError, fixture)
        self.assertEqual("root", error.user)
        self.assertIn("root", str(error))

    def test_own_user_by_name(self) -> None:
        me = pwd.getpwuid(os.geteuid())
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY), user=me.pw_name)
        self.assertIsNone(daemon.run_as)
        self.assertEqual(os.geteuid(), self.handle(daemon.pid).uids().effective)

    def test_own_user_by_uid(self) -> None:
        daemon = self.useProcess("ready-after", 0, probe=LogPattern(READY), user=os.geteuid())
        self.assertIsNone(daemon.run_as)
        self.assertEqual(os.geteuid(), self.handle(daemon.pid).uids().effective)

    def test_unknown_user(self) -> None:
        fixture = ProcessFixture(self.program("ready-after", 0), user="fxd-no-such-user")
        error = self.assertSetUpFails(UserError, fixture)
        self.assertIn("no such user", str(error))


class TestTempRoots(base.TestCase):
    def test_a_relative_temp_root(self) -> None:
        fixture = ProcessFixture(self.program("ready-after", 0), temp_root="relative/root")
        error = self.assertSetUpFails(TempDirError, fixture)
        self.assertIn("temp_root= is a relative path", str(error))
        self.assertFalse(os.path.exists("relative"))

    def test_a_relative_temp_root_in_the_variable(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_TMPDIR", "rel"))
        error = self.assertSetUpFails(TempDirError, ProcessFixture(self.program("ready-after", 0)))
        self.assertIn("$FIXTURES_DAEMONS_TMPDIR is a relative path", str(error))


class TestRunCommand(base.TestCase):
    """Helper programs (init tools, clients, openssl) run to their end."""

    def test_output_and_failure(self) -> None:
        self.assertEqual("out\n", run_command(["sh", "-c", "echo out"], "helper", 10))
        error = self.assertRaises(
            CommandFailed, run_command, ["sh", "-c", "echo oops >&2; exit 3"], "helper", 10
        )
        self.assertEqual(3, error.returncode)
        self.assertEqual("oops\n", error.output)
        self.assertIn("exited with code 3", str(error))

    def test_a_helper_that_hangs_is_killed_at_its_bound(self) -> None:
        start = time.monotonic()
        error = self.assertRaises(CommandFailed, run_command, ["sleep", "30"], "sleeper", 0.3)
        self.assertLess(time.monotonic() - start, 5)
        self.assertIsNone(error.returncode)
        self.assertIn("did not finish within 0.3 s", str(error))

    def test_a_hung_helper_gets_sigterm_first_and_its_children_go_too(self) -> None:
        # It may clean up on SIGTERM (initdb's shared memory); what it
        # started goes with it (a process group of its own).
        script = (
            "sleep 30 & echo child $!; "
            "trap 'echo cleaned up; kill $!; exit 1' TERM; while :; do sleep 0.05; done"
        )
        error = self.assertRaises(CommandFailed, run_command, ["sh", "-c", script], "helper", 1)
        self.assertIn("cleaned up", error.output)
        child = int(re.search(r"child (\d+)", error.output).group(1))  # type: ignore[union-attr]
        self.assertGone(child)

    def test_a_helper_is_tagged_for_the_watchdog(self) -> None:
        # A runner killed during an initdb takes the initdb with it: the
        # watchdog kills what carries its tag.
        output = run_command(["sh", "-c", "echo $%s" % TAG_ENV], "helper", 10)
        self.assertTrue(output.startswith(Watchdog.get().token + ":"), output)
