"""A tiny shop: the catalogue, stock and orders in PostgreSQL, carts and
recently viewed products in Redis.

It is the application under test of the example suite in ``shop/tests``;
its schema and reference data are in ``schema.sql``.
"""

from __future__ import annotations

import os
import typing

import psycopg
import redis

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.sql")

#: How many recently viewed products are remembered per customer.
RECENT = 3


class ShopError(Exception):
    pass


class UnknownProduct(ShopError):
    pass


class OutOfStock(ShopError):
    pass


class EmptyCart(ShopError):
    pass


class Shop:
    """The shop's operations.

    :param db: a psycopg connection in autocommit mode.
    :param cache: a redis-py client (``decode_responses=True``).
    :param key_prefix: put in front of every Redis key (a shared Redis
        gives each user a prefix of its own when it runs out of database
        numbers).
    """

    def __init__(
        self, db: psycopg.Connection[typing.Any], cache: redis.Redis, key_prefix: str = ""
    ) -> None:
        self.db = db
        self.cache = cache
        self.key_prefix = key_prefix

    def _key(self, kind: str, customer: str) -> str:
        return "%s%s:%s" % (self.key_prefix, kind, customer)

    # -- the catalogue (PostgreSQL) ---------------------------------------------

    def products(self) -> dict[str, int]:
        """Every sku and its price."""
        return dict(self.db.execute("SELECT sku, price FROM products").fetchall())

    def price(self, sku: str) -> int:
        row = self.db.execute("SELECT price FROM products WHERE sku = %s", (sku,)).fetchone()
        if row is None:
            raise UnknownProduct(sku)
        return int(row[0])

    def stock(self, sku: str) -> int:
        row = self.db.execute("SELECT stock FROM products WHERE sku = %s", (sku,)).fetchone()
        if row is None:
            raise UnknownProduct(sku)
        return int(row[0])

    def restock(self, sku: str, quantity: int) -> int:
        row = self.db.execute(
            "UPDATE products SET stock = stock + %s WHERE sku = %s RETURNING stock",
            (quantity, sku),
        ).fetchone()
        if row is None:
            raise UnknownProduct(sku)
        return int(row[0])

    # -- carts and recently viewed (Redis) ----------------------------------------

    def view(self, customer: str, sku: str) -> None:
        """Remember that ``customer`` looked at ``sku``."""
        self.price(sku)  # it must exist
        key = self._key("viewed", customer)
        pipe = self.cache.pipeline()
        pipe.lrem(key, 0, sku)
        pipe.lpush(key, sku)
        pipe.ltrim(key, 0, RECENT - 1)
        pipe.execute()

    def recently_viewed(self, customer: str) -> list[str]:
        return list(self.cache.lrange(self._key("viewed", customer), 0, -1))

    def add_to_cart(self, customer: str, sku: str, quantity: int = 1) -> None:
        if quantity < 1:
            raise ValueError("quantity must be positive")
        self.price(sku)
        self.cache.hincrby(self._key("cart", customer), sku, quantity)

    def remove_from_cart(self, customer: str, sku: str) -> None:
        self.cache.hdel(self._key("cart", customer), sku)

    def cart(self, customer: str) -> dict[str, int]:
        items = self.cache.hgetall(self._key("cart", customer))
        return {sku: int(quantity) for sku, quantity in items.items()}

    def cart_total(self, customer: str) -> int:
        prices = self.products()
        return sum(prices[sku] * quantity for sku, quantity in self.cart(customer).items())

    # -- orders (both) -------------------------------------------------------------

    def checkout(self, customer: str) -> int:
        """Turn the cart into an order (all or nothing); return its id."""
        cart = self.cart(customer)
        if not cart:
            raise EmptyCart(customer)
        with self.db.transaction():
            total = 0
            for sku, quantity in sorted(cart.items()):
                row = self.db.execute(
                    "UPDATE products SET stock = stock - %s "
                    "WHERE sku = %s AND stock >= %s RETURNING price",
                    (quantity, sku, quantity),
                ).fetchone()
                if row is None:
                    raise OutOfStock(sku)
                total += int(row[0]) * quantity
            order = self.db.execute(
                "INSERT INTO orders (customer, total) VALUES (%s, %s) RETURNING id",
                (customer, total),
            ).fetchone()
            assert order is not None
            for sku, quantity in cart.items():
                self.db.execute(
                    "INSERT INTO order_lines (order_id, sku, quantity) VALUES (%s, %s, %s)",
                    (order[0], sku, quantity),
                )
        self.cache.delete(self._key("cart", customer))
        return int(order[0])

    def orders(self, customer: str) -> list[tuple[int, int]]:
        """(id, total) of the customer's orders, oldest first."""
        rows = self.db.execute(
            "SELECT id, total FROM orders WHERE customer = %s ORDER BY id", (customer,)
        ).fetchall()
        return [(int(order_id), int(total)) for order_id, total in rows]

    def order_lines(self, order_id: int) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT sku, quantity FROM order_lines WHERE order_id = %s", (order_id,)
        ).fetchall()
        return {sku: int(quantity) for sku, quantity in rows}
