"""Writing your own daemon: a complete example.

``tinyd`` (``tests/programs/tinyd.py``) is a tiny key-value server with a
line protocol on a main port, and a second "peer" port that greets whoever
connects with the text of ``$TINYD_GREETING``. Everything a daemon needs
is below: an :class:`~fixtures_daemons.Admin` that speaks its protocol, a
:class:`~fixtures_daemons.DaemonFixture` subclass made of declarations and
a few hooks, and a testresources manager. The base class does the rest:
the temp dir, the ports, the spawn, the wait, the exported variables,
``share=True`` and attaching, namespaces, ``reset()``, ``stopped()``,
``paused()`` and cleanUp.

A third-party package makes it known to ``fixtures-daemons run`` with an
entry point::

    [project.entry-points."fixtures_daemons.daemons"]
    tiny = "tests.tinydaemon:TinyFixture"
"""

from __future__ import annotations

import os
import socket
import sys
import typing

from fixtures_daemons import (
    Admin,
    DaemonFixture,
    DaemonResource,
    Endpoint,
    Executable,
    KeyPrefix,
    probes,
)

__all__ = ["TINYD", "TinyAdmin", "TinyClient", "TinyFixture", "TinyResource"]

#: The daemon's program: a Python script, run by a Python interpreter.
TINYD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs", "tinyd.py")


def request(address: tuple[str, int], line: str, timeout: float = 5.0) -> str:
    """Send one request line to ``address``; return the reply line."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(line.encode() + b"\n")
        with sock.makefile("rb") as replies:
            return replies.readline().decode("utf-8", "replace").rstrip("\n")


class TinyAdmin(Admin):
    """The administration of a tinyd server: what the base needs to probe
    it, to empty it, and to give an attached fixture a key prefix of its
    own. It is built from the whole daemon's endpoint."""

    def command(self, line: str) -> str:
        """Send one request to the main port; return the reply."""
        address = (self.endpoint.host, self.endpoint.port or 0)
        return request(address, line, timeout=min(self.timeout, 5.0))

    def answers(self) -> bool:
        # The readiness probe, and the check of a daemon a fixture attaches
        # to: a real answer, not just an accepted connection.
        try:
            return self.command("PING") == "PONG"
        except OSError:
            return False

    def flush(self) -> None:
        # reset() of a fixture that started the daemon: it owns all of it.
        self.command("FLUSH")

    def delete_prefixed(self, prefix: str, number: int = 0) -> bool:
        # reset() and cleanUp of an attached fixture: only its own keys.
        for key in self.command("KEYS " + prefix).split():
            self.command("DEL " + key)
        return True  # tinyd can list its keys (memcached cannot: False)


class TinyFixture(DaemonFixture):
    """A tinyd server on loopback TCP: a main port and a peer port.

    :param greeting: what the peer port answers every line with (after
        ``PEER``), passed to the daemon in its environment.

    Attributes: ``url`` (``tiny://host:port``), ``key_prefix`` (empty, or
    when attached to a shared server this fixture's own prefix: put it in
    front of your keys, as :class:`TinyClient` does).
    """

    # -- declarations: what the base needs to know ------------------------

    #: The name: ``fixtures-daemons run tiny``, FIXTURES_DAEMONS_TINY_* variables.
    daemon_name = "tiny"
    #: Where the program is. The interpreter that runs the tests comes
    #: first (an absolute name is taken as it is), then any python3 on PATH;
    #: ``binary=`` or $FIXTURES_DAEMONS_TINY_PYTHON override both.
    executable = Executable(
        names=(sys.executable, "python3"),
        packages={"Debian/Ubuntu": "python3"},
        env_var="FIXTURES_DAEMONS_TINY_PYTHON",
    )
    #: The ports the base reserves, main first: FIXTURES_DAEMONS_TINY_PORT
    #: and FIXTURES_DAEMONS_TINY_PEER_PORT.
    port_names = ("main", "peer")
    scheme = "tiny"
    #: An attached fixture (share=True, ``fixtures-daemons run``) gets a key
    #: prefix of its own; None would make it share the whole daemon.
    namespace = KeyPrefix
    admin_class = TinyAdmin

    # -- parameters: keyword only, documented with :param: ----------------
    # They become options of ``fixtures-daemons run tiny`` (--greeting), and
    # a misspelt one is a TypeError that suggests the right name.

    def __init__(self, *, greeting: str = "hello", **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self.greeting = greeting

    # -- hooks -------------------------------------------------------------

    def command_line(self) -> list[str]:
        # Called once the temp dir exists and the ports are reserved.
        return [
            self.binary,
            TINYD,
            "--port",
            str(self.ports["main"]),
            "--peer-port",
            str(self.ports["peer"]),
        ]

    def process_environment(self) -> dict[str, str | None]:
        return {"TINYD_GREETING": self.greeting}

    def probe(self) -> probes.Probe:
        # Ready once it answers PING; LogPattern("tinyd ready") would do too.
        return probes.Callable(self.admin.answers, "PING answered with PONG")

    # -- what tests use ----------------------------------------------------

    @property
    def key_prefix(self) -> str:
        return self.endpoint.key_prefix

    def client(self) -> TinyClient:
        return TinyClient(self.endpoint)


class TinyClient:
    """A client of a tinyd server, as a test would write one: it puts the
    endpoint's key prefix in front of every key, so a fixture attached to a
    shared server sees only its own keys."""

    def __init__(self, endpoint: Endpoint, timeout: float = 5.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    def request(self, line: str) -> str:
        return request((self.endpoint.host, self.endpoint.port or 0), line, self.timeout)

    def set(self, key: str, value: str) -> None:
        reply = self.request("SET %s%s %s" % (self.endpoint.key_prefix, key, value))
        if reply != "OK":
            raise RuntimeError("SET %s: %s" % (key, reply))

    def get(self, key: str) -> str | None:
        """The value of ``key``, or None when there is none."""
        reply = self.request("GET %s%s" % (self.endpoint.key_prefix, key))
        return reply[len("VALUE ") :] if reply.startswith("VALUE ") else None

    def keys(self) -> list[str]:
        """The keys this client sees (without its prefix)."""
        prefix = self.endpoint.key_prefix
        return [key[len(prefix) :] for key in self.request("KEYS " + prefix).split()]

    def peer(self, line: str = "HELLO") -> str:
        """What the peer port answers ``line`` with."""
        address = (self.endpoint.host, self.endpoint.ports["peer"])
        return request(address, line, self.timeout)


class TinyResource(DaemonResource):
    """A testresources manager sharing one :class:`TinyFixture`."""

    fixture_class = TinyFixture
