"""One watchdog per test process, so a killed test runner leaks nothing.

When a test runner dies without running cleanUp (SIGKILL, the OOM killer, a
CI timeout), its daemons would live on. The watchdog is a small process,
started on first use and detached into its own session, that holds the read
end of a pipe from the test process. The library tells it, one line per
event, which processes and dirs are live; when the pipe closes, it stops and
kills them and removes the dirs (see
:mod:`fixtures_daemons.process._reaper`). One watchdog serves every daemon
of the process, so its start (off the critical path, since nothing waits for
it) is paid once; see doc/source/design.rst, 'One watchdog per test
process'.

The watchdog may die first (the OOM killer, a ``kill -9``). So every line
is also appended to a *journal* in a per-user registry dir on this machine
(:func:`registry_dir`), before it goes down the pipe. A watchdog that
replaces a dead one (the test process starts it when it finds the first one
dead) loads the journal: the daemons already running are its charge. And
when the test process is dead too, the next watchdog started on this
machine by the same user sweeps what the journal lists; see
doc/source/design.rst, 'A watchdog may die first'.
"""

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
import threading
import uuid

from fixtures_daemons.process import _reaper

__all__ = ["Watchdog", "TAG_ENV", "registry_dir"]

TAG_ENV = _reaper.TAG_ENV

#: The journal is rewritten from what is live after this many lines, so
#: that it stays small however long the test process runs.
COMPACT_AFTER = 1000


def registry_dir() -> str | None:
    """This user's registry of watchdogs on this machine:
    ``/tmp/fixtures-daemons-watchdogs-<uid>`` (whatever ``$TMPDIR`` says:
    every process of the user must find it), mode 0700. None when it
    cannot be made or is not this user's own (another user made it first):
    watchdogs then work without a journal, and what a dead one leaves is
    not swept."""
    base = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    uid = os.geteuid()
    path = os.path.join(base, "fixtures-daemons-watchdogs-%d" % uid)
    try:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            return None
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(path, 0o700)
    except OSError:
        return None
    return path


class Watchdog:
    """The watchdog of this process: :meth:`get` it, do not construct it.

    It keeps its token for the life of the test process: a watchdog that
    replaces a dead one kills the processes tagged before.
    """

    _lock = threading.Lock()
    _instance: Watchdog | None = None

    @classmethod
    def get(cls) -> Watchdog:
        with cls._lock:
            instance = cls._instance
            if instance is None or instance.owner != os.getpid():
                instance = cls._instance = cls()
            elif not instance.alive():
                instance.restart()
            return instance

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.token = uuid.uuid4().hex
        self._write_lock = threading.Lock()
        # What is live, as the lines that said so: what a journal rewritten
        # from scratch, or a new watchdog without a journal, is told.
        self._processes: dict[int, str] = {}
        self._dirs: dict[str, None] = {}
        self._trash: dict[str, None] = {}
        self._spares: dict[str, str] = {}
        self._roots: dict[str, None] = {}
        self._lines = 0
        self._lock_fd = -1
        self._journal_fd = -1
        self.registry = registry_dir()
        if self.registry is not None:
            self._open_registry(self.registry)
        self.restarts = 0
        self.process = self._spawn()

    # -- the journal -------------------------------------------------------

    def _open_registry(self, registry: str) -> None:
        lock, _journal = _reaper.registry_paths(registry, self.token)
        hidden = os.path.join(registry, ".new-" + os.path.basename(lock))
        try:
            self._lock_fd = os.open(
                hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
            )
            # Held while this process lives, and its watchdog (which
            # inherits it): a sweep that takes it exclusively knows both
            # dead. Taken before the file has its name, which a sweep sees.
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
            os.rename(hidden, lock)
            self._rewrite_journal()
        except OSError:
            self._close_registry()

    def _close_registry(self) -> None:
        for fd in (self._lock_fd, self._journal_fd):
            if fd >= 0:
                os.close(fd)
        self._lock_fd = self._journal_fd = -1
        self.registry = None

    def _state(self) -> list[str]:
        """The lines that describe what is live now."""
        header = {"owner": self.owner, "start": _reaper.start_time(self.owner)}
        lines = ["H " + json.dumps(header)]
        lines += ["S " + root for root in self._roots]
        lines += self._processes.values()
        lines += ["+D " + path for path in self._dirs]
        # Removals not known to be done, copies not known to be claimed:
        # those whose dirs are gone are done.
        self._trash = {path: None for path in self._trash if os.path.lexists(path)}
        self._spares = {
            spare: line
            for spare, line in self._spares.items()
            if os.path.lexists(spare) or os.path.lexists(spare + ".part")
        }
        lines += ["R " + path for path in self._trash]
        lines += self._spares.values()
        return lines

    def _rewrite_journal(self) -> None:
        """Write the journal afresh from what is live (atomically: a new
        file renamed over the old), and append to it from now on."""
        assert self.registry is not None
        _lock, journal = _reaper.registry_paths(self.registry, self.token)
        new = journal + ".new"
        fd = os.open(
            new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
        )
        try:
            os.write(
                fd,
                "".join(line + "\n" for line in self._state()).encode("utf-8", "surrogateescape"),
            )
            os.close(fd)
            fd = -1
            os.rename(new, journal)
        finally:
            if fd >= 0:
                os.close(fd)
        if self._journal_fd >= 0:
            os.close(self._journal_fd)
        self._journal_fd = os.open(
            journal, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
        )
        self._lines = 0

    def _journal(self, data: bytes) -> None:
        if self._journal_fd < 0:
            return
        try:
            os.write(self._journal_fd, data)
            self._lines += 1
            if self._lines >= COMPACT_AFTER:
                self._rewrite_journal()
        except OSError:
            pass  # a full disk: the pipe still serves

    # -- the watchdog process ----------------------------------------------

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-I", "-S", _reaper.__file__, self.token]
        if self.registry is not None:
            # The lock, shared: held while either process lives.
            argv += [self.registry, str(self._lock_fd)]
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            pass_fds=(self._lock_fd,) if self.registry is not None else (),
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def restart(self) -> None:
        """Replace a dead watchdog (found dead by :meth:`get`, or by a
        write to its pipe failing) with a new one, which takes over what
        the dead one watched."""
        with self._write_lock:
            # Another thread (a spare server's setUp) may have replaced it
            # meanwhile: closing the new one's pipe would make it clean up
            # everything, as if this process had died.
            if not self.alive():
                self._restart()

    def _restart(self) -> None:
        old = self.process
        if old.stdin is not None:
            try:
                old.stdin.close()
            except OSError:
                pass
        old.poll()  # reaped if dead; a live one (cannot be) exits on EOF
        if self._journal_fd >= 0:
            try:
                self._rewrite_journal()
            except OSError:
                self._close_registry()
        self.restarts += 1
        self.process = self._spawn()
        if self._journal_fd < 0:
            # No journal to load: the new watchdog is told what is live.
            self._write_pipe("".join(line + "\n" for line in self._state()[1:]).encode())

    def _write_pipe(self, data: bytes) -> bool:
        stdin = self.process.stdin
        if stdin is None:
            return False
        try:
            stdin.write(data)
            stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def _send(self, line: str) -> bool:
        """Journal ``line``, then send it; a watchdog found dead is replaced.
        False when no watchdog can take it."""
        data = line.encode("utf-8", "surrogateescape") + b"\n"
        with self._write_lock:
            self._remember(line)
            self._journal(data)
            if self._write_pipe(data):
                return True
            try:
                self._restart()  # the new one loads the line from the journal
            except OSError:
                return False
            return self.alive()

    def _remember(self, line: str) -> None:
        verb, _, arg = line.partition(" ")
        if verb == "+P":
            self._processes[int(arg.split(" ", 1)[0])] = line
        elif verb == "-P":
            self._processes.pop(int(arg), None)
        elif verb == "+D":
            self._dirs[arg] = None
        elif verb == "-D":
            self._dirs.pop(arg, None)
        elif verb == "R":
            self._trash[arg] = None
        elif verb == "C":
            self._spares[json.loads(arg)[2]] = line
        elif verb == "S":
            self._roots[arg] = None

    # -- what the library tells it -----------------------------------------

    def tag(self) -> str:
        """A new tag for one process tree: ``<watchdog token>:<unique>``."""
        return "%s:%s" % (self.token, uuid.uuid4().hex[:12])

    def watch_process(self, pid: int, stop_signal: int = signal.SIGTERM) -> None:
        self._send("+P %d %s %d" % (pid, _reaper.start_time(pid) or "0", stop_signal))

    def forget_process(self, pid: int) -> None:
        self._send("-P %d" % pid)

    def watch_dir(self, path: str) -> None:
        self._send("+D " + path)

    def forget_dir(self, path: str) -> None:
        self._send("-D " + path)

    def prepare_copy(self, template: str, lock: str, spare: str, uid: int, gid: int) -> None:
        """Have the watchdog copy ``template`` to ``spare`` (holding the
        template's ``lock`` shared), owned by ``uid``:``gid`` (-1: as is);
        see ``templates._Spares``. ``spare`` appears whole, renamed from
        ``spare.part``, and is removed when the watchdog exits unless
        claimed by then."""
        self._send("C %s" % json.dumps([template, lock, spare, uid, gid]))

    def make_trash_dir(self, root: str) -> str | None:
        """A new private (0700) trash dir in ``root``, for dirs that must be
        taken out of reach (renamed into it) before they are deleted; give
        it to :meth:`remove_trash` once filled. None if it cannot be made.
        A sweep after this process and its watchdog died finds it by its
        name."""
        if root not in self._roots:
            self._send("S " + root)
        return _reaper.make_trash_dir(root, self.token)

    def remove_trash(self, path: str) -> None:
        """Have the watchdog delete ``path``, a dir nobody else uses (off
        the caller's critical path); if there is no watchdog, here."""
        if not self._send("R " + path):
            shutil.rmtree(path, ignore_errors=True)

    def discard_dir(self, path: str) -> None:
        """Remove the watched dir ``path``, off the caller's critical path.

        Removing a PostgreSQL data dir is a large part of a fixture's cost
        (see doc/source/design.rst, 'Temp dirs deleted off the critical
        path'): the dir is renamed away at once (its path is free when this
        returns) and the watchdog, another process, deletes it; if the
        watchdog is gone, it is deleted here.
        """
        trash = _reaper.trash_sibling(path)  # which a sweep also looks for
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            self.forget_dir(path)
            return
        except OSError:
            trash = path
        if trash == path or not self._send("R " + trash):
            shutil.rmtree(trash, ignore_errors=True)
            if os.path.lexists(trash):
                shutil.rmtree(trash)  # loud: a silent leak is worse
        self.forget_dir(path)
