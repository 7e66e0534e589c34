"""MosquittoFixture, with the real mosquitto, paho-mqtt and mosquitto_pub.

The contract's keys are topics and its values retained messages (the
broker's only stored data): written with ``mosquitto_pub -r`` (the
broker's own client), read with paho-mqtt.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import typing
import uuid

import paho.mqtt.client as mqtt

from fixtures_daemons import AdminError, DaemonFixture
from fixtures_daemons.daemons.mosquitto import MosquittoAdmin, MosquittoFixture
from fixtures_daemons.integrations import registry
from fixtures_daemons.process.waiting import Deadline
from tests import daemon_base, test_cli

TIMEOUT = 30.0


class Client:
    """A paho-mqtt client of ``fixture``, its network loop driven here
    (no thread), every wait bounded."""

    def __init__(
        self,
        fixture: MosquittoFixture,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-" + uuid.uuid4().hex[:12]
        )
        user = fixture.username if username is None else username
        if user:
            self.client.username_pw_set(user, fixture.password if password is None else password)
        self.messages: list[mqtt.MQTTMessage] = []
        self.connack: typing.Any = None
        self.client.on_connect = self._connected
        self.client.on_message = lambda client, userdata, message: self.messages.append(message)
        self.client.connect(fixture.host, fixture.port)
        self.wait(lambda: self.connack is not None)

    def _connected(self, client: object, userdata: object, *args: typing.Any) -> None:
        self.connack = args[1]

    def wait(self, condition: typing.Callable[[], object]) -> None:
        deadline = Deadline(TIMEOUT)
        while not condition():
            if deadline.expired():
                raise AssertionError("no answer from the broker within %.0f s" % TIMEOUT)
            if self.client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS and not condition():
                raise ConnectionError("disconnected")

    def subscribe(self, topic: str) -> None:
        done: list[object] = []
        self.client.on_subscribe = lambda *args: done.append(args)
        self.client.subscribe(topic, qos=1)
        self.wait(lambda: done)

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        self.wait(info.is_published)

    def retained(self, topic: str) -> str | None:
        """The retained message of ``topic``: the broker sends it before it
        handles our next packet, so it is there when a later message to a
        topic of our own comes back."""
        sync = "sync/" + uuid.uuid4().hex
        self.subscribe(topic)
        self.subscribe(sync)
        self.publish(sync, "")
        self.wait(lambda: any(m.topic == sync for m in self.messages))
        found = [m for m in self.messages if m.topic == topic and m.retain]
        return found[-1].payload.decode() if found else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop(timeout=0.01)


def mosquitto_pub(fixture: MosquittoFixture, *args: str) -> subprocess.CompletedProcess[str]:
    """The broker's own client, given the fixture's URL."""
    program = shutil.which("mosquitto_pub")
    if program is None:
        raise AssertionError("mosquitto_pub is missing (Debian: mosquitto-clients)")
    return subprocess.run(
        [program, "-L", fixture.url + "/" + args[0], *args[1:]],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )


class TestMosquitto(
    daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    daemon_class = MosquittoFixture

    def write(self, fixture: MosquittoFixture, key: str, value: str) -> None:
        if shutil.which("mosquitto_pub") is None:  # paho alone then
            client = Client(fixture)
            try:
                client.publish(key, value, retain=True)
            finally:
                client.close()
            return
        result = mosquitto_pub(fixture, key, "-m", value, "-r", "-q", "1")
        self.assertEqual(0, result.returncode, result.stderr)

    def read(self, fixture: MosquittoFixture, key: str) -> str | None:
        client = Client(fixture)
        try:
            return client.retained(key)
        finally:
            client.close()

    def assertCannotConnect(self, fixture: MosquittoFixture) -> None:
        self.assertRaises(ConnectionRefusedError, Client, fixture)

    # -- mosquitto specifics ---------------------------------------------------

    def test_publish_and_receive(self) -> None:
        broker = self.useFixture(MosquittoFixture())
        subscriber, publisher = Client(broker), Client(broker)
        self.addCleanup(subscriber.close)
        self.addCleanup(publisher.close)
        subscriber.subscribe("sensors/+/temperature")
        publisher.publish("sensors/kitchen/temperature", "21.5")
        subscriber.wait(lambda: subscriber.messages)
        [message] = subscriber.messages
        self.assertEqual(("sensors/kitchen/temperature", b"21.5"), (message.topic, message.payload))
        self.assertFalse(message.retain)
        self.assertEqual({}, broker.retained())  # a live message is not kept

    def test_url_password_and_config(self) -> None:
        broker = self.useFixture(MosquittoFixture())
        self.assertEqual("fxd", broker.username)
        self.assertEqual(32, len(broker.password))
        self.assertEqual("mqtt://fxd:%s@127.0.0.1:%d" % (broker.password, broker.port), broker.url)
        own = "FIXTURES_DAEMONS_MOSQUITTO_"
        self.assertEqual(broker.password, broker.env[own + "PASSWORD"])
        self.assertEqual("fxd", broker.env[own + "USER"])
        self.assertEqual("", broker.env[own + "TOPIC_PREFIX"])
        # Its configuration and password file: private, in its temp dir.
        for name in ("mosquitto.conf", "passwords"):
            st = os.stat(os.path.join(broker.temp_dir, name))
            self.assertEqual(0o600, stat.S_IMODE(st.st_mode), name)
            self.assertEqual(self.expectedUser(broker), st.st_uid, name)
        with open(broker.config_path) as f:
            config = f.read().splitlines()
        self.assertIn("allow_anonymous false", config)
        self.assertEqual("listener %d 127.0.0.1" % broker.port, config[-1])
        with open(os.path.join(broker.temp_dir, "passwords")) as f:
            self.assertNotIn(broker.password, f.read())  # hashed
        # A wrong password and no login at all are refused.
        for username, password in (("fxd", "wrong"), ("", "")):
            refused = Client(broker, username=username, password=password)
            self.addCleanup(refused.close)
            self.assertTrue(refused.connack.is_failure, (username, refused.connack))
        result = mosquitto_pub(broker, "t", "-m", "x", "-P", "wrong")
        self.assertNotEqual(0, result.returncode)
        self.assertIn("not authorised", result.stderr)

    def test_chosen_credentials_and_anonymous(self) -> None:
        broker = self.useFixture(MosquittoFixture(username="alice", password="s3cret"))
        self.assertEqual("mqtt://alice:s3cret@127.0.0.1:%d" % broker.port, broker.url)
        self.write(broker, "greeting", "hi")
        self.assertEqual("hi", self.read(broker, "greeting"))
        open_broker = self.useFixture(MosquittoFixture(anonymous=True))
        self.assertEqual(("", ""), (open_broker.username, open_broker.password))
        self.assertEqual("mqtt://127.0.0.1:%d" % open_broker.port, open_broker.url)
        self.assertFalse(os.path.exists(os.path.join(open_broker.temp_dir, "passwords")))
        self.write(open_broker, "greeting", "anyone")
        self.assertEqual("anyone", self.read(open_broker, "greeting"))
        self.assertTrue(open_broker.admin.answers())

    def test_retained_admin(self) -> None:
        broker = self.useFixture(MosquittoFixture())
        admin = typing.cast(MosquittoAdmin, broker.admin)
        for topic in ("a/1", "a/2", "b/1"):
            self.write(broker, topic, topic)
        self.assertEqual({"a/1": b"a/1", "a/2": b"a/2"}, admin.retained("a/#"))
        self.assertEqual(2, admin.clear_retained("a/#"))
        self.assertEqual({"b/1": b"b/1"}, broker.retained())
        # A wrong password: a typed error, not a hang.
        bad = MosquittoAdmin(broker.endpoint.replace(password="wrong"), "mosquitto", 5)
        error = self.assertRaises(AdminError, bad.retained)
        self.assertIn("connection refused", str(error))
        self.assertFalse(bad.answers())

    def test_no_persistence(self) -> None:
        broker = self.useFixture(MosquittoFixture(persistence=False))
        self.write(broker, "key", "value")
        with broker.stopped():
            pass
        self.assertIsNone(self.read(broker, "key"))
        self.assertFalse(os.path.exists(os.path.join(broker.temp_dir, "mosquitto.db")))

    def test_topic_prefix_is_a_topic_level(self) -> None:
        self.useFixture(MosquittoFixture(share=True))
        attached = self.useFixture(MosquittoFixture())
        self.assertTrue(attached.attached)
        self.assertRegex(attached.topic_prefix, r"^fxd-[0-9a-f]{12}/$")
        self.assertEqual(
            attached.topic_prefix, attached.env["FIXTURES_DAEMONS_MOSQUITTO_TOPIC_PREFIX"]
        )
        # A subscription to the prefix's subtree sees this fixture's topics.
        client = Client(attached)
        self.addCleanup(client.close)
        client.subscribe(attached.topic_prefix + "#")
        client.publish(attached.topic_prefix + "events/1", "e")
        client.wait(lambda: client.messages)
        self.assertEqual(attached.topic_prefix + "events/1", client.messages[0].topic)

    def test_alias(self) -> None:
        self.assertEqual("mosquitto", registry.canonical_name("mqtt"))


class BrokenMosquitto(MosquittoFixture):
    """A persistence file that is not one: mosquitto refuses to start."""

    def prepare(self) -> None:
        super().prepare()
        self.write_file("mosquitto.db", "not a mosquitto database\n" * 64)


class TestMosquittoBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = MosquittoFixture
    package = "mosquitto"
    rejected = {"settings": {"no_such_option": "1"}}
    complaint = "Unknown configuration variable"
    crash_complaint = "Unable to restore persistent database"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenMosquitto(**kwargs)


class TestMosquittoCli(test_cli.CliTestCase):
    def test_mosquitto_pub_under_run(self) -> None:
        if shutil.which("mosquitto_pub") is None:
            self.skipTest("mosquitto_pub is not installed (Debian: mosquitto-clients)")
        script = (
            'mosquitto_pub -L "$FIXTURES_DAEMONS_MOSQUITTO_URL/greeting" -m hello -r -q 1'
            ' && echo "$FIXTURES_DAEMONS_MOSQUITTO_USER"'
        )
        result = self.cli("run", "mqtt", "--", "sh", "-c", script)
        self.assertStatus(0, result)
        self.assertEqual("fxd\n", result.stdout)
