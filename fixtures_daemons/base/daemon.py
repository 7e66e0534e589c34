"""DaemonFixture: the base every daemon is built on.

A daemon module is declarations and a few small hooks: its name, its
program (:attr:`~DaemonFixture.executable`), its named ports, whether it
refuses root, its stop and restart signals, the kind of namespace an
attached fixture gets, its admin class; then :meth:`~DaemonFixture.command_line`,
:meth:`~DaemonFixture.probe` and, where needed,
:meth:`~DaemonFixture.prepare`, :meth:`~DaemonFixture.process_environment`,
:meth:`~DaemonFixture.server_settings`, :meth:`~DaemonFixture.build_endpoint`
and :meth:`~DaemonFixture.extra_exports`. Everything else lives here, once.

setUp asks the *origin* (:mod:`fixtures_daemons.base.origins`) for the whole
daemon's :class:`~fixtures_daemons.Endpoint`: spawned here (find the
program -> private temp dir -> reserve the ports -> prepare -> spawn and
wait -> started), attached to one exported from outside the test, or a
named daemon. It then enters its *namespace*
(:mod:`fixtures_daemons.base.namespaces`), which narrows the endpoint, and
exports the variables derived from that endpoint. Each step registers its
undo right after it succeeds, so a failure half-way undoes exactly what
was done, and cleanUp runs the same steps backwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import typing

import fixtures

from fixtures_daemons.base import namespaces as _namespaces
from fixtures_daemons.base import signatures, spares
from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable, program_version
from fixtures_daemons.base.endpoint import SERVER_MARK, Endpoint
from fixtures_daemons.base.origins import (
    Attached,
    External,
    Named,
    Origin,
    Spawned,
    state_value,
)
from fixtures_daemons.base.templates import TemplateCache
from fixtures_daemons.errors import DefinitionError, MisuseError, NotOwnedError
from fixtures_daemons.process import _reaper
from fixtures_daemons.process._fixture import Fixture
from fixtures_daemons.process.commands import run_command
from fixtures_daemons.process.fixture import ProcessFixture
from fixtures_daemons.process.probes import Probe
from fixtures_daemons.process.users import RunAs

__all__ = ["DaemonFixture", "DEFAULT_ENV_PREFIX", "MODES"]

DEFAULT_ENV_PREFIX = "FIXTURES_DAEMONS"
MODES = ("auto", "spawn", "attach")

#: What a fixture does not take over from the spare it adopts: the fixture
#: machinery's own (its cleanups are the spare's cleanUp) and what only
#: the spare was made with.
_NOT_ADOPTED = frozenset(
    {"_cleanups", "_details", "_detail_sources", "_is_set_up"}
    | {"export_env", "arguments", "is_spare", "mode"}
)

#: The hooks a daemon must write, and what each is for (the error says so).
_REQUIRED_HOOKS = {
    "command_line": "the daemon's argv, from its settings and ports",
    "probe": "how to tell that it answers (a fixtures_daemons.process.probes.Probe)",
}


class DaemonFixture(Fixture, metaclass=signatures.CheckedArguments):
    """A real daemon, from setUp until cleanUp, in a private temp dir.

    Parameters every daemon accepts (keyword only):

    :param mode: ``auto`` (the default): attach to the daemon described by
        ``$<PREFIX>_<DAEMON>_STATE`` when it is set (by ``fixtures-daemons
        run``, a testresources resource, or a fixture made with
        ``share=True``) and the daemon has namespaces, else start one;
        ``spawn``: always start a new daemon; ``attach``: never start one.
        An attached fixture gets its own isolated namespace (a database, a
        database number, a key prefix), made on setUp and removed on
        cleanUp.
    :param reuse: a name: attach to the daemon started under that name
        (``fixtures-daemons start --name``, or an earlier ``reuse=``) when it
        is alive and answers, else start it detached under that name. It
        outlives the test run; ``fixtures-daemons stop NAME`` stops it.
        The fixture gets a namespace in it, as an attached one does.
    :param server: the URL of a server the library did not start (a CI
        service container, a managed or shared test server): start
        nothing, and give the fixture a namespace of its own there, made
        on setUp and removed on cleanUp, as an attached fixture gets (see
        :doc:`/user/servers`). ``$<PREFIX>_<DAEMON>_SERVER_URL`` does the same
        for every fixture of the daemon. Only daemons with a server admin
        (``server_admin_class``) take one.
    :param share: export ``$<PREFIX>_<DAEMON>_STATE`` too, so that fixtures
        in ``auto`` mode set up meanwhile (in this process or in the
        processes it starts) attach to this daemon instead of starting
        their own. Off by default: two fixtures in one test get two daemons.
    :param host: the address it listens on; loopback only by default.
    :param port: pin the (main) port (the default reserves a free one); a
        port in use by another program fails with
        :class:`~fixtures_daemons.PortUnavailable`.
    :param timeout: seconds to wait for the daemon to answer.
    :param os_user: run the daemon as this user (needs root). By default a
        daemon that refuses root runs as ``$FIXTURES_DAEMONS_USER`` or
        ``nobody`` when we are root, and as ourselves otherwise.
    :param temp_root: where its temp dir is made (default: /dev/shm when it
        has room, else the system temp dir; ``$FIXTURES_DAEMONS_TMPDIR``).
    :param binary: the path of the daemon's program (default: searched, or
        the daemon's environment variable).
    :param env_prefix: prefix of the exported variable names.
    :param export_env: False to export nothing into ``os.environ``.
    :param durable: True to keep the daemon's durability settings (fsync and
        the like), which are turned off by default for speed.
    :param settings: daemon settings added to or overriding ours.
    :param args: extra command-line arguments for the daemon.

    Attributes once set up: ``endpoint`` (the
    :class:`~fixtures_daemons.Endpoint`, narrowed to this fixture's
    namespace), ``url``, ``host``, ``port``, ``ports``, ``env`` (the
    exported variables), ``temp_dir``, ``log_path``, ``attached``; when the
    fixture started the daemon, ``binary`` and ``process`` (the
    :class:`~fixtures_daemons.ProcessFixture`).
    """

    # -- declarations --------------------------------------------------------

    #: The daemon's name: CLI name, temp dir prefix, variable names.
    daemon_name: str = ""
    #: Other names the CLI knows it by (``mariadb`` for ``mysql``).
    aliases: typing.ClassVar[tuple[str, ...]] = ()
    #: Where its program is.
    executable: Executable
    #: The names of the TCP ports reserved for it, the main one first.
    port_names: typing.ClassVar[tuple[str, ...]] = ("main",)
    #: When True and we are root, it runs as an unprivileged user.
    refuses_root: typing.ClassVar[bool] = False
    #: How cleanUp stops it: its data is thrown away, so the fastest way.
    stop_signal: typing.ClassVar[int] = signal.SIGTERM
    #: How :meth:`stopped` stops it: a way that keeps its data.
    restart_signal: typing.ClassVar[int] = signal.SIGTERM
    stop_timeout: typing.ClassVar[float] = 10.0
    default_timeout: typing.ClassVar[float] = 60.0
    #: The URL scheme of its endpoint ("" for a daemon without a URL).
    scheme: typing.ClassVar[str] = ""
    #: Other schemes a server URL (``server=``) may be written with.
    server_schemes: typing.ClassVar[tuple[str, ...]] = ()
    #: The options of a server URL that only the server admin reads; they
    #: are left out of the URL clients get.
    server_admin_options: typing.ClassVar[tuple[str, ...]] = ()
    #: What an attached fixture owns inside the daemon; None: the daemon
    #: has no namespaces, and ``auto`` mode never attaches to it.
    namespace: typing.ClassVar[type[_namespaces.Namespace] | None] = None
    #: Its administration (see :mod:`fixtures_daemons.base.admin`).
    admin_class: typing.ClassVar[type[Admin]] = Admin
    #: The administration of a server the library did not start, through
    #: the daemon's real client library; None: the daemon cannot use one.
    server_admin_class: typing.ClassVar[type[Admin] | None] = None

    #: False: no instance is set up ahead of its setUp (see
    #: :mod:`fixtures_daemons.base.spares`); for a daemon whose setup reads
    #: what other fixtures export.
    spare_servers: typing.ClassVar[bool] = True
    #: True on an instance set up ahead, until a setUp adopts it.
    is_spare: bool = False

    #: The keyword arguments the fixture was made with.
    arguments: typing.Mapping[str, typing.Any]

    def __init_subclass__(cls, **kwargs: typing.Any) -> None:
        super().__init_subclass__(**kwargs)
        signatures.set_signature(cls)
        if cls.__dict__.get("daemon_name"):  # a daemon, not an abstract base
            cls._check_definition()

    @classmethod
    def _check_definition(cls) -> None:
        """A daemon class that lacks a hook fails when it is defined, with
        the hook's name and what it is for."""
        for hook, purpose in _REQUIRED_HOOKS.items():
            if getattr(cls, hook) is getattr(DaemonFixture, hook):
                raise DefinitionError(cls.__name__, "%s()" % hook, purpose)
        if not isinstance(getattr(cls, "executable", None), Executable):
            raise DefinitionError(
                cls.__name__,
                "executable",
                "a fixtures_daemons.Executable that says where its program is",
            )

    @classmethod
    def check_arguments(cls, *args: typing.Any, **kwargs: typing.Any) -> None:
        """Raise TypeError, naming the class and the closest parameter, for
        arguments its constructor does not take (a testresources resource
        checks its arguments when it is built, not in every test)."""
        signatures.check_arguments(cls, *args, **kwargs)

    def __init__(
        self,
        *,
        mode: str = "auto",
        reuse: str | None = None,
        server: str | None = None,
        share: bool = False,
        host: str = "127.0.0.1",
        port: int | None = None,
        timeout: float | None = None,
        os_user: str | None = None,
        temp_root: str | None = None,
        binary: str | None = None,
        env_prefix: str = DEFAULT_ENV_PREFIX,
        export_env: bool = True,
        durable: bool = False,
        settings: typing.Mapping[str, str] | None = None,
        args: typing.Sequence[str] = (),
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError("mode must be auto, spawn or attach, not %r" % (mode,))
        self.mode = mode
        self.reuse = reuse
        self.server = server
        self.share = share
        self.requested_host = host
        self.requested_port = port
        self.timeout = self.default_timeout if timeout is None else timeout
        self.os_user = os_user
        self.temp_root = temp_root
        self.requested_binary = binary
        self.env_prefix = env_prefix
        self.export_env = export_env
        self.durable = durable
        self.extra_settings = dict(settings or {})
        self.extra_args = list(args)
        self._clear_state()

    def _clear_state(self) -> None:
        """What a setUp makes, forgotten: the fixture can be set up again."""
        self.ports: dict[str, int] = {}
        self.temp_dir = ""
        self.log_path = ""
        self.binary = ""
        self._from_cache: list[tuple[dict[str, object], str, str]] = []
        self.env: dict[str, str] = {}
        self._server: Endpoint | None = None
        self._endpoint: Endpoint | None = None
        self._forget()

    def _forget(self) -> None:
        """After cleanUp: what acts on the daemon (``reset()``,
        ``stopped()``, ``paused()``, ``admin``) raises MisuseError; what
        describes it (``endpoint``, ``url``, ``port``, ``temp_dir``,
        ``env``) still says what it was, for checks after the fact."""
        self.run_as: RunAs | None = None
        self.process: ProcessFixture | None = None
        self.origin: Origin | None = None
        #: True while the daemon is being started (the hooks run then).
        self.spawning = False
        self._namespace: _namespaces.Namespace | None = None
        self._admin: Admin | None = None

    # -- hooks a daemon writes -----------------------------------------------

    def command_line(self) -> list[str]:
        """The daemon's argv (required). Called once its temp dir and ports
        exist: use :attr:`binary`, :attr:`port`, :attr:`ports`,
        :meth:`path` and :meth:`settings`."""
        raise DefinitionError(
            type(self).__name__, "command_line()", _REQUIRED_HOOKS["command_line"]
        )

    def probe(self) -> Probe:
        """How to tell that it answers (required); often ``Callable(
        self.admin.answers)``, or a log line."""
        raise DefinitionError(type(self).__name__, "probe()", _REQUIRED_HOOKS["probe"])

    def prepare(self) -> None:
        """Before the spawn: copy an initialised data dir from the template
        cache (:meth:`from_template`), write config files."""

    def started(self) -> None:
        """After it answers, before the namespace is entered."""

    def process_environment(self) -> dict[str, str | None]:
        """Variables set (or, with None, removed) in the daemon's process
        environment."""
        return {}

    def needed_ports(self) -> typing.Sequence[str]:
        """The names of the ports to reserve: :attr:`port_names`, unless a
        daemon's parameters turn one off (an optional admin port)."""
        return self.port_names

    def pinned_ports(self) -> dict[str, int | None]:
        """Ports the user pinned, by name (None: reserve a free one): the
        main port by ``port=``; a daemon with a parameter for another of its
        ports (``peer_port=``) adds it here."""
        names = self.needed_ports()
        return {names[0]: self.requested_port} if names else {}

    def server_settings(self) -> dict[str, str]:
        """The daemon's own settings (test-speed ones unless ``durable``);
        :meth:`settings` merges the user's on top."""
        return {}

    def build_endpoint(self) -> Endpoint:
        """The endpoint of the daemon this fixture spawned; the default has
        the scheme, host, ports and temp dir. Extend it with
        ``super().build_endpoint().replace(...)``."""
        return Endpoint(
            scheme=self.scheme, host=self.requested_host, ports=self.ports, directory=self.temp_dir
        )

    def owned_namespace(self) -> _namespaces.Namespace:
        """What a fixture that started the daemon owns: all of it."""
        return _namespaces.WholeDaemon(self)

    def attached_namespace(self) -> _namespaces.Namespace:
        """What a fixture that shares the daemon owns: a new
        :attr:`namespace` (a random database, a free number, ...)."""
        if self.namespace is None:
            raise DefinitionError(type(self).__name__, "namespace", "a namespace class")
        return self.namespace(self)

    def server_namespace(self) -> _namespaces.Namespace:
        """What a fixture owns on a server the library did not start, which
        other people may use: :meth:`attached_namespace` by default; a
        daemon whose attached namespace would touch more than its own (a
        whole Redis database number) gives something narrower."""
        return self.attached_namespace()

    def template_database(self) -> str | None:
        """The template a new :class:`~fixtures_daemons.base.namespaces.Database`
        is copied from (None: an empty one)."""
        return None

    def make_admin(self, endpoint: Endpoint) -> Admin:
        """The daemon's admin for ``endpoint`` (the whole daemon's)."""
        if endpoint.extra.get(SERVER_MARK):
            if self.server_admin_class is None:
                raise MisuseError(
                    self.daemon_name,
                    "server=",
                    "%s cannot use a server it did not start" % self.daemon_name,
                )
            return self.server_admin_class(endpoint, self.daemon_name, self.timeout)
        return self.own_admin(endpoint)

    def own_admin(self, endpoint: Endpoint) -> Admin:
        """The admin of a daemon the library started (here or in another
        process): ``admin_class`` by default; a hook for daemons whose
        admin needs more than the endpoint."""
        return self.admin_class(endpoint, self.daemon_name, self.timeout)

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        """Daemon-specific variables (``SOCKET_DIR``), beside those every
        endpoint gives; names without the prefix."""
        return {}

    def client_exports(self, endpoint: Endpoint) -> dict[str, str]:
        """Variables the daemon's own clients read by fixed names (X
        clients' ``DISPLAY``), without a prefix, exported in every style:
        while the fixture is set up, its clients find it with no options."""
        return {}

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        """The URL in the form pifpaf's driver exports."""
        return endpoint.url

    def pifpaf_raw_exports(self, endpoint: Endpoint, prefix: str) -> dict[str, str]:
        """Variables pifpaf's driver exports besides ``<PREFIX>_<DAEMON>_*``:
        without a prefix (PGHOST, ...), or with ``prefix`` but not the
        daemon's name (etcd's ``<PREFIX>_HTTP_URL``)."""
        return {}

    # -- helpers for the hooks ------------------------------------------------

    def settings(self) -> dict[str, str]:
        merged = self.server_settings()
        merged.update(self.extra_settings)
        return merged

    def path(self, *parts: str) -> str:
        """A path inside the daemon's temp dir."""
        return os.path.join(self.temp_dir, *parts)

    def version(self) -> str:
        """What the daemon's program says its version is."""
        return program_version(self.binary, self.executable.version_args)

    def from_template(
        self,
        key_parts: typing.Mapping[str, object],
        build: typing.Callable[[str], None],
        dst: str,
    ) -> None:
        """Fill the new dir ``dst`` from the template cache, building the
        template with ``build(dir)`` once per binary version and options.
        A daemon that then fails to start on a copy of a template that was
        there already makes the base discard the template and try once
        more (:meth:`discard_templates`)."""
        parts = dict(key_parts, binary=self.binary)
        version = self.version()
        cached = TemplateCache().instantiate(
            self.daemon_name, parts, version, build, dst, self.run_as, self.temp_root
        )
        if cached:
            self._from_cache.append((parts, version, dst))

    def discard_templates(self) -> bool:
        """After the daemon exited on copies of cached templates: discard
        those whose files are no longer the ones they were built with
        (files missing, a corrupt page); True if there were any. A daemon
        that fails for its own reason (a bad setting) costs a check, not a
        rebuild."""
        used, self._from_cache = self._from_cache, []
        cache = TemplateCache()
        damaged = [item for item in used if not cache.intact(self.daemon_name, item[0])]
        for parts, version, dst in damaged:
            cache.discard(self.daemon_name, parts, version, dst, self.run_as)
        return bool(damaged)

    def spawn_helper(
        self,
        name: str,
        command: typing.Sequence[str],
        probe: Probe | None = None,
        env: typing.Mapping[str, str | None] | None = None,
        stop_signal: int | None = None,
    ) -> ProcessFixture:
        """Start another process of this daemon (a cluster member, a
        Sentinel, an ``epmd``) in ``prepare()`` or ``started()``: as the
        daemon's user, with its environment, in its temp dir (its log is
        ``<daemon>-<name>.log`` there), stopped with the daemon at cleanUp.
        With ``probe``, it returns once the process answers; without, at
        once (a member that the main probe waits for). ``env`` replaces
        :meth:`process_environment`'s variables, ``stop_signal`` the
        daemon's."""
        return self.useFixture(
            ProcessFixture(
                list(command),
                probe=probe,
                timeout=self.timeout,
                stop_signal=self.stop_signal if stop_signal is None else stop_signal,
                stop_timeout=self.stop_timeout,
                user=self.run_as.uid if self.run_as else None,
                env=self.process_environment() if env is None else env,
                name="%s-%s" % (self.daemon_name, name),
                temp_dir=self.temp_dir,
            )
        )

    def write_file(self, name: str, text: str, mode: int = 0o600) -> str:
        """Write ``text`` to ``name`` in the private temp dir (a config
        file), owned by the daemon's user, who may rewrite it; return its
        path."""
        path = self.path(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        if self.run_as is not None:
            os.chown(path, self.run_as.uid, self.run_as.gid)
        return path

    #: The bound of one :meth:`run_helper` run (an initialisation that
    #: hangs must not hang the test), unless the fixture's timeout is longer.
    helper_timeout: typing.ClassVar[float] = 300.0

    def run_helper(self, command: typing.Sequence[str], what: str = "") -> str:
        """Run a helper program (an init tool, a client) as the daemon's
        user; return its output, or raise CommandFailed with it (also when
        it does not finish in time)."""
        extra: dict[str, typing.Any] = {}
        if self.run_as is not None:
            # Another user: what it needs lies where it may write (our
            # TMPDIR may be root's own, which mariadb-install-db writes to).
            extra = dict(self.run_as.popen_kwargs)
            extra["env"] = dict(
                os.environ,
                HOME=self.temp_dir,
                TMPDIR=self.temp_dir,
                USER=self.run_as.name,
                LOGNAME=self.run_as.name,
            )
        timeout = max(self.timeout, self.helper_timeout)
        return run_command(command, what or self.daemon_name, timeout, **extra)

    # -- what a set-up fixture is ----------------------------------------------

    def _not_set_up(self, call: str) -> typing.NoReturn:
        raise MisuseError(
            self.daemon_name,
            "%s.%s" % (type(self).__name__, call),
            "the fixture is not set up: use it with useFixture(), or call setUp() first",
        )

    @property
    def endpoint(self) -> Endpoint:
        """How a client reaches what this fixture owns."""
        if self._endpoint is None:
            self._not_set_up("endpoint")
        return self._endpoint

    @property
    def server_endpoint(self) -> Endpoint:
        """The whole daemon's endpoint (not narrowed to a namespace)."""
        if self._server is None:
            self._not_set_up("server_endpoint")
        return self._server

    @property
    def url(self) -> str:
        if self._endpoint is None:
            self._not_set_up("url")
        return self._endpoint.url

    @property
    def host(self) -> str:
        return self._endpoint.host if self._endpoint is not None else self.requested_host

    @property
    def port(self) -> int:
        """The main port (reserved ones while the daemon is being spawned)."""
        endpoint = self._endpoint or self._server
        if endpoint is not None and endpoint.port is not None:
            return endpoint.port
        if self.spawning and self.ports:
            return next(iter(self.ports.values()))
        if endpoint is None and not self.spawning:
            self._not_set_up("port")
        raise MisuseError(
            self.daemon_name,
            "%s.port" % type(self).__name__,
            "%s has no TCP port: see endpoint.sockets and endpoint.display" % self.daemon_name,
        )

    @property
    def admin(self) -> Admin:
        """The daemon's admin (see :mod:`fixtures_daemons.base.admin`)."""
        if self._admin is None:
            if self.spawning and self._server is None:  # the probe uses it
                return self.make_admin(self.build_endpoint())
            if self._server is None or self.origin is None:
                self._not_set_up("admin")
            self._admin = self.make_admin(self._server)
        return self._admin

    @property
    def attached(self) -> bool:
        """True when this fixture did not start its daemon."""
        return self.origin is not None and not isinstance(self.origin, Spawned)

    def narrow(self, **changes: typing.Any) -> None:
        """Narrow this fixture's endpoint (a namespace that changed)."""
        self._endpoint = self.endpoint.replace(**changes)

    # -- the lifecycle ---------------------------------------------------------

    def state_variable(self, prefix: str | None = None) -> str:
        """The variable that tells fixtures how to attach to this daemon."""
        prefix = self.env_prefix if prefix is None else prefix
        return "%s_%s_STATE" % (prefix, self.daemon_name.upper())

    def server_variable(self, prefix: str | None = None) -> str:
        """The variable that names a server for every fixture of the daemon."""
        prefix = self.env_prefix if prefix is None else prefix
        return "%s_%s_SERVER_URL" % (prefix, self.daemon_name.upper())

    def _choose_origin(self) -> Origin:
        if self.reuse:
            return Named(self.reuse)
        if self.server:
            return External(self.server, "server=")
        if os.environ.get(self.server_variable()):
            variable = self.server_variable()
            return External(os.environ[variable], "$" + variable)
        variable = self.state_variable()
        state = os.environ.get(variable)
        if self.mode == "attach":
            if not state:
                raise MisuseError(
                    self.daemon_name,
                    "mode='attach'",
                    "%s is not set: run the tests under `fixtures-daemons run %s -- ...`, "
                    "share a daemon with share=True, or use mode='auto'"
                    % (variable, self.daemon_name),
                )
            return Attached(variable, state)
        if self.mode == "auto" and state and self.namespace is not None:
            return Attached(variable, state)
        return Spawned()

    def _setUp(self) -> None:
        self._clear_state()
        self.addCleanup(self._forget)
        origin = self._choose_origin()
        spare = spares.claim(self) if isinstance(origin, Spawned) else None
        if spare is not None:
            self._adopt(spare)
        else:
            self._acquire(origin)
        self.env = self.exports()
        spares.note_exports(self.env)
        if self.export_env:
            for key, value in self.env.items():
                self.useFixture(fixtures.EnvironmentVariable(key, value))
        if isinstance(origin, Spawned):
            spares.order(self)

    def _acquire(self, origin: Origin) -> None:
        """Get the daemon from ``origin`` and enter this fixture's namespace."""
        self.origin = origin
        self._server = origin.acquire(self)
        if isinstance(origin, Spawned):
            self.started()
        self.temp_dir = self.temp_dir or self._server.directory
        if isinstance(origin, Spawned):
            self._namespace = self.owned_namespace()
        elif self.namespace is not None and self._server.extra.get(SERVER_MARK):
            self._namespace = self.server_namespace()
        elif self.namespace is not None:
            self._namespace = self.attached_namespace()
        else:
            self._namespace = _namespaces.WholeDaemon(self, shared=isinstance(origin, Attached))
        self._endpoint = self._namespace.enter(self._server)

    def _adopt(self, spare: DaemonFixture) -> None:
        """Become ``spare``, a fixture of the same arguments set up ahead
        (:mod:`fixtures_daemons.base.spares`): its state is this fixture's
        from now on, and its cleanUp is one of this fixture's."""
        for name, value in vars(spare).items():
            if name not in _NOT_ADOPTED:
                setattr(self, name, value)
        self.addCleanup(spares.retire, spare)
        if self._detail_sources is not None:
            self._detail_sources.append(spare)

    def with_pid(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` with the pid (and start time) of the process this
        fixture runs."""
        pid = self.process.pid if self.process is not None else None
        return endpoint.replace(pid=pid or 0, pid_start=_reaper.start_time(pid) if pid else "")

    # -- what it exports -------------------------------------------------------

    def exports(self, prefix: str | None = None, style: str = "native") -> dict[str, str]:
        """The variables this fixture exports, under ``prefix``: those of
        its endpoint, and the state variable when it shares its daemon.

        ``style="pifpaf"`` adds pifpaf's variables and uses its URL format
        where the names are the same, so that a pifpaf user switching to
        fixtures-daemons gets the environment it had.
        """
        prefix = self.env_prefix if prefix is None else prefix
        env = self.exports_for(self.endpoint, prefix, style)
        if self.share:
            env[self.state_variable(prefix)] = state_value(self.daemon_name, self.server_endpoint)
        return env

    def exports_for(
        self, endpoint: Endpoint, prefix: str = DEFAULT_ENV_PREFIX, style: str = "native"
    ) -> dict[str, str]:
        """The variables that describe ``endpoint`` (works on a fixture that
        is not set up: the CLI describes a holder's daemon this way)."""
        own = "%s_%s_" % (prefix, self.daemon_name.upper())
        always = {"host"}
        if self.namespace is not None:
            always.update(self.namespace.narrows)
        fields = {
            "url": endpoint.url,
            "host": endpoint.host,
            "user": endpoint.user,
            "password": endpoint.password,
            "database": endpoint.database,
            "key_prefix": endpoint.key_prefix,
            "display": endpoint.display,
        }
        env = {own + k.upper(): v for k, v in fields.items() if v or k in always}
        for index, (port_name, number) in enumerate(endpoint.ports.items()):
            env[own + ("PORT" if index == 0 else port_name.upper() + "_PORT")] = str(number)
        for index, (socket_name, path) in enumerate(endpoint.sockets.items()):
            env[own + ("SOCKET" if index == 0 else socket_name.upper() + "_SOCKET")] = path
        env.update({own + key: value for key, value in self.extra_exports(endpoint).items()})
        env.update(self.client_exports(endpoint))
        if endpoint.url:
            env[prefix + "_URL"] = endpoint.url
        if style == "pifpaf":
            url = self.pifpaf_url(endpoint)
            env.update({prefix + "_DATA": endpoint.directory, prefix + "_URL": url})
            env[own + "URL"] = url
            env.update(self.pifpaf_raw_exports(endpoint, prefix))
        return env

    # -- reset and outage testing ----------------------------------------------

    def reset(self) -> None:
        """Empty what this fixture owns, cheaply: the whole daemon when it
        started it, its namespace when it shares one."""
        if self._namespace is None:
            self._not_set_up("reset()")
        self._namespace.reset()

    def _own_process(self, call: str) -> ProcessFixture:
        if self.process is None:
            if self.origin is None:
                self._not_set_up(call)
            raise NotOwnedError(
                self.daemon_name,
                "%s.%s" % (type(self).__name__, call),
                "this fixture did not start its daemon (it is %s), so it cannot stop it; "
                "use mode='spawn' for a daemon of its own" % self.origin.description,
            )
        return self.process

    @contextlib.contextmanager
    def stopped(self) -> typing.Iterator[None]:
        """Stop the daemon for the with-block (keeping its data), then start
        it again on the same port and wait until it answers."""
        process = self._own_process("stopped()")
        try:
            with process.stopped(self.restart_signal):
                yield
        finally:
            # A new process: the endpoints, and what was exported from them
            # (the state variable names the pid), name its pid.
            if self._server is not None and self._endpoint is not None:
                self._server = self.with_pid(self._server)
                self._endpoint = self.with_pid(self._endpoint)
                self.env = self.exports()
                if self.export_env:
                    # The same names as at setUp: their restoration on
                    # cleanUp is registered already.
                    os.environ.update(self.env)

    def paused(self) -> typing.ContextManager[None]:
        """Freeze the daemon (SIGSTOP) for the with-block: a hung daemon."""
        return self._own_process("paused()").paused()


signatures.set_signature(DaemonFixture)
