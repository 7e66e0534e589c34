"""testresources managers: one daemon shared by many tests.

``resources = [("pg", PostgresqlResource())]`` on a
``testresources.ResourcedTestCase`` gives each test ``self.pg``, the daemon
fixture itself, started once for all the tests that share it when they run
in an ``OptimisingTestSuite`` (see :func:`optimise_module` and
:func:`optimise_package`). Between two tests the daemon is reset cheaply
(its :meth:`~fixtures_daemons.DaemonFixture.reset`: a fresh database,
FLUSHALL, ...), not restarted; after a test that calls the manager's
``dirtied(self.pg)`` (testresources sets no attribute for the manager: keep
it in a module variable), the next test gets a restarted daemon instead.

Traps: ``setUpClass`` does not run under OptimisingTestSuite (it reorders
tests across classes), so do shared setup in the resource; stestr splits
tests among workers without looking at resources, so set ``group_regex`` in
.stestr.conf to keep the tests that share a resource in one worker.
"""

from __future__ import annotations

import os
import typing
import unittest

import testresources

from fixtures_daemons.base.daemon import DaemonFixture

__all__ = ["DaemonResource", "optimise_module", "optimise_package"]


class DaemonResource(testresources.TestResourceManager):  # type: ignore[misc]
    """The manager of one shared daemon fixture.

    :param fixture_class: the daemon fixture class (set by the per-daemon
        subclasses such as ``PostgresqlResource``).
    :param kwargs: the fixture's parameters, checked now: a misspelt one
        fails where the resource is built, not in every test that uses it.
        ``share`` is True unless given: fixtures that the tests set up
        themselves (in ``auto`` mode) attach to the shared daemon, each
        with a namespace of its own.
    """

    fixture_class: typing.ClassVar[type[DaemonFixture] | None] = None

    def __init__(
        self, fixture_class: type[DaemonFixture] | None = None, **kwargs: typing.Any
    ) -> None:
        super().__init__()
        cls = fixture_class or type(self).fixture_class
        if cls is None:
            raise TypeError("DaemonResource needs a fixture class")
        cls.check_arguments(**kwargs)
        self.cls = cls
        self.kwargs = dict(kwargs)
        self.kwargs.setdefault("share", True)
        self._restart = False
        self._fresh = False  # made and not used yet: no reset needed

    def make(self, dependency_resources: dict[str, typing.Any]) -> DaemonFixture:
        fixture = self.cls(**self.kwargs)
        fixture.setUp()
        self._fresh = True
        return fixture

    def clean(self, resource: DaemonFixture) -> None:
        resource.cleanUp()

    def isDirty(self) -> bool:  # noqa: N802 - testresources' name
        # Always, so that testresources calls _reset before every use; the
        # first use of a daemon just made skips it there.
        return True

    def dirtied(self, resource: DaemonFixture) -> None:
        """The next user gets a restarted daemon, not just a reset one."""
        self._restart = True
        super().dirtied(resource)

    def _reset(
        self, resource: DaemonFixture, dependency_resources: dict[str, typing.Any]
    ) -> DaemonFixture:
        if self._restart:
            self._restart = False
            self.clean(resource)
            fresh = self.make(dependency_resources)
            self._fresh = False  # handed out right now
            return fresh
        if self._fresh:
            self._fresh = False
            return resource
        resource.reset()
        return resource

    def id(self) -> str:
        return "%s[%s]" % (super().id(), self.cls.__name__)


def optimise_module(
    loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: str | None
) -> unittest.TestSuite:
    """A ``load_tests`` for a test module: ``load_tests = optimise_module``.

    Its tests are grouped by the resources they share, so each daemon starts
    once for the module instead of once per test."""
    suite: unittest.TestSuite = testresources.OptimisingTestSuite(tests)
    return suite


def optimise_package(
    package_file: str,
) -> typing.Callable[[unittest.TestLoader, unittest.TestSuite, str | None], unittest.TestSuite]:
    """A ``load_tests`` for a whole test package, in its ``__init__.py``:
    ``load_tests = optimise_package(__file__)``."""

    def load_tests(
        loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: str | None
    ) -> unittest.TestSuite:
        here = os.path.dirname(os.path.abspath(package_file))
        found = loader.discover(start_dir=here, pattern=pattern or "test*.py")
        suite: unittest.TestSuite = testresources.OptimisingTestSuite([tests, found])
        return suite

    return load_tests
