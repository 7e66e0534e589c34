"""One exception tree for everything that can go wrong with a daemon.

Every error carries structured attributes (the daemon's name, its log tail,
...) so that callers and test reports can act on them, and every message is
built defensively: ``str()`` of one of these never raises, even when an
attribute is of an unexpected type, so that formatting a message can never
hide the real failure.
"""

from __future__ import annotations

import typing

__all__ = [
    "DaemonError",
    "ExecutableNotFound",
    "StartupTimeout",
    "DaemonExited",
    "DaemonDied",
    "PortUnavailable",
    "DisplayUnavailable",
    "TempDirError",
    "UserError",
    "CommandFailed",
    "StateError",
    "MisuseError",
    "NotOwnedError",
    "DefinitionError",
    "AttachError",
    "ServerError",
    "AdminError",
    "CertificateError",
    "ClientLibraryMissing",
]


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _safe_repr(value: object) -> str:
    """repr() that cannot raise: the error that broke a message may carry
    the very object whose repr() raises."""
    try:
        return repr(value)
    except Exception:
        return "<unprintable %s>" % type(value).__name__


def _rebuild(
    cls: type[DaemonError], args: tuple[typing.Any, ...], state: dict[str, typing.Any]
) -> DaemonError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class DaemonError(Exception):
    """Base class of every error raised by fixtures-daemons.

    :ivar name: the daemon or process the error is about.
    :ivar log_tail: the last lines of its log, or ``""``.
    """

    def __init__(self, name: str = "", message: str = "", log_tail: str = "") -> None:
        super().__init__(name, message, log_tail)
        self.name = name
        self.message = message
        self.log_tail = log_tail

    def _describe(self) -> str:
        return str(self.message)

    def __reduce__(self) -> tuple[typing.Any, ...]:
        # Errors cross processes (multiprocessing, parallel runners): rebuilt
        # from their attributes, whatever the subclass's signature.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def __str__(self) -> str:
        try:
            text = self._describe()
            if self.name:
                text = "%s: %s" % (self.name, text)
            if self.log_tail:
                text += "\nlast lines of its log:\n" + _indent(str(self.log_tail))
            return text
        except Exception as exc:  # pragma: no cover - the point is that it never raises
            return "%s (and formatting the message failed: %s)" % (
                type(self).__name__,
                _safe_repr(exc),
            )


class ExecutableNotFound(DaemonError):
    """The daemon's program is not installed, or not where we looked.

    :ivar executable: the program's name.
    :ivar searched: the directories that were searched.
    :ivar packages: a mapping of packaging system to package names that
        provide it, e.g. ``{"Debian/Ubuntu": "postgresql", "Homebrew": "postgresql"}``.
    :ivar env_var: the environment variable that names the binary explicitly.
    """

    def __init__(
        self,
        name: str,
        executable: str,
        searched: typing.Sequence[str] = (),
        packages: typing.Mapping[str, str] | None = None,
        env_var: str = "",
    ) -> None:
        super().__init__(name)
        self.executable = executable
        self.searched = list(searched)
        self.packages = dict(packages or {})
        self.env_var = env_var

    def _describe(self) -> str:
        text = "executable %r not found" % (self.executable,)
        if self.searched:
            text += " (searched %s)" % ", ".join(self.searched)
        if self.packages:
            text += "; install it: " + "; ".join("%s: %s" % item for item in self.packages.items())
        if self.env_var:
            text += "; or set %s to its path" % self.env_var
        return text


class StartupTimeout(DaemonError):
    """The daemon did not become ready before the deadline.

    :ivar waited_for: what readiness meant (a description of the probe).
    :ivar timeout: the number of seconds waited.
    """

    def __init__(self, name: str, waited_for: str, timeout: float, log_tail: str = "") -> None:
        super().__init__(name, log_tail=log_tail)
        self.waited_for = waited_for
        self.timeout = timeout

    def _describe(self) -> str:
        text = "not ready after %.1f s waiting for %s; raise timeout= if it is just slow" % (
            self.timeout,
            self.waited_for,
        )
        if not self.log_tail:
            text += (
                "; its log is empty: a program whose output is block-buffered (Python "
                "without -u, C stdio to a file) shows nothing until it flushes or exits"
            )
        return text


class DaemonExited(DaemonError):
    """The daemon exited while we waited for it to become ready.

    :ivar returncode: its exit status (negative: killed by that signal).
    :ivar command: the command line that was run.
    """

    def __init__(
        self,
        name: str,
        returncode: int | None,
        command: typing.Sequence[str] = (),
        log_tail: str = "",
    ) -> None:
        super().__init__(name, log_tail=log_tail)
        self.returncode = returncode
        self.command = list(command)

    def _describe(self) -> str:
        if isinstance(self.returncode, int) and self.returncode < 0:
            how = "was killed by signal %d" % -self.returncode
        else:
            how = "exited with code %s" % (self.returncode,)
        text = "%s before it was ready" % how
        if self.returncode == 0:
            text += (
                " (a program that forks into the background exits 0 at once: run it in "
                "the foreground, with its --foreground or --nodaemon option or the like)"
            )
        if self.command:
            text += "; command: %s" % " ".join(str(arg) for arg in self.command)
        return text


class DaemonDied(DaemonExited):
    """The daemon was ready, then exited on its own while the test used it
    (a crash, the OOM killer, a kill from outside); raised by cleanUp,
    after everything was stopped and removed. A test that stops the daemon
    on purpose calls the process fixture's ``stop()`` first.
    """

    def _describe(self) -> str:
        if isinstance(self.returncode, int) and self.returncode < 0:
            how = "was killed by signal %d" % -self.returncode
        else:
            how = "exited with code %s" % (self.returncode,)
        text = "%s while in use, after it was ready (see its log below)" % how
        if self.command:
            text += "; command: %s" % " ".join(str(arg) for arg in self.command)
        return text


class PortUnavailable(DaemonError):
    """A port that was asked for is in use by another program.

    :ivar host: the address.
    :ivar port: the port.
    """

    def __init__(self, name: str, host: str, port: int, detail: str = "") -> None:
        super().__init__(name, message=detail)
        self.host = host
        self.port = port

    def _describe(self) -> str:
        text = "port %s on %s is already in use" % (self.port, self.host)
        if self.message:
            text += " (%s)" % self.message
        return text + "; pick another port, or leave port unset to get a free one"


class DisplayUnavailable(DaemonError):
    """An X display number that was asked for is taken (or none was free).

    :ivar display: the number (0 when none could be found).
    """

    def __init__(self, name: str, display: int, detail: str = "") -> None:
        super().__init__(name, message=detail)
        self.display = display

    def _describe(self) -> str:
        if not self.display:
            return "no free X display number found (%s)" % self.message
        return (
            "X display :%d is taken (%s); pick another display, or leave display unset "
            "to get a free one" % (self.display, self.message)
        )


class TempDirError(DaemonError):
    """A directory the library needs cannot be made or used: the temp
    root that holds the daemon's private directory, or the lock dir.

    :ivar root: the directory we tried to create a dir in (or to use).
    :ivar hint: what to do about it.
    """

    TEMP_ROOT_HINT = "pass temp_root= or set FIXTURES_DAEMONS_TMPDIR to a writable directory"

    def __init__(self, name: str, root: str, reason: str, hint: str = "") -> None:
        super().__init__(name, message=reason)
        self.root = root
        self.hint = hint

    def _describe(self) -> str:
        if self.hint:
            return "cannot use %s: %s; %s" % (self.root, self.message, self.hint)
        return "cannot make a private temp dir in %s: %s; %s" % (
            self.root,
            self.message,
            self.TEMP_ROOT_HINT,
        )


class UserError(DaemonError):
    """The process cannot run as the requested user.

    :ivar user: the user asked for.
    """

    def __init__(self, name: str, user: str, reason: str) -> None:
        super().__init__(name, message=reason)
        self.user = user

    def _describe(self) -> str:
        return "cannot run as user %r: %s" % (self.user, self.message)


class CommandFailed(DaemonError):
    """A helper command (initialisation, a client call) failed.

    :ivar command: the command line.
    :ivar returncode: its exit status; None when it did not finish within
        ``timeout`` and was killed.
    :ivar output: what it printed.
    :ivar timeout: the bound it was given, in seconds.
    """

    def __init__(
        self,
        name: str,
        command: typing.Sequence[str],
        returncode: int | None,
        output: str = "",
        timeout: float | None = None,
    ) -> None:
        super().__init__(name, log_tail=output)
        self.command = list(command)
        self.returncode = returncode
        self.output = output
        self.timeout = timeout

    def _describe(self) -> str:
        command = " ".join(str(a) for a in self.command)
        if self.returncode is None:
            return "%s did not finish within %s s, and was killed" % (command, self.timeout)
        return "%s exited with code %s" % (command, self.returncode)


class StateError(DaemonError):
    """A description of a daemon (an exported ``*_STATE`` variable, a named
    daemon's record) is damaged: not JSON, or not of the expected shape.

    :ivar source: where the description came from (the variable's name).
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__("", message=reason)
        self.source = source

    def _describe(self) -> str:
        return (
            "%s does not describe a daemon: %s; unset it, or run the tests under "
            "`fixtures-daemons run` again" % (self.source or "the daemon state", self.message)
        )


class AttachError(DaemonError):
    """The daemon a fixture was told to attach to is not there (it exited,
    or does not answer).

    :ivar source: what described it (a variable, a named daemon).
    """

    def __init__(self, name: str, source: str, reason: str) -> None:
        super().__init__(name, message=reason)
        self.source = source

    def _describe(self) -> str:
        return (
            "cannot attach to the daemon %s describes: %s; restart what exported it, "
            "or unset %s to start a daemon of its own" % (self.source, self.message, self.source)
        )


class ServerError(DaemonError):
    """A server the library did not start (``server=``, ``$<PREFIX>_<DAEMON>_SERVER_URL``,
    ``fixtures-daemons run --server``) cannot be used: a URL that is not
    one, a server that does not answer, credentials it refuses, a TLS
    failure, a right the role lacks.

    :ivar source: what named the server (the parameter, the variable).
    :ivar url: its URL, without the password.
    :ivar reason: what went wrong.
    :ivar hint: what to do about it.
    """

    def __init__(self, name: str, source: str, url: str, reason: str, hint: str = "") -> None:
        super().__init__(name, message=reason)
        self.source = source
        self.url = url
        self.reason = reason
        self.hint = hint

    def _describe(self) -> str:
        text = "cannot use the server %s (from %s): %s" % (self.url, self.source, self.message)
        return text + ("; " + self.hint if self.hint else "")


class MisuseError(DaemonError):
    """A call the fixture cannot honour in its current state (a fixture
    that is not set up, set up twice, ...).

    :ivar call: the call that was misused.
    """

    def __init__(self, name: str, call: str, reason: str) -> None:
        super().__init__(name, message=reason)
        self.call = call

    def _describe(self) -> str:
        return "%s: %s" % (self.call, self.message)


class NotOwnedError(MisuseError):
    """``stopped()``, ``paused()`` and the like on a fixture that does not
    own its daemon's process (attached, or a named daemon's)."""


class DefinitionError(DaemonError, TypeError):
    """A daemon class is incomplete: a hook or a declaration is missing.

    :ivar cls: the class's name.
    :ivar missing: what it lacks.
    """

    def __init__(self, cls: str, missing: str, reason: str) -> None:
        super().__init__("", message=reason)
        self.cls = cls
        self.missing = missing

    def _describe(self) -> str:
        return "%s must define %s: %s" % (self.cls, self.missing, self.message)


class AdminError(DaemonError):
    """The daemon refused an administrative request (creating or dropping
    a database, a claim, a flush), or did not answer it in time.

    :ivar request: what was asked (the SQL, the command).
    :ivar reason: what the daemon (or the client) said.
    """

    def __init__(self, name: str, request: str, reason: str) -> None:
        super().__init__(name, message=reason)
        self.request = request
        self.reason = reason

    def _describe(self) -> str:
        return "%s failed: %s" % (self.request, self.message)


class CertificateError(DaemonError):
    """A certificate or key file given to a daemon cannot be used: missing,
    not a file, or not readable.

    :ivar parameter: the parameter that named it (``ssl_key``).
    :ivar path: the file.
    :ivar reason: what is wrong with it.
    """

    def __init__(self, name: str, parameter: str, path: str, reason: str) -> None:
        super().__init__(name, message=reason)
        self.parameter = parameter
        self.path = path
        self.reason = reason

    def _describe(self) -> str:
        return "%s=%s: %s" % (self.parameter, self.path, self.message)


class ClientLibraryMissing(AdminError):
    """The daemon's admin needs its client library (an optional extra),
    and it is not installed. Only what needs it fails: a fixture that
    starts its own daemon works without it.

    :ivar library: the missing module.
    :ivar extra: what to install, ``fixtures-daemons[<daemon>]``.
    """

    def __init__(self, name: str, request: str, library: str, extra: str) -> None:
        super().__init__(
            name,
            request,
            "%s is not installed; install it with: pip install '%s'" % (library, extra),
        )
        self.library = library
        self.extra = extra
