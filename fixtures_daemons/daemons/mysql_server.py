"""MySQL and MariaDB servers the library did not start: a database per
fixture.

A CI service container or a shared server is reached through PyMySQL (the
``mysql`` extra): a password user, and TLS from the URL's query
(``ssl_ca``, ``ssl_cert``, ``ssl_key``, ``ssl_verify_cert``,
``ssl_verify_identity``). Everything else (copies of a template database,
its build) is the SQL of the admin of our own servers, run through this
connection instead of the command-line client.

MySQL keeps no comment on a database, so a database made here carries its
maker in its name (:func:`fixtures_daemons.base.makers.marked_name`:
``test_fxd_<host>_<pid>_<start>_<when>_<random>``); the first fixture of a
process on a server drops those whose maker is dead. The user needs every
right on the databases ``test\\_%`` (and ``fxd\\_template\\_%`` for
templates), nothing else::

    CREATE USER 'app'@'%' IDENTIFIED BY 'secret';
    GRANT ALL PRIVILEGES ON `test\\_%`.* TO 'app'@'%';
    GRANT ALL PRIVILEGES ON `fxd\\_template\\_%`.* TO 'app'@'%';
"""

from __future__ import annotations

import typing
import urllib.parse

from fixtures_daemons.base.channels import Channels
from fixtures_daemons.base.endpoint import QUERY, redact
from fixtures_daemons.base.makers import NAME_PREFIX, left_name, marked_name
from fixtures_daemons.daemons.mysql_admin import MysqlAdmin, rows_of
from fixtures_daemons.errors import AdminError, ClientLibraryMissing, ServerError

__all__ = ["MysqlServerAdmin"]

_FLAGS = ("ssl_verify_cert", "ssl_verify_identity", "ssl_disabled")
_TEXT = ("ssl_ca", "ssl_cert", "ssl_key", "charset")


def _pymysql(name: str, request: str) -> typing.Any:
    try:
        import pymysql  # type: ignore[import-untyped]
    except ImportError:
        raise ClientLibraryMissing(name, request, "pymysql", "fixtures-daemons[mysql]") from None
    return pymysql


#: The long-lived connections of this process (see base/channels.py).
_channels = Channels(close=lambda conn: conn.close(), usable=lambda conn: bool(conn.open))
#: The servers (URLs) this process has checked.
_checked: set[str] = set()


class MysqlServerAdmin(MysqlAdmin):
    """Databases on a MySQL/MariaDB server the library did not start,
    through PyMySQL, as the URL's user."""

    def _connect(self, database: str = "") -> typing.Any:
        pymysql = _pymysql(self.name, "connect to %s" % redact(self.endpoint.url))
        endpoint = self.endpoint
        kwargs: dict[str, typing.Any] = {}
        for key, value in urllib.parse.parse_qsl(endpoint.extra.get(QUERY, "")):
            if key in _FLAGS:
                kwargs[key] = value.lower() in ("1", "true", "yes", "on")
            elif key in _TEXT:
                kwargs[key] = value
        return pymysql.connect(
            host=endpoint.host,
            port=endpoint.port or 3306,
            user=endpoint.user,
            password=endpoint.password,
            database=database or None,
            connect_timeout=max(1, round(self.timeout)),
            read_timeout=max(1, round(self.timeout)),
            write_timeout=max(1, round(self.timeout)),
            autocommit=True,
            client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
            **kwargs,
        )

    def query(self, sql: str, database: str = "") -> list[list[str]]:
        """Run SQL (one or more statements); the rows of every result, as
        text. In ``database`` on a connection of its own (it may be dropped
        next), else on the long-lived one."""
        pymysql = _pymysql(self.name, sql)
        try:
            if database:
                conn = self._connect(database)
                try:
                    return rows_of(conn, sql)
                finally:
                    conn.close()
            endpoint = self.endpoint
            key = (
                endpoint.host,
                endpoint.port,
                endpoint.user,
                endpoint.password,
                tuple(sorted(endpoint.extra.items())),
                self.timeout,  # a connection's timeouts are its maker's
            )
            return _channels.use(
                key, self._connect, lambda conn: rows_of(conn, sql), self.timeout, self.name, sql
            )
        except pymysql.MySQLError as exc:
            raise AdminError(self.name, sql, self._reason(exc)) from None

    def run_sql(self, sql: str, database: str) -> None:
        self.query(sql, database)

    def _reason(self, exc: Exception) -> str:
        code = exc.args[0] if exc.args else 0
        text = " ".join(str(a) for a in exc.args[1:]) or str(exc)
        if code in (1044, 1142, 1227):  # access denied to a database, a table, a right
            return "%s; the user needs every right on `test\\_%%` (see the guide, 'Servers')" % text
        return text

    def database_exists(self, name: str) -> bool:
        # SHOW DATABASES LIKE, without the client's own quoting rules.
        rows = self.query(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '%s'"
            % name.replace("'", "''")
        )
        return bool(rows)

    def check_server(self, source: str) -> None:
        if self.endpoint.url in _checked:  # once per process
            return
        url = redact(self.endpoint.url)
        pymysql = _pymysql(self.name, "connect to %s" % url)
        try:
            conn = self._connect()
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SHOW GRANTS")
                    grants = " ".join(str(row[0]) for row in cursor.fetchall())
            finally:
                conn.close()
        except pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args else 0
            text = " ".join(str(a) for a in exc.args[1:]) or str(exc)
            lowered = text.lower()
            if code == 1045:
                reason, hint = (
                    "it refuses the credentials (%s)" % text,
                    ("check the user and password in the URL"),
                )
            elif "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
                reason, hint = (
                    "TLS failed (%s)" % text,
                    ("check ssl_ca and the server's certificate"),
                )
            else:
                reason, hint = "it does not answer (%s)" % text, "check the host and port"
            raise ServerError(self.name, source, url, reason, hint) from None
        if "ALL PRIVILEGES ON *.*" not in grants and "test\\_%" not in grants:
            raise ServerError(
                self.name,
                source,
                url,
                "the user %s cannot make the databases fixtures need" % self.endpoint.user,
                "grant it with: GRANT ALL PRIVILEGES ON `test\\_%%`.* TO '%s'@'%%'"
                % self.endpoint.user,
            )
        _checked.add(self.endpoint.url)

    # -- databases that carry their maker ----------------------------------------

    def new_database_name(self) -> str:
        return marked_name()

    def create_database(self, name: str, template: str | None = None) -> None:
        self.sweep()
        super().create_database(name, template)

    def leftovers(self, remove: bool = False, templates: bool = False) -> list[str]:
        pattern = NAME_PREFIX.replace("_", "\\_") + "%"
        names = [row[0] for row in self.query("SHOW DATABASES LIKE '%s'" % pattern)]
        found = [name for name in names if left_name(name)]
        if templates:
            found += [row[0] for row in self.query("SHOW DATABASES LIKE 'fxd\\_template\\_%'")]
        if remove:
            for name in found:
                try:
                    self.drop_database(name)
                except AdminError:
                    pass  # the next sweep
        return found
