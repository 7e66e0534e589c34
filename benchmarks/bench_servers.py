"""The per-test namespace on a server the library did not start, beside
the same on a server it started, and beside the raw floor.

One PostgreSQL, one MariaDB and one Redis are started here and then
reached only by URL, as managed servers would be: TCP with a password
(``scram-sha-256`` for PostgreSQL) as a user that may only create
databases (ACL-limited keys for Redis), and the same over TLS with a
certificate made for the run (``verify-full``, ``ssl_verify_cert``,
``rediss://``). Side by side in one run (:mod:`benchmarks._bench`: every
contender once per round, the starting one rotated), each sample is one
fixture's ``setUp()`` plus ``cleanUp()``:

* ``own``: attached to the server the library started (``mode="attach"``;
  PostgreSQL's pool of databases made ahead, Redis's database numbers);
* ``server= TCP`` / ``server= TLS``: ``server=URL`` (a database or a key
  prefix made and removed while the test waits, by the real client
  library, on the admin's long-lived connection);
* ``floor TCP`` / ``floor TLS``: the same work by hand on one connection
  kept open: ``CREATE DATABASE`` and ``DROP DATABASE`` (PostgreSQL,
  MariaDB), ``SET`` and ``UNLINK`` of one key (Redis).

Run it from the repository root, with the test requirements and the
daemons installed::

    python -m benchmarks.bench_servers            # 20 rounds
    python -m benchmarks.bench_servers --rounds 50
"""

from __future__ import annotations

import os
import sys
import tempfile
import typing
import urllib.parse
import uuid

import fixtures
import psycopg
import pymysql  # type: ignore[import-untyped]
import redis

try:
    from benchmarks import _bench
except ImportError:  # run as a script
    import _bench  # type: ignore[no-redef]

from fixtures_daemons import MysqlFixture, PortFixture, PostgresqlFixture, RedisFixture
from fixtures_daemons.base.certificates import server_certificates
from fixtures_daemons.process.users import default_daemon_user, resolve_user

ROLE, PASSWORD = "app", "secret"


def _certificates(stack: fixtures.Fixture) -> typing.Any:
    directory = stack.useFixture(fixtures.TempDir()).path
    os.chmod(directory, 0o755)
    owner = resolve_user(default_daemon_user()) if os.geteuid() == 0 else None
    return server_certificates().write(directory, owner)


def _cycle(make: typing.Callable[[], fixtures.Fixture]) -> _bench.Run:
    def run() -> None:
        fixture = make()
        fixture.setUp()
        fixture.cleanUp()

    return run


def postgresql(stack: fixtures.Fixture, files: typing.Any) -> dict[str, _bench.Run]:
    server = stack.useFixture(
        PostgresqlFixture(
            mode="spawn",
            share=True,
            settings={"ssl": "on", "ssl_cert_file": files.cert, "ssl_key_file": files.key},
        )
    )
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'" % (ROLE, PASSWORD))
    base = "postgresql://%s:%s@127.0.0.1:%d/postgres" % (ROLE, PASSWORD, server.port)
    tcp = base + "?sslmode=disable"
    tls = (
        base
        + "?"
        + urllib.parse.urlencode({"sslmode": "verify-full", "sslrootcert": files.ca_cert})
    )
    runs = {
        "postgresql own": _cycle(lambda: PostgresqlFixture(mode="attach")),
        "postgresql server= TCP": _cycle(lambda: PostgresqlFixture(server=tcp)),
        "postgresql server= TLS": _cycle(lambda: PostgresqlFixture(server=tls)),
    }
    for name, url in (("TCP", tcp), ("TLS", tls)):
        conn = psycopg.connect(url, autocommit=True)
        stack.addCleanup(conn.close)

        def floor(conn: typing.Any = conn) -> None:
            database = "floor_" + uuid.uuid4().hex[:12]
            conn.execute("CREATE DATABASE %s" % database)
            conn.execute("DROP DATABASE %s WITH (FORCE)" % database)

        runs["postgresql floor " + name] = floor
    return runs


def mysql(stack: fixtures.Fixture, files: typing.Any) -> dict[str, _bench.Run]:
    server = stack.useFixture(
        MysqlFixture(
            mode="spawn",
            share=True,
            settings={"ssl-ca": files.ca_cert, "ssl-cert": files.cert, "ssl-key": files.key},
        )
    )
    parts = urllib.parse.urlsplit(server.url)
    root = pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user=parts.username,
        password=urllib.parse.unquote(parts.password or ""),
        autocommit=True,
    )
    with root.cursor() as cursor:
        cursor.execute("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'" % (ROLE, PASSWORD))
        cursor.execute("GRANT ALL PRIVILEGES ON `test\\_%%`.* TO '%s'@'%%'" % ROLE)
    root.close()
    tcp = "mysql://%s:%s@127.0.0.1:%d/" % (ROLE, PASSWORD, server.port)
    tls = tcp + "?ssl_verify_cert=true&ssl_ca=" + files.ca_cert
    runs = {
        "mysql own": _cycle(lambda: MysqlFixture(mode="attach")),
        "mysql server= TCP": _cycle(lambda: MysqlFixture(server=tcp)),
        "mysql server= TLS": _cycle(lambda: MysqlFixture(server=tls)),
    }
    for name, ssl in (("TCP", None), ("TLS", {"ca": files.ca_cert})):
        conn = pymysql.connect(
            host="127.0.0.1", port=server.port, user=ROLE, password=PASSWORD,
            autocommit=True, ssl=ssl,
        )  # fmt: skip
        stack.addCleanup(conn.close)

        def floor(conn: typing.Any = conn) -> None:
            database = "test_floor_" + uuid.uuid4().hex[:12]
            with conn.cursor() as cursor:
                cursor.execute("CREATE DATABASE %s" % database)
                cursor.execute("DROP DATABASE %s" % database)

        runs["mysql floor " + name] = floor
    return runs


def redis_(stack: fixtures.Fixture, files: typing.Any) -> dict[str, _bench.Run]:
    tls_port = stack.useFixture(PortFixture()).port
    server = stack.useFixture(
        RedisFixture(
            mode="spawn",
            share=True,
            settings={
                "tls-port": str(tls_port),
                "tls-cert-file": files.cert,
                "tls-key-file": files.key,
                "tls-ca-cert-file": files.ca_cert,
                "tls-auth-clients": "no",
            },
        )
    )
    admin = redis.Redis.from_url(server.url)
    admin.execute_command(
        "ACL", "SETUSER", ROLE, "on", ">" + PASSWORD, "~fxd-*", "~fixtures-daemons:*",
        "+@read", "+@write", "+@keyspace", "+@connection",
    )  # fmt: skip
    admin.close()
    tcp = "redis://%s:%s@127.0.0.1:%d/0" % (ROLE, PASSWORD, server.port)
    tls = "rediss://%s:%s@127.0.0.1:%d/0?ssl_ca_certs=%s" % (
        ROLE, PASSWORD, tls_port, files.ca_cert,
    )  # fmt: skip
    runs = {
        "redis own": _cycle(lambda: RedisFixture(mode="attach")),
        "redis server= TCP": _cycle(lambda: RedisFixture(server=tcp)),
        "redis server= TLS": _cycle(lambda: RedisFixture(server=tls)),
    }
    for name, url in (("TCP", tcp), ("TLS", tls)):
        client = redis.Redis.from_url(url)
        stack.addCleanup(client.close)

        def floor(client: typing.Any = client) -> None:
            key = "fxd-%s:k" % uuid.uuid4().hex[:12]
            client.set(key, "1")
            client.unlink(key)

        runs["redis floor " + name] = floor
    return runs


def main(argv: typing.Sequence[str]) -> int:
    argv = list(argv)
    if not any(arg.startswith("--rounds") for arg in argv):
        argv = ["--rounds", "20", *argv]
    if not any(arg.startswith("--warmup") for arg in argv):
        argv = ["--warmup", "3", *argv]
    stack = fixtures.Fixture()
    stack.setUp()
    try:
        stack.useFixture(fixtures.TempDir())  # nothing of ours outside the stack
        files = _certificates(stack)
        for name in list(os.environ):
            if name.endswith(("_SERVER_URL", "_STATE")) and name.startswith("FIXTURES_DAEMONS_"):
                stack.useFixture(fixtures.EnvironmentVariable(name))
        for make, baseline in (
            (postgresql, "postgresql floor TCP"),
            (mysql, "mysql floor TCP"),
            (redis_, "redis floor TCP"),
        ):
            runs = make(stack, files)
            _bench.main(
                runs,
                baseline=baseline,
                description="a namespace per test on a server the library did not start: "
                "setUp() + cleanUp(), beside the library's own server and the raw floor",
                argv=argv,
            )
            print()
    finally:
        stack.cleanUp()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TMPDIR", tempfile.gettempdir())
    sys.exit(main(sys.argv[1:]))
