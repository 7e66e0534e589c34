"""What the daemon benchmarks share: the bare floor and a daemon's entry.

``bench_daemons`` measures the built-in daemons, and one more per module
``benchmarks/daemons_<name>.py``, which defines ``DAEMON``, a
:class:`Daemon` with the daemon's :class:`Floor` subclass and pifpaf
driver: adding a daemon's benchmark touches no shared file.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import time
import typing

import fixtures

__all__ = ["HOST", "FLOOR_TIMEOUT", "Floor", "Daemon", "run", "ask"]

HOST = "127.0.0.1"
FLOOR_TIMEOUT = 60.0


class Floor:
    """Start the daemon directly on a ready dir, poll every millisecond until
    it answers, stop it with :attr:`stop_signal`, wait for it."""

    stop_signal: typing.ClassVar[int] = signal.SIGKILL

    def __init__(self, binary: str, workdir: str, port: int) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.log_path = os.path.join(workdir, "floor.log")

    def prepare(self) -> None:
        """Outside the timed part: initialise the data dir."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def start(
        self, command: list[str], ready: typing.Callable[[], bool]
    ) -> subprocess.Popen[bytes]:
        """Start ``command``, poll ``ready`` every millisecond until it is
        true; stop the process again if it never is."""
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + FLOOR_TIMEOUT
            while not ready():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "floor: %s did not answer (exit status %s); see %s"
                        % (" ".join(command), process.returncode, self.log_path)
                    )
                time.sleep(0.001)
        except BaseException:
            self.stop(process)
            raise
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(self.stop_signal)
        process.wait()

    def __call__(self) -> None:
        self.stop(self.start(self.command(), self.answers))


def run(command: list[str]) -> None:
    result = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, check=False, cwd="/"
    )
    if result.returncode != 0:
        raise RuntimeError(
            "%s failed (%d): %s"
            % (command[0], result.returncode, (result.stdout + result.stderr).decode())
        )


def initdb(postgres: str, data_dir: str) -> None:
    """A PostgreSQL data dir made as the fixture's template is
    (``PostgresqlFixture._init_options``; trust everywhere: a floor has no
    password to pay for), for the floors that start ``postgres``."""
    from fixtures_daemons.base.binaries import sibling

    run(
        [sibling(postgres, "initdb"), "-D", data_dir, "--no-sync", "--no-instructions"]
        + ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale", "C", "--wal-segsize=1"]
    )


def ask(port: int, request: bytes, expect: bytes) -> bool:
    """Send one line over TCP; True if the reply starts with ``expect``."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(request)
            return sock.recv(64).startswith(expect)
    except OSError:
        return False


@dataclasses.dataclass(frozen=True)
class Daemon:
    """One daemon: its fixture class, its floor and its pifpaf driver
    (None when pifpaf has no such daemon: the table leaves its column
    empty)."""

    name: str
    fixture: str  # class name in fixtures_daemons
    floor: type[Floor]
    pifpaf: typing.Callable[[int, str], fixtures.Fixture] | None
    #: pifpaf's median over ours at least this, or ours over the floor's at
    #: most this (the floors the library promises).
    min_x_pifpaf: float | None = None
    max_x_floor: float | None = None
    #: The names of its processes, for the leak check.
    programs: tuple[str, ...] = ()
    #: Keyword arguments for the fixture (beside mode="spawn").
    fixture_kwargs: typing.Mapping[str, typing.Any] = dataclasses.field(default_factory=dict)
