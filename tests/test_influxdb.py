"""InfluxdbFixture, with the real influxd, the influxdb client library and
the server's own command-line client, ``influx``."""

from __future__ import annotations

import os
import shutil
import subprocess
import typing

import fixtures
import requests
from influxdb import InfluxDBClient  # type: ignore[import-untyped]

from fixtures_daemons import AdminError, DaemonFixture
from fixtures_daemons.daemons.influxdb import (
    InfluxdbAdmin,
    InfluxdbFixture,
    quote_identifier,
    render_config,
    toml_value,
)
from fixtures_daemons.process.ports import PortFixture
from tests import daemon_base, test_cli

#: Where the contract's keys live: one measurement, the key a tag.
MEASUREMENT = "kv"


def client(fixture: InfluxdbFixture) -> InfluxDBClient:
    # One try per request: a server that is down fails at once.
    return InfluxDBClient(
        host=fixture.host, port=fixture.port, database=fixture.database, timeout=10, retries=1
    )


def _literal(value: str) -> str:
    return "'%s'" % value.replace("\\", "\\\\").replace("'", "\\'")


def write(fixture: InfluxdbFixture, key: str, value: str) -> None:
    c = client(fixture)
    try:
        point = {"measurement": MEASUREMENT, "tags": {"key": key}, "fields": {"value": value}}
        assert c.write_points([point])
    finally:
        c.close()


def read(fixture: InfluxdbFixture, key: str) -> str | None:
    """The last value written under ``key``; None when there is none."""
    c = client(fixture)
    try:
        result = c.query(
            'SELECT last("value") FROM "%s" WHERE "key" = %s' % (MEASUREMENT, _literal(key))
        )
    finally:
        c.close()
    points = list(result.get_points())
    return None if not points else str(points[0]["last"])


def influx_cli(fixture: InfluxdbFixture, *args: str) -> str:
    """Run the server's own client, ``influx``, against it; its output."""
    command = ["influx", "-host", fixture.host, "-port", str(fixture.port), *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result.stdout


class TestInfluxdb(
    daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    daemon_class = InfluxdbFixture

    def write(self, fixture: InfluxdbFixture, key: str, value: str) -> None:
        write(fixture, key, value)

    def read(self, fixture: InfluxdbFixture, key: str) -> str | None:
        return read(fixture, key)

    def assertCannotConnect(self, fixture: InfluxdbFixture) -> None:
        c = client(fixture)
        try:
            self.assertRaises(requests.exceptions.ConnectionError, c.ping)
        finally:
            c.close()

    # -- InfluxDB specifics ------------------------------------------------------

    def test_database_option_urls_ports_and_config(self) -> None:
        # A variable influxd would read must not move the server.
        self.useFixture(fixtures.EnvironmentVariable("INFLUXDB_HTTP_BIND_ADDRESS", ":1"))
        daemon = self.useFixture(InfluxdbFixture(database="metrics"))
        own = "FIXTURES_DAEMONS_INFLUXDB_"
        self.assertEqual("influxdb://127.0.0.1:%d/metrics" % daemon.port, daemon.url)
        self.assertEqual("metrics", daemon.database)
        self.assertEqual("metrics", daemon.env[own + "DATABASE"])
        self.assertEqual("http://127.0.0.1:%d" % daemon.port, daemon.http_url)
        self.assertEqual(daemon.http_url, daemon.env[own + "HTTP_URL"])
        self.assertEqual(["http", "rpc"], list(daemon.ports))
        self.assertEqual(str(daemon.ports["rpc"]), daemon.env[own + "RPC_PORT"])
        # The database was made at start, and is the only one.
        admin = typing.cast(InfluxdbAdmin, daemon.admin)
        self.assertEqual(["metrics"], admin.databases())
        self.assertIn("metrics", influx_cli(daemon, "-execute", "SHOW DATABASES").split())
        # The RPC service listens too, on loopback (test_listens_on_loopback_only
        # checks that nothing listens anywhere else), and no UDP at all.
        addresses = daemon_base.listening_addresses(daemon_base.pid_of(daemon))
        self.assertIn(("127.0.0.1", daemon.ports["rpc"], "tcp"), addresses)
        self.assertEqual([], [a for a in addresses if a[2] == "udp"])
        # Everything in the private temp dir, with the test-speed settings.
        with open(daemon.config_path) as f:
            config = f.read()
        for line in (
            'dir = "%s"' % daemon.path("meta"),
            'wal-dir = "%s"' % daemon.path("wal"),
            'bind-address = "127.0.0.1:%d"' % daemon.ports["rpc"],
            "reporting-disabled = true",
            "store-enabled = false",
        ):
            self.assertIn(line, config)
        self.assertEqual(os.path.dirname(daemon.config_path), daemon.temp_dir)
        # Points written with the library, read with influx, and back.
        write(daemon, "greeting", "hello")
        for name in ("meta", "data", "wal"):  # the WAL is made by the first write
            self.assertTrue(os.path.isdir(daemon.path(name)), name)
        out = influx_cli(
            daemon, "-database", "metrics", "-format", "csv", "-execute", 'SELECT * FROM "kv"'
        )
        self.assertIn("greeting,hello", out)
        influx_cli(daemon, "-database", "metrics", "-execute", 'INSERT kv,key=cli value="x"')
        self.assertEqual("x", read(daemon, "cli"))
        self.assertEqual("hello", read(daemon, "greeting"))
        self.assertIsNone(read(daemon, "missing"))

    def test_client_helper_and_reset_drops_every_database(self) -> None:
        daemon = self.useFixture(InfluxdbFixture())
        self.assertEqual("test", daemon.database)
        c = daemon.client()
        self.addCleanup(c.close)
        self.assertEqual("test", c._database)
        c.create_database("other")
        c.write_points([{"measurement": "m", "fields": {"v": 1}}])
        c.write_points([{"measurement": "m", "fields": {"v": 2}}], database="other")
        points = c.query('SELECT "v" FROM "m"').get_points()
        self.assertEqual([1], [p["v"] for p in points])  # this database's only
        daemon.reset()
        self.assertEqual([{"name": "test"}], c.get_list_database())
        self.assertEqual([], list(c.query('SELECT "v" FROM "m"').get_points()))

    def test_stopped_keeps_databases(self) -> None:
        daemon = self.useFixture(InfluxdbFixture())
        admin = typing.cast(InfluxdbAdmin, daemon.admin)
        admin.create_database("kept")
        with daemon.stopped():
            self.assertFalse(admin.answers())
            self.assertRaises(AdminError, admin.databases)
        self.assertEqual(["kept", "test"], sorted(admin.databases()))

    def test_attached_fixtures_get_a_database_each(self) -> None:
        server = self.useFixture(InfluxdbFixture(share=True))
        a = self.startManually(InfluxdbFixture())
        named = self.startManually(InfluxdbFixture(database="given"))
        self.assertTrue(a.attached and named.attached)
        self.assertTrue(a.database.startswith("test_"), a.database)
        self.assertEqual("given", named.database)
        self.assertEqual("influxdb://127.0.0.1:%d/given" % server.port, named.url)
        admin = typing.cast(InfluxdbAdmin, server.admin)
        self.assertEqual(sorted(["test", "given", a.database]), sorted(admin.databases()))
        write(named, "key", "named")
        named.reset()  # its own database, dropped and made again
        self.assertIsNone(read(named, "key"))
        self.assertEqual(sorted(["test", "given", a.database]), sorted(admin.databases()))
        a.cleanUp()
        named.cleanUp()
        self.assertEqual(["test"], admin.databases())

    def test_admin(self) -> None:
        daemon = self.useFixture(InfluxdbFixture())
        admin = typing.cast(InfluxdbAdmin, daemon.admin)
        odd = 'we"ird name'
        admin.create_database(odd)
        self.assertTrue(admin.database_exists(odd))
        admin.drop_database(odd)
        admin.drop_database(odd)  # gone already: not an error
        self.assertFalse(admin.database_exists(odd))
        error = self.assertRaises(AdminError, admin.query, "SELECT FROM nothing")
        self.assertEqual("SELECT FROM nothing", error.request)
        self.assertIn("HTTP 400", str(error))
        error = self.assertRaises(AdminError, admin.query, 'SELECT * FROM "m"')
        self.assertIn("database name required", str(error))
        error = self.assertRaises(AdminError, admin.create_database, "copy", "test")
        self.assertIn("no template", str(error))
        admin.flush()
        self.assertEqual([], admin.databases())

    def test_settings_override(self) -> None:
        daemon = self.useFixture(
            InfluxdbFixture(settings={"http.max-row-limit": "1", "logging.level": "warn"})
        )
        with open(daemon.config_path) as f:
            config = f.read()
        self.assertIn("max-row-limit = 1\n", config)
        self.assertIn('level = "warn"\n', config)
        for key in ("a", "b"):
            write(daemon, key, key)
        c = client(daemon)
        try:
            rows = list(c.query('SELECT * FROM "kv"').get_points())
        finally:
            c.close()
        self.assertEqual(1, len(rows))  # the row limit is the server's


class TestInfluxdbConfig(daemon_base.DaemonTestCase):
    """The configuration file, without a server."""

    def test_toml_values(self) -> None:
        for given, written in (
            ("true", "true"),
            ("12", "12"),
            ("-1.5", "-1.5"),
            ('"quoted"', '"quoted"'),
            ("[1, 2]", "[1, 2]"),
            ("10s", '"10s"'),
            ("/a/path", '"/a/path"'),
            ('say "hi"', '"say \\"hi\\""'),
        ):
            self.assertEqual(written, toml_value(given), given)
        self.assertEqual(
            'top = 1\n\n[http]\n  enabled = true\n  bind-address = "127.0.0.1:1"\n',
            render_config({"http.enabled": "true", "top": "1", "http.bind-address": "127.0.0.1:1"}),
        )
        self.assertEqual('"a\\"b\\\\c"', quote_identifier('a"b\\c'))


class BrokenInfluxdb(InfluxdbFixture):
    """A meta store that is not one."""

    def prepare(self) -> None:
        super().prepare()
        os.mkdir(self.path("meta"), 0o700)
        if self.run_as is not None:
            os.chown(self.path("meta"), self.run_as.uid, self.run_as.gid)
        self.write_file(os.path.join("meta", "meta.db"), "garbage\n")


class TestInfluxdbBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = InfluxdbFixture
    package = "influxdb"
    rejected = {"settings": {"data.index-version": "bogus"}}
    complaint = "unrecognized index bogus"
    crash_complaint = "create server"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return BrokenInfluxdb(**kwargs)


#: pifpaf 3.4's driver waits for influxd's output to say ``Listening on
#: HTTP: [::]:PORT``, which influxd printed before 1.5 (1.5 and later log
#: ``msg="Listening on HTTP" ... addr=[::]:PORT``): without this wrapper it
#: waits for ever. The wrapper adds the old line, and moves the RPC service
#: that pifpaf leaves on its default port (8088, every address) to a free
#: loopback port; the driver's own code, config and exports are untouched.
INFLUXD_FOR_PIFPAF = """#!/bin/bash
config="$2"
{ printf 'bind-address = "127.0.0.1:%%s"\\n' "$FXD_TEST_RPC_PORT"; cat "$config"; } \\
    > "$config.fxd" && mv "$config.fxd" "$config" || exit 1
# influxd itself is the process pifpaf stops (SIGTERM).
exec %(influxd)s "$@" > >(sed -u \\
    's/msg="Listening on HTTP".*addr=\\([^ ]*\\).*/&\\nListening on HTTP: \\1/') 2>&1
"""


class TestInfluxdbCli(test_cli.CliTestCase):
    """``fixtures-daemons run influxdb``, and ``-e PIFPAF`` against
    ``pifpaf run influxdb``."""

    environments = test_cli.TestPifpafCompatibility.environments
    normalise = staticmethod(test_cli.TestPifpafCompatibility.normalise)
    assertSameExports = test_cli.TestPifpafCompatibility.assertSameExports

    def test_influx_under_run(self) -> None:
        script = (
            'influx -port "$FIXTURES_DAEMONS_INFLUXDB_PORT" -database '
            '"$FIXTURES_DAEMONS_INFLUXDB_DATABASE" -execute "INSERT m v=42" && '
            'influx -port "$FIXTURES_DAEMONS_INFLUXDB_PORT" -database metrics -format csv '
            '-execute "SELECT v FROM m"'
        )
        result = self.cli("run", "influxdb", "--database", "metrics", "--", "sh", "-c", script)
        self.assertStatus(0, result)
        self.assertTrue(result.stdout.rstrip().endswith(",42"), result.stdout)

    def test_pifpaf_exports(self) -> None:
        try:
            import pifpaf  # noqa: F401
        except ImportError:
            self.skipTest("pifpaf is not installed (pip install pifpaf): nothing to compare with")
        influxd = shutil.which("influxd") or shutil.which("influxd", path="/usr/sbin")
        if influxd is None or shutil.which("influx") is None:
            self.skipTest("influxd or influx is not installed (Debian: influxdb influxdb-client)")
        self.pifpaf = self.pifpafCommand()
        shims = os.path.join(self.work, "bin")
        os.mkdir(shims)
        path = os.path.join(shims, "influxd")
        with open(path, "w") as f:
            f.write(INFLUXD_FOR_PIFPAF % {"influxd": influxd})
        os.chmod(path, 0o755)
        self.useFixture(fixtures.EnvironmentVariable("PATH", shims + ":" + os.environ["PATH"]))
        # Ours runs the real one.
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_INFLUXD", influxd))
        rpc = self.useFixture(PortFixture()).port
        self.useFixture(fixtures.EnvironmentVariable("FXD_TEST_RPC_PORT", str(rpc)))
        port = self.useFixture(PortFixture()).port
        theirs, ours = self.environments(
            "influxdb", ["--port", str(port), "--database", "metrics"], ["--database", "metrics"]
        )
        self.assertEqual("influxdb://localhost:{port}/metrics", theirs["PIFPAF_URL"])
        self.assertEqual("metrics", theirs["PIFPAF_INFLUXDB_DATABASE"])
        self.assertSameExports(theirs, ours)

    def test_pifpaf_default_database(self) -> None:
        # pifpaf's driver makes "test" unless told (its DEFAULT_DATABASE).
        env = self.runDump("-e", "PIFPAF", "run", "influxdb")
        port = env["PIFPAF_INFLUXDB_PORT"]
        self.assertEqual("test", env["PIFPAF_INFLUXDB_DATABASE"])
        self.assertEqual("influxdb://localhost:%s/test" % port, env["PIFPAF_URL"])
        self.assertEqual("influxdb://localhost:%s/test" % port, env["PIFPAF_INFLUXDB_URL"])
