"""Tests as pytest-postgresql users write them: the same before the
migration (under pytest-postgresql, see test_before.py) and after it."""

import psycopg


def test_the_template_is_loaded(postgresql):
    with postgresql.cursor() as cur:
        cur.execute("SELECT name FROM stories ORDER BY id")
        assert cur.fetchall() == [("Silmarillion",), ("The Expanse",)]


def test_each_client_fixture_has_a_copy_of_its_own(postgresql, postgresql_other):
    assert postgresql.info.dbname != postgresql_other.info.dbname
    postgresql.execute("DELETE FROM stories")
    postgresql.commit()
    assert postgresql.execute("SELECT count(*) FROM stories").fetchone() == (0,)
    assert postgresql_other.execute("SELECT count(*) FROM stories").fetchone() == (2,)


def test_a_table_of_the_tests_own(postgresql):
    with postgresql.cursor() as cur:
        cur.execute("CREATE TABLE test (id serial PRIMARY KEY, num integer, data varchar)")
        cur.execute("INSERT INTO test (num, data) VALUES (%s, %s)", (100, "abcdef"))
        postgresql.commit()
        cur.execute("SELECT num, data FROM test")
        assert cur.fetchone() == (100, "abcdef")


def test_another_connection_from_its_info(postgresql):
    # As for an SQLAlchemy engine: host, port, user, password and dbname.
    info = postgresql.info
    with psycopg.connect(
        host=info.host,
        port=info.port,
        user=info.user,
        password=info.password,
        dbname=info.dbname,
    ) as conn:
        assert conn.execute("SELECT count(*) FROM stories").fetchone() == (2,)
