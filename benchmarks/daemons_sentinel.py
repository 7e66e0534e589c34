"""Redis with a Sentinel: ``RedisFixture(sentinel=True)`` against two bare
processes and pifpaf's ``redis --sentinel``.

* bare floor: ``redis-server`` with the fixture's settings (bench_daemons'
  Redis floor), polled every millisecond until it answers PING, then
  ``redis-server <conf> --sentinel`` on the fixture's Sentinel
  configuration, polled every millisecond until ``SENTINEL
  get-master-addr-by-name pifpaf`` answers; both killed (SIGKILL, as the
  fixture's cleanUp does) and waited for;
* fixtures-daemons: ``RedisFixture(mode="spawn", sentinel=True)``;
* pifpaf: ``RedisDriver(sentinel=True)`` on two free ports (it runs
  ``redis-sentinel``: Debian's ``redis-sentinel`` package).

The floor from issue 9: the fixture within 2x of the two bare processes.
Run with ``python -m benchmarks.bench_daemons --daemons sentinel``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import typing

import fixtures
from pifpaf.drivers.redis import RedisDriver

from benchmarks._floors import HOST, Daemon, Floor, ask
from fixtures_daemons import PortReservation, reserve_port

MASTER = "pifpaf"
#: What the harness needs to give the fixture its Sentinel.
_FIXTURE_KWARGS = {"sentinel": True}
_HARNESS_PASSES_KWARGS = "fixture_kwargs" in {f.name for f in dataclasses.fields(Daemon)}


def _sentinel_request() -> bytes:
    args = [b"SENTINEL", b"get-master-addr-by-name", MASTER.encode()]
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class SentinelFloor(Floor):
    """Two bare processes: the server, then the Sentinel watching it."""

    stop_signal = signal.SIGKILL

    def __init__(self, binary: str, workdir: str, port: int) -> None:
        super().__init__(binary, workdir, port)
        self.config_path = os.path.join(workdir, "redis-sentinel.conf")
        self.sentinel_reservation: PortReservation | None = None

    def prepare(self) -> None:
        if not _HARNESS_PASSES_KWARGS:
            raise RuntimeError(
                "bench_daemons cannot give RedisFixture sentinel=True: its Daemon entry "
                "needs a fixture_kwargs field, passed to the fixture by FixtureRun"
            )
        # Held as long as the floor (the harness gives a floor one port).
        self.sentinel_reservation = reserve_port(HOST, what="sentinel floor")

    @property
    def sentinel_port(self) -> int:
        assert self.sentinel_reservation is not None
        return self.sentinel_reservation.port

    def command(self) -> list[str]:
        # Imported here: bench_daemons imports this module while it loads.
        from benchmarks.bench_daemons import RedisFloor

        return RedisFloor(self.binary, self.workdir, self.port).command()

    def sentinel_config(self) -> str:
        # The fixture's (RedisFixture.sentinel_config), without a password.
        return "\n".join(
            [
                "bind %s" % HOST,
                "port %d" % self.sentinel_port,
                "dir %s" % self.workdir,
                "daemonize no",
                'logfile ""',
                "sentinel monitor %s %s %d 1" % (MASTER, HOST, self.port),
            ]
        )

    def answers(self) -> bool:
        return ask(self.port, b"PING\r\n", b"+PONG")

    def sentinel_answers(self) -> bool:
        return ask(self.sentinel_port, _sentinel_request(), b"*2\r\n")

    def __call__(self) -> None:
        server = self.start(self.command(), self.answers)
        try:
            with open(self.config_path, "w") as f:  # the Sentinel rewrites it
                f.write(self.sentinel_config())
            sentinel = self.start(
                [self.binary, self.config_path, "--sentinel"], self.sentinel_answers
            )
            self.stop(sentinel)
        finally:
            self.stop(server)


#: pifpaf's Sentinel port: one free port, reserved for the whole run.
_PIFPAF_SENTINEL: list[PortReservation] = []


def _pifpaf_sentinel(port: int, temp_root: str) -> fixtures.Fixture:
    if not _PIFPAF_SENTINEL:
        _PIFPAF_SENTINEL.append(reserve_port(HOST, what="pifpaf sentinel"))
    driver = RedisDriver(
        port=port,
        sentinel=True,
        sentinel_port=_PIFPAF_SENTINEL[0].port,
        tmp_rootdir=temp_root,
    )
    return typing.cast(fixtures.Fixture, driver)


_EXTRA: dict[str, typing.Any] = (
    {"fixture_kwargs": _FIXTURE_KWARGS} if _HARNESS_PASSES_KWARGS else {}
)

DAEMON = Daemon(
    "sentinel",
    "RedisFixture",
    SentinelFloor,
    _pifpaf_sentinel,
    max_x_floor=2,
    programs=("redis-server", "redis-sentinel"),
    **_EXTRA,
)
