"""Daemons that outlive a run, and the holder process that keeps them.

A *holder* (:mod:`fixtures_daemons.base.holder`) is a small detached process
that sets up one daemon fixture and keeps it until it receives SIGTERM,
SIGINT or SIGHUP, then cleans it up.
Eval mode (``fixtures-daemons run DAEMON`` without a command) and
``fixtures-daemons start --name`` both use one, so a backgrounded daemon is
still a child of a process that waits for it and whose watchdog removes it
if the holder is killed. The holder tells its starter how it went over a
pipe (one JSON line), then closes it.

Named daemons are recorded in a per-user state dir as one JSON file each.
A record is trusted only while the holder's and the daemon's pids still
have the start times recorded (a reused pid has another) and the daemon
accepts connections, so a reused pid is never taken for the daemon.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import typing

from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.errors import DaemonError, StateError
from fixtures_daemons.process import _reaper
from fixtures_daemons.process.probes import Tcp, UnixSocket
from fixtures_daemons.process.waiting import wait_for

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
    "class_path",
    "load_class",
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


def class_path(cls: type) -> str:
    """``module:QualName``: how a holder finds a fixture class again,
    without a registry (a third party's class, a test's)."""
    return "%s:%s" % (cls.__module__, cls.__qualname__)


def load_class(path: str) -> typing.Any:
    module, _, name = path.partition(":")
    value: typing.Any = importlib.import_module(module)
    for part in name.split("."):
        value = getattr(value, part)
    return value


@dataclasses.dataclass
class Record:
    """What a holder reports about the daemon it keeps: how to start it
    again (its class and arguments), who holds it, and its endpoint (which
    has the daemon's pid and its temp dir)."""

    name: str
    daemon: str
    cls: str
    arguments: dict[str, typing.Any]
    holder_pid: int
    holder_start: str
    endpoint: Endpoint
    log_path: str

    @property
    def url(self) -> str:
        return self.endpoint.url or self.endpoint.display

    def to_dict(self) -> dict[str, typing.Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["endpoint"] = self.endpoint.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: typing.Any, source: str) -> Record:
        if not isinstance(data, dict) or set(data) != {f.name for f in dataclasses.fields(cls)}:
            raise StateError(source, "not a named daemon's record")
        return cls(**dict(data, endpoint=Endpoint.from_dict(data["endpoint"], source)))

    def path(self) -> str:
        return os.path.join(state_dir(), self.name + ".json")

    def save(self) -> None:
        tmp = self.path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f)
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
    path = os.path.join(state_dir(), _check_name(name) + ".json")
    try:
        with open(path) as f:
            return Record.from_dict(json.load(f), path)
    except (OSError, ValueError):  # StateError too: a damaged record is no record
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
    return endpoint_alive(record.endpoint)


def endpoint_alive(endpoint: Endpoint) -> bool:
    """Is the daemon at ``endpoint`` still the process it was (when the
    endpoint has its pid), and does it accept connections (on its main
    port, else its main socket)?"""
    if endpoint.pid and _reaper.start_time(endpoint.pid) != endpoint.pid_start:
        return False
    if endpoint.port is not None:
        return Tcp(endpoint.host, endpoint.port).ready()
    if endpoint.socket:
        return UnixSocket(endpoint.socket).ready()
    return bool(endpoint.pid)


# -- the holder --------------------------------------------------------------


def spawn_holder(
    cls: type, arguments: typing.Mapping[str, typing.Any], name: str = "", timeout: float = 300
) -> Record:
    """Start a detached holder for ``cls(**arguments)``; return its record
    once the daemon answers, or raise the DaemonError it failed with."""
    daemon = getattr(cls, "daemon_name", "")
    spec = json.dumps({"cls": class_path(cls), "arguments": dict(arguments), "name": name})
    holder = subprocess.Popen(
        [sys.executable, "-m", "fixtures_daemons.base.holder", spec],
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
        return Record.from_dict(report["record"], "the holder's report")
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


def ensure(name: str, cls: type, arguments: typing.Mapping[str, typing.Any]) -> Record:
    """The named daemon's record, started first unless alive."""
    record = load(name)
    if record is not None:
        if alive(record):
            return record
        stop_holder(record.holder_pid, record.holder_start)
        record.remove()
    return spawn_holder(cls, arguments, name)
