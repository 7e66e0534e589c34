"""Throw-away TLS certificates, for daemons that tests run over TLS.

A daemon started with TLS and no certificate of the user's gets a
certificate made for the test: a throw-away certificate authority
(:class:`Authority`) issues a server certificate for the daemon's
addresses (``127.0.0.1``, ``localhost``), and the fixture writes the CA's
certificate, the server's certificate and its key into its private temp
dir (:meth:`ServerCertificates.write`). Clients verify the server with
that CA file; nothing outside the test trusts it, and its key never
leaves this process's memory.

The certificates are made by the ``openssl`` command-line program (EC
P-256 keys, one ``openssl req`` run per certificate; see design.rst), so
no Python dependency is added. :func:`server_certificates` makes them once
per process and set of names, and every fixture of the process writes
the same bytes: a fixture after the first pays a few file writes, not two
``openssl`` runs (see :doc:`/daemons/memcached`, 'TLS', for the numbers).

Certificates the user gives are checked before the daemon starts
(:func:`check_readable`), so that a wrong path is a
:class:`CertificateError` naming the file, not a daemon that exits.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import shutil
import tempfile
import threading
import typing

from fixtures_daemons.base.binaries import Executable, find_executable
from fixtures_daemons.errors import CertificateError
from fixtures_daemons.process.commands import run_command
from fixtures_daemons.process.tempdirs import PREFIX, default_temp_root
from fixtures_daemons.process.users import RunAs

__all__ = [
    "OPENSSL",
    "DEFAULT_HOSTS",
    "CertificateError",
    "KeyPair",
    "Authority",
    "CertificateFiles",
    "ServerCertificates",
    "server_certificates",
    "check_readable",
]

#: The program that makes the certificates.
OPENSSL = Executable(
    names=("openssl",),
    packages={"Debian/Ubuntu": "openssl", "Homebrew": "openssl"},
    env_var="FIXTURES_DAEMONS_OPENSSL",
)
#: The names a throw-away server certificate is valid for by default.
DEFAULT_HOSTS = ("127.0.0.1", "localhost")
#: How long a throw-away certificate is valid, in days: a named daemon
#: (``reuse=``) can outlive a test run by days.
DEFAULT_DAYS = 30
#: How long one ``openssl`` run may take, in seconds.
OPENSSL_TIMEOUT = 30.0

# EC P-256: a key is made in well under a millisecond, where RSA-2048 takes
# tens of milliseconds (and sometimes hundreds).
_NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def check_readable(path: str, parameter: str, name: str = "") -> str:
    """``path`` made absolute, after checking that it is a regular file
    this process can read; else :class:`CertificateError` naming
    ``parameter`` (and the daemon ``name``)."""
    absolute = os.path.abspath(path)
    if not os.path.exists(absolute):
        raise CertificateError(name, parameter, absolute, "no such file")
    if not os.path.isfile(absolute):
        raise CertificateError(name, parameter, absolute, "not a regular file")
    if not os.access(absolute, os.R_OK):
        raise CertificateError(name, parameter, absolute, "not readable by this process")
    return absolute


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM, in memory."""

    certificate: bytes
    key: bytes


def _subject_alt_names(hosts: typing.Sequence[str]) -> str:
    names = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            names.append("DNS:" + host)
        else:
            names.append("IP:" + host)
    return ",".join(names)


def _openssl(arguments: typing.Sequence[str], directory: str, openssl: str) -> None:
    run_command([openssl, *arguments], "openssl", OPENSSL_TIMEOUT, cwd=directory)


class _Workspace:
    """A private dir for one ``openssl`` run's files, removed after it."""

    def __enter__(self) -> str:
        self.path = tempfile.mkdtemp(prefix=PREFIX + "certificates-", dir=default_temp_root())
        return self.path

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@dataclasses.dataclass(frozen=True)
class Authority:
    """A throw-away certificate authority, in memory.

    :param name: its common name.
    :param certificate: its certificate, PEM: what clients trust.
    :param key: its private key, PEM.
    """

    name: str
    certificate: bytes
    key: bytes = dataclasses.field(repr=False)

    @classmethod
    def create(
        cls,
        name: str = "fixtures-daemons throw-away CA",
        *,
        days: int = DEFAULT_DAYS,
        openssl: str | None = None,
    ) -> Authority:
        """A new authority (one ``openssl`` run); ``openssl`` is the
        program's path (default: found on PATH, or ``$FIXTURES_DAEMONS_OPENSSL``;
        :class:`~fixtures_daemons.ExecutableNotFound` naming the ``openssl``
        package when it is not installed)."""
        program = find_executable(OPENSSL, openssl, "openssl")
        with _Workspace() as work:
            _openssl(
                [
                    "req", "-x509", *_NEW_KEY,
                    "-keyout", "ca.key", "-out", "ca.pem",
                    "-subj", "/CN=" + name, "-days", str(days),
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                ],
                work,
                program,
            )  # fmt: skip
            return cls(
                name, _read(os.path.join(work, "ca.pem")), _read(os.path.join(work, "ca.key"))
            )

    def issue(
        self,
        hosts: typing.Sequence[str] = DEFAULT_HOSTS,
        *,
        days: int = DEFAULT_DAYS,
        openssl: str | None = None,
    ) -> KeyPair:
        """A certificate signed by this authority (one ``openssl`` run),
        valid for ``hosts`` (IP addresses and DNS names; the first is also
        its common name), for servers and clients alike."""
        if not hosts:
            raise ValueError("a certificate needs at least one host name or address")
        program = find_executable(OPENSSL, openssl, "openssl")
        with _Workspace() as work:
            for filename, data in (("ca.pem", self.certificate), ("ca.key", self.key)):
                descriptor = os.open(os.path.join(work, filename), os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(descriptor, "wb") as f:
                    f.write(data)
            _openssl(
                [
                    "req", "-x509", "-CA", "ca.pem", "-CAkey", "ca.key", *_NEW_KEY,
                    "-keyout", "cert.key", "-out", "cert.pem",
                    "-subj", "/CN=" + hosts[0][:64], "-days", str(days),
                    "-addext", "subjectAltName=" + _subject_alt_names(hosts),
                    "-addext", "basicConstraints=critical,CA:FALSE",
                    "-addext", "keyUsage=critical,digitalSignature",
                    "-addext", "extendedKeyUsage=serverAuth,clientAuth",
                ],
                work,
                program,
            )  # fmt: skip
            return KeyPair(
                _read(os.path.join(work, "cert.pem")), _read(os.path.join(work, "cert.key"))
            )


@dataclasses.dataclass(frozen=True)
class CertificateFiles:
    """Where a daemon's TLS files were written.

    :param ca_cert: the CA's certificate: what clients verify the server
        with (and what a daemon that checks client certificates trusts).
    :param cert: the server's certificate (its chain: the certificate alone,
        signed directly by the CA).
    :param key: the server's private key (mode 0600, owned by the daemon's
        user).
    """

    ca_cert: str
    cert: str
    key: str


@dataclasses.dataclass(frozen=True)
class ServerCertificates:
    """A CA certificate and a server certificate it issued, with its key,
    in memory; :meth:`write` puts them where a daemon reads them.

    :param hosts: the names the server certificate is valid for.
    """

    hosts: tuple[str, ...]
    ca_cert: bytes
    server: KeyPair

    @classmethod
    def create(
        cls, hosts: typing.Sequence[str] = DEFAULT_HOSTS, *, openssl: str | None = None
    ) -> ServerCertificates:
        """New ones: a new authority, and a server certificate for ``hosts``
        (two ``openssl`` runs)."""
        authority = Authority.create(openssl=openssl)
        return cls(tuple(hosts), authority.certificate, authority.issue(hosts, openssl=openssl))

    def write(
        self, directory: str, owner: RunAs | None = None, prefix: str = ""
    ) -> CertificateFiles:
        """Write ``<prefix>ca.pem``, ``<prefix>server.pem`` and
        ``<prefix>server.key`` into ``directory`` (the daemon's private temp
        dir); when we are root and the daemon runs as ``owner``, they are
        that user's, for daemons (PostgreSQL) that insist on owning their
        key. Existing files are replaced."""
        files = CertificateFiles(
            ca_cert=os.path.join(directory, prefix + "ca.pem"),
            cert=os.path.join(directory, prefix + "server.pem"),
            key=os.path.join(directory, prefix + "server.key"),
        )
        for path, data, mode in (
            (files.ca_cert, self.ca_cert, 0o644),
            (files.cert, self.server.certificate, 0o644),
            (files.key, self.server.key, 0o600),
        ):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(descriptor, "wb") as f:
                if owner is not None and os.geteuid() == 0:
                    os.fchown(f.fileno(), owner.uid, owner.gid)
                os.fchmod(f.fileno(), mode)
                f.write(data)
        return files


_cache: dict[tuple[tuple[str, ...], str], ServerCertificates] = {}
_cache_lock = threading.Lock()


def server_certificates(
    hosts: typing.Sequence[str] = DEFAULT_HOSTS, *, openssl: str | None = None
) -> ServerCertificates:
    """Throw-away certificates for a server reached as ``hosts``, made once
    per process (and per ``hosts`` and ``openssl``): the fixtures of one
    test process share one CA and one server certificate, which is what a
    test needs (each daemon has its own copy of the files) and saves two
    ``openssl`` runs per fixture."""
    key = (tuple(hosts), find_executable(OPENSSL, openssl, "openssl"))
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            found = _cache[key] = ServerCertificates.create(hosts, openssl=key[1])
        return found
