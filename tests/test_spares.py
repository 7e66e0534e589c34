"""Spare servers: the next fresh daemon started while the test runs, and
adopted by the next setUp (fixtures_daemons.base.spares), with real
daemons and real clients."""

from __future__ import annotations

import json
import os
import signal
import typing

import fixtures
import psycopg
import redis

from fixtures_daemons import (
    DaemonDied,
    MisuseError,
    PostgresqlFixture,
    RedisFixture,
    close_spare_servers,
)
from fixtures_daemons.base import spares
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.process.tempdirs import TMPDIR_ENV
from fixtures_daemons.process.waiting import wait_for
from tests import base, daemon_base


def spare_of(kind: DaemonFixture) -> DaemonFixture | None:
    """The spare ordered for ``kind``'s kind, once it answers (None if
    none was ordered)."""
    key = spares._key(kind)
    spare = spares._get_pool().spares.get(key) if key is not None else None
    if spare is None:
        return None
    assert spare.done.wait(60), "the spare did not finish its setUp"
    assert spare.ok, "the spare's setUp failed"
    return spare.fixture


class SpareTestCase(daemon_base.DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        # A pool of its own: earlier tests' uses and spares do not count.
        close_spare_servers()
        self.addCleanup(close_spare_servers)
        self.useFixture(fixtures.EnvironmentVariable(spares.SPARES_ENV))

    def pidOf(self, fixture: DaemonFixture) -> int:
        assert fixture.process is not None and fixture.process.pid is not None
        return fixture.process.pid

    def warm(self, make: typing.Callable[[], DaemonFixture]) -> DaemonFixture:
        """Two uses of the kind (the second orders a spare); return the
        spare, ready."""
        for _ in range(2):  # the first use orders nothing, the second a spare
            used = make()
            used.setUp()
            used.cleanUp()
        spare = spare_of(used)
        assert spare is not None, "no spare ordered by a second use"
        return spare


class TestPostgresqlSpares(SpareTestCase):
    def test_the_next_setup_adopts_the_spare(self) -> None:
        first = self.startManually(PostgresqlFixture())
        self.assertIsNone(spare_of(first), "a first use orders no spare")
        with psycopg.connect(first.url) as conn:
            conn.execute("CREATE TABLE left_by_the_first (x int)")
        first.cleanUp()
        second = self.useFixture(PostgresqlFixture())
        spare = spare_of(second)
        assert spare is not None, "a second use orders a spare"
        spare_pid, spare_dir, spare_port = self.pidOf(spare), spare.temp_dir, spare.port
        self.assertNotEqual(second.port, spare_port)
        self.assertNotEqual(second.temp_dir, spare_dir)
        # Ready before it is asked for: it answers a real client now.
        with psycopg.connect(spare.url) as conn:
            self.assertEqual(1, conn.execute("SELECT 1").fetchone()[0])
        third = self.useFixture(PostgresqlFixture())
        self.assertEqual(spare_pid, self.pidOf(third))
        self.assertEqual(spare_dir, third.temp_dir)
        self.assertEqual(spare_port, third.port)
        # As a fresh one: its exports, its own data, nothing of the others.
        self.assertEqual(third.url, os.environ["FIXTURES_DAEMONS_POSTGRESQL_URL"])
        self.assertFalse(third.attached)
        with psycopg.connect(os.environ["FIXTURES_DAEMONS_POSTGRESQL_URL"]) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE tablename = 'left_by_the_first'"
            ).fetchone()
            self.assertEqual(0, tables[0])
        self.assertIn("ready to accept connections", self.readLog(third))

    def readLog(self, fixture: DaemonFixture) -> str:
        with open(fixture.log_path) as f:
            return f.read()

    def test_cleanup_signals_and_the_rest_follows(self) -> None:
        spare = self.warm(PostgresqlFixture)
        pid, temp_dir, port = self.pidOf(spare), spare.temp_dir, spare.port
        adopted = PostgresqlFixture()
        adopted.setUp()
        self.assertEqual(pid, self.pidOf(adopted))
        env_before = os.environ.get("FIXTURES_DAEMONS_POSTGRESQL_URL")
        adopted.cleanUp()
        # The variables are restored at once; the daemon, its dir and its
        # port go within moments.
        self.assertNotEqual(adopted.url, os.environ.get("FIXTURES_DAEMONS_POSTGRESQL_URL"))
        self.assertEqual(adopted.url, env_before)
        self.assertGone(pid)
        self.assertDirGone(temp_dir)
        self.assertPortFree("127.0.0.1", port)

    def test_a_daemon_that_died_is_reported(self) -> None:
        spare = self.warm(PostgresqlFixture)
        adopted = PostgresqlFixture()
        adopted.setUp()
        self.assertEqual(self.pidOf(spare), self.pidOf(adopted))
        pid = self.pidOf(adopted)
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(
            wait_for(lambda: adopted.process is not None and not adopted.process.running, 10)
        )
        error = self.assertRaises(DaemonDied, adopted.cleanUp)
        self.assertIn("postgres", str(error))
        self.assertDirGone(adopted.temp_dir)


class TestRedisSpares(SpareTestCase):
    def test_data_of_one_test_never_reaches_the_next(self) -> None:
        self.warm(RedisFixture)
        for n in range(5):
            fixture = self.useFixture(RedisFixture())
            with redis.Redis.from_url(fixture.url) as client:
                self.assertEqual([], client.keys("*"), "test %d sees data" % n)
                client.set("written-by", str(n))
            fixture.cleanUp()

    def test_no_spare_for_these(self) -> None:
        root = self.ownTempRoot()
        for kwargs in (
            {"settings": {"maxmemory": "10mb"}},
            {"args": ["--maxclients", "100"]},
            {"durable": True},
            {"temp_root": root},
        ):
            for _ in range(3):
                fixture = RedisFixture(**kwargs)  # type: ignore[arg-type]
                fixture.setUp()
                fixture.cleanUp()
            self.assertEqual({}, spares._get_pool().spares, kwargs)
        with fixtures.EnvironmentVariable(spares.SPARES_ENV, "0"):
            for _ in range(3):
                self.startManually(RedisFixture()).cleanUp()
            self.assertEqual({}, spares._get_pool().spares)

    def test_garbage_in_the_variable(self) -> None:
        with fixtures.EnvironmentVariable(spares.SPARES_ENV, "sometimes"):
            error = self.assertRaises(MisuseError, RedisFixture().setUp)
        self.assertIn("FIXTURES_DAEMONS_SPARES", str(error))
        self.assertEqual({}, spares._get_pool().spares)

    def test_a_spare_of_another_environment_is_not_used(self) -> None:
        spare = self.warm(RedisFixture)
        pid = self.pidOf(spare)
        with fixtures.EnvironmentVariable("SOMETHING_THE_DAEMON_MAY_READ", "1"):
            fixture = self.useFixture(RedisFixture())
        self.assertNotEqual(pid, self.pidOf(fixture))
        self.assertGone(pid)

    def test_a_spare_that_died_is_not_used(self) -> None:
        spare = self.warm(RedisFixture)
        pid = self.pidOf(spare)
        os.kill(pid, signal.SIGKILL)
        # Reaped, not only a zombie: a zombie thread group leader cannot be
        # reaped until its other threads have exited.
        process = spare.process
        assert process is not None
        self.assertTrue(wait_for(lambda: not process.running, 10))
        fixture = self.useFixture(RedisFixture())
        self.assertNotEqual(pid, self.pidOf(fixture))
        with redis.Redis.from_url(fixture.url) as client:
            self.assertTrue(client.ping())

    def test_close_spare_servers_stops_them(self) -> None:
        spare = self.warm(RedisFixture)
        pid, temp_dir = self.pidOf(spare), spare.temp_dir
        close_spare_servers()
        self.assertGone(pid, timeout=0.1)
        self.assertDirGone(temp_dir, timeout=0)


#: Fresh Redis daemons in a loop, then the process exits (or waits to be
#: killed): nothing of its spares may be left.
EXIT_CHECKER = """
import json, sys
from fixtures_daemons import RedisFixture
from fixtures_daemons.base import spares
pids = []
for _ in range(4):
    f = RedisFixture()
    f.setUp()
    pids.append(f.process.pid)
    f.cleanUp()
last = RedisFixture()
last.setUp()
[spare] = spares._get_pool().spares.values()
spare.done.wait(60)
pids += [last.process.pid, spare.fixture.process.pid]
print("PIDS " + json.dumps(pids), flush=True)
if sys.argv[1] == "wait":
    input()
"""


class TestSparesNeverOutliveTheProcess(daemon_base.DaemonTestCase):
    def check(self, how: str) -> None:
        root = self.ownTempRoot()
        env = base.python_env(**{TMPDIR_ENV: root})
        env.pop(spares.SPARES_ENV, None)
        child = self.spawnPython(EXIT_CHECKER.replace("sys.argv[1]", repr(how)), env=env)
        assert child.stdout is not None
        line = self.readLine(base.LineReader(child.stdout), 120, prefix="PIDS ")
        pids = json.loads(line.split(" ", 1)[1])
        self.assertEqual(6, len(set(pids)))
        if how == "wait":
            child.kill()
        child.wait(60)
        self.assertGone(*pids, timeout=10)
        self.assertTrue(wait_for(lambda: not os.listdir(root), 10), os.listdir(root))

    def test_at_exit(self) -> None:
        self.check("exit")

    def test_when_killed(self) -> None:
        self.check("wait")
