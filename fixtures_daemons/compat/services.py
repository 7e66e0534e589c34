"""pytest-services, on the library: an opt-in pytest plugin.

Enable it with ``-p fixtures_daemons.compat.services`` or, in the
top-level ``conftest.py``::

    pytest_plugins = ["fixtures_daemons.compat.services"]

and uninstall pytest-services (both define ``--run-services``). It
provides pytest-services' fixtures under their names, scopes and return
values (:mod:`fixtures_daemons.compat._services_fixtures`): ``worker_id``,
``session_id``, ``run_services``, ``services_log``, the directories
(``base_dir``, ``memory_base_dir``, ``temp_dir``, ``memory_temp_dir``,
``lock_dir``, ``run_dir``), ``port_getter``, ``display_getter``,
``watcher_getter``, ``memcached`` (``memcached_socket``,
``memcached_connection``, ``memcached_client``), ``mysql``
(``mysql_connection``, ``mysql_database_name``,
``mysql_database_getter``), ``xvfb`` (``xvfb_display``,
``xvfb_resolution``); the options ``--run-services`` and
``--xvfb-display``; and the Django settings switch
(:func:`setup_django_settings`, :func:`clean_django_settings`,
:func:`reload_settings`, importable from here).

Ports and displays are the library's reservations (a ``flock`` each, freed
by the kernel when a worker dies); memcached, MySQL and Xvfb are the
library's daemons, one per worker as with pytest-services, stopped with
everything they started at the end of the session, and by the watchdog
when the worker is killed. See doc/source/user/from-services.rst.
"""

from __future__ import annotations

import pytest

from fixtures_daemons.compat import _services_fixtures
from fixtures_daemons.compat._services_django import (
    cache_settings,
    clean_django_settings,
    database_settings,
    reload_settings,
    setup_django_settings,
)

__all__ = [
    "cache_settings",
    "clean_django_settings",
    "database_settings",
    "reload_settings",
    "setup_django_settings",
]

#: The name the fixtures are registered under.
FIXTURES_PLUGIN = "fixtures_daemons-compat-services-fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("services", "service processes for tests (fixtures-daemons)")
    group.addoption(
        "--run-services",
        action="store_true",
        dest="run_services",
        default=False,
        help="run the services (memcached, mysql, xvfb) without pytest-xdist too",
    )
    group.addoption(
        "--xvfb-display",
        action="store",
        dest="display",
        default=None,
        help="the X display to use instead of starting Xvfb",
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # Registered last, so that these fixtures win over the same names of
    # the plugins configured before (the main plugin's memcached, mysql and
    # xvfb; pytest-xdist's worker_id): for fixtures of plugins, the one
    # registered last is used.
    if not config.pluginmanager.has_plugin(FIXTURES_PLUGIN):
        config.pluginmanager.register(_services_fixtures, FIXTURES_PLUGIN)
