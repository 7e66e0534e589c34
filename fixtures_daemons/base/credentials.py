"""A user and a password for a daemon's clients, random per server.

Loopback TCP is open to every local user; a daemon that can check a
password should ask for one, so that only the test (which has ``url``)
gets in. :class:`PasswordAuth` is what two daemons would otherwise write
twice: the parameters, the password made at each start (kept over
``stopped()``), and the endpoint that carries them.
"""

from __future__ import annotations

import secrets
import typing

from fixtures_daemons.base.endpoint import Endpoint

__all__ = ["PasswordAuth", "random_password"]


def random_password() -> str:
    """128 random bits, in hex (safe in URLs and configuration files)."""
    return secrets.token_hex(16)


class PasswordAuth:
    """Mixin, before the daemon's base: ``class NatsFixture(PasswordAuth,
    DaemonFixture)``. The daemon writes ``requested_username`` and
    :attr:`server_password` into its configuration (once :meth:`make_password`
    ran, in ``prepare()``) and builds its endpoint with
    :meth:`with_credential`.

    :param username: the user clients log in as (default ``fxd``).
    :param password: its password (default: random, per daemon).
    :param anonymous: no password at all (any local user can then connect).
    """

    #: The user clients log in as, unless ``username`` is given.
    default_username: typing.ClassVar[str] = "fxd"

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        anonymous: bool = False,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.requested_username = username or self.default_username
        self.requested_password = password
        self.anonymous = anonymous
        self.server_password = ""

    def make_password(self) -> str:
        """The password of this start (``""`` when anonymous): the one
        given, else the one made at the first start, else a new one."""
        if self.anonymous:
            self.server_password = ""
        elif not self.server_password:
            self.server_password = self.requested_password or random_password()
        return self.server_password

    def with_credential(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` with the user and the password (unchanged when
        anonymous)."""
        if self.anonymous:
            return endpoint
        return endpoint.replace(user=self.requested_username, password=self.server_password)

    @property
    def username(self) -> str:
        """The user clients log in as (empty when anonymous)."""
        return typing.cast(str, typing.cast(typing.Any, self).endpoint.user)

    @property
    def password(self) -> str:
        """The password clients log in with (empty when anonymous)."""
        return typing.cast(str, typing.cast(typing.Any, self).endpoint.password)
