"""RabbitMQ in ``bench_daemons``: its bare floor and pifpaf's driver.

The floor is the installation's ``rabbitmq-server`` started the plain way
(every plugin dir on its code path, no configuration, the node name in its
environment, a fresh database every round, as the fixture's is), polled every millisecond until
the AMQP port answers the protocol header, then killed (SIGKILL, as the
fixture's cleanUp). So the floor is what RabbitMQ costs without the
fixture's boot work (a small code path, modules loaded in parallel, the
VM distributed from the start): the fixture is expected to beat it.

pifpaf's driver leaves an ``epmd -daemon`` behind (on the machine's epmd
port, 4369): here each round gives it a port of its own through
``ERL_EPMD_PORT`` and kills that epmd afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import typing

import fixtures
import psutil
from pifpaf.drivers.rabbitmq import RabbitMQDriver

from benchmarks._floors import HOST, Daemon, Floor
from fixtures_daemons import reserve_port
from fixtures_daemons.daemons.rabbitmq import rabbitmq_home, server_script

_HEADER = b"AMQP\x00\x00\x09\x01"


class RabbitmqFloor(Floor):
    """``rabbitmq-server`` on a fresh database; ready = AMQP answers."""

    def prepare(self) -> None:
        self.script = server_script(self.binary)
        # Released at once: the node and its epmd bind them in the round.
        with reserve_port(HOST) as epmd, reserve_port(HOST) as dist:
            self.epmd_port, self.dist_port = epmd.port, dist.port
        with open(os.path.join(self.workdir, "enabled_plugins"), "w") as f:
            f.write("[].")
        with open(os.path.join(self.workdir, "rabbitmq-env.conf"), "w"):
            pass

    def command(self) -> list[str]:
        # A fresh database, as the fixture's (removing the last one is
        # part of the round: a few milliseconds).
        shutil.rmtree(os.path.join(self.workdir, "mnesia"), ignore_errors=True)
        env = {
            "HOME": self.workdir,
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_CRASH_DUMP_SECONDS": "0",
            "RABBITMQ_HOME": rabbitmq_home(self.script),
            "RABBITMQ_NODENAME": "floor@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.workdir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.workdir, "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.workdir, "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.workdir, "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.workdir, "rabbitmq"),
            "RABBITMQ_ALLOW_INPUT": "1",  # exec the VM: the process is the node
        }
        # env(1) execs the script, which execs the VM: one process.
        return ["env", *("%s=%s" % item for item in env.items()), self.script, "-noshell"]

    def answers(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(_HEADER)
                return sock.recv(8).startswith(b"\x01\x00\x00")
        except OSError:
            return False

    def __call__(self) -> None:
        # The node starts its epmd (``epmd -daemon``), as a plain start does:
        # part of the round, and gone after it.
        try:
            super().__call__()
        finally:
            _kill_epmd(self.epmd_port)


def _kill_epmd(port: int) -> None:
    """The ``epmd -daemon`` that a node of pifpaf's started on ``port``."""
    for process in psutil.process_iter(["name", "environ"]):
        try:
            environ = process.info["environ"] or {}
            if process.info["name"] == "epmd" and environ.get("ERL_EPMD_PORT") == str(port):
                process.send_signal(signal.SIGKILL)
                process.wait(10)
        except psutil.Error:
            continue


class _PifpafRabbitmq(fixtures.Fixture):
    """pifpaf's driver, with an epmd port of its own, cleaned up after."""

    def __init__(self, port: int, temp_root: str) -> None:
        super().__init__()
        self.port = port
        self.temp_root = temp_root

    def _setUp(self) -> None:
        with reserve_port(HOST) as epmd:
            epmd_port = epmd.port
        self.useFixture(fixtures.EnvironmentVariable("ERL_EPMD_PORT", str(epmd_port)))
        self.addCleanup(_kill_epmd, epmd_port)
        self.useFixture(RabbitMQDriver(port=self.port, tmp_rootdir=self.temp_root))


def _pifpaf_rabbitmq(port: int, temp_root: str) -> fixtures.Fixture:
    return typing.cast(fixtures.Fixture, _PifpafRabbitmq(port, temp_root))


DAEMON = Daemon(
    "rabbitmq",
    "RabbitmqFixture",
    RabbitmqFloor,
    _pifpaf_rabbitmq,
    min_x_pifpaf=3,
    programs=("beam.smp", "epmd", "erl_child_setup", "inet_gethost"),
)
