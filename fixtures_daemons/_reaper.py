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

import os
import shutil
import signal
import sys
import time

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


def find_tagged(tag_prefix: str) -> list[int]:
    """Pids of live processes whose tag starts with ``tag_prefix``."""
    needle = ("%s=%s" % (TAG_ENV, tag_prefix)).encode()
    me = os.getpid()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
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
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] != b"Z":
            parents[int(entry)] = int(fields[1])
    found: list[int] = []
    wanted = {pid}
    while wanted:
        children = [child for child, parent in parents.items() if parent in wanted]
        found.extend(children)
        wanted = set(children)
    return found


def kill_quietly(pid: int, sig: int, group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except OSError:
        pass


def kill_tagged(tag_prefix: str, timeout: float = 2.0) -> list[int]:
    """SIGKILL every live process tagged ``tag_prefix``; wait until gone."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        pids = find_tagged(tag_prefix)
        if not pids or time.monotonic() >= deadline:
            return killed
        for pid in pids:
            kill_quietly(pid, signal.SIGKILL)
            if pid not in killed:
                killed.append(pid)
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

    def clean(self) -> None:
        live = [pid for pid, (started, sig) in self.processes.items() if start_time(pid) == started]
        # First the daemon's own stop signal, so e.g. PostgreSQL releases its
        # shared memory; then, after a short bounded wait, SIGKILL for all.
        for pid in live:
            kill_quietly(pid, self.processes[pid][1])
            kill_quietly(pid, signal.SIGCONT)
        deadline = time.monotonic() + 0.75
        delay = 0.001
        while live and time.monotonic() < deadline:
            live = [pid for pid in live if start_time(pid) == self.processes[pid][0]]
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        for pid in live:
            kill_quietly(pid, signal.SIGKILL, group=True)
            kill_quietly(pid, signal.SIGKILL)
        kill_tagged(self.token + ":")
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)


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
