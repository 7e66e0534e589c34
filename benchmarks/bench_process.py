"""Start and stop of one small daemon: what the process layer costs.

Every contender starts ``python -m http.server`` on its own reserved port,
waits until the port accepts a TCP connection, then stops it and waits for
it to exit:

* ``bare``: ``subprocess.Popen`` and a 1 ms connect-poll loop, then
  ``terminate()`` and ``wait()``: the least any tool can do, the baseline;
* ``fixtures-daemons``: ``ProcessFixture`` with a ``probes.Tcp`` probe,
  ``setUp()`` then ``cleanUp()``;
* ``mirakuru``: ``mirakuru.TCPExecutor`` with its defaults, ``start()`` then
  ``stop()``.

The daemon's own start-up (a Python interpreter importing http.server)
dominates; what is left over the baseline is the tool's overhead: poll
overshoot, bookkeeping, the stop path. Run from the repository root::

    python -m benchmarks.bench_process --rounds 20

Exits 1 if a daemon, a temp dir or an extra watchdog is left behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import typing

import mirakuru

from benchmarks import _bench
from fixtures_daemons import ProcessFixture, reserve_port
from fixtures_daemons.process import probes
from fixtures_daemons.process.watchdog import Watchdog

HOST = "127.0.0.1"
MARKER = "http.server"


def server_command(port: int) -> list[str]:
    """The same daemon for every contender."""
    return [sys.executable, "-m", MARKER, "--bind", HOST, str(port)]


def _accepts(port: int) -> bool:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.connect((HOST, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def run_bare(port: int) -> None:
    """Popen, poll the port every millisecond, terminate, wait."""
    process = subprocess.Popen(
        server_command(port),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not _accepts(port):
            if process.poll() is not None:
                raise RuntimeError("bare: http.server exited with %s" % process.returncode)
            time.sleep(0.001)
    finally:
        process.terminate()
        process.wait()


class FixtureRun:
    """ProcessFixture setUp + cleanUp; remembers what it must not leak."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.temp_dirs: list[str] = []
        self.watchdog_pids: set[int] = set()

    def __call__(self) -> None:
        fixture = ProcessFixture(server_command(self.port), probe=probes.Tcp(HOST, self.port))
        fixture.setUp()
        try:
            assert fixture.temp_dir is not None
            self.temp_dirs.append(fixture.temp_dir)
            if fixture._watchdog is not None:
                self.watchdog_pids.add(fixture._watchdog.process.pid)
        finally:
            fixture.cleanUp()


def run_mirakuru(port: int) -> None:
    """TCPExecutor with its defaults (0.1 s poll, SIGTERM, kill leftovers)."""
    executor = mirakuru.TCPExecutor(server_command(port), HOST, port)
    executor.start()
    executor.stop()


def leftover_servers(ports: typing.Iterable[int]) -> list[tuple[int, str]]:
    """Live http.server processes on our ports, found in /proc."""
    wanted = {str(port).encode() for port in ports}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if MARKER.encode() in argv and wanted & set(argv):
            found.append((int(entry), b" ".join(argv).decode(errors="replace")))
    return found


def check_leaks(ports: typing.Iterable[int], fixture_run: FixtureRun) -> list[str]:
    """What the run left behind: daemons, temp dirs, extra watchdogs."""
    problems = [
        "leaked daemon pid %d: %s" % (pid, cmdline) for pid, cmdline in leftover_servers(ports)
    ]
    problems += [
        "leaked temp dir %s" % path for path in fixture_run.temp_dirs if os.path.lexists(path)
    ]
    if len(fixture_run.watchdog_pids) > 1:
        problems.append("watchdog restarted: pids %s" % sorted(fixture_run.watchdog_pids))
    return problems


def main(argv: typing.Sequence[str] | None = None) -> int:
    reservations = {
        name: reserve_port(HOST, what=name) for name in ("bare", "fixtures-daemons", "mirakuru")
    }
    ports = {name: r.port for name, r in reservations.items()}
    fixture_run = FixtureRun(ports["fixtures-daemons"])
    contenders: dict[str, _bench.Run] = {
        "bare": lambda: run_bare(ports["bare"]),
        "fixtures-daemons": fixture_run,
        "mirakuru": lambda: run_mirakuru(ports["mirakuru"]),
    }
    try:
        _bench.main(
            contenders,
            baseline="bare",
            description="start + stop of `python -m http.server` (%s), ready = port accepts"
            % sys.executable,
            argv=argv,
            min_warmup=1,
            notes=[
                "the fixtures-daemons watchdog (one per test process) is started in the "
                "first warm-up round and stays up for the whole run: its start is not counted",
                "ports (reserved once per contender): %s"
                % ", ".join("%s=%d" % item for item in ports.items()),
            ],
        )
    finally:
        # Also after a failed run: a benchmark must not leave daemons behind.
        for reservation in reservations.values():
            reservation.release()
        problems = check_leaks(ports.values(), fixture_run)
        print()
        for problem in problems:
            print("LEAK: " + problem)
    watchdog = Watchdog._instance
    if watchdog is not None:
        print(
            "watchdog: pid %d, started once, %s (it exits with this process)"
            % (watchdog.process.pid, "alive" if watchdog.alive() else "DEAD")
        )
    if problems:
        return 1
    print(
        "no leaks: no http.server left on ports %s; %d fixture temp dirs all removed"
        % (", ".join(map(str, ports.values())), len(fixture_run.temp_dirs))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
