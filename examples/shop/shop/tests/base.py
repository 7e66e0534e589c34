"""The base class of the shop's tests: where the daemons come from.

The same tests run three ways; ``$SHOP_TESTS`` picks one (the default is
``attach`` when ``fixtures-daemons run`` exported PostgreSQL, else
``class``):

``class``
    A fresh PostgreSQL and Redis for each test class, started in
    ``setUpClass`` and stopped by a class cleanup (``addClassCleanup``);
    each test starts on a reset daemon (a fresh copy of the template
    database, FLUSHALL). testtools has no class fixtures, so this uses
    unittest's; it does not work under testresources' OptimisingTestSuite,
    which never calls ``setUpClass``.
``shared``
    testresources: ``resources`` declares a PostgresqlResource and a
    RedisResource; ``shop/tests/__init__.py`` makes the package's
    ``load_tests`` an OptimisingTestSuite (``optimise_package``), so each
    stestr worker starts each daemon once and resets it between tests.
``attach``
    One PostgreSQL and one Redis for the whole run, started by
    ``python -m fixtures_daemons run ...`` around stestr; every test attaches
    to them (``mode="attach"``) and gets a database of its own, copied from
    the template, and a Redis database number (or key prefix) of its own.

Whatever the way, every test starts by checking that it sees no data of
any other test, and ends by checking that the database and Redis hold
exactly its own data (``assertPristine`` and ``assertOnlyMine``).
"""

from __future__ import annotations

import collections
import os
import typing
import uuid

import fixtures
import psycopg
import redis
import testresources
import testtools

import shop
from fixtures_daemons import (
    PostgresqlFixture,
    PostgresqlResource,
    RedisFixture,
    RedisResource,
)

WAYS = ("class", "shared", "attach")
WAY = os.environ.get("SHOP_TESTS") or (
    "attach" if os.environ.get("FIXTURES_DAEMONS_POSTGRESQL_STATE") else "class"
)
if WAY not in WAYS:
    raise ValueError("SHOP_TESTS must be one of %s, not %r" % (", ".join(WAYS), WAY))

#: The template's stock of every product (schema.sql).
STOCK = {"apple": 100, "pear": 60, "plum": 40, "fig": 12, "quince": 5}
PRICES = {"apple": 30, "pear": 45, "plum": 20, "fig": 80, "quince": 120}
SKUS = sorted(STOCK)

#: The ``shared`` way: one manager per daemon for the whole test process.
RESOURCES = [
    ("pg", PostgresqlResource(template=shop.SCHEMA)),
    ("redis", RedisResource()),
]

F = typing.TypeVar("F", bound=fixtures.Fixture)


def class_fixture(cls: type, fixture: F) -> F:
    """Set ``fixture`` up for a whole test class (from ``setUpClass``); a
    class cleanup cleans it up after the class's last test."""
    fixture.setUp()
    cls.addClassCleanup(fixture.cleanUp)  # type: ignore[attr-defined]
    return fixture


class ShopTestCase(testresources.ResourcedTestCase, testtools.TestCase):
    """Gives each test ``self.pg``, ``self.redis`` (the daemon fixtures),
    ``self.shop`` (the application, on its own connections) and
    ``self.customer`` (a name no other test uses)."""

    resources = RESOURCES if WAY == "shared" else []

    pg: PostgresqlFixture
    redis: RedisFixture

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if WAY == "class":
            cls.class_pg = class_fixture(cls, PostgresqlFixture(template=shop.SCHEMA))
            cls.class_redis = class_fixture(cls, RedisFixture())

    def setUp(self) -> None:
        super().setUp()  # "shared": testresources sets (and resets) self.pg and self.redis
        if WAY == "class":
            self.pg, self.redis = self.class_pg, self.class_redis
            self.pg.reset()
            self.redis.reset()
        elif WAY == "attach":
            self.pg = self.useFixture(PostgresqlFixture(mode="attach", template=shop.SCHEMA))
            self.redis = self.useFixture(RedisFixture(mode="attach"))
        self.db = psycopg.connect(self.pg.url, autocommit=True)
        self.addCleanup(self.db.close)
        self.cache = redis.Redis.from_url(self.redis.url, decode_responses=True)
        self.addCleanup(self.cache.close)
        self.shop = shop.Shop(self.db, self.cache, self.redis.key_prefix)
        self.customer = "customer-" + uuid.uuid4().hex
        self.restocked: collections.Counter[str] = collections.Counter()
        self.assertPristine()

    def tearDown(self) -> None:
        try:
            self.assertOnlyMine()
        finally:
            super().tearDown()

    # -- helpers for the tests ---------------------------------------------------

    def restock(self, sku: str, quantity: int) -> int:
        self.restocked[sku] += quantity
        return self.shop.restock(sku, quantity)

    def expectedStock(self, sku: str) -> int:
        """The template's stock, less what this test ordered, plus what it
        restocked."""
        row = self.db.execute(
            "SELECT coalesce(sum(quantity), 0) FROM order_lines JOIN orders ON id = order_id "
            "WHERE customer = %s AND sku = %s",
            (self.customer, sku),
        ).fetchone()
        assert row is not None
        return STOCK[sku] - int(row[0]) + self.restocked[sku]

    # -- isolation -----------------------------------------------------------------

    def redisKeys(self) -> list[str]:
        return sorted(self.cache.keys(self.redis.key_prefix + "*"))

    def assertPristine(self) -> None:
        """Nothing of any other test is visible: no orders, the template's
        stock, no Redis keys."""
        self.assertEqual(
            (0, 0),
            self.db.execute(
                "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_lines)"
            ).fetchone(),
        )
        self.assertEqual(STOCK, dict(self.db.execute("SELECT sku, stock FROM products")))
        self.assertEqual([], self.redisKeys())

    def assertOnlyMine(self) -> None:
        """The database and Redis hold this test's data and nothing else."""
        customers = {row[0] for row in self.db.execute("SELECT DISTINCT customer FROM orders")}
        self.assertLessEqual(customers, {self.customer})
        self.assertEqual(
            [],
            self.db.execute(
                "SELECT order_id FROM order_lines JOIN orders ON id = order_id "
                "WHERE customer <> %s",
                (self.customer,),
            ).fetchall(),
        )
        for sku in SKUS:
            self.assertEqual(self.expectedStock(sku), self.shop.stock(sku), sku)
        for key in self.redisKeys():
            self.assertTrue(key.endswith(":" + self.customer), key)


def with_cases(check: str, cases: typing.Iterable[typing.Any]) -> typing.Callable[[type], type]:
    """Class decorator: a test ``test_<check>_<case>`` per case, calling
    the method ``check`` with the case's values."""

    def decorate(cls: type) -> type:
        method = getattr(cls, check)
        for case in cases:
            args = case if isinstance(case, tuple) else (case,)
            name = "test_%s_%s" % (check.lstrip("_"), "_".join(str(arg) for arg in args))

            def test(self: typing.Any, args: tuple[typing.Any, ...] = args) -> None:
                method(self, *args)

            test.__name__ = name
            setattr(cls, name, test)
        return cls

    return decorate
