"""memcached, killed at cleanUp: its data is thrown away; over TLS on demand."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import typing

from fixtures_daemons.base import certificates
from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import KeyPrefix
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.errors import AdminError, MisuseError
from fixtures_daemons.process import probes
from fixtures_daemons.process.probes import Probe

__all__ = ["MemcachedFixture", "MemcachedResource", "MemcachedAdmin"]


class MemcachedAdmin(Admin):
    """A memcached server, through its text protocol. It cannot list its
    keys, so a key prefix is retired, not deleted.

    Over TLS (the endpoint's ``extra["tls"]``) it verifies the server's
    certificate against ``extra["ca_cert"]`` and the server's own
    certificate, ``extra["server_cert"]`` (trusted as given, so that a
    certificate of the user's that the CA file does not cover still
    verifies); not its host name: it reaches the address it was given.
    """

    def __init__(self, endpoint: Endpoint, name: str = "", timeout: float = 30.0) -> None:
        super().__init__(endpoint, name, timeout)
        self._context: ssl.SSLContext | None = None

    @property
    def tls(self) -> bool:
        return self.endpoint.extra.get("tls") == "1"

    def trusted(self) -> list[str]:
        """The files the server's certificate is verified against."""
        found = (self.endpoint.extra.get(key, "") for key in ("ca_cert", "server_cert"))
        return list(dict.fromkeys(path for path in found if path))

    def tls_context(self) -> ssl.SSLContext:
        """The context the admin's TLS connections use (made once);
        :class:`~fixtures_daemons.AdminError` when a file it trusts cannot
        be read."""
        if self._context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            for path in self.trusted():
                try:
                    context.load_verify_locations(cafile=path)
                except (OSError, ssl.SSLError) as exc:
                    raise AdminError(
                        self.name, "loading %s" % path, "cannot use it to verify TLS: %s" % exc
                    ) from None
            self._context = context
        return self._context

    def _connect(self) -> socket.socket:
        context = self.tls_context() if self.tls else None
        address = (self.endpoint.host, self.endpoint.port or 0)
        sock = socket.create_connection(address, timeout=min(self.timeout, 5.0))
        if context is None:
            return sock
        try:
            return context.wrap_socket(sock, server_hostname=self.endpoint.host)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise AdminError(
                self.name,
                "TLS handshake with %s:%s" % address,
                "its certificate does not verify against %s: %s"
                % (" or ".join(self.trusted()), exc.verify_message or exc),
            ) from None
        except BaseException:
            sock.close()
            raise

    def command(self, line: str) -> str:
        """Send one text-protocol command; return the first reply line."""
        with self._connect() as sock:
            sock.sendall(line.encode() + b"\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode("utf-8", "replace").split("\r\n", 1)[0]

    def answers(self) -> bool:
        """True when it answers ``version``; False when it is down, hung
        or refuses; :class:`~fixtures_daemons.AdminError` when it answers
        over TLS with a certificate that does not verify."""
        try:
            return self.command("version").startswith("VERSION")
        except OSError:
            return False

    def flush(self) -> None:
        self.command("flush_all")


class MemcachedFixture(DaemonFixture):
    """A memcached server on loopback TCP (UDP off), over TLS on demand.

    memcached is slow to exit on SIGTERM; its data is thrown away anyway,
    so cleanUp kills it. It is a cache: like a real memcached restart,
    :meth:`stopped` brings it back empty (its warm restart,
    ``--memory-file``, refuses its own metadata in 1.6.18 and slows every
    start). See :doc:`/design`, 'Where the time goes'.

    :param memory: the cache size in megabytes.
    :param threads: worker threads.
    :param tls: serve TLS only (``-Z``), with a throw-away certificate for
        127.0.0.1 and localhost made for the test (its CA is ``ca_cert``),
        unless ``ssl_chain_cert`` is given. Needs the ``openssl`` program.
    :param ssl_chain_cert: serve TLS only with this certificate chain (PEM),
        as pifpaf's ``--ssl_chain_cert`` (``tls`` is then implied).
    :param ssl_key: the chain's private key (PEM), if not in the chain file.
    :param ssl_ca_cert: the CAs (PEM) that client certificates are checked
        against (memcached's ``ssl_ca_cert``); also what ``ca_cert`` names
        for clients.

    Attributes: ``url`` (``memcached://host:port``), ``memory``,
    ``key_prefix`` (empty, or when attached to a shared server this
    fixture's own prefix: put it in front of your keys); over TLS,
    ``tls_enabled`` and ``ca_cert`` (what clients verify the server with).
    """

    daemon_name = "memcached"
    executable = Executable(
        names=("memcached",),
        packages={"Debian/Ubuntu": "memcached", "Homebrew": "memcached"},
        env_var="FIXTURES_DAEMONS_MEMCACHED",
    )
    refuses_root = True
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGKILL
    scheme = "memcached"
    namespace = KeyPrefix
    admin_class = MemcachedAdmin

    def __init__(
        self,
        *,
        memory: int = 64,
        threads: int = 2,
        tls: bool = False,
        ssl_chain_cert: str | None = None,
        ssl_key: str | None = None,
        ssl_ca_cert: str | None = None,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.memory = memory
        self.threads = threads
        for parameter, value in (("ssl_key", ssl_key), ("ssl_ca_cert", ssl_ca_cert)):
            if value and not ssl_chain_cert:
                raise MisuseError(
                    self.daemon_name,
                    "%s(%s=...)" % (type(self).__name__, parameter),
                    "%s needs ssl_chain_cert, the server's certificate; or use tls=True "
                    "for a throw-away certificate" % parameter,
                )
        self.tls = tls
        # Absolute now: a relative path means the caller's directory, and the
        # daemon runs in its temp dir.
        self.ssl_chain_cert = _absolute(ssl_chain_cert)
        self.ssl_key = _absolute(ssl_key)
        self.ssl_ca_cert = _absolute(ssl_ca_cert)
        self._tls_files: certificates.CertificateFiles | None = None

    @property
    def tls_enabled(self) -> bool:
        """True when the server speaks TLS only (``tls`` or ``ssl_chain_cert``)."""
        return bool(self.tls or self.ssl_chain_cert)

    def prepare(self) -> None:
        self._tls_files = None
        if self.ssl_chain_cert:
            for parameter in ("ssl_chain_cert", "ssl_key", "ssl_ca_cert"):
                path = getattr(self, parameter)
                if path:
                    certificates.check_readable(path, parameter, self.daemon_name)
        elif self.tls:
            hosts = tuple(dict.fromkeys((self.requested_host, "localhost")))
            made = certificates.server_certificates(hosts)
            self._tls_files = made.write(self.temp_dir, self.run_as)

    def tls_arguments(self) -> list[str]:
        """memcached's TLS options: those pifpaf passes for given files
        (``ssl_verify_mode=1``: a client certificate is asked for, and
        checked against ``ssl_ca_cert`` when one is sent); for the
        throw-away certificate, no client certificate is asked for."""
        if self.ssl_chain_cert:
            arguments = [
                "-Z",
                "-o",
                "ssl_verify_mode=1",
                "-o",
                "ssl_chain_cert=" + self.ssl_chain_cert,
            ]
            if self.ssl_key:
                arguments += ["-o", "ssl_key=" + self.ssl_key]
            if self.ssl_ca_cert:
                arguments += ["-o", "ssl_ca_cert=" + self.ssl_ca_cert]
            return arguments
        if self._tls_files is not None:
            files = self._tls_files
            return ["-Z", "-o", "ssl_chain_cert=" + files.cert, "-o", "ssl_key=" + files.key]
        return []

    def server_settings(self) -> dict[str, str]:
        return {
            "listen": self.requested_host,
            "port": str(self.port),
            "udp-port": "0",
            "memory-limit": str(self.memory),
            "threads": str(self.threads),
        }

    def command_line(self) -> list[str]:
        # The TLS options first: settings (``extended``) and args override them.
        return (
            [self.binary]
            + self.tls_arguments()
            + ["--%s=%s" % item for item in self.settings().items()]
        )

    def probe(self) -> Probe:
        # A certificate that does not verify (AdminError) fails at once.
        admin = typing.cast(MemcachedAdmin, self.admin)
        return probes.Callable(
            admin.answers, "version answered" + (" over TLS" if admin.tls else "")
        )

    def build_endpoint(self) -> Endpoint:
        endpoint = super().build_endpoint()
        if self.ssl_chain_cert:
            ca_cert, server_cert = self.ssl_ca_cert or self.ssl_chain_cert, self.ssl_chain_cert
        elif self._tls_files is not None:
            ca_cert, server_cert = self._tls_files.ca_cert, self._tls_files.cert
        else:
            return endpoint
        return endpoint.replace(extra={"tls": "1", "ca_cert": ca_cert, "server_cert": server_cert})

    # -- what tests use ------------------------------------------------------

    @property
    def key_prefix(self) -> str:
        return self.endpoint.key_prefix

    @property
    def ca_cert(self) -> str:
        """Over TLS, the file clients verify the server with: the throw-away
        CA, or ``ssl_ca_cert`` (else ``ssl_chain_cert``) when given; else
        ``""``."""
        return self.endpoint.extra.get("ca_cert", "")

    def tls_context(self) -> ssl.SSLContext:
        """A client context that verifies this server (its certificate and
        host name) with :attr:`ca_cert`: ``pymemcache``'s ``tls_context``."""
        if not self.ca_cert:
            raise MisuseError(
                self.daemon_name, "tls_context()", "this memcached does not use TLS (tls=True)"
            )
        return ssl.create_default_context(cafile=self.ca_cert)

    def command(self, line: str) -> str:
        """Send one text-protocol command; return the first reply line."""
        return typing.cast(MemcachedAdmin, self.admin).command(line)

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        if endpoint.extra.get("tls") != "1":
            return {}
        return {"TLS_ENABLED": "1", "CA_CERT": endpoint.extra.get("ca_cert", "")}

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        return "memcached://localhost:%d" % (endpoint.port or 0)


def _absolute(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


class MemcachedResource(DaemonResource):
    """A testresources manager sharing one :class:`MemcachedFixture`."""

    fixture_class = MemcachedFixture
