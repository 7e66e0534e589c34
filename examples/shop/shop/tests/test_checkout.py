"""Checkout: a Redis cart becomes a PostgreSQL order, all or nothing."""

from __future__ import annotations

import itertools

import shop
from shop.tests import base


@base.with_cases("_checkout", [(sku, n) for sku in base.SKUS for n in (1, 2, 3, 4, 5)])
class TestCheckout(base.ShopTestCase):
    def _checkout(self, sku: str, quantity: int) -> None:
        self.shop.add_to_cart(self.customer, sku, quantity)
        order = self.shop.checkout(self.customer)
        self.assertEqual([(order, base.PRICES[sku] * quantity)], self.shop.orders(self.customer))
        self.assertEqual({sku: quantity}, self.shop.order_lines(order))
        self.assertEqual(base.STOCK[sku] - quantity, self.shop.stock(sku))
        self.assertEqual({}, self.shop.cart(self.customer))

    def test_empty_cart(self) -> None:
        self.assertRaises(shop.EmptyCart, self.shop.checkout, self.customer)
        self.assertEqual([], self.shop.orders(self.customer))

    def test_first_order_of_the_run(self) -> None:
        # Each test has a fresh copy of the template: its order ids start at 1.
        self.shop.add_to_cart(self.customer, "apple")
        self.assertEqual(1, self.shop.checkout(self.customer))


@base.with_cases("_too_many", [(sku, extra) for sku in base.SKUS for extra in (1, 2, 3, 10, 100)])
class TestOutOfStock(base.ShopTestCase):
    def _too_many(self, sku: str, extra: int) -> None:
        self.shop.add_to_cart(self.customer, "apple")  # in stock: rolled back too
        self.shop.add_to_cart(self.customer, sku, base.STOCK[sku] + extra)
        self.assertRaises(shop.OutOfStock, self.shop.checkout, self.customer)
        self.assertEqual([], self.shop.orders(self.customer))
        self.assertEqual(base.STOCK, {s: self.shop.stock(s) for s in base.SKUS})
        self.assertEqual(
            base.STOCK[sku] + extra + (sku == "apple"), self.shop.cart(self.customer)[sku]
        )

    def test_restocked_then_enough(self) -> None:
        self.shop.add_to_cart(self.customer, "quince", 8)
        self.assertRaises(shop.OutOfStock, self.shop.checkout, self.customer)
        self.restock("quince", 3)
        self.shop.checkout(self.customer)
        self.assertEqual(0, self.shop.stock("quince"))


@base.with_cases("_pair", list(itertools.combinations(base.SKUS, 2)))
@base.with_cases(
    "_orders", [(sku, n) for sku in ("apple", "pear", "plum") for n in (1, 2, 3, 4, 5)]
)
class TestOrders(base.ShopTestCase):
    def _pair(self, one: str, two: str) -> None:
        self.shop.add_to_cart(self.customer, one, 2)
        self.shop.add_to_cart(self.customer, two, 1)
        order = self.shop.checkout(self.customer)
        self.assertEqual({one: 2, two: 1}, self.shop.order_lines(order))
        total = 2 * base.PRICES[one] + base.PRICES[two]
        self.assertEqual([(order, total)], self.shop.orders(self.customer))

    def _orders(self, sku: str, count: int) -> None:
        for _ in range(count):
            self.shop.add_to_cart(self.customer, sku)
            self.shop.checkout(self.customer)
        orders = self.shop.orders(self.customer)
        self.assertEqual(count, len(orders))
        self.assertEqual(list(range(1, count + 1)), [order for order, _ in orders])
        self.assertEqual(base.STOCK[sku] - count, self.shop.stock(sku))

    def test_no_orders(self) -> None:
        self.assertEqual([], self.shop.orders(self.customer))

    def test_other_customers_orders_are_not_mine(self) -> None:
        self.shop.add_to_cart(self.customer, "plum")
        self.shop.checkout(self.customer)
        self.assertEqual([], self.shop.orders(self.customer + "-other"))


@base.with_cases("_view_and_buy", [(sku, n) for sku in base.SKUS for n in (1, 2, 3)])
class TestViewAndBuy(base.ShopTestCase):
    def _view_and_buy(self, sku: str, quantity: int) -> None:
        self.shop.view(self.customer, sku)
        self.shop.add_to_cart(self.customer, sku, quantity)
        order = self.shop.checkout(self.customer)
        self.assertEqual({sku: quantity}, self.shop.order_lines(order))
        self.assertEqual([sku], self.shop.recently_viewed(self.customer))  # kept
        self.assertEqual({}, self.shop.cart(self.customer))  # gone
