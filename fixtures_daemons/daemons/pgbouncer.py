"""pgbouncer in front of a PostgreSQL: the example of a composed daemon.

A :class:`PgbouncerFixture` needs a PostgreSQL server, its *upstream*: a
:class:`~fixtures_daemons.PostgresqlFixture` it is given (set up already,
or set up by it), or one it makes itself, which attaches to a PostgreSQL
exported by an enclosing ``fixtures-daemons run postgresql`` and otherwise
starts one. The upstream is set up with ``useFixture`` before pgbouncer
starts, so cleanUp stops pgbouncer first, then the upstream.

The upstream's whole endpoint travels in pgbouncer's (``extra["upstream"]``,
as JSON): a fixture attached to a shared pgbouncer makes and drops its
database on the upstream through it, without having seen the upstream
fixture.
"""

from __future__ import annotations

import os
import signal
import typing

from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.databases import DatabaseDaemonFixture, SqlAdmin, TemplateHook
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import Namespace
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.daemons import _pgwire
from fixtures_daemons.daemons.postgresql import PostgresqlAdmin, PostgresqlFixture, libpq_dsn
from fixtures_daemons.errors import AdminError, MisuseError
from fixtures_daemons.process import probes
from fixtures_daemons.process.probes import Probe

__all__ = ["PgbouncerFixture", "PgbouncerResource", "PgbouncerAdmin"]

POOL_MODES = ("session", "transaction", "statement")
#: pgbouncer's own database: its admin console.
CONSOLE = "pgbouncer"
#: The parameters a PgbouncerFixture passes on to the upstream it makes.
_SHARED = ("host", "timeout", "os_user", "temp_root", "durable")


class PgbouncerAdmin(SqlAdmin):
    """A pgbouncer we started, and the PostgreSQL behind it.

    ``answers()`` and :meth:`console` talk to pgbouncer's admin console
    (the ``pgbouncer`` database) over its unix socket, with the built-in
    minimal client (trust authentication, as for our PostgreSQL servers);
    the databases are made, copied and dropped on the upstream, through a
    :class:`~fixtures_daemons.daemons.postgresql.PostgresqlAdmin` of the
    endpoint's ``extra["upstream"]``.
    """

    def __init__(self, endpoint: Endpoint, name: str = "", timeout: float = 30.0) -> None:
        super().__init__(endpoint, name, timeout)
        text = endpoint.extra.get("upstream", "")
        self._upstream = (
            PostgresqlAdmin(Endpoint.from_json(text, "pgbouncer's upstream"), "postgresql", timeout)
            if text
            else None
        )

    @property
    def upstream(self) -> PostgresqlAdmin:
        """The admin of the PostgreSQL behind pgbouncer."""
        if self._upstream is None:
            raise MisuseError(
                self.name, "the upstream's admin", "this endpoint does not name its upstream"
            )
        return self._upstream

    def console(self, command: str) -> list[tuple[str | None, ...]]:
        """Run one admin console command (``SHOW POOLS``, ``SHOW CONFIG``,
        ``RELOAD``); return its rows, as text."""
        try:
            with _pgwire.connect(
                self.endpoint.socket, self.endpoint.user, CONSOLE, self.timeout
            ) as conn:
                return conn.query(command)
        except _pgwire.PgError as exc:
            raise AdminError(self.name, command, str(exc)) from exc

    def answers(self) -> bool:
        try:
            return bool(self.console("SHOW VERSION"))
        except (OSError, AdminError):
            return False

    # -- the databases: on the upstream ------------------------------------------

    def database_exists(self, name: str) -> bool:
        return self.upstream.database_exists(name)

    def create_database(self, name: str, template: str | None = None) -> None:
        self.upstream.create_database(name, template)

    def drop_database(self, name: str) -> None:
        # The upstream terminates pgbouncer's server connections to it too.
        self.upstream.drop_database(name)

    def run_sql(self, sql: str, database: str) -> None:
        self.upstream.run_sql(sql, database)

    def build_template(self, name: str, fill: typing.Callable[[str], None]) -> None:
        self.upstream.build_template(name, fill)


class UpstreamDatabase(Namespace):
    """What a fixture that started its pgbouncer owns: the database of its
    upstream fixture (the upstream's own, or the one the upstream owns on a
    shared server); :meth:`reset` resets the upstream.

    # BASE CANDIDATE: the namespace of a composed daemon that serves
    # another fixture's namespace (see PgbouncerFixture's comment).
    """

    narrows = ("database",)

    def __init__(self, fixture: PgbouncerFixture) -> None:
        super().__init__(fixture)
        self.pgbouncer = fixture

    def enter(self, endpoint: Endpoint) -> Endpoint:
        return endpoint.replace(database=self.pgbouncer.upstream.database)

    def reset(self) -> None:
        self.pgbouncer.upstream.reset()


class PgbouncerFixture(DatabaseDaemonFixture):
    """pgbouncer, a PostgreSQL connection pooler, in front of a PostgreSQL.

    The upstream is set up first (``useFixture``) and cleaned up last:
    pgbouncer is gone before its PostgreSQL is. pgbouncer listens on
    loopback on a reserved port and on a unix socket in its temp dir, and
    reaches the upstream over TCP; clients log in as the upstream's user,
    on its unix socket with trust authentication and on TCP with the
    upstream's password (``url`` carries it), as they do to the upstream
    itself (the upstream's superuser is also its console's admin). Every
    database of the upstream is served under its own name. It is ready
    when its admin console answers ``SHOW VERSION``; its data lives in the
    upstream, so cleanUp and :meth:`stopped` kill it (SIGKILL).

    :param upstream: the PostgreSQL to pool: a
        :class:`~fixtures_daemons.PostgresqlFixture` not set up yet (set up
        and cleaned up by this fixture) or set up already (used as it is,
        and left running); None (the default) for a
        ``PostgresqlFixture()`` made here, which attaches to the PostgreSQL
        of an enclosing ``fixtures-daemons run postgresql`` (a database of
        its own) and otherwise starts one. Not a command-line option: there
        the upstream is found from the exported variables.
    :param pool_mode: ``session``, ``transaction`` (the default) or
        ``statement``: when a server connection goes back to the pool.
    :param database: the database ``url`` points at, for the upstream
        made here (as ``PostgresqlFixture(database=...)``; by default its
        own default, ``postgres``, or a new one on a shared server).
    :param user: the upstream's superuser, for the upstream made here
        (default ``postgres``).
    :param template: a template hook (an SQL file or a callable), for the
        upstream made here and for the databases of fixtures attached to
        this pgbouncer.

    Attributes: ``url`` (``postgresql://user@host:port/database``, through
    pgbouncer), ``dsn``, ``database``, ``user``, ``socket_dir``,
    ``pool_mode``, ``upstream`` (the PostgreSQL fixture, when this fixture
    started its pgbouncer), ``upstream_url`` (the same database, reached
    directly).
    """

    # BASE CANDIDATE: composition. An ``upstream`` declaration on
    # DaemonFixture (a fixture class, made when not given, set up with
    # useFixture at the start of Spawned.acquire, its endpoint carried in
    # the composed daemon's endpoint) would give nginx in front of httpbin
    # the same shape; prepare() below is where it is done for now.

    daemon_name = "pgbouncer"
    executable = Executable(
        names=("pgbouncer",),
        dirs=("/usr/sbin", "/usr/local/sbin", "/opt/homebrew/bin", "/usr/local/bin"),
        packages={"Debian/Ubuntu": "pgbouncer", "Fedora": "pgbouncer", "Homebrew": "pgbouncer"},
        env_var="FIXTURES_DAEMONS_PGBOUNCER",
    )
    refuses_root = True  # "PgBouncer should not run as root"
    # It keeps nothing: its data is the upstream's. Killing it also works
    # with pgbouncer 1.23 and later, whose SIGTERM waits for the clients.
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGKILL
    scheme = "postgresql"
    admin_class = PgbouncerAdmin
    #: Its upstream may be the PostgreSQL another fixture exported.
    spare_servers = False

    def __init__(
        self,
        *,
        upstream: PostgresqlFixture | None = None,
        pool_mode: str = "transaction",
        database: str | None = None,
        user: str | None = None,
        template: TemplateHook | None = None,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(database=database or "postgres", template=template, **kwargs)
        if upstream is not None and not isinstance(upstream, PostgresqlFixture):
            raise MisuseError(
                self.daemon_name,
                "%s(upstream=%r)" % (type(self).__name__, upstream),
                "upstream must be a PostgresqlFixture (or None); on the command line, run "
                "`fixtures-daemons run postgresql -- fixtures-daemons run pgbouncer -- ...`",
            )
        if pool_mode not in POOL_MODES:
            raise MisuseError(
                self.daemon_name,
                "%s(pool_mode=%r)" % (type(self).__name__, pool_mode),
                "pool_mode must be one of %s" % ", ".join(POOL_MODES),
            )
        self._upstream_kwargs: dict[str, typing.Any] = {
            name: value
            for name, value in (("database", database), ("user", user), ("template", template))
            if value is not None
        }
        if upstream is not None and self._upstream_kwargs:
            given = list(self._upstream_kwargs)
            raise MisuseError(
                self.daemon_name,
                "%s(upstream=..., %s=...)" % (type(self).__name__, given[0]),
                "%s describes the upstream this fixture makes itself: give it to the "
                "PostgresqlFixture passed as upstream" % given[0],
            )
        self.given_upstream = upstream
        self.pool_mode = pool_mode
        self.requested_user = user or "postgres"

    def _clear_state(self) -> None:
        super()._clear_state()
        self._upstream: PostgresqlFixture | None = None

    # -- composition -------------------------------------------------------------

    def make_upstream(self) -> PostgresqlFixture:
        """The ``PostgresqlFixture`` this fixture makes when it is given
        none: in ``auto`` mode (it attaches to an exported PostgreSQL),
        exporting nothing itself, with this fixture's ``database``,
        ``user`` and ``template`` when they were given, and its host,
        timeout, user, temp root and durability."""
        kwargs = dict(self._upstream_kwargs)
        kwargs.update((name, self.arguments[name]) for name in _SHARED if name in self.arguments)
        return PostgresqlFixture(export_env=False, **kwargs)

    def set_up_upstream(self) -> PostgresqlFixture:
        """The upstream, set up: a given one that is set up already as it
        is, else (the given one, or :meth:`make_upstream`'s) with
        ``useFixture``, so that it is cleaned up after pgbouncer."""
        upstream = self.given_upstream
        if upstream is not None and upstream.origin is not None:
            return upstream  # set up by its owner, who cleans it up
        return self.useFixture(upstream or self.make_upstream())

    @property
    def upstream(self) -> PostgresqlFixture:
        """The PostgreSQL fixture behind the pgbouncer this fixture started."""
        if self._upstream is None:
            if self.origin is None:
                self._not_set_up("upstream")
            raise MisuseError(
                self.daemon_name,
                "%s.upstream" % type(self).__name__,
                "this fixture did not start its pgbouncer (it is %s): its upstream is "
                "upstream_url" % self.origin.description,
            )
        return self._upstream

    # -- hooks -------------------------------------------------------------------

    def prepare(self) -> None:
        if self._upstream is None:
            self._upstream = self.set_up_upstream()
        # The upstream's password: pgbouncer logs in to it with it, and
        # checks its own TCP clients against it (md5: cheap, and for a
        # random password as safe as SCRAM on loopback).
        self.write_file(
            "users.txt",
            '"%s" "%s"\n'
            % (self.user.replace('"', '""'), self._upstream_password().replace('"', '""')),
        )
        self.write_file(
            "hba.conf",
            "local all all trust\nhost all all 127.0.0.1/32 md5\nhost all all ::1/128 md5\n",
        )
        server = self._upstream.server_endpoint
        lines = [
            "[databases]",
            # Every database, under its own name, as the client's user.
            "* = host=%s port=%d" % (server.host, server.port or 5432),
            "",
            "[pgbouncer]",
        ]
        for key, value in self.settings().items():
            if "\n" in key + value or "\r" in key + value:
                raise MisuseError(
                    self.daemon_name,
                    "settings={%r: %r}" % (key, value),
                    "a pgbouncer setting is one line of its ini file",
                )
            lines.append("%s = %s" % (key, value))
        self.write_file("pgbouncer.ini", "\n".join(lines) + "\n")

    def _upstream_password(self) -> str:
        assert self._upstream is not None
        return self._upstream.server_endpoint.password

    def server_settings(self) -> dict[str, str]:
        return {
            "listen_addr": self.requested_host,
            "listen_port": str(self.port),
            "unix_socket_dir": self.temp_dir,
            "auth_type": "hba",
            "auth_hba_file": self.path("hba.conf"),
            "auth_file": self.path("users.txt"),
            "admin_users": self.user,
            "pool_mode": self.pool_mode,
            "ignore_startup_parameters": "extra_float_digits",
            # A database that refused a login (dropped, or being reset) is
            # tried again at once, not after 15 s.
            "server_login_retry": "0.1",
            # A server connection is checked before it is reused: one whose
            # backend was terminated (a database dropped) is never handed out.
            "server_check_delay": "0",
        }

    def command_line(self) -> list[str]:
        return [self.binary, self.path("pgbouncer.ini")]

    def probe(self) -> Probe:
        return probes.Callable(self.admin.answers, "SHOW VERSION answered")

    def build_endpoint(self) -> Endpoint:
        assert self._upstream is not None
        return (
            super()
            .build_endpoint()
            .replace(
                user=self.user,
                password=self._upstream_password(),
                database=self._upstream.database,
                sockets={"main": self.path(".s.PGSQL.%d" % self.port)},
                extra={
                    "upstream": self._upstream.server_endpoint.to_json(),
                    "pool_mode": self.pool_mode,
                },
            )
        )

    def owned_namespace(self) -> Namespace:
        return UpstreamDatabase(self)

    def own_admin(self, endpoint: Endpoint) -> PgbouncerAdmin:
        return PgbouncerAdmin(endpoint, self.daemon_name, self.timeout)

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        return {
            "SOCKET_DIR": os.path.dirname(endpoint.socket),
            "POOL_MODE": endpoint.extra.get("pool_mode", ""),
            "UPSTREAM_URL": _upstream_url(endpoint),
        }

    def pifpaf_raw_exports(self, endpoint: Endpoint, prefix: str) -> dict[str, str]:
        # pifpaf has no pgbouncer: libpq's variables, as for PostgreSQL, so
        # that psql in `fixtures-daemons run pgbouncer -- psql` goes through it.
        return {
            "PGHOST": os.path.dirname(endpoint.socket),
            "PGPORT": str(endpoint.port),
            "PGDATABASE": endpoint.database,
            "PGUSER": endpoint.user,
        }

    # -- what tests use ----------------------------------------------------------

    @property
    def user(self) -> str:
        if self._endpoint is not None:
            return self._endpoint.user
        if self._upstream is not None:
            return self._upstream.user
        if self.given_upstream is not None:
            return self.given_upstream.requested_user
        return self.requested_user

    @property
    def socket_dir(self) -> str:
        return os.path.dirname(self.endpoint.socket)

    @property
    def dsn(self) -> str:
        return libpq_dsn(self.endpoint)

    @property
    def upstream_url(self) -> str:
        """This fixture's database, on the upstream directly."""
        return _upstream_url(self.endpoint)

    @property
    def pgbouncer_admin(self) -> PgbouncerAdmin:
        return typing.cast(PgbouncerAdmin, self.admin)

    def console(self, command: str) -> list[tuple[str | None, ...]]:
        """Run an admin console command (``SHOW POOLS``); return text rows."""
        return self.pgbouncer_admin.console(command)


def _upstream_url(endpoint: Endpoint) -> str:
    text = endpoint.extra.get("upstream", "")
    if not text:
        return ""
    return Endpoint.from_json(text, "pgbouncer's upstream").replace(database=endpoint.database).url


class PgbouncerResource(DaemonResource):
    """A testresources manager sharing one :class:`PgbouncerFixture` (and
    its PostgreSQL)."""

    fixture_class = PgbouncerFixture
