"""NatsFixture, with the real nats-server and nats-py.

Core NATS keeps no messages, so the contract's keys and values live in a
JetStream key-value bucket (``contract``): written and read with nats-py,
emptied by ``reset()`` (the whole server: every stream; an attached
fixture: the keys under its subject prefix).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import typing
import urllib.request

import nats
from nats.js import errors as js_errors

from fixtures_daemons import AdminError, DaemonFixture
from fixtures_daemons.daemons.nats import NatsAdmin, NatsFixture, run_coroutine
from tests import daemon_base, test_cli

TIMEOUT = 30.0
BUCKET = "contract"
T = typing.TypeVar("T")


def session(
    fixture: NatsFixture,
    work: typing.Callable[[typing.Any], typing.Awaitable[T]],
    **options: typing.Any,
) -> T:
    """Connect to ``fixture`` with nats-py, run ``work(connection)``, close;
    bounded."""

    async def ignore(error: Exception) -> None:
        pass

    async def main() -> T:
        options.setdefault("servers", [fixture.url])
        connection = await nats.connect(
            allow_reconnect=False,
            max_reconnect_attempts=1,  # 0 would mean "retry forever"
            reconnect_time_wait=0,
            error_cb=ignore,
            **options,
        )
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(asyncio.wait_for(main(), TIMEOUT))


class TestNats(daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase):
    daemon_class = NatsFixture

    def write(self, fixture: NatsFixture, key: str, value: str) -> None:
        async def put(connection: typing.Any) -> None:
            bucket = await connection.jetstream().create_key_value(bucket=BUCKET)
            await bucket.put(key, value.encode())

        session(fixture, put)

    def read(self, fixture: NatsFixture, key: str) -> str | None:
        async def get(connection: typing.Any) -> str | None:
            try:
                bucket = await connection.jetstream().key_value(BUCKET)
                entry = await bucket.get(key)
            except (js_errors.BucketNotFoundError, js_errors.KeyNotFoundError):
                return None
            return None if entry.value is None else entry.value.decode()

        return session(fixture, get)

    def assertCannotConnect(self, fixture: NatsFixture) -> None:
        async def nothing(connection: typing.Any) -> None:
            pass

        self.assertRaises(nats.errors.NoServersError, session, fixture, nothing)

    # -- NATS specifics --------------------------------------------------------

    def test_publish_and_receive(self) -> None:
        server = self.useFixture(NatsFixture())

        async def round_trip(connection: typing.Any) -> tuple[str, bytes]:
            subscription = await connection.subscribe("orders.*")
            await connection.publish("orders.created", b"order 1")
            message = await subscription.next_msg(timeout=TIMEOUT)
            return message.subject, message.data

        self.assertEqual(("orders.created", b"order 1"), session(server, round_trip))

        async def request(connection: typing.Any) -> bytes:
            async def answer(message: typing.Any) -> None:
                await message.respond(b"pong:" + message.data)

            await connection.subscribe("service", cb=answer)
            reply = await connection.request("service", b"ping", timeout=TIMEOUT)
            return typing.cast(bytes, reply.data)

        self.assertEqual(b"pong:ping", session(server, request))

    def test_url_password_and_config(self) -> None:
        server = self.useFixture(NatsFixture())
        self.assertEqual("fxd", server.username)
        self.assertEqual(32, len(server.password))
        self.assertEqual("nats://fxd:%s@127.0.0.1:%d" % (server.password, server.port), server.url)
        own = "FIXTURES_DAEMONS_NATS_"
        self.assertEqual(server.password, server.env[own + "PASSWORD"])
        self.assertEqual("", server.env[own + "SUBJECT_PREFIX"])
        self.assertNotIn(own + "MONITOR_URL", server.env)
        st = os.stat(server.config_path)
        self.assertEqual(0o600, stat.S_IMODE(st.st_mode))
        self.assertEqual(self.expectedUser(server), st.st_uid)
        # The password is in the private config file, not on the command line.
        assert server.process is not None
        self.assertNotIn(server.password, " ".join(server.process.command))
        self.assertTrue(os.path.isdir(os.path.join(server.temp_dir, "jetstream")))
        # A wrong password and no login at all are refused.
        host = "nats://127.0.0.1:%d" % server.port
        for options in ({"user": "fxd", "password": "wrong"}, {}):
            self.assertRaises(
                (nats.errors.NoServersError, nats.errors.Error),
                session,
                server,
                lambda c: c.flush(),
                servers=[host],
                **options,
            )
        bad = NatsAdmin(server.endpoint.replace(password="wrong"), "nats", 5)
        self.assertFalse(bad.answers())
        error = self.assertRaises(AdminError, bad.streams)
        self.assertIn("listing JetStream streams", str(error))

    def test_anonymous_monitor_and_no_jetstream(self) -> None:
        server = self.useFixture(NatsFixture(anonymous=True, jetstream=False, monitor=True))
        self.assertEqual("nats://127.0.0.1:%d" % server.port, server.url)
        self.assertEqual(("", ""), (server.username, server.password))
        self.assertTrue(server.admin.answers())
        self.assertEqual([], typing.cast(NatsAdmin, server.admin).streams())
        server.reset()  # nothing to empty: no error
        self.assertEqual(
            "http://127.0.0.1:%d" % server.ports["monitor"],
            server.env["FIXTURES_DAEMONS_NATS_MONITOR_URL"],
        )
        with urllib.request.urlopen(server.monitor_url + "/varz", timeout=TIMEOUT) as reply:
            varz = json.load(reply)
        self.assertEqual(server.port, varz["port"])
        self.assertEqual("127.0.0.1", varz["http_host"])
        addresses = daemon_base.listening_addresses(daemon_base.pid_of(server))
        self.assertIn(("127.0.0.1", server.ports["monitor"], "tcp"), addresses)

    def test_admin_prefix_deletion(self) -> None:
        server = self.useFixture(NatsFixture())
        admin = typing.cast(NatsAdmin, server.admin)

        async def fill(connection: typing.Any) -> None:
            js = connection.jetstream()
            await js.add_stream(name="MINE", subjects=["fxd-a.orders.>"])
            await js.add_stream(name="ALL", subjects=["fxd-a.log", "other.log"])
            await js.publish("fxd-a.log", b"x")
            await js.publish("other.log", b"y")

        session(server, fill)
        self.write(server, "fxd-a.key", "mine")
        self.write(server, "fxd-b.key", "theirs")
        self.assertTrue(admin.delete_prefixed("fxd-a."))
        names = {config["name"] for config in admin.streams()}
        self.assertEqual({"ALL", "KV_contract"}, names)

        async def counts(connection: typing.Any) -> int:
            info = await connection.jsm().stream_info("ALL")
            return typing.cast(int, info.state.messages)

        self.assertEqual(1, session(server, counts))
        self.assertEqual(
            (None, "theirs"), (self.read(server, "fxd-a.key"), self.read(server, "fxd-b.key"))
        )

    def test_subject_prefix_is_a_token(self) -> None:
        self.useFixture(NatsFixture(share=True))
        attached = self.useFixture(NatsFixture())
        self.assertTrue(attached.attached)
        self.assertRegex(attached.subject_prefix, r"^fxd-[0-9a-f]{12}\.$")
        self.assertEqual(
            attached.subject_prefix, attached.env["FIXTURES_DAEMONS_NATS_SUBJECT_PREFIX"]
        )

    def test_admin_inside_an_event_loop(self) -> None:
        server = self.useFixture(NatsFixture())
        self.write(server, "key", "value")

        async def reset_from_async_code() -> None:
            server.reset()  # asyncio.run cannot nest: the admin uses a thread

        asyncio.run(reset_from_async_code())
        self.assertIsNone(self.read(server, "key"))
        self.assertRaises(TimeoutError, run_coroutine, lambda: asyncio.sleep(60), 0.01)


class BrokenNats(NatsFixture):
    """JetStream's store dir is a file: nats-server exits."""

    def prepare(self) -> None:
        super().prepare()
        self.write_file("jetstream", "not a directory\n")


class TestNatsBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = NatsFixture
    package = "nats-server"
    rejected = {"settings": {"no_such_option": "1"}}
    complaint = 'unknown field "no_such_option"'
    crash_complaint = "storage directory is not a directory"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenNats(**kwargs)


class TestNatsCli(test_cli.CliTestCase):
    def test_run_exports_a_usable_url(self) -> None:
        script = (
            "import asyncio, os, nats\n"
            "async def main():\n"
            "    nc = await nats.connect(os.environ['FIXTURES_DAEMONS_NATS_URL'])\n"
            "    sub = await nc.subscribe('hello')\n"
            "    await nc.publish('hello', b'world')\n"
            "    print((await sub.next_msg(timeout=30)).data.decode())\n"
            "    await nc.close()\n"
            "asyncio.run(asyncio.wait_for(main(), 60))\n"
        )
        result = self.cli("run", "nats", "--", sys.executable, "-c", script)
        self.assertStatus(0, result)
        self.assertEqual("world\n", result.stdout)
