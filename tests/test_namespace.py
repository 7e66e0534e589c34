"""Every unit is registered, exported, documented and tested, and every
daemon the registry finds runs every contract of tests.daemon_base.

A daemon added without its export, its doc page or its tests fails here,
not in a user's hands (mirakuru once shipped an executor it did not
export).
"""

from __future__ import annotations

import importlib
import os

import testtools

import fixtures_daemons
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.integrations import registry
from tests import daemon_base

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TestNamespace(testtools.TestCase):
    def test_every_public_name_exists(self) -> None:
        for name in fixtures_daemons.__all__:
            self.assertTrue(hasattr(fixtures_daemons, name), name)

    def test_builtin_daemons(self) -> None:
        # Every daemon class a module of fixtures_daemons/daemons lists in
        # its __all__ is found, under its name, and nothing else is.
        package = os.path.join(ROOT, "fixtures_daemons", "daemons")
        expected = {}
        for entry in sorted(os.listdir(package)):
            if entry.endswith(".py") and not entry.startswith("_"):
                module = importlib.import_module("fixtures_daemons.daemons." + entry[:-3])
                for name in module.__all__:
                    value = getattr(module, name)
                    if isinstance(value, type) and issubclass(value, DaemonFixture):
                        expected[value.daemon_name] = value
        self.assertTrue(expected)
        self.assertEqual(expected, registry.builtin_daemons())

    def test_each_daemon_is_exported_documented_and_tested(self) -> None:
        for name, cls in registry.builtin_daemons().items():
            module = __import__(cls.__module__, fromlist=["__all__"])
            resources = [
                getattr(module, attr)
                for attr in module.__all__
                if isinstance(getattr(module, attr), type)
                and issubclass(getattr(module, attr), DaemonResource)
            ]
            self.assertEqual(1, len(resources), "%s: one resource manager" % name)
            self.assertIs(cls, resources[0].fixture_class)
            for exported in (cls, resources[0]):
                self.assertIs(exported, getattr(fixtures_daemons, exported.__name__, None))
                self.assertIn(exported.__name__, fixtures_daemons.__all__)
            page = os.path.join(ROOT, "doc", "source", "daemons", name + ".rst")
            self.assertTrue(os.path.exists(page), "%s has no doc page %s" % (name, page))
            with open(page) as f:
                self.assertIn(cls.__name__, f.read())
            tests = os.path.join(ROOT, "tests", "test_%s.py" % name)
            self.assertTrue(os.path.exists(tests), "%s has no tests %s" % (name, tests))
            self.assertContractsRun(name, cls)
            self.assertTrue(cls.__doc__, "%s has no docstring" % cls.__name__)
            self.assertTrue(cls.executable.packages, "%s names no package" % name)

    def assertContractsRun(self, name: str, cls: type[DaemonFixture]) -> None:
        """Every contract of tests.daemon_base runs for the daemon: its test
        module has a test class mixing each one in, for this class."""
        module = importlib.import_module("tests.test_%s" % name)
        for contract in (
            daemon_base.DaemonContract,
            daemon_base.AttachContract,
            daemon_base.BadInputs,
        ):
            runs = [
                value
                for value in vars(module).values()
                if isinstance(value, type)
                and issubclass(value, contract)
                and issubclass(value, testtools.TestCase)
                and getattr(value, "daemon_class", None) is cls
            ]
            self.assertTrue(runs, "%s: no test class runs %s" % (name, contract.__name__))

    def test_daemon_classes_are_daemon_fixtures(self) -> None:
        for cls in registry.builtin_daemons().values():
            self.assertTrue(issubclass(cls, DaemonFixture))
            self.assertEqual(cls, registry.daemon_class(cls.daemon_name))
