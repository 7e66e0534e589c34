"""The ``fixtures-daemons`` command: a daemon around a whole run.

``fixtures-daemons run postgresql -- stestr run`` starts PostgreSQL, runs
the command with the daemon's variables in its environment, stops the
daemon and exits with the command's status. Without a command it prints
``export`` lines and a stop function for ``eval``, and leaves the daemon to
a detached holder process. ``start``/``status``/``env``/``stop`` manage
named daemons that outlive a run. See doc/source/user/cli.rst.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import signal
import subprocess
import sys
import typing

from fixtures_daemons.base import persistent
from fixtures_daemons.base.binaries import find_executable, program_version
from fixtures_daemons.base.daemon import DEFAULT_ENV_PREFIX, DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.origins import server_endpoint, state_value
from fixtures_daemons.base.templates import TemplateCache, clear_cache
from fixtures_daemons.errors import DaemonDied, DaemonError, MisuseError
from fixtures_daemons.integrations import options, registry
from fixtures_daemons.process.tempdirs import KEEP_ENV

if typing.TYPE_CHECKING:
    import psutil  # imported when needed: it would slow every run

__all__ = ["main"]

PROG = "fixtures-daemons"
#: Exit statuses of the tool itself (a command's own status is passed through).
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DAEMON = 3
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(
            "%s%s (see %s --help)" % (message, _did_you_mean(self, message), self.prog)
        )


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option of ``parser`` and of its subcommands."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _option_strings(sub)
    return found


def _subparser(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command's own parser (``fixtures-daemons run postgresql``),
    so that an error points to its ``--help`` and suggests its options."""
    while True:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            return parser
        name = getattr(ns, actions[0].dest, None)
        if name not in actions[0].choices:
            return parser
        parser = actions[0].choices[name]


def _did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    """``; did you mean 'postgresql'?`` for a misspelt daemon, command or
    option, when one is close."""
    cutoff = 0.6  # a command or a daemon: "rnu" is "run"
    match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if match:
        wanted, choices = match.group(1), re.findall(r"'?([\w.-]+)'?", match.group(2))
    else:
        cutoff = 0.75  # an option: "--bogus" is not "--os-user"
        match = re.search(r"unrecognized arguments: (\S+)", message)
        if not match:
            return ""
        wanted, choices = match.group(1).split("=")[0], sorted(_option_strings(parser))
    close = difflib.get_close_matches(wanted, choices, n=1, cutoff=cutoff)
    return "; did you mean %r?" % close[0] if close else ""


def _add_env_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    default = None if defaults else argparse.SUPPRESS
    parser.add_argument(
        "-e",
        "--env-prefix",
        default=default,
        metavar="PREFIX",
        help="prefix of the exported variables (default: FIXTURES_DAEMONS, or PIFPAF with -g); "
        "giving it (or -g) selects pifpaf's URL formats",
    )
    parser.add_argument(
        "-g",
        "--global-urls-variable",
        default=default,
        metavar="VARIABLE",
        help="the variable that accumulates the URLs of nested daemons "
        "(default: FIXTURES_DAEMONS_URLS, or PIFPAF_URLS with -e)",
    )


def _daemon_subparsers(
    parser: argparse.ArgumentParser, help_text: str, only: typing.Collection[str] | None
) -> None:
    # prog: "fixtures-daemons run postgresql", not run's whole usage line.
    subs = parser.add_subparsers(dest="daemon", metavar="DAEMON", required=True, prog=parser.prog)
    # Only the named ones when there are: listing every daemon looks up
    # third parties' entry points, which slows every run (design.rst,
    # 'The registry').
    names = {registry.canonical_name(name) for name in only} if only else registry.daemon_names()
    for name in sorted(names):
        try:
            cls = registry.daemon_class(name)
        except registry.BrokenDaemon:
            if only:  # asked for by name: say why it cannot be
                raise
            continue  # one broken third-party package must not break the others

        # The docstring's first paragraph (its first line stops mid-sentence).
        summary = options.plain((cls.__doc__ or "").strip().split("\n\n")[0])
        sub = subs.add_parser(
            cls.daemon_name,
            aliases=list(cls.aliases),
            help=summary,
            description=help_text + ": " + summary,
        )
        options.add_arguments(sub, cls)


def build_parser(only: typing.Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, run and start know just those daemons:
    reading every daemon's options (signatures, docstrings) slows a run
    (see doc/source/design.rst, 'The CLI's options')."""
    parser = _Parser(prog=PROG, description="Real, throw-away daemons for test runs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the daemon's temp dir (its log, its data) after it stops, and print "
        "where it is ($FIXTURES_DAEMONS_KEEP=1 does the same for fixtures in tests)",
    )
    parser.add_argument(
        "--log-file",
        metavar="FILE",
        help="also append the tool's messages to FILE and, when run stops the daemon, "
        "its log (kept there after its temp dir is removed), as pifpaf's --log-file",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    _add_env_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run a daemon around a command (or, without one, print exports for eval)",
        usage="%s run [-e PREFIX] [-g VARIABLE] DAEMON [daemon options] [-- COMMAND ...]" % PROG,
    )
    _add_env_options(run, defaults=False)
    run.add_argument(
        "--style",
        choices=("native", "pifpaf"),
        default=None,
        help="URL formats of PREFIX_URL and PREFIX_<DAEMON>_URL (default: pifpaf when -e or "
        "-g is given, else native)",
    )
    _daemon_subparsers(run, "run", only)

    listing = commands.add_parser("list", help="the daemons, and whether they are installed")
    listing.set_defaults(daemon=None)

    start = commands.add_parser("start", help="start a named daemon that outlives this command")
    start.add_argument("--name", required=True, help="the name to find it by")
    _daemon_subparsers(start, "start", only)

    commands.add_parser("status", help="the named daemons: alive or dead, pid, url, log")

    env = commands.add_parser("env", help="print a named daemon's exports")
    _add_env_options(env, defaults=False)
    env.add_argument("name")

    stop = commands.add_parser("stop", help="stop named daemons")
    stop.add_argument("name", nargs="?")
    stop.add_argument("--all", action="store_true", help="stop every named daemon")
    stop.add_argument("--pid", type=int, help=argparse.SUPPRESS)
    stop.add_argument("--start-time", help=argparse.SUPPRESS)

    leftovers = commands.add_parser(
        "leftovers",
        help="what fixtures left on a server they did not start (--server): list, or remove",
    )
    leftovers.add_argument("daemon", metavar="DAEMON")
    leftovers.add_argument("url", metavar="URL", help="the server, as given to --server")
    leftovers.add_argument("--remove", action="store_true", help="drop them")
    leftovers.add_argument(
        "--templates", action="store_true", help="the template databases kept for later runs too"
    )

    cache = commands.add_parser("cache", help="the template cache: where it is, what it holds")
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="ACTION")
    cache_commands.add_parser("show", help="where the cache is, its templates and sizes (default)")
    clear = cache_commands.add_parser("clear", help="remove cached templates")
    clear.add_argument("daemon", nargs="?", help="only this daemon's")
    return parser


# -- helpers -----------------------------------------------------------------


class _Env:
    """How the exported variables are named and formatted for this call."""

    def __init__(self, ns: argparse.Namespace, daemon: str) -> None:
        prefix = getattr(ns, "env_prefix", None)
        urls_var = getattr(ns, "global_urls_variable", None)
        self.style = getattr(ns, "style", None) or (
            "pifpaf" if prefix is not None or urls_var is not None else "native"
        )
        # As pifpaf: either option alone leaves the other at pifpaf's
        # default (``-e X`` accumulates in PIFPAF_URLS, ``-g V`` exports
        # PIFPAF_*), so a pifpaf command line exports what it did there.
        pifpaf_line = prefix is not None or urls_var is not None
        self.prefix = prefix or ("PIFPAF" if pifpaf_line else DEFAULT_ENV_PREFIX)
        self.urls_var = urls_var or ("PIFPAF_URLS" if pifpaf_line else DEFAULT_ENV_PREFIX + "_URLS")
        # pifpaf names the daemon as it was typed (an alias: s3rver).
        typed = getattr(ns, "typed_daemon", None)
        self.daemon = typed if typed and self.style == "pifpaf" else daemon

    def variables(self, fixture: DaemonFixture, endpoint: Endpoint, pid: int) -> dict[str, str]:
        """Everything the command or the shell gets: the variables of the
        daemon's ``endpoint`` in both namings (ours and pifpaf's), raw ones
        like PGHOST, the state variable that fixtures attach through, the
        pid, and the accumulated URLs."""
        env = fixture.exports_for(endpoint, self.prefix, "pifpaf")
        env.update(fixture.exports_for(endpoint, self.prefix, self.style))
        # Fixtures in the command attach to this daemon through this variable,
        # whatever prefix the command's own configuration reads.
        state = state_value(fixture.daemon_name, endpoint)
        for prefix in {self.prefix, DEFAULT_ENV_PREFIX}:
            env[fixture.state_variable(prefix)] = state
        url = env.get(self.prefix + "_URL") or endpoint.display
        env[self.prefix + "_PID"] = str(pid)
        env[self.prefix + "_DAEMON"] = self.daemon
        current = os.environ.get(self.urls_var)
        env[self.urls_var] = current + ";" + url if current else url
        return env


def _fixture(ns: argparse.Namespace) -> tuple[type[DaemonFixture], dict[str, typing.Any]]:
    cls = registry.daemon_class(ns.daemon)
    try:
        kwargs: dict[str, typing.Any] = dict(options.kwargs_from(ns, cls))
        cls(**kwargs)  # what the constructor refuses (a missing file) is a usage error
    except (ValueError, TypeError, MisuseError) as exc:
        raise UsageError(str(exc)) from None
    return cls, kwargs


def _print_exports(env: dict[str, str]) -> None:
    for key, value in env.items():
        print("export %s=%s;" % (key, shlex.quote(value)))


# -- commands ----------------------------------------------------------------


def cmd_run(ns: argparse.Namespace, command: list[str]) -> int:
    cls, kwargs = _fixture(ns)
    naming = _Env(ns, ns.daemon)
    if not command:
        return _eval_mode(ns, naming, cls, kwargs)
    caught: list[int] = []
    child: subprocess.Popen[bytes] | None = None
    left: list[psutil.Process] = []  # what the command had started when signalled

    def on_signal(signum: int, frame: object) -> None:
        caught.append(signum)
        if child is not None:
            _forward(child, signum, left)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    # The run owns a daemon of its own, even inside another run of the same
    # daemon (whose STATE variable would otherwise make it attach).
    fixture = cls(**dict(kwargs, export_env=False, mode="spawn"))
    fixture.setUp()
    died: DaemonDied | None = None
    status = EXIT_ERROR
    try:
        if caught:
            return 128 + caught[0]
        env = dict(os.environ)
        if getattr(ns, "keep", False) and not getattr(ns, "keep_inherited", True):
            env.pop(KEEP_ENV, None)
        env.update(naming.variables(fixture, fixture.server_endpoint, os.getpid()))
        try:
            child = subprocess.Popen(command, env=env)
        except FileNotFoundError:
            _complain("command not found: %s" % command[0])
            return EXIT_NOT_FOUND
        except PermissionError:
            _complain("command not executable: %s" % command[0])
            return EXIT_NOT_EXECUTABLE
        if caught:  # it came while the command was being started
            _forward(child, caught[0], left)
        returncode = child.wait()
        if caught:
            _stop_leftovers(left)
            status = 128 + caught[0]
        else:
            status = returncode if returncode >= 0 else 128 - returncode
    finally:
        if child is not None and child.poll() is None:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        _keep_logs(fixture)
        try:
            fixture.cleanUp()
        except DaemonDied as exc:
            died = exc  # the daemon went while the command ran: said below
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if died is not None:
        # Said even when the command failed (the death is its likely
        # cause); a command that succeeded without its daemon still fails.
        _complain(str(died))
        return status or EXIT_DAEMON
    return status


def _forward(child: subprocess.Popen[bytes], signum: int, left: list[psutil.Process]) -> None:
    """Send ``signum`` to the command and to every process it started, as a
    terminal's Ctrl-C reaches a whole foreground job: a shell waits for its
    foreground child before it acts on SIGINT, and a shell killed by SIGTERM
    leaves its children (say, the test runner it ran) running against a
    daemon that is about to go. What it started is remembered in ``left``."""
    import psutil

    if child.poll() is not None:
        return
    try:
        left[:] = psutil.Process(child.pid).children(recursive=True)
    except psutil.Error:
        pass
    try:
        child.send_signal(signum)
    except OSError:
        pass
    for process in left:
        try:
            process.send_signal(signum)  # psutil: not if the pid was reused
        except psutil.Error:
            pass


def _stop_leftovers(processes: list[psutil.Process], timeout: float = 5.0) -> None:
    """Once the signalled command is gone: wait a little for what it started
    to go too, then SIGKILL what ignores the signal (a shell's background
    jobs ignore SIGINT)."""
    import psutil

    _, alive = psutil.wait_procs([p for p in processes if p.is_running()], timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass


def _eval_mode(
    ns: argparse.Namespace,
    naming: _Env,
    cls: type[DaemonFixture],
    kwargs: dict[str, typing.Any],
) -> int:
    record = persistent.spawn_holder(cls, kwargs)
    env = naming.variables(cls(**kwargs), record.endpoint, record.holder_pid)
    if naming.prefix != "PIFPAF":
        env["PIFPAF_PID"] = str(record.holder_pid)  # pifpaf sets it whatever the prefix
    _print_exports(env)
    stop = naming.prefix.lower() + "_stop"
    stop_command = " ".join(
        shlex.quote(arg)
        for arg in (
            sys.executable,
            "-m",
            "fixtures_daemons",
            "stop",
            "--pid",
            str(record.holder_pid),
            "--start-time",
            record.holder_start,
        )
    )
    print(
        "%(stop)s () { %(command)s || return 1; unset %(vars)s; unset -f %(stop)s; "
        "unalias pifpaf_stop 2>/dev/null || true; }; alias pifpaf_stop=%(stop)s;"
        % {"stop": stop, "command": stop_command, "vars": " ".join(env)}
    )
    return 0


def cmd_list(ns: argparse.Namespace) -> int:
    rows = []
    for name in registry.daemon_names():
        try:
            cls = registry.daemon_class(name)
        except registry.BrokenDaemon as exc:
            # One broken third-party package must not hide the others.
            rows.append((name, "broken", exc.entry_point, exc.error))
            continue
        spec = cls.executable
        also = " (also: %s)" % ", ".join(cls.aliases) if cls.aliases else ""
        try:
            path = find_executable(spec, None, name)
            lines = program_version(path, spec.version_args).splitlines() if path else []
            version = lines[0] if lines else ""
            rows.append((name, "yes", path, version + also))
        except DaemonError:
            hint = "; ".join("%s: %s" % item for item in spec.packages.items())
            rows.append((name, "no", "-", "install: " + hint + also))
    widths = [
        max(len(row[i]) for row in rows + [("DAEMON", "FOUND", "PATH", "")]) for i in range(3)
    ]
    print(
        "%-*s  %-*s  %-*s  %s"
        % (widths[0], "DAEMON", widths[1], "FOUND", widths[2], "PATH", "VERSION / HOW TO INSTALL")
    )
    for row in rows:
        print(
            "%-*s  %-*s  %-*s  %s"
            % (widths[0], row[0], widths[1], row[1], widths[2], row[2], row[3])
        )
    return 0


def cmd_start(ns: argparse.Namespace) -> int:
    existing = persistent.load(ns.name)
    if existing is not None and persistent.alive(existing):
        _complain(
            "a daemon named %r is already running (%s, pid %d); stop it first"
            % (ns.name, existing.url, existing.endpoint.pid)
        )
        return EXIT_ERROR
    if existing is not None:
        persistent.stop_holder(existing.holder_pid, existing.holder_start)
        existing.remove()
    cls, kwargs = _fixture(ns)
    record = persistent.spawn_holder(cls, kwargs, ns.name)
    print("%s: %s started, pid %d, %s" % (ns.name, ns.daemon, record.endpoint.pid, record.url))
    return 0


def cmd_status(ns: argparse.Namespace) -> int:
    records = persistent.records()
    if not records:
        print("no named daemons")
        return 0
    for record in records:
        state = "alive" if persistent.alive(record) else "dead"
        print(
            "%s\t%s\t%s\tpid %d\t%s\t%s"
            % (record.name, record.daemon, state, record.endpoint.pid, record.url, record.log_path)
        )
    return 0


def cmd_env(ns: argparse.Namespace) -> int:
    record = persistent.load(ns.name)
    if record is None:
        _complain("no daemon named %r (see %s status)" % (ns.name, PROG))
        return EXIT_ERROR
    if not persistent.alive(record):
        _complain("the daemon named %r is not running any more" % ns.name)
        return EXIT_ERROR
    naming = _Env(ns, record.daemon)
    fixture = persistent.load_class(record.cls)(**record.arguments)
    _print_exports(naming.variables(fixture, record.endpoint, record.holder_pid))
    return 0


def cmd_stop(ns: argparse.Namespace) -> int:
    if ns.pid is not None:
        persistent.stop_holder(ns.pid, ns.start_time or "")
        return 0
    if ns.all:
        targets = persistent.records()
    elif ns.name:
        record = persistent.load(ns.name)
        if record is None:
            _complain("no daemon named %r (see %s status)" % (ns.name, PROG))
            return EXIT_ERROR
        targets = [record]
    else:
        raise UsageError("name a daemon, or use --all")
    for record in targets:
        stopped = persistent.stop_holder(record.holder_pid, record.holder_start)
        record.remove()
        print("%s: %s" % (record.name, "stopped" if stopped else "was not running"))
    return 0


def _size(count: int) -> str:
    if count < 1024:
        return "%d bytes" % count
    value = count / 1024.0
    for unit in ("KB", "MB"):
        if value < 1024:
            return "%.1f %s" % (value, unit)
        value /= 1024
    return "%.1f GB" % value


def cmd_leftovers(ns: argparse.Namespace) -> int:
    cls = registry.daemon_class(ns.daemon)
    fixture = cls(server=ns.url)
    source = "the command line"
    endpoint = server_endpoint(fixture, ns.url, source)
    admin = fixture.make_admin(endpoint)
    admin.check_server(source)
    for name in admin.leftovers(remove=ns.remove, templates=ns.templates):
        print("removed %s" % name if ns.remove else name)
    return 0


def cmd_cache(ns: argparse.Namespace) -> int:
    cache = TemplateCache()
    if ns.cache_command == "clear":
        for path in clear_cache(ns.daemon):
            print("removed %s" % path)
        return 0
    entries = cache.entries()
    print("cache: %s (%s)" % (cache.root, "%d templates" % len(entries) if entries else "empty"))
    for path, size, version in entries:
        print("  %-40s %10s  %s" % (os.path.basename(path), _size(size), version))
    if entries:
        print("  %-40s %10s" % ("total", _size(sum(size for _, size, _ in entries))))
    return 0


#: Where --log-file appends (None: nowhere).
_LOG_FILE: list[str] = []


def _complain(message: str) -> None:
    line = "%s: %s\n" % (PROG, message)
    sys.stderr.write(line)
    _log(line)


def _log(text: str) -> None:
    """Append to the --log-file, if one was given; a file that cannot be
    written is said once, and not tried again."""
    if not _LOG_FILE:
        return
    try:
        with open(_LOG_FILE[0], "a") as f:
            f.write(text)
    except OSError as exc:
        path = _LOG_FILE.pop()
        sys.stderr.write("%s: cannot write the log file %s: %s\n" % (PROG, path, exc))


def _keep_logs(fixture: DaemonFixture) -> None:
    """Before the temp dir goes: the daemon's log files into --log-file."""
    if not _LOG_FILE or not fixture.temp_dir:
        return
    for name in sorted(os.listdir(fixture.temp_dir)):
        path = os.path.join(fixture.temp_dir, name)
        if name.endswith(".log") and os.path.isfile(path):
            try:
                with open(path, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            _log("== %s log %s\n%s" % (fixture.daemon_name, name, text))


def _refuse_missing_pifpaf_daemon(args: list[str], known: set[str]) -> None:
    """``run`` or ``start`` of a daemon pifpaf has and we do not: say so in
    one line, and where to read how to add it."""
    words = [arg for arg in args if not arg.startswith("-")]
    if len(words) >= 2 and words[0] in ("run", "start"):
        wanted = words[1]
        if wanted in registry.PIFPAF_DAEMONS and wanted not in known:
            raise UsageError(
                "%s is one of pifpaf's daemons that %s does not have (yet); "
                "`%s list` shows those it has, and doc/source/user/own-daemon.rst "
                '("Writing your own daemon") how to add one' % (wanted, PROG, PROG)
            )


def _version() -> str:
    import importlib.metadata  # here: it costs every other run 10 ms

    try:
        return importlib.metadata.version("fixtures-daemons")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: typing.Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
    debug = "--debug" in args
    if args[:1] == ["--version"]:
        print("%s %s" % (PROG, _version()))
        return 0
    try:
        status = _main(args, command, debug)
        # Flushed here, where a reader that went away is caught, not at
        # exit, where Python prints "Exception ignored" and exits 120.
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (``| head``): no traceback, and no second
        # error when Python flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE


def _main(args: list[str], command: list[str], debug: bool) -> int:
    try:
        # The daemons named on the command line, if any (a word that is
        # also an option's value only adds a subparser); none: all of them,
        # for --help and for the error that lists the choices.
        # Ours first, by their own modules (importing every daemon module
        # costs tens of ms), then by alias; looking up third parties'
        # entry points is slower still.
        named = registry.own_daemon_names(args)
        if not named:
            builtin = set(registry.builtin_daemons()) | set(registry.builtin_aliases())
            named = builtin & set(args)
        if not named:
            named = set(registry.daemon_names()) & set(args)
            _refuse_missing_pifpaf_daemon(args, named)
        parser = build_parser(named)
        ns, extra = parser.parse_known_args(args)
        _LOG_FILE[:] = [os.path.abspath(ns.log_file)] if ns.log_file else []
        # --keep is about this run's daemon: the command's own fixtures do
        # not inherit it (cmd_run leaves it out of the command's environment).
        ns.keep_inherited = KEEP_ENV in os.environ
        if ns.keep:
            os.environ[KEEP_ENV] = "1"
        if extra:
            # pifpaf runs `pifpaf run redis env`: a command without `--`,
            # after the daemon's options.
            if ns.command == "run" and not command and not extra[0].startswith("-"):
                command = extra
            else:
                _subparser(parser, ns).error("unrecognized arguments: %s" % " ".join(extra))
        if getattr(ns, "daemon", None):
            # As typed (an alias: s3rver) for <PREFIX>_DAEMON, as pifpaf has it.
            ns.typed_daemon = ns.daemon
            ns.daemon = registry.canonical_name(ns.daemon)
        if command and ns.command != "run":
            raise UsageError("only run takes a command after --")
        if ns.command == "run":
            return cmd_run(ns, command)
        handler = {
            "list": cmd_list,
            "start": cmd_start,
            "status": cmd_status,
            "env": cmd_env,
            "stop": cmd_stop,
            "cache": cmd_cache,
            "leftovers": cmd_leftovers,
        }[ns.command]
        return handler(ns)
    except UsageError as exc:
        _complain("error: %s" % exc)
        return EXIT_USAGE
    except DaemonError as exc:
        if debug:
            raise
        _complain(str(exc))
        return EXIT_DAEMON
    except BrokenPipeError:
        raise
    except Exception as exc:
        if debug:
            raise
        _complain("%s: %s (run with --debug for a traceback)" % (type(exc).__name__, exc))
        return EXIT_ERROR
