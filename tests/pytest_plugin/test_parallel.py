"""pytest-xdist: 200 tests under -n 4, each in its own PostgreSQL database
and Redis namespace; a crashed worker, and runs killed by SIGINT and
SIGKILL, leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from conftest import RUN_TIMEOUT, LeakChecked, Outcome, inner_pytest

from fixtures_daemons.process.waiting import wait_for

ISOLATION = """
import pytest

@pytest.mark.parametrize("n", range(200))
def test_isolated(n, postgresql, redis):
    db = postgresql.database
    # Nothing of another test is visible, and what this test writes stays its own.
    tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'mine'"
    assert postgresql.query(tables, db) == [("0",)]
    postgresql.query("CREATE TABLE mine (n int); INSERT INTO mine VALUES (%d)" % n, db)
    assert postgresql.query("SELECT n FROM mine", db) == [(str(n),)]
    assert redis.command("DBSIZE") == 0
    redis.command("SET", "mine", str(n))
    assert redis.command("GET", "mine") in (str(n), str(n).encode())
"""


@pytest.mark.parametrize("shared", [False, True], ids=["per-worker", "shared"])
def test_200_isolated_tests_under_n_4(pytester: pytest.Pytester, run_inner, shared: bool) -> None:
    pytester.makepyfile(test_isolation=ISOLATION)
    args = ["-n", "4", "-q"] + (["--fxd-shared", "postgresql,redis"] if shared else [])
    outcome: Outcome = run_inner(*args)
    assert outcome.status == 0, outcome.output[-3000:]
    assert "200 passed" in outcome.output, outcome.output[-3000:]
    assert outcome.leaks == []


def test_a_crashed_worker_leaves_nothing(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(
        test_crash="""
        import os, signal

        def test_crash(postgresql, redis):
            os.kill(os.getpid(), signal.SIGKILL)

        def test_other(postgresql, redis):
            pass
        """
    )
    outcome = run_inner("-n", "2", "--max-worker-restart", "1")
    assert outcome.status == 1, outcome.output
    assert "crashed" in outcome.output
    assert outcome.leaks == []


BLOCKING = """
import os
import pytest
from fixtures_daemons.process.waiting import wait_for

@pytest.mark.parametrize("n", range(8))
def test_blocks(n, postgresql, redis):
    with open("started-%d-%d" % (os.getpid(), n), "w"):
        pass
    # Until the run is killed (bounded: never released).
    wait_for(lambda: os.path.exists("release"), 300)
"""


@pytest.mark.parametrize(
    "sig,shared",
    [
        (signal.SIGINT, False),
        (signal.SIGKILL, False),
        (signal.SIGINT, True),
        (signal.SIGKILL, True),
    ],
    ids=["SIGINT-per-worker", "SIGKILL-per-worker", "SIGINT-shared", "SIGKILL-shared"],
)
def test_a_killed_run_leaves_nothing(pytester: pytest.Pytester, sig: int, shared: bool) -> None:
    pytester.makepyfile(test_blocking=BLOCKING)
    check = LeakChecked()
    args = ["-n", "4"] + (["--fxd-shared", "postgresql,redis"] if shared else [])
    run = subprocess.Popen(
        inner_pytest(*args),
        cwd=str(pytester.path),
        env=check.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    try:
        # Every worker is in a test, with its daemons and namespaces up.
        started = wait_for(
            lambda: (
                len({p.name.split("-")[1] for p in pytester.path.glob("started-*")}) >= 4
                or run.poll() is not None
            ),
            RUN_TIMEOUT,
        )
        assert started and run.poll() is None, "the run ended or never got its 4 workers going"
        os.killpg(run.pid, sig)
        run.wait(RUN_TIMEOUT)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(RUN_TIMEOUT)
    assert check.leaks() == []
