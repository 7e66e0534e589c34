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
import typing

from fixtures_daemons import persistent
from fixtures_daemons.endpoint import Endpoint
from fixtures_daemons.errors import AttachError, StateError

if typing.TYPE_CHECKING:
    from fixtures_daemons.daemon import DaemonFixture

__all__ = ["Origin", "Spawned", "Attached", "Named", "parse_state", "state_value"]


def state_value(daemon: str, endpoint: Endpoint) -> str:
    """What ``<PREFIX>_<DAEMON>_STATE`` holds: the daemon's name and its
    whole endpoint, as JSON."""
    return json.dumps({"daemon": daemon, "endpoint": endpoint.to_dict()}, sort_keys=True)


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


class Spawned(Origin):
    """Started here, by the fixture, which owns its process."""

    description = "started by this fixture"

    def acquire(self, fixture: DaemonFixture) -> Endpoint:
        return fixture.spawn()


class Attached(Origin):
    """Started outside the test; described by the state variable."""

    def __init__(self, variable: str, text: str) -> None:
        self.variable = variable
        self.text = text
        self.description = "attached to the daemon %s describes" % variable

    def acquire(self, fixture: DaemonFixture) -> Endpoint:
        endpoint = parse_state(self.text, fixture.daemon_name, self.variable)
        if not persistent.endpoint_alive(endpoint):
            raise AttachError(
                fixture.daemon_name,
                self.variable,
                "its process (pid %s) is gone or it does not accept connections"
                % (endpoint.pid or "unknown"),
            )
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
        arguments = {k: v for k, v in fixture.arguments.items() if k != "reuse"}
        record = persistent.ensure(self.name, type(fixture), arguments)
        fixture.log_path = record.log_path
        return record.endpoint
