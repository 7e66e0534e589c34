"""Daemons that outlive a run, and the holder process that keeps them.

A *holder* is a small detached process that sets up one daemon fixture and
keeps it until it receives SIGTERM, SIGINT or SIGHUP, then cleans it up.
Eval mode (``fixtures-daemons run DAEMON`` without a command) and
``fixtures-daemons start --name`` both use one, so a backgrounded daemon is
still a child of a process that waits for it and whose watchdog removes it
if the holder is killed. The holder tells its starter how it went over a
pipe (one JSON line), then closes it.

Named daemons are recorded in a per-user state dir as one JSON file each.
A record is trusted only while the holder's and the daemon's pids still
have the start times recorded (a reused pid has another) and the daemon
accepts connections: pytest-xprocess takes a reused pid for the old
process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import typing

from fixtures_daemons import _reaper
from fixtures_daemons.errors import DaemonError
from fixtures_daemons.probes import Tcp
from fixtures_daemons.waiting import wait_for

__all__ = [
    "STATE_ENV",
    "Record",
    "state_dir",
    "load",
    "records",
    "alive",
    "spawn_holder",
    "stop_holder",
    "ensure",
]

STATE_ENV = "FIXTURES_DAEMONS_STATE_DIR"


def state_dir() -> str:
    """Where named daemons are recorded (created 0700)."""
    path = os.environ.get(STATE_ENV)
    if not path:
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(
            os.path.expanduser("~"), ".local", "state"
        )
        path = os.path.join(base, "fixtures-daemons")
    os.makedirs(path, 0o700, exist_ok=True)
    return path


@dataclasses.dataclass
class Record:
    """What a holder reports about the daemon it keeps."""

    name: str
    daemon: str
    kwargs: dict[str, typing.Any]
    holder_pid: int
    holder_start: str
    daemon_pid: int
    daemon_start: str
    host: str
    port: int
    url: str
    log_path: str
    temp_dir: str
    env: dict[str, str]
    state: dict[str, typing.Any]

    def path(self) -> str:
        return os.path.join(state_dir(), self.name + ".json")

    def save(self) -> None:
        tmp = self.path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dataclasses.asdict(self), f)
        os.replace(tmp, self.path())

    def remove(self) -> None:
        try:
            os.unlink(self.path())
        except FileNotFoundError:
            pass


def _check_name(name: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise ValueError("invalid daemon name %r" % name)
    return name


def load(name: str) -> Record | None:
    try:
        with open(os.path.join(state_dir(), _check_name(name) + ".json")) as f:
            return Record(**json.load(f))
    except (OSError, ValueError, TypeError):
        return None


def records() -> list[Record]:
    found = []
    for entry in sorted(os.listdir(state_dir())):
        if entry.endswith(".json"):
            record = load(entry[: -len(".json")])
            if record is not None:
                found.append(record)
    return found


def alive(record: Record) -> bool:
    """Is the recorded daemon still the same process, and answering?"""
    if _reaper.start_time(record.holder_pid) != record.holder_start:
        return False
    if _reaper.start_time(record.daemon_pid) != record.daemon_start:
        return False
    return Tcp(record.host, record.port).ready()


# -- the holder --------------------------------------------------------------


def spawn_holder(
    daemon: str, kwargs: typing.Mapping[str, typing.Any], name: str = "", timeout: float = 300
) -> Record:
    """Start a detached holder for ``daemon(**kwargs)``; return its record
    once the daemon answers, or raise the DaemonError it failed with."""
    spec = json.dumps({"daemon": daemon, "kwargs": dict(kwargs), "name": name})
    holder = subprocess.Popen(
        [sys.executable, "-m", "fixtures_daemons.persistent", spec],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    assert holder.stdout is not None
    try:
        line = holder.stdout.readline()
    finally:
        holder.stdout.close()
    try:
        report = json.loads(line or b"{}")
    except ValueError:
        report = {}
    if "record" in report:
        return Record(**report["record"])
    holder.wait(timeout)
    error = report.get("error") or "the holder exited with code %s" % holder.returncode
    raise DaemonError(daemon, error)


def stop_holder(pid: int, start: str, timeout: float = 60.0) -> bool:
    """Ask the holder ``pid`` (if it is still the one that started at
    ``start``) to clean up, and wait until it is gone. An empty ``start``
    (the start time of no live process) stops nothing: it would match a
    pid that is gone, and wait for it to go."""
    if not start or _reaper.start_time(pid) != start:
        return False
    _reaper.kill_quietly(pid, signal.SIGTERM)
    gone = wait_for(lambda: _reaper.start_time(pid) != start, timeout)
    if not gone:
        _reaper.kill_quietly(pid, signal.SIGKILL)
    return True


def ensure(name: str, daemon: str, kwargs: typing.Mapping[str, typing.Any]) -> Record:
    """The named daemon's record, started first unless alive."""
    record = load(name)
    if record is not None:
        if alive(record):
            return record
        stop_holder(record.holder_pid, record.holder_start)
        record.remove()
    return spawn_holder(daemon, kwargs, name)


def _hold(spec: dict[str, typing.Any]) -> int:
    from fixtures_daemons import registry

    caught: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        caught.append(signum)

    # A signal that lands between the check and the wait still wakes the
    # select below: it writes a byte into this pipe.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    name = spec.get("name") or ""
    # A holder keeps a daemon of its own: it must not attach to the one a
    # *_STATE variable of its starter's environment describes (a second
    # eval in the same shell), which leaves it no process to report.
    fixture = registry.daemon_class(spec["daemon"])(
        **dict(spec["kwargs"], export_env=False, mode="spawn")
    )
    try:
        fixture.setUp()
    except DaemonError as exc:
        sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        return 3
    except Exception as exc:
        sys.stdout.write(json.dumps({"error": "%s: %s" % (type(exc).__name__, exc)}) + "\n")
        return 1
    try:
        assert fixture.process is not None
        daemon_pid = fixture.process.pid or 0
        record = Record(
            name=name,
            daemon=spec["daemon"],
            kwargs=spec["kwargs"],
            holder_pid=os.getpid(),
            holder_start=_reaper.start_time(os.getpid()),
            daemon_pid=daemon_pid,
            daemon_start=_reaper.start_time(daemon_pid),
            host=fixture.host,
            port=fixture.port,
            url=fixture.url,
            log_path=fixture.log_path,
            temp_dir=fixture.temp_dir,
            env=fixture.exports(),
            state=fixture.attach_state(),
        )
        if name:
            record.save()
        sys.stdout.write(json.dumps({"record": dataclasses.asdict(record)}) + "\n")
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.close(devnull)
        while not caught:
            select.select([wake_r], [], [])
            os.read(wake_r, 512)
    finally:
        fixture.cleanUp()
        if name:
            current = load(name)
            if current is not None and current.holder_pid == os.getpid():
                current.remove()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python -m fixtures_daemons.persistent SPEC\n")
        sys.exit(2)
    sys.exit(_hold(json.loads(sys.argv[1])))
