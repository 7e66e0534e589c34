"""NATS: a ``nats-server`` on a loopback port, with a password of its own
and JetStream in its private temp dir.

The server's configuration is ``nats.conf`` in the temp dir (mode 0600):
the listen address, one user with a random password (other local users
cannot connect; the password is not on the command line, where ``ps``
would show it), JetStream's store, and no monitoring port unless asked.
Core NATS keeps no messages; JetStream's streams, key-value buckets and
object stores are what ``reset()`` empties.
"""

from __future__ import annotations

import json
import signal
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.credentials import PasswordAuth
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import KeyPrefix
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.errors import AdminError, ClientLibraryMissing
from fixtures_daemons.process.probes import LogPattern, Probe

__all__ = ["NatsFixture", "NatsResource", "NatsAdmin", "SubjectPrefix"]

EXTRA = "fixtures-daemons[nats]"
#: The user clients log in as (its password is random per daemon).

T = typing.TypeVar("T")


def _nats(name: str, request: str) -> typing.Any:
    try:
        import nats  # here: importing it costs about 200 ms
    except ImportError:
        raise ClientLibraryMissing(name, request, "nats", EXTRA) from None
    return nats


def run_coroutine(
    make: typing.Callable[[], typing.Coroutine[typing.Any, typing.Any, T]], timeout: float
) -> T:
    """Run the coroutine ``make()`` to its end, bounded by ``timeout``
    (:exc:`TimeoutError`), from synchronous code: in a new event loop, in
    a thread of its own when this thread already runs one (an asyncio
    test calling ``reset()``).

    BASE: any daemon whose client library is asyncio-only needs this.
    """

    import asyncio  # here: importing it costs every CLI run 20 ms

    async def bounded() -> T:
        try:
            return await asyncio.wait_for(make(), timeout)
        except asyncio.TimeoutError:  # not TimeoutError before Python 3.11
            raise TimeoutError("no answer within %.1f s" % timeout) from None

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bounded())
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, bounded()).result()


class SubjectPrefix(KeyPrefix):
    """A subject prefix of its own, ``fxd-<random>.`` (a subject token:
    ``.``, not a key prefix's ``:``, which NATS subjects and key-value
    keys do not allow); ``reset()`` and cleanUp remove what JetStream
    holds under it."""

    separator = "."


class NatsAdmin(Admin):
    """A NATS server, through nats-py (imported when needed; the ``nats``
    extra), each operation a connection of its own bounded by the
    admin's ``timeout``."""

    def call(
        self,
        request: str,
        work: typing.Callable[[typing.Any], typing.Coroutine[typing.Any, typing.Any, T]],
    ) -> T:
        """Connect, run ``await work(connection)``, close. A refusal or an
        error of the server is an :class:`~fixtures_daemons.AdminError`;
        no connection is an :exc:`OSError`; no answer in time a
        :exc:`TimeoutError`."""
        nats = _nats(self.name, request)
        endpoint = self.endpoint

        async def ignore(error: Exception) -> None:  # nats-py would print them
            pass

        async def session() -> T:
            connection = await nats.connect(
                servers=["nats://%s:%d" % (endpoint.host, endpoint.port or 4222)],
                user=endpoint.user or None,
                password=endpoint.password or None,
                connect_timeout=max(0.1, min(self.timeout, 5.0)),
                allow_reconnect=False,
                # Two attempts, no pause between: 0 would mean "retry forever".
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=ignore,
                name="fixtures-daemons-admin",
            )
            try:
                return await work(connection)
            finally:
                await connection.close()

        try:
            return run_coroutine(session, self.timeout)
        except (OSError, TimeoutError):
            raise
        except Exception as exc:  # nats-py's errors have no common base
            if type(exc).__module__.startswith("nats"):
                raise AdminError(self.name, request, "%s: %s" % (type(exc).__name__, exc)) from exc
            raise

    def answers(self) -> bool:
        """True when a login and a PING get their PONG."""

        async def ping(connection: typing.Any) -> bool:
            await connection.flush(timeout=max(0.1, self.timeout))
            return True

        try:
            return self.call("PING", ping)
        except (OSError, AdminError, TimeoutError):
            return False

    def streams(self) -> list[dict[str, typing.Any]]:
        """Every JetStream stream's configuration (key-value buckets and
        object stores are streams too); empty without JetStream."""

        async def listing(connection: typing.Any) -> list[dict[str, typing.Any]]:
            try:
                infos = await connection.jsm().streams_info()
            except Exception as exc:
                if type(exc).__name__ in ("NoRespondersError", "ServiceUnavailableError"):
                    return []  # JetStream is off
                raise
            return [info.config.as_dict() for info in infos]

        return self.call("listing JetStream streams", listing)

    def flush(self) -> None:
        """Delete every stream (and so every bucket and object store)."""
        names = [config["name"] for config in self.streams()]
        if not names:
            return

        async def delete(connection: typing.Any) -> None:
            manager = connection.jsm()
            for name in names:
                await manager.delete_stream(name)

        self.call("deleting JetStream streams", delete)

    def delete_prefixed(self, prefix: str, number: int = 0) -> bool:
        """Delete what JetStream holds under the subject prefix: the keys
        ``<prefix>...`` of every key-value bucket, the streams whose
        subjects are all under it, and the messages under it of the other
        streams."""
        deletes, purges = [], []
        for config in self.streams():
            name, subjects = config["name"], config.get("subjects") or []
            if name.startswith("KV_"):
                purges.append((name, "$KV.%s.%s>" % (name[3:], prefix)))
            elif subjects and all(s.startswith(prefix) for s in subjects):
                deletes.append(name)
            elif any(_may_match(s, prefix) for s in subjects):
                purges.append((name, prefix + ">"))
        if not (deletes or purges):
            return True

        async def delete(connection: typing.Any) -> None:
            manager = connection.jsm()
            for name in deletes:
                await manager.delete_stream(name)
            for name, subject in purges:
                await manager.purge_stream(name, subject=subject)

        self.call("deleting JetStream data under %s" % prefix, delete)
        return True


def _may_match(pattern: str, prefix: str) -> bool:
    """Whether the stream subject ``pattern`` may hold subjects that start
    with ``prefix`` (one token and a dot)."""
    first = pattern.split(".", 1)[0]
    return first in (">", "*") or pattern.startswith(prefix)


class NatsFixture(PasswordAuth, DaemonFixture):
    """A NATS server (``nats-server``) on loopback, with a user and a
    random password of its own, and JetStream (its store in the private
    temp dir).

    ``settings`` are top-level lines of its configuration file, after
    ours, as NATS writes them (``{"max_payload": "65536"}``; values as
    given, so quote strings). It is ready when it logs ``Server is
    ready``. cleanUp kills it; :meth:`stopped` stops it with SIGTERM and
    JetStream's data is back after the restart. It does not need root:
    under root it runs as ``$FIXTURES_DAEMONS_USER`` or ``nobody``.

    :param anonymous: no authorization at all (any local user can then
        connect).
    :param jetstream: run JetStream (streams, key-value, object store),
        storing in the temp dir.
    :param monitor: serve the HTTP monitoring endpoints (``/varz``...) on
        another reserved loopback port, ``ports["monitor"]``.

    Attributes: ``url`` (``nats://user:password@host:port``: nats-py and
    the Go client take it as it is), ``username``, ``password``,
    ``subject_prefix`` (empty, or when attached to a shared server this
    fixture's own prefix, ``fxd-<random>.``: put it in front of your
    subjects and keys), ``monitor_url``, ``config_path``.
    """

    daemon_name = "nats"
    executable = Executable(
        names=("nats-server",),
        packages={"Debian/Ubuntu": "nats-server", "Homebrew": "nats-server"},
        env_var="FIXTURES_DAEMONS_NATS",
    )
    refuses_root = True  # it has no use for root
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGTERM
    scheme = "nats"
    namespace = SubjectPrefix
    admin_class = NatsAdmin

    def __init__(
        self,
        *,
        jetstream: bool = True,
        monitor: bool = False,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.jetstream = jetstream
        self.monitor = monitor

    # -- hooks -----------------------------------------------------------------

    @property
    def config_path(self) -> str:
        return self.path("nats.conf")

    def needed_ports(self) -> typing.Sequence[str]:
        return ("main", "monitor") if self.monitor else ("main",)

    def server_settings(self) -> dict[str, str]:
        host = self.requested_host
        settings = {"listen": json.dumps("%s:%d" % (host, self.port))}
        if not self.anonymous:
            settings["authorization"] = "{user: %s, password: %s}" % (
                json.dumps(self.requested_username),
                json.dumps(self.server_password),
            )
        if self.jetstream:
            settings["jetstream"] = "{store_dir: %s, max_memory_store: 256MB}" % json.dumps(
                self.path("jetstream")
            )
        if self.monitor:
            settings["http"] = json.dumps("%s:%d" % (host, self.ports["monitor"]))
        return settings

    def prepare(self) -> None:
        if not self.anonymous:
            self.make_password()
        lines = ["%s: %s" % item for item in self.settings().items()]
        self.write_file("nats.conf", "\n".join(lines) + "\n")

    def command_line(self) -> list[str]:
        return [self.binary, "-c", self.config_path]

    def probe(self) -> Probe:
        return LogPattern(r"\[INF\] Server is ready")

    def build_endpoint(self) -> Endpoint:
        return self.with_credential(super().build_endpoint())

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        exports = {"SUBJECT_PREFIX": endpoint.key_prefix}
        if "monitor" in endpoint.ports:
            exports["MONITOR_URL"] = "http://%s:%d" % (endpoint.host, endpoint.ports["monitor"])
        return exports

    # -- what tests use ------------------------------------------------------

    @property
    def subject_prefix(self) -> str:
        return self.endpoint.key_prefix

    @property
    def monitor_url(self) -> str:
        """``http://host:port`` of the monitoring endpoints, or ``""``."""
        port = self.endpoint.ports.get("monitor")
        return "http://%s:%d" % (self.host, port) if port else ""


class NatsResource(DaemonResource):
    """A testresources manager sharing one :class:`NatsFixture`."""

    fixture_class = NatsFixture
