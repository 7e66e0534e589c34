"""postgresql_proc read the way pytest-postgresql users read theirs, and
DatabaseJanitor's job done on it, after the migration (both included in
doc/source/user/from-postgresql.rst)."""

import psycopg


def databases(postgresql_proc):
    with psycopg.connect(postgresql_proc.url) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


# from-postgresql.rst: the proc starts here
def test_connect_with_the_procs_attributes(postgresql_proc):
    with psycopg.connect(
        host=postgresql_proc.host,
        port=postgresql_proc.port,
        user=postgresql_proc.user,
        password=postgresql_proc.endpoint.password,  # was: postgresql_proc.password
        dbname=postgresql_proc.database,  # was: postgresql_proc.dbname
    ) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (postgresql_proc.user,)


# from-postgresql.rst: the proc ends here


# from-postgresql.rst: the janitor starts here
def test_a_database_made_and_dropped_by_hand(postgresql_proc):
    # was: with DatabaseJanitor(user=..., host=..., port=..., dbname="my_custom_db", ...):
    janitor = postgresql_proc.namespace(database="my_custom_db")
    try:
        with psycopg.connect(janitor.url) as conn:
            conn.execute("CREATE TABLE t (n int)")
            assert conn.execute("SELECT current_database()").fetchone() == ("my_custom_db",)
    finally:
        janitor.cleanUp()  # drops it, as leaving the janitor's with-block did
    # from-postgresql.rst: the janitor ends here
    assert "my_custom_db" not in databases(postgresql_proc)
