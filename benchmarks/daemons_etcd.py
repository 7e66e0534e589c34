"""etcd in ``bench_daemons``: its bare floor and pifpaf's driver.

The floor is ``etcd`` started directly with the fixture's settings (one
member, fast raft timers, a small snapshot count, zap logging to stderr)
on a data dir in its work dir, polled every millisecond until ``GET
/health`` answers ``{"health":"true"}``, then killed (SIGKILL, as the
fixture's cleanUp). etcd has no separate initialisation: its data dir is
made by the start itself (a 64 MB write-ahead log and a bbolt file), and a
reused one is no faster to start, so the floor reuses the same dir every
round. pifpaf's driver runs ``etcdctl endpoint health`` once etcd is up,
and stops it with SIGTERM.
"""

from __future__ import annotations

import http.client
import os
import typing

import fixtures
from pifpaf.drivers.etcd import EtcdDriver

from benchmarks._floors import HOST, Daemon, Floor
from fixtures_daemons import reserve_port


class EtcdFloor(Floor):
    """``etcd`` with the fixture's settings; ready = ``/health`` is true."""

    def prepare(self) -> None:
        # The peer port: one more, reserved for the whole run.
        self.peer = reserve_port(HOST)
        self.data_dir = os.path.join(self.workdir, "etcd1")

    def command(self) -> list[str]:
        client = "http://%s:%d" % (HOST, self.port)
        peer = "http://%s:%d" % (HOST, self.peer.port)
        settings = {
            "name": "etcd1",
            "data-dir": self.data_dir,
            "listen-client-urls": client,
            "advertise-client-urls": client,
            "listen-peer-urls": peer,
            "initial-advertise-peer-urls": peer,
            "initial-cluster": "etcd1=" + peer,
            "initial-cluster-state": "new",
            "initial-cluster-token": "fxd-bench",
            "heartbeat-interval": "2",
            "election-timeout": "20",
            "snapshot-count": "1000",
            "logger": "zap",
            "log-outputs": "stderr",
        }
        return [self.binary] + ["--%s=%s" % item for item in settings.items()]

    def answers(self) -> bool:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=1)
        try:
            connection.request("GET", "/health")
            return b'"health":"true"' in connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()


def _pifpaf_etcd(port: int, temp_root: str) -> fixtures.Fixture:
    # pifpaf's peer port defaults to the fixed 2380: one of ours instead,
    # released at once (pifpaf binds it within the round).
    with reserve_port(HOST) as peer:
        peer_port = peer.port
    return typing.cast(
        fixtures.Fixture, EtcdDriver(port=port, peer_port=peer_port, tmp_rootdir=temp_root)
    )


DAEMON = Daemon(
    "etcd",
    "EtcdFixture",
    EtcdFloor,
    _pifpaf_etcd,
    max_x_floor=1.5,
    programs=("etcd",),
)
