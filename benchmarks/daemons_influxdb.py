"""InfluxDB 1.x in ``bench_daemons``: its bare floor and pifpaf's driver.

The floor is ``influxd`` started directly on the fixture's configuration
(the same settings and file, from the fixture's own functions: HTTP and
RPC on loopback ports, the background services off), with its meta, data
and WAL dirs in its work dir, polled every millisecond until ``GET /ping`` answers
204; then it makes the database, as the fixture does at start (``CREATE
DATABASE test``), and is killed (SIGKILL, as the fixture's cleanUp). The
dirs are reused every round: influxd makes them itself in a millisecond.

pifpaf 3.4's driver waits for influxd to print ``Listening on HTTP:
[::]:PORT``, a line influxd stopped printing in 1.5 (it logs
``msg="Listening on HTTP" ... addr=[::]:PORT`` now), so with Debian's
1.6 it waits for ever. Here it runs ``influxd`` through a small bash
wrapper (put first on ``PATH``) that adds the old line to the output (a
``sed`` beside influxd) and moves the RPC service, which the driver leaves
on its fixed default ``:8088``, to a reserved loopback port; the wrapper
execs influxd, so pifpaf stops influxd itself (SIGTERM). The driver then
runs ``influx -execute "CREATE DATABASE test"`` and waits for it.
"""

from __future__ import annotations

import atexit
import http.client
import os
import shutil
import tempfile
import typing
import urllib.parse

import fixtures
from pifpaf.drivers.influxdb import InfluxDBDriver

from benchmarks._floors import HOST, Daemon, Floor
from fixtures_daemons import reserve_port
from fixtures_daemons.daemons.influxdb import DEFAULT_DATABASE, base_settings, render_config

#: The wrapper pifpaf's driver runs as ``influxd`` (see the module's text).
WRAPPER = """#!/bin/bash
config="$2"
{ printf 'bind-address = "127.0.0.1:%%s"\\n' "$FXD_BENCH_INFLUXDB_RPC_PORT"; cat "$config"; } \\
    > "$config.fxd" && mv "$config.fxd" "$config" || exit 1
exec %(influxd)s "$@" > >(sed -u \\
    's/msg="Listening on HTTP".*addr=\\([^ ]*\\).*/&\\nListening on HTTP: \\1/') 2>&1
"""


class InfluxdbFloor(Floor):
    """``influxd`` on the fixture's configuration; ready = ``/ping`` is 204,
    then the database is made."""

    def prepare(self) -> None:
        # The RPC port: one more, reserved for the whole run.
        self.rpc = reserve_port(HOST)
        settings = base_settings(self.workdir, HOST, self.port, self.rpc.port)
        self.config = os.path.join(self.workdir, "influxdb.conf")
        with open(self.config, "w") as f:
            f.write(render_config(settings))

    def command(self) -> list[str]:
        return [self.binary, "run", "-config", self.config]

    def request(self, method: str, path: str, body: bytes | None = None) -> int:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=1)
        try:
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return 0
        finally:
            connection.close()

    def answers(self) -> bool:
        if self.request("GET", "/ping") != 204:
            return False
        body = urllib.parse.urlencode({"q": 'CREATE DATABASE "%s"' % DEFAULT_DATABASE})
        return self.request("POST", "/query", body.encode()) == 200


_wrapper_dir: list[str] = []


def _wrapper() -> str:
    """The dir of the ``influxd`` wrapper, made once per run."""
    if not _wrapper_dir:
        influxd = shutil.which("influxd") or shutil.which("influxd", path="/usr/sbin")
        if influxd is None:
            raise RuntimeError("influxd is not installed (Debian: influxdb)")
        path = tempfile.mkdtemp(prefix="fxd-bench-influxd-wrapper-")
        atexit.register(shutil.rmtree, path, True)
        with open(os.path.join(path, "influxd"), "w") as f:
            f.write(WRAPPER % {"influxd": influxd})
        os.chmod(os.path.join(path, "influxd"), 0o755)
        _wrapper_dir.append(path)
    return _wrapper_dir[0]


class _PifpafInfluxdb(fixtures.Fixture):  # type: ignore[misc]
    """pifpaf's driver, with the wrapper first on PATH and its RPC port."""

    def __init__(self, port: int, temp_root: str) -> None:
        super().__init__()
        self.port = port
        self.temp_root = temp_root

    def _setUp(self) -> None:
        path = _wrapper() + os.pathsep + os.environ.get("PATH", os.defpath)
        self.useFixture(fixtures.EnvironmentVariable("PATH", path))
        # A free loopback port for its RPC service, released at once
        # (influxd binds it within the round).
        with reserve_port(HOST) as rpc:
            rpc_port = rpc.port
        self.useFixture(fixtures.EnvironmentVariable("FXD_BENCH_INFLUXDB_RPC_PORT", str(rpc_port)))
        self.useFixture(
            typing.cast(
                fixtures.Fixture, InfluxDBDriver(port=self.port, tmp_rootdir=self.temp_root)
            )
        )


def _pifpaf_influxdb(port: int, temp_root: str) -> fixtures.Fixture:
    return _PifpafInfluxdb(port, temp_root)


DAEMON = Daemon(
    "influxdb",
    "InfluxdbFixture",
    InfluxdbFloor,
    _pifpaf_influxdb,
    max_x_floor=1.5,
    programs=("influxd", "influx"),
)
