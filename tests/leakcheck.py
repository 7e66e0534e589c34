"""Run a command (the test suite) and check that it leaked nothing of ours.

Usage: ``python -m tests.leakcheck -- CMD [ARGS...]``

After CMD exits, checks that

* no process carrying ``FIXTURES_DAEMONS_TAG`` in its environment survives
  (every process fixtures-daemons starts is tagged, and the tag is inherited
  by its descendants, double-forked or not);
* no process works in one of our temp dirs (its cwd is inside one): this
  finds what the tag cannot, daemons that overwrite their environment with
  their process title (PostgreSQL's children, Redis, setproctitle users);
* no watchdog (``_reaper.py``) survives;
* no temp dir of ours (a name starting with ``fxd-``) that was not there
  before CMD started exists in /dev/shm, the system temp dir or
  ``$FIXTURES_DAEMONS_TMPDIR``.

What existed before CMD started is not blamed on it (another run, a daemon
meant to outlive its test process). Nor is what another run, going on at
the same time, still holds: CMD runs with ``FIXTURES_DAEMONS_LEAKCHECK`` set
to an id of this run, which every process it starts inherits (daemons too:
they get the test process's environment). A process is this run's if it, or
failing that its nearest ancestor with a readable environment, carries the
id; another run's if that environment lacks it; and the temp dirs that
another run's processes use are that run's. What cannot be told (an orphan
whose environment was overwritten, a dir no live process uses) is blamed
on CMD: to be sure, run one leak-checked suite at a time.

Watchdogs get a few seconds to finish their cleanup. Prints what leaked;
exits with CMD's status if CMD failed, else 1 if anything leaked, else 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from fixtures_daemons.process import _reaper
from fixtures_daemons.process.tempdirs import PREFIX, TMPDIR_ENV
from fixtures_daemons.process.waiting import wait_for

#: Marks the processes of one leak-checked run (see above).
RUN_ENV = "FIXTURES_DAEMONS_LEAKCHECK"

#: Seconds the watchdogs get to finish: their stop-signal wait (0.75 s), the
#: kill of tagged processes and the removal of dirs, with room for a loaded
#: machine.
GRACE = 3.0

Process = tuple[int, str]  # pid and start time: a reused pid is another process


# -- what /proc says about a process ------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return ""
    return " ".join(arg.decode("utf-8", "replace") for arg in argv if arg)


def _environ(pid: int) -> dict[str, str] | None:
    """The process's environment; None when unreadable (another user's)."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    environ = {}
    for entry in data.decode("utf-8", "replace").split("\0"):
        name, sep, value = entry.partition("=")
        if sep:
            environ[name] = value
    return environ


def _cwd(pid: int) -> str:
    try:
        return os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        return int(data[data.rfind(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _alive(process: Process) -> bool:
    return _reaper.start_time(process[0]) == process[1]


def _with_start_time(pids: list[int]) -> set[Process]:
    found = set()
    for pid in pids:
        started = _reaper.start_time(pid)
        if started:  # gone or a zombie: not a leak
            found.add((pid, started))
    return found


def _processes() -> list[int]:
    me = os.getpid()
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and int(entry) != me]


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


# -- what there is ------------------------------------------------------------


def temp_roots() -> list[str]:
    roots = ["/dev/shm", tempfile.gettempdir()]
    if os.environ.get(TMPDIR_ENV):
        roots.append(os.environ[TMPDIR_ENV])
    unique = []
    for root in roots:
        real = os.path.realpath(root)
        if os.path.isdir(real) and real not in unique:
            unique.append(real)
    return unique


def temp_dirs() -> set[str]:
    """Our temp dirs; not being root, only the ones we own, since then the
    library cannot make a dir owned by anyone else."""
    found = set()
    me = os.geteuid()
    for root in temp_roots():
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            path = os.path.join(root, name)
            try:
                owner = os.lstat(path).st_uid
            except OSError:
                continue
            # ".fxd-...trash": a dir handed to the watchdog to delete
            ours = name.startswith(PREFIX) or name.startswith("." + PREFIX)
            if ours and me in (0, owner):
                found.add(path)
    return found


def _uid(pid: int) -> int | None:
    try:
        return os.stat("/proc/%d" % pid).st_uid
    except OSError:
        return None


class Snapshot:
    """Our processes, watchdogs and temp dirs at one moment."""

    def __init__(self) -> None:
        self.dirs = temp_dirs()
        processes = []
        me = os.geteuid()
        for pid in _processes():
            argv = _cmdline(pid).split(" ")
            if any(os.path.basename(arg) == "_reaper.py" for arg in argv[1:5]):
                if me == 0 or _uid(pid) == me:  # not another user's run's
                    processes.append(pid)  # a watchdog
            else:
                cwd = _cwd(pid)
                if cwd and any(_inside(cwd, d) for d in self.dirs):
                    processes.append(pid)  # works in one of our dirs
        # An empty prefix matches every tagged process, whoever started it.
        processes += _reaper.find_tagged("")
        self.processes = _with_start_time(processes)

    def leaks_since(self, before: Snapshot, run_id: str) -> list[str]:
        def owner(pid: int) -> bool | None:
            """True: this run's; False: another's; None: cannot tell."""
            while pid > 1:
                environ = _environ(pid)
                if environ is not None:
                    if environ.get(RUN_ENV) == run_id:
                        return True
                    # Intact (not overwritten by a process title), without
                    # our id: CMD did not start it.
                    if RUN_ENV in environ or "PATH" in environ:
                        return False
                pid = _parent(pid)
            return None

        new = sorted(p for p in self.processes - before.processes if _alive(p))
        owners = {pid: owner(pid) for pid, _ in new}
        used = []  # what other runs' live processes use is theirs
        for pid, ours in owners.items():
            if ours is False:
                used.append(_cwd(pid))
                used += _cmdline(pid).split(" ")

        def theirs(directory: str) -> bool:
            return any(_inside(use, directory) for use in used if use)

        leaks = []
        for pid, ours in owners.items():
            cwd = _cwd(pid)
            if ours or (ours is None and not any(_inside(cwd, d) and theirs(d) for d in self.dirs)):
                tag = (_environ(pid) or {}).get(_reaper.TAG_ENV, "none visible")
                leaks.append(
                    "process %d (tag %s, cwd %s) still running: %s"
                    % (pid, tag, cwd or "?", _cmdline(pid))
                )
        for path in sorted(self.dirs - before.dirs):
            if not theirs(path):
                leaks.append("temp dir still there: %s" % path)
        return leaks


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.stderr.write("usage: python -m tests.leakcheck -- CMD [ARGS...]\n")
        return 2
    run_id = "%d-%s" % (os.getpid(), os.urandom(4).hex())
    before = Snapshot()
    try:
        status = subprocess.call(argv, env={**os.environ, RUN_ENV: run_id})
    except OSError as exc:
        sys.stderr.write("leakcheck: cannot run %s: %s\n" % (argv[0], exc))
        return 127
    if status < 0:  # killed by a signal: report it the way a shell does
        status = 128 - status

    leaks: list[str] = []

    def clean() -> bool:
        leaks[:] = Snapshot().leaks_since(before, run_id)
        return not leaks

    wait_for(clean, GRACE, cap=0.1)
    if leaks:
        sys.stderr.write("leakcheck: %d leak(s) after %s:\n" % (len(leaks), " ".join(argv)))
        for leak in leaks:
            sys.stderr.write("  %s\n" % leak)
        return status or 1
    sys.stderr.write("leakcheck: nothing leaked\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
