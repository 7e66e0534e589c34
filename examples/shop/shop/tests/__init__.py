"""The shop's tests. With ``SHOP_TESTS=shared`` the whole package is one
testresources OptimisingTestSuite, so that the tests sharing a daemon run
one after the other and it is started once (see base.py)."""

from shop.tests import base

if base.WAY == "shared":
    from fixtures_daemons import optimise_package

    load_tests = optimise_package(__file__)
