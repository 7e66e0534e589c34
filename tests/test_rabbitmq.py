"""RabbitmqFixture, with the real RabbitMQ and pika.

A broker is not a key-value store, so the contracts' "write" and "read"
are a queue per key: writing purges the durable queue named by the key and
publishes the value as a persistent message (the queue holds the latest
value, as a key holds its latest value); reading gets that message and
puts it back (``None`` when the queue does not exist or is empty). A
durable queue and a persistent message survive :meth:`stopped` (a clean
shutdown); a vhost (an attached fixture's namespace) keeps its queues to
itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
import urllib.parse

import fixtures
import pika  # type: ignore[import-untyped]
import pika.exceptions  # type: ignore[import-untyped]
import psutil

from fixtures_daemons import DaemonFixture
from fixtures_daemons.base.templates import CACHE_ENV
from fixtures_daemons.daemons.rabbitmq import RabbitmqFixture, code_path, rabbitmq_home
from fixtures_daemons.process.ports import PortFixture
from tests import daemon_base
from tests.test_cli import DUMP_ENV, CliTestCase
from tests.test_templates import templates


def connect(url: str) -> pika.BlockingConnection:
    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = 10
    parameters.blocked_connection_timeout = 10
    return pika.BlockingConnection(parameters)


def put(url: str, queue: str, value: str) -> None:
    connection = connect(url)
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        channel.queue_purge(queue)
        channel.basic_publish(
            "",
            queue,
            value.encode(),
            pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        )
    finally:
        connection.close()


def get(url: str, queue: str) -> str | None:
    connection = connect(url)
    try:
        channel = connection.channel()
        try:
            channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == 404:
                return None
            raise
        method, _, body = channel.basic_get(queue)
        if method is None:
            return None
        channel.basic_nack(method.delivery_tag, requeue=True)
        return typing.cast(bytes, body).decode()
    finally:
        connection.close()


class TestRabbitmq(
    daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    daemon_class = RabbitmqFixture

    def write(self, fixture: RabbitmqFixture, key: str, value: str) -> None:
        put(fixture.url, key, value)

    def read(self, fixture: RabbitmqFixture, key: str) -> str | None:
        return get(fixture.url, key)

    def assertCannotConnect(self, fixture: RabbitmqFixture) -> None:
        self.assertRaises(pika.exceptions.AMQPConnectionError, connect, fixture.url)

    # -- RabbitMQ specifics ------------------------------------------------------

    def test_url_and_exports(self) -> None:
        daemon = self.useFixture(RabbitmqFixture(username="alice", password="s3cr:t"))
        self.assertEqual(
            "amqp://alice:s3cr:t@127.0.0.1:%d/%%2F" % daemon.port, daemon.url
        )  # pika reads the password up to the @
        self.assertEqual("/", daemon.vhost)
        self.assertEqual("fxd@localhost", daemon.nodename)
        prefix = "FIXTURES_DAEMONS_RABBITMQ_"
        self.assertEqual(daemon.nodename, os.environ[prefix + "NODENAME"])
        self.assertEqual(str(daemon.ports["epmd"]), os.environ[prefix + "EPMD_PORT"])
        self.assertEqual("/", os.environ[prefix + "VHOST"])
        # The user the broker was seeded with, and no guest.
        self.write(daemon, "key", "value")
        guest = "amqp://guest:guest@127.0.0.1:%d/%%2F" % daemon.port
        self.assertRaises(pika.exceptions.ProbableAuthenticationError, connect, guest)
        # The broker's own tool reaches the node (it boots a VM: about a second).
        output = daemon.rabbitmqctl("list_queues", "--quiet", "name", "messages")
        self.assertIn("key\t1", output)
        # reset() drops every vhost, and makes "/" again for the user.
        daemon.admin.create_database("other")
        daemon.reset()
        self.assertEqual(["/"], typing.cast(typing.Any, daemon.admin).vhosts())
        self.assertIsNone(self.read(daemon, "key"))
        self.write(daemon, "key", "again")

    def test_own_epmd_and_nothing_left(self) -> None:
        daemon = self.startManually(RabbitmqFixture())
        assert daemon.epmd is not None and daemon.epmd.pid is not None
        epmd = psutil.Process(daemon.epmd.pid)
        node = daemon_base.process_tree(daemon_base.pid_of(daemon))
        self.assertEqual(["epmd"], [p.name() for p in [epmd]])
        self.assertIn("beam.smp", [p.name() for p in node])
        # Its epmd listens on loopback, on its reserved port, and knows the node.
        listening = [(c.laddr.ip, c.laddr.port) for c in epmd.net_connections("inet")]
        self.assertIn(("127.0.0.1", daemon.ports["epmd"]), listening)
        self.assertEqual(self.expectedUser(daemon), epmd.uids().real)
        names = subprocess.run(
            [epmd.exe(), "-port", str(daemon.ports["epmd"]), "-names"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        short = daemon.nodename.split("@")[0]
        self.assertIn("name %s at port %d" % (short, daemon.ports["dist"]), names)
        # The distribution listens on loopback only too.
        self.assertLoopbackOnly(daemon)
        self.assertIn(
            ("127.0.0.1", daemon.ports["dist"], "tcp"),
            daemon_base.listening_addresses(daemon_base.pid_of(daemon)),
        )
        # Its code path: the applications it needs, not all of them.
        apps = os.listdir(daemon.path("lib"))
        self.assertIn("rabbit", {name.rsplit("-", 1)[0] for name in apps})
        plugins = os.path.join(rabbitmq_home(daemon.binary), "plugins")
        self.assertLess(len(apps), len(os.listdir(plugins)) / 2)
        self.assertIn("rabbitmq_management", code_path(plugins, ["rabbitmq_management"]))
        self.assertCleanedUp(daemon)
        self.assertGone(epmd, *node)

    def test_vhosts_isolate_attached_fixtures(self) -> None:
        server = self.useFixture(RabbitmqFixture(share=True))
        a = self.useFixture(RabbitmqFixture())
        b = self.startManually(RabbitmqFixture())
        self.assertTrue(a.attached and b.attached)
        self.assertNotEqual(a.vhost, b.vhost)
        self.assertTrue(a.url.endswith("/" + urllib.parse.quote(a.vhost, safe="")))
        self.assertEqual(b.vhost, os.environ["FIXTURES_DAEMONS_RABBITMQ_VHOST"])
        admin = server.admin
        self.assertTrue(admin.database_exists(b.vhost))
        self.write(a, "jobs", "for a")
        self.write(b, "jobs", "for b")
        self.assertEqual("for a", self.read(a, "jobs"))
        self.assertEqual("for b", self.read(b, "jobs"))
        self.assertIsNone(self.read(server, "jobs"))  # "/" has no such queue
        vhost = b.vhost
        b.cleanUp()
        self.assertFalse(admin.database_exists(vhost))
        self.assertEqual("for a", self.read(a, "jobs"))

    def test_cluster(self) -> None:
        # A prototype of pifpaf's --cluster: three nodes, one epmd, joined.
        daemon = self.startManually(RabbitmqFixture(cluster=True))
        admin = typing.cast(typing.Any, daemon.admin)
        self.assertEqual("3", admin.rpc("length(rabbit_nodes:all_running())."))
        names = [daemon.env["FIXTURES_DAEMONS_RABBITMQ_NODENAME%d" % m] for m in (1, 2, 3)]
        self.assertEqual(daemon.nodename, names[0])
        self.assertEqual(3, len(set(names)))
        # Written through the first node, read through the second.
        self.write(daemon, "jobs", "clustered")
        second = daemon.url.replace(":%d/" % daemon.port, ":%d/" % daemon.ports["amqp2"])
        self.assertEqual("clustered", get(second, "jobs"))
        pifpaf = daemon.exports(prefix="PIFPAF", style="pifpaf")["PIFPAF_URL"]
        self.assertEqual(
            "rabbit://guest:guest@localhost:%d,guest:guest@localhost:%d,"
            "guest:guest@localhost:%d//"
            % (daemon.port, daemon.ports["amqp2"], daemon.ports["amqp3"]),
            pifpaf,
        )
        members = [p for other in daemon.others for p in daemon_base.process_tree(other.pid)]
        self.assertCleanedUp(daemon)
        self.assertGone(*members)


class TestRabbitmqTemplate(daemon_base.DaemonTestCase):
    """The default node boots on a copy of a database made once."""

    def setUp(self) -> None:
        super().setUp()
        self.cache = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(CACHE_ENV, self.cache))

    def test_copies_of_one_database(self) -> None:
        first = self.useFixture(RabbitmqFixture(username="alice", password="pw"))
        [template] = templates(self.cache, "rabbitmq")
        self.assertEqual(
            ["fxd@localhost"],
            [
                n
                for n in os.listdir(os.path.join(template, "data"))
                if not n.startswith("fxd@localhost-")
            ],
        )
        with open(os.path.join(template, "meta.json")) as f:
            self.assertNotIn('"pw"', f.read())  # the password is in the key as a hash
        put(first.url, "key", "first")
        second = self.useFixture(RabbitmqFixture(username="alice", password="pw"))
        self.assertEqual([template], templates(self.cache, "rabbitmq"))
        self.assertIsNone(get(second.url, "key"))  # its own copy, not the first's
        put(second.url, "key", "second")
        self.assertEqual("first", get(first.url, "key"))
        # Another user seeded: another template.
        other = self.useFixture(RabbitmqFixture(username="bob", password="pw2"))
        self.assertEqual(2, len(templates(self.cache, "rabbitmq")))
        put(other.url, "key", "bob")
        self.assertEqual("bob", get(other.url, "key"))

    def test_the_version_never_boots_a_broker(self) -> None:
        # rabbitmq-server boots a broker whatever its arguments, --version
        # too: the template's version comes from rabbitmqadmin, or from the
        # installation's dir when the script itself is the binary.
        first = self.useFixture(RabbitmqFixture())
        script = first.binary
        self.assertEqual("rabbitmq-server", os.path.basename(script))
        self.assertIn(first.version().split()[-1], script)
        second = self.useFixture(RabbitmqFixture(binary=script))
        self.assertEqual(os.path.basename(rabbitmq_home(script)), second.version())
        stray = [
            p.pid
            for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "beam.smp" and "--version" in (p.info["cmdline"] or [])
        ]
        self.assertEqual([], stray)

    def test_a_named_node_boots_on_an_empty_database(self) -> None:
        daemon = self.useFixture(RabbitmqFixture(nodename="mine"))
        self.assertEqual("mine@localhost", daemon.nodename)
        self.assertEqual([], templates(self.cache, "rabbitmq"))
        put(daemon.url, "key", "value")
        self.assertEqual("value", get(daemon.url, "key"))

    def test_a_damaged_template_is_built_again(self) -> None:
        # A temp root of its own: no spare copied ahead (from the template
        # before the damage) to boot from.
        root = self.ownTempRoot()
        self.useFixture(RabbitmqFixture(temp_root=root))
        [template] = templates(self.cache, "rabbitmq")
        with open(os.path.join(template, "data", "fxd@localhost", "schema.DAT"), "wb") as f:
            f.write(b"damaged")
        daemon = self.useFixture(RabbitmqFixture(temp_root=root))  # fails, rebuilds, boots
        put(daemon.url, "key", "value")
        self.assertEqual("value", get(daemon.url, "key"))
        [rebuilt] = templates(self.cache, "rabbitmq")
        with open(os.path.join(rebuilt, "data", "fxd@localhost", "schema.DAT"), "rb") as f:
            self.assertNotEqual(b"damaged", f.read())
        # One epmd for the node, though prepare() ran twice.
        assert daemon.epmd is not None and daemon.epmd.pid is not None
        self.assertEqual(
            [daemon.epmd.pid],
            [
                p.pid
                for p in psutil.process_iter(["name"])
                if p.info["name"] == "epmd" and str(daemon.ports["epmd"]) in " ".join(p.cmdline())
            ],
        )


class BrokenRabbitmq(RabbitmqFixture):
    """A node whose database is not one: mnesia refuses it and the boot stops."""

    def prepare(self) -> None:
        super().prepare()
        os.makedirs(self.path("mnesia", self._node), exist_ok=True)  # copied from the template
        with open(self.path("mnesia", self._node, "schema.DAT"), "wb") as f:
            f.write(b"not a schema")
        if self.run_as:
            for root, dirs, files in os.walk(self.path("mnesia")):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), self.run_as.uid, self.run_as.gid)
            os.chown(self.path("mnesia"), self.run_as.uid, self.run_as.gid)


class TestRabbitmqBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = RabbitmqFixture
    package = "rabbitmq-server"
    rejected = {"settings": {"tcp_listeners": "not_a_listener"}}
    complaint = "not_a_listener"
    crash_complaint = "mnesia"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenRabbitmq(**kwargs)


class TestRabbitmqPifpaf(CliTestCase):
    """``-e PIFPAF`` exports what ``pifpaf run rabbitmq`` exports.

    pifpaf's driver leaves an ``epmd -daemon`` behind (on the machine's
    epmd port): here it runs on a port of its own (``ERL_EPMD_PORT``) and
    that epmd, ours to clean, is killed at the end.
    """

    def setUp(self) -> None:
        super().setUp()
        self.pifpaf = self.pifpafCommand()

    def killPifpafEpmd(self, port: int) -> None:
        """The ``epmd -daemon`` pifpaf's node started on ``port``."""
        for process in psutil.process_iter(["name", "environ"]):
            environ = process.info["environ"] or {}
            if process.info["name"] == "epmd" and environ.get("ERL_EPMD_PORT") == str(port):
                process.kill()
                process.wait(10)

    def test_same_exports_as_pifpaf(self) -> None:
        amqp = self.useFixture(PortFixture()).port
        epmd = self.useFixture(PortFixture()).port
        self.addCleanup(self.killPifpafEpmd, epmd)
        path = os.path.join(self.work, "pifpaf.json")
        base_env = dict(os.environ)
        pifpaf = subprocess.Popen(
            [self.pifpaf, "run", "rabbitmq", "--port", str(amqp), "--"]
            + [sys.executable, "-c", DUMP_ENV, path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.work,
            env=dict(base_env, ERL_EPMD_PORT=str(epmd)),
        )
        output = pifpaf.communicate(timeout=300)[0].decode("utf-8", "replace")
        self.assertEqual(0, pifpaf.returncode, "pifpaf failed:\n" + output)
        theirs = self.normalise(
            {
                k: v
                for k, v in self.readJson(path).items()
                if k not in base_env and k != "ERL_EPMD_PORT"
            },
            str(pifpaf.pid),
        )
        self.assertEqual("rabbit://pifpaf:secret@localhost:{port}//", theirs["PIFPAF_URL"])
        self.assertEqual("pifpaf@localhost", theirs["PIFPAF_RABBITMQ_NODENAME"])

        path = os.path.join(self.work, "ours.json")
        cli = self.popenCli(
            "-e", "PIFPAF", "run", "rabbitmq", "--nodename", "pifpaf",
            "--username", "pifpaf", "--password", "secret",
            "--", sys.executable, "-c", DUMP_ENV, path,
        )  # fmt: skip
        _, stderr = cli.communicate(timeout=300)
        self.assertEqual(0, cli.returncode, stderr.decode("utf-8", "replace"))
        ours = self.normalise(
            {k: v for k, v in self.readJson(path).items() if k not in base_env}, str(cli.pid)
        )
        missing = sorted(set(theirs) - set(ours))
        self.assertEqual([], missing, "pifpaf exports these, -e PIFPAF does not")
        different = {k: (theirs[k], ours[k]) for k in theirs if theirs[k] != ours[k]}
        self.assertEqual({}, different, "(pifpaf's, ours)")

    @staticmethod
    def normalise(env: dict[str, str], pid: str) -> dict[str, str]:
        from tests.test_cli import TestPifpafCompatibility

        return TestPifpafCompatibility.normalise(env, pid)
