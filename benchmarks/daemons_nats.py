"""NATS in ``bench_daemons``: its bare floor.

The floor is ``nats-server -c`` on the fixture's configuration (the
loopback listen address, a user and password, JetStream storing in the
work dir), written once outside the timed part, polled every millisecond
with a NATS login and a PING until the server answers PONG, then killed
(SIGKILL, as the fixture's cleanUp). pifpaf has no NATS driver.
"""

from __future__ import annotations

import json
import os
import socket

from benchmarks._floors import HOST, Daemon, Floor

USER, PASSWORD = "fxd", "bench-password"


class NatsFloor(Floor):
    """``nats-server -c`` on the fixture's configuration; ready = PONG."""

    def prepare(self) -> None:
        self.config = os.path.join(self.workdir, "nats.conf")
        settings = {
            "listen": json.dumps("%s:%d" % (HOST, self.port)),
            "authorization": "{user: %s, password: %s}" % (json.dumps(USER), json.dumps(PASSWORD)),
            "jetstream": "{store_dir: %s, max_memory_store: 256MB}"
            % json.dumps(os.path.join(self.workdir, "jetstream")),
        }
        with open(self.config, "w") as f:
            f.write("".join("%s: %s\n" % item for item in settings.items()))
        login = {"user": USER, "pass": PASSWORD, "verbose": False, "pedantic": False}
        self.login = b"CONNECT " + json.dumps(login).encode() + b"\r\nPING\r\n"

    def command(self) -> list[str]:
        return [self.binary, "-c", self.config]

    def answers(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                reader = sock.makefile("rb")
                if not reader.readline().startswith(b"INFO "):
                    return False
                sock.sendall(self.login)
                return reader.readline() == b"PONG\r\n"
        except OSError:
            return False


DAEMON = Daemon(
    "nats",
    "NatsFixture",
    NatsFloor,
    None,
    max_x_floor=1.5,
    programs=("nats-server",),
)
