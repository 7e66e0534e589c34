"""The daemon of a pytest scope: started by this process, or attached to.

A :class:`DaemonProc` is what a ``<name>_proc`` fixture gives: one daemon
for its scope (the session: one per xdist worker), started by this process
unless ``$FIXTURES_DAEMONS_<NAME>_STATE`` describes one to attach to (an
enclosing ``fixtures-daemons run``, ``eval $(fixtures-daemons env NAME)``,
or the run's shared daemon, ``--fxd-shared``). Each test then gets a
namespace in it with :meth:`DaemonProc.namespace`: a fixture attached to
that daemon, with its own database, database number or key prefix.
"""

from __future__ import annotations

import contextlib
import os
import typing

import pytest

from fixtures_daemons.base.daemon import DEFAULT_ENV_PREFIX, DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.origins import Attached, state_value, unvouch, vouch
from fixtures_daemons.errors import ExecutableNotFound
from fixtures_daemons.integrations.pytest.settings import Settings

__all__ = ["DaemonProc", "start_proc", "start_fixture", "LIVE"]


@contextlib.contextmanager
def _environ(name: str, value: str) -> typing.Iterator[None]:
    """``os.environ[name] = value`` for the with-block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


class DaemonProc:
    """One daemon for a pytest scope.

    :ivar fixture_class: the daemon's fixture class.
    :ivar endpoint: the whole daemon's :class:`~fixtures_daemons.Endpoint`.
    :ivar fixture: the :class:`~fixtures_daemons.DaemonFixture` that
        started it in this process, or None when attached to another's.
    :ivar origin: where it comes from, in words.
    :ivar log_path: its log file ("" when unknown: another machine's).
    """

    def __init__(
        self,
        fixture_class: type[DaemonFixture],
        endpoint: Endpoint,
        origin: str,
        fixture: DaemonFixture | None = None,
        log_path: str = "",
        probe: DaemonFixture | None = None,
    ) -> None:
        self.fixture_class = fixture_class
        self.endpoint = endpoint
        self.origin = origin
        self.fixture = fixture
        self.log_path = log_path
        #: What a fixture needs to attach to it (the state variable's value).
        self.state = state_value(self.name, endpoint)
        # Checked once here (the session holds the daemon): the namespaces
        # attach without checking it again for every test.
        # (``probe``: a fixture of the class, not set up, to check with.)
        self.vouched = fixture is not None or probe is not None
        if self.vouched:
            vouch(typing.cast(DaemonFixture, fixture or probe), self.state)

    def __repr__(self) -> str:
        return "<DaemonProc %s at %s, %s>" % (self.name, self.url or self.host, self.origin)

    @property
    def name(self) -> str:
        return self.fixture_class.daemon_name

    @property
    def attached(self) -> bool:
        """True when this process did not start the daemon."""
        return self.fixture is None or self.fixture.attached

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def port(self) -> int | None:
        return self.endpoint.port

    @property
    def user(self) -> str:
        return self.endpoint.user

    @property
    def database(self) -> str:
        return self.endpoint.database

    @property
    def state_variable(self) -> str:
        return "%s_%s_STATE" % (DEFAULT_ENV_PREFIX, self.name.upper())

    def namespace(self, **kwargs: typing.Any) -> DaemonFixture:
        """A fixture of the daemon's class attached to this daemon, with a
        namespace of its own, set up (the caller cleans it up). ``kwargs``
        are the fixture's (``template=``, ``database=``, ...); it shares
        the daemon (``share=True``: a fixture the test makes in ``auto``
        mode attaches to it too) and exports nothing itself."""
        arguments = {"share": True, "export_env": False, **kwargs, "mode": "attach"}
        arguments.pop("reuse", None)
        fixture = self.fixture_class(**arguments)
        # WORKAROUND (until the base takes an endpoint to attach to, e.g.
        # attach_to=): the state variable is set in os.environ for setUp
        # only, so that each proc's namespaces attach to that proc.
        with _environ(fixture.state_variable(), self.state):
            fixture.setUp()
        return fixture

    def stop(self) -> None:
        if self.vouched:
            unvouch(self.name, self.state)
        if self.fixture is not None:
            self.fixture.cleanUp()


#: The daemons this process has started or attached to, for the logs of
#: failing tests.
LIVE: list[DaemonProc] = []


def start_fixture(
    cls: type[DaemonFixture], kwargs: typing.Mapping[str, typing.Any], settings: Settings
) -> DaemonFixture:
    """``cls(**kwargs)`` set up, with the run's program for the daemon
    unless ``binary=`` is given, exporting nothing unless asked; a missing
    program skips the test when the run says so."""
    arguments = {"export_env": False, **kwargs}
    if "binary" not in arguments and cls.daemon_name in settings.binaries:
        arguments["binary"] = settings.binaries[cls.daemon_name]
    fixture = cls(**arguments)
    try:
        fixture.setUp()
    except ExecutableNotFound as exc:
        if settings.skip_missing:
            pytest.skip(str(exc))
        raise
    return fixture


def start_proc(
    cls: type[DaemonFixture], kwargs: typing.Mapping[str, typing.Any], settings: Settings
) -> DaemonProc:
    """The daemon for a ``<name>_proc`` fixture: attached to the one the
    state variable describes (``mode="auto"`` or ``"attach"``, no
    ``reuse=``), else started by this process (or the named daemon of
    ``reuse=``)."""
    prefix = kwargs.get("env_prefix", DEFAULT_ENV_PREFIX)
    variable = "%s_%s_STATE" % (prefix, cls.daemon_name.upper())
    text = os.environ.get(variable)
    mode = kwargs.get("mode", "auto")
    attach = mode == "attach" or (mode == "auto" and cls.namespace is not None)
    if text and attach and not kwargs.get("reuse"):
        # Not a fixture set up: that would make a namespace (a database, a
        # claimed number) for the whole session. The origin's own check
        # (the pid, a real request) is enough.
        probe = cls(**{**kwargs, "mode": "attach", "export_env": False})
        endpoint = Attached(variable, text).acquire(probe)
        log = os.path.join(endpoint.directory, "%s.log" % cls.daemon_name)
        return DaemonProc(
            cls,
            endpoint,
            "attached to the daemon %s describes" % variable,
            log_path=log if endpoint.directory and os.path.isfile(log) else "",
            probe=probe,
        )
    fixture = start_fixture(cls, kwargs, settings)
    origin = fixture.origin.description if fixture.origin is not None else ""
    return DaemonProc(cls, fixture.server_endpoint, origin, fixture, fixture.log_path)
