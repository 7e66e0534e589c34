"""S3 (moto's server) in ``bench_daemons``: its bare floor and pifpaf's driver.

The floor is ``moto_server --host 127.0.0.1 --port N`` started directly,
polled every millisecond until ``GET /`` answers S3's bucket list, then
killed (SIGKILL, as the fixture's cleanUp). Nearly all of either is Python
importing moto. pifpaf has no moto driver; its ``s3rver`` driver (an S3
server too) is run on a stand-in ``s3rver`` that prints the line the
driver waits for once the same moto server answers: pifpaf's own waiting
(for that line) and stopping (SIGTERM), on the same server.
"""

from __future__ import annotations

import atexit
import http.client
import os
import shutil
import sys
import tempfile
import typing

import fixtures
from pifpaf.drivers.s3rver import S3rverDriver

from benchmarks._floors import HOST, Daemon, Floor
from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.daemons.s3 import S3Fixture


class S3Floor(Floor):
    """``moto_server``; ready = ``GET /`` lists the buckets."""

    def command(self) -> list[str]:
        return [self.binary, "--host", HOST, "--port", str(self.port)]

    def answers(self) -> bool:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=1)
        try:
            connection.request("GET", "/")
            return b"ListAllMyBucketsResult" in connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()


#: ``s3rver --directory D --port N`` for pifpaf's driver: moto's server in
#: this process, and the line the driver waits for printed once it answers
#: (as s3rver prints it once it listens), not before.
_STAND_IN_SCRIPT = """#!%(python)s
import http.client, sys, threading, time
from moto.server import main

port = int(sys.argv[sys.argv.index("--port") + 1])


def announce():
    while True:
        connection = http.client.HTTPConnection("%(host)s", port, timeout=1)
        try:
            connection.request("GET", "/")
            if connection.getresponse().status == 200:
                print("S3rver listening on", flush=True)
                return
        except OSError:
            time.sleep(0.001)
        finally:
            connection.close()


threading.Thread(target=announce, daemon=True).start()
main(["--host", "%(host)s", "--port", str(port)])
"""


def _interpreter(program: str) -> str:
    """The Python of ``program``'s ``#!`` line."""
    with open(program) as f:
        first = f.readline()
    return first[2:].split()[0] if first.startswith("#!") else sys.executable


#: The stand-in's dir, made once per run.
_STAND_IN: list[str] = []


def _stand_in_dir() -> str:
    if not _STAND_IN:
        moto = find_executable(S3Fixture.executable, S3Fixture().requested_binary, "s3")
        directory = tempfile.mkdtemp(prefix="fxd-bench-s3rver-")
        atexit.register(shutil.rmtree, directory, True)
        path = os.path.join(directory, "s3rver")
        with open(path, "w") as f:
            f.write(_STAND_IN_SCRIPT % {"python": _interpreter(moto), "host": HOST})
        os.chmod(path, 0o755)
        _STAND_IN.append(directory)
    return _STAND_IN[0]


class _PifpafS3rver(fixtures.Fixture):
    """pifpaf's s3rver driver, with the stand-in first on PATH."""

    def __init__(self, port: int, temp_root: str) -> None:
        super().__init__()
        self.port = port
        self.temp_root = temp_root

    def _setUp(self) -> None:
        path = _stand_in_dir() + os.pathsep + os.environ.get("PATH", os.defpath)
        self.useFixture(fixtures.EnvironmentVariable("PATH", path))
        self.useFixture(S3rverDriver(port=self.port, tmp_rootdir=self.temp_root))


def _pifpaf_s3rver(port: int, temp_root: str) -> fixtures.Fixture:
    return typing.cast(fixtures.Fixture, _PifpafS3rver(port, temp_root))


DAEMON = Daemon(
    "s3",
    "S3Fixture",
    S3Floor,
    _pifpaf_s3rver,
    max_x_floor=1.5,
    programs=("moto_server",),
)
