"""RabbitMQ: a node of its own, with its own epmd, in the private temp dir.

Where a RabbitMQ boot goes is measured in doc/source/design.rst ("The
daemons of the OpenStack set, measured"): not the Erlang VM, but RabbitMQ
loading and scanning the modules of every application it finds (feature
flags, boot steps and the schema-upgrade check each walk the module
attributes of every loaded application), and ``rabbitmq-server``'s
prelaunch booting a second VM only to make sure an epmd runs. So the
fixture:

* gives the node a code path (``ERL_LIBS`` and the plugins dir) with only
  the applications ``rabbit`` needs, as symlinks in the temp dir;
* starts the node distributed from the first instruction (``-sname``, the
  distribution port pinned, loopback only), on an epmd it started itself
  on a reserved port, so the prelaunch skips its epmd-starter VM and its
  node-name checks;
* loads every module of those applications (and of the Erlang/OTP ones
  they need) in a background process from the first instruction, in
  batches prepared in parallel, so that on two cores the loading overlaps
  the prelaunch instead of stalling the boot in the middle;
* boots on a copy of a database made once and cached (the template
  cache, as PostgreSQL's data dir): a fresh database costs the boot its
  schema, its tables and a feature-flag migration each (about 0.3 s). The
  node name is written in the database, so the node of a template is
  always ``fxd@localhost`` (each node has an epmd of its own, so two
  nodes of the same name never meet); a node given another name, or a
  cluster, boots on an empty database;
* stops the node with SIGKILL (its data is thrown away) and, in
  :meth:`~RabbitmqFixture.stopped`, with SIGTERM (a clean shutdown that
  keeps durable queues and persistent messages).

Vhosts (what an attached fixture owns) are made and dropped with
``erl_call``, Erlang's own C client of the distribution protocol: an RPC
on the running node, where ``rabbitmqctl`` boots a VM per call and the
HTTP API needs the management plugin, which slows every boot.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import typing
import urllib.parse

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable, program_version
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import Database
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.daemons.rabbitmq_server import RabbitmqServerAdmin
from fixtures_daemons.errors import AdminError, DaemonExited, ExecutableNotFound, StartupTimeout
from fixtures_daemons.process.fixture import ProcessFixture
from fixtures_daemons.process.probes import Callable, Probe, Tcp
from fixtures_daemons.process.waiting import Deadline, wait_for

__all__ = ["RabbitmqFixture", "RabbitmqResource", "RabbitmqAdmin"]

#: What every AMQP 0-9-1 client sends first; the broker answers with a
#: Connection.Start method frame (type 1, channel 0).
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_METHOD_FRAME_ON_CHANNEL_0 = b"\x01\x00\x00"

#: The applications a bare node needs (the closure of their .app files'
#: dependencies is what goes on its code path).
_CORE_APPS = ("rabbit", "rabbit_common", "rabbitmq_prelaunch")

#: Variables of the caller's environment that would change the node.
_FOREIGN = (
    "RABBITMQ_BASE",
    "RABBITMQ_ENABLED_PLUGINS",
    "RABBITMQ_SERVER_START_ARGS",
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
    "RABBITMQ_SERVER_ERL_ARGS",
    "RABBITMQ_USE_LONGNAME",
    "RABBITMQ_ADVANCED_CONFIG_FILE",
    "RABBITMQ_CONFIG_FILES",
    "RABBITMQ_ERLANG_COOKIE",
    "RABBITMQ_FEATURE_FLAGS",
    "ERL_AFLAGS",
    "ERL_FLAGS",
    "ERL_ZFLAGS",
)

#: What says RabbitMQ is installed, and its version: the library runs
#: ``<program> --version`` (``fixtures-daemons list``, the version cache).
#: Not ``rabbitmq-server``: it boots a broker whatever its arguments; not
#: ``rabbitmqctl``: its ``--version`` starts a machine-wide ``epmd -daemon``
#: that outlives it. ``rabbitmqadmin`` (Python, shipped by the package)
#: prints the version and nothing else. The fixture runs the
#: ``rabbitmq-server`` of the same installation (:func:`server_script`).
SERVER = Executable(
    names=("rabbitmqadmin",),
    dirs=(
        "/usr/lib/rabbitmq/bin",
        "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin",
        "/usr/libexec/rabbitmq",
        "/opt/homebrew/opt/rabbitmq/sbin",
        "/usr/local/opt/rabbitmq/sbin",
    ),
    packages={"Debian/Ubuntu": "rabbitmq-server", "Homebrew": "rabbitmq"},
    env_var="FIXTURES_DAEMONS_RABBITMQ",
)


def rabbitmq_home(program: str) -> str:
    """The RabbitMQ installation (the dir with ``plugins`` and ``sbin``) a
    program of its (``rabbitmqctl``, ``rabbitmq-server``) belongs to; ""
    for a wrapper of another kind (Debian's ``/usr/sbin/rabbitmqctl``,
    which switches to the rabbitmq user)."""
    home = os.path.dirname(os.path.dirname(os.path.realpath(program)))
    return home if os.path.isdir(os.path.join(home, "plugins")) else ""


def server_script(found: str) -> str:
    """The ``rabbitmq-server`` script of the installation ``found`` (its
    ``rabbitmq-server``, ``rabbitmqctl`` or ``rabbitmqadmin``) belongs to;
    for a program outside it (Debian's ``/usr/bin/rabbitmqadmin``, its
    ``/usr/sbin`` wrappers), the newest installation in
    ``/usr/lib/rabbitmq``."""
    beside = os.path.join(os.path.dirname(os.path.realpath(found)), "rabbitmq-server")
    homes = [rabbitmq_home(found), rabbitmq_home(beside)] + [
        os.path.dirname(os.path.dirname(path))
        for path in sorted(
            glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"),
            key=lambda path: [int(n) for n in re.findall(r"\d+", path)],
            reverse=True,
        )
    ]
    for home in homes:
        script = os.path.join(home, "sbin", "rabbitmq-server")
        if home and rabbitmq_home(script) and os.access(script, os.X_OK):
            return script
    raise ExecutableNotFound(
        "rabbitmq",
        os.path.join(os.path.dirname(found), "rabbitmq-server"),
        [os.path.dirname(found)],
        SERVER.packages,
        SERVER.env_var,
    )


@functools.cache
def _applications(plugins_dir: str) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (its dir, the applications its .app file needs)."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for path in sorted(glob.glob(os.path.join(plugins_dir, "*", "ebin", "*.app"))):
        name = os.path.basename(path)[: -len(".app")]
        found[name] = (os.path.dirname(os.path.dirname(path)), _needs(path))
    return found


def code_path(plugins_dir: str, apps: typing.Iterable[str]) -> dict[str, str]:
    """The RabbitMQ applications that ``apps`` need, with their dirs (the
    Erlang/OTP ones are on the VM's own path)."""
    known = _applications(plugins_dir)
    needed: dict[str, str] = {}
    todo = list(apps)
    while todo:
        app = todo.pop()
        if app in needed or app not in known:
            continue
        needed[app] = known[app][0]
        todo.extend(known[app][1])
    return needed


def otp_applications(code: typing.Iterable[str]) -> list[str]:
    """The dirs of the Erlang/OTP applications that the RabbitMQ
    applications in ``code`` (their dirs) need, directly or not."""
    otp = {}
    for app_file in glob.glob(os.path.join(code_root(), "lib", "*", "ebin", "*.app")):
        otp[os.path.basename(app_file)[: -len(".app")]] = app_file
    needed: dict[str, str] = {}
    todo: list[str] = []
    for where in code:
        for app_file in glob.glob(os.path.join(where, "ebin", "*.app")):
            todo.extend(_needs(app_file))
    while todo:
        app = todo.pop()
        if app in needed or app not in otp:
            continue
        needed[app] = os.path.dirname(os.path.dirname(otp[app]))
        todo.extend(_needs(otp[app]))
    return sorted(needed.values())


@functools.cache
def code_root() -> str:
    """The Erlang/OTP installation (``/usr/lib/erlang``)."""
    erl = shutil.which("erl") or "/usr/lib/erlang/bin/erl"
    return os.path.dirname(os.path.dirname(os.path.realpath(erl)))


@functools.cache
def _needs(app_file: str) -> frozenset[str]:
    """The applications an .app file says its application needs."""
    with open(app_file, encoding="utf-8", errors="replace") as f:
        text = f.read()
    needs: set[str] = set()
    for key in ("applications", "included_applications"):
        match = re.search(r"\{\s*%s\s*,\s*\[([^\]]*)\]" % key, text)
        if match:
            needs.update(word.strip() for word in match.group(1).split(",") if word.strip())
    return frozenset(needs)


def erl_term(text: str) -> str:
    """``text`` as an Erlang binary literal."""
    return "<<%s>>" % ",".join(str(b) for b in text.encode("utf-8")) if text else "<<>>"


@functools.cache
def find_erl_call() -> str:
    """Erlang's ``erl_call`` (package erlang-base on Debian)."""
    candidates = glob.glob("/usr/lib/erlang/erts-*/bin/erl_call") + glob.glob(
        "/usr/lib/erlang/lib/erl_interface-*/bin/erl_call"
    )
    for found in [shutil.which("erl_call") or ""] + sorted(candidates, reverse=True):
        if found and os.access(found, os.X_OK):
            return found
    raise ExecutableNotFound(
        "rabbitmq", "erl_call", ["PATH", "/usr/lib/erlang"], {"Debian/Ubuntu": "erlang-base"}
    )


def find_epmd(erl_bin: str = "") -> str:
    """The epmd of the Erlang installation RabbitMQ runs on."""
    for found in (
        shutil.which("epmd") or "",
        *sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"), reverse=True),
    ):
        if found and os.access(found, os.X_OK):
            return found
    raise ExecutableNotFound("rabbitmq", "epmd", ["PATH"], {"Debian/Ubuntu": "erlang-base"})


#: Loads the modules of the dirs given, a batch at a time (a batch is
#: prepared in parallel, then the code server finishes it: small batches
#: leave it free to serve the boot between them).
_PRELOAD = (
    "spawn(fun() -> Load = fun(_, [], _) -> ok; (L, Ms, N) -> "
    "{B, R} = lists:split(min(N, length(Ms)), Ms), code:ensure_modules_loaded(B), L(L, R, N) end, "
    'Load(Load, [list_to_atom(filename:basename(F, ".beam")) '
    '|| D <- [%s], F <- filelib:wildcard(D ++ "/*.beam")], %d) end)'
)


#: The short name of a node booted from the database template.
TEMPLATE_NODE = "fxd"


def _port(kind: str, member: int) -> str:
    """The name of a member's port: ``amqp``, ``amqp2``, ..."""
    return kind if member == 1 else "%s%d" % (kind, member)


class RabbitmqAdmin(Admin):
    """One of our RabbitMQ nodes: AMQP for "does it answer", and
    ``erl_call`` (an RPC over the Erlang distribution, no VM booted) for
    vhosts. It needs the node's name and cookie, which the endpoint's
    ``extra`` carries."""

    #: Who the broker's audit log says made a change.
    acting_user = "fixtures-daemons"

    def answers(self) -> bool:
        """The broker answers the AMQP protocol header with Connection.Start."""
        endpoint = self.endpoint
        try:
            with socket.create_connection(
                (endpoint.host, endpoint.port or 0), timeout=min(self.timeout, 5.0)
            ) as sock:
                sock.sendall(_AMQP_HEADER)
                reply = b""
                while len(reply) < len(_METHOD_FRAME_ON_CHANNEL_0):
                    chunk = sock.recv(64)
                    if not chunk:
                        return False
                    reply += chunk
        except OSError:
            return False
        return reply.startswith(_METHOD_FRAME_ON_CHANNEL_0)

    # -- RPC ---------------------------------------------------------------------

    def rpc(self, expression: str, what: str = "") -> str:
        """Evaluate the Erlang ``expression`` (ending with a full stop) on
        the node; return what it evaluates to, as Erlang prints it."""
        extra = self.endpoint.extra
        cookie = extra.get("cookie", "")
        dist = self.endpoint.ports.get("dist")
        if not (cookie and dist):
            raise AdminError(
                self.name, what or expression, "the endpoint lacks the cookie or distribution port"
            )
        command = [
            find_erl_call(),
            "-address",
            "%s:%d" % (self.endpoint.host, dist),
            "-c",
            cookie,
            "-timeout",
            str(max(1, int(self.timeout))),
            "-e",
        ]
        try:
            result = subprocess.run(
                command,
                input=expression.encode("utf-8") + b"\n",
                capture_output=True,
                timeout=self.timeout + 5,
                check=False,
                cwd="/",
            )
        except subprocess.TimeoutExpired:
            raise AdminError(
                self.name, what or expression, "no answer within %.1f s" % self.timeout
            ) from None
        output = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
        if result.returncode != 0 or not output.startswith("{ok,"):
            raise AdminError(self.name, what or expression, output or "erl_call failed")
        return output[len("{ok,") : -1].strip()

    def _user(self) -> str:
        return erl_term(self.endpoint.user)

    def _grant(self, vhost: str) -> str:
        return "ok = rabbit_auth_backend_internal:set_permissions(%s, %s, %s, %s, %s, %s)" % (
            self._user(),
            vhost,
            erl_term(".*"),
            erl_term(".*"),
            erl_term(".*"),
            erl_term(self.acting_user),
        )

    # -- vhosts --------------------------------------------------------------------

    def database_exists(self, name: str) -> bool:
        return self.rpc("rabbit_vhost:exists(%s)." % erl_term(name), "vhost_exists") == "true"

    def create_database(self, name: str, template: str | None = None) -> None:
        vhost = erl_term(name)
        self.rpc(
            "ok = rabbit_vhost:add(%s, %s), %s, ok."
            % (vhost, erl_term(self.acting_user), self._grant(vhost)),
            "add_vhost %s" % name,
        )

    def drop_database(self, name: str) -> None:
        vhost = erl_term(name)
        self.rpc(
            "case rabbit_vhost:exists(%s) of true -> ok = rabbit_vhost:delete(%s, %s); "
            "false -> ok end." % (vhost, vhost, erl_term(self.acting_user)),
            "delete_vhost %s" % name,
        )

    def flush(self) -> None:
        """Every vhost deleted, and ``/`` made again, empty, for our user."""
        acting = erl_term(self.acting_user)
        default = erl_term("/")
        self.rpc(
            "[ok = rabbit_vhost:delete(V, %s) || V <- rabbit_vhost:list_names()], "
            "ok = rabbit_vhost:add(%s, %s), %s, ok."
            % (acting, default, acting, self._grant(default)),
            "flush",
        )

    def vhosts(self) -> list[str]:
        """The names of the node's vhosts."""
        out = self.rpc(
            "[binary_to_list(V) || V <- lists:sort(rabbit_vhost:list_names())].", "list_vhosts"
        )
        return re.findall(r'"((?:[^"\\]|\\.)*)"', out)


class RabbitmqFixture(DaemonFixture):
    """A RabbitMQ node on loopback, with an epmd of its own.

    Everything is in the private temp dir: the node's database
    (``mnesia``), its logs, its cookie, its configuration and its code
    path. Its epmd listens on a reserved port (``ERL_EPMD_PORT``), so no
    machine-wide epmd is started or used, and it stops with the node. The
    broker logs to ``rabbitmq.log`` (the ``rabbitmq-log`` detail).

    As root, the node runs as ``nobody`` (or ``$FIXTURES_DAEMONS_USER``).

    :param username: the user the broker is seeded with (``guest`` may only
        log in from loopback, which is where the broker listens).
    :param password: its password.
    :param nodename: the Erlang node's name (without ``@host``); ``fxd``
        by default (it only has to be unique on the node's own epmd). The
        default node boots on a copy of a database made once and cached; a
        node of another name, a node given ``settings`` (which may seed a
        database) and a cluster boot on an empty one (about 0.3 s slower).
    :param plugins: plugins to enable (``rabbitmq_shovel``, ...); each
        slows the boot.
    :param cluster: three nodes joined into one cluster (a prototype): the
        fixture's process is the first; the others share its epmd and
        cookie, and have ports of their own (``amqp2``, ``dist2``, ...).

    Attributes: ``url`` (``amqp://user:password@127.0.0.1:port/vhost``,
    the vhost quoted: ``%2F`` is ``/``), ``vhost``, ``nodename``
    (``name@localhost``), ``username``, ``password``, ``cookie``, and
    :meth:`rabbitmqctl` to run the broker's own tool against the node.
    """

    daemon_name = "rabbitmq"
    executable = SERVER
    port_names = ("amqp", "dist", "epmd")
    refuses_root = True
    stop_signal = signal.SIGKILL
    # A clean shutdown keeps durable queues and persistent messages.
    restart_signal = signal.SIGTERM
    stop_timeout = 15.0
    default_timeout = 90.0
    scheme = "amqp"
    server_schemes = ("amqps",)
    server_admin_options = ("management", "ca_cert")
    namespace = Database
    admin_class = RabbitmqAdmin
    server_admin_class = RabbitmqServerAdmin
    #: Load the modules in parallel with the boot.
    preload: typing.ClassVar[bool] = True
    preload_batch: typing.ClassVar[int] = 50

    def __init__(
        self,
        *,
        username: str = "guest",
        password: str = "guest",  # noqa: S107 - RabbitMQ's own default, loopback only
        nodename: str | None = None,
        plugins: typing.Sequence[str] = (),
        cluster: bool = False,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster = cluster
        self.username = username
        self.password = password
        self.requested_nodename = nodename
        self.plugins = list(plugins)
        self._node = ""
        self._cookie = ""
        #: The program found (``self.binary`` becomes the server script).
        self._found = ""
        self._code: list[str] = []
        #: The node's epmd, and in a cluster the other members' processes.
        self.epmd: ProcessFixture | None = None
        self.others: list[ProcessFixture] = []

    #: The members of a cluster (the first is the fixture's own process).
    cluster_size: typing.ClassVar[int] = 3

    # -- hooks ---------------------------------------------------------------------

    def needed_ports(self) -> typing.Sequence[str]:
        if not self.cluster:
            return self.port_names
        members = range(1, self.cluster_size + 1)
        return [_port("amqp", m) for m in members] + [_port("dist", m) for m in members] + ["epmd"]

    def members(self) -> range:
        """The member numbers: 1, or 1 to 3 in a cluster."""
        return range(1, (self.cluster_size if self.cluster else 1) + 1)

    def member_node(self, member: int) -> str:
        if member == 1:
            return self._node
        short, _, host = self._node.partition("@")
        return "%s-%d@%s" % (short, member, host)

    def version(self) -> str:
        # Never by running rabbitmq-server (given as binary=): it boots a
        # broker whatever its arguments (see SERVER).
        program = self._found or self.binary
        if os.path.basename(program) == "rabbitmq-server":
            return os.path.basename(rabbitmq_home(program)) or program
        return program_version(program, self.executable.version_args)

    def prepare(self) -> None:
        if os.path.basename(self.binary) != "rabbitmq-server":
            self._found = self.binary
        self.binary = server_script(self.binary)
        home = rabbitmq_home(self.binary)
        short = self.requested_nodename or TEMPLATE_NODE
        self._node = short if "@" in short else short + "@localhost"
        self._cookie = secrets.token_hex(16).upper()
        owner = (self.run_as.uid, self.run_as.gid) if self.run_as else None

        def directory(path: str) -> None:
            os.mkdir(path, 0o700)
            if owner:
                os.chown(path, *owner)

        self.write_file(".erlang.cookie", self._cookie, 0o400)
        self.write_file("enabled_plugins", "[%s]." % ",".join(self.plugins))
        self.write_file("rabbitmq-env.conf", "")
        directory(self.path("lib"))
        if home:
            self._code = list(
                code_path(os.path.join(home, "plugins"), list(_CORE_APPS) + self.plugins).values()
            )
            for where in self._code:
                os.symlink(where, self.path("lib", os.path.basename(where)))
        # Settings may seed an empty database (default_vhost, default_user):
        # a node given any boots on an empty one.
        if self.requested_nodename is None and not self.cluster and not self.extra_settings:
            self.from_template(self.template_key(), self._build_database, self.path("mnesia"))
        # Its own epmd, on its reserved port, for the node's life (it
        # outlives stopped(): the node registers again). prepare() runs
        # again after a start on a damaged template: the epmd stays.
        epmd_port = self.ports["epmd"]
        if self.epmd is None:
            self.epmd = self.spawn_helper(
                "epmd",
                [find_epmd(), "-port", str(epmd_port), "-address", self.requested_host],
                Tcp(self.requested_host, epmd_port),
                env={"ERL_EPMD_PORT": None, "ERL_EPMD_ADDRESS": None},
                stop_signal=signal.SIGKILL,
            )
        # The other members of a cluster boot beside the first (which the
        # base starts next); started() waits for them and joins them.
        self.others = [
            self.spawn_helper(
                str(member), self.member_command(member), env=self.member_environment(member)
            )
            for member in self.members()
            if member > 1
        ]

    def template_key(self) -> dict[str, object]:
        """What the cached database depends on besides the version: the
        node name, the seeded user (its password as a hash: the key is
        stored beside the template) and the plugins."""
        digest = hashlib.sha256(
            ("%s\0%s" % (self.username, self.password)).encode("utf-8")
        ).hexdigest()
        return {
            "node": TEMPLATE_NODE,
            "user": digest[:32],
            "plugins": sorted(self.plugins),
        }

    def _build_database(self, directory: str) -> None:
        """Boot a node of the template's name on an empty database, stop it
        cleanly (SIGTERM), and keep its database in ``directory``."""
        builder = type(self)(
            username=self.username,
            password=self.password,
            nodename=TEMPLATE_NODE,
            plugins=self.plugins,
            mode="spawn",
            timeout=self.timeout,
            os_user=self.os_user,
            temp_root=self.temp_root,
            binary=self.requested_binary,
            # The node's own arguments too (a plugin's listener on a port
            # of the fixture's, not its default one).
            args=self.extra_args,
        )
        with builder:
            assert builder.process is not None
            builder.process.stop(signal.SIGTERM, self.stop_timeout)
            mnesia = builder.path("mnesia")
            for entry in os.listdir(mnesia):
                source = os.path.join(mnesia, entry)
                if os.path.isdir(source):
                    shutil.copytree(source, os.path.join(directory, entry), symlinks=True)
                else:
                    shutil.copy2(source, os.path.join(directory, entry))

    def started(self) -> None:
        if not self.cluster:
            return
        deadline = Deadline(self.timeout)
        first = self.member_node(1)
        for member in self.members():
            if member == 1:
                continue
            admin = self.member_admin(member)
            process = self.others[member - 2]

            def up(admin: RabbitmqAdmin = admin, process: ProcessFixture = process) -> bool:
                return admin.answers() or not process.running

            if not wait_for(up, deadline.remaining()):
                raise StartupTimeout(
                    "%s-%d" % (self.daemon_name, member),
                    "AMQP answered",
                    self.timeout,
                    process.log_tail(),
                )
            if not process.running:
                raise DaemonExited(
                    "%s-%d" % (self.daemon_name, member),
                    process.process.returncode if process.process else -1,
                    process.command,
                    process.log_tail(),
                )
            admin.rpc(
                "ok = rabbit:stop(), case rabbit_mnesia:join_cluster('%s', disc) of "
                "ok -> ok; {ok, already_member} -> ok end, ok = rabbit:start(), ok." % first,
                "join_cluster %s" % first,
            )
        # A node that just joined is known to the others a moment later.
        first_admin = self.member_admin(1)

        def all_running() -> str:
            return first_admin.rpc("length(rabbit_nodes:all_running()).", "cluster_status")

        wanted = str(self.cluster_size)
        if not wait_for(lambda: all_running() == wanted, deadline.remaining()):
            raise AdminError(
                self.daemon_name,
                "cluster_status",
                "%s nodes running, not %s" % (all_running(), wanted),
            )

    def member_admin(self, member: int) -> RabbitmqAdmin:
        """The admin of one member (1: the fixture's own node)."""
        endpoint = self.build_endpoint().replace(
            ports={
                "amqp": self.ports[_port("amqp", member)],
                "dist": self.ports[_port("dist", member)],
            }
        )
        return RabbitmqAdmin(endpoint, self.daemon_name, self.timeout)

    def server_settings(self) -> dict[str, str]:
        """``rabbit`` application settings, as Erlang terms."""
        return {
            "tcp_listeners": '[{"%s", %d}]' % (self.requested_host, self.port),
            "loopback_users": "[]"
            if self.requested_host in ("127.0.0.1", "::1")
            else '[<<"guest">>]',
            "background_gc_enabled": "false",
            "collect_statistics_interval": "60000",
        }

    def command_line(self) -> list[str]:
        return self.member_command(1)

    def member_command(self, member: int) -> list[str]:
        """The argv of one node (1: the fixture's own)."""
        dist = self.ports[_port("dist", member)]
        ip = "{%s}" % self.requested_host.replace(".", ",")
        command = [
            self.binary,
            "-noshell",
            "-noinput",
            # Distributed from the start: the prelaunch then skips the VM it
            # boots to start an epmd, and its node name checks.
            "-sname",
            self.member_node(member),
            "-start_epmd",
            "false",
            "-kernel",
            "inet_dist_listen_min",
            str(dist),
            "-kernel",
            "inet_dist_listen_max",
            str(dist),
            "-kernel",
            "inet_dist_use_interface",
            ip,
        ]
        settings = self.settings()
        if member > 1 and "tcp_listeners" not in self.extra_settings:
            amqp = self.ports[_port("amqp", member)]
            settings["tcp_listeners"] = '[{"%s", %d}]' % (self.requested_host, amqp)
        for key, value in settings.items():
            command += ["-rabbit", key, value]
        if self.preload:
            # Load (and compile) every module of the code path in parallel
            # with the boot, on the other cores: RabbitMQ would load them
            # one by one when it scans their attributes.
            dirs = [os.path.join(self.path("lib"), os.path.basename(d), "ebin") for d in self._code]
            dirs += [os.path.join(d, "ebin") for d in otp_applications(self._code)]
            command += [
                "-eval",
                _PRELOAD % (",".join('"%s"' % d for d in dirs), self.preload_batch),
            ]
        return command + ["-s", "rabbit", "boot"]

    def process_environment(self) -> dict[str, str | None]:
        return self.member_environment(1)

    def member_environment(self, member: int) -> dict[str, str | None]:
        """The environment of one node (1: the fixture's own)."""
        env: dict[str, str | None] = {name: None for name in _FOREIGN}
        home = rabbitmq_home(self.binary)
        lib = self.path("lib")
        env.update(
            HOME=self.temp_dir,
            ERL_EPMD_PORT=str(self.ports["epmd"]),
            ERL_EPMD_ADDRESS=self.requested_host,
            ERL_LIBS=lib,
            ERL_CRASH_DUMP_SECONDS="0",
            RABBITMQ_PLUGINS_DIR=lib,
            RABBITMQ_ENABLED_PLUGINS_FILE=self.path("enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=self.path("rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=self.path("rabbitmq"),  # none: the settings are arguments
            RABBITMQ_ADVANCED_CONFIG_FILE=self.path("advanced.config"),
            RABBITMQ_NODENAME=self.member_node(member),
            RABBITMQ_NODE_IP_ADDRESS=self.requested_host,
            RABBITMQ_NODE_PORT=str(self.ports[_port("amqp", member)]),
            RABBITMQ_DIST_PORT=str(self.ports[_port("dist", member)]),
            RABBITMQ_MNESIA_BASE=self.path("mnesia"),
            RABBITMQ_LOG_BASE=self.path("log"),
            RABBITMQ_LOGS="-",
            RABBITMQ_PID_FILE=self.path("rabbitmq-%d.pid" % member),
            RABBITMQ_DEFAULT_USER=self.username,
            RABBITMQ_DEFAULT_PASS=self.password,
            # The script execs the VM (no shell in between, which would
            # turn signals into rabbitmqctl calls), and leaves the boot to
            # the command line.
            RABBITMQ_ALLOW_INPUT="1",
            RABBITMQ_NODE_ONLY="1",
        )
        if home:
            env["RABBITMQ_HOME"] = home
        return env

    def probe(self) -> Probe:
        return Callable(self.admin.answers, "AMQP answered with Connection.Start")

    def build_endpoint(self) -> Endpoint:
        return (
            super()
            .build_endpoint()
            .replace(
                user=self.username,
                password=self.password,
                database=urllib.parse.quote("/", safe=""),
                extra=dict(
                    {"nodename": self._node, "cookie": self._cookie},
                    **{"nodename%d" % m: self.member_node(m) for m in self.members() if m > 1},
                ),
            )
        )

    # -- what tests use ------------------------------------------------------------

    @property
    def vhost(self) -> str:
        """The vhost this fixture owns (``/`` when it started the node)."""
        return urllib.parse.unquote(self.endpoint.database) or "/"

    @property
    def nodename(self) -> str:
        return self.server_endpoint.extra.get("nodename", "")

    @property
    def cookie(self) -> str:
        return self.server_endpoint.extra.get("cookie", "")

    def rabbitmqctl(self, *args: str) -> str:
        """Run ``rabbitmqctl`` (it boots a VM: about a second) against the
        node; return its output, or raise CommandFailed."""
        ctl = os.path.join(os.path.dirname(self.binary), "rabbitmqctl")  # the real one
        endpoint = self.server_endpoint
        env = dict(
            os.environ,
            ERL_EPMD_PORT=str(endpoint.ports["epmd"]),
            HOME=self.temp_dir,
            RABBITMQ_CONF_ENV_FILE=os.path.join(self.temp_dir, "rabbitmq-env.conf"),
        )
        command = [ctl, "--erlang-cookie", self.cookie, "-n", self.nodename, *args]
        result = subprocess.run(command, capture_output=True, env=env, check=False, cwd="/")
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        if result.returncode != 0:
            from fixtures_daemons.errors import CommandFailed

            raise CommandFailed("rabbitmqctl", command, result.returncode, output)
        return output

    # -- exports -------------------------------------------------------------------

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        exports = {
            "NODENAME": endpoint.extra.get("nodename", ""),
            "VHOST": urllib.parse.unquote(endpoint.database) or "/",
            "HOME": endpoint.directory,
        }
        if "nodename2" in endpoint.extra:  # a cluster: pifpaf's names too
            exports["NODENAME1"] = exports["NODENAME"]
            for key, value in endpoint.extra.items():
                if re.fullmatch(r"nodename\d+", key):
                    exports[key.upper()] = value
        return exports

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        # oslo.messaging's transport URL: the vhost is the path, "/" written "//".
        vhost = urllib.parse.unquote(endpoint.database) or "/"
        path = "/" if vhost == "/" else urllib.parse.quote(vhost, safe="")
        auth = "%s:%s" % (
            urllib.parse.quote(endpoint.user, safe=""),
            urllib.parse.quote(endpoint.password, safe=""),
        )
        amqp = [port for name, port in endpoint.ports.items() if name.startswith("amqp")]
        hosts = ",".join("%s@localhost:%d" % (auth, port) for port in amqp)
        return "rabbit://%s/%s" % (hosts, path)


class RabbitmqResource(DaemonResource):
    """A testresources manager sharing one :class:`RabbitmqFixture`."""

    fixture_class = RabbitmqFixture
