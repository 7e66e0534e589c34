"""factories.daemon_fixture(load=...) and factories.load_template: what
pytest-postgresql's load= becomes."""

from pathlib import Path

import psycopg
import pytest

from fixtures_daemons.integrations.pytest import factories
from fixtures_daemons.integrations.pytest.settings import OptionError

HERE = Path(__file__).parent
SCHEMA = HERE / "schema.sql"


def record_the_keywords(**kwargs):
    """A loader that keeps, in the template, the keywords it was given."""
    with psycopg.connect(**kwargs) as conn:
        conn.execute("CREATE TABLE keywords (names text, dbname text, autocommit bool)")
        conn.execute(
            "INSERT INTO keywords VALUES (%s, current_database(), %s)",
            (",".join(sorted(kwargs)), kwargs["autocommit"]),
        )


# The same items, named as strings: the same template as conftest's stories_db.
by_name_db = factories.daemon_fixture("postgresql", load=[str(SCHEMA), "conftest:load_stories"])
# Fewer items: another template (the schema, no rows).
schema_only_db = factories.daemon_fixture("postgresql", load=[SCHEMA])
recorded_db = factories.daemon_fixture("postgresql", load=[record_the_keywords])


def rows(fixture, sql):
    with psycopg.connect(fixture.url) as conn:
        return conn.execute(sql).fetchall()


def test_paths_and_import_strings_load_in_order(by_name_db, stories_db):
    assert rows(by_name_db, "SELECT name FROM stories ORDER BY id") == [
        ("Silmarillion",),
        ("The Expanse",),
    ]
    assert by_name_db.template_database() == stories_db.template_database()


def test_other_items_make_another_template(schema_only_db, stories_db):
    assert schema_only_db.template_database() != stories_db.template_database()
    assert rows(schema_only_db, "SELECT count(*) FROM stories") == [(0,)]
    assert rows(stories_db, "SELECT count(*) FROM stories") == [(2,)]


def test_a_loader_gets_pytest_postgresqls_keywords(recorded_db):
    [(names, dbname, autocommit)] = rows(recorded_db, "SELECT * FROM keywords")
    assert names == "autocommit,dbname,host,password,port,user"
    assert dbname != recorded_db.database  # the template's (being built), copied
    assert autocommit is False


@pytest.mark.parametrize(
    "load, why",
    [
        ([HERE / "nosuch.sql"], "no such SQL file"),
        (["nosuch.sql"], "no such SQL file"),
        (["nosuch_module_of_ours:load"], "cannot import it"),
        (["conftest:nosuch_loader"], "cannot import it"),
        ([42], "expected an SQL file, a callable or 'module:function'"),
    ],
)
def test_a_bad_item_fails_in_the_factory(load, why):
    with pytest.raises(OptionError, match=why) as caught:
        factories.daemon_fixture("postgresql", load=load)
    assert caught.value.option == "load"


def test_load_belongs_to_postgresql_fixtures_only():
    with pytest.raises(OptionError, match="daemon_fixture") as caught:
        factories.daemon_fixture("redis", load=[SCHEMA])
    assert caught.value.option == "daemon_fixture(load)"
    with pytest.raises(OptionError, match="not with template="):
        factories.daemon_fixture("postgresql", load=[SCHEMA], template=str(SCHEMA))
    with pytest.raises(OptionError, match="give it to daemon_fixture") as caught:
        factories.daemon_proc("postgresql", load=[SCHEMA])
    assert caught.value.option == "daemon_proc(load)"
