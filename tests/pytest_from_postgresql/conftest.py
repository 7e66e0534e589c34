"""A conftest as pytest-postgresql users write it, after the migration,
and the tests' own helpers.

These tests run under pytest (``pytest -n 4 tests/pytest_from_postgresql``),
not stestr: this directory has no ``__init__.py``. The lines between the
markers below are the "after" of doc/source/user/from-postgresql.rst,
which includes them; ``test_stories.py`` is the same before and after.
"""

# from-postgresql.rst: the "after" starts here

from pathlib import Path

import psycopg
import pytest

from fixtures_daemons.integrations.pytest import factories

HERE = Path(__file__).parent


def load_stories(**kwargs):
    with psycopg.connect(**kwargs) as conn:
        conn.execute("INSERT INTO stories (name) VALUES ('Silmarillion'), ('The Expanse')")


def connection(fixture_name):
    """What pytest-postgresql's factories.postgresql gave: a psycopg
    connection to the database of the fixture ``fixture_name``."""

    @pytest.fixture
    def connect(request):
        conn = psycopg.connect(request.getfixturevalue(fixture_name).url)
        try:
            yield conn
        finally:
            conn.close()

    return connect


# A database per test, copied from a template that load= fills once per
# server; the server is the plugin's postgresql_proc (one per xdist worker).
stories_db = factories.daemon_fixture("postgresql", load=[HERE / "schema.sql", load_stories])
other_db = factories.daemon_fixture("postgresql", load=[HERE / "schema.sql", load_stories])

postgresql = connection("stories_db")
postgresql_other = connection("other_db")

# from-postgresql.rst: the "after" ends here
