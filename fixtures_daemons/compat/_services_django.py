"""pytest-services' Django settings switch (``pytest_services.django_settings``),
for today's Django (pytest-services' needs Django 1.x: it imports
``django.core.urlresolvers``).

``reload_settings(settings, databases=..., caches=...)`` puts the worker's
MySQL database and memcached into Django's ``DATABASES`` and ``CACHES``
and makes ``django.db.connections`` and ``django.core.cache.caches`` use
them; :func:`database_settings` and :func:`cache_settings` build those
entries from the ``mysql_connection`` and ``memcached_connection``
fixtures. Django is imported only when one of these is called.
"""

from __future__ import annotations

import importlib
import os
import typing
import urllib.parse

from fixtures_daemons.errors import MisuseError

__all__ = [
    "setup_django_settings",
    "clean_django_settings",
    "reload_settings",
    "database_settings",
    "cache_settings",
]


def _module(name: str) -> typing.Any:
    """A module of Django's, imported when a function here is called
    (Django has no type information: ``Any``)."""
    return importlib.import_module(name)


def _reset_handler(handler: typing.Any) -> None:
    """Make a Django connection handler (``connections``, ``caches``) read
    its settings again and open new connections."""
    local = _module("asgiref.local").Local

    close = getattr(handler, "close_all", None)
    if close is not None:
        close()
    handler._settings = None
    handler.__dict__.pop("settings", None)  # the cached_property
    handler._connections = local(handler.thread_critical)


def reload_settings(
    settings: typing.Any,
    databases: typing.Mapping[str, typing.Mapping[str, typing.Any]] | None = None,
    caches: typing.Mapping[str, typing.Mapping[str, typing.Any]] | None = None,
) -> None:
    """Update ``settings.DATABASES`` with ``databases`` and
    ``settings.CACHES`` with ``caches`` (when given), and make Django use
    the settings as they are now: new database connections and caches,
    the URL conf and its caches again, the apps set up."""
    django = _module("django")
    apps = _module("django.apps").apps
    urls = _module("django.urls")

    if databases:
        settings.DATABASES.update(databases)
    if caches:
        settings.CACHES.update(caches)
    _reset_handler(_module("django.db").connections)
    _reset_handler(_module("django.core.cache").caches)
    urls.clear_url_caches()
    urls.set_urlconf(None)
    if apps.ready:
        apps.set_installed_apps(settings.INSTALLED_APPS)
    else:
        django.setup()


def setup_django_settings(test_settings: str) -> None:
    """Switch Django to the settings module ``test_settings``
    (``DJANGO_SETTINGS_MODULE``) and reload them."""
    os.environ["DJANGO_SETTINGS_MODULE"] = test_settings
    django_settings = _module("django.conf").settings
    django_settings._setup()
    reload_settings(django_settings)


def clean_django_settings() -> None:
    """Forget Django's settings and ``DJANGO_SETTINGS_MODULE``."""
    django_settings = _module("django.conf").settings
    empty = _module("django.utils.functional").empty
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    django_settings._wrapped = empty


def database_settings(
    mysql_connection: str | None, name: str, **extra: typing.Any
) -> dict[str, typing.Any]:
    """A ``DATABASES`` entry for the database ``name`` of the server the
    ``mysql_connection`` fixture describes (Django's MySQL backend, over
    the unix socket, as ``root``); ``extra`` is added to it. The backend
    needs mysqlclient, or PyMySQL's ``pymysql.install_as_MySQLdb()``."""
    if not mysql_connection:
        raise MisuseError(
            "mysql",
            "database_settings(%r, %r)" % (mysql_connection, name),
            "no MySQL: the services do not run (use --run-services, or pytest-xdist)",
        )
    url = urllib.parse.urlsplit(mysql_connection)
    query = dict(urllib.parse.parse_qsl(url.query))
    entry: dict[str, typing.Any] = {
        "ENGINE": "django.db.backends.mysql",
        "NAME": name,
        "USER": url.username or "root",
        "PASSWORD": url.password or "",
        "HOST": query.get("unix_socket") or url.hostname or "localhost",
        "OPTIONS": {"charset": query.get("charset", "utf8mb4")},
    }
    entry.update(extra)
    return entry


def cache_settings(memcached_connection: str | None, **extra: typing.Any) -> dict[str, typing.Any]:
    """A ``CACHES`` entry for the memcached the ``memcached_connection``
    fixture describes, through pymemcache (Django's
    ``PyMemcacheCache``); ``extra`` is added to it (``"BACKEND":
    "django.core.cache.backends.memcached.PyLibMCCache"`` for pylibmc)."""
    if not memcached_connection:
        raise MisuseError(
            "memcached",
            "cache_settings(%r)" % (memcached_connection,),
            "no memcached: the services do not run (use --run-services, or pytest-xdist)",
        )
    entry: dict[str, typing.Any] = {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": memcached_connection,
    }
    entry.update(extra)
    return entry
