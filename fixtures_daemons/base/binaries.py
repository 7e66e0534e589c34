"""Finding a daemon's program, where distributions really put it.

PATH first, then the places packages hide daemons (Debian's
``/usr/lib/postgresql/<version>/bin``, ``/usr/sbin``, Homebrew's prefixes),
versioned dirs included (see doc/source/design.rst, 'Programs found where
distributions put them'). An explicit path (a parameter, or the daemon's
environment variable) always wins. When nothing is found the error names
the package to install.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import typing

from fixtures_daemons.errors import ExecutableNotFound

__all__ = ["Executable", "find_executable", "sibling", "program_version"]


def _version_key(path: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path)]


@dataclasses.dataclass(frozen=True)
class Executable:
    """Where to look for a daemon's program.

    :param names: program names, in order of preference (``("mariadbd",
        "mysqld")``).
    :param dirs: extra directories or globs searched after PATH; a glob's
        matches are tried newest version first.
    :param packages: packaging system -> package name, for the error message.
    :param env_var: environment variable that names the program's path.
    :param version_args: the arguments that make the program print its
        version and exit, and do nothing else (``rabbitmq-server
        --version`` would start a broker: name a program that does not).
    :param beside_python: look in the running Python's own bin dir first,
        before PATH: a program installed with pip into the test's
        virtualenv (``moto_server``), found even when the venv is not on
        PATH.

    A program found some other way than by its name (any Python that can
    import a module) overrides :meth:`candidates` and :meth:`wanted`.
    """

    names: tuple[str, ...]
    dirs: tuple[str, ...] = ()
    packages: typing.Mapping[str, str] = dataclasses.field(default_factory=dict)
    env_var: str = ""
    version_args: tuple[str, ...] = ("--version",)
    beside_python: bool = False

    def candidates(self) -> typing.Iterator[str]:
        """The paths to try, in order, when neither a parameter nor the
        variable names the program: each name beside the running Python
        (with ``beside_python``), on PATH, then in :meth:`search_dirs`."""
        first = [os.path.dirname(sys.executable)] if self.beside_python else []
        dirs = self.search_dirs()
        for name in self.names:
            for directory in first:
                yield os.path.join(directory, name)
            path = shutil.which(name)
            if path:
                yield os.path.abspath(path)
            for directory in dirs:
                yield os.path.join(directory, name)

    def wanted(self) -> tuple[str, list[str]]:
        """What :class:`~fixtures_daemons.ExecutableNotFound` says was
        looked for, and where."""
        first = [os.path.dirname(sys.executable)] if self.beside_python else []
        return " or ".join(self.names), first + ["PATH"] + self.search_dirs()

    def search_dirs(self) -> list[str]:
        found = []
        for pattern in self.dirs + (
            "/usr/sbin",
            "/usr/local/sbin",
            "/opt/homebrew/bin",
            "/opt/homebrew/sbin",
            "/usr/local/opt/*/bin",
        ):
            matches = glob.glob(pattern)
            found.extend(sorted(matches, key=_version_key, reverse=True))
        return found


def find_executable(spec: Executable, explicit: str | None = None, what: str = "") -> str:
    """The absolute path of the program described by ``spec``.

    ``explicit`` (a parameter) wins, then ``$<spec.env_var>``, then PATH and
    ``spec.dirs``.
    """
    for given in (explicit, os.environ.get(spec.env_var) if spec.env_var else None):
        if given:
            path = shutil.which(given)
            if path is None:
                raise ExecutableNotFound(what, given, packages=spec.packages, env_var=spec.env_var)
            return os.path.abspath(path)
    for candidate in spec.candidates():
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    wanted, searched = spec.wanted()
    raise ExecutableNotFound(what, wanted, searched, spec.packages, spec.env_var)


def sibling(path: str, name: str, spec: Executable | None = None, what: str = "") -> str:
    """Another program of the same installation (``initdb`` beside
    ``postgres``), following symlinks to the real directory first."""
    for directory in (os.path.dirname(os.path.realpath(path)), os.path.dirname(path)):
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    raise ExecutableNotFound(what, name, [os.path.dirname(path)], spec.packages if spec else None)


def _version_file() -> str:
    from fixtures_daemons.base.templates import cache_root

    return os.path.join(cache_root(), ".versions.json")


def _load_versions() -> dict[str, str]:
    try:
        with open(_version_file()) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@functools.cache
def _version(path: str, realpath: str, mtime_ns: int, size: int, flag: str) -> str:
    # Kept on disk too, by binary identity: otherwise every test process
    # (and every CLI run) runs ``postgres --version`` again (design.rst,
    # 'Program versions remembered').
    key = "%s\0%s\0%d\0%d\0%s" % (path, realpath, mtime_ns, size, flag)
    known = _load_versions()
    if isinstance(known.get(key), str):
        return known[key]
    # Run ``path`` itself, not its target: Debian's redis-server is a
    # symlink to redis-check-rdb, which looks at the name it was run by.
    try:
        result = subprocess.run(
            [path, *flag.split("\0")],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""  # unknown (not remembered: the next process tries again)
    version = (result.stdout or result.stderr).decode("utf-8", "replace").strip()
    known = _load_versions()
    known[key] = version
    try:
        os.makedirs(os.path.dirname(_version_file()), 0o700, exist_ok=True)
        staging = "%s.%d" % (_version_file(), os.getpid())
        with open(staging, "w") as f:
            json.dump(known, f)
        os.replace(staging, _version_file())
    except OSError:
        pass  # a read-only cache only costs the next process the run
    return version


def program_version(path: str, flag: str | typing.Sequence[str] = "--version") -> str:
    """What ``path --version`` (or ``path`` with the arguments ``flag``)
    prints: run once per binary (its path, size and modification time) and
    remembered in the cache dir."""
    st = os.stat(path)
    args = "\0".join([flag] if isinstance(flag, str) else flag)
    return _version(path, os.path.realpath(path), st.st_mtime_ns, st.st_size, args)
