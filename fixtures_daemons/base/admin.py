"""Admin: the one shape of administrative access to a daemon.

Namespaces (:mod:`fixtures_daemons.base.namespaces`) and ``reset()`` need a few
operations on a daemon: does it answer, empty it, create and drop a named
space (an SQL database, a vhost, a chroot), claim a numbered one (a Redis
database), delete the keys under a prefix. Every daemon has one
:class:`Admin` subclass, built from an :class:`~fixtures_daemons.Endpoint`,
that implements the operations the daemon has; the others fail with a
:class:`~fixtures_daemons.MisuseError` that says the daemon has no such
thing.

Protocol code written by hand (``_pgwire``, ``_resp``) is allowed here
only for our own servers with trust authentication, where a benchmark
shows the gain over a client library; anything that faces a server we did
not start goes through the daemon's real client library, an optional
extra. See doc/source/design.rst.
"""

from __future__ import annotations

import typing
import uuid

from fixtures_daemons.base.endpoint import Endpoint, redact
from fixtures_daemons.errors import MisuseError, ServerError
from fixtures_daemons.process.probes import Tcp, UnixSocket

__all__ = ["Admin"]


class Admin:
    """Administrative access to one daemon, at ``endpoint``.

    :param endpoint: the whole daemon's endpoint (not a namespace's).
    :param name: the daemon's name, for error messages.
    :param timeout: the bound of one operation, in seconds.
    """

    def __init__(self, endpoint: Endpoint, name: str = "", timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.name = name
        self.timeout = timeout

    def _lacks(self, call: str, what: str) -> typing.NoReturn:
        raise MisuseError(self.name, call, "%s has no %s" % (self.name or "this daemon", what))

    # -- every daemon ----------------------------------------------------------

    def answers(self) -> bool:
        """True when the daemon answers: used as a readiness probe and to
        check a daemon that a fixture attaches to. This default only checks
        that its main port (else its main socket) accepts a connection,
        which a hung daemon still does: a daemon's admin should make a real
        request."""
        endpoint = self.endpoint
        if endpoint.port is not None:
            return Tcp(endpoint.host, endpoint.port).ready()
        if endpoint.socket:
            return UnixSocket(endpoint.socket).ready()
        return True

    def check_server(self, source: str) -> None:
        """For a server the library did not start: raise
        :class:`~fixtures_daemons.ServerError` saying why it cannot be used
        (it does not answer, refuses the credentials, ...); ``source`` is
        what named it. The server admins of the daemons say precisely why."""
        if not self.answers():
            raise ServerError(
                self.name,
                source,
                redact(self.endpoint.url),
                "it does not answer within %.1f s" % self.timeout,
            )

    def new_database_name(self) -> str:
        """The name of a new database (``test_<random>``); a server admin
        whose server keeps no comment puts its maker in the name."""
        return "test_" + uuid.uuid4().hex[:12]

    def mark_prefix(self, prefix: str, number: int = 0) -> None:
        """Record that this process owns the key prefix ``prefix`` (where
        the daemon keeps such records: a server the library did not start);
        nothing by default."""

    def unmark_prefix(self, prefix: str, number: int = 0) -> None:
        """Forget :meth:`mark_prefix`'s record; nothing by default."""

    #: The servers (admin class, URL) this process has swept already.
    _swept: typing.ClassVar[set[tuple[str, str]]] = set()

    def sweep(self) -> list[str]:
        """Remove, once per process and server, what dead makers left there
        (:meth:`leftovers`); return its names."""
        key = (type(self).__name__, self.endpoint.url)
        if key in Admin._swept:
            return []
        Admin._swept.add(key)
        return self.leftovers(remove=True)

    def leftovers(self, remove: bool = False, templates: bool = False) -> list[str]:
        """On a server the library did not start: the namespaces fixtures
        left there (their creators are dead), and with ``templates`` the
        template databases kept for later runs; removed with ``remove``."""
        self._lacks("leftovers()", "leftovers on servers it did not start")

    def flush(self) -> None:
        """Empty the whole daemon (every database, every key)."""
        self._lacks("flush()", "way to be emptied")

    # -- named spaces: SQL databases, vhosts, chroots --------------------------

    def database_exists(self, name: str) -> bool:
        self._lacks("database_exists()", "databases")

    def create_database(self, name: str, template: str | None = None) -> None:
        """Create the space ``name``, a copy of ``template`` if given."""
        self._lacks("create_database()", "databases")

    def drop_database(self, name: str) -> None:
        """Drop the space ``name`` if it exists, even while clients use it."""
        self._lacks("drop_database()", "databases")

    # -- a pool of named spaces made ahead (see base/namespaces.py) ------------

    #: True when the daemon can make named spaces ahead and hand one over
    #: atomically (:meth:`create_pooled`, :meth:`claim_database`,
    #: :meth:`mark_database`, :meth:`marked_databases`, :meth:`retire_database`).
    pools_databases: typing.ClassVar[bool] = False

    def for_background(self) -> Admin:
        """An admin for work done in a background thread: one that does
        not wait behind the test's own requests (a connection of its own)."""
        return self

    def create_pooled(self, name: str, template: str | None = None) -> None:
        """Create the space ``name`` for a pool, a copy of ``template``: no
        client can use it before it is claimed."""
        self._lacks("create_pooled()", "pool of databases")

    def claim_database(self, pooled: str, name: str, owner: str) -> bool:
        """Give the pool's space ``pooled`` the name ``name``, open it to
        clients and mark it as ``owner``'s, atomically; False when it is
        gone (someone else claimed or removed it)."""
        self._lacks("claim_database()", "pool of databases")

    def mark_database(self, name: str, owner: str) -> None:
        """Mark the space ``name`` as ``owner``'s (see
        :meth:`marked_databases`)."""
        self._lacks("mark_database()", "pool of databases")

    def marked_databases(self, prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
        """The spaces whose name starts with one of ``prefixes`` or that
        carry an owner's mark: (name, mark, "" if none)."""
        self._lacks("marked_databases()", "pool of databases")

    def retire_database(self, name: str, trash: str) -> None:
        """Refuse new clients of the space ``name``, end the open ones, wait
        for them to go, and rename it ``trash`` (to be dropped later; the
        name is free again)."""
        self._lacks("retire_database()", "pool of databases")

    # -- numbered spaces: Redis databases --------------------------------------

    def database_count(self) -> int:
        """How many numbered spaces there are (0: none)."""
        return 0

    def claim_number(self, number: int, token: str) -> bool:
        """Claim the numbered space ``number`` for ``token``, atomically;
        False if someone else holds it."""
        self._lacks("claim_number()", "numbered databases")

    def release_number(self, number: int, token: str) -> None:
        """Empty ``number`` and release it if ``token`` holds it."""
        self._lacks("release_number()", "numbered databases")

    def flush_number(self, number: int) -> None:
        """Empty the numbered space ``number``."""
        self._lacks("flush_number()", "numbered databases")

    # -- key prefixes ----------------------------------------------------------

    def delete_prefixed(self, prefix: str, number: int = 0) -> bool:
        """Delete every key that starts with ``prefix``; False when the
        daemon cannot list its keys (memcached), so the caller must move to
        a new prefix instead."""
        return False
