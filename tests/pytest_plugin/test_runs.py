"""Inner pytest runs (subprocesses, leak-checked): reports, options,
xdist, the run's shared daemon, third-party daemons."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import TOP, Outcome

ORDERED = ["-p", "no:xdist"]  # the tests of a module in order, in one process


def test_a_failing_test_reports_the_daemon_log(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(
        test_inner="""
        def test_passes(postgresql):
            postgresql.query("SELECT 1")

        def test_fails(postgresql):
            postgresql.query("SELECT 'marker-in-the-log' + nosuch", postgresql.database)
        """
    )
    outcome: Outcome = run_inner(*ORDERED)
    assert outcome.status == 1, outcome.output
    sections = re.findall(r"-+ fixtures-daemons: postgresql -+\n", outcome.output)
    assert len(sections) == 1, outcome.output
    assert "the test's: postgresql://" in outcome.output
    assert "marker-in-the-log" in outcome.output.split("fixtures-daemons: postgresql")[1]
    assert "1 failed, 1 passed" in outcome.output
    assert outcome.leaks == []


def test_namespaces_go_after_the_test_unless_kept(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(
        test_inner="""
        NAMES = []

        def test_fails(postgresql, redis):
            NAMES.append(postgresql.database)
            redis.command("SET", "left", "behind")
            NAMES.append(redis.db)
            assert False, "on purpose"

        def test_passes(postgresql, redis):
            NAMES.append(postgresql.database)
            NAMES.append(redis.db)

        def test_after(postgresql_proc, redis_proc, postgresql):
            rows = postgresql.query("SELECT datname FROM pg_database", "postgres")
            left = {row[0] for row in rows} & set(NAMES[0::2])
            print("LEFT=%s" % sorted(left))
            print("KEYS=%s" % redis_proc.fixture.command("GET", "left", db=NAMES[1]))
            print("FAILED_DB=%s" % NAMES[0])
        """
    )
    plain = run_inner(*ORDERED, "-s")
    assert "LEFT=[]" in plain.output and "KEYS=None" in plain.output, plain.output
    assert plain.leaks == []
    kept = run_inner(*ORDERED, "-s", "--fxd-keep-failed")
    failed_db = re.search(r"FAILED_DB=(\w+)", kept.output).group(1)
    assert "LEFT=['%s']" % failed_db in kept.output, kept.output
    assert "behind" in kept.output.split("KEYS=")[1].splitlines()[0], kept.output
    assert "kept, not removed: postgresql://" in kept.output
    assert kept.leaks == []
    pytester.makeini("[pytest]\nfixtures_daemons_keep_failed = true\n")
    ini = run_inner(*ORDERED, "-s")
    assert "LEFT=['" in ini.output, ini.output


def test_option_errors_name_the_option(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(test_inner="def test_nothing():\n    pass\n")
    cases = [
        (
            ["--fxd-shared", "postgresq"],
            "--fxd-shared='postgresq': no such daemon (did you mean 'postgresql'?)",
        ),
        (["--fxd-binary", "redis"], "--fxd-binary='redis': expected DAEMON=PATH"),
        (
            ["--fxd-binary", "redis=/nonexistent/redis"],
            "--fxd-binary='redis=/nonexistent/redis': /nonexistent/redis is not an executable file",
        ),
        (["--fxd-log-lines", "many"], "--fxd-log-lines='many': expected a number"),
    ]
    for args, message in cases:
        outcome = run_inner(*args)
        assert outcome.status == 4, outcome.output
        assert "ERROR: " + message in outcome.output
    pytester.makeini("[pytest]\nfixtures_daemons_shared = nosuchd\n")
    outcome = run_inner()
    assert outcome.status == 4
    assert "ERROR: fixtures_daemons_shared='nosuchd': no such daemon" in outcome.output


def test_a_factory_error_names_the_argument(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makeconftest(
        "from fixtures_daemons.integrations.pytest import factories\n"
        "pg = factories.daemon_fixture('postgresql', databse='x')\n"
    )
    pytester.makepyfile(test_inner="def test_nothing():\n    pass\n")
    outcome = run_inner()
    assert outcome.status != 0
    assert "databse" in outcome.output and "database" in outcome.output


def test_skip_missing(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(test_inner="def test_pg(postgresql):\n    pass\n")
    missing = {"FIXTURES_DAEMONS_POSTGRES": "/nonexistent/postgres"}
    failing = run_inner(env=missing)
    assert failing.status == 1 and "1 error" in failing.output, failing.output
    assert "ExecutableNotFound" in failing.output
    skipped = run_inner("--fxd-skip-missing", "-rs", env=missing)
    assert skipped.status == 0 and "1 skipped" in skipped.output, skipped.output
    assert "/nonexistent/postgres" in skipped.output


def test_binary_option(pytester: pytest.Pytester, run_inner) -> None:
    from fixtures_daemons.base.binaries import find_executable
    from fixtures_daemons.daemons.redis import RedisFixture

    binary = find_executable(RedisFixture.executable, None, "redis")
    link = pytester.path / "my-redis-server"
    link.symlink_to(binary)
    pytester.makepyfile(
        test_inner="""
        def test_binary(redis_proc):
            assert redis_proc.fixture.binary == %r
        """
        % str(link)
    )
    outcome = run_inner("--fxd-binary", "redis=%s" % link)
    assert outcome.status == 0, outcome.output


WORKER_FACTS = """
import json, os

def test_{n}(postgresql_proc, postgresql, redis):
    postgresql.query("CREATE TABLE mine (n int)", postgresql.database)
    redis.command("SET", "mine", "{n}")
    assert redis.command("DBSIZE") == 1
    with open("facts-{n}.json", "w") as f:
        json.dump({{"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
                   "port": postgresql_proc.port, "attached": postgresql_proc.attached,
                   "pid": os.getpid()}}, f)
"""


def _facts(pytester: pytest.Pytester) -> list[dict[str, object]]:
    found = []
    for path in pytester.path.glob("facts-*.json"):
        with open(path) as f:
            found.append(json.load(f))
    return found


def _worker_tests(pytester: pytest.Pytester, count: int) -> None:
    pytester.makepyfile(test_inner="\n".join(WORKER_FACTS.format(n=n) for n in range(count)))


def test_one_daemon_per_worker(pytester: pytest.Pytester, run_inner) -> None:
    _worker_tests(pytester, 8)
    outcome = run_inner("-n", "2")
    assert outcome.status == 0, outcome.output
    facts = _facts(pytester)
    assert len(facts) == 8
    workers = {fact["worker"] for fact in facts}
    assert len({fact["port"] for fact in facts}) == len(workers)
    assert not any(fact["attached"] for fact in facts)
    assert outcome.leaks == []


def test_one_daemon_shared_by_every_worker(pytester: pytest.Pytester, run_inner) -> None:
    _worker_tests(pytester, 8)
    outcome = run_inner("-n", "2", "--fxd-shared", "postgresql,redis")
    assert outcome.status == 0, outcome.output
    facts = _facts(pytester)
    assert len(facts) == 8
    assert len({fact["worker"] for fact in facts}) == 2
    assert len({fact["port"] for fact in facts}) == 1
    assert all(fact["attached"] for fact in facts)
    assert outcome.leaks == []


def test_attaches_to_an_enclosing_run(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(
        test_inner="""
        import os

        def test_attached(postgresql_proc, postgresql):
            assert postgresql_proc.attached
            assert postgresql_proc.fixture is None
            assert str(postgresql_proc.port) == os.environ["OUTER_PORT"]
        """
    )
    wrapper = [
        sys.executable,
        "-m",
        "fixtures_daemons",
        "run",
        "postgresql",
        "--",
        "sh",
        "-c",
        'OUTER_PORT=$FIXTURES_DAEMONS_POSTGRESQL_PORT exec "$@"',
        "sh",
    ]
    outcome = run_inner("-n", "2", prefix=wrapper)
    assert outcome.status == 0, outcome.output
    assert outcome.leaks == []


def test_a_third_party_daemon_gets_fixtures(pytester: pytest.Pytester, run_inner) -> None:
    dist = pytester.mkdir("tinydist-1.0.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinydist\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[fixtures_daemons.daemons]\ntiny = tests.tinydaemon:TinyFixture\n"
    )
    pytester.makepyfile(
        test_inner="""
        def test_tiny(tiny_proc, tiny):
            assert tiny_proc.name == "tiny"
            assert tiny.attached and tiny.key_prefix.startswith("fxd-")
        """
    )
    env = {"PYTHONPATH": os.pathsep.join([str(pytester.path), TOP])}
    outcome = run_inner(env=env)
    assert outcome.status == 0, outcome.output
    assert outcome.leaks == []


def test_stestr_does_not_find_these_tests() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "stestr", "list", "pytest_plugin"],
        cwd=TOP,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    ).stdout.decode()
    assert "test_fixtures" not in listed and "test_runs" not in listed, listed
