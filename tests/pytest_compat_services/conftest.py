"""The pytest-services compat plugin's tests, written as pytest-services
users write theirs; run under pytest, with pytest-xdist (the services run
under xdist, as with pytest-services)::

    pytest -n 4 tests/pytest_compat_services

(this directory has no ``__init__.py``: stestr's discovery never enters
it). ``test_runs.py`` runs inner pytest sessions under the leak check.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import typing

import pytest

from fixtures_daemons.process.tempdirs import PREFIX
from fixtures_daemons.process.waiting import wait_for
from tests import leakcheck

pytest_plugins = ["fixtures_daemons.compat.services"]

#: The repository: the inner runs import ``tests.*`` and the package from it.
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: How long an inner run may take on a loaded machine (a bound, not a timing).
RUN_TIMEOUT = 600.0
#: How long the watchdogs may take to clean up after a run (a bound).
CLEANUP_TIMEOUT = 60.0


@dataclasses.dataclass
class Outcome:
    status: int
    output: str
    leaks: list[str]


class InnerRun:
    """An inner pytest in a directory of its own, with temp dirs of its
    own (``TMPDIR``, ``$FIXTURES_DAEMONS_TMPDIR``: so that what the outer
    workers make meanwhile is not taken for its leaks) and the leak
    check's run id."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        # Searchable by everyone: as root, the daemons run as nobody.
        self.roots = tempfile.mkdtemp(prefix="svc-inner-", dir="/tmp")
        os.chmod(self.roots, 0o755)
        self.run_id = "compat-services-%d-%s" % (os.getpid(), os.urandom(4).hex())
        self.before = leakcheck.Snapshot()

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        for name in list(env):
            if name.startswith(("FIXTURES_DAEMONS_", "PYTEST_")) or name in ("DISPLAY",):
                del env[name]
        env["PYTHONPATH"] = os.pathsep.join(p for p in (TOP, env.get("PYTHONPATH", "")) if p)
        env.update(
            {
                leakcheck.RUN_ENV: self.run_id,
                "TMPDIR": self.roots,
                "FIXTURES_DAEMONS_TMPDIR": self.roots,
            }
        )
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]

    def leaks(self) -> list[str]:
        """What the run left: its processes, and our dirs in its roots
        (pytest's own ``pytest-of-*`` is pytest's)."""
        found: list[str] = []

        def clean() -> bool:
            processes = [
                leak
                for leak in leakcheck.Snapshot().leaks_since(self.before, self.run_id)
                if leak.startswith("process ")
            ]
            left = sorted(n for n in os.listdir(self.roots) if n.lstrip(".").startswith(PREFIX))
            found[:] = processes + ["left in %s: %s" % (self.roots, name) for name in left]
            return not found

        wait_for(clean, CLEANUP_TIMEOUT, cap=0.1)
        return found

    def remove(self) -> None:
        shutil.rmtree(self.roots, ignore_errors=True)


@pytest.fixture
def inner(tmp_path: typing.Any) -> typing.Iterator[InnerRun]:
    run = InnerRun(str(tmp_path))
    try:
        yield run
    finally:
        run.remove()


@pytest.fixture
def run_inner(inner: InnerRun) -> typing.Callable[..., Outcome]:
    """Run pytest in a subprocess in ``inner.directory``: its status,
    output and leaks."""

    def run(*args: str, env: dict[str, str] | None = None) -> Outcome:
        result = subprocess.run(
            inner.command(*args),
            cwd=inner.directory,
            env=inner.env(**(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT,
        )
        output = result.stdout.decode("utf-8", "replace")
        return Outcome(result.returncode, output, inner.leaks())

    return run


def write(directory: str, **files: str) -> None:
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
