"""pgbouncer in ``bench_daemons``: its bare floor, and a pifpaf-style driver.

A ``PgbouncerFixture(mode="spawn")`` starts a PostgreSQL and a pgbouncer in
front of it, so both floors do too. The floor is ``postgres`` started
directly on an initdb'd dir (the fixture's initdb options and settings, as
``bench_daemons``' PostgreSQL floor), polled every millisecond until libpq
connects through its unix socket; then ``pgbouncer`` on the fixture's
configuration (trust, every database to that server over TCP), polled
every millisecond until its admin console answers ``SHOW VERSION``; then
pgbouncer killed (SIGKILL) and postgres stopped with an immediate shutdown
(SIGQUIT), as the fixture's cleanUp does.

pifpaf has no pgbouncer driver. The ``pifpaf`` column is a driver written
here on pifpaf's own ``Driver`` base class, composed as pifpaf's gnocchi and
aodh drivers compose theirs: ``useFixture`` of pifpaf's
``PostgreSQLDriver``, then pgbouncer through ``_exec(...,
wait_for_line=...)``, stopped by pifpaf's cleanUp. It is not a driver that
pifpaf ships.
"""

from __future__ import annotations

import os
import signal
import subprocess
import typing

import fixtures
import psycopg
from pifpaf import drivers
from pifpaf.drivers.postgresql import PostgreSQLDriver

from benchmarks._floors import HOST, Daemon, Floor, initdb
from fixtures_daemons import PostgresqlFixture, reserve_port
from fixtures_daemons.base.binaries import find_executable


def write_config(directory: str, port: int, upstream: str, upstream_port: int) -> str:
    """pgbouncer's files, as the fixture writes them; the ini's path."""
    users = os.path.join(directory, "users.txt")
    with open(users, "w") as f:
        f.write('"postgres" ""\n')
    settings = {
        "listen_addr": HOST,
        "listen_port": str(port),
        "unix_socket_dir": directory,
        "auth_type": "trust",
        "auth_file": users,
        "admin_users": "postgres",
        "pool_mode": "transaction",
        "ignore_startup_parameters": "extra_float_digits",
        "server_login_retry": "0.1",
        "server_check_delay": "0",
    }
    ini = os.path.join(directory, "pgbouncer.ini")
    with open(ini, "w") as f:
        f.write("[databases]\n* = host=%s port=%d\n\n[pgbouncer]\n" % (upstream, upstream_port))
        f.writelines("%s = %s\n" % item for item in settings.items())
    return ini


def console_answers(directory: str, port: int) -> bool:
    try:
        with psycopg.connect(
            host=directory,
            port=port,
            user="postgres",
            dbname="pgbouncer",
            autocommit=True,
            connect_timeout=5,
        ) as conn:
            return bool(conn.execute("SHOW VERSION").fetchall())
    except psycopg.Error:
        return False


class PgbouncerFloor(Floor):
    """``postgres`` on an initdb'd dir, then ``pgbouncer`` in front of it."""

    def prepare(self) -> None:
        self.postgres = find_executable(PostgresqlFixture.executable, None, "postgresql")
        self.data_dir = os.path.join(self.workdir, "data")
        self.pg_port = reserve_port(HOST)  # the upstream's: for the whole run
        # The fixture's initdb options (PostgresqlFixture._init_options).
        initdb(self.postgres, self.data_dir)
        self.ini = write_config(self.workdir, self.port, HOST, self.pg_port.port)

    def postgres_command(self) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": self.workdir,
            "log_destination": "stderr",
            "logging_collector": "off",
            "dynamic_shared_memory_type": "mmap",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        command = [self.postgres, "-D", self.data_dir, "-p", str(self.pg_port.port)]
        for item in settings.items():
            command += ["-c", "%s=%s" % item]
        return command

    def postgres_answers(self) -> bool:
        try:
            psycopg.connect(
                host=self.workdir,
                port=self.pg_port.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=5,
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    def command(self) -> list[str]:
        return [self.binary, self.ini]

    def answers(self) -> bool:
        return console_answers(self.workdir, self.port)

    def __call__(self) -> None:
        postgres = self.start(self.postgres_command(), self.postgres_answers)
        try:
            self.stop(self.start(self.command(), self.answers))
        finally:
            _stop(postgres, signal.SIGQUIT)


def _stop(process: subprocess.Popen[bytes], signum: int) -> None:
    if process.poll() is None:
        process.send_signal(signum)
    process.wait()


class PifpafStylePgbouncerDriver(drivers.Driver):  # type: ignore[misc]
    """A pgbouncer driver as pifpaf's composed drivers are written (pifpaf
    has none): its PostgreSQL through ``useFixture``, as gnocchi's."""

    def __init__(self, port: int, pg_port: int, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self.port = port
        self.pg_port = pg_port

    def _setUp(self) -> None:
        super()._setUp()
        pg = self.useFixture(
            PostgreSQLDriver(port=self.pg_port, host=HOST, tmp_rootdir=self.tmp_rootdir)
        )
        ini = write_config(self.tempdir, self.port, pg.tempdir, self.pg_port)
        binary = self.find_executable("pgbouncer", ["/usr/sbin", "/usr/local/sbin"])
        self._exec([binary, ini], wait_for_line="process up")
        self.url = "postgresql://postgres@%s:%d/postgres" % (HOST, self.port)
        self.putenv("URL", self.url)


def _pifpaf_style_pgbouncer(port: int, temp_root: str) -> fixtures.Fixture:
    # The upstream's port: one of ours, released at once (bound within the round).
    with reserve_port(HOST) as pg:
        pg_port = pg.port
    return typing.cast(
        fixtures.Fixture, PifpafStylePgbouncerDriver(port, pg_port, tmp_rootdir=temp_root)
    )


DAEMON = Daemon(
    "pgbouncer",
    "PgbouncerFixture",
    PgbouncerFloor,
    _pifpaf_style_pgbouncer,
    max_x_floor=1.5,
    programs=("pgbouncer", "postgres"),
)
