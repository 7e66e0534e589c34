"""PostgreSQL: ``postgres`` run directly on a copy of a cached initdb."""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import signal
import threading
import typing

from fixtures_daemons.base.binaries import Executable, sibling
from fixtures_daemons.base.databases import DatabaseDaemonFixture, SqlAdmin, TemplateHook
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import MARK_PREFIX
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.daemons import _pgwire
from fixtures_daemons.daemons.postgresql_server import PostgresqlServerAdmin
from fixtures_daemons.errors import AdminError
from fixtures_daemons.process import _reaper
from fixtures_daemons.process.probes import LogPattern, Probe
from fixtures_daemons.process.tempdirs import remove_tree
from fixtures_daemons.process.waiting import wait_for

__all__ = ["PostgresqlFixture", "PostgresqlResource", "PostgresqlAdmin", "close_admin_connections"]

_T = typing.TypeVar("_T")


def _literal(value: str) -> str:
    return "'%s'" % value.replace("'", "''")


def _located(message: str, sql: str, fields: typing.Mapping[str, str]) -> str:
    """The server's message, and where in ``sql`` it points (its ``P``
    field: a 1-based character position), as a line number and the line."""
    try:
        position = int(fields.get("P", "")) - 1
    except ValueError:
        return message
    line = sql.count("\n", 0, position) + 1
    text = sql.splitlines()[line - 1].strip() if sql.splitlines() else ""
    return "%s, at line %d: %s" % (message, line, text)


def libpq_dsn(endpoint: Endpoint) -> str:
    """libpq's ``key=value`` form of a TCP endpoint."""
    return "host=%s port=%d user=%s password=%s dbname=%s" % (
        endpoint.host,
        endpoint.port or 5432,
        endpoint.user,
        endpoint.password,
        endpoint.database,
    )


class _Channel:
    """A long-lived admin connection to one server, used by one thread at
    a time (its lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: _pgwire.Connection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


#: The long-lived admin connections of this process, by (socket, user,
#: channel name); the least recently used are closed beyond a few.
_channels: collections.OrderedDict[tuple[str, str, str], _Channel] = collections.OrderedDict()
_channels_lock = threading.Lock()
_MAX_CHANNELS = 8

#: The servers (socket, postmaster pid and start time) whose template0
#: this process has warmed for its pool (see PostgresqlAdmin._warm_template0).
_warmed: set[tuple[object, ...]] = set()


def _forget_channels() -> None:
    """In a forked child: the parent's connections are the parent's (a
    goodbye sent from here would end the parent's session), and a lock
    held by another thread at the fork would never be released."""
    global _channels, _channels_lock
    _channels = collections.OrderedDict()
    _channels_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_channels)


def _channel(key: tuple[str, str, str]) -> _Channel:
    with _channels_lock:
        channel = _channels.get(key)
        if channel is None:
            channel = _channels[key] = _Channel()
            while len(_channels) > _MAX_CHANNELS:
                _, old = _channels.popitem(last=False)
                if old.lock.acquire(blocking=False):  # else its user closes nothing: GC does
                    try:
                        old.close()
                    finally:
                        old.lock.release()
        else:
            _channels.move_to_end(key)
        return channel


def close_admin_connections() -> None:
    """Close this process's long-lived admin connections (they open again
    when needed)."""
    with _channels_lock:
        channels = list(_channels.values())
        _channels.clear()
    for channel in channels:
        with channel.lock:
            channel.close()


class PostgresqlAdmin(SqlAdmin):
    """Databases on one of our PostgreSQL servers, through the built-in
    minimal client (trust authentication on the unix socket).

    Administration (create, claim, drop, the liveness check) goes through
    one long-lived connection per server and process, to the ``postgres``
    database, shared by the admins of that server and used by one thread
    at a time; the database pool's background work has its own
    (:meth:`for_background`). A connection found broken (the server
    restarted) is opened again, once per request; a forked child opens
    its own.

    :param file_copy: copy databases with ``STRATEGY FILE_COPY`` (the
        server is not durable, so its two checkpoints cost little).
    """

    pools_databases = True
    #: The database the long-lived connection is to: not template1, which
    #: ``CREATE DATABASE`` copies by default and refuses to copy while
    #: someone is connected to it.
    admin_database = "postgres"

    def __init__(
        self,
        endpoint: Endpoint,
        name: str = "",
        timeout: float = 30.0,
        file_copy: bool = True,
        channel: str = "",
    ) -> None:
        super().__init__(endpoint, name, timeout)
        self.file_copy = file_copy
        self.channel = channel

    def for_background(self) -> PostgresqlAdmin:
        return PostgresqlAdmin(
            self.endpoint, self.name, self.timeout, self.file_copy, channel="background"
        )

    @contextlib.contextmanager
    def connect(self, database: str = "template1") -> typing.Iterator[_pgwire.Connection]:
        """A connection; what the server refuses on it raises AdminError
        (not the minimal client's own PgError)."""
        try:
            with _pgwire.connect(
                self.endpoint.socket, self.endpoint.user, database, self.timeout
            ) as conn:
                yield conn
        except _pgwire.PgError as exc:
            raise AdminError(self.name, "a request in database %r" % database, str(exc)) from exc

    def query(self, sql: str, database: str = "template1") -> list[tuple[str | None, ...]]:
        """Run SQL; return text rows."""
        with self.connect(database) as conn:
            return self._run(conn, sql)

    def _run(self, conn: _pgwire.Connection, sql: str) -> list[tuple[str | None, ...]]:
        try:
            return conn.query(sql)
        except _pgwire.PgError as exc:
            raise AdminError(self.name, sql, _located(str(exc), sql, exc.fields)) from exc

    def _admin(self, sql: str, *databases: str) -> list[tuple[str | None, ...]]:
        """Run administrative SQL on the long-lived connection (on a
        connection of its own to template1 when it concerns the admin
        database itself)."""
        if self.admin_database in databases:
            return self.query(sql, "template1")
        return self._on_channel(lambda conn: self._run(conn, sql), sql)

    def _on_channel(self, use: typing.Callable[[_pgwire.Connection], _T], request: str) -> _T:
        endpoint = self.endpoint
        channel = _channel((endpoint.socket, endpoint.user, self.channel))
        if not channel.lock.acquire(timeout=self.timeout):
            raise AdminError(
                self.name, request, "the admin connection stayed busy for %.1f s" % self.timeout
            )
        try:
            for attempt in (1, 2):
                fresh = channel.conn is None
                try:
                    if channel.conn is None:
                        channel.conn = _pgwire.connect(
                            endpoint.socket, endpoint.user, self.admin_database, self.timeout
                        )
                    return use(channel.conn)
                except _pgwire.PgError as exc:  # at startup: refused
                    channel.close()
                    raise AdminError(self.name, request, str(exc)) from exc
                except TimeoutError:
                    channel.close()  # the answer may still come: never reused
                    raise AdminError(
                        self.name, request, "no answer within %.1f s" % self.timeout
                    ) from None
                except OSError as exc:  # ConnectionError too
                    # A broken connection (the server restarted, our backend
                    # was terminated): the request never ran; once more on
                    # a new one.
                    channel.conn = None
                    if fresh or attempt == 2:
                        raise AdminError(
                            self.name, request, "cannot reach the server: %s" % exc
                        ) from None
            raise AssertionError("unreachable")
        finally:
            channel.lock.release()

    def answers(self) -> bool:
        try:
            return bool(self._admin("SELECT 1"))
        except AdminError:
            return False

    def run_sql(self, sql: str, database: str) -> None:
        self.query(sql, database)

    @staticmethod
    def _admin_for(*databases: str) -> str:
        # The admin connection must not be to a database being created from,
        # dropped or renamed.
        return "postgres" if "template1" in databases else "template1"

    def database_exists(self, name: str) -> bool:
        return bool(self._admin("SELECT 1 FROM pg_database WHERE datname = %s" % _literal(name)))

    def build_template(self, name: str, fill: typing.Callable[[str], None]) -> None:
        # Built under another name and renamed when complete.
        building = name + "_build"
        self.drop_database(building)
        self.create_database(building, None)
        try:
            fill(building)
        except BaseException:
            self.drop_database(building)  # a failed hook leaves nothing behind
            raise
        with self.connect(self._admin_for(building)) as conn:
            self._run(
                conn,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                % _literal(building),
            )
            self._run(
                conn,
                "ALTER DATABASE %s RENAME TO %s"
                % (_pgwire.quote_ident(building), _pgwire.quote_ident(name)),
            )
            self._run(conn, "ALTER DATABASE %s IS_TEMPLATE true" % _pgwire.quote_ident(name))

    def create_database(self, name: str, template: str | None = None) -> None:
        self._create(name, template, "")

    def create_pooled(self, name: str, template: str | None = None) -> None:
        # Nobody may connect to it before it is claimed: pristine.
        if template is None:
            self._warm_template0()
        self._create(name, template, " ALLOW_CONNECTIONS false")

    def _warm_template0(self) -> None:
        """Give template0 its relation cache init file, once per server.

        A backend that connects to a database without ``pg_internal.init``
        builds one, which costs the first connection to every fresh
        database a few milliseconds; the server removes those files when
        it starts, and nobody ever connects to template0. So the pool, which
        copies template0 many times, connects to it once first (allowing it
        for that moment), and every copy carries the file (see
        doc/source/design.rst, 'Databases made ahead, claimed with a
        rename'). Best effort: another process warming it at the same time,
        or a refusal, costs nothing but the gain."""
        key = (self.endpoint.socket, self.endpoint.pid, self.endpoint.pid_start)
        if key in _warmed:
            return
        _warmed.add(key)
        try:
            if self._admin(
                "SELECT 1 FROM pg_database WHERE datname = 'template0' "
                "AND (pg_stat_file('base/' || oid || '/pg_internal.init', true)).size IS NULL"
            ):
                self._admin("ALTER DATABASE template0 ALLOW_CONNECTIONS true")
                try:
                    with _pgwire.connect(
                        self.endpoint.socket, self.endpoint.user, "template0", self.timeout
                    ) as conn:
                        pid = int(conn.query("SELECT pg_backend_pid()")[0][0] or 0)
                finally:
                    self._admin("ALTER DATABASE template0 ALLOW_CONNECTIONS false")
                # Copying template0 waits, in 100 ms steps, for its last
                # client to be gone: wait for it here, with our backoff.
                if pid:
                    wait_for(lambda: not _reaper.start_time(pid), self.timeout)
        except (AdminError, OSError, ValueError, _pgwire.PgError):  # noqa: S110 (best effort)
            pass

    def _create(self, name: str, template: str | None, options: str) -> None:
        # Without a template, from template0: pristine, and nobody can
        # connect to it, so it is never "being accessed by other users".
        source = template or "template0"
        sql = "CREATE DATABASE %s TEMPLATE %s%s" % (
            _pgwire.quote_ident(name),
            _pgwire.quote_ident(source),
            options,
        )
        if self.admin_database in (name, source):
            with self.connect(self._admin_for(name, source)) as conn:
                self._run(conn, sql + self._strategy(conn))
            return
        self._on_channel(lambda conn: self._run(conn, sql + self._strategy(conn)), sql)

    def claim_database(self, pooled: str, name: str, owner: str) -> bool:
        # One implicit transaction: the rename, the opening and the owner's
        # mark happen together or not at all. A rename is atomic: of two
        # claimants of ``pooled``, one gets "does not exist".
        sql = "ALTER DATABASE %s RENAME TO %s; ALTER DATABASE %s ALLOW_CONNECTIONS true; %s" % (
            _pgwire.quote_ident(pooled),
            _pgwire.quote_ident(name),
            _pgwire.quote_ident(name),
            self._mark_sql(name, owner),
        )
        try:
            self._admin(sql, pooled, name)
        except AdminError as exc:
            if "SQLSTATE 3D000" in exc.reason:  # invalid_catalog_name: gone
                return False
            raise
        return True

    @staticmethod
    def _mark_sql(name: str, owner: str) -> str:
        return "COMMENT ON DATABASE %s IS %s" % (
            _pgwire.quote_ident(name),
            _literal(MARK_PREFIX + owner),
        )

    def mark_database(self, name: str, owner: str) -> None:
        self._admin(self._mark_sql(name, owner), name)

    def marked_databases(self, prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
        named = " OR ".join("starts_with(datname, %s)" % _literal(prefix) for prefix in prefixes)
        rows = self._admin(
            "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') "
            "FROM pg_database WHERE %s "
            "OR starts_with(coalesce(shobj_description(oid, 'pg_database'), ''), %s)"
            % (named or "false", _literal(MARK_PREFIX))
        )
        return [(row[0] or "", (row[1] or "").removeprefix(MARK_PREFIX)) for row in rows]

    def retire_database(self, name: str, trash: str) -> None:
        ident = _pgwire.quote_ident(name)
        rows = self._admin(
            "ALTER DATABASE %s ALLOW_CONNECTIONS false; "
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
            % (ident, _literal(name)),
            name,
        )
        pids = [int(row[0]) for row in rows if row[0]]
        if pids:
            wait_for(lambda: not any(_reaper.start_time(pid) for pid in pids), self.timeout)
        self._admin("ALTER DATABASE %s RENAME TO %s" % (ident, _pgwire.quote_ident(trash)), name)

    def _strategy(self, conn: _pgwire.Connection) -> str:
        """Since PostgreSQL 15, CREATE DATABASE WAL-logs every block it
        copies; FILE_COPY copies the files and makes two checkpoints, cheap
        without fsync (see doc/source/design.rst, 'The template hook'). Kept
        as the default when durable."""
        match = re.match(r"(\d+)", conn.parameters.get("server_version", ""))
        if not self.file_copy or not match or int(match.group(1)) < 15:
            return ""
        return " STRATEGY FILE_COPY"

    def drop_database(self, name: str) -> None:
        """Drop a database, even while clients are connected to it: refuse
        new connections, terminate the open ones, then drop.

        DROP ... WITH (FORCE) alone does that too, but then waits for the
        terminated backends in coarse steps (so does pg_terminate_backend's
        timeout); here we watch the backends' processes go, with our own
        1 ms backoff, and drop once they are gone (see doc/source/design.rst,
        'A database dropped as soon as its clients are gone').
        """
        ident = _pgwire.quote_ident(name)
        # One request: refuse connections, terminate the open ones (nothing
        # when it does not exist).
        rows = self._admin(
            "DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_database WHERE datname = %s) THEN "
            "EXECUTE %s; END IF; END$$; "
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
            % (
                _literal(name),
                _literal("ALTER DATABASE %s ALLOW_CONNECTIONS false" % ident),
                _literal(name),
            ),
            name,
        )
        pids = [int(row[0]) for row in rows if row[0]]
        if pids:
            wait_for(lambda: not any(_reaper.start_time(pid) for pid in pids), self.timeout)
        self._admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % ident, name)


#: Beside the data files of the template, the superuser's password on TCP.
_PASSWORD_FILE = "fixtures-daemons.password"  # noqa: S105 (a file name)


def scram_verifier(password: str, iterations: int = 1) -> str:
    """The ``SCRAM-SHA-256`` verifier PostgreSQL stores for ``password``
    (RFC 5802/7677), with our own iteration count.

    PostgreSQL takes a verifier given as the password as it is. Its own
    4096 iterations cost a client several milliseconds per connection; a
    random 128-bit password needs no key stretching, so one iteration makes
    a password as cheap as trust (see doc/source/design.rst, 'Credentials').
    """
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (
        iterations,
        b64(salt).decode(),
        b64(stored_key).decode(),
        b64(server_key).decode(),
    )


class PostgresqlFixture(DatabaseDaemonFixture):
    """A PostgreSQL server: on its unix socket, in its private temp dir,
    trust authentication; on loopback TCP, a password (``scram-sha-256``),
    which ``url`` carries, so that no other local user gets in.

    It runs ``postgres`` itself, not ``pg_ctl`` (which polls, and so adds
    waits; see :doc:`/design`, 'Where the time goes'), on a copy of a data
    dir made once by ``initdb`` and cached; it is ready when it logs that
    it accepts connections, and cleanUp stops it with an immediate shutdown
    (SIGQUIT: the data is thrown away).

    :param database: the database ``url`` points at; created at start
        unless it is ``postgres``.
    :param user: the superuser role clients connect as.
    :param locale: the cluster's locale (``C`` is the fastest and the same
        everywhere).
    :param encoding: the cluster's encoding.
    :param template: prepares a template database once (schema, reference
        data): the path of an SQL file, or a callable given a copy of this
        fixture whose ``database``/``url`` is the template; ``database`` and
        every attached fixture's database start as copies of it.

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
    scheme = "postgresql"
    server_schemes = ("postgres",)
    admin_class = PostgresqlAdmin
    server_admin_class = PostgresqlServerAdmin
    default_database = "postgres"

    def __init__(
        self,
        *,
        database: str = "postgres",
        user: str = "postgres",
        locale: str = "C",
        encoding: str = "UTF8",
        template: TemplateHook | None = None,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(database=database, template=template, **kwargs)
        self.requested_user = user
        self._password = ""
        self.locale = locale
        self.encoding = encoding

    def _init_options(self) -> list[str]:
        # 1 MB WAL segments instead of 16: the copied data dir is 28 MB, not 43.
        return [
            "-U",
            self.requested_user,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            self.encoding,
            "--locale",
            self.locale,
            "--wal-segsize=1",
        ]

    def _build_template(self, directory: str) -> None:
        initdb = sibling(self.binary, "initdb", self.executable, self.daemon_name)
        # The superuser's TCP password: random per template, so per user
        # (the cache is the user's own) and never seen by another user.
        password = secrets.token_hex(16)
        # In the fixture's private dir (initdb wants an empty data dir):
        # one per build, however many builds run at once.
        password_file = self.write_file("initdb.pwfile", scram_verifier(password) + "\n")
        try:
            self.run_helper(
                [initdb, "-D", directory, "--no-sync", "--no-instructions"]
                + self._init_options()
                + ["--pwfile=" + password_file],
                "initdb",
            )
        finally:
            os.unlink(password_file)
        self.write_file(os.path.join(directory, _PASSWORD_FILE), password + "\n")

    def prepare(self) -> None:
        key = {"initdb": self._init_options(), "password": "scram-sha-256, 1 iteration"}
        self.from_template(key, self._build_template, self.data_dir)
        self._password = self._read_password()
        if not self._password and self.discard_templates():
            # A damaged template (its password file gone): built again, once.
            remove_tree(self.data_dir)
            self.from_template(key, self._build_template, self.data_dir)
            self._password = self._read_password()

    def _read_password(self) -> str:
        try:
            with open(os.path.join(self.data_dir, _PASSWORD_FILE)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def server_settings(self) -> dict[str, str]:
        settings = {
            "listen_addresses": self.requested_host,
            "unix_socket_directories": self.temp_dir,
            "log_destination": "stderr",
            "logging_collector": "off",
            # Dynamic shared memory as files in the data dir, not in
            # /dev/shm: a killed server's segments go with its temp dir.
            "dynamic_shared_memory_type": "mmap",
        }
        if not self.durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        return settings

    def command_line(self) -> list[str]:
        command = [self.binary, "-D", self.data_dir, "-p", str(self.port)]
        for key, value in self.settings().items():
            command += ["-c", "%s=%s" % (key, value)]
        return command

    def probe(self) -> Probe:
        return LogPattern(r"database system is ready to accept connections")

    def build_endpoint(self) -> Endpoint:
        return (
            super()
            .build_endpoint()
            .replace(
                user=self.requested_user,
                password=self._password,
                database=self.requested_database,
                sockets={"main": os.path.join(self.temp_dir, ".s.PGSQL.%d" % self.port)},
            )
        )

    def own_admin(self, endpoint: Endpoint) -> PostgresqlAdmin:
        return PostgresqlAdmin(endpoint, self.daemon_name, self.timeout, not self.durable)

    # -- what tests use ------------------------------------------------------

    @property
    def user(self) -> str:
        return self._endpoint.user if self._endpoint is not None else self.requested_user

    @property
    def data_dir(self) -> str:
        return self.path("data")

    @property
    def socket_dir(self) -> str:
        return os.path.dirname(self.socket_path)

    @property
    def socket_path(self) -> str:
        return self.endpoint.socket if self._endpoint is not None else self.admin.endpoint.socket

    @property
    def password(self) -> str:
        """The superuser's password on TCP (the unix socket needs none)."""
        return self.endpoint.password

    @property
    def dsn(self) -> str:
        return libpq_dsn(self.endpoint)

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        if not endpoint.socket:  # a server we did not start
            return {}
        return {"SOCKET_DIR": os.path.dirname(endpoint.socket)}

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        if not endpoint.socket:
            return endpoint.url
        return "postgresql://localhost/%s?host=%s&port=%d" % (
            endpoint.database,
            os.path.dirname(endpoint.socket),
            endpoint.port or 0,
        )

    def pifpaf_raw_exports(self, endpoint: Endpoint, prefix: str) -> dict[str, str]:
        if not endpoint.socket:  # a server we did not start: over TCP
            return {
                "PGHOST": endpoint.host,
                "PGPORT": str(endpoint.port or 5432),
                "PGDATABASE": endpoint.database,
                "PGUSER": endpoint.user,
            }
        return {
            "PGHOST": os.path.dirname(endpoint.socket),
            "PGPORT": str(endpoint.port),
            "PGDATA": os.path.join(endpoint.directory, "data"),
            "PGDATABASE": endpoint.database,
            "PGUSER": endpoint.user,
        }

    def connect_admin(
        self, database: str = "template1"
    ) -> typing.ContextManager[_pgwire.Connection]:
        """A minimal protocol connection (no client library needed), as a
        context manager."""
        return typing.cast(PostgresqlAdmin, self.admin).connect(database)

    def query(self, sql: str, database: str = "template1") -> list[tuple[str | None, ...]]:
        """Run SQL through the built-in minimal client; return text rows."""
        return typing.cast(PostgresqlAdmin, self.admin).query(sql, database)


class PostgresqlResource(DaemonResource):
    """A testresources manager sharing one :class:`PostgresqlFixture`."""

    fixture_class = PostgresqlFixture
