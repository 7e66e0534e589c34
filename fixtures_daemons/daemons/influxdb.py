"""InfluxDB 1.x: one ``influxd`` on loopback, its database made at start.

``influxd`` starts in about 10 ms on an empty data dir (it makes its meta,
data and write-ahead-log dirs itself), so it has no template. The
configuration file is written into the private temp dir on every start:
the HTTP API and the RPC (backup and restore) service on reserved loopback
ports, every background service a test does not need turned off.

Its admin talks to the HTTP API (``/ping``, ``/query``) with the standard
library's ``http.client``: the API is plain HTTP and JSON, which needs no
protocol code of ours, and the ``influxdb`` client library (an optional
extra) would cost every CLI run its import.
"""

from __future__ import annotations

import json
import os
import re
import signal
import typing
import urllib.parse

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import Database, Namespace
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.errors import AdminError
from fixtures_daemons.process import probes
from fixtures_daemons.process.probes import Probe

if typing.TYPE_CHECKING:
    from influxdb import InfluxDBClient  # type: ignore[import-untyped]

__all__ = ["InfluxdbFixture", "InfluxdbResource", "InfluxdbAdmin"]

#: pifpaf's default database.
DEFAULT_DATABASE = "test"


def _http_host(host: str) -> str:
    return "[%s]" % host if ":" in host else host


def quote_identifier(name: str) -> str:
    """``name`` as an InfluxQL identifier: double-quoted, with ``\\`` and
    ``"`` escaped."""
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


class InfluxdbAdmin(Admin):
    """One of our InfluxDB 1.x servers, through its HTTP API on the
    endpoint's first (HTTP) port: ``GET /ping``, and InfluxQL statements
    posted to ``/query``. Every request is bounded by ``timeout``."""

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One HTTP request; (status, body). No connection, or no answer
        within the timeout, raises :exc:`OSError`."""
        import http.client  # here: it would slow every CLI run

        endpoint = self.endpoint
        connection = http.client.HTTPConnection(
            _http_host(endpoint.host), endpoint.port or 0, timeout=self.timeout
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            return response.status, response.read()
        except http.client.HTTPException as exc:
            raise OSError("%s: %s" % (type(exc).__name__, exc)) from exc
        finally:
            connection.close()

    def query(self, statement: str) -> list[dict[str, typing.Any]]:
        """Run one InfluxQL statement (``POST /query``); the series of its
        result. A statement the server refuses, or no answer within the
        timeout, raises :class:`~fixtures_daemons.AdminError`."""
        body = urllib.parse.urlencode({"q": statement}).encode()
        try:
            status, data = self.request("POST", "/query", body)
        except OSError as exc:
            raise AdminError(self.name, statement, str(exc) or type(exc).__name__) from exc
        text = data.decode("utf-8", "replace")
        try:
            reply = json.loads(text)
        except ValueError:
            raise AdminError(self.name, statement, "HTTP %d: %s" % (status, text.strip())) from None
        reply = reply if isinstance(reply, dict) else {}
        results = [r for r in reply.get("results", []) if isinstance(r, dict)]
        errors = [str(e) for e in [reply.get("error")] + [r.get("error") for r in results] if e]
        if status != 200 or errors:
            raise AdminError(
                self.name, statement, "HTTP %d: %s" % (status, "; ".join(errors) or text.strip())
            )
        series: list[dict[str, typing.Any]] = []
        for result in results:
            series.extend(result.get("series", []))
        return series

    def answers(self) -> bool:
        """``GET /ping`` answers 204; False when the server is down, hung
        or answers something else."""
        try:
            status, _ = self.request("GET", "/ping")
        except OSError:
            return False
        return status == 204

    def databases(self) -> list[str]:
        """The names of the server's databases."""
        return [str(row[0]) for s in self.query("SHOW DATABASES") for row in s.get("values", [])]

    def database_exists(self, name: str) -> bool:
        return name in self.databases()

    def create_database(self, name: str, template: str | None = None) -> None:
        """Create the database ``name`` (with its default retention policy,
        ``autogen``, which keeps points for ever). InfluxDB has no copies:
        ``template`` must be None."""
        if template is not None:
            raise AdminError(self.name, "CREATE DATABASE", "InfluxDB has no template databases")
        self.query("CREATE DATABASE " + quote_identifier(name))

    def drop_database(self, name: str) -> None:
        # InfluxDB drops a database that does not exist without a word.
        self.query("DROP DATABASE " + quote_identifier(name))

    def flush(self) -> None:
        """Every database dropped."""
        for name in self.databases():
            self.drop_database(name)


class _WholeServer(Database):
    """What a fixture that started its server owns: all of it, and the
    ``database`` made at start; ``reset()`` drops every database and makes
    that one again."""

    def reset(self) -> None:
        admin = self.fixture.admin
        admin.flush()
        admin.create_database(self.name)


def toml_value(value: str) -> str:
    """A setting's value as TOML: booleans, numbers, quoted strings and
    arrays as they are written, anything else (a path, a duration such as
    ``10s``) as a quoted string."""
    text = value.strip()
    if re.fullmatch(r"true|false|[-+]?\d+(\.\d+)?|\".*\"|'.*'|\[.*\]", text):
        return text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def render_config(settings: typing.Mapping[str, str]) -> str:
    """The ``influxd`` configuration file for ``settings``: a key without a
    dot at the top, ``section.key`` in its ``[section]``."""
    top = []
    sections: dict[str, list[str]] = {}
    for key, value in settings.items():
        section, dot, name = key.partition(".")
        line = "%s = %s" % (name if dot else key, toml_value(value))
        if dot:
            sections.setdefault(section, []).append("  " + line)
        else:
            top.append(line)
    parts = ["\n".join(top)] + [
        "[%s]\n%s" % (section, "\n".join(lines)) for section, lines in sections.items()
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def base_settings(directory: str, host: str, http_port: int, rpc_port: int) -> dict[str, str]:
    """The fixture's settings: its dirs in ``directory``, HTTP and RPC on
    ``host``, every background service a test does not need off."""
    address = "[%s]" % host if ":" in host else host
    return {
        "reporting-disabled": "true",
        "bind-address": "%s:%d" % (address, rpc_port),
        "meta.dir": os.path.join(directory, "meta"),
        "meta.logging-enabled": "false",
        "data.dir": os.path.join(directory, "data"),
        "data.wal-dir": os.path.join(directory, "wal"),
        "data.query-log-enabled": "false",
        "retention.enabled": "false",
        "shard-precreation.enabled": "false",
        "monitor.store-enabled": "false",
        "subscriber.enabled": "false",
        "continuous_queries.enabled": "false",
        "http.enabled": "true",
        "http.bind-address": "%s:%d" % (address, http_port),
        "http.log-enabled": "false",
        "http.pprof-enabled": "false",
        "logging.suppress-logo": "true",
    }


class InfluxdbFixture(DaemonFixture):
    """An InfluxDB 1.x server (``influxd``) on loopback, with one database
    made at start.

    Its configuration file (``influxdb.conf`` in the private temp dir) puts
    the meta, data and WAL dirs in the temp dir, the HTTP API on the
    reserved port and the RPC (backup) service on another reserved
    loopback port; usage reporting, the ``_internal`` monitor database, the
    retention and shard-precreation services, continuous queries,
    subscriptions and the HTTP request log are off, and so are UDP,
    Graphite, collectd and OpenTSDB. It is ready when ``GET /ping`` answers
    204. cleanUp kills it (its data is thrown away); :meth:`stopped` stops
    it with SIGTERM and its databases and points are back after the
    restart. As root it runs as ``nobody`` (or ``$FIXTURES_DAEMONS_USER``).

    :param database: the database made at start, which ``url`` names
        (pifpaf's ``--database``; default ``test``). A fixture attached to
        a shared server gets a random database of its own instead, unless
        it names one.

    ``settings`` are configuration keys, ``section.key`` (``data.dir``) or
    a top-level key (``reporting-disabled``); values are written as TOML,
    quoted unless they are a boolean, a number, or already quoted.

    Attributes: ``url`` (``influxdb://host:port/database``), ``database``,
    ``http_url`` (``http://host:port``, what HTTP clients take), ``ports``
    (``http`` and ``rpc``), ``config_path``, and :meth:`client`, an
    ``influxdb.InfluxDBClient`` of the database.
    """

    daemon_name = "influxdb"
    executable = Executable(
        names=("influxd",),
        dirs=("/opt/influxdb",),  # where pifpaf looks too
        packages={"Debian/Ubuntu": "influxdb", "Homebrew": "influxdb@1"},
        env_var="FIXTURES_DAEMONS_INFLUXD",
        version_args=("version",),
    )
    port_names = ("http", "rpc")
    refuses_root = True
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGTERM  # a clean stop: its data is back after the restart
    scheme = "influxdb"
    namespace = Database
    admin_class = InfluxdbAdmin

    def __init__(self, *, database: str = DEFAULT_DATABASE, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self.requested_database = database

    # -- hooks -----------------------------------------------------------------

    def server_settings(self) -> dict[str, str]:
        return base_settings(
            self.temp_dir, self.requested_host, self.ports["http"], self.ports["rpc"]
        )

    @property
    def config_path(self) -> str:
        """The configuration file the server runs with."""
        return os.path.join(self.temp_dir, "influxdb.conf")

    def prepare(self) -> None:
        self.write_file("influxdb.conf", render_config(self.settings()))

    def process_environment(self) -> dict[str, str | None]:
        # influxd lets INFLUXDB_<SECTION>_<KEY> override its configuration:
        # none of the caller's may.
        return {name: None for name in os.environ if name.startswith("INFLUXDB_")}

    def command_line(self) -> list[str]:
        return [self.binary, "run", "-config", self.config_path]

    def probe(self) -> Probe:
        # Each poll bounded on its own: a server that accepts and hangs
        # must not hold one request for the whole timeout.
        admin = InfluxdbAdmin(
            self.build_endpoint(), self.daemon_name, min(self.timeout, probes.ATTEMPT_TIMEOUT)
        )
        return probes.Callable(admin.answers, "GET /ping answering 204")

    def build_endpoint(self) -> Endpoint:
        # The database made at start: what the whole server's URL names.
        return super().build_endpoint().replace(database=self.requested_database)

    def owned_namespace(self) -> Namespace:
        return _WholeServer(self, self.requested_database, daemon_is_ours=True)

    def attached_namespace(self) -> Namespace:
        # As the SQL daemons: a random database on a shared server, unless
        # one was named (not with reuse=, whose database is the server's).
        return Database(self, None if self.reuse else self.arguments.get("database"))

    # -- what tests use ------------------------------------------------------

    @property
    def database(self) -> str:
        """The database this fixture owns (``url`` names it)."""
        if self._endpoint is not None:
            return self._endpoint.database
        return self.requested_database

    @property
    def http_url(self) -> str:
        """``http://host:port``: the HTTP API."""
        return "http://%s:%d" % (_http_host(self.host), self.port)

    def client(self, **kwargs: typing.Any) -> InfluxDBClient:
        """An ``influxdb.InfluxDBClient`` (PyPI ``influxdb``) of this
        fixture's database; ``kwargs`` go to it (``timeout=``...)."""
        from influxdb import InfluxDBClient

        kwargs.setdefault("timeout", self.timeout)
        return InfluxDBClient(host=self.host, port=self.port, database=self.database, **kwargs)

    # -- exports ---------------------------------------------------------------

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        return {"HTTP_URL": "http://%s:%d" % (_http_host(endpoint.host), endpoint.port or 0)}

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        return "influxdb://localhost:%d/%s" % (endpoint.port or 0, endpoint.database)


class InfluxdbResource(DaemonResource):
    """A testresources manager sharing one :class:`InfluxdbFixture`."""

    fixture_class = InfluxdbFixture
