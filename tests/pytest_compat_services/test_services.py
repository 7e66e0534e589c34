"""A test module as pytest-services users write them: the fixtures used
directly (run with ``-n 4``: the services run under pytest-xdist)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import urllib.parse

import pymysql
import pytest

from fixtures_daemons import DaemonExited, MisuseError, reserve_display, reserve_port
from fixtures_daemons.process.locks import try_lock


def test_worker_id_is_xdists(request, worker_id, session_id, run_services):
    assert worker_id == os.environ.get("PYTEST_XDIST_WORKER", "local")
    assert session_id.endswith("-" + worker_id)
    assert run_services is (worker_id != "local" or request.config.getoption("run_services"))


def test_port_getter_reserves(port_getter):
    port = port_getter()
    other = port_getter()
    assert port != other
    with socket.socket() as sock:  # free to bind
        sock.bind(("127.0.0.1", port))
    # Reserved for this session: nobody else using the library gets it.
    assert try_lock("port-%d" % port) is None
    with pytest.raises(Exception, match="reserved"):
        reserve_port(port=port)


def test_display_getter_reserves(display_getter):
    display = display_getter()
    assert isinstance(display, int)
    assert not os.path.exists("/tmp/.X%d-lock" % display)
    with pytest.raises(Exception, match="reserved"):
        reserve_display(display)


def test_dirs(base_dir, temp_dir, memory_base_dir, memory_temp_dir, run_dir, lock_dir):
    for path in (base_dir, temp_dir, memory_base_dir, memory_temp_dir, run_dir, lock_dir):
        assert os.path.isdir(path), path
    assert temp_dir == os.path.join(base_dir, "tmp")
    assert run_dir == os.path.join(memory_temp_dir, "run")
    assert stat.S_IMODE(os.stat(base_dir).st_mode) == 0o700
    assert os.path.basename(base_dir).startswith("fxd-sr-")


def test_memcached_client(memcached, memcached_client, memcached_connection, memcached_clean):
    assert memcached.poll() is None
    assert memcached_client.get("greeting") is None  # memcached_clean flushed it
    memcached_client.set("greeting", "hello")
    assert memcached_client.get("greeting") == "hello"
    host, port = memcached_connection.split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"get greeting\r\n")
        assert sock.recv(100).startswith(b"VALUE greeting")


def _socket_of(mysql_connection):
    url = urllib.parse.urlsplit(mysql_connection)
    assert url.scheme == "mysql" and url.username == "root"
    return dict(urllib.parse.parse_qsl(url.query))["unix_socket"]


def test_mysql_connection(mysql, mysql_connection, mysql_database_name, mysql_database_getter):
    assert mysql.poll() is None
    mysql_database_getter("orders_%d" % os.getpid())
    unix_socket = _socket_of(mysql_connection)
    with pymysql.connect(unix_socket=unix_socket, user="root") as conn:
        with conn.cursor() as cursor:
            cursor.execute("SHOW DATABASES")
            names = {row[0] for row in cursor.fetchall()}
            assert {mysql_database_name, "orders_%d" % os.getpid()} <= names
            # The time zone tables the getter loads.
            cursor.execute("SELECT CONVERT_TZ('2024-01-01 12:00:00', 'UTC', 'Europe/Paris')")
            assert str(cursor.fetchone()[0]) == "2024-01-01 13:00:00"
    with pymysql.connect(unix_socket=unix_socket, user="root", database=mysql_database_name) as c:
        with c.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS t (n INT)")


def test_mysql_database_getter_refuses_an_existing_name(mysql, mysql_database_getter):
    name = "twice_%d" % os.getpid()
    mysql_database_getter(name)
    with pytest.raises(Exception, match="exists"):
        mysql_database_getter(name)


def test_xvfb_with_an_x_client(xvfb, xvfb_display, xvfb_resolution):
    assert xvfb.poll() is None
    assert os.environ["DISPLAY"] == ":%d" % xvfb_display
    info = subprocess.run(["xdpyinfo"], capture_output=True, text=True, timeout=60, check=True)
    assert "%dx%d pixels" % xvfb_resolution[:2] in info.stdout
    assert "depth of root window:    %d planes" % xvfb_resolution[2] in info.stdout
    # Only clients with the cookie get in: pytest-services' -ac let anyone.
    env = dict(os.environ, XAUTHORITY="/dev/null")
    refused = subprocess.run(["xdpyinfo"], capture_output=True, env=env, timeout=60)
    assert refused.returncode != 0


def _listening(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_watcher_getter(request, watcher_getter, port_getter):
    port = port_getter()
    server = watcher_getter(
        sys.executable,
        ["-m", "http.server", "--bind", "127.0.0.1", str(port)],
        checker=lambda: _listening(port),
        request=request,
    )
    assert server.poll() is None
    assert _listening(port)


def test_watcher_getter_reports_an_exit_at_once(request, watcher_getter):
    with pytest.raises(DaemonExited) as caught:
        watcher_getter(
            "sh",
            ["-c", "echo no config file; exit 3"],
            checker=lambda: False,
            timeout=3600,  # an exit is noticed at the next poll, not at the timeout
            request=request,
        )
    assert "code 3" in str(caught.value)
    assert "no config file" in str(caught.value)


def test_watcher_getter_env_and_cwd(request, watcher_getter, temp_dir):
    marker = os.path.join(temp_dir, "env-%d" % os.getpid())
    watcher_getter(
        "sh",
        [
            "-c",
            'echo "$ONLY:${HOME:-unset}:$(pwd)" > %s.tmp && mv %s.tmp %s && exec sleep 600'
            % (marker, marker, marker),
        ],
        kwargs={"env": {"ONLY": "yes", "PATH": os.environ["PATH"]}, "cwd": temp_dir},
        checker=lambda: os.path.exists(marker),
        request=request,
    )
    with open(marker) as f:
        assert f.read().strip() == "yes:unset:%s" % temp_dir


def test_watcher_getter_refuses_unknown_popen_arguments(request, watcher_getter):
    with pytest.raises(MisuseError, match="preexec_fn"):
        watcher_getter("sh", [], kwargs={"preexec_fn": None}, request=request)
