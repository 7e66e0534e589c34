"""MySQL or MariaDB, whichever is installed, on a copy of a cached init."""

from __future__ import annotations

import shutil
import signal
import typing

from fixtures_daemons.binaries import Executable, sibling
from fixtures_daemons.daemon import DaemonFixture
from fixtures_daemons.errors import ExecutableNotFound
from fixtures_daemons.probes import LogPattern, Probe

__all__ = ["MysqlFixture"]

_SYSTEM_DATABASES = ("information_schema", "mysql", "performance_schema", "sys")


def _quote(name: str) -> str:
    return "`%s`" % name.replace("`", "``")


class MysqlFixture(DaemonFixture):
    """A MariaDB (``mariadbd``) or MySQL (``mysqld``) server on loopback TCP
    and a unix socket in its temp dir; ``root`` has no password.

    Initialisation (``mariadb-install-db``, or ``mysqld
    --initialize-insecure`` for MySQL) runs once and is cached as a template;
    every instance starts on a copy. cleanUp kills it (its data is thrown
    away); :meth:`stopped` shuts it down cleanly, so the data is back after
    the restart.

    :param database: the database ``url`` points at, created at start.

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

    def __init__(self, *, database: str = "test", **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.user = "root"

    @property
    def flavour(self) -> str:
        return "mariadb" if "mariadb" in self.version().lower() else "mysql"

    # Small redo log and system tablespace: the template is copied per instance.
    _INNODB_FILES = {"innodb-log-file-size": "4M", "innodb-data-file-path": "ibdata1:4M:autoextend"}

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
        self.query("CREATE DATABASE IF NOT EXISTS %s" % _quote(self.database))

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
                return sibling(self.binary, name)
            except ExecutableNotFound:
                continue
            found = shutil.which(name)
            if found:
                return found
        raise ExecutableNotFound(
            self.daemon_name,
            "mariadb or mysql (the client)",
            packages={"Debian/Ubuntu": "mariadb-client", "Homebrew": "mariadb"},
        )

    def query(self, sql: str) -> list[list[str]]:
        """Run SQL with the command-line client; return the rows, as text."""
        output = self.run_helper(
            [
                self._client(),
                "--no-defaults",
                "--user=root",
                "--socket=" + self.socket_path,
                "--batch",
                "--skip-column-names",
                "--execute=" + sql,
            ],
            "mysql client",
        )
        return [line.split("\t") for line in output.splitlines() if line]

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database; return its name, random unless given."""
        import uuid

        name = name or "test_" + uuid.uuid4().hex[:12]
        self.query("CREATE DATABASE %s" % _quote(name))
        return name

    def drop_database(self, name: str) -> None:
        self.query("DROP DATABASE IF EXISTS %s" % _quote(name))

    def reset(self) -> None:
        """Drop every database but the system ones; recreate ``database``."""
        names = [row[0] for row in self.query("SHOW DATABASES")]
        statements = ["DROP DATABASE %s;" % _quote(n) for n in names if n not in _SYSTEM_DATABASES]
        statements.append("CREATE DATABASE %s;" % _quote(self.database))
        self.query(" ".join(statements))
