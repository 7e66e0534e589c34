"""etcd: one member, or a three-member cluster, killed at cleanUp.

A single etcd's own boot (its bbolt database and its 64 MB write-ahead
log, created on every start) is most of a fixture's time: there is no
separate initialisation step to cache, so etcd has no template. The
cluster's extra members are :class:`~fixtures_daemons.ProcessFixture`\\ s
started without waiting in :meth:`EtcdFixture.prepare`, so that the three
boot together while the main process's probe waits for all of them.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import KeyPrefix
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.daemons.etcd_server import EtcdServerAdmin
from fixtures_daemons.errors import AdminError, DaemonExited
from fixtures_daemons.process.fixture import ProcessFixture
from fixtures_daemons.process.probes import ATTEMPT_TIMEOUT, Probe

__all__ = ["EtcdFixture", "EtcdResource", "EtcdAdmin", "EtcdMember"]

#: How many members ``cluster=True`` starts.
CLUSTER_SIZE = 3


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with ``prefix`` (etcd's
    ``range_end`` for a prefix)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every key


def _http_host(host: str) -> str:
    return "[%s]" % host if ":" in host else host


class EtcdAdmin(Admin):
    """One of our etcd servers, through its v3 JSON gateway (HTTP, keys in
    base64) on the endpoint's first (client) port."""

    def request(self, path: str, body: typing.Mapping[str, typing.Any] | None = None) -> typing.Any:
        """``POST path`` with ``body`` as JSON (``GET`` without a body); the
        decoded JSON reply. A reply other than 200 raises
        :class:`~fixtures_daemons.AdminError`; no connection raises
        :exc:`OSError`."""
        import http.client  # here: it would slow every CLI run

        endpoint = self.endpoint
        connection = http.client.HTTPConnection(
            _http_host(endpoint.host), endpoint.port or 0, timeout=self.timeout
        )
        try:
            if body is None:
                connection.request("GET", path)
            else:
                connection.request(
                    "POST",
                    path,
                    json.dumps(body).encode(),
                    {"Content-Type": "application/json"},
                )
            response = connection.getresponse()
            data = response.read()
        except http.client.HTTPException as exc:
            raise AdminError(self.name, path, "%s: %s" % (type(exc).__name__, exc)) from exc
        finally:
            connection.close()
        text = data.decode("utf-8", "replace")
        if response.status != 200:
            raise AdminError(self.name, path, "HTTP %d: %s" % (response.status, text.strip()))
        try:
            return json.loads(text) if text else {}
        except ValueError as exc:
            raise AdminError(self.name, path, "not JSON: %r" % text[:200]) from exc

    def answers(self) -> bool:
        """``GET /health`` says ``{"health":"true"}``: the member knows a
        leader and serves a read."""
        try:
            reply = self.request("/health")
        except (OSError, AdminError):
            return False
        return isinstance(reply, dict) and reply.get("health") == "true"

    def delete_range(self, key: bytes, range_end: bytes) -> int:
        """Delete the keys from ``key`` to ``range_end`` (excluded); how
        many there were."""
        reply = self.request("/v3/kv/deleterange", {"key": _b64(key), "range_end": _b64(range_end)})
        return int(reply.get("deleted", 0))

    def flush(self) -> None:
        self.delete_range(b"\0", b"\0")  # from the first key to the end

    def delete_prefixed(self, prefix: str, number: int = 0) -> bool:
        raw = prefix.encode()
        self.delete_range(raw, prefix_end(raw))
        return True

    def count(self, prefix: str = "") -> int:
        """How many keys start with ``prefix`` (every key when empty)."""
        raw = prefix.encode() or b"\0"
        end = prefix_end(raw) if prefix else b"\0"
        reply = self.request(
            "/v3/kv/range", {"key": _b64(raw), "range_end": _b64(end), "count_only": True}
        )
        return int(reply.get("count", 0))


class EtcdMember:
    """One member of an :class:`EtcdFixture`'s cluster (the only one
    without ``cluster=True``).

    :ivar index: 1, 2 or 3; member 1 is the fixture's main process, whose
        client port is the fixture's ``port``.
    :ivar name: its etcd name (``etcd1``...).
    :ivar client_port: its client port.
    :ivar peer_port: its peer port.
    """

    def __init__(self, fixture: EtcdFixture, index: int, client_port: int, peer_port: int) -> None:
        self.fixture = fixture
        self.index = index
        self.name = "etcd%d" % index
        self.client_port = client_port
        self.peer_port = peer_port
        #: The ProcessFixture of members 2 and 3 (member 1's is the
        #: fixture's ``process``); None when the fixture did not start them.
        self.own_process: ProcessFixture | None = None

    def __repr__(self) -> str:
        return "<EtcdMember %s %s>" % (self.name, self.url)

    @property
    def url(self) -> str:
        """Its client URL, ``http://host:port``."""
        return "http://%s:%d" % (_http_host(self.fixture.host), self.client_port)

    @property
    def peer_url(self) -> str:
        return "http://%s:%d" % (_http_host(self.fixture.host), self.peer_port)

    @property
    def process(self) -> ProcessFixture | None:
        """The process running it, when the fixture started it."""
        return self.fixture.process if self.index == 1 else self.own_process

    @property
    def data_dir(self) -> str:
        return self.fixture.path(self.name)

    def admin(self, timeout: float | None = None) -> EtcdAdmin:
        """An admin that talks to this member."""
        endpoint = Endpoint(
            scheme="http", host=self.fixture.host, ports={"client": self.client_port}
        )
        return EtcdAdmin(endpoint, self.fixture.daemon_name, timeout or self.fixture.timeout)

    def _own(self, call: str) -> ProcessFixture:
        if self.own_process is None:
            # Raises NotOwnedError: the fixture did not start its daemon.
            self.fixture._own_process("members[%d].%s" % (self.index - 1, call))
        assert self.own_process is not None
        return self.own_process

    def stopped(self) -> typing.ContextManager[None]:
        """Stop this member for the with-block (its data kept), then start
        it again and wait until it answers ``/health``. The others keep
        running: with three members, the cluster keeps its quorum."""
        if self.index == 1:
            return self.fixture.stopped()
        return self._own("stopped()").stopped(self.fixture.restart_signal)

    def paused(self) -> typing.ContextManager[None]:
        """Freeze this member (SIGSTOP) for the with-block."""
        if self.index == 1:
            return self.fixture.paused()
        return self._own("paused()").paused()


class _MembersHealthy(Probe):
    """Every member in ``members`` answers ``/health`` with true (so the
    cluster has a leader and each member has joined it). A member started
    beside the one being waited for that exits raises
    :class:`~fixtures_daemons.DaemonExited` at once, with its log."""

    def __init__(self, members: typing.Sequence[EtcdMember], timeout: float) -> None:
        self.members = list(members)
        self.admins = [member.admin(timeout) for member in self.members]

    def ready(self) -> bool:
        for member, admin in zip(self.members, self.admins, strict=True):
            process = member.own_process
            popen = process.process if process is not None else None
            if process is not None and popen is not None and popen.poll() is not None:
                raise DaemonExited(
                    process.name, popen.returncode, process.command, process.log_tail()
                )
            if not admin.answers():
                self.last_error = "%s (%s) has not answered /health with true yet" % (
                    member.name,
                    member.url,
                )
                return False
        return True

    def describe(self) -> str:
        if len(self.members) == 1:
            return 'GET %s/health answering {"health":"true"}' % self.members[0].url
        return "every member of the %d-member etcd cluster (%s) answering /health with true" % (
            len(self.members),
            ", ".join(member.url for member in self.members),
        )


def _port_name(index: int, kind: str) -> str:
    return kind if index == 1 else "member%d_%s" % (index, kind)


class EtcdFixture(DaemonFixture):
    """An etcd server on loopback (client and peer URLs on reserved ports),
    or with ``cluster=True`` a three-member cluster.

    It is ready when ``GET /health`` answers ``{"health":"true"}`` (every
    member's, for a cluster: all have joined and there is a leader).
    cleanUp kills it (its data is thrown away); :meth:`stopped` stops it
    with SIGTERM and the data is back after the restart. Test-speed
    settings: fast raft timers, a small snapshot count, and
    ``--unsafe-no-fsync`` on an etcd that has it (3.5 and later) unless
    ``durable``.

    :param cluster: start three members (each on its own client and peer
        ports) instead of one; the fixture's endpoint is member 1's, and
        ``members`` lists all three, each with its own ``stopped()``.
    :param peer_port: pin the (member 1) peer port (the default reserves a
        free one), as pifpaf's ``--peer-port``.

    Attributes: ``url`` (``etcd://host:port``), ``http_url``
    (``http://host:port``, what clients use), ``endpoints`` (every
    member's client URL), ``members`` (:class:`EtcdMember`), ``cluster``,
    ``key_prefix`` (empty, or when attached to a shared server this
    fixture's own prefix: put it in front of your keys).
    """

    daemon_name = "etcd"
    executable = Executable(
        names=("etcd",),
        packages={"Debian/Ubuntu": "etcd-server", "Homebrew": "etcd"},
        env_var="FIXTURES_DAEMONS_ETCD",
    )
    port_names = ("client", "peer")
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGTERM  # a clean stop: its data is back after the restart
    scheme = "etcd"
    server_schemes = ("etcds", "http", "https")
    namespace = KeyPrefix
    admin_class = EtcdAdmin
    server_admin_class = EtcdServerAdmin

    def __init__(
        self, *, cluster: bool = False, peer_port: int | None = None, **kwargs: typing.Any
    ) -> None:
        super().__init__(**kwargs)
        self.cluster = cluster
        self.requested_peer_port = peer_port
        self._members: list[EtcdMember] = []

    @property
    def size(self) -> int:
        """How many members it has."""
        return CLUSTER_SIZE if self.cluster else 1

    # -- hooks -----------------------------------------------------------------

    def needed_ports(self) -> typing.Sequence[str]:
        names = [
            _port_name(index, kind)
            for index in range(1, self.size + 1)
            for kind in ("client", "peer")
        ]
        return names

    def pinned_ports(self) -> dict[str, int | None]:
        return dict(super().pinned_ports(), peer=self.requested_peer_port)

    def _version_tuple(self) -> tuple[int, ...]:
        match = re.search(r"etcd Version: (\d+)\.(\d+)", self.version())
        return (int(match.group(1)), int(match.group(2))) if match else (0, 0)

    def server_settings(self) -> dict[str, str]:
        members = self._members or self._plan_members()
        settings = {
            "initial-cluster": ",".join("%s=%s" % (m.name, m.peer_url) for m in members),
            "initial-cluster-state": "new",
            # Unique, so that members of two fixtures never join each other.
            "initial-cluster-token": "fxd-%s" % self.temp_dir.rstrip("/").rsplit("/", 1)[-1],
            # A single member elects itself after 1 to 10 ticks; a cluster
            # needs heartbeats that a loaded 2-core machine still delivers.
            "heartbeat-interval": "10" if self.cluster else "2",
            "election-timeout": "100" if self.cluster else "20",
            "snapshot-count": "1000",
            "logger": "zap",
            "log-outputs": "stderr",
        }
        if not self.durable and self._version_tuple() >= (3, 5):
            settings["unsafe-no-fsync"] = "true"
        return settings

    def _plan_members(self) -> list[EtcdMember]:
        return [
            EtcdMember(
                self,
                index,
                self.ports[_port_name(index, "client")],
                self.ports[_port_name(index, "peer")],
            )
            for index in range(1, self.size + 1)
        ]

    def member_command_line(self, member: EtcdMember) -> list[str]:
        """The argv of one member (settings last: they win)."""
        command = [
            self.binary,
            "--name=" + member.name,
            "--data-dir=" + member.data_dir,
            "--listen-client-urls=" + member.url,
            "--advertise-client-urls=" + member.url,
            "--listen-peer-urls=" + member.peer_url,
            "--initial-advertise-peer-urls=" + member.peer_url,
        ]
        return command + ["--%s=%s" % item for item in self.settings().items()]

    def prepare(self) -> None:
        self._members = self._plan_members()
        probe_timeout = min(self.timeout, ATTEMPT_TIMEOUT)
        # The other members start now, without waiting: the main process's
        # probe waits for all of them, so the three boot together.
        for member in self._members[1:]:
            process = self.spawn_helper(
                member.name, self.member_command_line(member) + self.extra_args
            )
            member.own_process = process
            # A restart (member.stopped()) waits until it answers again.
            process.probe = _MembersHealthy([member], probe_timeout)

    def command_line(self) -> list[str]:
        return self.member_command_line(self._members[0])

    def probe(self) -> Probe:
        return _MembersHealthy(self._members, min(self.timeout, ATTEMPT_TIMEOUT))

    def build_endpoint(self) -> Endpoint:
        return super().build_endpoint().replace(extra={"members": str(self.size)})

    def _forget(self) -> None:
        super()._forget()
        self._members = []

    # -- what tests use ------------------------------------------------------

    @property
    def key_prefix(self) -> str:
        return self.endpoint.key_prefix

    @property
    def http_url(self) -> str:
        """Member 1's client URL, ``http://host:port``: what clients take."""
        return "http://%s:%d" % (_http_host(self.host), self.port)

    @property
    def members(self) -> list[EtcdMember]:
        """The members, member 1 first (processes only when this fixture
        started them)."""
        if self._members:
            return list(self._members)
        return self._members_of(self.server_endpoint)

    def _members_of(self, endpoint: Endpoint) -> list[EtcdMember]:
        count = int(endpoint.extra.get("members", "1"))
        return [
            EtcdMember(
                self,
                index,
                endpoint.ports.get(_port_name(index, "client"), 0),
                endpoint.ports.get(_port_name(index, "peer"), 0),
            )
            for index in range(1, count + 1)
        ]

    @property
    def endpoints(self) -> list[str]:
        """Every member's client URL, member 1's first."""
        return [member.url for member in self.members]

    # -- exports ---------------------------------------------------------------

    def _client_urls(self, endpoint: Endpoint, host: str) -> list[str]:
        count = int(endpoint.extra.get("members", "1"))
        ports = [endpoint.ports.get(_port_name(i, "client"), 0) for i in range(1, count + 1)]
        return ["http://%s:%d" % (_http_host(host), port) for port in ports]

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        urls = self._client_urls(endpoint, endpoint.host)
        return {"HTTP_URL": urls[0], "ENDPOINTS": ",".join(urls)}

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        return "etcd://localhost:%d" % (endpoint.port or 0)

    def pifpaf_raw_exports(self, endpoint: Endpoint, prefix: str) -> dict[str, str]:
        return {
            "ETCDCTL_API": "3",
            "ETCDCTL_ENDPOINTS": ",".join(self._client_urls(endpoint, "localhost")),
            # pifpaf's driver names it <PREFIX>_HTTP_URL, without the daemon.
            prefix + "_HTTP_URL": "http://localhost:%d" % (endpoint.port or 0),
        }


class EtcdResource(DaemonResource):
    """A testresources manager sharing one :class:`EtcdFixture`."""

    fixture_class = EtcdFixture
