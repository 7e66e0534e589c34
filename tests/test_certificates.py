"""Throw-away TLS certificates (fixtures_daemons.base.certificates), checked
with real TLS handshakes between Python's ssl module on both ends."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import threading

import fixtures

from fixtures_daemons import CommandFailed, ExecutableNotFound
from fixtures_daemons.base import certificates
from fixtures_daemons.process.tempdirs import PREFIX, TMPDIR_ENV
from fixtures_daemons.process.users import RunAs
from tests import base, daemon_base


def handshake(pair: certificates.KeyPair, trusted: bytes, server_hostname: str) -> str:
    """A TLS handshake with a server presenting ``pair``, by a client that
    trusts ``trusted`` (PEM) and checks ``server_hostname``; the server's
    error text, or ``""`` when it worked. Raises the client's error."""
    work = fixtures.TempDir()
    work.setUp()
    try:
        cert, key = os.path.join(work.path, "c.pem"), os.path.join(work.path, "c.key")
        for path, data in ((cert, pair.certificate), (key, pair.key)):
            with open(path, "wb") as f:
                f.write(data)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(cert, key)
    finally:
        work.cleanUp()
    client_context = ssl.create_default_context(cadata=trusted.decode())
    ours, theirs = socket.socketpair()
    ours.settimeout(10)
    theirs.settimeout(10)
    server_error: list[str] = []

    def serve() -> None:
        try:
            with server_context.wrap_socket(theirs, server_side=True) as tls:
                tls.sendall(b"hello")
        except (OSError, ssl.SSLError) as exc:
            server_error.append(str(exc))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_context.wrap_socket(ours, server_hostname=server_hostname) as tls:
            assert tls.recv(5) == b"hello"
    finally:
        ours.close()
        thread.join(10)
        theirs.close()
    return "".join(server_error)


class TestCertificates(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        # Where the openssl runs' work dirs go: checked empty afterwards.
        self.root = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(TMPDIR_ENV, self.root))
        self.addCleanup(lambda: self.assertEqual([], os.listdir(self.root)))

    def test_issued_certificate_verifies_for_its_hosts(self) -> None:
        authority = certificates.Authority.create()
        pair = authority.issue(("127.0.0.1", "localhost", "::1"))
        for host in ("127.0.0.1", "localhost", "::1"):
            self.assertEqual("", handshake(pair, authority.certificate, host))
        # Not for a name it was not made for, and not for another CA.
        error = self.assertRaises(
            ssl.SSLCertVerificationError, handshake, pair, authority.certificate, "127.0.0.2"
        )
        self.assertIn("IP address mismatch", str(error))
        other = certificates.Authority.create()
        error = self.assertRaises(
            ssl.SSLCertVerificationError, handshake, pair, other.certificate, "localhost"
        )
        self.assertIn("unable to get local issuer certificate", str(error))

    def test_pem_and_repr(self) -> None:
        authority = certificates.Authority.create("a test CA")
        self.assertEqual("a test CA", authority.name)
        self.assertTrue(authority.certificate.startswith(b"-----BEGIN CERTIFICATE-----"))
        self.assertIn(b"PRIVATE KEY-----", authority.key)
        self.assertNotIn("PRIVATE", repr(authority))  # the key is not shown
        self.assertRaises(ValueError, authority.issue, ())

    def test_write(self) -> None:
        made = certificates.ServerCertificates.create(("localhost",))
        directory = self.useFixture(fixtures.TempDir()).path
        owner = None
        if daemon_base.IS_ROOT:
            nobody = daemon_base.NOBODY
            owner = RunAs(nobody.pw_name, nobody.pw_uid, nobody.pw_gid)
        files = made.write(directory, owner, prefix="x-")
        self.assertEqual(
            certificates.CertificateFiles(
                os.path.join(directory, "x-ca.pem"),
                os.path.join(directory, "x-server.pem"),
                os.path.join(directory, "x-server.key"),
            ),
            files,
        )
        uid = owner.uid if owner else os.geteuid()
        for path, data, mode in (
            (files.ca_cert, made.ca_cert, 0o644),
            (files.cert, made.server.certificate, 0o644),
            (files.key, made.server.key, 0o600),
        ):
            st = os.stat(path)
            self.assertEqual((mode, uid), (stat.S_IMODE(st.st_mode), st.st_uid), path)
            with open(path, "rb") as f:
                self.assertEqual(data, f.read())
        # Written again: replaced, not appended to.
        self.assertEqual(files, made.write(directory, owner, prefix="x-"))
        with open(files.key, "rb") as f:
            self.assertEqual(made.server.key, f.read())
        # What was written is what a server loads and a client verifies.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files.cert, files.key)
        self.assertEqual("", handshake(made.server, made.ca_cert, "localhost"))

    def test_made_once_per_process_and_hosts(self) -> None:
        one = certificates.server_certificates()
        self.assertIs(one, certificates.server_certificates(("127.0.0.1", "localhost")))
        other = certificates.server_certificates(("127.0.0.2",))
        self.assertIsNot(one, other)
        self.assertEqual(("127.0.0.2",), other.hosts)
        self.assertEqual("", handshake(other.server, other.ca_cert, "127.0.0.2"))

    def test_openssl_missing(self) -> None:
        for explicit, variable in ((None, "/nowhere/openssl"), ("/nowhere/openssl", None)):
            self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_OPENSSL", variable))
            error = self.assertRaises(
                ExecutableNotFound, certificates.Authority.create, openssl=explicit
            )
            self.assertEqual("/nowhere/openssl", error.executable)
            self.assertIn("Debian/Ubuntu: openssl", str(error))
            self.assertIn("FIXTURES_DAEMONS_OPENSSL", str(error))
            self.assertRaises(
                ExecutableNotFound, certificates.server_certificates, ("x",), openssl=explicit
            )

    def test_openssl_fails(self) -> None:
        scripts = self.useFixture(fixtures.TempDir()).path
        fake = os.path.join(scripts, "openssl")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho 'openssl failing on purpose'\nexit 3\n")
        os.chmod(fake, 0o755)
        error = self.assertRaises(CommandFailed, certificates.Authority.create, openssl=fake)
        self.assertEqual(3, error.returncode)
        self.assertEqual(fake, error.command[0])
        self.assertIn("openssl failing on purpose", str(error))
        self.assertEqual([], [n for n in os.listdir(self.root) if n.startswith(PREFIX)])

    def test_check_readable(self) -> None:
        directory = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(directory, "c.pem")
        with open(path, "w") as f:
            f.write("x")
        self.assertEqual(path, certificates.check_readable(path, "ssl_key"))
        self.useFixture(fixtures.MonkeyPatch("os.getcwd", lambda: directory))
        self.assertEqual(path, certificates.check_readable("c.pem", "ssl_key"))
        cases = [
            (os.path.join(directory, "missing"), "no such file"),
            (directory, "not a regular file"),
        ]
        if not daemon_base.IS_ROOT:
            os.chmod(path, 0)
            cases.append((path, "not readable by this process"))
        for bad, reason in cases:
            error = self.assertRaises(
                certificates.CertificateError, certificates.check_readable, bad, "ssl_key", "d"
            )
            self.assertEqual(("ssl_key", bad, reason), (error.parameter, error.path, error.reason))
            self.assertEqual("d: ssl_key=%s: %s" % (bad, reason), str(error))
