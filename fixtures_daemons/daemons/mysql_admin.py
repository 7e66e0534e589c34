"""The admin of our own MySQL/MariaDB servers: SQL through the
command-line client on the private unix socket (the server admin of
servers the library did not start reuses its SQL over PyMySQL)."""

from __future__ import annotations

import typing

from fixtures_daemons.base.binaries import Executable, find_executable
from fixtures_daemons.base.channels import Channels
from fixtures_daemons.base.databases import SqlAdmin
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.errors import AdminError, CommandFailed
from fixtures_daemons.process.commands import run_command

__all__ = ["CLIENT", "MysqlAdmin", "error_text", "optional_pymysql", "rows_of"]

#: The command-line client, found beside the server or on PATH.
CLIENT = Executable(
    names=("mariadb", "mysql"),
    dirs=("/opt/homebrew/opt/mariadb/bin", "/opt/homebrew/opt/mysql/bin"),
    packages={"Debian/Ubuntu": "mariadb-client", "Homebrew": "mariadb"},
)


def _quote(name: str) -> str:
    return "`%s`" % name.replace("`", "``")


def optional_pymysql() -> typing.Any:
    """PyMySQL, when installed (the ``mysql`` extra); else None."""
    try:
        import pymysql  # type: ignore[import-untyped]
    except ImportError:
        return None
    return pymysql


def rows_of(conn: typing.Any, sql: str) -> list[list[str]]:
    """Run ``sql`` (one or more statements) on a PyMySQL connection; the
    rows of every result, as text, as the command-line client gives them."""
    rows: list[list[str]] = []
    with conn.cursor() as cursor:
        cursor.execute(sql)
        while True:
            for row in cursor.fetchall() or ():
                rows.append(["NULL" if v is None else str(v) for v in row])
            if not cursor.nextset():
                break
    return rows


def error_text(exc: Exception) -> str:
    """A PyMySQL error as the server said it: ``ERROR <code>: <message>``."""
    if len(exc.args) >= 2:
        return "ERROR %s: %s" % (exc.args[0], exc.args[1])
    return str(exc)


#: The long-lived connections to our own servers (see base/channels.py).
_own_channels = Channels(close=lambda conn: conn.close(), usable=lambda conn: bool(conn.open))


class MysqlAdmin(SqlAdmin):
    """Databases on one of our MySQL/MariaDB servers, through the
    command-line client on the unix socket (where ``root`` needs no
    password).

    :param client: the client's path (default: searched).
    """

    def __init__(
        self, endpoint: Endpoint, name: str = "", timeout: float = 30.0, client: str = ""
    ) -> None:
        super().__init__(endpoint, name, timeout)
        self.client = client

    def query(self, sql: str, database: str = "") -> list[list[str]]:
        """Run SQL; return the rows, as text. The administration's own
        statements (no ``database``) go through PyMySQL on a long-lived
        connection over the private socket when PyMySQL is installed (the
        ``mysql`` extra: a client process per request costs tens of
        milliseconds); SQL in a database (a template file, a test's own
        query) goes through the command-line client, whose errors name the
        line of the statement."""
        pymysql = optional_pymysql()
        if pymysql is not None and not database and self.endpoint.socket:
            try:
                return _own_channels.use(
                    # By timeout too: a connection's timeouts are its maker's.
                    (self.endpoint.socket, self.endpoint.user, self.timeout),
                    lambda: pymysql.connect(
                        unix_socket=self.endpoint.socket,
                        user=self.endpoint.user,
                        connect_timeout=max(1, round(self.timeout)),
                        read_timeout=max(1, round(self.timeout)),
                        write_timeout=max(1, round(self.timeout)),
                        autocommit=True,
                        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
                    ),
                    lambda conn: rows_of(conn, sql),
                    self.timeout,
                    self.name or "mysql",
                    sql,
                )
            except pymysql.MySQLError as exc:
                raise AdminError(self.name or "mysql", sql, error_text(exc)) from None
        return self._query_client(sql, database)

    def _query_client(self, sql: str, database: str = "") -> list[list[str]]:
        """Run SQL with the command-line client; return the rows, as text."""
        self.client = self.client or find_executable(CLIENT, None, self.name)
        command = [
            self.client,
            "--no-defaults",
            "--user=" + self.endpoint.user,
            "--socket=" + self.endpoint.socket,
            "--batch",
            "--skip-column-names",
            "--execute=" + sql,
        ]
        if database:
            command.append("--database=" + database)
        try:
            output = run_command(command, self.name or "mysql", self.timeout)
        except CommandFailed as exc:
            if exc.returncode is None:
                reason = "no answer within %.1f s" % self.timeout
            else:
                reason = exc.output.strip()
            raise AdminError(self.name or "mysql", sql, reason) from None
        return [line.split("\t") for line in output.splitlines() if line]

    def answers(self) -> bool:
        try:
            return bool(self.query("SELECT 1"))
        except AdminError:
            return False

    def run_sql(self, sql: str, database: str) -> None:
        self.query(sql, database)

    def database_exists(self, name: str) -> bool:
        return bool(self.query("SHOW DATABASES LIKE '%s'" % name.replace("_", "\\_")))

    def build_template(self, name: str, fill: typing.Callable[[str], None]) -> None:
        # Built under another name and moved in whole (RENAME TABLE moves
        # tables between databases, all of them in one statement), so a
        # worker killed in the middle of the hook never leaves a template
        # that looks complete.
        building = name + "_build"
        self.drop_database(building)
        self.query("CREATE DATABASE %s" % _quote(building))
        try:
            fill(building)
            tables = self.base_tables(building)
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

    def base_tables(self, database: str) -> list[str]:
        """The tables of ``database``, views left out (LIKE cannot copy a
        view, and RENAME TABLE cannot move one)."""
        return [
            row[0] for row in self.query("SHOW FULL TABLES", database) if row[1] == "BASE TABLE"
        ]

    def create_database(self, name: str, template: str | None = None) -> None:
        # MySQL has no template databases: the source's tables are copied
        # with CREATE TABLE ... LIKE and INSERT ... SELECT, in one client run.
        statements = ["CREATE DATABASE %s;" % _quote(name)]
        if template:
            for table in self.base_tables(template):
                target, origin = (
                    _quote(name) + "." + _quote(table),
                    _quote(template) + "." + _quote(table),
                )
                statements.append("CREATE TABLE %s LIKE %s;" % (target, origin))
                statements.append("INSERT INTO %s SELECT * FROM %s;" % (target, origin))
        try:
            self.query(" ".join(statements))
        except AdminError as exc:
            if "ERROR 1007" not in exc.reason:  # not "database exists": ours, half made
                self.drop_database(name)
            raise

    def drop_database(self, name: str) -> None:
        self.query("DROP DATABASE IF EXISTS %s" % _quote(name))
