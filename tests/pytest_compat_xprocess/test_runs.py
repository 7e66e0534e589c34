"""Inner pytest runs (subprocesses, leak-checked): --xshow and --xkill, a
process that dies, a pid reused by another program, killed runs."""

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import SERVER

from fixtures_daemons.compat import _xholder
from fixtures_daemons.compat.xprocess import DIR_ENV
from fixtures_daemons.process import _reaper
from fixtures_daemons.process.waiting import wait_for
from tests import leakcheck

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Bounds for a loaded machine, not timings.
RUN_TIMEOUT = 300.0
CLEANUP_TIMEOUT = 60.0

CONFTEST = """
import os, sys
import pytest
from fixtures_daemons.compat.xprocess import ProcessStarter

pytest_plugins = ["fixtures_daemons.compat.xprocess"]
SERVER = %r


def starter(extra=(), pattern="ready on port", **attributes):
    class Starter(ProcessStarter):
        args = [sys.executable, SERVER, *extra]
        env = dict(os.environ, XSERVER_GREETING="inner")

    Starter.pattern = pattern
    for key, value in attributes.items():
        setattr(Starter, key, value)
    return Starter
""" % (SERVER,)


class Inner:
    """pytest runs in pytester's directory, with the leak check's run id."""

    def __init__(self, pytester):
        self.path = str(pytester.path)
        self.run_id = "xprocess-%d-%s" % (os.getpid(), os.urandom(4).hex())
        self.before = leakcheck.Snapshot()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", DIR_ENV))}
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (TOP, self.env.get("PYTHONPATH")) if p)
        self.env[leakcheck.RUN_ENV] = self.run_id
        pytester.makeconftest(CONFTEST)

    def command(self, *args):
        return [sys.executable, "-m", "pytest", "-p", "no:xdist", *args]

    def run(self, *args):
        result = subprocess.run(
            self.command(*args),
            cwd=self.path,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT,
        )
        return result.returncode, result.stdout.decode("utf-8", "replace")

    def controldir(self, name):
        return os.path.join(self.path, ".pytest_cache", "d", ".xprocess", name)

    def leaks(self):
        found = []

        def clean():
            found[:] = leakcheck.Snapshot().leaks_since(self.before, self.run_id)
            return not found

        wait_for(clean, CLEANUP_TIMEOUT, cap=0.1)
        return found


@pytest.fixture
def inner(pytester):
    inner = Inner(pytester)
    yield inner
    inner.run("--xkill")  # what a failed test left running


def test_xshow_and_xkill(inner, pytester):
    pytester.makepyfile(
        test_inner="""
        from conftest import starter

        def test_keeps_a_process(xprocess):
            pid, log = xprocess.ensure("kept", starter(["--child"]))
            print("PID=%d" % pid)

        def test_a_process_that_died_on_its_own(xprocess):
            xprocess.ensure("dead", starter(["--die", "4"]))
        """
    )
    status, output = inner.run("-s")
    assert status == 1, output
    pid = int(output.split("PID=")[1].split()[0])
    assert "dead: exited with code 4 before it was ready" in output
    status, shown = inner.run("--xshow")
    assert status == 0, shown
    lines = sorted(shown.splitlines(), key=lambda line: line.split()[1])
    assert lines[0].split()[1:4] == ["dead", "DEAD", "(exited"], shown
    assert lines[1].split()[:3] == [str(pid), "kept", "LIVE"], shown
    assert lines[1].split()[3] == os.path.join(inner.controldir("kept"), "xprocess.log")
    with open(os.path.join(inner.controldir("kept"), "xprocess_server.child")) as f:
        child = int(f.read())
    assert _reaper.start_time(child)
    status, killed = inner.run("--xkill")
    assert status == 0, killed
    assert "%d kept TERMINATED" % pid in killed
    assert "dead NO PROCESS FOUND" in killed
    assert not _reaper.start_time(pid) and not _reaper.start_time(child)  # the whole tree
    status, shown = inner.run("--xshow")
    assert "%d kept DEAD (terminated)" % pid in shown
    assert inner.leaks() == []


def test_a_process_that_dies_is_reported_at_once(inner, pytester):
    # A timeout the run would hit (RUN_TIMEOUT) if the exit were not noticed.
    pytester.makepyfile(
        test_inner="""
        import pytest
        from conftest import starter
        from fixtures_daemons import DaemonExited

        def test_dies(xprocess):
            with pytest.raises(DaemonExited) as caught:
                xprocess.ensure("dying", starter(["--die", "3"], timeout=3600))
            assert caught.value.returncode == 3
            assert "cannot start (asked to die)" in caught.value.log_tail
            assert "exited with code 3" in xprocess.getinfo("dying").status()

        def test_dies_after_it_was_ready(xprocess):
            import socket
            pid, log = xprocess.ensure("later", starter())
            controldir = xprocess.getinfo("later").controldir
            port = int(controldir.join("xprocess_server.port").read())
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"EXIT 9\\n")
                sock.recv(10)
            # It answers, then exits: gone a moment later.
            from fixtures_daemons.process.waiting import wait_for
            info = xprocess.getinfo("later")
            assert wait_for(lambda: not info.isrunning(), 10)
            assert info.terminate() == 0

        def test_the_status_is_recorded(xprocess):
            assert xprocess.getinfo("later").status() == "DEAD (exited with code 9)"
        """
    )
    status, output = inner.run("-p", "no:randomly")
    assert status == 0, output
    assert "3 passed" in output
    assert inner.leaks() == []


def test_pattern_not_found_and_timeouts(inner, pytester):
    pytester.makepyfile(
        test_inner="""
        import pytest
        from conftest import starter
        from fixtures_daemons import DaemonError

        def test_pattern_not_in_the_first_lines(xprocess):
            with pytest.raises(RuntimeError, match="not in the first 5 lines") as caught:
                xprocess.ensure("noisy", starter(["--noise", "10"], max_read_lines=5))
            assert isinstance(caught.value, DaemonError)
            assert not xprocess.getinfo("noisy").isrunning()

        def test_startup_check_never_true(xprocess):
            class Check:
                def startup_check(self):
                    raise ConnectionRefusedError("nobody home")
            S = starter(pattern=None, timeout=0.5)
            S.startup_check = Check.startup_check
            with pytest.raises(TimeoutError, match="ConnectionRefusedError: nobody home"):
                xprocess.ensure("unchecked", S)
            assert not xprocess.getinfo("unchecked").isrunning()

        def test_misuse_is_a_typed_error(xprocess):
            from fixtures_daemons import MisuseError
            with pytest.raises(MisuseError, match="not supported here"):
                xprocess.ensure("bad", starter(popen_kwargs={"preexec_fn": print}))
            with pytest.raises(MisuseError, match="a pattern or a startup_check"):
                xprocess.ensure("bad", starter(pattern=None))
            with pytest.raises(MisuseError, match="no '/'"):
                xprocess.ensure("../escape", starter())
            with pytest.raises(MisuseError, match="returns .pattern, args."):
                xprocess.ensure("bad", lambda cwd: "just a pattern")
        """
    )
    status, output = inner.run()
    assert status == 0, output
    assert inner.leaks() == []


def test_a_reused_pid_is_never_taken_for_the_process(inner, pytester):
    pytester.makepyfile(
        test_inner="""
        from conftest import starter

        def test_starts(xprocess):
            xprocess.ensure("reused", starter())
        """
    )
    status, output = inner.run()
    assert status == 0, output
    controldir = inner.controldir("reused")
    record = _xholder.read_record(controldir)
    assert record is not None and record.alive()
    # Another program, which the system could have given the old pid:
    # the record now names its pid, with the old process's start time.
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        status, killed = inner.run("--xkill")  # stops the real one
        assert "TERMINATED" in killed, killed
        with open(os.path.join(controldir, _xholder.RECORD)) as f:
            data = json.load(f)
        data.update(pid=other.pid, state="running", returncode=None)
        with open(os.path.join(controldir, _xholder.RECORD), "w") as f:
            json.dump(data, f)
        status, shown = inner.run("--xshow")
        assert "%d reused DEAD" % other.pid in shown, shown
        status, killed = inner.run("--xkill")
        assert "%d reused NO PROCESS FOUND" % other.pid in killed, killed
        pytester.makepyfile(
            test_inner="""
            from conftest import starter

            def test_starts_a_new_one(xprocess):
                pid, log = xprocess.ensure("reused", starter())
                assert pid != %d
                xprocess.getinfo("reused").terminate()
            """
            % other.pid
        )
        status, output = inner.run()
        assert status == 0, output
        assert other.poll() is None  # never signalled
    finally:
        other.stdin.close()
        other.wait(RUN_TIMEOUT)
    assert inner.leaks() == []


@pytest.mark.parametrize("when", ["starting", "ready"])
def test_a_killed_run_leaves_nothing(inner, pytester, when):
    # "starting": killed while ensure() waits for a pattern that never
    # comes; "ready": killed while a test uses a terminate_on_interrupt
    # process.
    pytester.makepyfile(
        test_inner="""
        import os
        from conftest import starter

        def test_blocks(xprocess):
            if os.environ["WHEN"] == "starting":
                xprocess.ensure("killed", starter(pattern="never printed"))
            else:
                xprocess.ensure("killed", starter(terminate_on_interrupt=True))
                open("ready", "w").close()
            os.read(os.open("block", os.O_RDONLY), 1)  # a fifo nobody writes
        """
    )
    os.mkfifo(os.path.join(inner.path, "block"))
    inner.env["WHEN"] = when
    run = subprocess.Popen(
        inner.command(), cwd=inner.path, env=inner.env, stdout=subprocess.DEVNULL
    )
    try:
        log = os.path.join(inner.controldir("killed"), "xprocess.log")
        ready = os.path.join(inner.path, "ready")

        def up():
            if when == "ready":
                return os.path.exists(ready)
            try:
                with open(log) as f:
                    return "ready on port" in f.read()
            except OSError:
                return False

        assert wait_for(up, RUN_TIMEOUT, cap=0.1)
        record = _xholder.read_record(inner.controldir("killed"))
        assert record is not None and record.alive()
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(RUN_TIMEOUT)
    assert inner.leaks() == []
    assert not record.alive()
