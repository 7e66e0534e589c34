"""httpbin, the HTTP request and response service, on a reserved port.

httpbin is a Flask application, not a program: the fixture's "binary" is
a Python interpreter that can import it (PyPI's ``httpbin`` in the
running interpreter's environment, or Debian's ``python3-httpbin`` for
``/usr/bin/python3``), which serves ``httpbin.app`` with Werkzeug's WSGI
server (Flask's own dependency: nothing else to install). It keeps no
state, so the fixture owns the whole daemon and ``reset()`` has nothing
to empty.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.errors import AdminError
from fixtures_daemons.process import probes
from fixtures_daemons.process.probes import Probe

__all__ = ["HttpbinFixture", "HttpbinResource", "HttpbinAdmin"]

#: The variable that names the Python to run httpbin with.
ENV_VAR = "FIXTURES_DAEMONS_HTTPBIN"

#: What the fixture runs with ``python -c``: Werkzeug's threaded WSGI
#: server on httpbin's app, in a process named ``httpbin``. Options in
#: argparse's syntax, so that a setting it does not know fails the start
#: with a clear complaint.
SERVER = r"""
import argparse, sys
try:  # ps, pgrep and leak checks see "httpbin", not one more "python3"
    with open("/proc/self/comm", "w") as comm:
        comm.write("httpbin")
except OSError:
    pass
parser = argparse.ArgumentParser(prog="httpbin-server")
parser.add_argument("--host", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--threaded", choices=("true", "false"), default="true")
options = parser.parse_args()
try:
    import httpbin
except ImportError as exc:
    sys.exit(
        "httpbin-server: cannot import httpbin with %s (%s): install it for this Python "
        "(pip install httpbin; Debian: apt install python3-httpbin for /usr/bin/python3), "
        "or name a Python that has it with binary= or $FIXTURES_DAEMONS_HTTPBIN"
        % (sys.executable, exc)
    )
from werkzeug.serving import make_server
server = make_server(
    options.host, options.port, httpbin.app, threaded=options.threaded == "true"
)
print("httpbin-server: serving on %s:%d" % (options.host, options.port), flush=True)
server.serve_forever()
"""

#: Exits 0 when the Python that runs it can import httpbin (without
#: importing it: Flask's import is most of a start).
_CAN_IMPORT = "import importlib.util, sys; sys.exit(importlib.util.find_spec('httpbin') is None)"


def _can_import_httpbin(python: str) -> bool:
    if python == sys.executable:
        return importlib.util.find_spec("httpbin") is not None
    try:
        result = subprocess.run(
            [python, "-c", _CAN_IMPORT],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def candidate_pythons() -> list[str]:
    """The interpreters tried, in order: the running one (its venv), the
    ``python3`` on PATH, Debian's ``/usr/bin/python3``."""
    found = [sys.executable, shutil.which("python3") or "", "/usr/bin/python3"]
    return [path for path in dict.fromkeys(found) if path and os.access(path, os.X_OK)]


@functools.cache
def python_with_httpbin() -> str | None:
    """The first of :func:`candidate_pythons` that can import httpbin
    (looked for once per process), or None."""
    for python in candidate_pythons():
        if _can_import_httpbin(python):
            return python
    return None


class PythonWithHttpbin(Executable):
    """An :class:`~fixtures_daemons.Executable` whose program is the first
    Python of :func:`candidate_pythons` that can import httpbin; when none
    can, :class:`~fixtures_daemons.ExecutableNotFound` says so and names
    the packages (Debian's and PyPI's) and the variable."""

    def candidates(self) -> typing.Iterator[str]:
        found = python_with_httpbin()
        if found:
            yield found

    def wanted(self) -> tuple[str, list[str]]:
        return "a Python that can import httpbin", candidate_pythons()


class HttpbinAdmin(Admin):
    """An httpbin server, over HTTP. It keeps nothing: :meth:`flush` only
    checks that it answers."""

    def request(self, path: str) -> tuple[int, bytes]:
        """``GET path``: (status, body). No connection raises
        :exc:`OSError`; a broken reply :class:`~fixtures_daemons.AdminError`."""
        import http.client  # here: it would slow every CLI run

        endpoint = self.endpoint
        host = "[%s]" % endpoint.host if ":" in endpoint.host else endpoint.host
        connection = http.client.HTTPConnection(host, endpoint.port or 0, timeout=self.timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        except http.client.HTTPException as exc:
            raise AdminError(
                self.name, "GET " + path, "%s: %s" % (type(exc).__name__, exc)
            ) from exc
        finally:
            connection.close()

    def answers(self) -> bool:
        """True when ``GET /status/200`` answers 200 within the timeout."""
        try:
            return self.request("/status/200")[0] == 200
        except (OSError, AdminError):
            return False

    def flush(self) -> None:
        """Nothing to empty (httpbin keeps no state); raises
        :class:`~fixtures_daemons.AdminError` if it does not answer."""
        if not self.answers():
            raise AdminError(self.name, "GET /status/200", "it does not answer")


class HttpbinFixture(DaemonFixture):
    """An httpbin server (an HTTP echo service) on a reserved loopback
    port, served by Werkzeug's threaded WSGI server.

    Its program is a Python that can import ``httpbin``: the running
    interpreter when it can, else the ``python3`` on PATH, else
    ``/usr/bin/python3`` (Debian's ``python3-httpbin``); ``binary=`` or
    ``$FIXTURES_DAEMONS_HTTPBIN`` names another. It is ready when ``GET
    /status/200`` answers. It keeps no state: the fixture owns the whole
    daemon, ``reset()`` has nothing to empty, and fixtures never attach to
    each other's server in ``auto`` mode (``mode="attach"`` shares one).

    Settings (``settings=``): ``threaded`` (``true``, the default, or
    ``false``: one request at a time). The server runs as the test's user,
    also as root (it is the test's own Python and its packages, which
    another user may not be able to read).

    Attributes: ``url`` (``http://127.0.0.1:port``, what clients and
    proxies take), ``binary`` (the Python it runs with).
    """

    daemon_name = "httpbin"
    executable = PythonWithHttpbin(
        names=("python3",),
        packages={"Debian/Ubuntu": "python3-httpbin", "PyPI": "httpbin"},
        env_var=ENV_VAR,
        version_args=(
            "-c",
            "import importlib.metadata as m; print('httpbin', m.version('httpbin'))",
        ),
    )
    stop_signal = signal.SIGTERM
    restart_signal = signal.SIGTERM
    scheme = "http"
    admin_class = HttpbinAdmin

    def server_settings(self) -> dict[str, str]:
        return {"host": self.requested_host, "port": str(self.port), "threaded": "true"}

    def command_line(self) -> list[str]:
        return [self.binary, "-c", SERVER] + ["--%s=%s" % item for item in self.settings().items()]

    def probe(self) -> Probe:
        return probes.Http(self.build_endpoint().url + "/status/200", statuses=(200,))

    def process_environment(self) -> dict[str, str | None]:
        # The output of print() and of the request log, unbuffered.
        return {"PYTHONUNBUFFERED": "1"}


class HttpbinResource(DaemonResource):
    """A testresources manager sharing one :class:`HttpbinFixture`."""

    fixture_class = HttpbinFixture
