"""The fixture base of the library: setUp raises the error that happened.

``fixtures.Fixture.setUp`` wraps a failure in ``MultipleExceptions`` (the
error plus a ``SetupError`` carrying the details), which testtools passes
on as is: ``except DaemonExited`` would never match. Here setUp raises the
original error instead, after putting the materialised details (the daemon's
log) back on the fixture, where ``useFixture`` of testtools and of fixtures
both collect them into the test's details.

The details are materialised here, before the cleanups run (they remove the
temp dir holding the log): ``fixtures.Fixture.setUp`` does it only when it
could import testtools' ``gather_details``, which fails when testtools was
imported first, as it is under stestr and ``python -m testtools.run``.
"""

from __future__ import annotations

import traceback
import typing

import fixtures
from testtools import content

from fixtures_daemons.errors import MisuseError

__all__ = ["Fixture"]

_F = typing.TypeVar("_F", bound=fixtures.Fixture)


def _materialise(detail: content.Content) -> content.Content:
    """A copy of ``detail`` that no longer reads its source."""
    try:
        data = list(detail.iter_bytes())
    except Exception as exc:  # a broken detail must not hide the real error
        return content.text_content("[detail not readable: %r]" % (exc,))
    return content.Content(detail.content_type, lambda: data)


class Fixture(fixtures.Fixture):
    """A ``fixtures.Fixture`` whose setUp raises the underlying error.

    setUp on a fixture that is set up raises
    :class:`~fixtures_daemons.MisuseError` (``fixtures`` would forget the
    first setUp's cleanups, and its daemon would outlive cleanUp); cleanUp
    on a fixture that is not set up, or twice, does nothing.
    """

    _is_set_up = False

    def setUp(self) -> None:
        if self._is_set_up:
            raise MisuseError(
                "",
                "%s.setUp()" % type(self).__name__,
                "the fixture is set up already; call cleanUp() before setting it up again",
            )
        self._clear_cleanups()
        self._is_set_up = True
        try:
            self._setUp()
        except BaseException:
            self._is_set_up = False
            try:
                details: dict[str, typing.Any] = {
                    name: _materialise(value) for name, value in self.getDetails().items()
                }
            except Exception:  # nothing may hide the error being raised
                details = {}
            errors = self.cleanUp(raise_first=False) or []
            # cleanUp has set _details to None, which makes addDetail a no-op
            # and getDetails raise TypeError (so fixtures' useFixture would
            # report that instead of our error): put a dict back.
            self._details = details
            if errors:  # cleanUp failed too: keep those visible
                text = "".join("".join(traceback.format_exception(*err)) for err in errors)
                self.addDetail("cleanup-errors", content.text_content(text))
            raise

    def cleanUp(self, raise_first: bool = True) -> list[typing.Any] | None:
        self._is_set_up = False
        if getattr(self, "_cleanups", None) is None:
            return None  # never set up, or cleaned up already
        result: list[typing.Any] | None = super().cleanUp(raise_first)
        return result

    def useFixture(self, fixture: _F) -> _F:
        """As ``fixtures.Fixture.useFixture``, but a failed child's details
        (materialised by its setUp, see above) are always kept: fixtures
        copies them only when it has ``gather_details``."""
        try:
            fixture.setUp()
        except fixtures.MultipleExceptions as multiple:
            if multiple.args[-1][0] is fixtures.SetupError and self._details is not None:
                fixtures.fixture.combine_details(multiple.args[-1][1].args[0], self._details)
            raise
        except BaseException:
            if self._details is not None:
                try:
                    child = fixture.getDetails()
                except Exception:  # a fixture without details: nothing to keep
                    child = {}
                fixtures.fixture.combine_details(
                    {name: _materialise(value) for name, value in child.items()}, self._details
                )
            raise
        self.addCleanup(fixture.cleanUp)
        if self._detail_sources is not None:
            self._detail_sources.append(fixture)
        return fixture
