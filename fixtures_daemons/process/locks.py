"""Machine-wide locks shared by every user and process of the library.

Port reservations and the one-time builds of template databases must be
exclusive across parallel test workers, concurrent test runs and users.
``flock`` on a file in a shared sticky directory gives that, and the kernel
drops the lock when its holder dies, so a crashed worker never leaves a
lock taken.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import typing

from fixtures_daemons.errors import TempDirError

__all__ = ["LOCK_DIR_ENV", "lock_dir", "try_lock", "locked"]

LOCK_DIR_ENV = "FIXTURES_DAEMONS_LOCK_DIR"


def _machine_tmp() -> str:
    """/tmp, whatever ``$TMPDIR`` says: a port's lock must be one file per
    machine, or two processes with different ``TMPDIR`` both reserve it."""
    return "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()


def lock_dir() -> str:
    """The shared lock directory (``$FIXTURES_DAEMONS_LOCK_DIR``, else
    ``/tmp/fixtures-daemons-locks``, sticky and world-writable like /tmp);
    a per-user one when the shared one is not trustworthy. A directory
    that cannot be made raises :class:`~fixtures_daemons.TempDirError`
    naming it."""
    explicit = os.environ.get(LOCK_DIR_ENV)
    path = explicit or os.path.join(_machine_tmp(), "fixtures-daemons-locks")
    try:
        try:
            os.mkdir(path, 0o1777)
            os.chmod(path, 0o1777)  # noqa: S103 - shared by all users, sticky like /tmp
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or (
            st.st_uid not in (0, os.geteuid()) and not st.st_mode & stat.S_ISVTX
        ):
            # Another user's directory that we must not trust: use our own.
            path = os.path.join(_machine_tmp(), "fixtures-daemons-locks-%d" % os.geteuid())
            os.makedirs(path, 0o700, exist_ok=True)
    except OSError as exc:
        raise TempDirError(
            "locks",
            path,
            "the lock dir cannot be made there (%s)" % (exc.strerror or exc),
            "set %s to a directory this user can create files in (its parent must exist)"
            % LOCK_DIR_ENV,
        ) from None
    return path


def _open(name: str) -> int | None:
    path = os.path.join(lock_dir(), name + ".lock")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError:
        return None  # e.g. another user's file we may not open
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o644)  # readable by the other users sharing the dir
    except OSError:
        pass
    return fd


def try_lock(name: str) -> int | None:
    """Take the lock ``name`` without waiting: its fd (close it to release),
    or None when someone else holds it."""
    fd = _open(name)
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
            return None
        raise
    return fd


@contextlib.contextmanager
def locked(name: str) -> typing.Iterator[None]:
    """Hold the lock ``name`` for the with-block, waiting for it."""
    fd = _open(name)
    if fd is None:
        raise PermissionError("cannot open the lock %r in %s" % (name, lock_dir()))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
