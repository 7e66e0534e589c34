"""What the tests share: the base TestCase and the misbehaving program.

Tests never sleep to let something happen: they wait for a handshake (a
ready line, a pid file) or poll a condition under a deadline with
:func:`fixtures_daemons.process.waiting.wait_for`, and fail with what they saw.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import typing

import fixtures
import psutil
import testtools

from fixtures_daemons.process.fixture import ProcessFixture
from fixtures_daemons.process.waiting import Deadline, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
#: The checkout: what a child Python needs on its path to import us.
REPO_ROOT = os.path.dirname(HERE)
MISBEHAVE = os.path.join(HERE, "programs", "misbehave.py")

#: A process as tests name it: a pid, or better a psutil handle taken while
#: it ran (which tells a reused pid from the original).
ProcessRef = int | psutil.Process


def is_gone(process: ProcessRef) -> bool:
    """True once the process no longer runs (a zombie counts as gone)."""
    try:
        if isinstance(process, int):
            process = psutil.Process(process)
        elif not process.is_running():  # also False when the pid was reused
            return True
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def python_env(**extra: str) -> dict[str, str]:
    """os.environ for a child Python that must import fixtures_daemons."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + path if path else "")
    env.update(extra)
    return env


class LineReader:
    """Reads lines from a pipe under a deadline, never blocking past it."""

    def __init__(self, stream: typing.IO[bytes]) -> None:
        self.fd = stream.fileno()
        self.buffer = b""
        self.seen = b""  # everything read, for failure messages
        self.eof = False

    def readline(self, timeout: float) -> str | None:
        """The next line, or None at EOF or when ``timeout`` passed."""
        deadline = Deadline(timeout)
        while b"\n" not in self.buffer:
            if self.eof:
                return None
            readable, _, _ = select.select([self.fd], [], [], deadline.remaining())
            if not readable:
                return None
            data = os.read(self.fd, 65536)
            if not data:
                self.eof = True
            self.buffer += data
            self.seen += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")


class TestCase(testtools.TestCase):
    """Base class of the fixtures-daemons tests."""

    def pifpafCommand(self) -> str:
        """The ``pifpaf`` command beside this Python (else on PATH), for
        the tests that compare with the real pifpaf; skips without it."""
        path = os.path.join(os.path.dirname(sys.executable), "pifpaf")
        if not os.access(path, os.X_OK):
            path = shutil.which("pifpaf") or ""
        if not path:
            self.skipTest("pifpaf is not installed (pip install pifpaf): nothing to compare with")
        return path

    def program(self, mode: str, *args: object) -> list[str]:
        """The argv of the misbehaving program in ``mode``."""
        return [sys.executable, MISBEHAVE, mode, *(str(arg) for arg in args)]

    def useProcess(self, mode: str, *args: object, **kwargs: typing.Any) -> ProcessFixture:
        """Set up a ProcessFixture running the misbehaving program."""
        kwargs.setdefault("name", "misbehave")
        return self.useFixture(ProcessFixture(self.program(mode, *args), **kwargs))

    def handle(self, pid: int | None) -> psutil.Process:
        """A psutil handle on a process that must be running now."""
        self.assertIsNotNone(pid)
        assert pid is not None
        try:
            process = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self.fail("process %d is not running" % pid)
        self.assertFalse(is_gone(process), "process %d is a zombie" % pid)
        return process

    def handles_from_file(self, path: str) -> list[psutil.Process]:
        """Handles on the processes whose pids a pid file lists."""
        with open(path) as f:
            return [self.handle(int(word)) for word in f.read().split()]

    def killOnCleanUp(self, process: psutil.Process) -> None:
        """Make sure ``process`` does not outlive the test, even if it fails."""

        def kill() -> None:
            try:
                if process.is_running():
                    process.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass

        self.addCleanup(kill)

    def assertGone(self, *processes: ProcessRef, timeout: float = 5.0) -> None:
        """Assert that every process is gone, or goes within ``timeout``."""
        if not wait_for(lambda: all(is_gone(p) for p in processes), timeout):
            left = [p for p in processes if not is_gone(p)]
            self.fail("still running after %.1f s: %s" % (timeout, left))

    def assertRunning(self, process: ProcessRef) -> None:
        self.assertFalse(is_gone(process), "%s is not running" % (process,))

    def assertDirGone(self, *paths: str, timeout: float = 5.0) -> None:
        """Assert that every dir is gone, or goes within ``timeout`` (the
        cleanUp of a fixture that adopted a spare removes its dir in the
        background)."""
        if not wait_for(lambda: not any(os.path.lexists(p) for p in paths), timeout):
            self.fail("still there: %s" % [p for p in paths if os.path.lexists(p)])

    def assertSetUpFails(
        self, exc_type: type[BaseException], fixture: fixtures.Fixture
    ) -> typing.Any:
        """Set up ``fixture``, assert it fails with ``exc_type``; return the
        error. A ``MultipleExceptions`` wrapper (``fixtures.Fixture``) is
        looked through, so this holds whichever way the fixture reports."""
        try:
            fixture.setUp()
        except fixtures.MultipleExceptions as multiple:
            error = multiple.args[0][1]
        except BaseException as exc:
            error = exc
        else:
            fixture.cleanUp()
            self.fail("%r set up fine, expected %s" % (fixture, exc_type.__name__))
        if not isinstance(error, exc_type):
            raise error
        return error

    def spawnPython(self, code: str, **kwargs: typing.Any) -> subprocess.Popen[bytes]:
        """Run ``code`` in a child Python that can import fixtures_daemons,
        with its stdout (and stderr) on a pipe; SIGKILLed on cleanup."""
        kwargs.setdefault("stdin", subprocess.PIPE)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.STDOUT)
        kwargs.setdefault("env", python_env())
        child = subprocess.Popen([sys.executable, "-c", code], **kwargs)

        def reap() -> None:
            if child.poll() is None:
                child.kill()
            child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()

        self.addCleanup(reap)
        return child

    def readLine(self, reader: LineReader, timeout: float = 30.0, prefix: str = "") -> str:
        """The next line starting with ``prefix``; fail at EOF or timeout,
        showing everything the child printed."""
        deadline = Deadline(timeout)
        while True:
            line = reader.readline(deadline.remaining())
            if line is None:
                self.fail(
                    "no line starting with %r within %.1f s; output so far:\n%s"
                    % (prefix, timeout, reader.seen.decode("utf-8", "replace"))
                )
            if line.startswith(prefix):
                return line
