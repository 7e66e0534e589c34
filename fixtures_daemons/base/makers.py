"""Who made a namespace on a server the library did not start.

Everything a fixture makes on such a server (a PostgreSQL database, a
Redis key prefix) carries a mark: ``fixtures-daemons made by HOST
PID_START at TIME``. What a dead maker left is found by it: made on this
host, when the process (pid and start time: a reused pid has another) is
gone; made on another host, when it is older than
``$FIXTURES_DAEMONS_SERVER_MAX_AGE`` seconds (a day by default). Nothing
without a mark is ever touched.
"""

from __future__ import annotations

import os
import socket
import time

from fixtures_daemons.base.namespaces import owner_alive, owner_mark
from fixtures_daemons.errors import StateError

__all__ = ["MARK_PREFIX", "MAX_AGE_ENV", "left", "mark", "max_age", "parse_mark"]

#: The start of every mark.
MARK_PREFIX = "fixtures-daemons made by "
#: Seconds after which a namespace from another host counts as left.
MAX_AGE_ENV = "FIXTURES_DAEMONS_SERVER_MAX_AGE"
DEFAULT_MAX_AGE = 24 * 3600.0


def max_age() -> float:
    """``$FIXTURES_DAEMONS_SERVER_MAX_AGE``, in seconds (a
    :class:`~fixtures_daemons.StateError` naming it for garbage)."""
    text = os.environ.get(MAX_AGE_ENV, "")
    if not text:
        return DEFAULT_MAX_AGE
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise StateError(MAX_AGE_ENV, "expected a number of seconds, got %r" % text)
    return value


def mark() -> str:
    """This process's mark: host, pid and start time, and now."""
    return "%s%s %s at %d" % (MARK_PREFIX, socket.gethostname(), owner_mark(), time.time())


def parse_mark(text: str) -> tuple[str, str, float] | None:
    """(host, owner, made at) of a mark; None for anything else."""
    if not text.startswith(MARK_PREFIX):
        return None
    words = text[len(MARK_PREFIX) :].split()
    if len(words) != 4 or words[2] != "at":
        return None
    try:
        return words[0], words[1], float(words[3])
    except ValueError:
        return None


def left(text: str, now: float | None = None) -> bool:
    """Whether the maker that ``text`` names is dead (see the module
    docstring); False for anything that is not a mark."""
    parsed = parse_mark(text)
    if parsed is None:
        return False
    host, owner, made = parsed
    if host == socket.gethostname():
        return not owner_alive(owner)
    return (time.time() if now is None else now) - made > max_age()
