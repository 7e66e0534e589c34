"""Carts and recently viewed products, in Redis."""

from __future__ import annotations

import itertools

import shop
from shop.tests import base


@base.with_cases("_add", [(sku, n) for sku in base.SKUS for n in (1, 2, 3, 7, 11)])
class TestCart(base.ShopTestCase):
    def _add(self, sku: str, quantity: int) -> None:
        self.shop.add_to_cart(self.customer, sku, quantity)
        self.assertEqual({sku: quantity}, self.shop.cart(self.customer))
        self.assertEqual(base.PRICES[sku] * quantity, self.shop.cart_total(self.customer))

    def test_empty(self) -> None:
        self.assertEqual({}, self.shop.cart(self.customer))
        self.assertEqual(0, self.shop.cart_total(self.customer))

    def test_unknown_product(self) -> None:
        self.assertRaises(shop.UnknownProduct, self.shop.add_to_cart, self.customer, "durian")
        self.assertEqual({}, self.shop.cart(self.customer))

    def test_bad_quantity(self) -> None:
        self.assertRaises(ValueError, self.shop.add_to_cart, self.customer, "apple", 0)

    def test_another_customer(self) -> None:
        other = self.customer + "-other"
        self.shop.add_to_cart(other, "apple")
        self.assertEqual({}, self.shop.cart(self.customer))
        self.shop.remove_from_cart(other, "apple")


@base.with_cases("_add_twice", base.SKUS)
@base.with_cases("_remove", base.SKUS)
@base.with_cases("_two_products", list(itertools.combinations(base.SKUS, 2)))
class TestCartEdits(base.ShopTestCase):
    def _add_twice(self, sku: str) -> None:
        self.shop.add_to_cart(self.customer, sku, 2)
        self.shop.add_to_cart(self.customer, sku, 3)
        self.assertEqual({sku: 5}, self.shop.cart(self.customer))

    def _remove(self, sku: str) -> None:
        self.shop.add_to_cart(self.customer, sku)
        self.shop.add_to_cart(self.customer, "apple" if sku != "apple" else "pear")
        self.shop.remove_from_cart(self.customer, sku)
        self.assertNotIn(sku, self.shop.cart(self.customer))
        self.assertEqual(1, len(self.shop.cart(self.customer)))

    def _two_products(self, one: str, two: str) -> None:
        self.shop.add_to_cart(self.customer, one, 1)
        self.shop.add_to_cart(self.customer, two, 2)
        self.assertEqual({one: 1, two: 2}, self.shop.cart(self.customer))
        self.assertEqual(
            base.PRICES[one] + 2 * base.PRICES[two], self.shop.cart_total(self.customer)
        )


VIEWS = [tuple(p) for p in itertools.permutations(base.SKUS, 3)][::2]


@base.with_cases("_views", VIEWS)
class TestRecentlyViewed(base.ShopTestCase):
    def _views(self, *skus: str) -> None:
        for sku in skus:
            self.shop.view(self.customer, sku)
        self.assertEqual(list(reversed(skus)), self.shop.recently_viewed(self.customer))

    def test_nothing_viewed(self) -> None:
        self.assertEqual([], self.shop.recently_viewed(self.customer))

    def test_only_the_last_few(self) -> None:
        for sku in base.SKUS:
            self.shop.view(self.customer, sku)
        self.assertEqual(base.SKUS[::-1][: shop.RECENT], self.shop.recently_viewed(self.customer))

    def test_viewed_again_moves_to_the_front(self) -> None:
        for sku in ("apple", "pear", "apple"):
            self.shop.view(self.customer, sku)
        self.assertEqual(["apple", "pear"], self.shop.recently_viewed(self.customer))

    def test_unknown_product(self) -> None:
        self.assertRaises(shop.UnknownProduct, self.shop.view, self.customer, "durian")
        self.assertEqual([], self.shop.recently_viewed(self.customer))
