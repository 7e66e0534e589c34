"""What the plugin's tests share: pytester, and running an inner pytest
under the leak check of the stestr suite (``tests/leakcheck.py``).

These tests run under pytest (``pytest -n 4 tests/pytest_plugin``), not
stestr: this directory has no ``__init__.py``, so stestr's discovery never
enters it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing

import pytest

from fixtures_daemons.process.waiting import wait_for
from tests import leakcheck

pytest_plugins = ["pytester"]

#: The repository: the inner runs import ``tests.*`` from it.
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: How long an inner run may take on a loaded machine (a bound, not a timing).
RUN_TIMEOUT = 600.0
#: How long the watchdogs may take to clean up after a killed run.
CLEANUP_TIMEOUT = 60.0


@dataclasses.dataclass
class Outcome:
    status: int
    output: str
    leaks: list[str]


def inner_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in list(env):
        # A run of these tests under `fixtures-daemons run` (or an
        # enclosing shared daemon) must not reach the inner runs.
        if name.startswith("FIXTURES_DAEMONS_") and name.endswith("_STATE"):
            del env[name]
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (TOP, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


class LeakChecked:
    """Run a command with the leak check's run id in its environment, and
    say what of ours it left behind."""

    def __init__(self) -> None:
        self.run_id = "pytest-plugin-%d-%s" % (os.getpid(), os.urandom(4).hex())
        self.before = leakcheck.Snapshot()

    def env(self, **extra: str) -> dict[str, str]:
        return inner_env(**{leakcheck.RUN_ENV: self.run_id}, **extra)

    def leaks(self) -> list[str]:
        found: list[str] = []

        def clean() -> bool:
            found[:] = leakcheck.Snapshot().leaks_since(self.before, self.run_id)
            return not found

        wait_for(clean, CLEANUP_TIMEOUT, cap=0.1)
        return found


def inner_pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


@pytest.fixture
def run_inner(pytester: pytest.Pytester) -> typing.Callable[..., Outcome]:
    """Run pytest in a subprocess on pytester's directory; its output,
    status and leaks."""

    def run(
        *args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None
    ) -> Outcome:
        check = LeakChecked()
        result = subprocess.run(
            (prefix or []) + inner_pytest(*args),
            cwd=str(pytester.path),
            env=check.env(**(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT,
        )
        output = result.stdout.decode("utf-8", "replace")
        return Outcome(result.returncode, output, check.leaks())

    return run
