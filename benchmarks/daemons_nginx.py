"""nginx in ``bench_daemons``: its bare floor (pifpaf has no nginx driver).

The floor is ``nginx -p <dir>/ -c nginx.conf -e stderr`` started directly
on the fixture's configuration (one worker, the temp paths and access log
in its dir, an empty document root, the ready location), polled every
millisecond until ``GET /_fixtures_daemons_ready`` answers 200, then
stopped with SIGTERM (nginx's fast shutdown, as the fixture's cleanUp).
The same dir serves every round.
"""

from __future__ import annotations

import http.client
import os
import signal

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


DAEMON = Daemon(
    "nginx",
    "NginxFixture",
    NginxFloor,
    None,
    max_x_floor=1.5,
    programs=("nginx",),
)
