"""ProcessFixture: one command, run until cleanUp, never leaked.

The process layer every daemon is built on:

* the command runs in a new session, its stdout and stderr going straight
  to a log file: no pipe exists, so nothing can fill up and block the
  daemon (see doc/source/design.rst, 'Output to a file, not a pipe');
* readiness is a :mod:`~fixtures_daemons.process.probes` probe polled under a
  monotonic deadline with a backoff that starts at 1 ms, and the process is
  checked on every poll, so an early exit fails at once with its exit code
  and log tail instead of at the timeout;
* stopping snapshots the process tree, sends the stop signal, waits a
  bounded time (on a pidfd), then SIGKILLs what is left of the whole tree:
  the process group, the snapshot (children that left the group and hid
  their environment, as PostgreSQL's do) and every process carrying this
  process's tag (descendants that double-forked out of the group);
* the watchdog (:mod:`fixtures_daemons.process.watchdog`) does the same if the test
  process dies before cleanUp.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import typing

from testtools import content, content_type

from fixtures_daemons.errors import (
    DaemonDied,
    DaemonExited,
    ExecutableNotFound,
    MisuseError,
    StartupTimeout,
    UserError,
)
from fixtures_daemons.process import _reaper
from fixtures_daemons.process._fixture import Fixture
from fixtures_daemons.process.probes import Probe, ProbeContext
from fixtures_daemons.process.tempdirs import PrivateDirFixture, make_private_dir, remove_tree
from fixtures_daemons.process.users import RunAs, resolve_user
from fixtures_daemons.process.waiting import Backoff, Deadline, wait_for
from fixtures_daemons.process.watchdog import TAG_ENV, Watchdog

__all__ = ["ProcessFixture", "log_tail"]

#: How much of a log is attached to a test result as a detail.
DETAIL_BYTES = 64 * 1024


def log_tail(path: str, lines: int = 20, max_bytes: int = 16384) -> str:
    """The last ``lines`` lines of the file at ``path`` ("" if unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    """``process.wait(timeout)``, without its sleeps: CPython's timed wait
    sleeps between polls, so it notices an exit late; a pidfd becomes
    readable the moment the process exits (see doc/source/design.rst,
    'Waiting for an exit with a pidfd')."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None or process.returncode is not None:
        return process.wait(timeout)
    try:
        fd = pidfd_open(process.pid)
    except OSError:  # an old kernel, or already reaped
        return process.wait(timeout)
    try:
        # poll(), not select(): select() fails for a descriptor above 1023,
        # which a test process with many files open easily has.
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            raise subprocess.TimeoutExpired(process.args, timeout)
    finally:
        os.close(fd)
    return process.wait()


def _read_for_detail(path: str) -> list[bytes]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size > DETAIL_BYTES:
                f.seek(size - DETAIL_BYTES)
                head = b"[... %d earlier bytes not shown ...]\n" % (size - DETAIL_BYTES)
            else:
                f.seek(0)
                head = b""
            return [head + f.read()]
    except OSError as exc:
        return [("[log not readable: %s]" % exc).encode()]


class ProcessFixture(Fixture):
    """Run ``command`` from setUp until cleanUp; setUp returns once ``probe``
    says the process is ready.

    :param command: the argv list.
    :param probe: a :class:`~fixtures_daemons.process.probes.Probe`; None means ready
        as soon as the process has started.
    :param timeout: seconds to wait for readiness.
    :param stop_signal: the signal that asks the process to stop.
    :param stop_timeout: seconds to wait after it before SIGKILL.
    :param user: run as this user (name or uid; needs root). None: as ourselves.
    :param env: variables added to (or, with value None, removed from) the
        environment of the process.
    :param cwd: its working directory (default: its temp dir).
    :param name: what error messages and the log detail call it.
    :param temp_dir: an existing dir to use (and not remove) instead of a new
        private one.
    :param temp_root: where to make the private temp dir.
    :param watchdog: False for a process meant to outlive the test process.

    Attributes once set up: ``pid``, ``log_path``, ``temp_dir``, ``process``
    (the :class:`subprocess.Popen`), ``run_as``.
    """

    def __init__(
        self,
        command: typing.Sequence[str],
        probe: Probe | None = None,
        timeout: float = 30.0,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 5.0,
        user: str | int | None = None,
        env: typing.Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        name: str | None = None,
        temp_dir: str | None = None,
        temp_root: str | None = None,
        watchdog: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(command, (str, bytes)):
            raise MisuseError(
                name or "",
                "ProcessFixture(command=%r)" % (command,),
                "the command is a list of arguments, not one string (it would be run "
                "letter by letter); use shlex.split() on it, or pass a list",
            )
        self.command = [str(arg) for arg in command]
        if not self.command:
            raise MisuseError(
                name or "", "ProcessFixture(command=[])", "the command is empty: give a program"
            )
        if probe is not None and not isinstance(probe, Probe):
            raise MisuseError(
                name or "",
                "ProcessFixture(probe=%r)" % (probe,),
                "a probe is a fixtures_daemons.probes.Probe (LogPattern, Tcp, Callable, ...), "
                "not a %s" % type(probe).__name__,
            )
        self.probe = probe
        self.timeout = timeout
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.user = user
        self.env_overlay = dict(env or {})
        self.cwd = cwd
        self.name = name or os.path.basename(self.command[0])
        self.temp_dir = temp_dir
        # Kept apart from temp_dir, which names our own private dir while set
        # up: a fixture set up again after cleanUp must make a new one.
        self._given_temp_dir = temp_dir
        self.temp_root = temp_root
        self.use_watchdog = watchdog
        self.process: subprocess.Popen[bytes] | None = None
        self.run_as: RunAs | None = None
        self.log_path = ""
        self._tag = ""
        self._paused: list[int] = []  # pids that paused() stopped
        self._stop_requested = False

    # -- lifecycle -------------------------------------------------------

    def _setUp(self) -> None:
        self.run_as = resolve_user(self.user, self.name)
        self._watchdog = Watchdog.get() if self.use_watchdog else None
        self.temp_dir = self._given_temp_dir
        if self.temp_dir is None:
            if self.use_watchdog:
                self.temp_dir = self.useFixture(
                    PrivateDirFixture(self.name, self.temp_root, self.run_as)
                ).path
            else:
                self.temp_dir = make_private_dir(self.name, self.temp_root, self.run_as)
                self.addCleanup(remove_tree, self.temp_dir)
        # A name, never a path: "a/b" must not put the log outside the dir.
        log_name = self.name.replace(os.sep, "_").lstrip(".") or "process"
        self.log_path = os.path.join(self.temp_dir, "%s.log" % log_name)
        log_path = self.log_path
        self.addDetail(
            "%s-log" % self.name,
            content.Content(content_type.UTF8_TEXT, lambda: _read_for_detail(log_path)),
        )
        self.addCleanup(self._stop_at_cleanup)
        self.start()

    @property
    def pid(self) -> int | None:
        """The process id, or None when not running."""
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.run_as is not None:
            # Another user: its home and temp files in its own private dir
            # (our TMPDIR may be a dir of root's that it cannot write).
            env.update(
                HOME=self.temp_dir or "/",
                TMPDIR=self.temp_dir or "/tmp",
                USER=self.run_as.name,
                LOGNAME=self.run_as.name,
            )
        for key, value in self.env_overlay.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        if self._watchdog is not None:
            self._tag = self._watchdog.tag()
        else:
            self._tag = "detached:%s" % os.urandom(6).hex()
        env[TAG_ENV] = self._tag
        return env

    def start(self) -> None:
        """Spawn the process and wait until it is ready.

        On failure the process is stopped before the error is raised.
        """
        if self.running:
            return
        if self.process is not None:
            # It died on its own: what is left of its tree (children that
            # outlived it, and may hold its port) must go before the restart.
            self.stop()
        env = self._environment()
        extra: dict[str, typing.Any] = self.run_as.popen_kwargs if self.run_as else {}
        with open(self.log_path, "ab") as log:
            if self.run_as is not None:
                os.chown(self.log_path, self.run_as.uid, self.run_as.gid)
            # Before the spawn: what the process prints may be in the log
            # before _wait_ready starts the probe.
            log_offset = os.fstat(log.fileno()).st_size
            try:
                self.process = subprocess.Popen(
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd or self.temp_dir,
                    start_new_session=True,
                    close_fds=True,
                    **extra,
                )
            except (FileNotFoundError, PermissionError) as exc:
                # The same errors come from a cwd that is missing or closed to
                # us: Popen names the cwd in exc.filename then.
                if exc.filename is not None and exc.filename == (self.cwd or self.temp_dir):
                    raise MisuseError(
                        self.name,
                        "ProcessFixture(cwd=%r)" % (exc.filename,),
                        "the working directory %s: %s"
                        % (
                            "cannot be entered"
                            if isinstance(exc, PermissionError)
                            else "does not exist",
                            exc.strerror,
                        ),
                    ) from exc
                if isinstance(exc, PermissionError) and self.run_as is not None:
                    # Typically a virtualenv under /root, or a 0700 dir above it.
                    raise UserError(
                        self.name,
                        self.run_as.name,
                        "permission denied running %s: it and every directory above it "
                        "must be readable and executable by that user" % self.command[0],
                    ) from exc
                program = self.command[0]
                if os.sep in program and not os.path.isabs(program):
                    where = self.cwd or self.temp_dir or ""
                    searched = [
                        "%s (a relative path is taken from the process's working directory: "
                        "its private temp dir unless cwd= is given)" % where
                    ]
                    raise ExecutableNotFound(self.name, program, searched) from exc
                raise ExecutableNotFound(self.name, program) from exc
        if self._watchdog is not None:
            self._watchdog.watch_process(self.process.pid, self.stop_signal)
        try:
            self._wait_ready(log_offset)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, log_offset: int | None = None) -> None:
        assert self.process is not None
        probe = self.probe
        deadline = Deadline(self.timeout)
        if probe is not None:
            probe.start(ProbeContext(self.log_path, self.process.pid, log_offset, deadline))
        backoff = Backoff(deadline)
        while True:
            returncode = self.process.poll()
            if returncode is not None:
                raise DaemonExited(self.name, returncode, self.command, self.log_tail())
            if probe is None or probe.ready():
                return
            if deadline.expired():
                waited_for = probe.describe()
                if probe.last_error:
                    waited_for += " (last attempt: %s)" % probe.last_error
                raise StartupTimeout(self.name, waited_for, self.timeout, self.log_tail())
            backoff.sleep()

    def stop(self, stop_signal: int | None = None, timeout: float | None = None) -> int | None:
        """Stop the process and its whole tree; return its exit status.

        Idempotent, and safe on a process that already died.
        """
        process = self.process
        if process is None:
            return None
        sig = self.stop_signal if stop_signal is None else stop_signal
        wait = self.stop_timeout if timeout is None else timeout
        snapshot: dict[int, str] = {}
        try:
            if process.poll() is None:
                # The tree as it is now: children that leave the group and
                # hide the tag (PostgreSQL's) are found again by this.
                snapshot = _reaper.family(process.pid)
                _reaper.kill_quietly(process.pid, sig)
                if sig != signal.SIGKILL:
                    # A paused (SIGSTOPped) process handles nothing until continued.
                    self._resume()
                try:
                    _wait(process, wait)
                except subprocess.TimeoutExpired:
                    _reaper.kill_quietly(process.pid, signal.SIGKILL)  # the rest below
                    process.wait()
        finally:
            # Whatever is left of the tree: the group, the snapshot, and
            # escapees by tag.
            _reaper.kill_quietly(process.pid, signal.SIGKILL, group=True)
            _reaper.kill_family(snapshot)
            if self._tag:
                _reaper.kill_tagged(self._tag, since=process.pid)
            if self._watchdog is not None:
                self._watchdog.forget_process(process.pid)
            self.process = None
            self._stop_requested = False
        return process.returncode

    def request_stop(self) -> bool:
        """Send the stop signal and return without waiting: a later
        :meth:`stop` (or cleanUp) finishes the stop and does not report the
        exit as a death. False when the process had exited on its own
        already (cleanUp reports that)."""
        process = self.process
        if process is None or process.poll() is not None:
            return False
        self._stop_requested = True
        _reaper.kill_quietly(process.pid, self.stop_signal)
        if self.stop_signal != signal.SIGKILL:
            self._resume()
        return True

    def _stop_at_cleanup(self) -> None:
        """Stop the process; if it had already exited on its own, say so.

        A daemon that died while the test used it (a crash, the OOM killer)
        is the likely cause of whatever failed; passing over it in silence
        would leave the user with a bare connection error. The error comes
        after everything is stopped and the rest of the cleanups have run.
        A process stopped on purpose with :meth:`stop` before cleanUp is
        not reported.
        """
        process = self.process
        died = process is not None and process.poll() is not None and not self._stop_requested
        tail = self.log_tail() if died else ""
        returncode = self.stop()
        if died:
            raise DaemonDied(self.name, returncode, self.command, tail)

    # -- outage testing --------------------------------------------------

    @contextlib.contextmanager
    def stopped(self, stop_signal: int | None = None) -> typing.Iterator[None]:
        """Stop the process for the with-block, then start it again (same
        command, same ports, same files) and wait until it is ready."""
        self.stop(stop_signal)
        try:
            yield
        finally:
            self.start()

    @contextlib.contextmanager
    def paused(self) -> typing.Iterator[None]:
        """Freeze the process tree (SIGSTOP) for the with-block, simulating
        a hung daemon, then let it go on (SIGCONT).

        The group first, so that it forks no more; then its descendants and
        the processes with its tag, since some daemons' children leave the
        group (PostgreSQL's call setsid()).
        """
        pid = self.pid
        if pid is None:
            raise RuntimeError("%s is not running" % self.name)
        os.killpg(pid, signal.SIGSTOP)
        tagged = _reaper.find_tagged(self._tag, since=pid) if self._tag else []
        self._paused = sorted(set(_reaper.find_descendants(pid)) | set(tagged))
        for other in self._paused:
            _reaper.kill_quietly(other, signal.SIGSTOP)
        # SIGSTOP stops a multi-threaded process (Go, the JVM, Erlang) one
        # thread at a time, as each is scheduled: its other threads may
        # answer for a moment after kill() returned. A hung daemon must not
        # answer: the block begins once every thread is stopped.
        wait_for(lambda: all(_reaper.threads_stopped(p) for p in [pid, *self._paused]), 5.0)
        try:
            yield
        finally:
            self._resume()

    def _resume(self) -> None:
        if self.process is not None:
            _reaper.kill_quietly(self.process.pid, signal.SIGCONT, group=True)
        for other in self._paused:
            _reaper.kill_quietly(other, signal.SIGCONT)
        self._paused = []
