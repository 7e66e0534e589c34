"""The pool of attached databases, the long-lived admin connection and
vouched states, against a real PostgreSQL.

An outer fixture spawns and shares the server; the fixtures made after it
attach. From the second claim on a server (and template) in a process, the
pool makes databases ahead in a background thread; a claim renames one.
"""

from __future__ import annotations

import os
import signal
import threading
import typing
import uuid

import fixtures
import psycopg

from fixtures_daemons import AdminError, AttachError, MisuseError, PostgresqlFixture
from fixtures_daemons.base import namespaces
from fixtures_daemons.base.namespaces import (
    POOL_ENV,
    POOL_PREFIX,
    close_database_pools,
    settle_databases,
)
from fixtures_daemons.base.origins import unvouch, vouch
from fixtures_daemons.daemons.postgresql import PostgresqlAdmin
from fixtures_daemons.process.waiting import wait_for
from tests import base
from tests.test_attach import CATALOGUE, CATALOGUE_SQL, AttachTestCase, pg_rows
from tests.test_postgresql import connect as pg_connect
from tests.test_postgresql import databases as pg_databases


def pooled(server: PostgresqlFixture) -> set[str]:
    return {name for name in pg_databases(server) if name.startswith(POOL_PREFIX)}


def sessions(server: PostgresqlFixture) -> int:
    """How many sessions the server has ever opened to ``postgres`` (where
    the admin connection goes)."""
    rows = pg_rows(server, "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'")
    return int(rows[0][0])


class PoolTestCase(AttachTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = self.spawnServer(PostgresqlFixture)
        self.before = pg_databases(self.server)
        self.addCleanup(self.assertNoDatabasesLeft)

    def assertNoDatabasesLeft(self) -> None:
        self.assertTrue(close_database_pools(60))
        self.assertEqual(self.before, pg_databases(self.server))

    def cycle(self, **kwargs: typing.Any) -> str:
        fixture = PostgresqlFixture(mode="attach", **kwargs)
        fixture.setUp()
        fixture.cleanUp()
        return fixture.database

    def primed(self, **kwargs: typing.Any) -> set[str]:
        """Two attaches (the second orders the pool), then a full pool:
        its databases."""
        already = pooled(self.server)
        self.cycle(**kwargs)
        self.cycle(**kwargs)
        self.assertTrue(settle_databases(60))
        ready = pooled(self.server) - already
        self.assertEqual(namespaces.DEFAULT_POOL_SIZE, len(ready))
        return ready


class TestPool(PoolTestCase):
    def test_first_attach_orders_nothing(self) -> None:
        self.cycle()
        self.assertTrue(settle_databases(60))
        self.assertEqual(set(), pooled(self.server))
        self.assertEqual(self.before, pg_databases(self.server))

    def test_a_claim_renames_a_pool_database(self) -> None:
        ready = self.primed()
        one = self.attach(PostgresqlFixture)
        now = pooled(self.server)
        self.assertEqual(1, len(ready - now), str((ready, now)))  # one of them was renamed
        self.assertTrue(one.database.startswith("test_"))
        self.assertIn(one.database, pg_databases(self.server))
        comment = pg_rows(
            self.server,
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname = '%s'" % one.database,
        )
        self.assertEqual([(namespaces.MARK_PREFIX + namespaces.owner_mark(),)], comment)
        with pg_connect(one) as conn:
            conn.execute("CREATE TABLE t (v int)")
        one.cleanUp()

    def test_a_pool_database_is_closed_to_clients_until_claimed(self) -> None:
        ready = self.primed()
        url = self.server.url.rsplit("/", 1)[0] + "/" + sorted(ready)[0]
        error = self.assertRaises(psycopg.OperationalError, psycopg.connect, url)
        self.assertIn("not currently accepting connections", str(error))

    def test_pool_databases_carry_a_relation_cache_file(self) -> None:
        # The pool warmed template0 once, so a client's first connection to
        # a claimed database does not build pg_internal.init itself.
        def has_init_file(database: str) -> bool:
            rows = pg_rows(
                self.server,
                "SELECT (pg_stat_file('base/' || oid || '/pg_internal.init', true)).size "
                "IS NOT NULL FROM pg_database WHERE datname = '%s'" % database,
            )
            return rows == [(True,)]

        self.assertFalse(has_init_file("template0"))
        ready = self.primed()
        self.assertTrue(has_init_file("template0"))
        self.assertTrue(all(has_init_file(name) for name in ready), ready)
        self.assertEqual(
            [(False,)],
            pg_rows(
                self.server, "SELECT datallowconn FROM pg_database WHERE datname = 'template0'"
            ),
        )
        one = self.attach(PostgresqlFixture)
        self.assertTrue(has_init_file(one.database))
        self.assertEqual([(1,)], pg_rows(one, "SELECT 1"))
        one.cleanUp()

    def test_claimed_databases_are_copies_of_the_template(self) -> None:
        path = self.sqlFile(CATALOGUE_SQL)
        self.primed(template=path)
        for _ in range(4):
            one = self.attach(PostgresqlFixture, template=path)
            self.assertEqual(CATALOGUE, pg_rows(one, "SELECT * FROM catalogue ORDER BY name"))
            with pg_connect(one) as conn:  # never seen by the next one
                conn.execute("DELETE FROM catalogue")
                conn.execute("CREATE TABLE mine (v int)")
            one.cleanUp()

    def test_empty_and_template_pools_are_apart(self) -> None:
        path = self.sqlFile(CATALOGUE_SQL)
        self.primed(template=path)
        self.primed()
        self.assertEqual(2 * namespaces.DEFAULT_POOL_SIZE, len(pooled(self.server)))
        empty = self.attach(PostgresqlFixture)
        self.assertEqual(
            [], pg_rows(empty, "SELECT 1 FROM pg_tables WHERE tablename = 'catalogue'")
        )

    def test_cleanup_cuts_clients_off_and_drops_in_the_background(self) -> None:
        self.primed()
        one = self.attach(PostgresqlFixture)
        conn = pg_connect(one)
        self.addCleanup(conn.close)
        one.cleanUp()
        # Its clients are gone and its name is free when cleanUp returns.
        self.assertRaises(psycopg.OperationalError, conn.execute, "SELECT 1")
        self.assertRaises(psycopg.OperationalError, psycopg.connect, one.url)
        self.assertNotIn(one.database, pg_databases(self.server))
        self.assertTrue(settle_databases(60))
        trash = [n for n in pg_databases(self.server) if n.startswith(namespaces.TRASH_PREFIX)]
        self.assertEqual([], trash)

    def test_closing_wakes_an_idle_pool_thread(self) -> None:
        # The pool's thread idles for a while before it exits; work handed
        # to it meanwhile (the pools' databases to drop at close) must wake
        # it, not wait out its idling (a pytest run took 5 s more to exit).
        self.primed()
        self.assertTrue(
            wait_for(
                lambda: namespaces._background.running == 0 and namespaces._background._idle(), 10
            )
        )
        self.assertGreater(namespaces._IDLE_SECONDS, 2.0)
        self.assertTrue(close_database_pools(timeout=2.0))
        self.assertEqual(set(), pooled(self.server))

    def test_a_named_database_is_dropped_before_cleanup_returns(self) -> None:
        self.primed()
        name = "named_" + uuid.uuid4().hex[:8]
        one = self.attach(PostgresqlFixture, database=name)
        self.assertEqual(name, one.database)
        one.cleanUp()
        self.assertNotIn(name, pg_databases(self.server))
        again = self.attach(PostgresqlFixture, database=name)  # free at once
        again.cleanUp()

    def test_a_taken_name_leaves_the_pool_database_in_the_pool(self) -> None:
        self.primed()
        name = "named_" + uuid.uuid4().hex[:8]
        self.attach(PostgresqlFixture, database=name)
        self.assertTrue(settle_databases(60))
        ready = pooled(self.server)
        error = self.assertSetUpFails(AdminError, PostgresqlFixture(database=name))
        self.assertIn("already exists", str(error))
        # Every pool database is still there (the claim's pop also asked
        # the background for one more: settle first).
        self.assertTrue(settle_databases(60))
        self.assertLessEqual(ready, pooled(self.server))

    def test_two_claims_of_one_database_one_wins(self) -> None:
        ready = sorted(self.primed())
        admin = typing.cast(PostgresqlAdmin, self.server.admin)
        other = admin.for_background()
        one, two = "test_" + uuid.uuid4().hex[:8], "test_" + uuid.uuid4().hex[:8]
        self.assertTrue(admin.claim_database(ready[0], one, namespaces.owner_mark()))
        self.assertFalse(other.claim_database(ready[0], two, namespaces.owner_mark()))
        self.assertIn(one, pg_databases(self.server))
        self.assertNotIn(two, pg_databases(self.server))
        admin.drop_database(one)

    def test_threads_never_share_a_database(self) -> None:
        self.primed()
        names: list[str] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(5):
                    one = PostgresqlFixture(mode="attach")
                    one.setUp()
                    names.append(one.database)
                    with pg_connect(one) as conn:
                        conn.execute("CREATE TABLE t (v int)")  # fails if shared
                    one.cleanUp()
            except BaseException as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        self.assertFalse(any(thread.is_alive() for thread in threads))
        self.assertEqual([], errors)
        self.assertEqual(20, len(set(names)))

    def test_pool_size_from_the_environment(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(POOL_ENV, "3"))
        self.assertEqual(3, len(self.primed_size()))

    def primed_size(self) -> set[str]:
        self.cycle()
        self.cycle()
        self.assertTrue(settle_databases(60))
        return pooled(self.server)

    def test_no_pool(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(POOL_ENV, "0"))
        self.assertEqual(set(), self.primed_size())
        one = self.attach(PostgresqlFixture)
        one.cleanUp()
        # Dropped before cleanUp returns, no background work.
        self.assertEqual(self.before, pg_databases(self.server))

    def test_a_bad_pool_size_is_refused(self) -> None:
        for value in ("many", "-1", "17"):
            self.useFixture(fixtures.EnvironmentVariable(POOL_ENV, value))
            error = self.assertSetUpFails(MisuseError, PostgresqlFixture(mode="attach"))
            self.assertIn(POOL_ENV, str(error))

    def test_databases_of_a_killed_process_are_reclaimed(self) -> None:
        script = (
            "import sys, psycopg\n"
            "from fixtures_daemons import PostgresqlFixture\n"
            "from fixtures_daemons.base.namespaces import settle_databases\n"
            "for _ in range(3):\n"
            "    f = PostgresqlFixture(mode='attach'); f.setUp(); f.cleanUp()\n"
            "held = PostgresqlFixture(mode='attach'); held.setUp()\n"
            "settle_databases(60)\n"
            "print('held ' + held.database, flush=True)\n"
            "sys.stdin.readline()\n"
        )
        proc = self.spawnPython(script)
        reader = base.LineReader(proc.stdout)  # type: ignore[arg-type]
        held = self.readLine(reader, 60, prefix="held ")[len("held ") :]
        left = pooled(self.server)
        self.assertEqual(namespaces.DEFAULT_POOL_SIZE, len(left))
        self.assertIn(held, pg_databases(self.server))
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        # The next process that pools on the server drops them.
        self.primed()
        self.assertNotIn(held, pg_databases(self.server))
        self.assertEqual(set(), left & pooled(self.server))

    def test_the_pool_of_a_live_process_is_left_alone(self) -> None:
        script = (
            "import sys\n"
            "from fixtures_daemons import PostgresqlFixture\n"
            "from fixtures_daemons.base.namespaces import settle_databases\n"
            "for _ in range(3):\n"
            "    f = PostgresqlFixture(mode='attach'); f.setUp(); f.cleanUp()\n"
            "settle_databases(60)\n"
            "print('ready', flush=True)\n"
            "sys.stdin.readline()\n"
        )
        proc = self.spawnPython(script)
        reader = base.LineReader(proc.stdout)  # type: ignore[arg-type]
        self.readLine(reader, 60, prefix="ready")
        theirs = pooled(self.server)
        self.primed()
        self.assertTrue(close_database_pools(60))
        self.assertEqual(theirs, pooled(self.server))
        assert proc.stdin is not None
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        self.assertEqual(0, proc.wait(60))  # at exit it drops its own
        self.assertEqual(set(), pooled(self.server))


class TestAdminConnection(PoolTestCase):
    def test_one_connection_for_many_attaches(self) -> None:
        self.primed()
        opened = sessions(self.server)
        for _ in range(10):
            self.cycle()
        self.assertTrue(settle_databases(60))
        # pg_connect in sessions() itself opens one.
        self.assertLessEqual(sessions(self.server) - opened, 1)

    def test_a_forked_child_uses_its_own_connection(self) -> None:
        self.primed()
        pid = os.fork()
        if pid == 0:  # the child: never back into the test runner
            status = 1
            try:
                self.cycle()
                self.cycle()
                close_database_pools(60)
                status = 0
            finally:
                os._exit(status)
        statuses: list[int] = []

        def reaped() -> bool:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                statuses.append(status)
            return bool(done)

        wait_for(reaped, 60)
        self.assertEqual([0], [os.waitstatus_to_exitcode(s) for s in statuses])
        self.cycle()  # the parent's connection still works
        self.assertTrue(self.server.admin.answers())

    def test_a_restarted_server_gets_a_new_connection(self) -> None:
        admin = self.server.admin
        self.assertTrue(admin.answers())
        with self.server.stopped():
            self.assertFalse(admin.answers())
        self.assertTrue(admin.answers())


class TestVouch(PoolTestCase):
    def failingChecks(self) -> None:
        self.useFixture(
            fixtures.MonkeyPatch(
                PostgresqlAdmin.__module__ + ".PostgresqlAdmin.answers", lambda self: False
            )
        )

    def test_a_vouched_state_is_not_checked_again(self) -> None:
        state = os.environ[self.server.state_variable()]
        vouch(PostgresqlFixture(), state)
        self.addCleanup(unvouch, "postgresql", state)
        self.failingChecks()
        self.cycle()  # no check
        unvouch("postgresql", state)
        error = self.assertSetUpFails(AttachError, PostgresqlFixture(mode="attach"))
        self.assertIn("does not answer", str(error))

    def test_an_unvouched_state_is_checked(self) -> None:
        self.failingChecks()
        self.assertSetUpFails(AttachError, PostgresqlFixture(mode="attach"))

    def test_vouching_for_a_dead_daemon_fails(self) -> None:
        state = os.environ[self.server.state_variable()]
        self.failingChecks()
        self.assertRaises(AttachError, vouch, PostgresqlFixture(), state)
        self.assertSetUpFails(AttachError, PostgresqlFixture(mode="attach"))
