"""EtcdFixture, with the real etcd and etcd3gw (its HTTP gateway client)."""

from __future__ import annotations

import os
import shutil
import socket
import typing

from etcd3gw import exceptions as etcd_errors
from etcd3gw.client import Etcd3Client

from fixtures_daemons import (
    AdminError,
    DaemonExited,
    DaemonFixture,
    NotOwnedError,
    PortUnavailable,
    StartupTimeout,
    reserve_port,
)
from fixtures_daemons.daemons.etcd import EtcdFixture, EtcdMember, prefix_end
from fixtures_daemons.process.ports import PortFixture
from fixtures_daemons.process.waiting import Deadline
from tests import daemon_base, test_cli


def client(daemon: EtcdFixture | EtcdMember) -> Etcd3Client:
    if isinstance(daemon, EtcdMember):
        host, port = daemon.fixture.host, daemon.client_port
    else:
        host, port = daemon.host, daemon.port
    return Etcd3Client(host=host, port=port, timeout=10, api_path="/v3/")


def put(daemon: EtcdFixture | EtcdMember, key: str, value: str) -> None:
    c = client(daemon)
    try:
        c.put(key, value)
    finally:
        c.session.close()


def get(daemon: EtcdFixture | EtcdMember, key: str) -> str | None:
    c = client(daemon)
    try:
        values = c.get(key)
    finally:
        c.session.close()
    return values[0].decode() if values else None  # type: ignore[union-attr]


class TestEtcd(daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase):
    daemon_class = EtcdFixture

    def write(self, fixture: EtcdFixture, key: str, value: str) -> None:
        put(fixture, key, value)

    def read(self, fixture: EtcdFixture, key: str) -> str | None:
        return get(fixture, key)

    def assertCannotConnect(self, fixture: EtcdFixture) -> None:
        c = client(fixture)
        try:
            self.assertRaises(etcd_errors.ConnectionFailedError, c.status)
        finally:
            c.session.close()

    # -- etcd specifics --------------------------------------------------------

    def test_urls_ports_and_settings(self) -> None:
        daemon = self.useFixture(EtcdFixture())
        own = "FIXTURES_DAEMONS_ETCD_"
        http_url = "http://127.0.0.1:%d" % daemon.port
        self.assertEqual("etcd://127.0.0.1:%d" % daemon.port, daemon.url)
        self.assertEqual(http_url, daemon.http_url)
        self.assertEqual([http_url], daemon.endpoints)
        self.assertEqual(http_url, daemon.env[own + "HTTP_URL"])
        self.assertEqual(http_url, daemon.env[own + "ENDPOINTS"])
        self.assertEqual(str(daemon.ports["peer"]), daemon.env[own + "PEER_PORT"])
        self.assertEqual(["client", "peer"], list(daemon.ports))
        # The peer port is served too, on loopback.
        addresses = daemon_base.listening_addresses(daemon_base.pid_of(daemon))
        self.assertIn(("127.0.0.1", daemon.ports["peer"], "tcp"), addresses)
        # Test-speed settings, and its data in the private temp dir.
        assert daemon.process is not None
        command = daemon.process.command
        self.assertIn("--heartbeat-interval=2", command)
        self.assertIn("--snapshot-count=1000", command)
        self.assertIn("--data-dir=" + os.path.join(daemon.temp_dir, "etcd1"), command)
        self.assertTrue(os.path.isdir(os.path.join(daemon.temp_dir, "etcd1", "member")))
        [member] = daemon.members
        self.assertEqual((1, daemon.port), (member.index, member.client_port))

    def test_settings_override(self) -> None:
        daemon = self.useFixture(EtcdFixture(settings={"snapshot-count": "50"}))
        assert daemon.process is not None
        self.assertIn("--snapshot-count=50", daemon.process.command)
        self.assertNotIn("--snapshot-count=1000", daemon.process.command)
        self.write(daemon, "key", "value")
        self.assertEqual("value", self.read(daemon, "key"))

    def test_admin(self) -> None:
        daemon = self.useFixture(EtcdFixture())
        admin = daemon.admin
        for key in ("a/1", "a/2", "b/1"):
            self.write(daemon, key, "v")
        self.assertEqual((3, 2), (admin.count(), admin.count("a/")))  # type: ignore[attr-defined]
        self.assertTrue(admin.delete_prefixed("a/"))
        self.assertEqual((None, "v"), (self.read(daemon, "a/1"), self.read(daemon, "b/1")))
        error = self.assertRaises(AdminError, admin.request, "/v3/kv/range", {"key": "!"})
        self.assertIn("/v3/kv/range", str(error))
        self.assertIn("HTTP 400", str(error))
        self.assertEqual(b"a0", prefix_end(b"a/"))
        self.assertEqual(b"b", prefix_end(b"a\xff"))
        self.assertEqual(b"\0", prefix_end(b"\xff"))

    def test_peer_port_pinned(self) -> None:
        with PortFixture() as reservation:
            peer = reservation.port
        daemon = self.useFixture(EtcdFixture(peer_port=peer))
        self.assertEqual(peer, daemon.ports["peer"])
        self.assertEqual(["client", "peer"], list(daemon.ports))
        self.write(daemon, "key", "value")
        self.assertEqual("value", self.read(daemon, "key"))


class NeverJoins(EtcdFixture):
    """Member 3 belongs to another cluster (another token): the other two
    refuse it, so it never joins."""

    def member_command_line(self, member: EtcdMember) -> list[str]:
        command = super().member_command_line(member)
        if member.index == 3:
            command.append("--initial-cluster-token=some-other-cluster")
        return command


class DiesAtBoot(EtcdFixture):
    """Member 2 exits at once (a setting it refuses)."""

    def member_command_line(self, member: EtcdMember) -> list[str]:
        command = super().member_command_line(member)
        if member.index == 2:
            command.append("--election-timeout=7")
        return command


class TestEtcdCluster(daemon_base.DaemonTestCase):
    """``cluster=True``: three members, each on its own reserved ports."""

    def assertClusterGone(self, daemon: EtcdFixture) -> None:
        trees = [daemon_base.process_tree(m.process.pid or 0) for m in daemon.members if m.process]
        self.assertEqual(3, len(trees))
        temp_dir, ports = daemon.temp_dir, list(daemon.ports.values())
        daemon.cleanUp()
        for tree in trees:
            self.assertGone(*tree)
        self.assertDirGone(temp_dir)
        for port in ports:
            reserve_port("127.0.0.1", port).release()

    def test_cluster(self) -> None:
        daemon = self.startManually(EtcdFixture(cluster=True, share=True))
        one, two, three = members = daemon.members
        self.assertEqual([1, 2, 3], [m.index for m in members])
        self.assertEqual(daemon.port, one.client_port)
        self.assertEqual(6, len(set(daemon.ports.values())))
        self.assertEqual(
            ",".join(m.url for m in members), daemon.env["FIXTURES_DAEMONS_ETCD_ENDPOINTS"]
        )
        self.assertEqual(
            str(three.peer_port), daemon.env["FIXTURES_DAEMONS_ETCD_MEMBER3_PEER_PORT"]
        )
        uids = set()
        for member in members:
            assert member.process is not None and member.process.pid is not None
            for ip, _, kind in daemon_base.listening_addresses(member.process.pid):
                self.assertEqual("127.0.0.1", ip, kind)
            uids.add(daemon_base.process_tree(member.process.pid)[0].uids().real)
            self.assertTrue(member.admin().answers(), member)
        self.assertEqual({os.geteuid()}, uids)
        # One cluster: written through member 1, read through the others.
        put(one, "key", "written-on-1")
        self.assertEqual(["written-on-1"] * 2, [get(two, "key"), get(three, "key")])

        # A member down: the other two still have a quorum.
        old = two.process.pid if two.process else None
        with two.stopped():
            self.assertFalse(two.admin(timeout=1).answers())
            put(three, "key", "during-the-outage")
            self.assertEqual("during-the-outage", get(one, "key"))
        self.assertNotEqual(old, two.process.pid if two.process else None)
        self.assertEqual("during-the-outage", get(two, "key"))  # caught up
        with daemon.stopped():  # member 1, the fixture's own process
            put(two, "key", "member-1-down")
            self.assertEqual("member-1-down", get(three, "key"))
        self.assertEqual("member-1-down", get(one, "key"))

        # A fixture attached to the shared cluster: a key prefix, and the
        # members it did not start cannot be stopped.
        attached = self.startManually(EtcdFixture())
        self.assertTrue(attached.attached)
        self.assertEqual(daemon.endpoints, attached.endpoints)
        put(attached, attached.key_prefix + "key", "attached")
        self.assertEqual("attached", get(three, attached.key_prefix + "key"))
        self.assertRaises(NotOwnedError, lambda: attached.members[1].stopped().__enter__())
        attached.reset()
        self.assertIsNone(get(one, attached.key_prefix + "key"))
        self.assertEqual("member-1-down", get(one, "key"))
        attached.cleanUp()
        daemon.reset()
        self.assertIsNone(get(three, "key"))
        self.assertClusterGone(daemon)

    def test_member_never_joins(self) -> None:
        temp_root, tagged = self.ownTempRoot(), self.taggedPids()
        daemon = NeverJoins(cluster=True, timeout=3, temp_root=temp_root)
        deadline = Deadline(20)
        error = self.assertSetUpRaises(StartupTimeout, daemon)
        self.assertFalse(deadline.expired())
        self.assertEqual(3, error.timeout)
        self.assertIn("etcd3", str(error))
        self.assertIn("3-member etcd cluster", str(error))
        self.assertNothingLeft(temp_root, tagged)
        for port in daemon.ports.values():
            reserve_port("127.0.0.1", port).release()

    def test_member_exits_at_boot(self) -> None:
        temp_root, tagged = self.ownTempRoot(), self.taggedPids()
        daemon = DiesAtBoot(cluster=True, temp_root=temp_root)
        deadline = Deadline(20)
        error = self.assertSetUpRaises(DaemonExited, daemon)
        self.assertFalse(deadline.expired())
        self.assertEqual("etcd-etcd2", error.name)
        self.assertIn("--election-timeout[7ms] should be at least", error.log_tail)
        self.assertNothingLeft(temp_root, tagged)


class BrokenEtcd(EtcdFixture):
    def prepare(self) -> None:
        super().prepare()
        snap = os.path.join(self.path("etcd1"), "member", "snap")
        os.makedirs(snap, 0o700)
        with open(os.path.join(snap, "db"), "wb") as f:
            f.write(b"not a bolt database" * 512)


class TestEtcdBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = EtcdFixture
    package = "etcd-server"
    # etcd prints an unknown option's error above 20 lines of usage; this
    # one it logs alone.
    rejected = {"settings": {"election-timeout": "1"}}
    complaint = "--election-timeout[1ms] should be at least as 5 times as --heartbeat-interval"
    crash_complaint = "failed to open database"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenEtcd(**kwargs)

    def test_peer_port_taken_by_another_program(self) -> None:
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        error = self.assertSetUpRaises(PortUnavailable, self.make(peer_port=port))
        self.assertEqual(port, error.port)
        self.assertIn("peer", str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)


class TestEtcdPifpaf(test_cli.CliTestCase):
    """``-e PIFPAF`` exports what ``pifpaf run etcd`` does."""

    environments = test_cli.TestPifpafCompatibility.environments
    normalise = staticmethod(test_cli.TestPifpafCompatibility.normalise)
    assertSameExports = test_cli.TestPifpafCompatibility.assertSameExports

    def test_pifpaf_exports(self) -> None:
        self.pifpaf = self.pifpafCommand()
        if shutil.which("etcdctl") is None:
            self.skipTest("pifpaf's etcd driver runs etcdctl (Debian: etcd-client)")
        port = self.useFixture(PortFixture()).port
        peer = self.useFixture(PortFixture()).port
        theirs, ours = self.environments(
            "etcd", ["--port", str(port), "--peer-port", str(peer)], []
        )
        self.assertEqual("etcd://localhost:{port}", theirs["PIFPAF_URL"])
        self.assertEqual("http://localhost:{port}", theirs["PIFPAF_HTTP_URL"])
        self.assertEqual("3", theirs["ETCDCTL_API"])
        self.assertSameExports(theirs, ours)

    def test_etcdctl_under_run(self) -> None:
        etcdctl = shutil.which("etcdctl")
        if etcdctl is None:
            self.skipTest("etcdctl is not installed (Debian: etcd-client)")
        script = '"$0" put greeting hello >/dev/null && "$0" get --print-value-only greeting'
        result = self.cli("run", "etcd", "--", "sh", "-c", script, etcdctl)
        self.assertStatus(0, result)
        self.assertEqual("hello\n", result.stdout)

    def test_cluster_exports(self) -> None:
        env = self.runDump("-e", "PIFPAF", "run", "etcd", "--cluster")
        ports = [env["PIFPAF_ETCD_PORT"]] + [
            env["PIFPAF_ETCD_MEMBER%d_CLIENT_PORT" % i] for i in (2, 3)
        ]
        self.assertEqual(
            ",".join("http://localhost:%s" % p for p in ports), env["ETCDCTL_ENDPOINTS"]
        )
        self.assertEqual("etcd://localhost:%s" % ports[0], env["PIFPAF_URL"])
        self.assertEqual("http://localhost:%s" % ports[0], env["PIFPAF_HTTP_URL"])
        self.assertEqual("3", env["ETCDCTL_API"])
