"""The pytest plugin (the ``pytest11`` entry point ``fixtures_daemons``).

For every daemon of the registry (ours and third parties'), two fixtures:

* ``<name>_proc`` (session): a
  :class:`~fixtures_daemons.integrations.pytest.procs.DaemonProc`, the
  daemon of this worker, or the run's shared one attached to;
* ``<name>`` (function): a set-up daemon fixture attached to it, with a
  namespace of its own (a database, a Redis database number, a key
  prefix), removed after the test.

Under pytest-xdist, ``--fxd-shared DAEMON`` starts the daemon once in the
controller, before the workers, which inherit its state variable and
attach to it; the controller stops it after the workers are gone. Every
daemon is started through the library, so its watchdog removes it when
the process that started it dies, whatever killed it.

The options and ini settings are in :mod:`.settings`; the report sections
in :mod:`.logs`.
"""

from __future__ import annotations

import os
import types
import typing
import warnings

import pytest

from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.errors import DaemonError, ExecutableNotFound
from fixtures_daemons.integrations import registry
from fixtures_daemons.integrations.pytest import factories, logs, procs
from fixtures_daemons.integrations.pytest.settings import (
    SETTINGS_KEY,
    OptionError,
    Settings,
    add_options,
)

__all__: list[str] = []

#: The name the generated fixtures are registered under.
FIXTURES_PLUGIN = "fixtures_daemons-fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _generated_fixtures(prefix: str) -> types.ModuleType:
    """A module holding ``<prefix><name>_proc`` and ``<prefix><name>`` for
    every daemon that loads; a broken third-party entry point is a
    warning, not an error for the whole run."""
    module = types.ModuleType(FIXTURES_PLUGIN)
    for name in registry.daemon_names():
        try:
            cls = registry.daemon_class(name)
        except DaemonError as exc:
            warnings.warn("fixtures-daemons: no fixtures for %s: %s" % (name, exc), stacklevel=1)
            continue
        proc_name = "%s%s_proc" % (prefix, cls.daemon_name)
        setattr(module, proc_name, factories.daemon_proc(name, fixture_name=proc_name))
        fixture_name = prefix + cls.daemon_name
        setattr(
            module,
            fixture_name,
            factories.daemon_fixture(name, proc=proc_name, fixture_name=fixture_name),
        )
    return module


def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = Settings.read(config)
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[SETTINGS_KEY] = settings
    config.pluginmanager.register(_generated_fixtures(settings.prefix), FIXTURES_PLUGIN)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The shared daemons: started here, in the controller, before
    pytest-xdist starts its workers (its own hook runs last); they
    inherit the state variables."""
    config = session.config
    settings = config.stash[SETTINGS_KEY]
    if _is_worker(config) or not settings.shared or config.option.collectonly:
        return
    for name in settings.shared:
        cls = registry.daemon_class(name)
        if cls(share=True).state_variable() in os.environ:
            continue  # an enclosing fixtures-daemons run shares one already
        try:
            fixture = procs.start_fixture(
                cls, {"share": True, "mode": "spawn", "export_env": True}, settings
            )
        except ExecutableNotFound as exc:
            if settings.skip_missing:
                continue  # the tests that need it skip
            raise pytest.UsageError(str(exc)) from None
        except DaemonError as exc:
            raise pytest.exit(
                "fixtures-daemons: the shared %s did not start: %s" % (name, exc), returncode=3
            ) from None
        # After the workers are gone: the cleanups run after every
        # pytest_unconfigure, and xdist stops its workers in sessionfinish.
        config.add_cleanup(fixture.cleanUp)  # type: ignore[arg-type]
        procs.LIVE.append(
            procs.DaemonProc(cls, fixture.server_endpoint, "shared", fixture, fixture.log_path)
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[logs.OFFSETS_KEY] = {
        proc.log_path: logs.log_size(proc.log_path) for proc in procs.LIVE if proc.log_path
    }


def _used(item: pytest.Item) -> list[logs.Used]:
    """The daemons the item used: its namespaces, and the procs and
    daemon fixtures among its fixtures' values."""
    stored: list[logs.Used] = item.stash.get(logs.USED_KEY, [])
    used = list(stored)
    seen = {entry.log_path for entry in used}
    funcargs: dict[str, typing.Any] = getattr(item, "funcargs", {})
    for value in funcargs.values():
        if isinstance(value, procs.DaemonProc):
            entry = logs.Used(value.name, value.log_path)
        elif isinstance(value, DaemonFixture) and value.log_path:
            entry = logs.Used(value.daemon_name, value.log_path)
        else:
            continue
        if entry.log_path not in seen:
            seen.add(entry.log_path)
            used.append(entry)
    return used


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> typing.Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not report.failed:
        return report
    first = not item.stash.get(factories.FAILED_KEY, False)
    item.stash[factories.FAILED_KEY] = True
    settings = item.config.stash[SETTINGS_KEY]
    if first:  # once: a failed call and its teardown name the same logs
        offsets = item.stash.get(logs.OFFSETS_KEY, {})
        for used in _used(item):
            used.kept = bool(settings.keep_failed and used.owned)
            if used.log_path or used.owned:
                report.sections.append(
                    logs.section(used, offsets.get(used.log_path, 0), settings.log_lines)
                )
    return report
