"""Real, throw-away daemons for test suites, as ``fixtures.Fixture``\\ s.

Every public name is imported from the module that defines it on first
use (PEP 562): ``import fixtures_daemons``, or the CLI running one daemon,
imports only what it uses, not every daemon module (see
doc/source/design.rst, 'Where the time goes').
"""

from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
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
    from fixtures_daemons.process.displays import (
        DisplayFixture,
        DisplayReservation,
        reserve_display,
    )
    from fixtures_daemons.process.fixture import ProcessFixture
    from fixtures_daemons.process.ports import PortFixture, PortReservation, reserve_port

#: Each public name: the module that defines it, and its name there.
_WHERE: dict[str, tuple[str, str]] = {
    "Admin": ("fixtures_daemons.base.admin", "Admin"),
    "AdminError": ("fixtures_daemons.errors", "AdminError"),
    "AttachError": ("fixtures_daemons.errors", "AttachError"),
    "CertificateError": ("fixtures_daemons.errors", "CertificateError"),
    "ClientLibraryMissing": ("fixtures_daemons.errors", "ClientLibraryMissing"),
    "CommandFailed": ("fixtures_daemons.errors", "CommandFailed"),
    "DaemonDied": ("fixtures_daemons.errors", "DaemonDied"),
    "DaemonError": ("fixtures_daemons.errors", "DaemonError"),
    "DaemonExited": ("fixtures_daemons.errors", "DaemonExited"),
    "DaemonFixture": ("fixtures_daemons.base.daemon", "DaemonFixture"),
    "DaemonResource": ("fixtures_daemons.base.resources", "DaemonResource"),
    "Database": ("fixtures_daemons.base.namespaces", "Database"),
    "DatabaseDaemonFixture": ("fixtures_daemons.base.databases", "DatabaseDaemonFixture"),
    "DatabaseNumber": ("fixtures_daemons.base.namespaces", "DatabaseNumber"),
    "DefinitionError": ("fixtures_daemons.errors", "DefinitionError"),
    "DisplayFixture": ("fixtures_daemons.process.displays", "DisplayFixture"),
    "DisplayReservation": ("fixtures_daemons.process.displays", "DisplayReservation"),
    "DisplayUnavailable": ("fixtures_daemons.errors", "DisplayUnavailable"),
    "Endpoint": ("fixtures_daemons.base.endpoint", "Endpoint"),
    "EtcdFixture": ("fixtures_daemons.daemons.etcd", "EtcdFixture"),
    "EtcdResource": ("fixtures_daemons.daemons.etcd", "EtcdResource"),
    "Executable": ("fixtures_daemons.base.binaries", "Executable"),
    "ExecutableNotFound": ("fixtures_daemons.errors", "ExecutableNotFound"),
    "HttpbinFixture": ("fixtures_daemons.daemons.httpbin", "HttpbinFixture"),
    "HttpbinResource": ("fixtures_daemons.daemons.httpbin", "HttpbinResource"),
    "InfluxdbFixture": ("fixtures_daemons.daemons.influxdb", "InfluxdbFixture"),
    "InfluxdbResource": ("fixtures_daemons.daemons.influxdb", "InfluxdbResource"),
    "KeyPrefix": ("fixtures_daemons.base.namespaces", "KeyPrefix"),
    "MemcachedFixture": ("fixtures_daemons.daemons.memcached", "MemcachedFixture"),
    "MemcachedResource": ("fixtures_daemons.daemons.memcached", "MemcachedResource"),
    "MisuseError": ("fixtures_daemons.errors", "MisuseError"),
    "MosquittoFixture": ("fixtures_daemons.daemons.mosquitto", "MosquittoFixture"),
    "MosquittoResource": ("fixtures_daemons.daemons.mosquitto", "MosquittoResource"),
    "MysqlFixture": ("fixtures_daemons.daemons.mysql", "MysqlFixture"),
    "MysqlResource": ("fixtures_daemons.daemons.mysql", "MysqlResource"),
    "Namespace": ("fixtures_daemons.base.namespaces", "Namespace"),
    "NatsFixture": ("fixtures_daemons.daemons.nats", "NatsFixture"),
    "NatsResource": ("fixtures_daemons.daemons.nats", "NatsResource"),
    "NginxFixture": ("fixtures_daemons.daemons.nginx", "NginxFixture"),
    "NginxResource": ("fixtures_daemons.daemons.nginx", "NginxResource"),
    "NotOwnedError": ("fixtures_daemons.errors", "NotOwnedError"),
    "PgbouncerFixture": ("fixtures_daemons.daemons.pgbouncer", "PgbouncerFixture"),
    "PgbouncerResource": ("fixtures_daemons.daemons.pgbouncer", "PgbouncerResource"),
    "PortFixture": ("fixtures_daemons.process.ports", "PortFixture"),
    "PortReservation": ("fixtures_daemons.process.ports", "PortReservation"),
    "PortUnavailable": ("fixtures_daemons.errors", "PortUnavailable"),
    "PostgresqlFixture": ("fixtures_daemons.daemons.postgresql", "PostgresqlFixture"),
    "PostgresqlResource": ("fixtures_daemons.daemons.postgresql", "PostgresqlResource"),
    "ProcessFixture": ("fixtures_daemons.process.fixture", "ProcessFixture"),
    "RabbitmqFixture": ("fixtures_daemons.daemons.rabbitmq", "RabbitmqFixture"),
    "RabbitmqResource": ("fixtures_daemons.daemons.rabbitmq", "RabbitmqResource"),
    "RedisFixture": ("fixtures_daemons.daemons.redis", "RedisFixture"),
    "RedisResource": ("fixtures_daemons.daemons.redis", "RedisResource"),
    "S3Fixture": ("fixtures_daemons.daemons.s3", "S3Fixture"),
    "S3Resource": ("fixtures_daemons.daemons.s3", "S3Resource"),
    "ServerError": ("fixtures_daemons.errors", "ServerError"),
    "SqlAdmin": ("fixtures_daemons.base.databases", "SqlAdmin"),
    "StartupTimeout": ("fixtures_daemons.errors", "StartupTimeout"),
    "StateError": ("fixtures_daemons.errors", "StateError"),
    "TempDirError": ("fixtures_daemons.errors", "TempDirError"),
    "UserError": ("fixtures_daemons.errors", "UserError"),
    "ValkeyFixture": ("fixtures_daemons.daemons.valkey", "ValkeyFixture"),
    "ValkeyResource": ("fixtures_daemons.daemons.valkey", "ValkeyResource"),
    "WholeDaemon": ("fixtures_daemons.base.namespaces", "WholeDaemon"),
    "XvfbFixture": ("fixtures_daemons.daemons.xvfb", "XvfbFixture"),
    "XvfbResource": ("fixtures_daemons.daemons.xvfb", "XvfbResource"),
    "ZookeeperFixture": ("fixtures_daemons.daemons.zookeeper", "ZookeeperFixture"),
    "ZookeeperResource": ("fixtures_daemons.daemons.zookeeper", "ZookeeperResource"),
    "cache_root": ("fixtures_daemons.base.templates", "cache_root"),
    "clear_cache": ("fixtures_daemons.base.templates", "clear_cache"),
    "close_database_pools": ("fixtures_daemons.base.namespaces", "close_database_pools"),
    "close_spare_servers": ("fixtures_daemons.base.spares", "close_spare_servers"),
    "installed": ("fixtures_daemons.base.skipping", "installed"),
    "namespaces": ("fixtures_daemons.base", "namespaces"),
    "optimise_module": ("fixtures_daemons.base.resources", "optimise_module"),
    "optimise_package": ("fixtures_daemons.base.resources", "optimise_package"),
    "probes": ("fixtures_daemons.process", "probes"),
    "reserve_display": ("fixtures_daemons.process.displays", "reserve_display"),
    "reserve_port": ("fixtures_daemons.process.ports", "reserve_port"),
    "settle_databases": ("fixtures_daemons.base.namespaces", "settle_databases"),
    "skip_unless_installed": ("fixtures_daemons.base.skipping", "skip_unless_installed"),
}


def __getattr__(name: str) -> typing.Any:
    try:
        module, attr = _WHERE[name]
    except KeyError:
        raise AttributeError("module 'fixtures_daemons' has no attribute %r" % name) from None
    loaded = importlib.import_module(module)
    try:
        value = getattr(loaded, attr)
    except AttributeError:  # a submodule (probes, namespaces)
        value = importlib.import_module("%s.%s" % (module, attr))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
