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
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid

from fixtures_daemons.process import _reaper

__all__ = ["Watchdog", "TAG_ENV"]

TAG_ENV = _reaper.TAG_ENV


class Watchdog:
    """The watchdog of this process: :meth:`get` it, do not construct it."""

    _lock = threading.Lock()
    _instance: Watchdog | None = None

    @classmethod
    def get(cls) -> Watchdog:
        with cls._lock:
            instance = cls._instance
            if instance is None or instance.owner != os.getpid() or not instance.alive():
                instance = cls._instance = cls()
            return instance

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.token = uuid.uuid4().hex
        self._write_lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", _reaper.__file__, self.token],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def tag(self) -> str:
        """A new tag for one process tree: ``<watchdog token>:<unique>``."""
        return "%s:%s" % (self.token, uuid.uuid4().hex[:12])

    def _send(self, line: str) -> bool:
        stdin = self.process.stdin
        if stdin is None:
            return False
        with self._write_lock:
            try:
                stdin.write(line.encode("utf-8", "surrogateescape") + b"\n")
                stdin.flush()
                return True
            except (OSError, ValueError):
                return False  # the watchdog is gone; the next get() starts another

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

    def discard_dir(self, path: str) -> None:
        """Remove the watched dir ``path``, off the caller's critical path.

        Removing a PostgreSQL data dir is a large part of a fixture's cost
        (see doc/source/design.rst, 'Temp dirs deleted off the critical
        path'): the dir is renamed away at once (its path is free when this
        returns) and the watchdog, another process, deletes it; if the
        watchdog is gone, it is deleted here.
        """
        trash = os.path.join(os.path.dirname(path), ".%s.trash" % os.path.basename(path))
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
