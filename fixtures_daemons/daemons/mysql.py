"""MySQL or MariaDB, whichever is installed, on a copy of a cached init."""

from __future__ import annotations

import signal
import typing

from fixtures_daemons.binaries import Executable, sibling
from fixtures_daemons.databases import DatabaseDaemonFixture, TemplateHook
from fixtures_daemons.errors import CommandFailed, ExecutableNotFound
from fixtures_daemons.probes import LogPattern, Probe
from fixtures_daemons.resources import DaemonResource

__all__ = ["MysqlFixture", "MysqlResource"]


def _quote(name: str) -> str:
    return "`%s`" % name.replace("`", "``")


class MysqlFixture(DatabaseDaemonFixture):
    """A MariaDB (``mariadbd``) or MySQL (``mysqld``) server on loopback TCP
    and a unix socket in its temp dir; ``root`` has no password.

    Initialisation (``mariadb-install-db``, or ``mysqld
    --initialize-insecure`` for MySQL) runs once and is cached as a template;
    every instance starts on a copy. cleanUp kills it (its data is thrown
    away); :meth:`stopped` shuts it down cleanly, so the data is back after
    the restart.

    :param database: the database ``url`` points at, created at start.
    :param template: prepares a template database once: the path of an SQL
        file, or a callable given a copy of this fixture whose
        ``database``/``connect_kwargs`` are the template's; ``database`` and
        every attached fixture's database start as copies of it.

    Attributes: ``url`` (``mysql+pymysql://root@host:port/database``, for
    SQLAlchemy), ``connect_kwargs`` (for ``pymysql.connect(**...)``),
    ``database``, ``user``, ``socket_path``, ``flavour`` (``mariadb`` or
    ``mysql``).
    """

    daemon_name = "mysql"
    executable = Executable(
        names=("mariadbd", "mysqld"),
        dirs=("/usr/libexec", "/opt/homebrew/opt/mariadb/bin", "/opt/homebrew/opt/mysql/bin"),
        packages={"Debian/Ubuntu": "mariadb-server", "Homebrew": "mariadb"},
        env_var="FIXTURES_DAEMONS_MYSQLD",
    )
    refuses_root = True
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGTERM  # a clean shutdown

    def __init__(
        self,
        *,
        database: str = "test",
        template: TemplateHook | None = None,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(database=database, template=template, **kwargs)
        self.user = "root"

    @property
    def flavour(self) -> str:
        return "mariadb" if "mariadb" in self.version().lower() else "mysql"

    # Small redo log and system tablespace, grown 1 MB at a time: install-db
    # otherwise grows ibdata1 in 64 MB steps, and the template (copied per
    # instance) is 78 MB, most of it zero pages, instead of 19.
    _INNODB_FILES = {
        "innodb-log-file-size": "4M",
        "innodb-data-file-path": "ibdata1:4M:autoextend",
        "innodb-autoextend-increment": "1",
    }

    def _build_template(self, directory: str) -> None:
        files = ["--%s=%s" % item for item in self._INNODB_FILES.items()]
        if self.flavour == "mariadb":
            tool = None
            for name in ("mariadb-install-db", "mysql_install_db"):
                try:
                    tool = sibling(self.binary, name, self.executable, name)
                    break
                except ExecutableNotFound:
                    continue
            if tool is None:
                raise ExecutableNotFound(
                    self.daemon_name, "mariadb-install-db", packages=self.executable.packages
                )
            command = [
                tool,
                "--no-defaults",
                "--datadir=" + directory,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ] + files
        else:
            command = [
                self.binary,
                "--no-defaults",
                "--initialize-insecure",
                "--datadir=" + directory,
            ] + files
        self.run_helper(command, "database initialisation")

    def _prepare(self) -> None:
        self.data_dir = self.path("data")
        self.socket_path = self.path("mysqld.sock")
        self.from_template({"files": self._INNODB_FILES}, self._build_template, self.data_dir)

    def _settings(self) -> dict[str, str]:
        settings = {
            "datadir": self.data_dir,
            "socket": self.socket_path,
            "port": str(self.port),
            "bind-address": self.host,
            "pid-file": self.path("mysqld.pid"),
            "tmpdir": self.temp_dir,
            "skip-name-resolve": "ON",
            "character-set-server": "utf8mb4",
            "innodb-buffer-pool-size": "16M",
            "innodb-buffer-pool-dump-at-shutdown": "OFF",
            "innodb-buffer-pool-load-at-startup": "OFF",
            "skip-log-bin": "ON",
        }
        settings.update(self._INNODB_FILES)
        if self.flavour == "mariadb":
            settings["innodb-use-native-aio"] = "OFF"  # tmpfs has no O_DIRECT
        else:
            settings["mysqlx"] = "OFF"
        if not self.durable:
            settings.update(
                {
                    "innodb-flush-log-at-trx-commit": "0",
                    "innodb-doublewrite": "OFF",
                    "sync-binlog": "0",
                }
            )
        return settings

    def _command(self) -> list[str]:
        command = [self.binary, "--no-defaults"]
        for key, value in self.settings().items():
            if key.startswith("skip-") and value == "ON":
                command.append("--" + key)
            else:
                command.append("--%s=%s" % (key, value))
        return command

    def _probe(self) -> Probe:
        return LogPattern(r"ready for connections")

    def _started(self) -> None:
        self.create_database(self.database)

    # -- what tests use ------------------------------------------------------

    @property
    def url(self) -> str:
        return "mysql+pymysql://%s@%s:%d/%s" % (self.user, self.host, self.port, self.database)

    @property
    def connect_kwargs(self) -> dict[str, typing.Any]:
        return {"host": self.host, "port": self.port, "user": self.user, "database": self.database}

    def _extra_exports(self) -> dict[str, str]:
        return {"DATABASE": self.database, "USER": self.user, "SOCKET": self.socket_path}

    def _pifpaf_url(self) -> str:
        return "mysql://root@localhost/%s?unix_socket=%s" % (self.database, self.socket_path)

    def _client(self) -> str:
        for name in ("mariadb", "mysql"):
            try:
                return sibling(self.binary, name)  # beside the server, else on PATH
            except ExecutableNotFound:
                continue
        raise ExecutableNotFound(
            self.daemon_name,
            "mariadb or mysql (the client)",
            packages={"Debian/Ubuntu": "mariadb-client", "Homebrew": "mariadb"},
        )

    def query(self, sql: str, database: str = "") -> list[list[str]]:
        """Run SQL with the command-line client; return the rows, as text."""
        command = [
            self._client(),
            "--no-defaults",
            "--user=root",
            "--socket=" + self.socket_path,
            "--batch",
            "--skip-column-names",
            "--execute=" + sql,
        ]
        if database:
            command.append("--database=" + database)
        output = self.run_helper(command, "mysql client")
        return [line.split("\t") for line in output.splitlines() if line]

    def run_sql(self, sql: str, database: str) -> None:
        self.query(sql, database)

    def _database_exists(self, name: str) -> bool:
        return bool(self.query("SHOW DATABASES LIKE '%s'" % name.replace("_", "\\_")))

    def _build_template_database(self, name: str) -> None:
        # Built under another name and moved in whole (RENAME TABLE moves
        # tables between databases, all of them in one statement), so a
        # worker killed in the middle of the hook never leaves a template
        # that looks complete.
        building = name + "_build"
        self.drop_database(building)
        self.query("CREATE DATABASE %s" % _quote(building))
        try:
            self.run_template_hook(building)
            tables = self._base_tables(building)
            statements = ["CREATE DATABASE %s;" % _quote(name)]
            if tables:
                statements.append(
                    "RENAME TABLE %s;"
                    % ", ".join(
                        "%s.%s TO %s.%s" % (_quote(building), _quote(t), _quote(name), _quote(t))
                        for t in tables
                    )
                )
            self.query(" ".join(statements))
        finally:
            self.drop_database(building)

    def _base_tables(self, database: str) -> list[str]:
        """The tables of ``database``, views left out (LIKE cannot copy a
        view, and RENAME TABLE cannot move one)."""
        return [
            row[0] for row in self.query("SHOW FULL TABLES", database) if row[1] == "BASE TABLE"
        ]

    def _create_database(self, name: str, source: str | None) -> None:
        # MySQL has no template databases: the source's tables are copied
        # with CREATE TABLE ... LIKE and INSERT ... SELECT, in one client run.
        statements = ["CREATE DATABASE %s;" % _quote(name)]
        if source:
            for table in self._base_tables(source):
                target, origin = (
                    _quote(name) + "." + _quote(table),
                    _quote(source) + "." + _quote(table),
                )
                statements.append("CREATE TABLE %s LIKE %s;" % (target, origin))
                statements.append("INSERT INTO %s SELECT * FROM %s;" % (target, origin))
        try:
            self.query(" ".join(statements))
        except CommandFailed as exc:
            if "ERROR 1007" not in exc.output:  # not "database exists": ours, half made
                self._drop_database(name)
            raise

    def _drop_database(self, name: str) -> None:
        self.query("DROP DATABASE IF EXISTS %s" % _quote(name))


class MysqlResource(DaemonResource):
    """A testresources manager sharing one :class:`MysqlFixture`."""

    fixture_class = MysqlFixture
