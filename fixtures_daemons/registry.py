"""Which daemons exist: ours, and third parties' through entry points.

Ours are found by looking into the :mod:`fixtures_daemons.daemons` package:
every DaemonFixture subclass a module there lists in ``__all__`` is a
daemon under its ``daemon_name``, so adding a daemon needs no registration
beside its module. A third-party package adds one with an entry point in
the ``fixtures_daemons.daemons`` group whose value is its DaemonFixture
subclass.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import typing

from fixtures_daemons import daemons as _daemons_package
from fixtures_daemons.daemon import DaemonFixture

__all__ = ["ENTRY_POINT_GROUP", "builtin_daemons", "daemon_class", "daemon_names"]

ENTRY_POINT_GROUP = "fixtures_daemons.daemons"


@functools.cache
def builtin_daemons() -> dict[str, type[DaemonFixture]]:
    """The daemons of this package: name -> fixture class."""
    found: dict[str, type[DaemonFixture]] = {}
    for info in pkgutil.iter_modules(_daemons_package.__path__):
        module = importlib.import_module("%s.%s" % (_daemons_package.__name__, info.name))
        for attribute in getattr(module, "__all__", ()):
            value = getattr(module, attribute)
            if isinstance(value, type) and issubclass(value, DaemonFixture) and value.daemon_name:
                found[value.daemon_name] = value
    return found


def _entry_points() -> dict[str, typing.Any]:
    import importlib.metadata  # here: it costs every CLI run 10 ms

    return {entry.name: entry for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def daemon_names() -> list[str]:
    """Every known daemon name, sorted."""
    return sorted(set(builtin_daemons()) | set(_entry_points()))


def daemon_class(name: str) -> type[DaemonFixture]:
    """The fixture class of the daemon called ``name``; KeyError if none."""
    builtin = builtin_daemons()
    if name in builtin:
        return builtin[name]
    entry = _entry_points().get(name)
    if entry is None:
        raise KeyError(name)
    cls = entry.load()
    if not (isinstance(cls, type) and issubclass(cls, DaemonFixture)):
        raise TypeError("%s is not a DaemonFixture subclass" % entry.value)
    return cls
