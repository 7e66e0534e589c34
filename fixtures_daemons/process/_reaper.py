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
dirs. The same commands are kept in a journal, from which a watchdog that
replaces a dead one, or a sweep after a dead watchdog and its dead test
process (:func:`sweep`), knows what to clean up.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import stat
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


def _wait_gone(pid: int, started: str, timeout: float) -> bool:
    """Wait (at most ``timeout`` seconds) until the process ``pid`` that
    started at ``started`` is gone (a zombie is); True when it is."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while start_time(pid) == started:
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


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


#: A spare copy of a template that a watchdog prepares (see
#: ``templates._Spares``): ``.fxd-spare-<template>-<version>-<uid>-<token[:8]>-<random>``.
SPARE_PREFIX = ".fxd-spare-"
#: A watchdog's private trash dir in a temp root: ``.fxd-trash-<token>-<random>``.
TRASH_PREFIX = ".fxd-trash-"


def remove_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def trash_sibling(path: str) -> str:
    """Where ``Watchdog.discard_dir`` renames ``path`` before it is deleted."""
    return os.path.join(os.path.dirname(path), ".%s.trash" % os.path.basename(path))


def make_trash_dir(root: str, token: str) -> str | None:
    """A new private (0700) trash dir of the watchdog ``token`` in ``root``,
    on the file system of what is renamed into it; None if it cannot be
    made. Its name carries the token, so that whoever sweeps a dead
    watchdog's leftovers finds it."""
    for _ in range(100):
        path = os.path.join(root, "%s%s-%s" % (TRASH_PREFIX, token, os.urandom(4).hex()))
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
        except OSError:
            return None
    return None


class _Watchdog:
    """The state of one watchdog, from its pipe and its journal.

    Every line is a command (written by :class:`Watchdog` of
    ``process/watchdog.py``, first to the journal, then down the pipe):

    ``H {json}``
        the journal's header: the test process (``owner``: pid and start
        time) the watchdog serves;
    ``+P pid start sig`` / ``-P pid``
        a process to stop with ``sig`` if the test process dies / no more;
    ``+D path`` / ``-D path``
        a dir to remove then / no more;
    ``R path``
        a dir renamed out of the way, to remove now;
    ``C [template, lock, spare, uid, gid]``
        copy ``template`` to ``spare`` (see :meth:`copy`);
    ``S root``
        a temp root where spares and trash dirs of this watchdog may be.

    Handling a line twice does what handling it once does: a watchdog that
    replaces a dead one loads the journal, then reads the pipe, where the
    last lines may come again.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.owner: tuple[int, str] = (0, "")
        self.processes: dict[int, tuple[str, int]] = {}
        self.dirs: dict[str, None] = {}  # ordered sets
        self.trash: dict[str, None] = {}  # R paths not yet removed
        self.spares: dict[str, None] = {}
        self.roots: dict[str, None] = {}

    def handle(self, line: str, replay: bool = False) -> None:
        """Apply one command; with ``replay`` (a journal being loaded), only
        record it: nothing is removed or copied until :meth:`resume` or
        :meth:`clean`."""
        verb, _, arg = line.partition(" ")
        try:
            if verb == "+P":
                pid, started, sig = arg.split()
                self.processes[int(pid)] = (started, int(sig))
            elif verb == "-P":
                self.processes.pop(int(arg), None)
            elif verb == "+D":
                self.dirs[arg] = None
            elif verb == "-D":
                self.dirs.pop(arg, None)
            elif verb == "R":  # a dir its owner is done with: remove it now
                self.trash[arg] = None
                if not replay:
                    remove_dir(arg)
                    self.trash.pop(arg, None)
            elif verb == "C":  # the next instance's copy of a template
                template, lock, spare, uid, gid = json.loads(arg)
                if spare not in self.spares:
                    self.spares[spare] = None
                    self.roots[os.path.dirname(spare)] = None
                    if not replay:
                        self.copy(template, lock, spare, uid, gid)
            elif verb == "S":
                self.roots[arg] = None
            elif verb == "H":
                header = json.loads(arg)
                self.owner = (int(header["owner"]), str(header["start"]))
        except (ValueError, TypeError, KeyError):
            pass  # a line cut short by a kill, or garbage: nothing to do

    def copy(self, template: str, lock: str, spare: str, uid: int, gid: int) -> None:
        """Copy ``template`` to ``spare``, holding the template's ``lock``
        shared, owned by ``uid``:``gid``. The copy is made as
        ``spare.part`` and renamed ``spare`` when complete, so that a
        claim (a rename) never takes a copy in the making."""
        part = spare + ".part"
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # the template is not rebuilt meanwhile
            _load_copy().copy_tree(template, part, uid, gid)
            os.rename(part, spare)
        except OSError:
            remove_dir(part)
        finally:
            os.close(fd)

    def load(self, journal: str) -> bool:
        """Record the commands of ``journal`` (False if it cannot be read).
        A last line without its newline (its writer was killed) is left
        out."""
        try:
            with open(journal, "rb") as f:
                data = f.read()
        except OSError:
            return False
        for raw in data.split(b"\n")[:-1]:
            self.handle(raw.decode("utf-8", "surrogateescape"), replay=True)
        return True

    def resume(self) -> None:
        """Finish what a watchdog that died before this one left: the
        removals it had not done, and the copies it was making (its
        ``.part`` dirs go; complete spares stay, to be claimed)."""
        for path in list(self.trash):
            remove_dir(path)
            self.trash.pop(path, None)
        for spare in self.spares:
            remove_dir(spare + ".part")

    def _leftovers(self, root: str) -> tuple[list[str], list[str]]:
        """This watchdog's spares and trash dirs in ``root``, by name and
        owner: what the journal no longer lists is found too."""
        trash_prefix = TRASH_PREFIX + self.token
        spares: list[str] = []
        trash: list[str] = []
        try:
            names = os.listdir(root)
        except OSError:
            return spares, trash
        me = os.geteuid()
        for name in names:
            base = name[: -len(".part")] if name.endswith(".part") else name
            is_spare = base.startswith(SPARE_PREFIX) and base.rsplit("-", 2)[-2:-1] == [
                self.token[:8]
            ]
            is_trash = name.startswith(trash_prefix)
            if not (is_spare or is_trash):
                continue
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            # Ours: made by us, or (when root) for the daemon's user.
            if not stat.S_ISDIR(st.st_mode) or me not in (0, st.st_uid):
                continue
            (spares if is_spare else trash).append(path)
        return spares, trash

    def remove_spares(self) -> None:
        """Remove the spares not claimed, each renamed first into a private
        trash dir: a claim is a rename too, so it takes a whole spare or
        none, never one half deleted."""
        roots = dict(self.roots)
        for spare in self.spares:
            roots[os.path.dirname(spare)] = None
        for root in roots:
            found, trash = self._leftovers(root)
            listed = [s for s in self.spares if os.path.dirname(s) == root]
            spares = set(found) | set(listed)
            parts = {s for s in spares if s.endswith(".part")} | {s + ".part" for s in listed}
            whole = sorted(s for s in spares if not s.endswith(".part"))
            for part in parts:  # never claimed
                remove_dir(part)
            if whole:
                bin_ = make_trash_dir(root, self.token)
                if bin_ is not None:
                    trash.append(bin_)
                    for spare in whole:
                        try:
                            os.rename(spare, os.path.join(bin_, os.path.basename(spare)))
                        except OSError:
                            pass  # claimed a moment ago (or gone): not ours to remove
            for path in trash:
                remove_dir(path)

    def clean(self) -> None:
        """Stop and kill every process of this watchdog, remove its dirs,
        its pending trash and its unclaimed spares."""
        live = [pid for pid, (started, sig) in self.processes.items() if start_time(pid) == started]
        # Whole trees, remembered first: PostgreSQL's children leave the
        # group and hide the tag, and would outlive a killed postmaster. The
        # tagged processes too: one whose registration was lost with a
        # watchdog killed before it read it.
        snapshot: dict[int, str] = {}
        for pid in live + find_tagged(self.token + ":"):
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
            remove_dir(path)
            remove_dir(trash_sibling(path))  # renamed by a discard cut short
        for path in self.trash:
            remove_dir(path)
        self.remove_spares()


# -- the registry: what a dead watchdog leaves is found and swept -------------


def registry_paths(registry: str, token: str) -> tuple[str, str]:
    """The lock file and the journal of the watchdog ``token``."""
    return (os.path.join(registry, token + ".lock"), os.path.join(registry, token + ".journal"))


#: Seconds an exiting watchdog gives its sweep to finish; a sweep cut short
#: is done again by the next.
SWEEP_GRACE = 5.0
#: Seconds a watchdog whose pipe closed waits for its test process to
#: finish exiting, before it decides whether to keep its journal.
OWNER_EXIT_GRACE = 2.0


def sweep(registry: str, own_token: str = "") -> list[str]:
    """Clean up after every watchdog of ``registry`` whose test process and
    watchdog are both dead; return their tokens.

    Both hold the watchdog's lock file shared while they live, so an
    exclusive lock taken without waiting means that both are dead (the
    kernel drops a dead process's locks), and keeps other sweepers away.
    The owner's pid and start time, from the journal's header, are checked
    too.
    """
    swept: list[str] = []
    try:
        names = sorted(os.listdir(registry))
    except OSError:
        return swept
    for name in names:
        if name.startswith(".new-"):  # a lock file its maker died before naming
            path = os.path.join(registry, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(path)
            except OSError:
                pass
            finally:
                os.close(fd)
    tokens = {name.split(".", 1)[0] for name in names if not name.startswith(".")}
    for token in sorted(tokens - {own_token}):
        lock, journal = registry_paths(registry, token)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its test process or its watchdog lives
            if os.fstat(fd).st_nlink == 0:
                continue  # swept by another a moment ago
            dead = _Watchdog(token)
            if dead.load(journal):
                pid, started = dead.owner
                if pid and start_time(pid) == started:
                    continue
                dead.clean()
            for path in (journal, journal + ".new", lock):
                try:
                    os.unlink(path)
                except OSError:
                    pass
            swept.append(token)
        finally:
            os.close(fd)
    return swept


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
    """``_reaper.py TOKEN [REGISTRY LOCK_FD]``: serve the test process at
    the other end of stdin until it closes (or a SIGTERM, SIGHUP or
    SIGINT), then clean up.

    With ``REGISTRY`` (see ``Watchdog`` in ``process/watchdog.py``): the
    test process's shared lock on the lock file of ``TOKEN`` there comes as
    ``LOCK_FD``, so the lock is held while either lives. The journal is
    loaded first (this watchdog may replace a dead one: what that one left
    undone is done) and again at the end (what the pipe had not delivered
    yet); the leftovers of dead watchdogs are swept, in a thread of their
    own; and the journal goes at the end, unless the test process still
    lives (this watchdog was stopped by a signal): then the next watchdog
    it starts takes the journal over.
    """
    token = argv[1]
    registry = argv[2] if len(argv) > 3 else ""
    lock, journal = registry_paths(registry, token) if registry else ("", "")
    watchdog = _Watchdog(token)
    sweeper = None

    def on_signal(signum: int, frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        if registry:
            watchdog.load(journal)
            watchdog.resume()
            import threading

            sweeper = threading.Thread(target=sweep, args=(registry, token), daemon=True)
            sweeper.start()
        for raw in sys.stdin.buffer:
            watchdog.handle(raw.decode("utf-8", "surrogateescape").rstrip("\n"))
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        if registry:
            watchdog.load(journal)
        watchdog.clean()
        if sweeper is not None:
            sweeper.join(SWEEP_GRACE)  # a one-off use (the CLI) exits at once
        pid, started = watchdog.owner
        if registry and pid:
            # Our pipe closed: the test process is exiting, or gone. Give it
            # a moment, so that a clean exit leaves no registry entry.
            _wait_gone(pid, started, OWNER_EXIT_GRACE)
        if registry and not (pid and start_time(pid) == started):
            for path in (journal, lock):
                try:
                    os.unlink(path)
                except OSError:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
