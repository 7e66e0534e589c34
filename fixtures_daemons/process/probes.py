"""Readiness probes: small, composable answers to "is it up yet?".

A probe is asked :meth:`Probe.ready` repeatedly under a deadline by the
process layer; it must answer quickly and never block for long. Probes are
composed (:class:`AllOf`, :class:`AnyOf`, or ``&`` and ``|``) instead of
subclassed, so a daemon says "its log says ready *and* its socket accepts"
without a new class.

:meth:`Probe.start` is called at the beginning of every wait (also after a
restart), with the :class:`ProbeContext` of the process being waited for;
:class:`LogPattern` uses it to look only at output written since then.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import re
import socket
import subprocess
import typing

from fixtures_daemons.errors import DaemonError
from fixtures_daemons.process.waiting import Deadline

__all__ = [
    "ProbeContext",
    "Probe",
    "LogPattern",
    "Tcp",
    "UnixSocket",
    "Http",
    "PidFile",
    "Command",
    "Callable",
    "AllOf",
    "AnyOf",
]

#: How long one attempt of a network probe may block.
ATTEMPT_TIMEOUT = 1.0


@dataclasses.dataclass
class ProbeContext:
    """What a probe may know about the process it waits for."""

    log_path: str = ""
    pid: int | None = None
    #: Where this run's output begins in the log, measured before the
    #: process was spawned (by the time a probe starts, a fast daemon may
    #: already have printed its banner); None: the log's size now.
    log_offset: int | None = None
    #: When the wait gives up: one attempt never blocks past it.
    deadline: Deadline | None = None


class Probe:
    """Base class: a readiness check.

    :ivar last_error: the reason of the last negative answer, if any, shown
        in :class:`~fixtures_daemons.StartupTimeout`.
    """

    last_error: str = ""
    _deadline: Deadline | None = None

    def start(self, context: ProbeContext) -> None:
        """Called before a wait begins."""
        self.last_error = ""
        self._deadline = context.deadline

    def attempt_timeout(self, longest: float = ATTEMPT_TIMEOUT) -> float:
        """How long one attempt may block: ``longest``, but never past the
        wait's deadline (a hung check must not overrun the timeout)."""
        if self._deadline is None:
            return longest
        return max(0.001, min(longest, self._deadline.remaining()))

    def ready(self) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__

    def __and__(self, other: Probe) -> AllOf:
        return AllOf(self, other)

    def __or__(self, other: Probe) -> AnyOf:
        return AnyOf(self, other)

    def __repr__(self) -> str:
        return "<%s>" % self.describe()


class LogPattern(Probe):
    """Ready once the log written since the wait began matches ``pattern``.

    Output that arrives in several writes is joined before matching, so a
    banner printed in two halves is found; the log is read incrementally, so
    a daemon writing megabytes costs only one pass over what it wrote.
    """

    #: bytes of unmatched text kept between reads, so a match can span reads
    KEEP = 65536

    def __init__(self, pattern: str | re.Pattern[str], flags: int = re.MULTILINE) -> None:
        self.regex = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
        self._path = ""
        self._offset = 0
        self._pending = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def start(self, context: ProbeContext) -> None:
        super().start(context)
        self._path = context.log_path
        if context.log_offset is not None:
            self._offset = context.log_offset
        else:
            try:
                self._offset = os.path.getsize(self._path)
            except OSError:
                self._offset = 0
        self._pending = ""
        self._decoder.reset()

    def ready(self) -> bool:
        try:
            with open(self._path, "rb") as log:
                log.seek(self._offset)
                data = log.read()
        except OSError as exc:
            self.last_error = str(exc)
            return False
        if not data:
            return False
        self._offset += len(data)
        # Incremental: a character split between two reads is kept whole.
        text = self._pending + self._decoder.decode(data)
        if self.regex.search(text):
            return True
        self._pending = text[-self.KEEP :]
        return False

    def describe(self) -> str:
        return "log line matching %r" % self.regex.pattern


def _connect(family: int, address: typing.Any, timeout: float = ATTEMPT_TIMEOUT) -> str:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
        return ""
    except OSError as exc:
        return str(exc)
    finally:
        sock.close()


class Tcp(Probe):
    """Ready once a TCP connection to ``host``:``port`` is accepted."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def ready(self) -> bool:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.last_error = _connect(family, (self.host, self.port), self.attempt_timeout())
        return not self.last_error

    def describe(self) -> str:
        return "TCP connect to %s:%d" % (self.host, self.port)


class UnixSocket(Probe):
    """Ready once a connection to the unix socket at ``path`` is accepted."""

    def __init__(self, path: str) -> None:
        self.path = path

    def ready(self) -> bool:
        self.last_error = _connect(socket.AF_UNIX, self.path, self.attempt_timeout())
        return not self.last_error

    def describe(self) -> str:
        return "unix socket connect to %s" % self.path


class Http(Probe):
    """Ready once ``url`` answers with one of ``statuses`` (default 2xx)."""

    def __init__(
        self, url: str, statuses: typing.Container[int] = range(200, 300), method: str = "GET"
    ) -> None:
        self.url = url
        self.statuses = statuses
        self.method = method
        import urllib.parse  # here: http.client and friends would slow every CLI run

        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._path = parts.path or "/"
        if parts.query:
            self._path += "?" + parts.query

    def ready(self) -> bool:
        import http.client

        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._netloc, timeout=self.attempt_timeout())
        try:
            conn.request(self.method, self._path)
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            self.last_error = str(exc) or type(exc).__name__
            return False
        finally:
            conn.close()
        if status in self.statuses:
            return True
        self.last_error = "HTTP status %d" % status
        return False

    def describe(self) -> str:
        return "HTTP %s %s" % (self.method, self.url)


class PidFile(Probe):
    """Ready once ``path`` exists and holds a process id."""

    def __init__(self, path: str) -> None:
        self.path = path

    def ready(self) -> bool:
        try:
            with open(self.path) as f:
                int(f.read().split()[0])
            return True
        except (OSError, ValueError, IndexError) as exc:
            self.last_error = str(exc)
            return False

    def describe(self) -> str:
        return "pid file %s" % self.path


class Command(Probe):
    """Ready once ``command`` exits with status 0."""

    def __init__(
        self, command: typing.Sequence[str], env: typing.Mapping[str, str] | None = None
    ) -> None:
        self.command = list(command)
        self.env = dict(env) if env is not None else None

    def ready(self) -> bool:
        env = None if self.env is None else {**os.environ, **self.env}
        try:
            result = subprocess.run(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=self.attempt_timeout(5.0),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.last_error = str(exc)
            return False
        if result.returncode == 0:
            return True
        self.last_error = "exit %d: %s" % (
            result.returncode,
            result.stdout.decode("utf-8", "replace").strip()[-200:],
        )
        return False

    def describe(self) -> str:
        return "command %s exiting 0" % " ".join(self.command)


class Callable(Probe):
    """Ready once ``function()`` returns a true value.

    An exception counts as "not yet" and is remembered for the timeout
    message, so ``Callable(lambda: client.ping())`` works as is; a
    :class:`~fixtures_daemons.DaemonError` is the check saying the start
    cannot succeed (a certificate that does not verify): it fails the wait
    at once.
    """

    def __init__(self, function: typing.Callable[[], object], description: str = "") -> None:
        self.function = function
        self.description = description or getattr(function, "__name__", repr(function))

    def ready(self) -> bool:
        try:
            return bool(self.function())
        except DaemonError:
            raise
        except Exception as exc:
            self.last_error = "%s: %s" % (type(exc).__name__, exc)
            return False

    def describe(self) -> str:
        return "%s returning true" % self.description


class _Combination(Probe):
    joiner = ""

    def __init__(self, *probes: Probe) -> None:
        if not probes:
            raise ValueError("%s needs at least one probe" % type(self).__name__)
        self.probes = probes

    def start(self, context: ProbeContext) -> None:
        super().start(context)
        for probe in self.probes:
            probe.start(context)

    def describe(self) -> str:
        return "(" + self.joiner.join(p.describe() for p in self.probes) + ")"


class AllOf(_Combination):
    """Ready when every probe is; each is asked until it has said yes once."""

    joiner = " and "

    def __init__(self, *probes: Probe) -> None:
        super().__init__(*probes)
        self._done: set[int] = set()

    def start(self, context: ProbeContext) -> None:
        super().start(context)
        self._done = set()

    def ready(self) -> bool:
        for index, probe in enumerate(self.probes):
            if index in self._done:
                continue
            if not probe.ready():
                self.last_error = probe.last_error
                return False
            self._done.add(index)
        return True


class AnyOf(_Combination):
    """Ready as soon as one of the probes is."""

    joiner = " or "

    def ready(self) -> bool:
        errors = []
        for probe in self.probes:
            if probe.ready():
                return True
            if probe.last_error:
                errors.append(probe.last_error)
        self.last_error = "; ".join(errors)
        return False
