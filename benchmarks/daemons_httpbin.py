"""httpbin in ``bench_daemons``: its bare floor and pifpaf's driver.

The floor is the fixture's own server program (``python -c SERVER``:
Werkzeug's threaded server on ``httpbin.app``) with the same Python and
options, started directly, polled every millisecond until ``GET
/status/200`` answers 200, then stopped with SIGTERM (as the fixture's
cleanUp). Most of either is Python importing Flask. pifpaf's driver runs
``sys.executable -m httpbin.core --port N`` (Flask's ``app.run``), waits
for the port, and stops it with SIGTERM; it needs httpbin in the Python
that runs the benchmark (``pip install httpbin``).
"""

from __future__ import annotations

import http.client
import signal
import typing

import fixtures
from pifpaf.drivers.httpbin import HttpBinDriver

from benchmarks._floors import HOST, Daemon, Floor
from fixtures_daemons.daemons.httpbin import SERVER


class HttpbinFloor(Floor):
    """The fixture's server program; ready = ``/status/200`` answers."""

    stop_signal = signal.SIGTERM

    def command(self) -> list[str]:
        settings = {"host": HOST, "port": str(self.port), "threaded": "true"}
        return [self.binary, "-c", SERVER] + ["--%s=%s" % item for item in settings.items()]

    def answers(self) -> bool:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=1)
        try:
            connection.request("GET", "/status/200")
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()


def _pifpaf_httpbin(port: int, temp_root: str) -> fixtures.Fixture:
    return typing.cast(fixtures.Fixture, HttpBinDriver(port=port, tmp_rootdir=temp_root))


DAEMON = Daemon(
    "httpbin",
    "HttpbinFixture",
    HttpbinFloor,
    _pifpaf_httpbin,
    max_x_floor=1.5,
    programs=("httpbin",),
)
