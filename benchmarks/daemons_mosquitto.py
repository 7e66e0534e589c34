"""Mosquitto in ``bench_daemons``: its bare floor.

The floor is ``mosquitto -c`` on the fixture's configuration (one loopback
listener, anonymous clients refused, a password file, persistence in the
work dir, log to stderr), written once outside the timed part, polled
every millisecond with an MQTT CONNECT (user and password) until the
broker's CONNACK accepts it, then killed (SIGKILL, as the fixture's
cleanUp). pifpaf has no Mosquitto driver.
"""

from __future__ import annotations

import os
import socket
import struct

from benchmarks._floors import HOST, Daemon, Floor
from fixtures_daemons.daemons.mosquitto import password_line

USER, PASSWORD = "fxd", "bench-password"


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, user: str, password: str) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session, a user and a password."""
    body = _string("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60)
    body += _string(client_id) + _string(user) + _string(password)
    assert len(body) < 128  # one byte of remaining length
    return bytes([0x10, len(body)]) + body


class MosquittoFloor(Floor):
    """``mosquitto -c`` on the fixture's configuration; ready = CONNACK 0."""

    def prepare(self) -> None:
        passwords = os.path.join(self.workdir, "passwords")
        with open(passwords, "w") as f:
            f.write(password_line(USER, PASSWORD))
        os.chmod(passwords, 0o600)
        self.config = os.path.join(self.workdir, "mosquitto.conf")
        settings = {
            "allow_anonymous": "false",
            "persistence": "true",
            "persistence_location": self.workdir.rstrip("/") + "/",
            "persistence_file": "mosquitto.db",
            "log_dest": "stderr",
            "log_timestamp_format": "%Y-%m-%dT%H:%M:%S",
            "password_file": passwords,
        }
        lines = ["%s %s" % item for item in settings.items()]
        lines.append("listener %d %s" % (self.port, HOST))
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.packet = connect_packet("fxd-bench", USER, PASSWORD)

    def command(self) -> list[str]:
        return [self.binary, "-c", self.config]

    def answers(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(self.packet)
                return sock.recv(4) == b"\x20\x02\x00\x00"
        except OSError:
            return False


DAEMON = Daemon(
    "mosquitto",
    "MosquittoFixture",
    MosquittoFloor,
    None,
    max_x_floor=1.5,
    programs=("mosquitto",),
)
