"""pytest-xprocess's API on this library: an opt-in pytest plugin.

Enable it with ``-p fixtures_daemons.compat.xprocess`` or
``pytest_plugins = ["fixtures_daemons.compat.xprocess"]``; a conftest
written for pytest-xprocess then needs one changed line,
``from fixtures_daemons.compat.xprocess import ProcessStarter``. It gives:

* the session fixture ``xprocess``, whose ``ensure(name, starter)`` takes a
  :class:`ProcessStarter` subclass or the older ``preparefunc(cwd)``
  returning ``(pattern, args)`` or ``(pattern, args, env)``, and returns
  ``(pid, log path)``; ``getinfo(name)`` gives ``pid``, ``logpath``,
  ``isrunning()`` and ``terminate()``;
* ``--xshow`` and ``--xkill``.

As with pytest-xprocess, a process outlives the run that started it and
is found again by its name: its control dir is
``<pytest cache dir>/d/.xprocess/<name>``, per rootdir, holding its log
(``xprocess.log``) and its record. Unlike it:

* each process is kept by a small holder process
  (:mod:`fixtures_daemons.compat._xholder`), which notices its exit the
  moment it happens and records its exit status: ``ensure`` fails at once
  with :class:`~fixtures_daemons.DaemonExited`, the status and the log
  tail, where pytest-xprocess waits for its 120 s timeout;
* a process is known by its pid *and* its start time: a pid the system has
  given to another program since is never taken for it, nor signalled;
* a process whose start fails or is interrupted, or whose pytest run is
  killed before it is ready, is stopped with its whole tree: nothing is
  left but what a successful ``ensure`` meant to keep.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import re
import select
import signal
import subprocess
import sys
import typing

import pytest

from fixtures_daemons.compat import _xholder
from fixtures_daemons.errors import (
    DaemonError,
    DaemonExited,
    MisuseError,
    StartupTimeout,
    TempDirError,
)
from fixtures_daemons.process.waiting import Backoff, Deadline, wait_for

__all__ = [
    "ProcessStarter",
    "XProcess",
    "XProcessInfo",
    "XProcessTimeout",
    "PatternNotFound",
    "xprocess",
]

try:  # what pytest-xprocess hands out: py.path.local (pytest's own copy)
    from _pytest.compat import legacy_path as _path
except ImportError:  # pragma: no cover - a pytest without it
    _path = pathlib.Path

#: How long a holder may take to report that it started the process.
HOLDER_TIMEOUT = 60.0
#: Lines of a log shown in a failing test's report.
REPORT_LINES = 50

_PopenKwargs = typing.Mapping[str, typing.Any]


class XProcessTimeout(StartupTimeout, TimeoutError):
    """The process was not ready within its starter's ``timeout`` (also a
    :exc:`TimeoutError`, as pytest-xprocess raises)."""


class PatternNotFound(DaemonError, RuntimeError):
    """The starter's pattern was not in the first ``max_read_lines``
    non-blank lines of the log (also a :exc:`RuntimeError`, as
    pytest-xprocess raises)."""


class ProcessStarter:
    """What to start and how to know it is ready: subclass it.

    :cvar args: the command line (a list; a property may compute it from
        ``self.control_dir``).
    :cvar pattern: a regular expression a line of the log matches once the
        process is ready (None: none).
    :cvar startup_check: a method returning True once the process answers;
        called again and again (an exception counts as "not yet") after
        the pattern matched, if there is one.
    :cvar env: the process's whole environment (None: this process's).
    :cvar timeout: seconds the whole wait may take.
    :cvar max_read_lines: how many non-blank lines the pattern may take.
    :cvar terminate_on_interrupt: stop the process when the run is
        interrupted (Ctrl-C, an internal error) or killed.
    :cvar popen_kwargs: ``cwd``, ``user``, ``shell`` are honoured; output
        options (``text``, ``encoding``, ``bufsize``, ...) and
        ``close_fds`` and ``start_new_session`` change nothing (the output
        goes to the log file; a new session is always made); anything
        else is a :class:`~fixtures_daemons.MisuseError`.
    """

    env: typing.Mapping[str, str] | None = None
    timeout: float = 120
    popen_kwargs: _PopenKwargs = {}
    max_read_lines = 50
    terminate_on_interrupt = False
    pattern: str | re.Pattern[str] | None = None
    args: typing.Sequence[typing.Any] = ()

    def __init__(self, control_dir: typing.Any, process: XProcess) -> None:
        self.control_dir = control_dir
        self.process = process

    def startup_check(self) -> bool:
        return True


def _has_startup_check(starter: typing.Any) -> bool:
    method = getattr(type(starter), "startup_check", None)
    return method is not None and getattr(method, "__qualname__", "") != (
        "ProcessStarter.startup_check"
    )


class _Legacy(ProcessStarter):
    """The older form: ``preparefunc(cwd)`` returning ``(wait, args)`` or
    ``(wait, args, env)``, where ``wait`` is a pattern or a function that
    returns True once the process is ready."""

    def __init__(
        self,
        preparefunc: typing.Callable[..., typing.Any],
        control_dir: typing.Any,
        process: XProcess,
    ) -> None:
        super().__init__(control_dir, process)
        result = preparefunc(control_dir)
        if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
            raise MisuseError(
                "",
                "xprocess.ensure(name, preparefunc)",
                "preparefunc(cwd) returns (pattern, args) or (pattern, args, env), not %r"
                % (result,),
            )
        wait, self.args = result[0], result[1]
        self.env = result[2] if len(result) == 3 else None
        if callable(wait):
            self._check = wait
        else:
            self.pattern = wait

    _check: typing.Callable[[], typing.Any] | None = None

    def legacy_check(self) -> bool:
        assert self._check is not None
        return bool(self._check())


# -- the popen_kwargs ---------------------------------------------------------

#: Popen arguments that change nothing here: output goes to the log file,
#: and the process always gets a session of its own.
_NEUTRAL = {
    "bufsize",
    "text",
    "universal_newlines",
    "encoding",
    "errors",
    "close_fds",
    "start_new_session",
}


def _translate(
    name: str, kwargs: _PopenKwargs, args: list[str]
) -> tuple[list[str], dict[str, typing.Any]]:
    """The command and the holder's arguments for ``popen_kwargs``."""
    extra: dict[str, typing.Any] = {}
    for key, value in kwargs.items():
        if key in _NEUTRAL:
            continue
        if key == "cwd":
            extra["cwd"] = os.fspath(value) if value is not None else None
        elif key == "user":
            extra["user"] = value
        elif key == "shell":
            if value:
                args = ["/bin/sh", "-c", *args]
        else:
            raise MisuseError(
                name,
                "ProcessStarter.popen_kwargs[%r]" % key,
                "not supported here: the process is started by a holder process that "
                "outlives the run, which can be given cwd, user and shell "
                "(the output always goes to the log file)",
            )
    return args, extra


# -- the processes ------------------------------------------------------------


class XProcessInfo:
    """What is known of the process called ``name``: ``pid``, ``logpath``,
    ``controldir``, :meth:`isrunning` and :meth:`terminate`."""

    def __init__(self, rootdir: typing.Any, name: str) -> None:
        _check_name(name)
        self.name = name
        self.controldir = _path(os.path.join(os.fspath(rootdir), name))
        os.makedirs(os.fspath(self.controldir), exist_ok=True)
        self.logpath = _path(os.path.join(os.fspath(self.controldir), _xholder.LOG))
        self.pidpath = _path(os.path.join(os.fspath(self.controldir), _xholder.PIDFILE))
        self.record = _xholder.read_record(os.fspath(self.controldir))
        self.pid: int | None = self.record.pid if self.record and self.record.pid else None

    def __repr__(self) -> str:
        return "<XProcessInfo %s pid=%s %s>" % (self.name, self.pid, self.status())

    def isrunning(self, ignore_zombies: bool = True) -> bool:
        """True while the recorded process lives (its pid still has the
        start time recorded; a zombie is dead)."""
        return self.record is not None and self.record.alive()

    def status(self) -> str:
        """``LIVE``, or ``DEAD`` and how it ended when that is known."""
        if self.isrunning():
            return "LIVE"
        how = self._how()
        return "DEAD (%s)" % how if how else "DEAD"

    def _how(self) -> str:
        record = _xholder.read_record(os.fspath(self.controldir))
        if record is None or (self.record and record.pid != self.record.pid):
            return ""
        if record.state == "running" and record.holder_alive():
            # Its keeper records the exit as soon as it has reaped it: a
            # moment after the process is gone. Wait for that, boundedly.
            controldir = os.fspath(self.controldir)

            def recorded() -> bool:
                latest = _xholder.read_record(controldir)
                return latest is None or latest.state != "running" or not latest.holder_alive()

            wait_for(recorded, 5.0)
            record = _xholder.read_record(controldir) or record
        if record.state == "running":
            return "killed with its keeper" if not record.holder_alive() else ""
        return record.how()

    def terminate(self, *, kill_proc_tree: bool = True, timeout: float = 20) -> int:
        """Stop the process and its whole tree (``kill_proc_tree`` is
        accepted; the tree always goes). Returns 1 when it was stopped, 0
        when there was nothing to stop, -1 when it could not be stopped
        within ``timeout`` seconds (then it was SIGKILLed)."""
        record = self.record
        if record is None or not record.alive():
            return 0
        if record.holder_alive():
            _reaper_kill(record.holder_pid, signal.SIGTERM)
            wait_for(lambda: not record.holder_alive(), timeout)
        if record.alive():  # its keeper is gone or stuck: the tree itself
            from fixtures_daemons.process import _reaper

            snapshot = _reaper.family(record.pid)
            _reaper.signal_family(snapshot, signal.SIGTERM)
            if not wait_for(lambda: not record.alive(), timeout):
                _reaper.kill_family(snapshot)
        return -1 if record.alive() else 1


def _reaper_kill(pid: int, sig: int) -> None:
    from fixtures_daemons.process import _reaper

    _reaper.kill_quietly(pid, sig)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise MisuseError(
            str(name),
            "xprocess.ensure(%r)" % (name,),
            "a process's name is a file name: not empty, no '/', not starting with '.'",
        )


class _Started:
    """A process this session started: its holder and the link to it."""

    def __init__(self, name: str, holder: subprocess.Popen[bytes], on_interrupt: bool) -> None:
        self.name = name
        self.holder = holder
        self.terminate_on_interrupt = on_interrupt

    def persist(self) -> None:
        """Let the process outlive this run."""
        link = self.holder.stdin
        if link is not None and not link.closed:
            try:
                link.write(b"persist\n")
                link.flush()
                link.close()
            except OSError:
                pass  # the holder is gone already (terminated)


class XProcess:
    """The ``xprocess`` fixture: processes kept across runs by name.

    :ivar rootdir: where the control dirs are.
    """

    def __init__(self, config: pytest.Config, rootdir: typing.Any, log: typing.Any = None) -> None:
        self.config = config
        self.rootdir = rootdir
        self.log = log or _Log()
        self.started: dict[str, _Started] = {}
        #: name -> log path, for the reports of failing tests
        self.logs: dict[str, str] = {}

    def __enter__(self) -> XProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def getinfo(self, name: str) -> XProcessInfo:
        return XProcessInfo(self.rootdir, name)

    def ensure(
        self,
        name: str,
        preparefunc: typing.Any,
        restart: bool = False,
        persist_logs: bool = True,
    ) -> tuple[int, typing.Any]:
        """Start the process called ``name`` unless it runs already (or
        ``restart``), wait until it is ready, and return ``(pid, log
        path)``. Concurrent calls for one name (xdist workers) start it
        once: the others wait, and then find it running."""
        info = self.getinfo(name)
        with _locked(os.fspath(info.controldir), name):
            info = self.getinfo(name)
            if info.isrunning() and not restart:
                self.logs[name] = os.fspath(info.logpath)
                return typing.cast(int, info.pid), info.logpath
            if info.isrunning():
                info.terminate()
            elif info.record is not None and info.record.state not in ("running", "terminated"):
                self.log.debug("%s had %s; starting it again", name, info.record.how())
            starter = self._starter(name, preparefunc, info.controldir)
            pid = self._start(name, starter, info, persist_logs)
            self.logs[name] = os.fspath(info.logpath)
            return pid, info.logpath

    def _starter(
        self, name: str, preparefunc: typing.Any, controldir: typing.Any
    ) -> ProcessStarter:
        starter: ProcessStarter
        if isinstance(preparefunc, type):
            starter = preparefunc(controldir, self)
        elif callable(preparefunc):
            starter = _Legacy(preparefunc, controldir, self)
        else:
            raise MisuseError(
                name,
                "xprocess.ensure(%r, %r)" % (name, preparefunc),
                "give a ProcessStarter subclass, or a preparefunc(cwd) function",
            )
        args = getattr(starter, "args", None)
        if isinstance(args, (str, bytes)) or not args:
            raise MisuseError(
                name,
                "%s.args" % type(starter).__name__,
                "the command is a non-empty list of arguments, not %r" % (args,),
            )
        if getattr(starter, "pattern", None) is None and not (
            _has_startup_check(starter) or isinstance(starter, _Legacy) and starter._check
        ):
            raise MisuseError(
                name,
                type(starter).__name__,
                "give a pattern or a startup_check: there is no other way to know it is ready",
            )
        return starter

    def _start(
        self, name: str, starter: ProcessStarter, info: XProcessInfo, persist_logs: bool
    ) -> int:
        controldir = os.fspath(info.controldir)
        logpath = os.fspath(info.logpath)
        command = [str(arg) for arg in starter.args]
        command, extra = _translate(name, getattr(starter, "popen_kwargs", None) or {}, command)
        env = starter.env
        spec = {
            "name": name,
            "command": command,
            "env": dict(os.environ) if env is None else {str(k): str(v) for k, v in env.items()},
            "controldir": controldir,
            "cwd": extra.get("cwd") or controldir,
            "user": extra.get("user"),
            "stop_timeout": 10.0,
        }
        with open(logpath, "ab" if persist_logs else "wb") as log:
            offset = log.tell()
        self.log.debug("%s$ %s", controldir, " ".join(command))
        holder = _spawn_holder(spec)
        started = _Started(name, holder, bool(starter.terminate_on_interrupt))
        try:
            report = _read_report(holder, name)
            if "returncode" in report:
                raise DaemonExited(name, report["returncode"], command, _tail(logpath, offset))
            record = _xholder.read_record(controldir)
            assert record is not None and record.pid == report["pid"]
            info.record, info.pid = record, record.pid
            with open(os.fspath(info.pidpath), "w") as f:
                f.write(str(record.pid))
            _wait_ready(name, starter, record, command, logpath, offset)
        except BaseException:
            # Not ready, or interrupted: the process goes with its tree;
            # closing the link stops it even if the holder is stuck.
            if holder.stdin is not None:
                holder.stdin.close()
            _reaper_kill(holder.pid, signal.SIGTERM)
            holder.wait(HOLDER_TIMEOUT)
            raise
        self.log.debug("%s process startup detected (pid %d)", name, record.pid)
        if started.terminate_on_interrupt:
            self.started[name] = started  # linked until the session ends
        else:
            started.persist()
        return record.pid

    def _interrupted(self) -> None:
        for started in self.started.values():
            if started.terminate_on_interrupt:
                self.getinfo(started.name).terminate()

    def _finish(self) -> None:
        for started in self.started.values():
            started.persist()
        self.started.clear()

    # -- the command line ---------------------------------------------------

    def _infos(self) -> list[XProcessInfo]:
        root = os.fspath(self.rootdir)
        try:
            names = sorted(os.listdir(root))
        except OSError:
            return []
        return [
            self.getinfo(n)
            for n in names
            if not n.startswith(".") and os.path.isdir(os.path.join(root, n))
        ]

    def _xshow(self, tw: typing.Any) -> int:
        for info in self._infos():
            tw.line("%s %s %s %s" % (info.pid, info.name, info.status(), info.logpath))
        return 0

    def _xkill(self, tw: typing.Any) -> int:
        failed = False
        for info in self._infos():
            result = info.terminate()
            failed = failed or result == -1
            status = {1: "TERMINATED", -1: "FAILED TO TERMINATE", 0: "NO PROCESS FOUND"}[result]
            tw.line("%s %s %s" % (info.pid, info.name, status))
        return 1 if failed else 0


class _Log:
    def debug(self, msg: str, *args: object) -> None:
        print(msg % args if args else msg)


# -- starting and waiting -----------------------------------------------------


class _locked:
    """An exclusive lock on a control dir: one ``ensure`` at a time per
    name, across xdist workers and concurrent runs; waits at most
    :data:`HOLDER_TIMEOUT` plus the starter's time."""

    WAIT = 600.0

    def __init__(self, controldir: str, name: str) -> None:
        self.path = os.path.join(controldir, "fxd-xprocess.lock")
        self.name = name
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

        def take() -> bool:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        if not wait_for(take, self.WAIT, cap=0.1):
            os.close(self.fd)
            raise XProcessTimeout(
                self.name, "the lock %s held by another run" % self.path, self.WAIT
            )

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _package_parent() -> str:
    import fixtures_daemons

    return os.path.dirname(os.path.dirname(os.path.abspath(fixtures_daemons.__file__)))


def _spawn_holder(spec: dict[str, typing.Any]) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    # The holder imports this package, wherever the test run found it.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_parent(), env.get("PYTHONPATH")) if p)
    holder = subprocess.Popen(
        [sys.executable, "-m", "fixtures_daemons.compat._xholder"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=spec["controldir"],
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    assert holder.stdin is not None
    holder.stdin.write(json.dumps(spec).encode() + b"\n")
    holder.stdin.flush()
    return holder


def _read_report(holder: subprocess.Popen[bytes], name: str) -> dict[str, typing.Any]:
    assert holder.stdout is not None
    fd = holder.stdout.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    data = b""
    deadline = Deadline(HOLDER_TIMEOUT)
    try:
        while b"\n" not in data and not deadline.expired():
            if poller.poll(max(1, int(deadline.remaining() * 1000))):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
    finally:
        holder.stdout.close()
    try:
        report = json.loads(data.partition(b"\n")[0] or b"{}")
    except ValueError:
        report = {}
    if "pid" in report or "returncode" in report:
        return typing.cast(dict[str, typing.Any], report)
    if "error" not in report:
        report["error"] = "its keeper did not start (exit status %s)" % holder.poll()
    raise DaemonError(name, report["error"])


def _tail(path: str, offset: int, lines: int = 20) -> str:
    """The last ``lines`` lines written to ``path`` since ``offset``."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset if offset <= size else 0, size - 16384))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


class _Lines:
    """The lines of a log written since ``offset``, read as they come."""

    def __init__(self, path: str, offset: int) -> None:
        self.path = path
        self.offset = offset
        self.partial = b""

    def new(self) -> tuple[list[str], str]:
        """The complete lines written since the last call, and the
        incomplete last one so far."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            data = b""
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines], self.partial.decode(
            "utf-8", "replace"
        )


def _wait_ready(
    name: str,
    starter: ProcessStarter,
    record: _xholder.Record,
    command: list[str],
    logpath: str,
    offset: int,
) -> None:
    """Wait for the pattern, then the startup check, under the starter's
    timeout; fail the moment the process exits."""
    timeout = float(getattr(starter, "timeout", 120))
    deadline = Deadline(timeout)
    backoff = Backoff(deadline)
    pattern = getattr(starter, "pattern", None)
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    max_lines = int(getattr(starter, "max_read_lines", 50))
    if isinstance(starter, _Legacy) and starter._check is not None:
        check: typing.Callable[[], typing.Any] | None = starter.legacy_check
    else:
        check = starter.startup_check if _has_startup_check(starter) else None
    lines = _Lines(logpath, offset)
    counted = 0
    last_error = ""
    while True:
        if not record.alive():
            raise DaemonExited(name, _returncode(record, logpath), command, _tail(logpath, offset))
        if regex is not None:
            complete, partial = lines.new()
            for line in complete:
                if line.strip():
                    counted += 1
                if regex.search(line):
                    regex = None
                    break
                if counted >= max_lines:
                    raise PatternNotFound(
                        name,
                        "the pattern %r was not in the first %d lines of its log (%s); "
                        "raise max_read_lines if it comes later"
                        % (regex.pattern, max_lines, logpath),
                        _tail(logpath, offset),
                    )
            else:
                if partial and regex.search(partial):
                    regex = None
        if regex is None:
            if check is None:
                return
            try:
                if check():
                    return
                last_error = "startup_check() returned False"
            except Exception as exc:
                last_error = "startup_check() raised %s: %s" % (type(exc).__name__, exc)
        if deadline.expired():
            waited = (
                "a log line matching %r" % regex.pattern
                if regex is not None
                else "startup_check() (last attempt: %s)" % last_error
            )
            raise XProcessTimeout(name, waited, timeout, _tail(logpath, offset))
        backoff.sleep()


def _returncode(record: _xholder.Record, logpath: str) -> int | None:
    """The exit status the holder records as soon as the process exits."""
    controldir = os.path.dirname(logpath)
    found: list[int | None] = [None]

    def recorded() -> bool:
        current = _xholder.read_record(controldir)
        if current is not None and current.pid == record.pid and current.state != "running":
            found[0] = current.returncode
            return True
        return not record.holder_alive()

    wait_for(recorded, HOLDER_TIMEOUT)
    return found[0]


# -- the plugin ---------------------------------------------------------------


#: Overrides where the control dirs are (a read-only checkout, a run as
#: another user than the one that made the cache dir).
DIR_ENV = "FIXTURES_DAEMONS_XPROCESS_DIR"


def _rootdir(config: pytest.Config, create: bool) -> typing.Any:
    """``$FIXTURES_DAEMONS_XPROCESS_DIR``, else ``<cache dir>/d/.xprocess``,
    where pytest-xprocess keeps its control dirs (with pytest's cache
    plugin or without it)."""
    explicit = os.environ.get(DIR_ENV)
    cache = getattr(config, "cache", None)
    try:
        if explicit:
            root = pathlib.Path(explicit)
        elif cache is not None and create:
            return _path(os.fspath(cache.mkdir(".xprocess")))
        else:
            try:
                cache_dir = str(config.getini("cache_dir"))
            except ValueError:
                cache_dir = ".pytest_cache"
            path = pathlib.Path(os.path.expanduser(os.path.expandvars(cache_dir)))
            root = (path if path.is_absolute() else config.rootpath / path) / "d" / ".xprocess"
        if create:
            root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TempDirError(
            "xprocess",
            str(exc.filename or explicit or "the pytest cache dir"),
            exc.strerror or str(exc),
            "set %s, or pytest's cache_dir (-o cache_dir=DIR), to a directory this user "
            "can write" % DIR_ENV,
        ) from None
    return _path(root)


_KEY = pytest.StashKey[XProcess]()
_OFFSETS = pytest.StashKey[dict[str, int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xprocess", "processes kept across test runs (fixtures-daemons)")
    group.addoption("--xkill", action="store_true", help="stop every process xprocess started")
    group.addoption(
        "--xshow", action="store_true", help="show the processes xprocess started, and their status"
    )


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not (config.option.xshow or config.option.xkill):
        return None
    tw = _TerminalLines()
    xproc = XProcess(config, _rootdir(config, create=False))
    return xproc._xkill(tw) if config.option.xkill else xproc._xshow(tw)


class _TerminalLines:
    def line(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


@pytest.fixture(scope="session")
def xprocess(request: pytest.FixtureRequest) -> typing.Iterator[XProcess]:
    """Processes kept across test runs, by name (pytest-xprocess's API)."""
    xproc = XProcess(request.config, _rootdir(request.config, create=True))
    request.config.stash[_KEY] = xproc
    try:
        yield xproc
    finally:
        xproc._finish()


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    for xproc in _live:
        xproc._interrupted()


def pytest_internalerror(excrepr: object, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    for xproc in _live:
        xproc._interrupted()


def pytest_configure(config: pytest.Config) -> None:
    _configs.append(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config in _configs:
        _configs.remove(config)


_configs: list[pytest.Config] = []


class _LiveXProcesses:
    def __iter__(self) -> typing.Iterator[XProcess]:
        for config in list(_configs):
            xproc = config.stash.get(_KEY, None)
            if xproc is not None:
                yield xproc


_live = _LiveXProcesses()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    xproc = item.config.stash.get(_KEY, None)
    if xproc is not None:
        item.stash[_OFFSETS] = {name: _size(path) for name, path in xproc.logs.items()}


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> typing.Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    xproc = item.config.stash.get(_KEY, None)
    if not report.failed or xproc is None or "xprocess" not in getattr(item, "fixturenames", ()):
        return report
    offsets = item.stash.get(_OFFSETS, {})
    for name, path in sorted(xproc.logs.items()):
        info = xproc.getinfo(name)
        text = "%s (%s)\n" % (path, info.status())
        text += (
            _tail(path, offsets.get(name, 0), REPORT_LINES) or "(nothing logged during the test)"
        )
        report.sections.append(("%s log" % name, text))
    return report
