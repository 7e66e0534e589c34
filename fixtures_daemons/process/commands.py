"""Running a helper program to its end: an init tool, a client, openssl.

One place for what every such run needs: no stdin, its output (stdout and
stderr) captured for the error message, a working directory that exists,
and a bound, so that a helper that hangs cannot hang a test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import typing

from fixtures_daemons.errors import CommandFailed
from fixtures_daemons.process import _reaper
from fixtures_daemons.process.watchdog import TAG_ENV, Watchdog

__all__ = ["run_command"]


def run_command(
    command: typing.Sequence[str],
    what: str,
    timeout: float,
    cwd: str = "/",
    env: typing.Mapping[str, str] | None = None,
    **popen_kwargs: typing.Any,
) -> str:
    """Run ``command`` to its end; return what it printed. A non-zero exit,
    or not finishing within ``timeout`` seconds, raises
    :class:`~fixtures_daemons.CommandFailed` naming ``what``, with the
    output.

    The helper runs in a process group of its own, tagged for this
    process's watchdog: a test runner killed during an ``initdb`` takes the
    ``initdb`` with it. One that does not finish in time is sent SIGTERM
    (it may clean up: shared memory segments), then SIGKILL, with its
    whole group.
    """
    argv = [str(arg) for arg in command]
    environment = dict(os.environ if env is None else env)
    environment[TAG_ENV] = Watchdog.get().tag()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=environment,
        start_new_session=True,
        **popen_kwargs,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        output = _stop(process)
        raise CommandFailed(what, argv, None, output.decode("utf-8", "replace"), timeout) from None
    except BaseException:  # interrupted: the helper does not outlive us
        _stop(process)
        raise
    finally:
        _reaper.kill_quietly(process.pid, signal.SIGKILL, group=True)  # what it left
    text: str = output.decode("utf-8", "replace")
    if process.returncode != 0:
        raise CommandFailed(what, argv, process.returncode, text)
    return text


def _stop(process: subprocess.Popen[bytes], grace: float = 2.0) -> bytes:
    """SIGTERM the helper's group, then SIGKILL it after ``grace``
    seconds; what it printed."""
    _reaper.kill_quietly(process.pid, signal.SIGTERM, group=True)
    try:
        output, _ = process.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        _reaper.kill_quietly(process.pid, signal.SIGKILL, group=True)
        output, _ = process.communicate()
    return output or b""
