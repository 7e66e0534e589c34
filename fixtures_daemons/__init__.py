"""Real, throw-away daemons for test suites, as ``fixtures.Fixture``\\ s."""

from fixtures_daemons import probes
from fixtures_daemons.daemon import DaemonFixture
from fixtures_daemons.daemons.memcached import MemcachedFixture
from fixtures_daemons.daemons.mysql import MysqlFixture
from fixtures_daemons.daemons.postgresql import PostgresqlFixture
from fixtures_daemons.daemons.redis import RedisFixture
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
from fixtures_daemons.templates import cache_root, clear_cache

__all__ = [
    "CommandFailed",
    "DaemonError",
    "DaemonFixture",
    "MemcachedFixture",
    "MysqlFixture",
    "PostgresqlFixture",
    "RedisFixture",
    "cache_root",
    "clear_cache",
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
