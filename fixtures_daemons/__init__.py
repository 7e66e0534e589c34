"""Real, throw-away daemons for test suites, as ``fixtures.Fixture``\\ s."""

from fixtures_daemons import probes
from fixtures_daemons.daemon import DaemonFixture
from fixtures_daemons.daemons.memcached import MemcachedFixture, MemcachedResource
from fixtures_daemons.daemons.mysql import MysqlFixture, MysqlResource
from fixtures_daemons.daemons.postgresql import PostgresqlFixture, PostgresqlResource
from fixtures_daemons.daemons.redis import RedisFixture, RedisResource
from fixtures_daemons.databases import DatabaseDaemonFixture
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
from fixtures_daemons.resources import DaemonResource, optimise_module, optimise_package
from fixtures_daemons.templates import cache_root, clear_cache

__all__ = [
    "CommandFailed",
    "DaemonError",
    "DaemonFixture",
    "DaemonResource",
    "DatabaseDaemonFixture",
    "MemcachedFixture",
    "MemcachedResource",
    "MysqlFixture",
    "MysqlResource",
    "PostgresqlFixture",
    "PostgresqlResource",
    "RedisFixture",
    "RedisResource",
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
    "optimise_module",
    "optimise_package",
    "probes",
    "reserve_port",
]
