"""Private temp dirs, memory-backed when there is room.

Daemon data dirs are thrown away after a test, so they belong in memory:
copying an initialised data dir there is much faster than onto a disk (see
doc/source/design.rst, 'Memory-backed temp dirs'). Every dir is 0700 (made
by ``mkdtemp``) and, when the daemon runs as another user, owned by that
user.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import sys
import tempfile
import typing

from fixtures_daemons.errors import TempDirError
from fixtures_daemons.process._fixture import Fixture
from fixtures_daemons.process.users import RunAs

if typing.TYPE_CHECKING:
    from fixtures_daemons.process.watchdog import Watchdog

__all__ = [
    "KEEP_ENV",
    "keep_requested",
    "TMPDIR_ENV",
    "PREFIX",
    "PrivateDirFixture",
    "default_temp_root",
    "make_private_dir",
    "remove_tree",
]

#: The environment variable that overrides where temp dirs are made.
TMPDIR_ENV = "FIXTURES_DAEMONS_TMPDIR"
#: Set (to anything but "" or "0"): keep the temp dirs, with the daemons'
#: logs and data, after cleanUp (the daemons are stopped all the same).
KEEP_ENV = "FIXTURES_DAEMONS_KEEP"
#: Every temp dir of ours starts with this, so leaks are easy to find.
PREFIX = "fxd-"
#: /dev/shm is used only when it has at least this much free.
SHM_MIN_FREE = 1 << 30


def _shm_usable() -> bool:
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return False
    return st.f_bavail * st.f_frsize >= SHM_MIN_FREE and os.access("/dev/shm", os.W_OK | os.X_OK)


def default_temp_root() -> str:
    """``$FIXTURES_DAEMONS_TMPDIR``, else /dev/shm when it has room, else
    the system temp dir."""
    root = os.environ.get(TMPDIR_ENV)
    if root:
        return root
    if _shm_usable():
        return "/dev/shm"
    return tempfile.gettempdir()


def _check_traversable(path: str, user: RunAs, what: str) -> None:
    """Fail early when ``user`` could not reach ``path`` (e.g. a temp root
    under /root), instead of letting the daemon fail with a cryptic error."""
    path = os.path.abspath(path)
    while True:
        st = os.stat(path)
        if st.st_uid == user.uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == user.gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise TempDirError(what, path, "user %s cannot enter %s" % (user.name, path))
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def _random_name() -> str:
    """Eight characters as ``mkdtemp`` picks them (lower case and digits)."""
    return base64.b32encode(os.urandom(5)).decode().lower()


def make_private_dir(
    what: str, root: str | None = None, owner: RunAs | None = None, watchdog: Watchdog | None = None
) -> str:
    """Create a 0700 dir for ``what`` under ``root``, owned by ``owner``.

    With ``watchdog``, the dir is watched by it before it exists (its name
    is picked first, as ``mkdtemp`` does, then made): however the process
    dies, even a moment after, there is no dir that no watchdog knows of.
    """
    given = root
    root = root or default_temp_root()
    if not os.path.isabs(root):
        # Relative to what? The daemon runs in its own temp dir: a relative
        # root would mean something else to it than to us.
        where = "temp_root=" if given else "$%s" % TMPDIR_ENV
        raise TempDirError(what, root, "%s is a relative path: give an absolute one" % where)
    label = (what or "process").replace(os.sep, "_")  # a name, never a path
    path = ""
    for _ in range(100):
        path = os.path.join(root, "%s%s-%s" % (PREFIX, label, _random_name()))
        if watchdog is not None:
            watchdog.watch_dir(path)
        try:
            os.mkdir(path, 0o700)
            break
        except FileExistsError:
            if watchdog is not None:
                watchdog.forget_dir(path)
        except OSError as exc:
            if watchdog is not None:
                watchdog.forget_dir(path)
            raise TempDirError(what, root, exc.strerror or str(exc)) from None
    else:
        raise TempDirError(what, root, "no unused name found for a temp dir")
    try:
        if owner is not None:
            os.chown(path, owner.uid, owner.gid)
            _check_traversable(root, owner, what)
    except BaseException:
        remove_tree(path)
        if watchdog is not None:
            watchdog.forget_dir(path)
        raise
    return path


def remove_tree(path: str) -> None:
    """Remove ``path`` and everything in it; missing is fine."""
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):  # something refused: make it loud, not a silent leak
        shutil.rmtree(path)


def keep_requested() -> bool:
    """True when ``$FIXTURES_DAEMONS_KEEP`` asks to keep the temp dirs."""
    return os.environ.get(KEEP_ENV, "") not in ("", "0")


class PrivateDirFixture(Fixture):
    """A private temp dir (see :func:`make_private_dir`) for the fixture's
    lifetime; the watchdog also removes it if the test process dies. In the
    default temp root, cleanUp frees its path at once and the watchdog
    deletes its content in the background (deleting a PostgreSQL data dir
    is a large part of a cleanUp; see doc/source/design.rst, 'Temp dirs
    deleted off the critical path'); in a root given by the caller, cleanUp
    deletes it.

    :ivar path: the directory.
    """

    def __init__(self, what: str, root: str | None = None, owner: RunAs | None = None) -> None:
        super().__init__()
        self.what = what
        self.root = root
        self.owner = owner

    def _setUp(self) -> None:
        from fixtures_daemons.process.watchdog import Watchdog

        watchdog = Watchdog.get()
        self.path = make_private_dir(self.what, self.root, self.owner, watchdog)
        if keep_requested():
            # To look at what a failing test used: its log, its data.
            self.addCleanup(self._keep, watchdog)
        elif self.root is None:
            self.addCleanup(watchdog.discard_dir, self.path)
        else:
            # A root the caller chose may be removed by the caller right
            # after us (a fixtures.TempDir): no deleting behind its back.
            self.addCleanup(watchdog.forget_dir, self.path)
            self.addCleanup(remove_tree, self.path)

    def _keep(self, watchdog: typing.Any) -> None:
        watchdog.forget_dir(self.path)
        sys.stderr.write("fixtures-daemons: kept %s (%s is set)\n" % (self.path, KEEP_ENV))
