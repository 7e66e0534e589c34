"""The fixture base of the library: setUp raises the error that happened.

``fixtures.Fixture.setUp`` wraps a failure in ``MultipleExceptions`` (the
error plus a ``SetupError`` carrying the details), which testtools passes
on as is: ``except DaemonExited`` would never match. Here setUp raises the
original error instead, after putting the materialised details (the daemon's
log) back on the fixture, where ``useFixture`` of testtools and of fixtures
both collect them into the test's details.
"""

from __future__ import annotations

import traceback

import fixtures
from testtools import content

__all__ = ["Fixture"]


class Fixture(fixtures.Fixture):
    """A ``fixtures.Fixture`` whose setUp raises the underlying error."""

    def setUp(self) -> None:
        try:
            super().setUp()
        except fixtures.MultipleExceptions as multiple:
            errors = list(multiple.args)
            if not errors or errors[-1][0] is not fixtures.SetupError:
                raise
            # cleanUp has set _details to None, which makes addDetail a no-op
            # and getDetails raise TypeError (so fixtures' useFixture would
            # report that instead of our error): put a dict back first.
            self._details = dict(errors.pop()[1].args[0])
            first = errors[0][1]
            if len(errors) > 1:  # cleanUp failed too: keep those visible
                text = "".join("".join(traceback.format_exception(*err)) for err in errors[1:])
                self.addDetail("cleanup-errors", content.text_content(text))
            raise first.with_traceback(errors[0][2]) from None
