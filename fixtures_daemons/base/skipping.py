"""Turning a missing daemon program into a skipped test, when asked.

A suite that runs where not every daemon is installed (a developer's
laptop) may prefer a skipped test to an error. Two ways, as
testing.postgresql's ``skipIfNotInstalled`` and oslo.db offer:

* :func:`skip_unless_installed`, a decorator for a test or a test class;
* ``$FIXTURES_DAEMONS_SKIP_MISSING=1``: a fixture whose program is not
  installed raises :class:`unittest.SkipTest` (which testtools, unittest
  and pytest report as a skip) instead of
  :class:`~fixtures_daemons.ExecutableNotFound`, with the same message
  (which package to install). CI should leave it unset: there a missing
  program is an error.
"""

from __future__ import annotations

import os
import typing
import unittest

from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.errors import DaemonError, ExecutableNotFound

__all__ = ["SKIP_MISSING_ENV", "installed", "skip_unless_installed", "skipping_missing"]

SKIP_MISSING_ENV = "FIXTURES_DAEMONS_SKIP_MISSING"

_T = typing.TypeVar("_T")


def installed(cls: typing.Any) -> bool:
    """True when the program of the daemon class ``cls`` is found (its
    variable, PATH, the places distributions put it)."""
    try:
        find_executable(cls.executable, None, cls.daemon_name)
    except DaemonError:
        return False
    return True


def skip_unless_installed(cls: typing.Any) -> typing.Callable[[_T], _T]:
    """``@skip_unless_installed(PostgresqlFixture)`` on a test method or a
    test class: skipped, saying what to install, where the daemon's
    program is missing."""
    try:
        find_executable(cls.executable, None, cls.daemon_name)
    except DaemonError as exc:
        return typing.cast(typing.Callable[[_T], _T], unittest.skip(str(exc)))
    return lambda test: test


def skipping_missing(error: ExecutableNotFound) -> BaseException:
    """The error to raise for a missing program: a skip when
    ``$FIXTURES_DAEMONS_SKIP_MISSING`` is set to a true value, else the
    error itself."""
    if os.environ.get(SKIP_MISSING_ENV, "").lower() in ("1", "true", "yes", "on"):
        return unittest.SkipTest(str(error))
    return error
