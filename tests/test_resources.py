"""DaemonResource under testresources, with real daemons.

Each test builds a suite of small inner test classes (made inside the
test, so that the loader of this module does not find them), runs it with
a result of its own, and checks what the inner tests recorded: which
daemon (pid) each one got, and what data it found.
"""

from __future__ import annotations

import os
import sys
import textwrap
import typing
import unittest
import uuid

import fixtures
import psycopg
import redis
import testresources
import testtools

from fixtures_daemons import (
    MemcachedResource,
    PostgresqlResource,
    RedisFixture,
    RedisResource,
)
from fixtures_daemons.base.resources import DaemonResource
from tests import base
from tests.test_attach import CATALOGUE, CATALOGUE_SQL
from tests.test_redis import no_retry

#: What an inner test records: its name, and facts about its daemon.
Record = dict[str, typing.Any]


def redis_client(fixture: RedisFixture) -> redis.Redis:
    return redis.Redis.from_url(fixture.url, decode_responses=True, **no_retry())


def redis_test_class(
    manager: DaemonResource,
    log: list[Record],
    name: str,
    count: int,
    dirty: typing.Container[int] = (),
    testtools_based: bool = False,
) -> type[unittest.TestCase]:
    """A ResourcedTestCase with ``count`` tests sharing ``manager`` (a
    Redis): each records its daemon's pid and whether it found another
    test's key, then writes its own; tests whose number is in ``dirty``
    call ``manager.dirtied()``."""
    bases: tuple[type, ...] = (testresources.ResourcedTestCase,)
    if testtools_based:
        bases += (testtools.TestCase,)

    def make_test(number: int) -> typing.Callable[[typing.Any], None]:
        def test(self: typing.Any) -> None:
            fixture = self.redis
            with redis_client(fixture) as r:
                found = r.keys(fixture.key_prefix + "*")
                r.set(fixture.key_prefix + "marker", self.id())
            pid = fixture.process.pid if fixture.process else None
            log.append(
                {
                    "test": self.id(),
                    "pid": pid,
                    "port": fixture.port,
                    "db": fixture.db,
                    "found": found,
                    "dirty": number in dirty,
                }
            )
            if number in dirty:
                manager.dirtied(fixture)

        return test

    namespace: dict[str, typing.Any] = {"resources": [("redis", manager)]}
    for number in range(count):
        namespace["test_%02d" % number] = make_test(number)
    return type(name, bases, namespace)


class ResourceTestCase(base.TestCase):
    def runSuite(self, suite: unittest.TestSuite) -> unittest.TestResult:
        result = testtools.TestResult()
        suite.run(result)
        problems = "\n".join(
            "%s: %s" % (test.id(), error) for test, error in result.errors + result.failures
        )
        self.assertTrue(result.wasSuccessful(), problems)
        self.assertEqual(suite.countTestCases(), result.testsRun)
        return result

    def optimised(self, *classes: type[unittest.TestCase]) -> testresources.OptimisingTestSuite:
        loader = unittest.TestLoader()
        return testresources.OptimisingTestSuite(
            [loader.loadTestsFromTestCase(cls) for cls in classes]
        )

    def assertDaemonGone(self, record: Record, temp_dirs: typing.Iterable[str] = ()) -> None:
        self.assertGone(record["pid"])
        self.assertDirGone(*temp_dirs)

    def stateVariables(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k.endswith("_STATE")}


class TestDaemonResource(ResourceTestCase):
    def test_started_once_and_reset_between_tests(self) -> None:
        manager = RedisResource(mode="spawn")
        log: list[Record] = []
        made: list[tuple[int, str]] = []  # pid and temp dir of each daemon made
        original_make = manager.make

        def make(deps: dict[str, typing.Any]) -> typing.Any:
            fixture = original_make(deps)
            made.append((fixture.process.pid, fixture.temp_dir))
            return fixture

        manager.make = make  # type: ignore[method-assign]
        before = self.stateVariables()
        suite = self.optimised(
            redis_test_class(manager, log, "InnerA", 4),
            redis_test_class(manager, log, "InnerB", 4, testtools_based=True),
        )
        self.runSuite(suite)
        self.assertEqual(8, len(log))
        self.assertEqual(1, len(made))
        self.assertEqual({made[0][0]}, {r["pid"] for r in log})
        # Every test found the daemon empty: the previous test's key was reset away.
        self.assertEqual([[]] * 8, [r["found"] for r in log])
        # And everything is gone after the suite.
        self.assertEqual(0, manager._uses)
        self.assertDaemonGone(log[0], [made[0][1]])
        self.assertEqual(before, self.stateVariables())

    def test_dirtied_restarts_for_the_next_test(self) -> None:
        manager = RedisResource(mode="spawn")
        log: list[Record] = []
        temp_dirs: list[str] = []
        original_make = manager.make

        def make(deps: dict[str, typing.Any]) -> typing.Any:
            fixture = original_make(deps)
            temp_dirs.append(fixture.temp_dir)
            return fixture

        manager.make = make  # type: ignore[method-assign]
        self.runSuite(self.optimised(redis_test_class(manager, log, "Inner", 5, dirty={2})))
        self.assertEqual(5, len(log))
        self.assertEqual(2, len(temp_dirs))
        (where,) = [i for i, record in enumerate(log) if record["dirty"]]
        self.assertLess(where, 4, "the dirtying test ran last: nothing to check")
        pids = [record["pid"] for record in log]
        self.assertEqual(1, len(set(pids[: where + 1])), pids)
        self.assertEqual(1, len(set(pids[where + 1 :])), pids)
        self.assertNotEqual(pids[where], pids[where + 1])
        self.assertEqual([[]] * 5, [record["found"] for record in log])
        self.assertDaemonGone(log[0], temp_dirs[:1])
        self.assertDaemonGone(log[-1], temp_dirs)

    def test_without_optimising_suite_each_test_gets_its_own(self) -> None:
        manager = RedisResource(mode="spawn")
        log: list[Record] = []
        cls = redis_test_class(manager, log, "Inner", 3)
        self.runSuite(unittest.TestLoader().loadTestsFromTestCase(cls))
        self.assertEqual(3, len({record["pid"] for record in log}))
        for record in log:
            self.assertGone(record["pid"])

    def test_two_resources_and_two_resource_sets(self) -> None:
        redis_manager = RedisResource(mode="spawn")
        memcached_manager = MemcachedResource(mode="spawn")
        log: list[Record] = []
        only_redis = redis_test_class(redis_manager, log, "OnlyRedis", 3)
        both = redis_test_class(redis_manager, log, "Both", 3)
        both.resources = [("redis", redis_manager), ("memcached", memcached_manager)]
        seen_memcached: list[int] = []

        def test_memcached(self: typing.Any) -> None:
            seen_memcached.append(self.memcached.process.pid)

        both.test_memcached = test_memcached  # type: ignore[attr-defined]
        self.runSuite(self.optimised(only_redis, both))
        self.assertEqual(1, len({record["pid"] for record in log}))
        self.assertEqual(1, len(set(seen_memcached)))
        self.assertGone(log[0]["pid"], seen_memcached[0])

    def test_attached_resource_under_an_outer_daemon(self) -> None:
        # mode="auto" (the default): a resource made while a daemon is
        # shared attaches to it; each reset empties only its database.
        server = self.useFixture(RedisFixture(mode="spawn", share=True))
        manager = RedisResource()
        log: list[Record] = []
        self.runSuite(self.optimised(redis_test_class(manager, log, "Inner", 4)))
        self.assertEqual({None}, {record["pid"] for record in log})
        self.assertEqual({server.port}, {record["port"] for record in log})
        self.assertEqual({1}, {record["db"] for record in log})
        self.assertEqual([[]] * 4, [record["found"] for record in log])
        with redis.Redis(server.host, server.port, password=server.password, **no_retry()) as r:
            self.assertEqual([], r.keys("*"))  # claim released
        with redis.Redis(
            server.host, server.port, db=1, password=server.password, **no_retry()
        ) as r:
            self.assertEqual(0, r.dbsize())
        self.assertIsNone(server.process.process.poll())

    def test_setupclass_does_not_run_under_the_optimising_suite(self) -> None:
        # The documented trap: shared setup belongs in a resource.
        calls: list[str] = []

        class Inner(testresources.ResourcedTestCase):
            @classmethod
            def setUpClass(cls) -> None:
                calls.append("setUpClass")

            def test_one(self) -> None:
                calls.append("test")

        self.runSuite(self.optimised(Inner))
        self.assertEqual(["test"], calls)
        calls.clear()
        self.runSuite(unittest.TestLoader().loadTestsFromTestCase(Inner))
        self.assertEqual(["setUpClass", "test"], calls)

    def test_postgresql_with_template(self) -> None:
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, "schema.sql")
        with open(path, "w") as f:
            f.write(CATALOGUE_SQL)
        manager = PostgresqlResource(mode="spawn", template=path)
        log: list[tuple[int, list[typing.Any]]] = []

        class Inner(testresources.ResourcedTestCase, testtools.TestCase):
            resources = [("pg", manager)]

            def check(self) -> None:
                with psycopg.connect(self.pg.url, autocommit=True) as conn:
                    rows = conn.execute("SELECT * FROM catalogue ORDER BY name").fetchall()
                    conn.execute("DELETE FROM catalogue WHERE name = 'apple'")
                    conn.execute("CREATE TABLE mine (v text)")  # fails if left over
                log.append((self.pg.process.pid, rows))

            test_one = test_two = test_three = check

        self.runSuite(self.optimised(Inner))
        self.assertEqual(1, len({pid for pid, _ in log}))
        self.assertEqual([CATALOGUE] * 3, [rows for _, rows in log])
        self.assertGone(log[0][0])


class TestOptimise(ResourceTestCase):
    """optimise_module and optimise_package as load_tests, on a temp package
    found by unittest's loader."""

    SHARED = """
        from fixtures_daemons import RedisResource
        REDIS = RedisResource(mode="spawn")
        LOG = []
    """

    TEST_MODULE = """
        import testresources
        import testtools

        from {package} import shared
        {load_tests}

        class Test{name}(testresources.ResourcedTestCase, testtools.TestCase):
            resources = [("redis", shared.REDIS)]

            def _record(self):
                self.assertIsNotNone(self.redis.process)
                shared.LOG.append(self.redis.process.pid)

            test_a = test_b = test_c = _record

        class Test{name}Plain(testtools.TestCase):
            def test_plain(self):
                pass
    """

    def makePackage(self, init: str, modules: dict[str, str]) -> tuple[str, str]:
        top = self.useFixture(fixtures.TempDir()).path
        package = "fxdpkg_" + uuid.uuid4().hex[:8]
        path = os.path.join(top, package)
        os.mkdir(path)
        files = {"__init__.py": init, "shared.py": self.SHARED}
        files.update(modules)
        for name, text in files.items():
            with open(os.path.join(path, name), "w") as f:
                f.write(textwrap.dedent(text.format(package=package)))

        def forget() -> None:
            for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
                del sys.modules[name]
            while top in sys.path:
                sys.path.remove(top)

        self.addCleanup(forget)
        return top, package

    def module(self, name: str, load_tests: str = "") -> str:
        text = textwrap.dedent(self.TEST_MODULE)
        return text.replace("{name}", name).replace("{load_tests}", load_tests)

    def find(self, suite: unittest.TestSuite) -> list[testresources.OptimisingTestSuite]:
        found = []
        for item in suite:
            if isinstance(item, testresources.OptimisingTestSuite):
                found.append(item)
            elif isinstance(item, unittest.TestSuite):
                found.extend(self.find(item))
        return found

    def test_optimise_package(self) -> None:
        top, package = self.makePackage(
            "from fixtures_daemons import optimise_package\n"
            "load_tests = optimise_package(__file__)\n",
            {"test_one.py": self.module("One"), "test_two.py": self.module("Two")},
        )
        suite = unittest.TestLoader().discover(os.path.join(top, package), top_level_dir=top)
        self.assertEqual(8, suite.countTestCases())
        (optimising,) = self.find(suite)
        self.assertEqual(8, optimising.countTestCases())
        self.runSuite(suite)
        log = sys.modules[package + ".shared"].LOG  # type: ignore[attr-defined]
        self.assertEqual(6, len(log))
        self.assertEqual(1, len(set(log)), log)
        self.assertGone(log[0])

    def test_optimise_module(self) -> None:
        load_tests = "from fixtures_daemons import optimise_module\nload_tests = optimise_module"
        top, package = self.makePackage(
            "",
            {
                "test_one.py": self.module("One", load_tests),
                "test_two.py": self.module("Two", load_tests),
            },
        )
        suite = unittest.TestLoader().discover(os.path.join(top, package), top_level_dir=top)
        self.assertEqual(8, suite.countTestCases())
        self.assertEqual(2, len(self.find(suite)))  # one per module
        self.runSuite(suite)
        log = sys.modules[package + ".shared"].LOG  # type: ignore[attr-defined]
        self.assertEqual(6, len(log))
        # Each module shares one daemon among its tests: two in all.
        self.assertEqual([3, 3], sorted(log.count(pid) for pid in set(log)))
        for pid in set(log):
            self.assertGone(pid)
