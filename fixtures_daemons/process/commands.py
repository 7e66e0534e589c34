"""Running a helper program to its end: an init tool, a client, openssl.

One place for what every such run needs: no stdin, its output (stdout and
stderr) captured for the error message, a working directory that exists,
and a bound, so that a helper that hangs cannot hang a test.
"""

from __future__ import annotations

import subprocess
import typing

from fixtures_daemons.errors import CommandFailed

__all__ = ["run_command"]


def run_command(
    command: typing.Sequence[str],
    what: str,
    timeout: float,
    cwd: str = "/",
    **popen_kwargs: typing.Any,
) -> str:
    """Run ``command`` to its end; return what it printed. A non-zero exit,
    or not finishing within ``timeout`` seconds (it is killed then), raises
    :class:`~fixtures_daemons.CommandFailed` naming ``what``, with the
    output."""
    argv = [str(arg) for arg in command]
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            timeout=timeout,
            check=False,
            **popen_kwargs,
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.output or b"").decode("utf-8", "replace")
        raise CommandFailed(what, argv, None, output, timeout) from None
    text: str = result.stdout.decode("utf-8", "replace")
    if result.returncode != 0:
        raise CommandFailed(what, argv, result.returncode, text)
    return text
