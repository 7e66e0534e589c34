"""Real, throw-away daemons for test suites, as ``fixtures.Fixture``\\ s."""

from fixtures_daemons.base import namespaces
from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.databases import DatabaseDaemonFixture, SqlAdmin
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import (
    Database,
    DatabaseNumber,
    KeyPrefix,
    Namespace,
    WholeDaemon,
    close_database_pools,
    settle_databases,
)
from fixtures_daemons.base.resources import DaemonResource, optimise_module, optimise_package
from fixtures_daemons.base.skipping import installed, skip_unless_installed
from fixtures_daemons.base.spares import close_spare_servers
from fixtures_daemons.base.templates import cache_root, clear_cache
from fixtures_daemons.daemons.etcd import EtcdFixture, EtcdResource
from fixtures_daemons.daemons.httpbin import HttpbinFixture, HttpbinResource
from fixtures_daemons.daemons.influxdb import InfluxdbFixture, InfluxdbResource
from fixtures_daemons.daemons.memcached import MemcachedFixture, MemcachedResource
from fixtures_daemons.daemons.mosquitto import MosquittoFixture, MosquittoResource
from fixtures_daemons.daemons.mysql import MysqlFixture, MysqlResource
from fixtures_daemons.daemons.nats import NatsFixture, NatsResource
from fixtures_daemons.daemons.nginx import NginxFixture, NginxResource
from fixtures_daemons.daemons.pgbouncer import PgbouncerFixture, PgbouncerResource
from fixtures_daemons.daemons.postgresql import PostgresqlFixture, PostgresqlResource
from fixtures_daemons.daemons.rabbitmq import RabbitmqFixture, RabbitmqResource
from fixtures_daemons.daemons.redis import RedisFixture, RedisResource
from fixtures_daemons.daemons.s3 import S3Fixture, S3Resource
from fixtures_daemons.daemons.valkey import ValkeyFixture, ValkeyResource
from fixtures_daemons.daemons.xvfb import XvfbFixture, XvfbResource
from fixtures_daemons.daemons.zookeeper import ZookeeperFixture, ZookeeperResource
from fixtures_daemons.errors import (
    AdminError,
    AttachError,
    CertificateError,
    ClientLibraryMissing,
    CommandFailed,
    DaemonDied,
    DaemonError,
    DaemonExited,
    DefinitionError,
    DisplayUnavailable,
    ExecutableNotFound,
    MisuseError,
    NotOwnedError,
    PortUnavailable,
    ServerError,
    StartupTimeout,
    StateError,
    TempDirError,
    UserError,
)
from fixtures_daemons.process import probes
from fixtures_daemons.process.displays import DisplayFixture, DisplayReservation, reserve_display
from fixtures_daemons.process.fixture import ProcessFixture
from fixtures_daemons.process.ports import PortFixture, PortReservation, reserve_port

__all__ = [
    "Admin",
    "AdminError",
    "AttachError",
    "CertificateError",
    "ClientLibraryMissing",
    "CommandFailed",
    "DaemonDied",
    "DaemonError",
    "DaemonExited",
    "DaemonFixture",
    "DaemonResource",
    "Database",
    "DatabaseDaemonFixture",
    "DatabaseNumber",
    "DefinitionError",
    "DisplayFixture",
    "DisplayReservation",
    "DisplayUnavailable",
    "Endpoint",
    "EtcdFixture",
    "EtcdResource",
    "Executable",
    "ExecutableNotFound",
    "HttpbinFixture",
    "HttpbinResource",
    "InfluxdbFixture",
    "InfluxdbResource",
    "KeyPrefix",
    "MemcachedFixture",
    "MemcachedResource",
    "MisuseError",
    "MosquittoFixture",
    "MosquittoResource",
    "MysqlFixture",
    "MysqlResource",
    "Namespace",
    "NatsFixture",
    "NatsResource",
    "NginxFixture",
    "NginxResource",
    "NotOwnedError",
    "PgbouncerFixture",
    "PgbouncerResource",
    "PortFixture",
    "PortReservation",
    "PortUnavailable",
    "PostgresqlFixture",
    "PostgresqlResource",
    "ProcessFixture",
    "RabbitmqFixture",
    "RabbitmqResource",
    "RedisFixture",
    "RedisResource",
    "S3Fixture",
    "S3Resource",
    "ServerError",
    "SqlAdmin",
    "StartupTimeout",
    "StateError",
    "TempDirError",
    "UserError",
    "ValkeyFixture",
    "ValkeyResource",
    "WholeDaemon",
    "XvfbFixture",
    "XvfbResource",
    "ZookeeperFixture",
    "ZookeeperResource",
    "cache_root",
    "clear_cache",
    "close_database_pools",
    "close_spare_servers",
    "installed",
    "namespaces",
    "optimise_module",
    "optimise_package",
    "probes",
    "reserve_display",
    "reserve_port",
    "settle_databases",
    "skip_unless_installed",
]
