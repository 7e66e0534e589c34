"""Initialise once, copy for every instance.

initdb and mariadb-install-db are slow; copying their result into a
memory-backed dir is fast (see doc/source/design.rst, 'Where the time
goes'). So a daemon's slow initialisation runs once per machine: its result
is kept as a *template* in a cache dir, keyed by the daemon kind, the
binary's path and the initialisation options, and validated against the
binary's version (a template made by another version of the same path is
rebuilt, not used). Parallel workers build a template once: builders hold an
exclusive flock, copiers a shared one.

Clearing the cache: :func:`clear_cache`, or remove the directory
:func:`cache_root` names (``$FIXTURES_DAEMONS_CACHE_DIR``, else
``$XDG_CACHE_HOME/fixtures-daemons``, else ``~/.cache/fixtures-daemons``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import tempfile
import typing

from fixtures_daemons.errors import TempDirError
from fixtures_daemons.process import _copy
from fixtures_daemons.process.tempdirs import make_private_dir, remove_tree
from fixtures_daemons.process.users import RunAs

if typing.TYPE_CHECKING:
    from fixtures_daemons.process.watchdog import Watchdog

__all__ = ["CACHE_ENV", "cache_root", "copy_tree", "TemplateCache", "clear_cache"]

CACHE_ENV = "FIXTURES_DAEMONS_CACHE_DIR"
_META = "meta.json"
_DATA = "data"
_FORMAT = 1


def _manifest(root: str) -> dict[str, list[object]]:
    """Every regular file under ``root``: relative path -> [size, SHA-256]."""
    files: dict[str, list[object]] = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            files[os.path.relpath(path, root)] = [os.path.getsize(path), digest.hexdigest()]
    return files


def cache_root() -> str:
    """Where templates are kept."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.access(os.path.dirname(base) or "/", os.W_OK) and not os.path.isdir(base):
        base = tempfile.gettempdir()  # e.g. HOME=/nonexistent
    return os.path.join(base, "fixtures-daemons")


def copy_tree(src: str, dst: str, owner: RunAs | None = None) -> None:
    """Copy the tree ``src`` to the new dir ``dst``, owned by ``owner``
    (see :func:`fixtures_daemons.process._copy.copy_tree`)."""
    _copy.copy_tree(src, dst, owner.uid if owner else -1, owner.gid if owner else -1)


@contextlib.contextmanager
def _flock(path: str, mode: int) -> typing.Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


class _Spares:
    """The next instance's copy, prepared in the background.

    Copying a template is the largest part of a PostgreSQL or MariaDB
    fixture's setUp (see doc/source/design.rst, 'The next copy made in
    the background'). From the second instance of a template in a process
    on, the watchdog (another process, so another core) copies the template
    once more right after each setUp, beside the instance's own temp dir;
    the next setUp claims that spare with a rename when it is complete
    (another process may claim it first: then it copies). A one-off use,
    such as the CLI's, never pays for a spare it would not use. Unclaimed
    spares go with the watchdog.
    """

    _uses: typing.ClassVar[dict[str, int]] = {}

    def __init__(self, name: str, version: str, dst: str, owner: RunAs | None) -> None:
        self.dst = dst
        self.root = os.path.dirname(os.path.dirname(os.path.abspath(dst)))
        self.uid = owner.uid if owner else os.geteuid()
        self.gid = owner.gid if owner else os.getegid()
        self.chown = owner is not None
        tag = hashlib.sha256(version.encode()).hexdigest()[:8]
        self.prefix = ".fxd-spare-%s-%s-%d-" % (name, tag, self.uid)
        self.name = name

    def discard(self) -> None:
        """Remove every spare of this template that this user made: each
        renamed into a private trash dir first, so that a claim (a rename
        too) gets a whole spare or none."""
        from fixtures_daemons.process.watchdog import Watchdog

        try:
            spares = [
                entry
                for entry in os.listdir(self.root)
                # A copy still being made is its watchdog's: it fails, the
                # template being gone, and removes it.
                if entry.startswith(self.prefix) and not entry.endswith(".part")
            ]
        except OSError:
            return
        if not spares:
            return
        watchdog = Watchdog.get()
        trash = watchdog.make_trash_dir(self.root)
        if trash is None:
            return  # nowhere out of reach: the spares stay, as valid as the template was
        for entry in spares:
            with contextlib.suppress(OSError):  # claimed a moment ago
                os.rename(os.path.join(self.root, entry), os.path.join(trash, entry))
        watchdog.remove_trash(trash)

    def claim(self) -> bool:
        """Take a complete spare as ``dst``, with a rename: another process
        claiming, or a watchdog removing, takes it with a rename too, so
        exactly one of them gets it, whole. A dir under the spare's name
        that is not a dir of ``self.uid`` (planted by another user) is not
        used."""
        try:
            entries = os.listdir(self.root)
        except OSError:
            return False
        for entry in entries:
            if entry.startswith(self.prefix) and not entry.endswith(".part"):
                try:
                    os.rename(os.path.join(self.root, entry), self.dst)
                except OSError:
                    continue  # claimed by another process a moment ago
                try:
                    st = os.lstat(self.dst)
                    if stat.S_ISDIR(st.st_mode) and st.st_uid == self.uid:
                        return True
                except OSError:
                    pass
                remove_tree(self.dst)
        return False

    def order(self, template: str, lock: str) -> None:
        uses = _Spares._uses[self.name] = _Spares._uses.get(self.name, 0) + 1
        if uses < 2:
            return
        from fixtures_daemons.process.watchdog import Watchdog

        watchdog = Watchdog.get()
        # One spare at a time (ready, or still being copied): the next setUp
        # claims one at most, and setUps faster than the copy would
        # otherwise pile spares up in memory.
        mine = self.prefix + watchdog.token[:8]
        try:
            if any(entry.startswith(mine) for entry in os.listdir(self.root)):
                return
        except OSError:
            return
        watchdog.prepare_copy(
            template,
            lock,
            # Any process may claim it; the token only tells whose it was.
            os.path.join(
                self.root, "%s%s-%s" % (self.prefix, watchdog.token[:8], os.urandom(4).hex())
            ),
            self.uid if self.chown else -1,
            self.gid if self.chown else -1,
        )


class TemplateCache:
    """A directory of initialised templates."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root or cache_root()

    def key(self, kind: str, key_parts: typing.Mapping[str, object]) -> str:
        digest = hashlib.sha256(
            json.dumps([_FORMAT, dict(key_parts)], sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        return "%s-%s" % (kind, digest)

    def _valid(self, path: str, version: str) -> bool:
        try:
            with open(os.path.join(path, _META)) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return False
        return (
            isinstance(meta, dict)
            and meta.get("version") == version
            and os.path.isdir(os.path.join(path, _DATA))
        )

    def instantiate(
        self,
        kind: str,
        key_parts: typing.Mapping[str, object],
        version: str,
        build: typing.Callable[[str], None],
        dst: str,
        owner: RunAs | None = None,
        temp_root: str | None = None,
    ) -> bool:
        """Copy the template into the new dir ``dst``, building it first
        (``build(dir)`` fills an empty dir, as ``owner``; the dir's parent
        is private to the build, for its scratch files) when it is missing
        or was made by another version. Return True when the copy came from
        a template that was there already (so a daemon that fails on it may
        have met a damaged one: see :meth:`discard`), False when this call
        built it."""
        self._ensure_root()
        name = self.key(kind, key_parts)
        path = os.path.join(self.root, name)
        lock = path + ".lock"
        # Spares only in the default temp root: a root the caller chose may
        # be removed by the caller at any time.
        spares = _Spares(name, version, dst, owner) if temp_root is None else None
        with _flock(lock, fcntl.LOCK_SH):
            if self._valid(path, version):
                if spares is None or not spares.claim():
                    copy_tree(os.path.join(path, _DATA), dst, owner)
                if spares is not None:
                    spares.order(os.path.join(path, _DATA), lock)
                return True
        with _flock(lock, fcntl.LOCK_EX):
            existed = self._valid(path, version)
            if not existed:
                self._build(kind, dict(key_parts), version, build, path, owner, temp_root)
            copy_tree(os.path.join(path, _DATA), dst, owner)
        if spares is not None:
            # A use that built the template counts as a use too: else a
            # process whose first setUp built it would get its first spare
            # a setUp late.
            spares.order(os.path.join(path, _DATA), lock)
        return existed

    def _ensure_root(self) -> None:
        """The cache dir, made if missing; a file in its place (damage) is
        replaced."""
        try:
            if os.path.lexists(self.root) and not os.path.isdir(self.root):
                os.unlink(self.root)
            os.makedirs(self.root, 0o700, exist_ok=True)
        except OSError as exc:
            raise TempDirError(
                "template cache",
                self.root,
                "it cannot be made (%s)" % (exc.strerror or exc),
                "set %s to a directory this user can write" % CACHE_ENV,
            ) from None

    def intact(self, kind: str, key_parts: typing.Mapping[str, object]) -> bool:
        """True when the template's files are still those it was built
        with (sizes and SHA-256 of every file, recorded at build time); a
        template without that record cannot be vouched for."""
        path = os.path.join(self.root, self.key(kind, key_parts))
        try:
            with open(os.path.join(path, _META)) as f:
                recorded = json.load(f).get("files")
            return isinstance(recorded, dict) and recorded == _manifest(os.path.join(path, _DATA))
        except (OSError, ValueError, AttributeError):
            return False

    def discard(
        self,
        kind: str,
        key_parts: typing.Mapping[str, object],
        version: str,
        dst: str,
        owner: RunAs | None = None,
    ) -> None:
        """Remove a template that a daemon could not start from (files
        missing, a corrupt page), and the spares copied from it, so that
        the next :meth:`instantiate` builds it again."""
        name = self.key(kind, key_parts)
        path = os.path.join(self.root, name)
        with _flock(path + ".lock", fcntl.LOCK_EX):
            if os.path.lexists(path):
                old = path + ".old"
                remove_tree(old)
                os.rename(path, old)
                remove_tree(old)
        _Spares(name, version, dst, owner).discard()

    def _build(
        self,
        kind: str,
        key_parts: dict[str, object],
        version: str,
        build: typing.Callable[[str], None],
        path: str,
        owner: RunAs | None,
        temp_root: str | None,
    ) -> None:
        # Build where the daemon's user can write (the cache may be under a
        # home dir it cannot enter), then copy into the cache and swap it in.
        # Staging dirs of builders killed before us (we hold the lock) go.
        for entry in os.listdir(self.root):
            if entry.startswith(".%s." % os.path.basename(path)):
                remove_tree(os.path.join(self.root, entry))
        from fixtures_daemons.process.watchdog import Watchdog

        # Every dir made here is watched before it exists: a builder killed
        # at any point (its watchdog too) leaves none of them.
        watchdog = Watchdog.get()
        workdir = make_private_dir(kind + "-template", temp_root, owner, watchdog)
        try:
            # The build fills a dir of its own inside the private one: what
            # it writes beside it (a password file) is private too.
            data = os.path.join(workdir, _DATA)
            os.mkdir(data, 0o700)
            if owner is not None:
                os.chown(data, owner.uid, owner.gid)
            build(data)
            staging = self._staging_dir(path, watchdog)
            try:
                copy_tree(data, os.path.join(staging, _DATA))
                with open(os.path.join(staging, _META), "w") as f:
                    json.dump(
                        {
                            "version": version,
                            "key": key_parts,
                            "format": _FORMAT,
                            "files": _manifest(os.path.join(staging, _DATA)),
                        },
                        f,
                    )
                if os.path.lexists(path):
                    old = path + ".old"
                    watchdog.watch_dir(old)
                    remove_tree(old)
                    os.rename(path, old)
                    remove_tree(old)
                    watchdog.forget_dir(old)
                os.rename(staging, path)
            except BaseException:
                remove_tree(staging)
                raise
            finally:
                watchdog.forget_dir(staging)
        finally:
            remove_tree(workdir)
            watchdog.forget_dir(workdir)

    def _staging_dir(self, path: str, watchdog: Watchdog) -> str:
        """A new 0700 dir ``.<template>.<random>`` in the cache, watched by
        ``watchdog`` before it exists."""
        for _ in range(100):
            staging = os.path.join(
                self.root, ".%s.%s" % (os.path.basename(path), os.urandom(4).hex())
            )
            watchdog.watch_dir(staging)
            try:
                os.mkdir(staging, 0o700)
                return staging
            except FileExistsError:
                watchdog.forget_dir(staging)
            except BaseException:
                watchdog.forget_dir(staging)
                raise
        raise FileExistsError(path)

    def entries(self) -> list[tuple[str, int, str]]:
        """The cached templates: (path, size in bytes, program version),
        sorted by path; the version is ``?`` for a damaged one (it is
        rebuilt when next used)."""
        found: list[tuple[str, int, str]] = []
        if not os.path.isdir(self.root):
            return found
        for name in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, name)
            if name.endswith(".lock") or name.startswith(".") or not os.path.isdir(path):
                continue
            size = 0
            for top, _dirs, files in os.walk(path):
                for file_name in files:
                    with contextlib.suppress(OSError):
                        size += os.lstat(os.path.join(top, file_name)).st_blocks * 512
            try:
                with open(os.path.join(path, _META)) as f:
                    version = str(json.load(f).get("version", "?"))
            except (OSError, ValueError, AttributeError):
                version = "?"
            found.append((path, size, version))
        return found

    def clear(self, kind: str | None = None) -> list[str]:
        """Remove the templates (of ``kind``, or all); return what went."""
        removed: list[str] = []
        if not os.path.isdir(self.root):
            return removed
        for name in sorted(os.listdir(self.root)):
            if kind is not None and not name.startswith(kind + "-"):
                continue
            path = os.path.join(self.root, name)
            if name.endswith(".lock") or name.startswith("."):
                continue
            with _flock(path + ".lock", fcntl.LOCK_EX):
                remove_tree(path)
            removed.append(path)
        if kind is None:  # the remembered program versions go too
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.root, ".versions.json"))
        return removed


def clear_cache(kind: str | None = None) -> list[str]:
    """Remove cached templates (all, or those of one daemon kind)."""
    return TemplateCache().clear(kind)
