"""The catalogue: prices and stock, in PostgreSQL."""

from __future__ import annotations

import shop
from shop.tests import base


@base.with_cases("_price", base.SKUS)
@base.with_cases("_stock", base.SKUS)
@base.with_cases("_restock", [(sku, n) for sku in base.SKUS for n in (1, 2, 5, 10, 20)])
class TestCatalogue(base.ShopTestCase):
    def _price(self, sku: str) -> None:
        self.assertEqual(base.PRICES[sku], self.shop.price(sku))

    def _stock(self, sku: str) -> None:
        self.assertEqual(base.STOCK[sku], self.shop.stock(sku))

    def _restock(self, sku: str, quantity: int) -> None:
        self.assertEqual(base.STOCK[sku] + quantity, self.restock(sku, quantity))
        self.assertEqual(base.STOCK[sku] + 2 * quantity, self.restock(sku, quantity))

    def test_products(self) -> None:
        self.assertEqual(base.PRICES, self.shop.products())

    def test_unknown_price(self) -> None:
        self.assertRaises(shop.UnknownProduct, self.shop.price, "durian")

    def test_unknown_stock(self) -> None:
        self.assertRaises(shop.UnknownProduct, self.shop.stock, "durian")

    def test_unknown_restock(self) -> None:
        self.assertRaises(shop.UnknownProduct, self.shop.restock, "durian", 1)

    def test_new_product_is_mine_alone(self) -> None:
        # Reference data changed by one test is not seen by the others:
        # assertPristine of every other test checks the product list.
        self.db.execute("UPDATE products SET price = price * 2")
        self.assertEqual({sku: 2 * p for sku, p in base.PRICES.items()}, self.shop.products())
        self.db.execute("UPDATE products SET price = price / 2")
