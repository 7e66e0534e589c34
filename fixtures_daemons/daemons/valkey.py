"""Valkey, the fork of Redis: a daemon of its own (as in pifpaf), which is
:class:`~fixtures_daemons.RedisFixture` running another program."""

from __future__ import annotations

from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.daemons.redis import RedisFixture

__all__ = ["ValkeyFixture", "ValkeyResource"]


class ValkeyFixture(RedisFixture):
    """A Valkey server (the Redis fork), optionally watched by a Sentinel:
    :class:`RedisFixture` with ``valkey-server``, under the daemon name
    ``valkey`` (its temp dir, log, exported variables, and pifpaf's
    ``valkey://`` URL with ``-e PIFPAF``). Same parameters and attributes;
    ``url`` keeps the ``redis://`` scheme, which Redis clients understand.
    """

    daemon_name = "valkey"
    executable = Executable(
        names=("valkey-server",),
        packages={"Debian/Ubuntu": "valkey-server", "Homebrew": "valkey"},
        env_var="FIXTURES_DAEMONS_VALKEY_SERVER",
    )
    pifpaf_scheme = "valkey"


class ValkeyResource(DaemonResource):
    """A testresources manager sharing one :class:`ValkeyFixture`."""

    fixture_class = ValkeyFixture
