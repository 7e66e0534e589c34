"""Which daemons exist: ours, and third parties' through entry points.

Ours are found by looking into the :mod:`fixtures_daemons.daemons` package:
every DaemonFixture subclass a module there lists in ``__all__`` is a
daemon under its ``daemon_name``, so adding a daemon needs no registration
beside its module. A third-party package adds one with an entry point in
the ``fixtures_daemons.daemons`` group whose value is its DaemonFixture
subclass. An entry point that fails to load breaks only itself:
:func:`broken_daemons` says which and why, and the others stay usable.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import pkgutil
import typing

from fixtures_daemons import daemons as _daemons_package
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.errors import DaemonError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PIFPAF_DAEMONS",
    "builtin_aliases",
    "canonical_name",
    "BrokenDaemon",
    "builtin_daemons",
    "daemon_class",
    "daemon_names",
    "own_daemon_names",
    "broken_daemons",
]

ENTRY_POINT_GROUP = "fixtures_daemons.daemons"

#: The daemons pifpaf 3.4 has, so that asking for one we lack says so.
PIFPAF_DAEMONS = frozenset(
    "aodh artemis ceph consul couchdb elasticsearch etcd fakes3 gnocchi httpbin influxdb "
    "kafka keystone memcached mongodb mysql postgresql qdrouterd rabbitmq redis s3rver swift "
    "valkey vault zookeeper".split()
)


class BrokenDaemon(DaemonError):
    """A third party's entry point that does not give a daemon class.

    :ivar entry_point: ``name = module:attribute``, as declared.
    :ivar error: what went wrong loading it.
    """

    def __init__(self, name: str, entry_point: str, error: str) -> None:
        super().__init__(name, message=error)
        self.entry_point = entry_point
        self.error = error

    def _describe(self) -> str:
        return "the entry point %s (group %s) is broken: %s" % (
            self.entry_point,
            ENTRY_POINT_GROUP,
            self.error,
        )


@functools.cache
def builtin_daemons() -> dict[str, type[DaemonFixture]]:
    """The daemons of this package: name -> fixture class."""
    found: dict[str, type[DaemonFixture]] = {}
    for info in pkgutil.iter_modules(_daemons_package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module("%s.%s" % (_daemons_package.__name__, info.name))
        for attribute in getattr(module, "__all__", ()):
            value = getattr(module, attribute)
            if isinstance(value, type) and issubclass(value, DaemonFixture) and value.daemon_name:
                found[value.daemon_name] = value
    return found


@functools.cache
def builtin_aliases() -> dict[str, str]:
    """Other names of our daemons: alias -> daemon name."""
    return {alias: cls.daemon_name for cls in builtin_daemons().values() for alias in cls.aliases}


def canonical_name(name: str) -> str:
    """``name``, or the daemon it is an alias of (``mariadb`` -> ``mysql``)."""
    if _own_module_class(name) is not None:
        return name
    return builtin_aliases().get(name, name)


def own_daemon_names(words: typing.Iterable[str]) -> set[str]:
    """Those of ``words`` that name a daemon of this package by its own
    module, each found by importing that module only."""
    return {word for word in words if _own_module_class(word) is not None}


def _entry_points() -> dict[str, typing.Any]:
    import importlib.metadata  # here: it would slow every CLI run (design.rst, 'The registry')

    return {entry.name: entry for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def daemon_names() -> list[str]:
    """Every known daemon name, sorted (broken entry points included)."""
    return sorted(set(builtin_daemons()) | set(_entry_points()))


def _own_module_class(name: str) -> type[DaemonFixture] | None:
    """The daemon ``name`` from its own module, ``daemons/<name>.py``,
    importing nothing else: a CLI run pays for the daemons it runs only."""
    if not name.isidentifier() or name.startswith("_"):
        return None
    module_name = "%s.%s" % (_daemons_package.__name__, name)
    if importlib.util.find_spec(module_name) is None:
        return None
    module = importlib.import_module(module_name)
    for attribute in getattr(module, "__all__", ()):
        value = getattr(module, attribute)
        if isinstance(value, type) and issubclass(value, DaemonFixture):
            if value.daemon_name == name:
                return value
    return None


def daemon_class(name: str) -> type[DaemonFixture]:
    """The fixture class of the daemon called ``name``; KeyError if none,
    :class:`BrokenDaemon` if its entry point does not load."""
    own = _own_module_class(name)
    if own is not None:
        return own
    builtin = builtin_daemons()
    name = canonical_name(name)
    if name in builtin:
        return builtin[name]
    entry = _entry_points().get(name)
    if entry is None:
        raise KeyError(name)
    declared = "%s = %s" % (entry.name, entry.value)
    try:
        cls = entry.load()
    except Exception as exc:
        raise BrokenDaemon(name, declared, "%s: %s" % (type(exc).__name__, exc)) from exc
    if not (isinstance(cls, type) and issubclass(cls, DaemonFixture)):
        raise BrokenDaemon(name, declared, "%r is not a DaemonFixture subclass" % (cls,))
    return cls


def broken_daemons() -> dict[str, BrokenDaemon]:
    """The entry points that do not load, by daemon name."""
    broken = {}
    for name in sorted(set(_entry_points()) - set(builtin_daemons())):
        try:
            daemon_class(name)
        except BrokenDaemon as exc:
            broken[name] = exc
    return broken
