"""Finding and killing our processes; also the watchdog's main program.

This module imports nothing but the standard library, because it also runs
as the watchdog (``python -I -S _reaper.py TOKEN``), where start-up time
matters and site-packages are not loaded.

Every process the library starts carries ``FIXTURES_DAEMONS_TAG=<watchdog
token>:<process token>`` in its environment. Environments are inherited, so
the tag also marks descendants that left the process group, double-forked or
were re-parented: the one mark that finds a whole tree. The watchdog reads
commands from its stdin, a pipe from the test process; when the pipe closes
(the test process exited or was SIGKILLed), it stops what is still
registered, kills every process with its token and removes the registered
dirs.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sys
import time
import typing

TAG_ENV = "FIXTURES_DAEMONS_TAG"


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if gone).

    Together with the pid it identifies a process: a reused pid has another
    start time.
    """
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) > 19 and fields[0] != b"Z":
        return fields[19].decode()
    return ""


def _pids(since: int = 0) -> list[int]:
    """The pids in /proc; with ``since``, only those created after the
    process ``since`` (pids grow until they wrap around, so that is the
    pids above it unless the last pid handed out is below it).

    Scanning only those keeps the cost of a stop independent of how many
    processes the machine runs (see doc/source/design.rst, 'Scanning
    ``/proc`` from the daemon's pid up').
    """
    try:
        pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []
    if since:
        try:
            with open("/proc/sys/kernel/ns_last_pid", "rb") as f:
                last = int(f.read())
        except (OSError, ValueError):
            last = 0
        if last >= since:
            pids = [pid for pid in pids if pid >= since]
    return pids


def find_tagged(tag_prefix: str, since: int = 0) -> list[int]:
    """Pids of live processes whose tag starts with ``tag_prefix`` (created
    after the process ``since``, if given)."""
    needle = ("%s=%s" % (TAG_ENV, tag_prefix)).encode()
    me = os.getpid()
    found: list[int] = []
    for pid in _pids(since):
        if pid == me:
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if (b"\0" + needle) in environ or environ.startswith(needle):
            found.append(pid)
    return found


def find_descendants(pid: int) -> list[int]:
    """Pids of the live descendants of ``pid``, by parent pid.

    Finds children that a tag does not: PostgreSQL's overwrite their
    environment with their process title, so /proc/PID/environ is blank.
    """
    parents: dict[int, int] = {}
    for child in _pids(since=pid):
        try:
            with open("/proc/%d/stat" % child, "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] != b"Z":
            parents[child] = int(fields[1])
    found: list[int] = []
    wanted = {pid}
    while wanted:
        children = [child for child, parent in parents.items() if parent in wanted]
        found.extend(children)
        wanted = set(children)
    return found


def family(pid: int) -> dict[int, str]:
    """``pid`` and its live descendants, with their start times: a snapshot
    taken before a stop, so that what outlives its parent can still be
    found (and told apart from a new process that got a reused pid)."""
    pids = [pid] + find_descendants(pid)
    return {p: started for p in pids if (started := start_time(p))}


def signal_family(snapshot: dict[int, str], sig: int) -> list[int]:
    """Send ``sig`` to the processes of ``snapshot`` that are still the same
    processes; return their pids."""
    alive = [pid for pid, started in snapshot.items() if start_time(pid) == started]
    for pid in alive:
        kill_quietly(pid, sig)
    return alive


def kill_family(snapshot: dict[int, str], timeout: float = 2.0) -> None:
    """SIGKILL what is left of ``snapshot``; wait until it is dead."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while signal_family(snapshot, signal.SIGKILL) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def threads_stopped(pid: int) -> bool:
    """Every thread of ``pid`` is stopped (or gone, or a zombie)."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return True
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, task), "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2 :][:1] not in (b"T", b"t", b"Z", b"X"):
            return False
    return True


def kill_quietly(pid: int, sig: int, group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except OSError:
        pass


def kill_tagged(tag_prefix: str, timeout: float = 2.0, since: int = 0) -> list[int]:
    """SIGKILL every live process tagged ``tag_prefix``; wait until gone.

    Gone means dead (a zombie at least), not merely no longer found: a
    dying process's environ reads empty as soon as its memory is released,
    before its files (sockets, locks) are closed.
    """
    killed: dict[int, str] = {}  # pid: start time
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        pids = find_tagged(tag_prefix, since)
        dying = [pid for pid, started in killed.items() if started and start_time(pid) == started]
        if (not pids and not dying) or time.monotonic() >= deadline:
            return list(killed)
        for pid in pids:
            if pid not in killed:
                killed[pid] = start_time(pid)
            kill_quietly(pid, signal.SIGKILL)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class _Watchdog:
    def __init__(self, token: str) -> None:
        self.token = token
        self.processes: dict[int, tuple[str, int]] = {}
        self.dirs: list[str] = []

    def handle(self, line: str) -> None:
        parts = line.split(" ", 1)
        if len(parts) != 2:
            return
        verb, arg = parts
        if verb == "+P":
            pid, started, sig = arg.split()
            self.processes[int(pid)] = (started, int(sig))
        elif verb == "-P":
            self.processes.pop(int(arg), None)
        elif verb == "+D":
            self.dirs.append(arg)
        elif verb == "-D" and arg in self.dirs:
            self.dirs.remove(arg)
        elif verb == "R":  # a dir its owner is done with: remove it now
            shutil.rmtree(arg, ignore_errors=True)
        elif verb == "C":  # the next instance's copy of a template
            self.copy(*json.loads(arg))

    def copy(self, template: str, lock: str, spare: str, uid: int, gid: int) -> None:
        part = spare + ".part"
        self.dirs.append(spare)
        self.dirs.append(part)
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # the template is not rebuilt meanwhile
            _load_copy().copy_tree(template, part, uid, gid)
            os.rename(part, spare)
        except OSError:
            shutil.rmtree(part, ignore_errors=True)
        finally:
            os.close(fd)

    def clean(self) -> None:
        live = [pid for pid, (started, sig) in self.processes.items() if start_time(pid) == started]
        # Whole trees, remembered first: PostgreSQL's children leave the
        # group and hide the tag, and would outlive a killed postmaster.
        snapshot: dict[int, str] = {}
        for pid in live:
            snapshot.update(family(pid))
        # First the daemon's own stop signal, so e.g. PostgreSQL releases its
        # shared memory; then, after a short bounded wait, SIGKILL for all.
        for pid in live:
            kill_quietly(pid, self.processes[pid][1])
        signal_family(snapshot, signal.SIGCONT)  # a paused tree handles nothing
        deadline = time.monotonic() + 0.75
        delay = 0.001
        while live and time.monotonic() < deadline:
            live = [pid for pid in live if start_time(pid) == self.processes[pid][0]]
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        for pid in live:
            kill_quietly(pid, signal.SIGKILL, group=True)
        kill_family(snapshot)
        kill_tagged(self.token + ":")
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)


def _load_copy() -> typing.Any:
    """fixtures_daemons.process._copy, loaded by path: the watchdog runs without
    site-packages, so the package itself (which needs fixtures) cannot be
    imported here."""
    module = sys.modules.get("fixtures_daemons.process._copy")
    if module is None:
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_copy.py")
        spec = importlib.util.spec_from_file_location("fixtures_daemons.process._copy", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["fixtures_daemons.process._copy"] = module
    return module


def main(argv: list[str]) -> int:
    watchdog = _Watchdog(argv[1])

    def on_signal(signum: int, frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        for raw in sys.stdin.buffer:
            watchdog.handle(raw.decode("utf-8", "surrogateescape").rstrip("\n"))
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        watchdog.clean()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
