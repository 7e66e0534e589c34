"""The daemon base (DaemonFixture), with a tiny real daemon.

``tests/tinydaemon.py`` is a daemon written the way a third party would
write one; these tests drive the base through it: a real process, real
sockets, a real client.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import typing

import fixtures
import psutil

import fixtures_daemons
from fixtures_daemons import (
    AttachError,
    DaemonFixture,
    DefinitionError,
    Endpoint,
    Executable,
    MisuseError,
    NotOwnedError,
    StateError,
)
from fixtures_daemons.base.origins import state_value
from fixtures_daemons.process import probes
from fixtures_daemons.process.probes import Callable, Probe
from fixtures_daemons.process.waiting import wait_for
from tests import base
from tests.daemon_base import DaemonTestCase, pid_of, process_tree
from tests.tinydaemon import TinyClient, TinyFixture, TinyResource

TINY = "FIXTURES_DAEMONS_TINY_"
STATE = TINY + "STATE"
WHOLE_STATE = "FIXTURES_DAEMONS_TINYWHOLE_STATE"


class TinyWholeFixture(TinyFixture):
    """tinyd declared without namespaces: an attached fixture shares it all."""

    daemon_name = "tinywhole"
    namespace = None  # type: ignore[assignment]  # mypy took TinyFixture's as type[KeyPrefix]


def refused(endpoint: Endpoint) -> bool:
    """True when nothing accepts connections on the endpoint's main port."""
    try:
        TinyClient(endpoint, timeout=2.0).request("PING")
    except ConnectionRefusedError:
        return True
    return False


class BaseTestCase(DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        # Never attach to a tinyd described by the environment we run in.
        self.useFixture(fixtures.EnvironmentVariable(STATE))
        self.useFixture(fixtures.EnvironmentVariable(WHOLE_STATE))

    def sharer(self, cls: type[TinyFixture] = TinyFixture, **kwargs: typing.Any) -> typing.Any:
        """A fixture that started its daemon and exports it for others."""
        daemon = self.useFixture(cls(share=True, **kwargs))
        self.assertFalse(daemon.attached)
        self.assertIsNotNone(daemon.process)
        return daemon


class TestSpawned(BaseTestCase):
    def test_set_up_answers_and_exports_endpoint(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(TINY + "URL", "previous-url"))
        self.useFixture(fixtures.EnvironmentVariable(TINY + "PEER_PORT"))
        before = dict(os.environ)
        daemon = self.startManually(TinyFixture())
        self.assertTrue(daemon.admin.answers())
        self.assertFalse(daemon.attached)
        endpoint = daemon.endpoint
        self.assertEqual(["main", "peer"], list(endpoint.ports))
        main, peer = endpoint.ports["main"], endpoint.ports["peer"]
        self.assertNotEqual(main, peer)
        self.assertEqual(main, daemon.port)
        self.assertEqual("tiny://127.0.0.1:%d" % main, daemon.url)
        self.assertEqual(pid_of(daemon), endpoint.pid)
        expected = {
            TINY + "URL": daemon.url,
            TINY + "HOST": "127.0.0.1",
            TINY + "PORT": str(main),
            TINY + "PEER_PORT": str(peer),
            TINY + "KEY_PREFIX": "",
            "FIXTURES_DAEMONS_URL": daemon.url,
        }
        self.assertEqual(expected, daemon.env)
        for key, value in expected.items():
            self.assertEqual(value, os.environ.get(key), key)
        self.assertNotIn(STATE, os.environ)  # not shared unless asked
        client = daemon.client()
        client.set("greeting", "hello world")
        self.assertEqual("hello world", client.get("greeting"))
        self.assertIsNone(client.get("missing"))
        tree, temp_dir = process_tree(pid_of(daemon)), daemon.temp_dir
        self.assertTrue(os.path.isdir(temp_dir))
        daemon.cleanUp()
        self.assertGone(*tree)
        self.assertDirGone(temp_dir)
        self.assertEqual(before, dict(os.environ))

    def test_peer_port_greets_from_process_environment(self) -> None:
        default = self.useFixture(TinyFixture())
        self.assertEqual("PEER hello", default.client().peer())
        daemon = self.useFixture(TinyFixture(greeting="bonjour", mode="spawn"))
        self.assertEqual("PEER bonjour", daemon.client().peer())
        # In the daemon's environment only, not in ours.
        self.assertNotIn("TINYD_GREETING", os.environ)
        self.assertEqual("bonjour", psutil.Process(pid_of(daemon)).environ()["TINYD_GREETING"])

    def test_two_fixtures_two_servers_each_stoppable(self) -> None:
        one = self.useFixture(TinyFixture())
        two = self.useFixture(TinyFixture())
        self.assertFalse(two.attached)
        self.assertNotEqual(one.port, two.port)
        self.assertNotEqual(one.endpoint.ports["peer"], two.endpoint.ports["peer"])
        self.assertNotEqual(pid_of(one), pid_of(two))
        one.client().set("key", "one")
        two.client().set("key", "two")
        self.assertEqual("one", one.client().get("key"))
        self.assertEqual("two", two.client().get("key"))
        for daemon, other in ((one, two), (two, one)):
            port, old = daemon.port, psutil.Process(pid_of(daemon))
            with daemon.stopped():
                self.assertGone(old)
                self.assertTrue(refused(daemon.endpoint))
                self.assertTrue(other.admin.answers())
            self.assertEqual(port, daemon.port)
            self.assertNotEqual(old.pid, pid_of(daemon))
            self.assertEqual(pid_of(daemon), daemon.endpoint.pid)
            self.assertTrue(daemon.admin.answers())
            self.assertEqual("PONG", daemon.client().request("PING"))

    def test_reset_of_a_spawned_fixture_empties_the_daemon(self) -> None:
        daemon = self.useFixture(TinyFixture())
        daemon.client().set("a", "1")
        TinyClient(daemon.endpoint.replace(key_prefix="other:")).set("b", "2")
        daemon.reset()
        self.assertEqual([], daemon.client().keys())


class TestSharing(BaseTestCase):
    def test_auto_mode_attaches_to_a_sharer(self) -> None:
        sharer = self.sharer()
        self.assertIn(STATE, os.environ)
        self.assertEqual(sharer.env[STATE], os.environ[STATE])
        attached = self.useFixture(TinyFixture())
        self.assertTrue(attached.attached)
        self.assertIsNone(attached.process)
        self.assertEqual(sharer.port, attached.port)
        self.assertEqual(sharer.url, attached.url)
        self.assertEqual(pid_of(sharer), attached.server_endpoint.pid)
        prefix = attached.key_prefix
        self.assertTrue(prefix, "an attached fixture has a key prefix")
        self.assertEqual(prefix, attached.endpoint.key_prefix)
        self.assertEqual(prefix, os.environ[TINY + "KEY_PREFIX"])
        self.assertEqual(str(attached.endpoint.ports["peer"]), os.environ[TINY + "PEER_PORT"])

    def test_attached_keys_are_invisible_to_others(self) -> None:
        sharer = self.sharer()
        one = self.useFixture(TinyFixture())
        two = self.useFixture(TinyFixture())
        self.assertNotEqual(one.key_prefix, two.key_prefix)
        sharer.client().set("key", "sharer")
        one.client().set("key", "one")
        two.client().set("key", "two")
        self.assertEqual("sharer", sharer.client().get("key"))
        self.assertEqual("one", one.client().get("key"))
        self.assertEqual("two", two.client().get("key"))
        self.assertEqual(["key"], one.client().keys())
        self.assertEqual(["key"], two.client().keys())
        one.client().set("only-one", "x")
        self.assertIsNone(sharer.client().get("only-one"))
        self.assertIsNone(two.client().get("only-one"))

    def test_attached_reset_deletes_only_its_keys(self) -> None:
        sharer = self.sharer()
        one = self.useFixture(TinyFixture())
        two = self.useFixture(TinyFixture())
        sharer.client().set("s", "sharer")
        one.client().set("a", "1")
        one.client().set("b", "2")
        two.client().set("a", "two")
        prefix = one.key_prefix
        one.reset()
        self.assertEqual([], one.client().keys())
        self.assertEqual(prefix, one.key_prefix)  # tinyd lists keys: no new prefix
        self.assertEqual("sharer", sharer.client().get("s"))
        self.assertEqual("two", two.client().get("a"))
        one.client().set("a", "again")  # usable at once
        self.assertEqual("again", one.client().get("a"))

    def test_attached_cleanup_leaves_the_server_running(self) -> None:
        sharer = self.sharer()
        sharer.client().set("s", "kept")
        before = dict(os.environ)
        pid = pid_of(sharer)
        attached = self.startManually(TinyFixture())
        prefix = attached.key_prefix
        attached.client().set("a", "1")
        self.assertEqual(prefix, os.environ[TINY + "KEY_PREFIX"])
        attached.cleanUp()
        self.assertEqual(pid, pid_of(sharer))
        self.assertRunning(pid)
        self.assertTrue(sharer.admin.answers())
        self.assertEqual("kept", sharer.client().get("s"))
        # Its keys went with it; the environment is the sharer's again.
        self.assertEqual([], TinyClient(sharer.endpoint.replace(key_prefix=prefix)).keys())
        self.assertEqual(before, dict(os.environ))

    def test_attached_cannot_stop_or_pause(self) -> None:
        sharer = self.sharer()
        attached = self.useFixture(TinyFixture())
        pid = pid_of(sharer)

        def stop() -> None:
            with attached.stopped():
                self.fail("stopped() let the block run")

        for call, function in (("stopped()", stop), ("paused()", attached.paused)):
            error = self.assertRaises(NotOwnedError, function)
            self.assertIsInstance(error, MisuseError)
            self.assertEqual("TinyFixture.%s" % call, error.call)
            self.assertIn("TinyFixture.%s" % call, str(error))
            self.assertIn("did not start its daemon", str(error))
            self.assertIn(STATE, str(error))
            self.assertIn("mode='spawn'", str(error))
        self.assertEqual(pid, pid_of(sharer))
        self.assertTrue(attached.admin.answers())
        self.assertEqual(attached.key_prefix, attached.endpoint.key_prefix)

    def test_refused_stopped_keeps_the_endpoint(self) -> None:
        sharer = self.sharer()
        attached = self.useFixture(TinyFixture())
        endpoint = attached.endpoint
        self.assertRaises(NotOwnedError, attached.stopped().__enter__)
        self.assertEqual(
            (pid_of(sharer), endpoint), (attached.server_endpoint.pid, attached.endpoint)
        )

    def test_spawn_mode_ignores_a_sharer(self) -> None:
        sharer = self.sharer()
        own = self.useFixture(TinyFixture(mode="spawn"))
        self.assertFalse(own.attached)
        self.assertNotEqual(sharer.port, own.port)
        self.assertEqual("", own.key_prefix)


class TestWithoutNamespaces(BaseTestCase):
    def test_auto_mode_spawns_its_own(self) -> None:
        sharer = self.sharer(TinyWholeFixture)
        self.assertIn(WHOLE_STATE, os.environ)
        own = self.useFixture(TinyWholeFixture())
        self.assertFalse(own.attached)
        self.assertIsNotNone(own.process)
        self.assertNotEqual(sharer.port, own.port)
        self.assertNotEqual(pid_of(sharer), pid_of(own))

    def test_attach_mode_shares_the_whole_daemon(self) -> None:
        sharer = self.sharer(TinyWholeFixture)
        sharer.client().set("key", "sharer's")
        attached = self.startManually(TinyWholeFixture(mode="attach"))
        self.assertTrue(attached.attached)
        self.assertIsNone(attached.process)
        self.assertEqual(sharer.port, attached.port)
        self.assertEqual("", attached.endpoint.key_prefix)
        self.assertEqual("sharer's", attached.client().get("key"))
        error = self.assertRaises(NotOwnedError, attached.reset)
        self.assertEqual("reset()", error.call)
        self.assertIn("shares the whole daemon", str(error))
        self.assertIn("mode='spawn'", str(error))
        self.assertEqual("sharer's", sharer.client().get("key"))
        attached.cleanUp()
        self.assertEqual("sharer's", sharer.client().get("key"))
        self.assertTrue(sharer.admin.answers())


class TestDamagedState(BaseTestCase):
    def assertBadState(self, text: str, reason: str, mode: str = "auto") -> None:
        """With ``text`` in the state variable, setUp raises StateError
        naming the variable and ``reason``, and leaves nothing behind."""
        self.useFixture(fixtures.EnvironmentVariable(STATE, text))
        temp_root = self.ownTempRoot()
        tagged = self.taggedPids()
        before = dict(os.environ)
        daemon = TinyFixture(mode=mode, temp_root=temp_root)
        error = self.assertSetUpRaises(StateError, daemon)
        self.assertEqual(STATE, error.source)
        self.assertIn(STATE, str(error))
        self.assertIn(reason, str(error))
        self.assertEqual(before, dict(os.environ))
        self.assertNothingLeft(temp_root, tagged)
        self.assertRaises(MisuseError, lambda: daemon.endpoint)

    def endpoint_state(self, **fields: object) -> str:
        return json.dumps({"daemon": "tiny", "endpoint": fields})

    def test_not_json(self) -> None:
        self.assertBadState("{not json", "not JSON")

    def test_not_json_in_attach_mode(self) -> None:
        self.assertBadState("garbage", "not JSON", mode="attach")

    def test_json_of_the_wrong_shape(self) -> None:
        self.assertBadState("[1, 2]", "expected an object with 'daemon' and 'endpoint'")
        self.assertBadState('{"daemon": "tiny"}', "expected an object")
        self.assertBadState('{"daemon": "tiny", "endpoint": []}', "expected a JSON object")
        self.assertBadState(self.endpoint_state(colour="red"), "unknown field(s) colour")

    def test_fields_of_the_wrong_type(self) -> None:
        self.assertBadState(
            self.endpoint_state(ports={"main": "12345"}), "ports must map names to int"
        )
        self.assertBadState(self.endpoint_state(ports={"main": 70000}), "between 1 and 65535")
        self.assertBadState(self.endpoint_state(pid="123"), "pid must be int")
        self.assertBadState(self.endpoint_state(pid=True), "pid must be int")
        self.assertBadState(self.endpoint_state(host=["127.0.0.1"]), "host must be str")

    def test_state_of_another_daemon(self) -> None:
        text = state_value("redis", Endpoint(scheme="redis", ports={"main": 6379}))
        self.assertBadState(text, "it describes 'redis', not 'tiny'")

    def test_spawn_mode_ignores_a_damaged_state(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(STATE, "{not json"))
        daemon = self.useFixture(TinyFixture(mode="spawn"))
        self.assertFalse(daemon.attached)
        self.assertTrue(daemon.admin.answers())

    def assertCannotAttach(self, text: str, pid: int) -> None:
        self.useFixture(fixtures.EnvironmentVariable(STATE, text))
        temp_root = self.ownTempRoot()
        tagged = self.taggedPids()
        before = dict(os.environ)
        error = self.assertSetUpRaises(AttachError, TinyFixture(temp_root=temp_root))
        self.assertEqual(STATE, error.source)
        self.assertEqual("tiny", error.name)
        self.assertIn("pid %d" % pid, str(error))
        self.assertIn("unset %s" % STATE, str(error))
        self.assertEqual(before, dict(os.environ))
        self.assertNothingLeft(temp_root, tagged)

    def test_state_of_a_dead_daemon(self) -> None:
        sharer = self.startManually(TinyFixture(share=True))
        text, process = os.environ[STATE], psutil.Process(pid_of(sharer))
        sharer.cleanUp()
        self.assertGone(process)
        self.assertCannotAttach(text, process.pid)

    def test_state_whose_pid_is_another_process(self) -> None:
        # A live pid with another start time: a reused pid, not the daemon.
        sharer = self.useFixture(TinyFixture())
        endpoint = sharer.server_endpoint.replace(pid_start="not-its-start-time")
        self.assertCannotAttach(state_value("tiny", endpoint), endpoint.pid)


class TestMisuse(BaseTestCase):
    def test_use_before_set_up(self) -> None:
        daemon = TinyFixture()
        calls: list[tuple[str, typing.Callable[[], object]]] = [
            ("endpoint", lambda: daemon.endpoint),
            ("port", lambda: daemon.port),
            ("reset()", daemon.reset),
            ("server_endpoint", lambda: daemon.server_endpoint),
            ("admin", lambda: daemon.admin),
            ("paused()", daemon.paused),
        ]
        for call, function in calls:
            error = self.assertRaises(MisuseError, function)
            self.assertNotIsInstance(error, NotOwnedError)
            self.assertEqual("TinyFixture.%s" % call, error.call)
            self.assertIn("TinyFixture.%s" % call, str(error))
            self.assertIn("not set up", str(error))
            self.assertIn("useFixture()", str(error))
        self.assertRaises(MisuseError, daemon.stopped().__enter__)

    def test_url_before_set_up(self) -> None:
        error = self.assertRaises(MisuseError, lambda: TinyFixture().url)
        self.assertIn("not set up", str(error))
        self.assertEqual("TinyFixture.url", error.call)

    def test_set_up_twice(self) -> None:
        tagged = self.taggedPids()
        daemon = self.startManually(TinyFixture())
        process, temp_dir, url = psutil.Process(pid_of(daemon)), daemon.temp_dir, daemon.url
        error = self.assertRaises(MisuseError, daemon.setUp)
        self.assertEqual("TinyFixture.setUp()", error.call)
        self.assertIn("set up already", str(error))
        # The first daemon is untouched, and still the fixture's.
        self.assertEqual(process.pid, pid_of(daemon))
        self.assertEqual(url, daemon.url)
        self.assertTrue(daemon.admin.answers())
        self.assertEqual({process.pid}, self.taggedPids() - tagged)
        daemon.cleanUp()
        self.assertGone(process)
        self.assertDirGone(temp_dir)
        self.assertTrue(wait_for(lambda: not (self.taggedPids() - tagged), 5.0))

    def test_clean_up_without_set_up_does_nothing(self) -> None:
        before = dict(os.environ)
        daemon = TinyFixture()
        self.assertIsNone(daemon.cleanUp())
        self.assertEqual(before, dict(os.environ))
        self.assertRaises(MisuseError, lambda: daemon.endpoint)

    def test_clean_up_twice_does_nothing(self) -> None:
        before = dict(os.environ)
        daemon = self.startManually(TinyFixture())
        process = psutil.Process(pid_of(daemon))
        fixture_clean_up = type(daemon).cleanUp  # the real one, not startManually's
        fixture_clean_up(daemon)
        self.assertGone(process)
        self.assertIsNone(fixture_clean_up(daemon))
        self.assertEqual(before, dict(os.environ))

    def test_set_up_again_after_clean_up(self) -> None:
        daemon = self.startManually(TinyFixture())
        first = psutil.Process(pid_of(daemon))
        daemon.client().set("key", "first")
        daemon.cleanUp()
        self.assertGone(first)
        again = self.startManually(daemon)
        self.assertNotEqual(first.pid, pid_of(again))
        self.assertTrue(again.admin.answers())
        self.assertIsNone(again.client().get("key"))


class TestSignatures(BaseTestCase):
    def assertRealSignature(self, cls: type, own: list[str]) -> None:
        parameters = inspect.signature(cls).parameters
        for name in own + ["mode", "reuse", "share", "port", "timeout", "env_prefix"]:
            self.assertIn(name, parameters)
        self.assertEqual(own, list(parameters)[: len(own)])  # its own first
        for parameter in parameters.values():
            self.assertEqual(inspect.Parameter.KEYWORD_ONLY, parameter.kind, str(parameter))

    def test_tiny_signature(self) -> None:
        self.assertRealSignature(TinyFixture, ["greeting"])
        self.assertEqual("hello", inspect.signature(TinyFixture).parameters["greeting"].default)

    def test_postgresql_signature(self) -> None:
        self.assertRealSignature(fixtures_daemons.PostgresqlFixture, ["database", "user"])

    def test_misspelt_keyword(self) -> None:
        error = self.assertRaises(TypeError, TinyFixture, greting="x")
        self.assertIn("TinyFixture()", str(error))
        self.assertIn("'greting'", str(error))
        self.assertIn("did you mean 'greeting'?", str(error))
        error = self.assertRaises(TypeError, TinyFixture, prot=5432)
        self.assertIn("did you mean 'port'?", str(error))

    def test_misspelt_keyword_fails_when_the_resource_is_built(self) -> None:
        error = self.assertRaises(TypeError, TinyResource, greting="x")
        self.assertIn("TinyFixture()", str(error))
        self.assertIn("did you mean 'greeting'?", str(error))

    def test_positional_arguments(self) -> None:
        error = self.assertRaises(TypeError, TinyFixture, "bonjour")
        self.assertIn("TinyFixture() takes keyword arguments only", str(error))

    def test_arguments_are_kept(self) -> None:
        daemon = TinyFixture(greeting="hi", mode="spawn")
        self.assertEqual({"greeting": "hi", "mode": "spawn"}, dict(daemon.arguments))
        self.assertEqual("hi", daemon.greeting)


class TestDefinition(BaseTestCase):
    def assertDefinitionError(
        self, missing: str, define: typing.Callable[[], object]
    ) -> DefinitionError:
        error = self.assertRaises(DefinitionError, define)
        self.assertIsInstance(error, TypeError)
        self.assertEqual("Incomplete", error.cls)
        self.assertEqual(missing, error.missing)
        self.assertIn("Incomplete must define %s" % missing, str(error))
        return error

    def test_missing_command_line(self) -> None:
        def define() -> object:
            class Incomplete(DaemonFixture):
                daemon_name = "incomplete"
                executable = Executable(names=("python3",))

                def probe(self) -> Probe:
                    return Callable(lambda: True)

            return Incomplete

        error = self.assertDefinitionError("command_line()", define)
        self.assertIn("argv", str(error))

    def test_missing_probe(self) -> None:
        def define() -> object:
            class Incomplete(DaemonFixture):
                daemon_name = "incomplete"
                executable = Executable(names=("python3",))

                def command_line(self) -> list[str]:
                    return [self.binary]

            return Incomplete

        self.assertDefinitionError("probe()", define)

    def test_missing_executable(self) -> None:
        def define() -> object:
            class Incomplete(TinyFixture):
                daemon_name = "incomplete"
                executable = "python3"  # type: ignore[assignment]

            return Incomplete

        error = self.assertDefinitionError("executable", define)
        self.assertIn("fixtures_daemons.Executable", str(error))

    def test_abstract_base_is_not_checked(self) -> None:
        class Abstract(DaemonFixture):
            """No daemon_name: a base for daemons, not a daemon."""

        class Complete(Abstract):
            daemon_name = "complete"
            executable = Executable(names=("python3",))

            def command_line(self) -> list[str]:
                return [self.binary]

            def probe(self) -> Probe:
                return Callable(lambda: True)

        self.assertEqual("complete", Complete.daemon_name)


class TestResource(BaseTestCase):
    def test_resource_shares_its_daemon(self) -> None:
        resource = TinyResource(greeting="salut")
        daemon = resource.getResource()
        self.addCleanup(daemon.cleanUp)  # if the test fails; a no-op after finishedWith
        process = psutil.Process(pid_of(daemon))
        self.assertIsInstance(daemon, TinyFixture)
        self.assertTrue(daemon.admin.answers())
        self.assertEqual("PEER salut", daemon.client().peer())
        self.assertEqual(daemon.env[STATE], os.environ[STATE])
        attached = self.startManually(TinyFixture())
        self.assertTrue(attached.attached)
        self.assertEqual(daemon.port, attached.port)
        attached.cleanUp()
        resource.finishedWith(daemon)
        self.assertGone(process)
        self.assertNotIn(STATE, os.environ)


class TestEntryPoints(BaseTestCase):
    def fakeDistribution(self) -> str:
        """A dir holding an installed distribution with two entry points
        in our group: the tiny daemon, and one that does not load."""
        path: str = self.useFixture(fixtures.TempDir()).path
        info = os.path.join(path, "fake_fxd-1.0.dist-info")
        os.mkdir(info)
        with open(os.path.join(info, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: fake-fxd\nVersion: 1.0\n")
        with open(os.path.join(info, "entry_points.txt"), "w") as f:
            f.write(
                "[fixtures_daemons.daemons]\n"
                "tiny = tests.tinydaemon:TinyFixture\n"
                "tinywhole = tests.test_base:TinyWholeFixture\n"
                "broken = no_such_module_xyz:Nothing\n"
            )
        return path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        path = self.fakeDistribution() + os.pathsep + base.REPO_ROOT
        return subprocess.run(
            [sys.executable, "-m", "fixtures_daemons", *args],
            env=base.python_env(PYTHONPATH=path),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def test_list_shows_a_broken_entry_point_and_the_others(self) -> None:
        result = self.cli("list")
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)
        rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
        broken = rows.get("broken", "")
        self.assertEqual(["broken", "broken"], broken.split()[:2], result.stdout)
        self.assertIn("broken = no_such_module_xyz:Nothing", broken)
        self.assertIn("ModuleNotFoundError", broken)
        self.assertIn("no_such_module_xyz", broken)
        self.assertIn("postgresql", rows)
        self.assertIn("tiny", rows)
        self.assertEqual(["tiny", "yes", sys.executable], rows["tiny"].split()[:3])

    def test_under_run_a_daemon_without_namespaces_spawns_its_own(self) -> None:
        # fixtures-daemons run exports the state variable, but a fixture in
        # auto mode attaches only to a daemon that has namespaces.
        code = (
            "import os\n"
            "from tests.test_base import TinyWholeFixture\n"
            "from tests.tinydaemon import TinyFixture\n"
            "assert os.environ['FIXTURES_DAEMONS_TINYWHOLE_STATE']\n"
            "run_port = os.environ['FIXTURES_DAEMONS_TINYWHOLE_PORT']\n"
            "fixture = TinyWholeFixture()\n"
            "fixture.setUp()\n"
            "print(fixture.attached, fixture.port, run_port)\n"
            "fixture.cleanUp()\n"
        )
        result = self.cli("run", "tinywhole", "--", sys.executable, "-c", code)
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)
        attached, own_port, run_port = result.stdout.split()
        self.assertEqual("False", attached)
        self.assertNotEqual(run_port, own_port)

    def test_run_of_a_broken_entry_point_says_why(self) -> None:
        result = self.cli("run", "broken", "--", "true")
        self.assertEqual(3, result.returncode, result.stdout + result.stderr)
        self.assertIn("broken = no_such_module_xyz:Nothing", result.stderr)
        self.assertIn("ModuleNotFoundError", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_run_finds_a_third_party_daemon(self) -> None:
        code = (
            "import os, socket\n"
            "print(os.environ['FIXTURES_DAEMONS_TINY_URL'])\n"
            "port = int(os.environ['FIXTURES_DAEMONS_TINY_PEER_PORT'])\n"
            "with socket.create_connection(('127.0.0.1', port), timeout=10) as s:\n"
            "    s.sendall(b'HELLO\\n')\n"
            "    print(s.makefile().readline().strip())\n"
        )
        result = self.cli("run", "tiny", "--greeting", "ciao", "--", sys.executable, "-c", code)
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(2, len(lines), result.stdout)
        url, greeting = lines
        self.assertRegex(url, r"^tiny://127\.0\.0\.1:\d+$")
        self.assertEqual("PEER ciao", greeting)
        # The daemon went with the run.
        port = int(url.rsplit(":", 1)[1])
        self.assertTrue(refused(Endpoint(ports={"main": port})))


#: A daemon with no TCP port and no URL, as an X server is: it serves a
#: unix socket and is reached through a display name.
NO_PORT_SERVER = """
import contextlib, os, socket, sys
with contextlib.suppress(FileNotFoundError):
    os.unlink(sys.argv[1])  # left by the run before a restart
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(8)
while True:
    conn, _ = server.accept()
    with contextlib.suppress(OSError):  # the probe hangs up at once
        conn.sendall(b"hello\\n")
    conn.close()
"""


class NoPortFixture(DaemonFixture):
    """A daemon reached through a unix socket and a display, no port."""

    daemon_name = "noport"
    executable = Executable(names=(sys.executable,), packages={"Debian/Ubuntu": "python3"})
    port_names = ()

    def command_line(self) -> list[str]:
        return [self.binary, "-c", NO_PORT_SERVER, self.path("x.sock")]

    def probe(self) -> Probe:
        return probes.UnixSocket(self.path("x.sock"))

    def build_endpoint(self) -> Endpoint:
        return (
            super()
            .build_endpoint()
            .replace(sockets={"main": self.path("x.sock")}, display=":%d" % (os.getpid() % 1000))
        )


def hello(fixture: DaemonFixture) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(fixture.endpoint.socket)
        return sock.makefile().readline().strip()


class TestNoPort(BaseTestCase):
    """A daemon without a port or a URL is first-class."""

    def test_set_up_exports_its_socket_and_display(self) -> None:
        daemon = self.useFixture(NoPortFixture())
        self.assertEqual("hello", hello(daemon))
        self.assertIsNone(daemon.endpoint.port)
        self.assertEqual("", daemon.url)
        self.assertEqual({}, daemon.ports)
        own = "FIXTURES_DAEMONS_NOPORT_"
        self.assertEqual(daemon.endpoint.display, os.environ[own + "DISPLAY"])
        self.assertEqual(daemon.path("x.sock"), os.environ[own + "SOCKET"])
        for absent in (own + "URL", own + "PORT"):
            self.assertNotIn(absent, daemon.env)
        error = self.assertRaises(MisuseError, lambda: daemon.port)
        self.assertIn("no TCP port", str(error))

    def test_stopped_and_shared(self) -> None:
        daemon = self.useFixture(NoPortFixture(share=True))
        with daemon.stopped():
            self.assertRaises(OSError, hello, daemon)
        self.assertEqual("hello", hello(daemon))
        # No namespaces: auto mode starts its own, attach mode shares it all.
        own = self.useFixture(NoPortFixture())
        self.assertFalse(own.attached)
        self.assertNotEqual(daemon.endpoint.socket, own.endpoint.socket)
        shared = self.useFixture(NoPortFixture(mode="attach"))
        self.assertTrue(shared.attached)
        self.assertEqual(daemon.endpoint.socket, shared.endpoint.socket)
        self.assertEqual("hello", hello(shared))
