"""ValkeyFixture, with the real valkey-server and redis-py.

valkey-server is not packaged in Debian 12: there the tests that start it
skip, saying so, and those that need no program (its name, its exports,
the errors for a missing program) run anyway.
"""

from __future__ import annotations

import os
import typing

import fixtures

from fixtures_daemons import (
    DaemonFixture,
    Endpoint,
    ExecutableNotFound,
    RedisFixture,
    ServerError,
)
from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.daemons.valkey import ValkeyFixture, ValkeyResource
from fixtures_daemons.integrations import registry
from tests import daemon_base
from tests.test_redis import PifpafComparison, RedisClient, client, close_sentinel, sentinel_of


def _valkey_missing() -> str:
    """Why the tests that start valkey-server cannot run here ("" if they can)."""
    try:
        find_executable(ValkeyFixture.executable, None, "valkey")
    except ExecutableNotFound:
        return (
            "valkey-server is not installed (Debian/Ubuntu: valkey-server, from Debian 13 and "
            "Ubuntu 24.04; or set %s to its path)" % ValkeyFixture.executable.env_var
        )
    return ""


#: Looked up once, when the module is loaded.
VALKEY_MISSING = _valkey_missing()


class TestValkey(
    RedisClient, daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    daemon_class = ValkeyFixture

    def setUp(self) -> None:
        if VALKEY_MISSING:
            self.skipTest(VALKEY_MISSING)
        super().setUp()

    # -- Valkey specifics ------------------------------------------------------

    def test_runs_valkey(self) -> None:
        daemon = self.useFixture(ValkeyFixture())
        with client(daemon) as r:
            self.assertIn("valkey_version", r.info("server"))
        self.assertEqual("redis://127.0.0.1:%d/0" % daemon.port, daemon.url)
        self.assertEqual(daemon.url, os.environ["FIXTURES_DAEMONS_VALKEY_URL"])
        self.assertEqual(["valkey.log", "valkey.sock"], sorted(os.listdir(daemon.temp_dir)))

    def test_sentinel(self) -> None:
        daemon = self.useFixture(ValkeyFixture(sentinel=True))
        self.assertEqual(
            str(daemon.sentinel_port), os.environ["FIXTURES_DAEMONS_VALKEY_SENTINEL_PORT"]
        )
        sentinel = sentinel_of(daemon)
        self.addCleanup(close_sentinel, sentinel)
        self.assertEqual(("127.0.0.1", daemon.port), sentinel.discover_master("pifpaf"))
        with sentinel.master_for("pifpaf", decode_responses=True) as master:
            master.set("key", "through the sentinel")
        self.assertEqual("through the sentinel", self.read(daemon, "key"))
        self.assertIn("valkey-sentinel-log", daemon.getDetails())


class BrokenValkey(ValkeyFixture):
    def prepare(self) -> None:
        super().prepare()
        with open(self.path("dump.rdb"), "wb") as f:
            f.write(b"REDIS0011 but not a dump")


class TestValkeyBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = ValkeyFixture
    package = "valkey-server"
    rejected = {"args": ["--no-such-option", "1"]}
    complaint = "Bad directive"
    crash_complaint = "Fatal error loading the DB"

    #: These fail before any program is looked for, or are about its absence.
    NEED_NO_PROGRAM = ("test_binary_missing", "test_binary_variable_points_nowhere")

    def setUp(self) -> None:
        if VALKEY_MISSING and self._testMethodName not in self.NEED_NO_PROGRAM:
            self.skipTest(VALKEY_MISSING)
        super().setUp()

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenValkey(**kwargs)


class TestValkeyName(daemon_base.DaemonTestCase):
    """valkey is a daemon of its own: what needs no valkey-server."""

    def test_a_daemon_of_its_own(self) -> None:
        self.assertIs(ValkeyFixture, registry.daemon_class("valkey"))
        self.assertIs(RedisFixture, registry.daemon_class("redis"))
        self.assertIs(ValkeyFixture, ValkeyResource.fixture_class)
        self.assertEqual("FIXTURES_DAEMONS_VALKEY_STATE", ValkeyFixture().state_variable())
        self.assertEqual(("valkey-server",), ValkeyFixture.executable.names)

    def test_server_is_a_url_now(self) -> None:
        # Valkey was RedisFixture(server="valkey"); it is ValkeyFixture now,
        # and server= names a server the library did not start, by URL.
        error = self.assertRaises(ServerError, RedisFixture(server="valkey").setUp)
        self.assertIn("not a redis URL", str(error))

    def test_missing_program_names_valkey(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(ValkeyFixture.executable.env_var))
        if not VALKEY_MISSING:
            self.skipTest("valkey-server is installed")
        temp_root, tagged = self.ownTempRoot(), self.taggedPids()
        error = self.assertSetUpRaises(ExecutableNotFound, ValkeyFixture(temp_root=temp_root))
        self.assertEqual("valkey-server", error.executable)
        self.assertIn("Debian/Ubuntu: valkey-server", str(error))
        self.assertIn("FIXTURES_DAEMONS_VALKEY_SERVER", str(error))
        self.assertNothingLeft(temp_root, tagged)

    def test_pifpaf_exports(self) -> None:
        # pifpaf's valkey driver: VALKEY_PORT, VALKEY_SENTINEL_PORT and a
        # valkey:// URL (read from its source: pifpaf cannot start
        # valkey-server where it is not installed).
        endpoint = Endpoint(
            scheme="redis",
            ports={"main": 16379, "sentinel": 16380},
            password="pw",
            database="0",
            directory="/tmp/x",
        )
        env = ValkeyFixture().exports_for(endpoint, "PIFPAF", style="pifpaf")
        self.assertEqual("valkey://:pw@localhost:16379", env["PIFPAF_URL"])
        self.assertEqual("valkey://:pw@localhost:16379", env["PIFPAF_VALKEY_URL"])
        self.assertEqual("16379", env["PIFPAF_VALKEY_PORT"])
        self.assertEqual("16380", env["PIFPAF_VALKEY_SENTINEL_PORT"])
        self.assertEqual("/tmp/x", env["PIFPAF_DATA"])
        native = ValkeyFixture().exports_for(endpoint)
        self.assertEqual("redis://:pw@127.0.0.1:16379/0", native["FIXTURES_DAEMONS_VALKEY_URL"])
        self.assertEqual("pifpaf", native["FIXTURES_DAEMONS_VALKEY_SENTINEL_MASTER"])


class TestValkeyPifpafExports(PifpafComparison):
    """``fixtures-daemons -e PIFPAF run valkey`` exports what ``pifpaf run
    valkey`` does (pifpaf runs ``valkey-server`` and ``valkey-sentinel``
    from PATH)."""

    programs = (("valkey-server", "valkey-server"), ("valkey-sentinel", "valkey-sentinel"))

    def test_sentinel(self) -> None:
        port, sentinel_port = self.pifpafPorts()
        theirs, ours = self.environments(
            "valkey",
            ["--port", port, "--sentinel", "--sentinel-port", sentinel_port],
            ["--sentinel"],
        )
        self.assertEqual("{port}", theirs["PIFPAF_VALKEY_SENTINEL_PORT"])
        self.assertEqual("valkey://localhost:{port}", theirs["PIFPAF_URL"])
        self.assertSameExports(theirs, ours)
