"""Running a process as another (unprivileged) user.

PostgreSQL and MariaDB refuse to run as root, and a test suite run as root
(containers, CI) is common, and must not simply fail (see
doc/source/design.rst, 'Running as an unprivileged user under root'). When
the test process is root, daemons that refuse root run as an unprivileged
user instead: ``nobody`` unless ``FIXTURES_DAEMONS_USER`` names another.
"""

from __future__ import annotations

import dataclasses
import os
import pwd

from fixtures_daemons.errors import UserError

__all__ = ["RunAs", "resolve_user", "default_daemon_user", "USER_ENV"]

#: The environment variable naming the user daemons run as under root.
USER_ENV = "FIXTURES_DAEMONS_USER"


@dataclasses.dataclass(frozen=True)
class RunAs:
    """A user to run a process as."""

    name: str
    uid: int
    gid: int

    @property
    def popen_kwargs(self) -> dict[str, object]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def resolve_user(user: str | int | None, what: str = "") -> RunAs | None:
    """Return who to run as, or None for "as ourselves".

    Asking for the user we already are is not an error (so the same code
    works as root and as non-root); asking for another user without being
    root is, with a message that says so.
    """
    if user is None or user == "":
        return None
    try:
        entry = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    except KeyError:
        raise UserError(what, str(user), "no such user on this machine") from None
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise UserError(
            what, str(user), "only root can start a process as another user; leave user unset"
        )
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def default_daemon_user() -> str | None:
    """The user a daemon that refuses root runs as: None unless we are root."""
    if os.geteuid() != 0:
        return None
    return os.environ.get(USER_ENV) or "nobody"
