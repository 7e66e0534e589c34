"""MySQL or MariaDB, whichever is installed, on a copy of a cached init."""

from __future__ import annotations

import getpass
import os
import pwd
import secrets
import signal
import typing

from fixtures_daemons.base.binaries import Executable, sibling
from fixtures_daemons.base.databases import DatabaseDaemonFixture, TemplateHook
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.daemons.mysql_admin import CLIENT, MysqlAdmin
from fixtures_daemons.daemons.mysql_server import MysqlServerAdmin
from fixtures_daemons.errors import ExecutableNotFound
from fixtures_daemons.process.probes import LogPattern, Probe

__all__ = ["MysqlFixture", "MysqlResource", "MysqlAdmin"]


class MysqlFixture(DatabaseDaemonFixture):
    """A MariaDB (``mariadbd``) or MySQL (``mysqld``) server on loopback TCP
    and a unix socket in its temp dir; ``root`` needs no password on the
    socket, and on TCP a random one of this server's own, which ``url``
    and ``connect_kwargs`` carry.

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
    aliases = ("mariadb",)
    executable = Executable(
        names=("mariadbd", "mysqld"),
        dirs=("/usr/libexec", "/opt/homebrew/opt/mariadb/bin", "/opt/homebrew/opt/mysql/bin"),
        packages={"Debian/Ubuntu": "mariadb-server", "Homebrew": "mariadb"},
        env_var="FIXTURES_DAEMONS_MYSQLD",
    )
    refuses_root = True
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGTERM  # a clean shutdown
    scheme = "mysql+pymysql"
    server_schemes = ("mysql", "mariadb")
    admin_class = MysqlAdmin
    server_admin_class = MysqlServerAdmin

    def __init__(
        self,
        *,
        database: str = "test",
        template: TemplateHook | None = None,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(database=database, template=template, **kwargs)
        self._accounts_file = ""
        self._password = ""

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

    @property
    def data_dir(self) -> str:
        return self.path("data")

    def prepare(self) -> None:
        self.from_template({"files": self._INNODB_FILES}, self._build_template, self.data_dir)
        self._password = secrets.token_hex(16)
        logins = sorted(_client_logins() | {"root"})
        self._accounts_file = self.write_file("accounts.sql", _accounts_sql(logins, self._password))

    def server_settings(self) -> dict[str, str]:
        settings = {
            "datadir": self.data_dir,
            "socket": self.path("mysqld.sock"),
            "port": str(self.port),
            "bind-address": self.requested_host,
            "pid-file": self.path("mysqld.pid"),
            "tmpdir": self.temp_dir,
            "skip-name-resolve": "ON",
            "character-set-server": "utf8mb4",
            "innodb-buffer-pool-size": "16M",
            "innodb-buffer-pool-dump-at-shutdown": "OFF",
            "innodb-buffer-pool-load-at-startup": "OFF",
            "skip-log-bin": "ON",
        }
        if self._accounts_file:
            settings["init-file"] = self._accounts_file
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

    def command_line(self) -> list[str]:
        command = [self.binary, "--no-defaults"]
        for key, value in self.settings().items():
            if key.startswith("skip-") and value == "ON":
                command.append("--" + key)
            else:
                command.append("--%s=%s" % (key, value))
        return command

    def probe(self) -> Probe:
        return LogPattern(r"ready for connections")

    def build_endpoint(self) -> Endpoint:
        return (
            super()
            .build_endpoint()
            .replace(
                user="root",
                password=self._password,
                database=self.requested_database,
                sockets={"main": self.path("mysqld.sock")},
            )
        )

    def own_admin(self, endpoint: Endpoint) -> MysqlAdmin:
        client = ""
        if self.binary:  # the client beside the server we started
            for name in CLIENT.names:
                try:
                    client = sibling(self.binary, name)
                    break
                except ExecutableNotFound:
                    continue
        return MysqlAdmin(endpoint, self.daemon_name, self.timeout, client)

    # -- what tests use ------------------------------------------------------

    @property
    def user(self) -> str:
        return self.endpoint.user

    @property
    def socket_path(self) -> str:
        return self.endpoint.socket

    @property
    def connect_kwargs(self) -> dict[str, typing.Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.endpoint.password,
            "database": self.database,
        }

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        return "mysql://root@localhost/%s?unix_socket=%s" % (endpoint.database, endpoint.socket)

    def pifpaf_raw_exports(self, endpoint: Endpoint, prefix: str) -> dict[str, str]:
        # What the mysql client reads, so that `run mysql -- mysql` needs
        # no options (as PGHOST for psql). TCP: an option file's socket
        # (Debian's /etc/mysql/my.cnf names the system server's) overrides
        # MYSQL_UNIX_PORT, but none names a port.
        return {
            "MYSQL_HOST": endpoint.host,
            "MYSQL_UNIX_PORT": endpoint.socket,
            "MYSQL_TCP_PORT": str(endpoint.port),
            "MYSQL_PWD": endpoint.password,
        }

    def query(self, sql: str, database: str = "") -> list[list[str]]:
        """Run SQL with the command-line client; return the rows, as text."""
        return typing.cast(MysqlAdmin, self.admin).query(sql, database)


def _client_logins() -> set[str]:
    """The names the ``mysql`` client logs in with when given no ``--user``:
    the login name (the client reads ``$USER``, else the account of its
    uid)."""
    logins = {pwd.getpwuid(os.geteuid()).pw_name}
    try:
        logins.add(getpass.getuser())
    except (KeyError, OSError):
        pass
    return {name for name in logins if name}


def _sql_string(text: str) -> str:
    return "'%s'" % text.replace("\\", "\\\\").replace("'", "''")


def _accounts_sql(logins: typing.Iterable[str], password: str) -> str:
    """The accounts, run at every start (``init-file``): each login (``root``
    and the test user's login names, so that the ``mysql`` client needs no
    ``--user``) as mighty as ``root``; on the unix socket (``localhost``:
    with ``skip-name-resolve`` no TCP client matches it) without a password,
    on loopback TCP with this daemon's own random ``password``, so that no
    other local user gets in."""
    lines = []
    for login in logins:
        name = _sql_string(login)
        for host, secret in (("localhost", ""), ("127.0.0.1", password), ("::1", password)):
            account = "%s@'%s'" % (name, host)
            lines.append("CREATE USER IF NOT EXISTS %s;" % account)
            lines.append("ALTER USER %s IDENTIFIED BY %s;" % (account, _sql_string(secret)))
            lines.append("GRANT ALL PRIVILEGES ON *.* TO %s WITH GRANT OPTION;" % account)
    return "\n".join(lines) + "\n"


class MysqlResource(DaemonResource):
    """A testresources manager sharing one :class:`MysqlFixture`."""

    fixture_class = MysqlFixture
