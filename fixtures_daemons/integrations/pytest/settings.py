"""The plugin's command-line options and ini settings, read and checked
once per run.

Each setting is an option for one run (``--fxd-...``) and an ini setting
for the project (``fixtures_daemons_...`` in ``pytest.ini``,
``pyproject.toml`` or ``setup.cfg``); the option wins. A bad value is an
:class:`OptionError` (a :class:`~fixtures_daemons.DaemonError`, turned
into a ``pytest.UsageError``: pytest reports it in one line and exits
with status 4) naming the option or setting.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing

import pytest

from fixtures_daemons.errors import DaemonError
from fixtures_daemons.integrations import registry

__all__ = ["OptionError", "Settings", "add_options", "daemon_class", "SETTINGS_KEY"]


class OptionError(DaemonError):
    """A bad value for one of the plugin's options, ini settings or
    factory arguments.

    :ivar option: the option, setting or argument (``--fxd-shared``).
    :ivar value: the value it was given.
    """

    def __init__(self, option: str, value: object, reason: str) -> None:
        super().__init__("", message=reason)
        self.option = option
        self.value = value

    def _describe(self) -> str:
        return "%s=%r: %s" % (self.option, self.value, self.message)


def daemon_class(name: str, option: str) -> type[typing.Any]:
    """The fixture class of the daemon ``name`` (an alias is fine); an
    :class:`OptionError` for ``option`` naming the closest daemon when
    there is none."""
    try:
        return registry.daemon_class(name)
    except KeyError:
        known = registry.daemon_names()
        close = difflib.get_close_matches(name, known + sorted(registry.builtin_aliases()), n=1)
        hint = " (did you mean %r?)" % close[0] if close else ""
        raise OptionError(
            option, name, "no such daemon%s; the daemons are %s" % (hint, ", ".join(known))
        ) from None


def _flag(config: pytest.Config, option: str, ini: str) -> bool:
    value = config.getoption(option)
    if value is not None:
        return bool(value)
    return bool(config.getini(ini))


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a run asked for.

    :ivar shared: the daemons started once for the whole run (by the xdist
        controller, before the workers) and shared by every worker.
    :ivar binaries: a program per daemon name, for the daemons the plugin
        starts.
    :ivar keep_failed: keep the namespace (database, database number) of
        a failing test instead of removing it.
    :ivar skip_missing: a test whose daemon's program is not installed is
        skipped, not an error.
    :ivar log_lines: how many lines of a daemon's log a failing test's
        report shows (0: none).
    :ivar prefix: put before the names of the generated fixtures.
    """

    shared: tuple[str, ...] = ()
    binaries: typing.Mapping[str, str] = dataclasses.field(default_factory=dict)
    keep_failed: bool = False
    skip_missing: bool = False
    log_lines: int = 50
    prefix: str = ""

    @classmethod
    def read(cls, config: pytest.Config) -> Settings:
        shared: list[str] = []
        option = "--fxd-shared"
        values = config.getoption("fxd_shared")
        if values is None:
            option, values = "fixtures_daemons_shared", config.getini("fixtures_daemons_shared")
        for value in values or ():
            for name in value.replace(",", " ").split():
                daemon = daemon_class(name, option).daemon_name
                if daemon not in shared:
                    shared.append(daemon)

        binaries: dict[str, str] = {}
        option = "--fxd-binary"
        values = config.getoption("fxd_binary")
        if values is None:
            option, values = "fixtures_daemons_binaries", config.getini("fixtures_daemons_binaries")
        for value in values or ():
            name, sep, path = value.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise OptionError(option, value, "expected DAEMON=PATH")
            daemon = daemon_class(name.strip(), option).daemon_name
            path = os.path.expanduser(path.strip())
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise OptionError(option, value, "%s is not an executable file" % path)
            binaries[daemon] = path

        option = "--fxd-log-lines"
        text = config.getoption("fxd_log_lines")
        if text is None:
            option, text = "fixtures_daemons_log_lines", config.getini("fixtures_daemons_log_lines")
        try:
            log_lines = int(text)
        except (TypeError, ValueError):
            raise OptionError(option, text, "expected a number of lines (0 or more)") from None
        if log_lines < 0:
            raise OptionError(option, text, "expected a number of lines (0 or more)")

        prefix = str(config.getini("fixtures_daemons_fixture_prefix") or "")
        if prefix and not prefix.isidentifier():
            raise OptionError(
                "fixtures_daemons_fixture_prefix", prefix, "fixture names must be identifiers"
            )
        return cls(
            shared=tuple(shared),
            binaries=binaries,
            keep_failed=_flag(config, "fxd_keep_failed", "fixtures_daemons_keep_failed"),
            skip_missing=_flag(config, "fxd_skip_missing", "fixtures_daemons_skip_missing"),
            log_lines=log_lines,
            prefix=prefix,
        )


SETTINGS_KEY = pytest.StashKey[Settings]()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("fixtures-daemons", "fixtures-daemons: real daemons as fixtures")
    group.addoption(
        "--fxd-shared",
        action="append",
        dest="fxd_shared",
        default=None,
        metavar="DAEMON[,DAEMON]",
        help="start these daemons once for the whole run (before the xdist workers) and "
        "give every worker's tests a namespace in them, instead of one daemon per worker. "
        "ini: fixtures_daemons_shared",
    )
    group.addoption(
        "--fxd-binary",
        action="append",
        dest="fxd_binary",
        default=None,
        metavar="DAEMON=PATH",
        help="the program to run for DAEMON (repeatable). ini: fixtures_daemons_binaries",
    )
    group.addoption(
        "--fxd-keep-failed",
        action="store_true",
        dest="fxd_keep_failed",
        default=None,
        help="keep the namespace (database, database number) of a failing test instead "
        "of removing it; its report says where. ini: fixtures_daemons_keep_failed",
    )
    group.addoption(
        "--fxd-skip-missing",
        action="store_true",
        dest="fxd_skip_missing",
        default=None,
        help="skip the tests whose daemon's program is not installed, instead of failing "
        "them. ini: fixtures_daemons_skip_missing",
    )
    group.addoption(
        "--fxd-log-lines",
        dest="fxd_log_lines",
        default=None,
        metavar="N",
        help="lines of a daemon's log in a failing test's report (default 50; 0: none). "
        "ini: fixtures_daemons_log_lines",
    )
    parser.addini(
        "fixtures_daemons_shared",
        "daemons started once for the whole run and shared by every xdist worker",
        type="args",
        default=[],
    )
    parser.addini(
        "fixtures_daemons_binaries",
        "DAEMON=PATH lines: the program to run for a daemon",
        type="linelist",
        default=[],
    )
    parser.addini(
        "fixtures_daemons_keep_failed",
        "keep the namespace of a failing test",
        type="bool",
        default=False,
    )
    parser.addini(
        "fixtures_daemons_skip_missing",
        "skip the tests whose daemon's program is not installed",
        type="bool",
        default=False,
    )
    parser.addini(
        "fixtures_daemons_log_lines",
        "lines of a daemon's log in a failing test's report",
        default="50",
    )
    parser.addini(
        "fixtures_daemons_fixture_prefix",
        "put before the names of the generated fixtures (fxd_ gives fxd_postgresql_proc)",
        default="",
    )
