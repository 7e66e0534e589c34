"""Deadlines and backoff: the only way this library waits.

Every wait in fixtures-daemons runs against a monotonic :class:`Deadline`
and sleeps between attempts with :class:`Backoff`. The backoff starts at
about a millisecond (a daemon is often ready long before a fixed poll
interval has passed, and would then wait the rest of it out) and then grows
with the time already spent, so the overshoot past the moment the daemon
became ready stays a small fraction of the wait while a slow daemon is not
hammered. See doc/source/design.rst, 'Probes polled with backoff, and the
process checked on every poll'.
"""

from __future__ import annotations

import time
import typing

__all__ = ["Deadline", "Backoff", "wait_for"]

T = typing.TypeVar("T")


class Deadline:
    """A point in monotonic time after which a wait gives up."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.start = time.monotonic()
        self.end = self.start + timeout

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return time.monotonic() >= self.end


class Backoff:
    """Sleep intervals: ``first`` at the start, then a ``fraction`` of the
    time spent so far, never more than ``cap`` nor past the deadline.
    """

    def __init__(
        self, deadline: Deadline, first: float = 0.001, fraction: float = 0.02, cap: float = 0.05
    ) -> None:
        self.deadline = deadline
        self.first = first
        self.fraction = fraction
        self.cap = cap

    def delay(self) -> float:
        wanted = min(self.cap, max(self.first, self.deadline.elapsed() * self.fraction))
        return min(wanted, self.deadline.remaining())

    def sleep(self) -> None:
        time.sleep(self.delay())


def wait_for(
    check: typing.Callable[[], T],
    timeout: float,
    first: float = 0.001,
    cap: float = 0.05,
) -> T:
    """Call ``check`` until it returns a true value or ``timeout`` passes.

    Returns the last value ``check`` returned (false when the time ran out),
    so the caller decides what a timeout means.
    """
    deadline = Deadline(timeout)
    backoff = Backoff(deadline, first=first, cap=cap)
    while True:
        result = check()
        if result or deadline.expired():
            return result
        backoff.sleep()
