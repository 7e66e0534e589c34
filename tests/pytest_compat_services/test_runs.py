"""Whole pytest runs with the compat plugin: the documented example, runs
without xdist, Django, and a killed run; each under the leak check."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest
from conftest import RUN_TIMEOUT, TOP, write

from fixtures_daemons.process.waiting import wait_for

DOC = os.path.join(TOP, "doc", "source", "user", "from-services.rst")


def documented_after() -> dict[str, str]:
    """The files of the doc's "after" example: each ``.. after: NAME``
    comment names the code block that follows it."""
    with open(DOC) as f:
        text = f.read()
    files = {}
    pattern = r"^\.\. after: (\S+)\n\n\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)"
    for name, block in re.findall(pattern, text, flags=re.MULTILINE):
        lines = [line[4:] for line in block.splitlines()]
        files[name] = "\n".join(lines).strip() + "\n"
    return files


def test_the_documented_example_runs_unchanged(inner, run_inner) -> None:
    files = documented_after()
    assert sorted(files) == ["conftest.py", "test_app.py"]
    write(inner.directory, **files)
    outcome = run_inner("-n", "2", "-q")
    assert outcome.status == 0, outcome.output[-3000:]
    assert "4 passed" in outcome.output, outcome.output[-3000:]
    assert outcome.leaks == []


WITHOUT_XDIST = """
import os

def test_services(worker_id, run_services, memcached, memcached_connection, mysql,
                  mysql_connection, xvfb, xvfb_display):
    assert worker_id == "local"
    if os.environ["EXPECT"] == "off":
        assert run_services is False
        assert (memcached, memcached_connection, mysql, mysql_connection) == (None,) * 4
        assert (xvfb, xvfb_display) == (None, None)
        assert "DISPLAY" not in os.environ
    else:  # --run-services --xvfb-display :42
        assert run_services is True
        assert memcached.poll() is None and mysql.poll() is None
        assert xvfb is None and xvfb_display == ":42"
        assert os.environ["DISPLAY"] == ":42"
"""


def test_without_xdist_services_run_only_when_asked(inner, run_inner) -> None:
    write(inner.directory, **{"t.py": WITHOUT_XDIST})
    plugin = ["-p", "fixtures_daemons.compat.services", "t.py", "-q"]
    off = run_inner(*plugin, env={"EXPECT": "off"})
    assert off.status == 0 and "1 passed" in off.output, off.output[-3000:]
    on = run_inner(*plugin, "--run-services", "--xvfb-display", ":42", env={"EXPECT": "on"})
    assert on.status == 0 and "1 passed" in on.output, on.output[-3000:]
    assert off.leaks == [] and on.leaks == []


DJANGO_SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = []
DATABASES = {}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
USE_TZ = True
"""

DJANGO_TEST = """
import pymysql
import pytest

from fixtures_daemons.compat.services import (
    cache_settings, clean_django_settings, database_settings, reload_settings,
    setup_django_settings,
)

pymysql.install_as_MySQLdb()


@pytest.fixture(scope="session")
def django_services(mysql, mysql_connection, mysql_database_name, memcached,
                    memcached_connection):
    setup_django_settings("inner_settings")
    from django.conf import settings
    reload_settings(
        settings,
        databases={"default": database_settings(mysql_connection, mysql_database_name)},
        caches={"default": cache_settings(memcached_connection)},
    )
    yield
    clean_django_settings()


def test_django_uses_the_workers_services(django_services, mysql_database_name,
                                          memcached_client):
    from django.core.cache import cache
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT DATABASE()")
        assert cursor.fetchone()[0] == mysql_database_name
    cache.set("greeting", "hello")
    assert cache.get("greeting") == "hello"
    # The same memcached as the test's own client: Django's key is :1:greeting.
    assert memcached_client.get(":1:greeting") is not None
"""


def test_django_settings_switch(inner, run_inner) -> None:
    pytest.importorskip("django")
    write(
        inner.directory,
        **{
            "inner_settings.py": DJANGO_SETTINGS,
            "test_django.py": DJANGO_TEST,
            "conftest.py": 'pytest_plugins = ["fixtures_daemons.compat.services"]\n',
        },
    )
    outcome = run_inner(
        "-q", "--run-services", env={"PYTHONPATH": "%s:%s" % (TOP, inner.directory)}
    )
    assert outcome.status == 0, outcome.output[-3000:]
    assert "1 passed" in outcome.output, outcome.output[-3000:]
    assert outcome.leaks == []


BLOCKING = """
import os
import pytest
from fixtures_daemons.process.waiting import wait_for

@pytest.mark.parametrize("n", range(4))
def test_blocks(n, request, memcached, mysql, xvfb, base_dir, memory_base_dir,
                port_getter, watcher_getter):
    watcher_getter("sleep", ["600"], request=request)
    with open("started-%d-%d" % (os.getpid(), n), "w"):
        pass
    # Until the run is killed (bounded: never released).
    wait_for(lambda: os.path.exists("release"), 300)
"""


def test_a_killed_run_leaves_nothing(inner) -> None:
    write(inner.directory, **{"test_blocking.py": BLOCKING})
    run = subprocess.Popen(
        inner.command("-n", "2", "-p", "fixtures_daemons.compat.services"),
        cwd=inner.directory,
        env=inner.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    try:
        # Both workers are in a test, with their services up.
        def started() -> bool:
            names = [n for n in os.listdir(inner.directory) if n.startswith("started-")]
            return len({n.split("-")[1] for n in names}) >= 2 or run.poll() is not None

        assert wait_for(started, RUN_TIMEOUT)
        assert run.poll() is None, "the run ended before both workers were going"
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(RUN_TIMEOUT)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(RUN_TIMEOUT)
    assert inner.leaks() == []
