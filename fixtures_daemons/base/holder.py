"""The holder: a detached process that keeps one daemon fixture set up.

``python -m fixtures_daemons.base.holder SPEC`` (SPEC is JSON: the fixture's
class as ``module:QualName``, its arguments, and the name to record it
under, if any) sets the fixture up, reports its record on stdout as one
JSON line (or the error), closes stdout, and keeps the daemon until
SIGTERM, SIGINT or SIGHUP, then cleans it up. See
:mod:`fixtures_daemons.base.persistent`, which starts it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import typing

from fixtures_daemons.base.persistent import Record, load, load_class
from fixtures_daemons.errors import DaemonError
from fixtures_daemons.process import _reaper

__all__: list[str] = []


def _hold(spec: dict[str, typing.Any]) -> int:
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
    try:
        cls = load_class(spec["cls"])
        fixture = cls(**dict(spec["arguments"], export_env=False, mode="spawn"))
        fixture.setUp()
    except DaemonError as exc:
        sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        return 3
    except Exception as exc:
        sys.stdout.write(json.dumps({"error": "%s: %s" % (type(exc).__name__, exc)}) + "\n")
        return 1
    try:
        record = Record(
            name=name,
            daemon=fixture.daemon_name,
            cls=spec["cls"],
            arguments=spec["arguments"],
            holder_pid=os.getpid(),
            holder_start=_reaper.start_time(os.getpid()),
            endpoint=fixture.server_endpoint,
            log_path=fixture.log_path,
        )
        if name:
            record.save()
        sys.stdout.write(json.dumps({"record": record.to_dict()}) + "\n")
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
        sys.stderr.write("usage: python -m fixtures_daemons.base.holder SPEC\n")
        sys.exit(2)
    sys.exit(_hold(json.loads(sys.argv[1])))
