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

import hashlib
import os
import socket
import time
import uuid

from fixtures_daemons.base.namespaces import owner_alive, owner_mark
from fixtures_daemons.errors import StateError

__all__ = [
    "MARK_PREFIX",
    "MAX_AGE_ENV",
    "NAME_PREFIX",
    "left",
    "left_name",
    "mark",
    "marked_name",
    "max_age",
    "parse_mark",
]

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


#: The start of a name that carries its maker (where a server keeps no
#: comment: a MySQL database).
NAME_PREFIX = "test_fxd_"


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text


def marked_name() -> str:
    """A new name that carries this process's mark (at most 50 characters):
    ``test_fxd_<host>_<pid>_<start>_<when>_<random>``."""
    pid, _, start = owner_mark().partition("_")
    return "%s%s_%s_%s_%s_%s" % (
        NAME_PREFIX,
        _host_tag(),
        pid,
        start,
        _base36(int(time.time())),
        uuid.uuid4().hex[:4],
    )


def left_name(name: str, now: float | None = None) -> bool:
    """Whether the maker a :func:`marked_name` names is dead; False for
    any other name."""
    if not name.startswith(NAME_PREFIX):
        return False
    parts = name[len(NAME_PREFIX) :].split("_")
    if len(parts) != 5:
        return False
    host, pid, start, when, _ = parts
    try:
        made = int(when, 36)
    except ValueError:
        return False
    if host == _host_tag():
        return not owner_alive("%s_%s" % (pid, start))
    return (time.time() if now is None else now) - made > max_age()
