"""PostgreSQL servers the library did not start: a database per fixture.

A CI service container, a managed PostgreSQL or a team's shared test
server is reached through psycopg (the ``postgresql`` extra), never the
minimal client the library keeps for its own servers: passwords
(``scram-sha-256``, ``md5``) and TLS (``sslmode`` up to ``verify-full``,
from the URL's query) are the client library's. The role needs only
``CREATEDB`` and ``LOGIN``: every database a fixture makes is owned by it,
so it may copy, rename, end the sessions of and drop what it made, and
nothing else.

Every database made here carries its maker's mark in its comment
(:mod:`fixtures_daemons.base.makers`); the first fixture of a process on a
server drops what dead makers left. ``fixtures-daemons leftovers`` lists and
drops them on request. Nothing without the mark is ever touched.
"""

from __future__ import annotations

import typing
import urllib.parse
import uuid

from fixtures_daemons.base.channels import Channels
from fixtures_daemons.base.databases import SqlAdmin
from fixtures_daemons.base.endpoint import QUERY, redact
from fixtures_daemons.base.makers import MARK_PREFIX, left, mark
from fixtures_daemons.errors import AdminError, ClientLibraryMissing, ServerError

__all__ = ["PostgresqlServerAdmin", "TEMPLATE_MARK"]

#: The comment of a template database made on a server.
TEMPLATE_MARK = "fixtures-daemons template"


def _psycopg(name: str, request: str) -> typing.Any:
    try:
        import psycopg
    except ImportError:
        raise ClientLibraryMissing(
            name, request, "psycopg", "fixtures-daemons[postgresql]"
        ) from None
    return psycopg


def _ident(name: str) -> str:
    return '"%s"' % name.replace('"', '""')


#: The long-lived connections to the URLs' databases (see base/channels.py).
_channels = Channels(
    close=lambda conn: conn.close(), usable=lambda conn: not (conn.closed or conn.broken)
)
#: The servers (connection parameters) this process has checked.
_checked: set[tuple[tuple[str, str], ...]] = set()


class PostgresqlServerAdmin(SqlAdmin):
    """Databases on a PostgreSQL server the library did not start, through
    psycopg, as the URL's user, on one long-lived connection per process
    to the URL's database (``postgres`` when the URL names none)."""

    def _params(self, database: str = "") -> dict[str, str]:
        endpoint = self.endpoint
        params = dict(urllib.parse.parse_qsl(endpoint.extra.get(QUERY, "")))
        params.update(
            host=endpoint.host,
            dbname=database or endpoint.database or "postgres",
            connect_timeout=str(max(1, round(self.timeout))),
        )
        if endpoint.port:
            params["port"] = str(endpoint.port)
        if endpoint.user:
            params["user"] = endpoint.user
        if endpoint.password:
            params["password"] = endpoint.password
        return params

    def _run(self, sql: str, database: str = "", request: str = "") -> list[tuple[typing.Any, ...]]:
        """Run ``sql``: in ``database`` on a connection of its own (it may
        be renamed or dropped next), else on the long-lived connection to
        the URL's database."""
        psycopg = _psycopg(self.name, request or sql)

        def execute(conn: typing.Any) -> list[tuple[typing.Any, ...]]:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

        try:
            if database:
                with psycopg.connect(autocommit=True, **self._params(database)) as conn:
                    return execute(conn)
            params = self._params()
            return _channels.use(
                tuple(sorted(params.items())),
                lambda: psycopg.connect(autocommit=True, **params),
                execute,
                self.timeout,
                self.name,
                request or sql,
            )
        except psycopg.errors.InsufficientPrivilege as exc:
            raise AdminError(self.name, request or sql, self._privilege(str(exc))) from None
        except psycopg.Error as exc:
            raise AdminError(self.name, request or sql, str(exc).strip()) from None

    def _privilege(self, text: str) -> str:
        user = self.endpoint.user or "<the URL's user>"
        if "create database" in text:
            return "%s; the role needs CREATEDB: ALTER ROLE %s CREATEDB" % (text.strip(), user)
        return "%s; the role %s lacks a right it needs (see the guide, 'Servers')" % (
            text.strip(),
            user,
        )

    # -- checks ------------------------------------------------------------------

    def answers(self) -> bool:
        try:
            self._run("SELECT 1")
        except AdminError:
            return False
        return True

    def check_server(self, source: str) -> None:
        key = tuple(sorted(self._params().items()))
        if key in _checked:  # once per process: later setUps pay nothing
            return
        url = redact(self.endpoint.url)
        psycopg = _psycopg(self.name, "connect to %s" % url)
        user = self.endpoint.user or "<the URL's user>"
        try:
            with psycopg.connect(autocommit=True, **self._params()) as conn:
                row = conn.execute(
                    "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
                ).fetchone()
        except psycopg.OperationalError as exc:
            text = str(exc).strip()
            lowered = text.lower()
            if "password" in lowered and ("failed" in lowered or "no password" in lowered):
                reason, hint = (
                    "it refuses the credentials (%s)" % text,
                    ("check the user and password in the URL"),
                )
            elif "ssl" in lowered or "certificate" in lowered:
                reason, hint = (
                    "TLS failed (%s)" % text,
                    ("check sslmode, sslrootcert (the CA file) and the server's certificate"),
                )
            elif "database" in lowered and "does not exist" in lowered:
                reason, hint = text, "name an existing database in the URL's path (postgres)"
            else:
                reason, hint = "it does not answer (%s)" % text, "check the host and port"
            raise ServerError(self.name, source, url, reason, hint) from None
        except psycopg.Error as exc:
            raise ServerError(self.name, source, url, str(exc).strip()) from None
        if not row or not row[0]:
            raise ServerError(
                self.name,
                source,
                url,
                "the role %s cannot create databases" % user,
                "grant it with: ALTER ROLE %s CREATEDB" % _ident(user),
            )
        _checked.add(key)

    # -- databases ---------------------------------------------------------------

    def database_exists(self, name: str) -> bool:
        rows = self._run(
            "SELECT 1 FROM pg_database WHERE datname = %s" % _literal(name),
            request="database_exists %s" % name,
        )
        return bool(rows)

    def create_database(self, name: str, template: str | None = None) -> None:
        self.sweep()
        sql = "CREATE DATABASE %s%s" % (
            _ident(name),
            " TEMPLATE %s" % _ident(template) if template else "",
        )
        self._run(sql)
        try:
            self._run("COMMENT ON DATABASE %s IS %s" % (_ident(name), _literal(mark())))
        except BaseException:
            self.drop_database(name)
            raise

    def drop_database(self, name: str) -> None:
        # WITH (FORCE) ends the sessions (the role's own) first.
        self._run("DROP DATABASE IF EXISTS %s WITH (FORCE)" % _ident(name))

    def run_sql(self, sql: str, database: str) -> None:
        self._run(sql, database, request="SQL in %s" % database)

    def build_template(self, name: str, fill: typing.Callable[[str], None]) -> None:
        # Built under a name of its own (another machine may build the same
        # template at the same moment: the machine-wide lock does not reach
        # it) and renamed when complete; the loser of the rename drops its
        # copy.
        building = "%s_b%s" % (name[:50], uuid.uuid4().hex[:8])
        self.create_database(building)
        try:
            fill(building)
            self._run(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()" % _literal(building)
            )
            self._run("ALTER DATABASE %s RENAME TO %s" % (_ident(building), _ident(name)))
            # A template outlives its maker, for the next runs: never swept
            # (``fixtures-daemons leftovers --templates`` lists them).
            self._run("COMMENT ON DATABASE %s IS %s" % (_ident(name), _literal(TEMPLATE_MARK)))
        except AdminError:
            self.drop_database(building)
            if not self.database_exists(name):
                raise
        except BaseException:
            self.drop_database(building)
            raise

    # -- what dead creators left -------------------------------------------------

    def marked(self) -> list[tuple[str, str]]:
        """(name, comment) of every database that carries a mark (a
        template's included)."""
        rows = self._run(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE starts_with(coalesce(shobj_description(oid, 'pg_database'), ''), %s) "
            "OR shobj_description(oid, 'pg_database') = %s"
            % (_literal(MARK_PREFIX), _literal(TEMPLATE_MARK)),
            request="list the databases fixtures made",
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    def leftovers(self, remove: bool = False, templates: bool = False) -> list[str]:
        """The databases that dead creators left on the server (see the
        module docstring), and with ``templates`` the template databases
        kept for later runs; dropped too with ``remove`` (what cannot be
        dropped now, in use or dropped by another a moment ago, is left
        for the next time)."""
        found = [
            name
            for name, comment in self.marked()
            if left(comment) or (templates and comment == TEMPLATE_MARK)
        ]
        if remove:
            for name in found:
                try:
                    self.drop_database(name)
                except AdminError:
                    pass
        return found


def _literal(text: str) -> str:
    return "'%s'" % text.replace("'", "''")
