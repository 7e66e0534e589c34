"""The keeper of one process of :mod:`fixtures_daemons.compat.xprocess`,
and the record it leaves in the process's control dir.

``python -m fixtures_daemons.compat._xholder`` reads one JSON line on its
stdin (the command, the environment, the control dir), starts the command
with a :class:`~fixtures_daemons.ProcessFixture` (in a new session, tagged,
its output appended to ``<control dir>/xprocess.log``, its tree stopped as
a whole and killed by the holder's watchdog if the holder is killed),
writes the record, reports ``{"pid": N}`` (or ``{"returncode": N}``, or
``{"error": "..."}``) as one JSON line on its stdout, and then keeps the
process:

* when the process exits on its own, the holder records its exit status
  at once (the record's ``returncode``), stops what is left of its tree
  and exits: a dead process is never mistaken for a live one, and its
  status is known;
* SIGTERM, SIGINT or SIGHUP stop the process (its whole tree) and are
  recorded as ``terminated``;
* its stdin is the *link* to the pytest process that started it: until
  that process writes ``persist``, the end of the link (the pytest process
  exited or was killed before the process was ready, or before the end of
  a session whose starter has ``terminate_on_interrupt``) stops the process
  too.

Imports no pytest: the holder outlives the pytest run that started it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import sys
import typing

from fixtures_daemons.errors import DaemonExited
from fixtures_daemons.process import _reaper

__all__ = ["Record", "RECORD", "LOG", "PIDFILE", "read_record"]

#: The record, the log and pytest-xprocess's pid file, in the control dir.
RECORD = "fxd-xprocess.json"
LOG = "xprocess.log"
PIDFILE = "xprocess.PID"


@dataclasses.dataclass
class Record:
    """What is known of the process of one control dir.

    A process is the recorded one only while its pid has the recorded
    start time: a pid the system has given to another program since has
    another, so it is never taken for it, nor signalled.
    """

    name: str
    command: list[str]
    pid: int = 0
    pid_start: str = ""
    holder_pid: int = 0
    holder_start: str = ""
    #: "running", "exited" (on its own), "terminated" (stopped by us)
    state: str = "running"
    returncode: int | None = None

    def alive(self) -> bool:
        return bool(self.pid) and _reaper.start_time(self.pid) == self.pid_start

    def holder_alive(self) -> bool:
        return bool(self.holder_pid) and _reaper.start_time(self.holder_pid) == self.holder_start

    def how(self) -> str:
        """How it ended, in words ("" while it runs)."""
        if self.returncode is None:
            return "" if self.state == "running" else self.state
        if self.state == "terminated":
            return "terminated"
        if self.returncode < 0:
            return "killed by signal %d" % -self.returncode
        return "exited with code %d" % self.returncode

    def save(self, controldir: str) -> None:
        path = os.path.join(controldir, RECORD)
        tmp = "%s.%d.tmp" % (path, os.getpid())
        with open(tmp, "w") as f:
            json.dump(dataclasses.asdict(self), f)
        os.replace(tmp, path)


def read_record(controldir: str) -> Record | None:
    """The control dir's record; None when there is none (or it is
    damaged: then nothing is known of a process, and nothing is signalled)."""
    try:
        with open(os.path.join(controldir, RECORD)) as f:
            data = json.load(f)
        return Record(**data)
    except (OSError, ValueError, TypeError):
        return None


def _hold(spec: dict[str, typing.Any], link: int, pending: bytes) -> int:
    from fixtures_daemons.process.fixture import ProcessFixture

    caught: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        caught.append(signum)

    # Every signal, SIGCHLD included, writes a byte into this pipe, which
    # wakes the poll below: an exit is noticed the moment it happens.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    controldir = spec["controldir"]
    record = Record(spec["name"], list(spec["command"]))
    record.holder_pid = os.getpid()
    record.holder_start = _reaper.start_time(os.getpid())
    # The process's environment is the one given, exactly: what the
    # holder's own has beyond it is removed.
    env: dict[str, str | None] = {key: None for key in os.environ}
    env.update(spec["env"])
    fixture = ProcessFixture(
        record.command,
        env=env,
        cwd=spec["cwd"],
        name="xprocess",  # the log: <control dir>/xprocess.log
        temp_dir=controldir,
        user=spec.get("user"),
        stop_timeout=spec["stop_timeout"],
    )
    try:
        fixture.setUp()
    except DaemonExited as exc:  # at once: no process to keep
        record.state, record.returncode = "exited", exc.returncode
        record.save(controldir)
        _report({"returncode": exc.returncode})
        return 0
    except Exception as exc:  # a DaemonError: not found, a bad cwd, a user
        _report({"error": str(exc), "type": type(exc).__name__})
        return 3
    try:
        process = fixture.process
        assert process is not None
        record.pid = process.pid
        record.pid_start = _reaper.start_time(process.pid)
        record.save(controldir)
        _report({"pid": process.pid})
        poller = select.poll()
        poller.register(wake_r, select.POLLIN)
        linked = True
        poller.register(link, select.POLLIN)
        if b"persist\n" in pending:
            linked = False
            poller.unregister(link)
        while not caught and process.poll() is None:
            for fd, _ in poller.poll():
                if fd == wake_r:
                    os.read(wake_r, 512)
                    continue
                data = os.read(fd, 512)
                pending += data
                if b"persist\n" in pending:
                    linked = False
                if not data or not linked:  # the end of the link, or no more link
                    poller.unregister(fd)
                    if linked:
                        caught.append(0)  # the pytest run is gone: stop
        returncode = process.poll()
        if returncode is not None:
            record.state, record.returncode = "exited", returncode
        else:
            record.state = "terminated"
            record.returncode = fixture.stop()
        record.save(controldir)
    finally:
        fixture.stop()  # what is left of the tree, if it exited on its own
        fixture.cleanUp()
    return 0


def _report(data: dict[str, typing.Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.close(devnull)


def main() -> int:
    data = b""
    while b"\n" not in data:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        data += chunk
    line, _, pending = data.partition(b"\n")
    try:
        spec = json.loads(line)
    except ValueError:
        sys.stderr.write("usage: python -m fixtures_daemons.compat._xholder < SPEC\n")
        return 2
    return _hold(spec, 0, pending)


if __name__ == "__main__":
    sys.exit(main())
