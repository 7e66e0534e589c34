"""Where a fixture's daemon comes from.

* :class:`Spawned`: the fixture starts the daemon here, owns its process,
  and can stop and pause it;
* :class:`Attached`: the daemon was started outside the test and
  described in ``<PREFIX>_<DAEMON>_STATE`` (by ``fixtures-daemons run``, a
  testresources resource, or a fixture made with ``share=True``);
* :class:`Named`: a named daemon that outlives the run
  (``fixtures-daemons start --name``, or ``reuse=``), started by a holder
  process when it is not running yet.

Each gives the fixture the endpoint of the whole daemon; the fixture then
enters its namespace on it. Only :class:`Spawned` has a process: the
others refuse ``stopped()`` and ``paused()`` with a
:class:`~fixtures_daemons.NotOwnedError` that says why.
"""

from __future__ import annotations

import json
import os
import typing
import urllib.parse

from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.base.endpoint import ADMIN_QUERY, QUERY, SERVER_MARK, Endpoint, redact
from fixtures_daemons.base.skipping import skipping_missing
from fixtures_daemons.errors import (
    AttachError,
    DaemonExited,
    ExecutableNotFound,
    MisuseError,
    ServerError,
    StateError,
)
from fixtures_daemons.process import _reaper
from fixtures_daemons.process.fixture import ProcessFixture
from fixtures_daemons.process.ports import PortFixture
from fixtures_daemons.process.tempdirs import PrivateDirFixture, remove_tree
from fixtures_daemons.process.users import default_daemon_user, resolve_user

if typing.TYPE_CHECKING:
    from fixtures_daemons.base.daemon import DaemonFixture

__all__ = [
    "Origin",
    "Spawned",
    "Attached",
    "External",
    "Named",
    "parse_state",
    "server_endpoint",
    "state_value",
    "vouch",
    "unvouch",
]

#: The state values whose daemon the caller has vouched for (see
#: :func:`vouch`), with the endpoint each describes.
_vouched: dict[tuple[str, str], Endpoint] = {}


def vouch(fixture: DaemonFixture, state: str) -> Endpoint:
    """Check once that the daemon the state value ``state`` describes is
    alive and answers (as :class:`Attached` does, with ``fixture``'s admin
    and timeout; :class:`~fixtures_daemons.AttachError` if not), then let
    this process's later attaches to it skip that check: for a caller that
    knows the daemon stays up (the pytest plugin, whose session holds it),
    where the check would be a good part of an attach's cost. The first
    attach to a state nobody vouched for still checks; :func:`unvouch`
    ends it. ``fixture`` is any fixture of the daemon's class (it need not
    be set up). Returns the endpoint."""
    key = (fixture.daemon_name, state)
    endpoint = _vouched.get(key)
    if endpoint is None:
        endpoint = _check(fixture, "a vouched state", state)
        _vouched[key] = endpoint
    return endpoint


def unvouch(daemon: str, state: str) -> None:
    """Attaches to the daemon (by name) that ``state`` describes check it
    again."""
    _vouched.pop((daemon, state), None)


def _check(fixture: DaemonFixture, variable: str, text: str) -> Endpoint:
    """The endpoint ``text`` describes, once its pid still has its start
    time and it answers a real request (bounded by the fixture's timeout)."""
    name = fixture.daemon_name
    endpoint = parse_state(text, name, variable)
    if endpoint.pid and _reaper.start_time(endpoint.pid) != endpoint.pid_start:
        raise AttachError(name, variable, "its process (pid %d) is gone" % endpoint.pid)
    # A real request, bounded by the fixture's timeout: a port that
    # accepts connections can belong to a hung (or paused) daemon.
    if not fixture.make_admin(endpoint).answers():
        raise AttachError(
            name,
            variable,
            "it does not answer (within %.1f s) at %s"
            % (fixture.timeout, endpoint.url or endpoint.socket or endpoint.display),
        )
    return endpoint


def state_value(daemon: str, endpoint: Endpoint) -> str:
    """What ``<PREFIX>_<DAEMON>_STATE`` holds: the daemon's name and its
    whole endpoint, as JSON."""
    # Not sort_keys: the order of the ports says which is the main one.
    return json.dumps({"daemon": daemon, "endpoint": endpoint.to_dict()})


def parse_state(text: str, daemon: str, variable: str) -> Endpoint:
    """The endpoint a state variable describes; a
    :class:`~fixtures_daemons.StateError` naming ``variable`` when it is
    damaged or describes another daemon."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateError(variable, "not JSON (%s)" % exc) from None
    if not isinstance(data, dict) or set(data) != {"daemon", "endpoint"}:
        raise StateError(variable, "expected an object with 'daemon' and 'endpoint'")
    if data["daemon"] != daemon:
        raise StateError(variable, "it describes %r, not %r" % (data["daemon"], daemon))
    return Endpoint.from_dict(data["endpoint"], variable)


class Origin:
    """Where the daemon comes from: :meth:`acquire` gives its endpoint."""

    #: What error messages call it.
    description = ""

    def acquire(self, fixture: DaemonFixture) -> Endpoint:
        raise NotImplementedError


def _empty(directory: str, keep: str) -> None:
    """Remove everything in ``directory`` but ``keep``."""
    for entry in os.listdir(directory):
        path = os.path.join(directory, entry)
        if path == keep:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            remove_tree(path)
        else:
            os.unlink(path)


class Spawned(Origin):
    """Started here, by the fixture, which owns its process: find the
    program -> choose the user -> a private temp dir -> reserve the ports ->
    ``prepare()`` -> spawn and wait (``command_line()``, ``probe()``) ->
    ``build_endpoint()`` -> ``started()``. Each step registers its undo on
    the fixture right after it succeeds."""

    description = "started by this fixture"

    def acquire(self, fixture: DaemonFixture) -> Endpoint:
        name = fixture.daemon_name
        fixture.spawning = True
        try:
            fixture.binary = find_executable(fixture.executable, fixture.requested_binary, name)
        except ExecutableNotFound as exc:
            raise skipping_missing(exc) from None
        wanted = fixture.os_user or (default_daemon_user() if fixture.refuses_root else None)
        fixture.run_as = run_as = resolve_user(wanted, name)
        temp_dir = PrivateDirFixture(name, fixture.temp_root, run_as)
        fixture.temp_dir = fixture.useFixture(temp_dir).path
        pinned = fixture.pinned_ports()
        for port_name in fixture.needed_ports():
            what = "%s %s port" % (name, port_name)
            port = PortFixture(fixture.requested_host, pinned.get(port_name), what)
            fixture.ports[port_name] = fixture.useFixture(port).port
        for attempt in (1, 2):
            fixture.prepare()
            try:
                fixture.process = process = fixture.useFixture(
                    ProcessFixture(
                        fixture.command_line() + fixture.extra_args,
                        probe=fixture.probe(),
                        timeout=fixture.timeout,
                        stop_signal=fixture.stop_signal,
                        stop_timeout=fixture.stop_timeout,
                        user=run_as.uid if run_as else None,
                        env=fixture.process_environment(),
                        name=name,
                        temp_dir=fixture.temp_dir,
                    )
                )
                break
            except DaemonExited:
                # It exited on a copy of a cached template: the template may
                # be damaged (files missing, a corrupt page). Build it again,
                # once; the same failure then is the daemon's own.
                if attempt == 2 or not fixture.discard_templates():
                    raise
                _empty(fixture.temp_dir, keep=os.path.join(fixture.temp_dir, "%s.log" % name))
        fixture.log_path = process.log_path
        endpoint = fixture.with_pid(fixture.build_endpoint())
        fixture.spawning = False
        return endpoint


class Attached(Origin):
    """Started outside the test; described by the state variable."""

    def __init__(self, variable: str, text: str) -> None:
        self.variable = variable
        self.text = text
        self.description = "attached to the daemon %s describes" % variable

    def acquire(self, fixture: DaemonFixture) -> Endpoint:
        vouched = _vouched.get((fixture.daemon_name, self.text))
        if vouched is not None:
            return vouched
        return _check(fixture, self.variable, self.text)


def server_endpoint(fixture: DaemonFixture, url: str, source: str) -> Endpoint:
    """The endpoint of the server ``url`` names (``scheme://[user[:password]@]
    host[:port][/database][?options]``; the options, such as TLS ones, go
    to the client library as they are); a
    :class:`~fixtures_daemons.ServerError` when it is not such a URL."""
    name = fixture.daemon_name
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ServerError(name, source, redact(url), "not a URL (%s)" % exc) from None
    schemes = {fixture.scheme, *fixture.server_schemes}
    if parts.scheme not in schemes or not parts.hostname:
        raise ServerError(
            name,
            source,
            redact(url),
            "not %s %s URL" % ("an" if name[:1] in "aeiou" else "a", name),
            "write it %s://user:password@host:port/database" % fixture.scheme,
        )
    extra = {SERVER_MARK: "1"}
    # Options for the server admin only (where its API is), not for clients.
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    own = fixture.server_admin_options
    if any(key not in own for key, _ in pairs):
        extra[QUERY] = urllib.parse.urlencode([(k, v) for k, v in pairs if k not in own])
    if any(key in own for key, _ in pairs):
        extra[ADMIN_QUERY] = urllib.parse.urlencode([(k, v) for k, v in pairs if k in own])
    return Endpoint(
        scheme=parts.scheme,  # rediss: TLS
        host=parts.hostname,
        ports={"main": port} if port else {},
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        database=urllib.parse.unquote(parts.path.lstrip("/")),
        extra=extra,
    )


class External(Origin):
    """A server the library did not start, named by its URL: nothing is
    started; the fixture gets a namespace of its own there, through the
    daemon's server admin (its real client library), which checks that
    the server answers and accepts the credentials."""

    def __init__(self, url: str, source: str) -> None:
        self.url = url
        self.source = source
        self.description = "the server %s names (%s)" % (source, redact(url))

    def acquire(self, fixture: DaemonFixture) -> Endpoint:
        if fixture.server_admin_class is None or fixture.namespace is None:
            raise MisuseError(
                fixture.daemon_name,
                self.source,
                "%s cannot use a server it did not start: only daemons whose fixtures "
                "get a namespace of their own there can" % fixture.daemon_name,
            )
        endpoint = server_endpoint(fixture, self.url, self.source)
        fixture.make_admin(endpoint).check_server(self.source)
        return endpoint


class Named(Origin):
    """A named daemon that outlives the run, started if not running."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.description = "the named daemon %r (fixtures-daemons stop %s stops it)" % (
            name,
            name,
        )

    def acquire(self, fixture: DaemonFixture) -> Endpoint:
        from fixtures_daemons.base import persistent  # only here: it slows every import

        arguments = {k: v for k, v in fixture.arguments.items() if k != "reuse"}
        record = persistent.ensure(self.name, type(fixture), arguments)
        fixture.log_path = record.log_path
        return record.endpoint
