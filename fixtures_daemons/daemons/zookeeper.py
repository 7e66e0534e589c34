"""ZooKeeper, run straight from its jars by the JVM on a generated zoo.cfg.

Debian's ``zkServer.sh`` is not used: it writes to ``/var/log/zookeeper``
(which is why pifpaf's driver fails as an ordinary user on Debian 12),
runs the JVM in the background and polls. The fixture runs
``java ... org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg`` in the
foreground, with its log on stderr, JVM options that start it faster, and
nothing written outside its temp dir.

Its admin creates and deletes znodes through kazoo, ZooKeeper's Python
client, an optional extra (``fixtures-daemons[zookeeper]``) imported only
when a znode operation is needed: a fixture that starts its own server
works without it (its probe is a four-letter word over a socket).
"""

from __future__ import annotations

import glob
import os
import signal
import typing

from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import Database
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.daemons.zookeeper_admin import ZookeeperAdmin
from fixtures_daemons.daemons.zookeeper_server import ZookeeperServerAdmin
from fixtures_daemons.errors import ExecutableNotFound
from fixtures_daemons.process.probes import Callable, Probe, Tcp

__all__ = ["ZookeeperFixture", "ZookeeperResource", "ZookeeperAdmin"]

#: Where ZooKeeper's jars are: Debian's (one jar whose manifest lists its
#: dependencies), then the lib dirs of upstream's tarball and Homebrew's.
JAR_DIRS = (
    "/usr/share/java",
    "/usr/share/zookeeper",
    "/usr/share/zookeeper/lib",
    "/opt/zookeeper/lib",
    "/opt/zookeeper-bin/lib",
    "/usr/local/zookeeper/lib",
    "/usr/local/opt/zookeeper/libexec/lib",
    "/opt/homebrew/opt/zookeeper/libexec/lib",
)
PACKAGES = {"Debian/Ubuntu": "zookeeper", "Homebrew": "zookeeper"}
CLASSPATH_ENV = "FIXTURES_DAEMONS_ZOOKEEPER_CLASSPATH"
MAIN_CLASS = "org.apache.zookeeper.server.ZooKeeperServerMain"

#: JVM options measured to start it faster (see the doc page): no JIT
#: beyond C1, the serial collector, a small heap, no perf data file in /tmp.
FAST_JVM = (
    "-Xshare:auto",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xms16m",
    "-XX:-UsePerfData",
    "-Djava.net.preferIPv4Stack=true",
)


def _is_server_jar(path: str) -> bool:
    base = os.path.basename(path)
    if base == "zookeeper.jar":
        return True
    rest = base[len("zookeeper-") :] if base.startswith("zookeeper-") else ""
    return rest[:1].isdigit() and rest.endswith(".jar") and "-tests" not in rest


def find_classpath(explicit: str | None = None, what: str = "zookeeper") -> list[str]:
    """The jars that run ZooKeeper's server, with a logging backend.

    ``explicit`` (the ``classpath=`` parameter) or ``$FIXTURES_DAEMONS_ZOOKEEPER_CLASSPATH``
    wins: a dir of jars or a ``:``-separated class path. Otherwise the
    known places are searched. Raises
    :class:`~fixtures_daemons.ExecutableNotFound` naming the ``zookeeper``
    package when there is no ZooKeeper jar.
    """
    given = explicit or os.environ.get(CLASSPATH_ENV)
    if given:
        entries: list[str] = []
        for part in given.split(":"):
            if os.path.isdir(part):
                entries.extend(sorted(glob.glob(os.path.join(part, "*.jar"))))
            elif os.path.isfile(part):
                entries.append(part)
        if not any(_is_server_jar(e) for e in entries):
            raise ExecutableNotFound(what, given, [given], PACKAGES, CLASSPATH_ENV)
        return entries
    for directory in JAR_DIRS:
        jars = sorted(glob.glob(os.path.join(directory, "*.jar")))
        servers = [jar for jar in jars if _is_server_jar(jar)]
        if not servers:
            continue
        if directory == "/usr/share/java":
            # Debian: the jar's manifest names its dependencies but for a
            # logging backend (one that writes to the console: stderr) and
            # the servlet API that the admin server's Jetty needs.
            extra = [os.path.join(directory, n) for n in ("slf4j-simple.jar", "servlet-api.jar")]
            return servers[:1] + [jar for jar in extra if os.path.isfile(jar)]
        return jars  # a lib dir holds the server's jars and their dependencies
    raise ExecutableNotFound(what, "zookeeper.jar", list(JAR_DIRS), PACKAGES, CLASSPATH_ENV)


class ZookeeperFixture(DaemonFixture):
    """A standalone ZooKeeper server on loopback, run by the JVM from
    ZooKeeper's jars (``ZooKeeperServerMain``) on a ``zoo.cfg`` in its temp
    dir, never through ``zkServer.sh``.

    Its ``executable`` is ``java``; its jars are found in
    ``/usr/share/java`` (Debian's ``zookeeper`` package) or an upstream
    ``lib`` dir, or given by ``classpath=`` or
    ``$FIXTURES_DAEMONS_ZOOKEEPER_CLASSPATH``; missing jars are an
    :class:`~fixtures_daemons.ExecutableNotFound` naming the ``zookeeper``
    package. It is ready when ``srvr`` says it serves. cleanUp kills the
    JVM (the data is thrown away); :meth:`stopped` stops it with SIGTERM,
    and its znodes are back after the restart. As root it runs as
    ``nobody``.

    A fixture that shares a server owns a chroot, the znode
    ``/test_<random>``, created on setUp and deleted with everything under
    it on cleanUp; ``endpoint.database`` is its name, so ``url`` and
    :attr:`hosts` end with it (``127.0.0.1:PORT/test_...``, kazoo's form).
    Creating and deleting znodes (namespaces, ``reset()``) needs kazoo
    (``pip install 'fixtures-daemons[zookeeper]'``); without it those raise
    :class:`~fixtures_daemons.ClientLibraryMissing`, and a fixture that starts its own server
    still works.

    :param admin_server: start ZooKeeper's admin server (HTTP, Jetty) on a
        reserved loopback port, ``ports["admin"]``; off by default (it
        slows the start).
    :param heap: the JVM's maximum heap (``-Xmx``).
    :param classpath: ZooKeeper's jars: a dir of jars or a ``:``-separated
        class path (default: searched).
    :param jvm_args: more JVM options, put before the main class
        (``args=`` goes after the config file, where ZooKeeper takes none).

    Attributes: ``url`` (``zookeeper://host:port[/chroot]``), ``hosts``
    (kazoo's connection string), ``chroot`` (``/name`` or ``""``),
    ``config_path``.
    """

    daemon_name = "zookeeper"
    executable = Executable(
        names=("java",),
        dirs=("/usr/lib/jvm/default-java/bin", "/usr/lib/jvm/*/bin"),
        packages=PACKAGES,
        env_var="FIXTURES_DAEMONS_ZOOKEEPER_JAVA",
    )
    port_names = ("main", "admin")
    refuses_root = True
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGTERM
    scheme = "zookeeper"
    namespace = Database
    admin_class = ZookeeperAdmin
    server_admin_class = ZookeeperServerAdmin

    def __init__(
        self,
        *,
        admin_server: bool = False,
        heap: str = "128m",
        classpath: str | None = None,
        jvm_args: typing.Sequence[str] = (),
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.admin_server = admin_server
        self.heap = heap
        self.classpath = classpath
        self.jvm_args = list(jvm_args)

    def needed_ports(self) -> typing.Sequence[str]:
        return self.port_names if self.admin_server else self.port_names[:1]

    def server_settings(self) -> dict[str, str]:
        settings = {
            "dataDir": self.path("data"),
            "clientPort": str(self.port),
            "clientPortAddress": self.requested_host,
            "tickTime": "2000",
            "maxClientCnxns": "0",
            "4lw.commands.whitelist": "ruok, srvr",
            # No fsync of the transaction log: the data is thrown away.
            "forceSync": "yes" if self.durable else "no",
            "admin.enableServer": "true" if self.admin_server else "false",
        }
        if self.admin_server:
            settings["admin.serverAddress"] = self.requested_host
            settings["admin.serverPort"] = str(self.ports["admin"])
        return settings

    @property
    def config_path(self) -> str:
        return os.path.join(self.temp_dir, "zoo.cfg")

    def prepare(self) -> None:
        self._classpath = find_classpath(self.classpath, self.daemon_name)
        for directory in ("data", "log"):
            os.mkdir(self.path(directory))
            if self.run_as is not None:
                os.chown(self.path(directory), self.run_as.uid, self.run_as.gid)
        self.write_file("zoo.cfg", "".join("%s=%s\n" % item for item in self.settings().items()))

    def command_line(self) -> list[str]:
        return [
            self.binary,
            *FAST_JVM,
            "-Xmx" + self.heap,
            "-Djava.io.tmpdir=" + self.temp_dir,
            "-XX:ErrorFile=" + self.path("hs_err_%p.log"),
            "-Dzookeeper.log.dir=" + self.path("log"),
            # An empty data dir is trusted: no snapshot written at start.
            "-Dzookeeper.snapshot.trust.empty=true",
            "-Dzookeeper.jmx.log4j.disable=true",
            *self.jvm_args,
            "-cp",
            ":".join(self._classpath),
            MAIN_CLASS,
            self.config_path,
        ]

    def process_environment(self) -> dict[str, str | None]:
        # Options the JVM would pick up from the environment of the tests.
        return {"JAVA_TOOL_OPTIONS": None, "JDK_JAVA_OPTIONS": None, "_JAVA_OPTIONS": None}

    def probe(self) -> Probe:
        serves = Callable(self.admin.answers, "srvr answered (the server serves)")
        if not self.admin_server:
            return serves
        # ZooKeeper goes on without its admin server when Jetty cannot
        # start: wait for that port too, so the failure is a StartupTimeout.
        return serves & Tcp(self.requested_host, self.ports["admin"])

    # -- what tests use ------------------------------------------------------

    @property
    def chroot(self) -> str:
        """``/<name>`` of the chroot this fixture owns, or ``""``."""
        return "/" + self.endpoint.database if self.endpoint.database else ""

    @property
    def hosts(self) -> str:
        """kazoo's connection string: ``host:port[/chroot]``."""
        return _hosts(self.endpoint)

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        chroot = "/" + endpoint.database if endpoint.database else ""
        return {"HOSTS": _hosts(endpoint), "CHROOT": chroot}

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        chroot = "/" + endpoint.database if endpoint.database else ""
        return "zookeeper://localhost:%d%s" % (endpoint.port or 0, chroot)

    def pifpaf_raw_exports(self, endpoint: Endpoint, prefix: str) -> dict[str, str]:
        if not endpoint.directory:
            return {}
        return {
            "ZOOCFGDIR": endpoint.directory,
            "ZOOCFG": os.path.join(endpoint.directory, "zoo.cfg"),
            "ZOO_LOG_DIR": os.path.join(endpoint.directory, "log"),
        }


def _hosts(endpoint: Endpoint) -> str:
    chroot = "/" + endpoint.database if endpoint.database else ""
    return "%s:%d%s" % (endpoint.host, endpoint.port or 0, chroot)


class ZookeeperResource(DaemonResource):
    """A testresources manager sharing one :class:`ZookeeperFixture`."""

    fixture_class = ZookeeperFixture
