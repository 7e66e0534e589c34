"""nginx in ``bench_daemons``: its bare floor, and a pifpaf-style driver.

The floor is ``nginx -p <dir>/ -c nginx.conf -e stderr`` started directly
on the fixture's configuration (one worker, the temp paths and access log
in its dir, an empty document root, the ready location), polled every
millisecond until ``GET /_fixtures_daemons_ready`` answers 200, then
stopped with SIGTERM (nginx's fast shutdown, as the fixture's cleanUp).
The same dir serves every round.

pifpaf has no nginx driver. So that the table still compares with
pifpaf's machinery, the ``pifpaf`` column is a driver written here on
pifpaf's own ``Driver`` base class, as pifpaf's drivers are: a temp dir
of pifpaf's, the same configuration, ``_exec(..., wait_for_port=port)``
and pifpaf's cleanUp (SIGTERM, then waiting for the process). It is not a
driver that pifpaf ships.
"""

from __future__ import annotations

import http.client
import os
import signal
import typing

import fixtures
from pifpaf import drivers

from benchmarks._floors import HOST, Daemon, Floor

READY = "/_fixtures_daemons_ready"

_CONFIG = """\
daemon off;
master_process on;
pid nginx.pid;
lock_file nginx.lock;
error_log stderr notice;
worker_processes 1;
events {
    worker_connections 256;
}
http {
    default_type application/octet-stream;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    access_log access.log;
    sendfile on;
    keepalive_timeout 5;
    server {
        listen %(host)s:%(port)d;
        server_name _;
        location = %(ready)s {
            access_log off;
            return 200 "1\\n";
        }
        root "%(root)s";
    }
}
"""


def write_config(directory: str, port: int) -> None:
    root = os.path.join(directory, "html")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(directory, "nginx.conf"), "w") as f:
        f.write(_CONFIG % {"host": HOST, "port": port, "ready": READY, "root": root})


def command(binary: str, directory: str) -> list[str]:
    return [binary, "-p", directory + "/", "-c", "nginx.conf", "-e", "stderr"]


class NginxFloor(Floor):
    """``nginx`` on the fixture's configuration; ready = its ready location
    answers 200."""

    stop_signal = signal.SIGTERM

    def prepare(self) -> None:
        write_config(self.workdir, self.port)

    def command(self) -> list[str]:
        return command(self.binary, self.workdir)

    def answers(self) -> bool:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=1)
        try:
            connection.request("GET", READY)
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()


class PifpafStyleNginxDriver(drivers.Driver):  # type: ignore[misc]
    """An nginx driver as pifpaf's are written (pifpaf has none)."""

    def __init__(self, port: int, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self.port = port

    def _setUp(self) -> None:
        super()._setUp()
        write_config(self.tempdir, self.port)
        binary = self.find_executable("nginx", ["/usr/sbin", "/usr/local/sbin"])
        self._exec(command(binary, self.tempdir), wait_for_port=self.port)
        self.putenv("NGINX_PORT", str(self.port))
        self.putenv("URL", "http://localhost:%d" % self.port)


def _pifpaf_style_nginx(port: int, temp_root: str) -> fixtures.Fixture:
    return typing.cast(fixtures.Fixture, PifpafStyleNginxDriver(port, tmp_rootdir=temp_root))


DAEMON = Daemon(
    "nginx",
    "NginxFixture",
    NginxFloor,
    _pifpaf_style_nginx,
    max_x_floor=1.5,
    programs=("nginx",),
)
