"""PostgreSQL: ``postgres`` run directly on a copy of a cached initdb."""

from __future__ import annotations

import os
import signal
import typing
import uuid

from fixtures_daemons import _pgwire
from fixtures_daemons.binaries import Executable, sibling
from fixtures_daemons.daemon import DaemonFixture
from fixtures_daemons.probes import LogPattern, Probe

__all__ = ["PostgresqlFixture"]


class PostgresqlFixture(DaemonFixture):
    """A PostgreSQL server, with trust authentication on loopback and on a
    unix socket in its temp dir.

    It runs ``postgres`` itself, not ``pg_ctl`` (which polls every 100 ms),
    on a copy of a data dir made once by ``initdb`` and cached; it is ready
    when it logs that it accepts connections, and cleanUp stops it with an
    immediate shutdown (SIGQUIT: the data is thrown away).

    :param database: the database ``url`` points at; created at start
        unless it is ``postgres``.
    :param user: the superuser role clients connect as.
    :param locale: the cluster's locale (``C`` is the fastest and the same
        everywhere).
    :param encoding: the cluster's encoding.

    Attributes: ``url`` (``postgresql://user@host:port/database``), ``dsn``
    (libpq key=value form), ``database``, ``user``, ``socket_dir``,
    ``data_dir``.
    """

    daemon_name = "postgresql"
    executable = Executable(
        names=("postgres",),
        dirs=(
            "/usr/lib/postgresql/*/bin",
            "/usr/pgsql-*/bin",
            "/opt/homebrew/opt/postgresql*/bin",
            "/usr/local/opt/postgresql*/bin",
        ),
        packages={
            "Debian/Ubuntu": "postgresql",
            "Fedora": "postgresql-server",
            "Homebrew": "postgresql@17",
        },
        env_var="FIXTURES_DAEMONS_POSTGRES",
    )
    refuses_root = True
    stop_signal = signal.SIGQUIT  # immediate shutdown
    restart_signal = signal.SIGINT  # fast shutdown: a clean restart

    def __init__(
        self,
        *,
        database: str = "postgres",
        user: str = "postgres",
        locale: str = "C",
        encoding: str = "UTF8",
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.user = user
        self.locale = locale
        self.encoding = encoding

    def _init_options(self) -> list[str]:
        # 1 MB WAL segments instead of 16: the copied data dir is 28 MB, not 43.
        return [
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            self.encoding,
            "--locale",
            self.locale,
            "--wal-segsize=1",
        ]

    def _build_template(self, directory: str) -> None:
        initdb = sibling(self.binary, "initdb", self.executable, self.daemon_name)
        self.run_helper(
            [initdb, "-D", directory, "--no-sync", "--no-instructions"] + self._init_options(),
            "initdb",
        )

    def _prepare(self) -> None:
        self.socket_dir = self.temp_dir
        self.data_dir = self.path("data")
        self.from_template({"initdb": self._init_options()}, self._build_template, self.data_dir)

    def _settings(self) -> dict[str, str]:
        settings = {
            "listen_addresses": self.host,
            "unix_socket_directories": self.socket_dir,
            "log_destination": "stderr",
            "logging_collector": "off",
        }
        if not self.durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        return settings

    def _command(self) -> list[str]:
        command = [self.binary, "-D", self.data_dir, "-p", str(self.port)]
        for key, value in self.settings().items():
            command += ["-c", "%s=%s" % (key, value)]
        return command

    def _probe(self) -> Probe:
        return LogPattern(r"database system is ready to accept connections")

    def _started(self) -> None:
        if self.database != "postgres":
            self.create_database(self.database)

    # -- what tests use ------------------------------------------------------

    @property
    def url(self) -> str:
        return "postgresql://%s@%s:%d/%s" % (self.user, self.host, self.port, self.database)

    @property
    def dsn(self) -> str:
        return "host=%s port=%d user=%s dbname=%s" % (
            self.host,
            self.port,
            self.user,
            self.database,
        )

    @property
    def socket_path(self) -> str:
        return os.path.join(self.socket_dir, ".s.PGSQL.%d" % self.port)

    def _extra_exports(self) -> dict[str, str]:
        return {"DATABASE": self.database, "USER": self.user, "SOCKET_DIR": self.socket_dir}

    def _pifpaf_url(self) -> str:
        return "postgresql://localhost/%s?host=%s&port=%d" % (
            self.database,
            self.socket_dir,
            self.port,
        )

    def _pifpaf_raw_exports(self) -> dict[str, str]:
        return {
            "PGHOST": self.socket_dir,
            "PGPORT": str(self.port),
            "PGDATA": self.data_dir,
            "PGDATABASE": self.database,
            "PGUSER": self.user,
        }

    def connect_admin(self, database: str = "template1") -> _pgwire.Connection:
        """A minimal protocol connection (no client library needed)."""
        return _pgwire.connect(self.socket_path, self.user, database)

    def query(self, sql: str, database: str = "template1") -> list[tuple[str | None, ...]]:
        """Run SQL through the built-in minimal client; return text rows."""
        with self.connect_admin(database) as conn:
            return conn.query(sql)

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """Create an empty database (or a copy of ``template``); return its
        name, random unless given."""
        name = name or "test_" + uuid.uuid4().hex[:12]
        sql = "CREATE DATABASE %s" % _pgwire.quote_ident(name)
        if template:
            sql += " TEMPLATE %s" % _pgwire.quote_ident(template)
        with self.connect_admin("postgres" if template == "template1" else "template1") as conn:
            conn.query(sql)
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, even while clients are connected to it."""
        admin = "postgres" if name == "template1" else "template1"
        with self.connect_admin(admin) as conn:
            conn.query("DROP DATABASE IF EXISTS %s WITH (FORCE)" % _pgwire.quote_ident(name))

    def reset(self) -> None:
        """Drop every database but the templates, and recreate ``database``
        (and ``postgres``) empty: about as fresh as a new server."""
        with self.connect_admin("template1") as conn:
            names = [
                row[0]
                for row in conn.query("SELECT datname FROM pg_database WHERE NOT datistemplate")
            ]
            for name in names:
                if name:
                    conn.query("DROP DATABASE %s WITH (FORCE)" % _pgwire.quote_ident(name))
            for name in dict.fromkeys(["postgres", self.database]):
                conn.query("CREATE DATABASE %s TEMPLATE template0" % _pgwire.quote_ident(name))
