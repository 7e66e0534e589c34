"""ZookeeperFixture, with the real ZooKeeper (run by the JVM) and kazoo."""

from __future__ import annotations

import json
import logging
import os
import pwd
import sys
import typing
import urllib.request
from unittest import mock

import fixtures
import psutil
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from fixtures_daemons import ClientLibraryMissing, DaemonFixture, ExecutableNotFound
from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.daemons.zookeeper import CLASSPATH_ENV, ZookeeperFixture, find_classpath
from fixtures_daemons.process.ports import PortFixture
from tests import daemon_base, test_cli


def client(daemon: ZookeeperFixture, timeout: float = 10.0) -> KazooClient:
    """A started kazoo client on what ``daemon`` owns (its chroot, if any)."""
    zk = KazooClient(hosts=daemon.hosts, timeout=10.0, connection_retry={"max_tries": 0})
    zk.start(timeout=timeout)
    return zk


class Connected:
    def __init__(self, daemon: ZookeeperFixture) -> None:
        self.zk = client(daemon)

    def __enter__(self) -> KazooClient:
        return self.zk

    def __exit__(self, *exc: object) -> None:
        self.zk.stop()
        self.zk.close()


def java_processes_of(temp_dir: str) -> list[psutil.Process]:
    """Live JVMs whose command line names ``temp_dir``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(temp_dir in arg for arg in cmdline) and process.status() != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


class TestZookeeper(
    daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    daemon_class = ZookeeperFixture

    def write(self, fixture: ZookeeperFixture, key: str, value: str) -> None:
        with Connected(fixture) as zk:
            path = "/" + key
            if zk.exists(path):
                zk.set(path, value.encode())
            else:
                zk.create(path, value.encode())

    def read(self, fixture: ZookeeperFixture, key: str) -> str | None:
        with Connected(fixture) as zk:
            try:
                value, _ = zk.get("/" + key)
            except NoNodeError:
                return None
        return typing.cast(bytes, value).decode()

    def assertCannotConnect(self, fixture: ZookeeperFixture) -> None:
        quiet = logging.getLogger("tests.test_zookeeper.kazoo")  # its refused connections
        quiet.propagate = False
        quiet.addHandler(logging.NullHandler())
        zk = KazooClient(hosts=fixture.hosts, connection_retry={"max_tries": 0}, logger=quiet)
        try:
            self.assertRaises(KazooTimeoutError, zk.start, timeout=0.5)
        finally:
            zk.stop()
            zk.close()

    # -- ZooKeeper specifics ---------------------------------------------------

    def test_url_hosts_and_config(self) -> None:
        daemon = self.useFixture(ZookeeperFixture())
        self.assertEqual("zookeeper://127.0.0.1:%d" % daemon.port, daemon.url)
        self.assertEqual("127.0.0.1:%d" % daemon.port, daemon.hosts)
        self.assertEqual("", daemon.chroot)
        self.assertEqual(daemon.hosts, daemon.env["FIXTURES_DAEMONS_ZOOKEEPER_HOSTS"])
        self.assertEqual("", daemon.env["FIXTURES_DAEMONS_ZOOKEEPER_CHROOT"])
        self.assertEqual({"main"}, set(daemon.ports))  # no admin server by default
        with open(daemon.config_path) as f:
            config = dict(line.rstrip("\n").split("=", 1) for line in f)
        self.assertEqual(os.path.join(daemon.temp_dir, "data"), config["dataDir"])
        self.assertEqual("127.0.0.1", config["clientPortAddress"])
        self.assertEqual("false", config["admin.enableServer"])
        self.assertEqual("no", config["forceSync"])
        # The JVM, run directly on the main class: no zkServer.sh, no JMX port.
        cmdline = psutil.Process(daemon_base.pid_of(daemon)).cmdline()
        self.assertEqual(daemon.binary, cmdline[0])
        self.assertEqual(
            ["org.apache.zookeeper.server.ZooKeeperServerMain", daemon.config_path], cmdline[-2:]
        )
        self.assertFalse([arg for arg in cmdline if "jmxremote" in arg])

    def test_nothing_written_outside_the_temp_dir(self) -> None:
        daemon = self.useFixture(ZookeeperFixture())
        self.write(daemon, "key", "value")
        user = pwd.getpwuid(self.expectedUser(daemon)).pw_name
        pid = daemon_base.pid_of(daemon)
        # The JVM's perf data file would be /tmp/hsperfdata_<user>/<pid>.
        self.assertFalse(os.path.exists("/tmp/hsperfdata_%s/%d" % (user, pid)))
        self.assertTrue(os.listdir(os.path.join(daemon.temp_dir, "data", "version-2")))

    def test_chroot_isolation(self) -> None:
        server = self.useFixture(ZookeeperFixture(share=True))
        a = self.startManually(ZookeeperFixture())
        b = self.useFixture(ZookeeperFixture())
        self.assertTrue(a.attached and b.attached)
        self.assertNotEqual(a.chroot, b.chroot)
        self.assertEqual("/" + a.endpoint.database, a.chroot)
        self.assertEqual("127.0.0.1:%d%s" % (server.port, a.chroot), a.hosts)
        self.assertEqual("zookeeper://127.0.0.1:%d%s" % (server.port, a.chroot), a.url)
        self.assertEqual(a.hosts, a.env["FIXTURES_DAEMONS_ZOOKEEPER_HOSTS"])
        self.assertEqual(a.chroot, a.env["FIXTURES_DAEMONS_ZOOKEEPER_CHROOT"])
        with Connected(a) as zk:
            zk.create("/deep/tree/node", b"a", makepath=True)
            self.assertEqual(["deep"], zk.get_children("/"))
        with Connected(b) as zk:
            self.assertEqual([], zk.get_children("/"))  # a's znodes are not b's
        with Connected(server) as zk:
            self.assertEqual(b"a", zk.get(a.chroot + "/deep/tree/node")[0])
        a.cleanUp()  # its chroot goes, with everything under it
        with Connected(server) as zk:
            self.assertIsNone(zk.exists(a.chroot))
            self.assertIsNotNone(zk.exists(b.chroot))
            self.assertIsNotNone(zk.exists("/zookeeper"))

    def test_admin_server(self) -> None:
        daemon = self.useFixture(ZookeeperFixture(admin_server=True))
        self.assertEqual(["main", "admin"], list(daemon.ports))
        admin_port = daemon.ports["admin"]
        self.assertEqual(str(admin_port), daemon.env["FIXTURES_DAEMONS_ZOOKEEPER_ADMIN_PORT"])
        url = "http://127.0.0.1:%d/commands/ruok" % admin_port
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
        self.assertEqual("ruok", answer["command"])
        self.assertIsNone(answer["error"])
        addresses = daemon_base.listening_addresses(daemon_base.pid_of(daemon))
        self.assertIn(("127.0.0.1", admin_port, "tcp"), addresses)
        self.assertLoopbackOnly(daemon)

    def test_no_jvm_left_after_cleanup(self) -> None:
        daemon = self.startManually(ZookeeperFixture(admin_server=True))
        temp_dir = daemon.temp_dir
        self.assertEqual(1, len(java_processes_of(temp_dir)))
        with daemon.stopped():
            self.assertEqual([], java_processes_of(temp_dir))
        self.assertEqual(1, len(java_processes_of(temp_dir)))
        self.assertCleanedUp(daemon)
        self.assertEqual([], java_processes_of(temp_dir))

    def test_durable(self) -> None:
        daemon = self.useFixture(ZookeeperFixture(durable=True, settings={"tickTime": "500"}))
        with open(daemon.config_path) as f:
            lines = f.read().splitlines()
        self.assertIn("forceSync=yes", lines)
        self.assertIn("tickTime=500", lines)
        self.write(daemon, "key", "value")
        self.assertEqual("value", self.read(daemon, "key"))

    def test_without_kazoo(self) -> None:
        # kazoo is an optional extra: a fixture that starts its own server
        # works without it; what needs znodes says what to install.
        server = self.useFixture(ZookeeperFixture(share=True))
        hidden = dict.fromkeys(
            [name for name in sys.modules if name == "kazoo" or name.startswith("kazoo.")]
        )
        with mock.patch.dict(sys.modules, dict(hidden, kazoo=None)):
            own = self.useFixture(ZookeeperFixture(mode="spawn"))
            self.assertTrue(own.admin.answers())
            error = self.assertRaises(ClientLibraryMissing, own.reset)
            self.assertIn("pip install 'fixtures-daemons[zookeeper]'", str(error))
            self.assertEqual("fixtures-daemons[zookeeper]", error.extra)
            attached = ZookeeperFixture(mode="attach")
            error = self.assertSetUpRaises(ClientLibraryMissing, attached)
            self.assertIn("fixtures-daemons[zookeeper]", str(error))
        self.assertIsNone(server.process.process.poll())


class BrokenZookeeper(ZookeeperFixture):
    def prepare(self) -> None:
        super().prepare()
        with open(self.path("data", "myid"), "w") as f:
            f.write("1\n")
        # A transaction log that is not one: ZooKeeper refuses to load it.
        os.mkdir(self.path("data", "version-2"))
        with open(self.path("data", "version-2", "log.1"), "wb") as f:
            f.write(b"not a transaction log" * 10)
        with open(self.path("data", "version-2", "snapshot.0"), "wb") as f:
            f.write(b"not a snapshot" * 10)
        if self.run_as is not None:
            for root, dirs, files in os.walk(self.path("data")):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), self.run_as.uid, self.run_as.gid)


class TestZookeeperBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = ZookeeperFixture
    package = "zookeeper"
    rejected = {"settings": {"tickTime": "soon"}}
    complaint = "soon"
    crash_complaint = "ZKDatabase.loadDataBase"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenZookeeper(**kwargs)

    def test_jars_missing(self) -> None:
        # java is there, ZooKeeper's jars are not: the error names the
        # zookeeper package, not the JVM's.
        empty = self.scriptsDir()
        error = self.assertSetUpRaises(ExecutableNotFound, self.make(classpath=empty))
        self.assertEqual(empty, error.executable)
        self.assertIn("Debian/Ubuntu: zookeeper", str(error))
        self.assertIn(CLASSPATH_ENV, str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)

    def test_jars_variable_points_nowhere(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(CLASSPATH_ENV, "/nowhere/zookeeper.jar"))
        error = self.assertSetUpRaises(ExecutableNotFound, self.make())
        self.assertEqual(CLASSPATH_ENV, error.env_var)
        self.assertIn("Debian/Ubuntu: zookeeper", str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)

    def test_jars_found(self) -> None:
        jars = find_classpath()
        self.assertTrue(any(os.path.basename(jar).startswith("zookeeper") for jar in jars))
        self.assertTrue(os.path.isabs(find_executable(ZookeeperFixture.executable)))


#: What pifpaf 3.4's ZooKeeper driver exports (read from its source), as
#: TestPifpafCompatibility.normalise() writes them.
PIFPAF_EXPORTS = {
    "PIFPAF_DATA": "{data}",
    "ZOOCFGDIR": "{data}",
    "ZOOCFG": "{ZOOCFG}",
    "ZOO_LOG_DIR": "{ZOO_LOG_DIR}",
    "PIFPAF_ZOOKEEPER_PORT": "{port}",
    "PIFPAF_URL": "zookeeper://localhost:{port}",
    "PIFPAF_ZOOKEEPER_URL": "zookeeper://localhost:{port}",
    "PIFPAF_URLS": "zookeeper://localhost:{port}",
    "PIFPAF_DAEMON": "zookeeper",
    "PIFPAF_PID": "{pid}",
}


class TestZookeeperPifpaf(test_cli.CliTestCase):
    """``fixtures-daemons -e PIFPAF run zookeeper`` exports what pifpaf's
    driver exports."""

    environments = test_cli.TestPifpafCompatibility.environments
    normalise = staticmethod(test_cli.TestPifpafCompatibility.normalise)
    assertSameExports = test_cli.TestPifpafCompatibility.assertSameExports

    def test_pifpaf_exports(self) -> None:
        if daemon_base.IS_ROOT:
            # Against the real pifpaf: it starts ZooKeeper through Debian's
            # zkServer.sh, which works as root.
            self.pifpaf = self.pifpafCommand()
            port = str(self.useFixture(PortFixture()).port)
            theirs, ours = self.environments("zookeeper", ["--port", port], [])
            self.assertEqual(PIFPAF_EXPORTS, theirs)
            self.assertSameExports(theirs, ours)
        else:
            # As an ordinary user pifpaf cannot start ZooKeeper on Debian 12:
            # zkServer.sh writes to its hard-coded /var/log/zookeeper and
            # pifpaf fails ("Program did not open port"). So the comparison
            # is with what its driver's source exports (PIFPAF_EXPORTS, which
            # the root run checks against the real pifpaf).
            path = os.path.join(self.work, "ours.json")
            cli = self.popenCli(
                "-e", "PIFPAF", "run", "zookeeper", "--", sys.executable, "-c",
                test_cli.DUMP_ENV, path,
            )  # fmt: skip
            _, stderr = cli.communicate(timeout=300)
            self.assertEqual(0, cli.returncode, stderr)
            base_env = dict(os.environ)
            ours = {k: v for k, v in self.readJson(path).items() if k not in base_env}
            self.assertSameExports(PIFPAF_EXPORTS, self.normalise(ours, str(cli.pid)))
