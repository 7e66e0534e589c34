"""Fixture factories, the way pytest-postgresql's ``factories`` work.

In a ``conftest.py`` (or a test module)::

    from fixtures_daemons.integrations.pytest import factories

    pg_proc = factories.daemon_proc("postgresql", settings={"log_statement": "all"})
    pg = factories.daemon_fixture("postgresql", proc="pg_proc", template="tests/schema.sql")
    pg_fresh = factories.daemon_fixture("postgresql", mode="spawn")

The fixture's name is the name it is assigned to. The plugin makes
``<name>_proc`` and ``<name>`` this way for every daemon of the registry.
"""

from __future__ import annotations

import typing

import pytest

from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.integrations.pytest import logs, procs
from fixtures_daemons.integrations.pytest.settings import (
    SETTINGS_KEY,
    OptionError,
    Settings,
    daemon_class,
)

__all__ = ["daemon_proc", "daemon_fixture", "SCOPES", "FAILED_KEY"]

SCOPES = ("session", "package", "module", "class", "function")

#: The reports of an item's phases that failed (set by the plugin).
FAILED_KEY = pytest.StashKey[bool]()


def _settings(request: pytest.FixtureRequest) -> Settings:
    return request.config.stash.get(SETTINGS_KEY, None) or Settings()


def _check(
    factory: str, name: str, scope: str, kwargs: typing.Mapping[str, typing.Any]
) -> type[DaemonFixture]:
    cls = typing.cast(type[DaemonFixture], daemon_class(name, "%s(name)" % factory))
    if scope not in SCOPES:
        raise OptionError("%s(scope)" % factory, scope, "expected one of %s" % ", ".join(SCOPES))
    cls.check_arguments(**kwargs)  # a TypeError naming the closest parameter
    return cls


def daemon_proc(
    name: str, *, scope: str = "session", fixture_name: str | None = None, **kwargs: typing.Any
) -> typing.Any:
    """A fixture that gives a :class:`~fixtures_daemons.integrations.pytest.procs.DaemonProc`:
    one daemon for ``scope`` (a session: one per xdist worker), or the one
    the run shares (``--fxd-shared``, an enclosing ``fixtures-daemons
    run``), attached to. ``kwargs`` are the daemon fixture's parameters
    (``port=``, ``settings=``, ``template=``, ``mode="spawn"`` to never
    attach, ``reuse=NAME`` for a named daemon that outlives the run)."""
    cls = _check("daemon_proc", name, scope, kwargs)
    arguments = dict(kwargs)

    def proc_fixture(request: pytest.FixtureRequest) -> typing.Iterator[procs.DaemonProc]:
        proc = procs.start_proc(cls, arguments, _settings(request))
        procs.LIVE.append(proc)
        try:
            yield proc
        finally:
            procs.LIVE.remove(proc)
            proc.stop()

    proc_fixture.__doc__ = "The %s daemon of a %s (fixtures-daemons)." % (cls.daemon_name, scope)
    return pytest.fixture(scope=scope, name=fixture_name)(proc_fixture)  # type: ignore[call-overload]


def daemon_fixture(
    name: str,
    *,
    proc: str | None = None,
    scope: str = "function",
    fixture_name: str | None = None,
    **kwargs: typing.Any,
) -> typing.Any:
    """A fixture that gives a set-up :class:`~fixtures_daemons.DaemonFixture`
    with a namespace of its own (a database copied from ``template=``, a
    Redis database number, ...) in the daemon of the fixture ``proc``
    (default ``<name>_proc``), removed after ``scope``. With
    ``mode="spawn"``: a daemon of its own instead (a fresh daemon per
    test). ``kwargs`` are the daemon fixture's parameters.

    While it is set up, its variables (``FIXTURES_DAEMONS_<NAME>_URL``...,
    and the state variable, so that a fixture the test makes in ``auto``
    mode attaches to the same daemon) are in ``os.environ``."""
    cls = _check("daemon_fixture", name, scope, kwargs)
    arguments = dict(kwargs)
    own_daemon = arguments.get("mode") == "spawn" or bool(arguments.get("reuse"))

    def namespace_fixture(request: pytest.FixtureRequest) -> typing.Iterator[DaemonFixture]:
        settings = _settings(request)
        log_path = ""
        if own_daemon:
            fixture = procs.start_fixture(cls, arguments, settings)
            log_path = fixture.log_path
        else:
            proc_name = proc or "%s%s_proc" % (settings.prefix, cls.daemon_name)
            daemon = request.getfixturevalue(proc_name)
            if not isinstance(daemon, procs.DaemonProc):
                raise OptionError(
                    "daemon_fixture(proc)", proc_name, "that fixture does not give a DaemonProc"
                )
            fixture = daemon.namespace(**arguments)
            log_path = daemon.log_path
        used = logs.Used(cls.daemon_name, log_path, fixture.url if not own_daemon else "")
        if scope == "function":
            request.node.stash.setdefault(logs.USED_KEY, []).append(used)
        environ = pytest.MonkeyPatch()
        try:
            for key, value in fixture.env.items():
                environ.setenv(key, value)
            yield fixture
        finally:
            environ.undo()
            failed = scope == "function" and request.node.stash.get(FAILED_KEY, False)
            if settings.keep_failed and failed and not own_daemon:
                used.kept = True  # its cleanUp would remove the namespace
            else:
                fixture.cleanUp()

    namespace_fixture.__doc__ = "A %s %s (fixtures-daemons)." % (
        cls.daemon_name,
        "daemon of its own" if own_daemon else "namespace",
    )
    return pytest.fixture(scope=scope, name=fixture_name)(namespace_fixture)  # type: ignore[call-overload]
