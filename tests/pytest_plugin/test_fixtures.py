"""The generated fixtures and the factories, used directly by this run
(one daemon per xdist worker, or the run's shared one)."""

from __future__ import annotations

import os

import pytest

from fixtures_daemons import DaemonFixture, MisuseError, PostgresqlFixture, RedisFixture
from fixtures_daemons.integrations import registry
from fixtures_daemons.integrations.pytest import factories
from fixtures_daemons.integrations.pytest.procs import DaemonProc
from fixtures_daemons.integrations.pytest.settings import OptionError

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.sql")

pg_schema = factories.daemon_fixture("postgresql", template=SCHEMA)
pg_other = factories.daemon_fixture("postgresql")
pg_fresh = factories.daemon_fixture("postgresql", mode="spawn")
redis_other = factories.daemon_fixture("redis")
pg_module = factories.daemon_fixture("postgresql", scope="module")


def test_a_database_of_its_own(postgresql: PostgresqlFixture, postgresql_proc: DaemonProc) -> None:
    assert postgresql.attached
    assert postgresql.database.startswith("test_")
    assert postgresql.port == postgresql_proc.port
    assert postgresql.query("SELECT current_database()", postgresql.database) == [
        (postgresql.database,)
    ]
    databases = {
        row[0] for row in postgresql_proc_query(postgresql, "SELECT datname FROM pg_database")
    }
    assert postgresql.database in databases
    assert postgresql_proc.database not in ("", postgresql.database)


def postgresql_proc_query(fixture: PostgresqlFixture, sql: str) -> list[tuple[str | None, ...]]:
    return fixture.query(sql, database="postgres")


def test_two_namespaces_in_one_test(
    postgresql: PostgresqlFixture,
    pg_other: PostgresqlFixture,
    redis: RedisFixture,
    redis_other: RedisFixture,
) -> None:
    assert postgresql.port == pg_other.port
    assert postgresql.database != pg_other.database
    assert redis.port == redis_other.port
    assert redis.db != redis_other.db and 0 not in (redis.db, redis_other.db)
    redis.command("SET", "k", "mine")
    assert redis_other.command("GET", "k") is None


def test_variables_are_exported_during_the_test(postgresql: PostgresqlFixture) -> None:
    assert os.environ["FIXTURES_DAEMONS_POSTGRESQL_URL"] == postgresql.url
    assert os.environ["FIXTURES_DAEMONS_POSTGRESQL_DATABASE"] == postgresql.database
    assert "FIXTURES_DAEMONS_POSTGRESQL_STATE" in os.environ


def test_a_fixture_made_in_the_test_attaches_to_the_same_daemon(
    postgresql: PostgresqlFixture,
) -> None:
    inner = PostgresqlFixture()
    inner.setUp()
    try:
        assert inner.attached
        assert inner.port == postgresql.port
        assert inner.database not in (postgresql.database, "postgres")
    finally:
        inner.cleanUp()


def test_template(pg_schema: PostgresqlFixture) -> None:
    assert pg_schema.query("SELECT item FROM orders", pg_schema.database) == [("template row",)]
    pg_schema.query("INSERT INTO orders (item) VALUES ('x')", pg_schema.database)


def test_template_again_starts_from_the_template(pg_schema: PostgresqlFixture) -> None:
    assert pg_schema.query("SELECT count(*) FROM orders", pg_schema.database) == [("1",)]


def test_a_fresh_daemon_per_test(pg_fresh: PostgresqlFixture, postgresql_proc: DaemonProc) -> None:
    assert not pg_fresh.attached
    assert pg_fresh.process is not None
    assert pg_fresh.port != postgresql_proc.port


def test_module_scope_namespace(
    pg_module: PostgresqlFixture, postgresql: PostgresqlFixture
) -> None:
    assert pg_module.database != postgresql.database


def test_the_proc(postgresql_proc: DaemonProc, redis_proc: DaemonProc) -> None:
    assert postgresql_proc.name == "postgresql"
    assert postgresql_proc.url.startswith("postgresql://")
    assert redis_proc.port and redis_proc.host == "127.0.0.1"
    assert postgresql_proc.state_variable == "FIXTURES_DAEMONS_POSTGRESQL_STATE"
    assert postgresql_proc.attached == (postgresql_proc.fixture is None)


def test_every_daemon_has_fixtures(request: pytest.FixtureRequest) -> None:
    generated = request.config.pluginmanager.get_plugin("fixtures_daemons-fixtures")
    names = [name for name in registry.daemon_names() if name not in registry.broken_daemons()]
    assert names
    for name in names:
        daemon = registry.daemon_class(name).daemon_name
        assert hasattr(generated, daemon + "_proc"), daemon
        assert hasattr(generated, daemon), daemon


def test_no_pytest_in_the_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fixtures_daemons; "
        "sys.exit('pytest' in sys.modules or '_pytest' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_factory_errors() -> None:
    with pytest.raises(OptionError, match="did you mean 'postgresql'"):
        factories.daemon_fixture("postgresq")
    with pytest.raises(OptionError, match="scope"):
        factories.daemon_proc("redis", scope="run")
    with pytest.raises(TypeError, match="template"):
        factories.daemon_fixture("postgresql", templat="x.sql")


def test_attach_mode_without_a_daemon_is_refused() -> None:
    # The base's own refusal, unchanged by the plugin (a sanity check of
    # what inner_env removes for the other tests).
    saved = os.environ.pop("FIXTURES_DAEMONS_REDIS_STATE", None)
    try:
        with pytest.raises(MisuseError):
            RedisFixture(mode="attach").setUp()
    finally:
        if saved is not None:
            os.environ["FIXTURES_DAEMONS_REDIS_STATE"] = saved


def test_fixture_types(postgresql: DaemonFixture, redis: DaemonFixture) -> None:
    assert isinstance(postgresql, PostgresqlFixture)
    assert isinstance(redis, RedisFixture)
