"""Real, throw-away daemons for test suites, as ``fixtures.Fixture``\\ s."""

from fixtures_daemons import probes
from fixtures_daemons.errors import (
    CommandFailed,
    DaemonError,
    DaemonExited,
    ExecutableNotFound,
    PortUnavailable,
    StartupTimeout,
    TempDirError,
    UserError,
)
from fixtures_daemons.ports import PortFixture, PortReservation, reserve_port
from fixtures_daemons.process import ProcessFixture

__all__ = [
    "CommandFailed",
    "DaemonError",
    "DaemonExited",
    "ExecutableNotFound",
    "PortFixture",
    "PortReservation",
    "PortUnavailable",
    "ProcessFixture",
    "StartupTimeout",
    "TempDirError",
    "UserError",
    "probes",
    "reserve_port",
]
