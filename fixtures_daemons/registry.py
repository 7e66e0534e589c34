"""Which daemons exist: ours, and third parties' through entry points.

A third-party package adds a daemon by declaring an entry point in the
``fixtures_daemons.daemons`` group whose value is its DaemonFixture
subclass; the CLI then knows it by that name.
"""

from __future__ import annotations

import importlib
import importlib.metadata

from fixtures_daemons.daemon import DaemonFixture

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "daemon_class", "daemon_names"]

ENTRY_POINT_GROUP = "fixtures_daemons.daemons"

#: The daemons shipped with the library: CLI name -> "module:class".
BUILTIN = {
    "postgresql": "fixtures_daemons.daemons.postgresql:PostgresqlFixture",
    "mysql": "fixtures_daemons.daemons.mysql:MysqlFixture",
    "redis": "fixtures_daemons.daemons.redis:RedisFixture",
    "memcached": "fixtures_daemons.daemons.memcached:MemcachedFixture",
}


def _entry_points() -> dict[str, str]:
    found = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = entry.value
    return found


def daemon_names() -> list[str]:
    """Every known daemon name, sorted."""
    return sorted({**BUILTIN, **_entry_points()})


def daemon_class(name: str) -> type[DaemonFixture]:
    """The fixture class of the daemon called ``name``; KeyError if none."""
    target = {**_entry_points(), **BUILTIN}.get(name)
    if target is None:
        raise KeyError(name)
    module, _, attribute = target.partition(":")
    cls = getattr(importlib.import_module(module), attribute)
    if not (isinstance(cls, type) and issubclass(cls, DaemonFixture)):
        raise TypeError("%s is not a DaemonFixture subclass" % target)
    return cls
