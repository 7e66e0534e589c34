"""A conftest as pytest-xprocess users write it, with one line changed
(the import of ProcessStarter), and the helpers of the inner runs.

These tests run under pytest (``pytest -n 4 tests/pytest_compat_xprocess``),
not stestr: this directory has no ``__init__.py``. The fixtures below are
the "after" of doc/source/user/from-xprocess.rst, which includes them
from the line after the marker below.
"""

# from-xprocess.rst: the "after" starts here

import os
import socket
import sys

import pytest

from fixtures_daemons.compat.xprocess import ProcessStarter

pytest_plugins = ["fixtures_daemons.compat.xprocess"]  # pytest-xprocess: none

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(os.path.dirname(HERE), "programs", "xprocess_server.py")
# One server per xdist worker: two workers must not stop each other's.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def ping(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"PING\n")
        return sock.makefile().readline().split()


def read_port(controldir):
    with open(os.path.join(str(controldir), "xprocess_server.port")) as f:
        return int(f.read())


@pytest.fixture
def server(xprocess):
    """The server, started with a ProcessStarter subclass."""
    name = "server-" + WORKER

    class Starter(ProcessStarter):
        pattern = "ready on port"
        args = [sys.executable, SERVER, "--noise", "3"]
        env = dict(os.environ, XSERVER_GREETING="starter")
        timeout = 60
        terminate_on_interrupt = True

        def startup_check(self):
            return ping(read_port(self.control_dir))[0] == "PONG"

    pid, logfile = xprocess.ensure(name, Starter)
    yield pid, read_port(xprocess.getinfo(name).controldir), logfile
    xprocess.getinfo(name).terminate()


@pytest.fixture
def legacy_server(xprocess):
    """The server, started with the older preparefunc(cwd)."""
    name = "legacy-" + WORKER

    def preparefunc(cwd):
        env = dict(os.environ, XSERVER_GREETING="legacy")
        return "ready on port", [sys.executable, SERVER], env

    pid, logfile = xprocess.ensure(name, preparefunc)
    yield pid, read_port(xprocess.getinfo(name).controldir), logfile
    xprocess.getinfo(name).terminate()


# from-xprocess.rst: the "after" ends here

pytest_plugins.append("pytester")  # for test_runs.py
