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

import hashlib
import importlib
import os
import typing

import pytest

from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.databases import hook_key
from fixtures_daemons.integrations.pytest import logs, procs
from fixtures_daemons.integrations.pytest.settings import (
    SETTINGS_KEY,
    OptionError,
    Settings,
    daemon_class,
)

__all__ = ["daemon_proc", "daemon_fixture", "load_template", "SCOPES", "FAILED_KEY"]

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
    if "load" in kwargs:
        why = "give it to daemon_fixture, whose databases are copies"
        raise OptionError("daemon_proc(load)", kwargs["load"], why)
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
    load: typing.Sequence[typing.Any] | None = None,
    **kwargs: typing.Any,
) -> typing.Any:
    """A fixture that gives a set-up :class:`~fixtures_daemons.DaemonFixture`
    with a namespace of its own (a database copied from ``template=``, a
    Redis database number, ...) in the daemon of the fixture ``proc``
    (default ``<name>_proc``), removed after ``scope``. With
    ``mode="spawn"``: a daemon of its own instead (a fresh daemon per
    test). ``kwargs`` are the daemon fixture's parameters; for PostgreSQL,
    ``load=`` is pytest-postgresql's, made the template (:func:`load_template`).

    While it is set up, its variables (``FIXTURES_DAEMONS_<NAME>_URL``...,
    and the state variable, so that a fixture the test makes in ``auto``
    mode attaches to the same daemon) are in ``os.environ``."""
    if load is not None:
        if name != "postgresql" or "template" in kwargs:
            why = "only for postgresql, and not with template="
            raise OptionError("daemon_fixture(load)", load, why)
        kwargs["template"] = load_template(load)
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


def load_template(load: typing.Sequence[typing.Any]) -> typing.Callable[[typing.Any], None]:
    """pytest-postgresql's ``load=`` as a PostgreSQL ``template=`` hook: its
    items run in order in the template database, built once per daemon. An
    SQL file (a path, or a string ending in ``.sql``) is run as it is; a
    callable, or a ``"module:function"`` / ``"module.function"`` string, is
    called with pytest-postgresql's keywords (``host``, ``port``, ``user``,
    ``dbname``, ``password``, ``autocommit=False``: loopback TCP). Files
    and strings are checked here, when the conftest is imported."""
    steps: list[typing.Any] = []
    digest = hashlib.sha256()
    for item in load:
        if isinstance(item, os.PathLike) or (isinstance(item, str) and item.endswith(".sql")):
            step: typing.Any = os.path.abspath(os.fspath(item))
            if not os.path.isfile(step):
                raise OptionError("load", item, "no such SQL file")
        elif isinstance(item, str):
            module, _, attribute = item.replace(":", ".").rpartition(".")
            try:
                step = getattr(importlib.import_module(module), attribute)
            except (ImportError, AttributeError, ValueError) as exc:
                raise OptionError("load", item, "cannot import it (%s)" % exc) from None
        elif callable(item):
            step = item
        else:
            raise OptionError("load", item, "expected an SQL file, a callable or 'module:function'")
        steps.append(step)
        digest.update(hook_key(step).encode())

    def hook(fixture: typing.Any) -> None:
        for step in steps:
            if callable(step):
                step(
                    host=fixture.host,
                    port=fixture.port,
                    user=fixture.user,
                    dbname=fixture.database,
                    password=fixture.password,
                    autocommit=False,
                )
            else:
                with open(step) as f:
                    fixture.run_sql(f.read())

    # The template database is named by hook_key(hook): by what the items do.
    hook.__qualname__ = "load_template.%s" % digest.hexdigest()[:16]
    return hook
