"""DaemonFixture: the base every daemon is built on.

A daemon module is mostly declarations: which program (:attr:`executable`),
whether it refuses root, which signals stop it, its command line
(:meth:`_command`), its readiness probe (:meth:`_probe`), its URL and the
variables it exports. Everything else lives here, once:

setUp: find the program -> private temp dir (memory-backed when there is
room, 0700, owned by the daemon's user) -> reserve ports -> prepare
(:meth:`_prepare`: copy the initialised template, write config) -> spawn and
wait (:class:`~fixtures_daemons.ProcessFixture`, its log attached as a
detail before the wait) -> :meth:`_started` -> export env. Each step
registers its undo right after it succeeds, so a failure half-way undoes
exactly what was done, and cleanUp runs the same steps backwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import typing

import fixtures

from fixtures_daemons._fixture import Fixture
from fixtures_daemons.binaries import Executable, find_executable, program_version
from fixtures_daemons.errors import CommandFailed, DaemonError
from fixtures_daemons.ports import PortFixture
from fixtures_daemons.probes import Probe
from fixtures_daemons.process import ProcessFixture
from fixtures_daemons.tempdirs import PrivateDirFixture
from fixtures_daemons.templates import TemplateCache
from fixtures_daemons.users import RunAs, default_daemon_user, resolve_user

__all__ = ["DaemonFixture", "DEFAULT_ENV_PREFIX"]

DEFAULT_ENV_PREFIX = "FIXTURES_DAEMONS"


class DaemonFixture(Fixture):
    """A real daemon, from setUp until cleanUp, in a private temp dir.

    Parameters every daemon accepts (keyword only):

    :param mode: ``auto`` (the default): attach to the daemon described by
        ``$<PREFIX>_<DAEMON>_STATE`` when it is set (by ``fixtures-daemons
        run`` or an enclosing fixture), else spawn one; ``spawn``: always
        start a new daemon; ``attach``: never start one. An attached fixture
        gets its own isolated namespace (a database, a database number, a key
        prefix), made on setUp and removed on cleanUp.
    :param reuse: a name: attach to the daemon started under that name
        (``fixtures-daemons start --name``, or an earlier ``reuse=``) when it
        is alive and answers, else start it detached under that name. It
        outlives the test run; ``fixtures-daemons stop NAME`` stops it.
    :param host: the address it listens on; loopback only by default.
    :param port: pin the port (the default reserves a free one); a port in
        use by another program fails with
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

    Attributes once set up: ``url``, ``host``, ``port``, ``env`` (the
    exported variables), ``temp_dir``, ``binary``, ``process`` (the
    :class:`~fixtures_daemons.ProcessFixture`), ``log_path``.
    """

    _init_kwargs: dict[str, typing.Any]

    #: The daemon's name: CLI name, temp dir prefix, variable names.
    daemon_name: str = ""
    #: Where its program is.
    executable: Executable
    #: When True and we are root, it runs as an unprivileged user.
    refuses_root: typing.ClassVar[bool] = False
    #: How cleanUp stops it: its data is thrown away, so the fastest way.
    stop_signal: typing.ClassVar[int] = signal.SIGTERM
    #: How :meth:`stopped` stops it: a way that keeps its data.
    restart_signal: typing.ClassVar[int] = signal.SIGTERM
    stop_timeout: typing.ClassVar[float] = 10.0
    default_timeout: typing.ClassVar[float] = 60.0

    def __new__(cls, *args: typing.Any, **kwargs: typing.Any) -> DaemonFixture:
        # Remember the arguments, so the same daemon can be started by a
        # holder process (``reuse=``).
        instance = super().__new__(cls)
        instance._init_kwargs = dict(kwargs)
        return instance

    def __init__(
        self,
        *,
        mode: str = "auto",
        reuse: str | None = None,
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
        if mode not in ("auto", "spawn", "attach"):
            raise ValueError("mode must be auto, spawn or attach, not %r" % (mode,))
        self.mode = mode
        self.attached = False
        self.reuse = reuse
        self.host = host
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
        self.env: dict[str, str] = {}
        self.run_as: RunAs | None = None
        self.process: ProcessFixture | None = None

    # -- declarations and hooks for subclasses ---------------------------

    def _command(self) -> list[str]:
        """The daemon's argv."""
        raise NotImplementedError

    def _probe(self) -> Probe:
        """How to tell that it answers."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Before the spawn: initialise data, write config files."""

    def _started(self) -> None:
        """After it answers: create the database, and the like."""

    def _settings(self) -> dict[str, str]:
        """The daemon's settings (test-speed ones unless ``durable``);
        :meth:`settings` merges the user's on top."""
        return {}

    def _extra_exports(self) -> dict[str, str]:
        """Daemon-specific variables, beside URL, HOST and PORT."""
        return {}

    def _enter_namespace(self) -> None:
        """When attached: make this fixture's isolated namespace (and
        register its removal). Without one, attached fixtures share the
        daemon's whole data."""

    @property
    def url(self) -> str:
        raise NotImplementedError

    def reset(self) -> None:
        """Make the daemon look fresh without restarting it."""
        raise NotImplementedError("%s cannot reset" % type(self).__name__)

    # -- helpers for subclasses ------------------------------------------

    def settings(self) -> dict[str, str]:
        merged = self._settings()
        merged.update(self.extra_settings)
        return merged

    def path(self, *parts: str) -> str:
        """A path inside the daemon's temp dir."""
        return os.path.join(self.temp_dir, *parts)

    def version(self) -> str:
        """What the daemon's program says its version is."""
        return program_version(self.binary)

    def from_template(
        self,
        key_parts: typing.Mapping[str, object],
        build: typing.Callable[[str], None],
        dst: str,
    ) -> None:
        """Fill the new dir ``dst`` from the template cache, building the
        template with ``build(dir)`` once per binary version and options."""
        TemplateCache().instantiate(
            self.daemon_name,
            dict(key_parts, binary=self.binary),
            self.version(),
            build,
            dst,
            self.run_as,
            self.temp_root,
        )

    def run_helper(self, command: typing.Sequence[str], what: str = "") -> str:
        """Run a helper program (an init tool, a client) as the daemon's
        user; return its output, or raise CommandFailed with it."""
        extra: dict[str, typing.Any] = self.run_as.popen_kwargs if self.run_as else {}
        result = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd="/",
            check=False,
            **extra,
        )
        output: str = result.stdout.decode("utf-8", "replace")
        if result.returncode != 0:
            raise CommandFailed(what or self.daemon_name, command, result.returncode, output)
        return output

    # -- the lifecycle ---------------------------------------------------

    def _setUp(self) -> None:
        state = os.environ.get(self.state_variable())
        if self.reuse:
            self._attach_named(self.reuse)
        elif self.mode == "attach" or (self.mode == "auto" and state):
            if not state:
                raise DaemonError(
                    self.daemon_name,
                    "mode='attach' but %s is not set: run the tests under "
                    "`fixtures-daemons run %s -- ...`, or use mode='auto'"
                    % (self.state_variable(), type(self).daemon_name),
                )
            self.restore_state(json.loads(state))
            self.attached = True
            self._enter_namespace()
        else:
            self._spawn()
        self.env = self.exports()
        if self.export_env:
            for key, value in self.env.items():
                self.useFixture(fixtures.EnvironmentVariable(key, value))

    def _spawn(self) -> None:
        name = self.daemon_name
        self.binary = find_executable(self.executable, self.requested_binary, name)
        wanted = self.os_user or (default_daemon_user() if self.refuses_root else None)
        self.run_as = resolve_user(wanted, name)
        self.temp_dir = self.useFixture(PrivateDirFixture(name, self.temp_root, self.run_as)).path
        self.port = self.useFixture(PortFixture(self.host, self.requested_port, name)).port
        self._prepare()
        self.process = process = self.useFixture(
            ProcessFixture(
                self._command() + self.extra_args,
                probe=self._probe(),
                timeout=self.timeout,
                stop_signal=self.stop_signal,
                stop_timeout=self.stop_timeout,
                user=self.run_as.uid if self.run_as else None,
                name=name,
                temp_dir=self.temp_dir,
            )
        )
        self.log_path = process.log_path
        self._started()

    _STATE_TYPES = (str, int, float, bool, type(None))
    #: What an attaching fixture keeps of its own, whatever the daemon's is.
    _NOT_STATE = frozenset(
        ("env_prefix", "export_env", "reuse", "mode", "attached", "template", "timeout")
    )

    def attach_state(self) -> dict[str, typing.Any]:
        """The simple attributes (port, paths, names) that another process
        needs to talk to this daemon as this fixture does."""
        return {
            key: value
            for key, value in vars(self).items()
            if not key.startswith("_")
            and key not in self._NOT_STATE
            and isinstance(value, self._STATE_TYPES)
        }

    def _attach_named(self, name: str) -> None:
        from fixtures_daemons import persistent

        kwargs = {k: v for k, v in self._init_kwargs.items() if k != "reuse"}
        record = persistent.ensure(name, type(self).daemon_name, kwargs)
        self.restore_state(record.state)

    def restore_state(self, state: typing.Mapping[str, typing.Any]) -> None:
        """Point this (not set up) fixture at a daemon described by another
        fixture's :meth:`attach_state`, without owning it."""
        for key, value in state.items():
            if key not in self._NOT_STATE:
                setattr(self, key, value)
        self.process = None

    def state_variable(self, prefix: str | None = None) -> str:
        """The variable that tells fixtures how to attach to this daemon."""
        prefix = self.env_prefix if prefix is None else prefix
        return "%s_%s_STATE" % (prefix, type(self).daemon_name.upper())

    def exports(self, prefix: str | None = None, style: str = "native") -> dict[str, str]:
        """The variables this daemon exports, under ``prefix``.

        ``style="pifpaf"`` adds pifpaf's variables and uses its URL format
        where the names are the same, so that a pifpaf user switching to
        fixtures-daemons gets the environment it had.
        """
        prefix = self.env_prefix if prefix is None else prefix
        own = "%s_%s_" % (prefix, self.daemon_name.upper())
        env = {own + "URL": self.url, own + "HOST": self.host, own + "PORT": str(self.port)}
        env.update({own + key: value for key, value in self._extra_exports().items()})
        env[prefix + "_URL"] = self.url
        env[self.state_variable(prefix)] = json.dumps(self.attach_state(), sort_keys=True)
        if style == "pifpaf":
            url = self._pifpaf_url()
            env.update({prefix + "_DATA": self.temp_dir, prefix + "_URL": url, own + "URL": url})
            env.update(self._pifpaf_raw_exports())
        return env

    def _pifpaf_url(self) -> str:
        """The URL in the form pifpaf's driver exports."""
        return self.url

    def _pifpaf_raw_exports(self) -> dict[str, str]:
        """Variables pifpaf's driver exports without prefix (PGHOST, ...)."""
        return {}

    # -- outage testing --------------------------------------------------

    def _own_process(self) -> ProcessFixture:
        if self.process is None:
            raise RuntimeError(
                "%s is attached to a daemon it did not start; it cannot stop it" % self.daemon_name
            )
        return self.process

    @contextlib.contextmanager
    def stopped(self) -> typing.Iterator[None]:
        """Stop the daemon for the with-block (keeping its data), then start
        it again on the same port and wait until it answers."""
        with self._own_process().stopped(self.restart_signal):
            yield

    def paused(self) -> typing.ContextManager[None]:
        """Freeze the daemon (SIGSTOP) for the with-block: a hung daemon."""
        return self._own_process().paused()
