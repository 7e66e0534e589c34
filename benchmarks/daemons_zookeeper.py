"""ZooKeeper for ``bench_daemons``: the bare JVM floor and pifpaf's driver.

The floor runs the very command the fixture runs (the same JVM options,
class path, main class and zoo.cfg settings), on a data dir reused by
every round, polled every millisecond with ``srvr`` until the server
serves, and killed (SIGKILL) as the fixture's cleanUp does.

pifpaf's driver runs Debian's ``zkServer.sh``, whose ``zkEnv.sh`` sets
``ZOO_LOG_DIR=/var/log/zookeeper``, which an ordinary user cannot write:
pifpaf fails as non-root on Debian 12, and the benchmark runs as one. So,
as non-root only, the driver is given a copy of Debian's two scripts (in
the run's cache dir) whose ``zkEnv.sh`` keeps the ``ZOO_LOG_DIR`` pifpaf
exports; everything else (the script, its JVM, its polling, ``zkServer.sh
stop``) is pifpaf's own.
"""

from __future__ import annotations

import os
import shutil
import signal
import typing

import fixtures
from pifpaf.drivers.zookeeper import ZooKeeperDriver

from benchmarks._floors import HOST, Daemon, Floor
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.templates import cache_root
from fixtures_daemons.daemons.zookeeper import (
    FAST_JVM,
    MAIN_CLASS,
    ZookeeperAdmin,
    find_classpath,
)

DEBIAN_BIN = "/usr/share/zookeeper/bin"


class ZookeeperFloor(Floor):
    """``java ... ZooKeeperServerMain zoo.cfg`` as the fixture runs it;
    ready = ``srvr`` says it serves."""

    stop_signal = signal.SIGKILL

    def prepare(self) -> None:
        os.mkdir(os.path.join(self.workdir, "data"))
        os.mkdir(os.path.join(self.workdir, "log"))
        settings = {
            "dataDir": os.path.join(self.workdir, "data"),
            "clientPort": str(self.port),
            "clientPortAddress": HOST,
            "tickTime": "2000",
            "maxClientCnxns": "0",
            "4lw.commands.whitelist": "ruok, srvr",
            "forceSync": "no",
            "admin.enableServer": "false",
        }
        with open(os.path.join(self.workdir, "zoo.cfg"), "w") as f:
            f.writelines("%s=%s\n" % item for item in settings.items())
        self.admin = ZookeeperAdmin(Endpoint(host=HOST, ports={"main": self.port}), timeout=5)

    def command(self) -> list[str]:
        return [
            self.binary,
            *FAST_JVM,
            "-Xmx128m",
            "-Djava.io.tmpdir=" + self.workdir,
            "-XX:ErrorFile=" + os.path.join(self.workdir, "hs_err_%p.log"),
            "-Dzookeeper.log.dir=" + os.path.join(self.workdir, "log"),
            "-Dzookeeper.snapshot.trust.empty=true",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-cp",
            ":".join(find_classpath()),
            MAIN_CLASS,
            os.path.join(self.workdir, "zoo.cfg"),
        ]

    def answers(self) -> bool:
        return self.admin.answers()


def _scripts_for_non_root() -> str:
    """Debian's zkServer.sh beside a zkEnv.sh that keeps $ZOO_LOG_DIR."""
    directory = os.path.join(cache_root(), "pifpaf-zookeeper-bin")
    if not os.path.isdir(directory):
        os.makedirs(directory)
        shutil.copy(os.path.join(DEBIAN_BIN, "zkServer.sh"), directory)
        with open(os.path.join(DEBIAN_BIN, "zkEnv.sh")) as f:
            env = f.read().replace(
                "ZOO_LOG_DIR=/var/log/zookeeper", "ZOO_LOG_DIR=${ZOO_LOG_DIR:-/var/log/zookeeper}"
            )
        with open(os.path.join(directory, "zkEnv.sh"), "w") as f:
            f.write(env)
    return directory


def _pifpaf_zookeeper(port: int, temp_root: str) -> fixtures.Fixture:
    driver = ZooKeeperDriver(port=port, tmp_rootdir=temp_root)
    if os.geteuid() != 0 and os.path.isdir(DEBIAN_BIN):
        driver.PATH = [_scripts_for_non_root(), *ZooKeeperDriver.PATH]
    return typing.cast(fixtures.Fixture, driver)


DAEMON = Daemon(
    "zookeeper",
    "ZookeeperFixture",
    ZookeeperFloor,
    _pifpaf_zookeeper,
    max_x_floor=1.5,
    programs=("java",),
)
