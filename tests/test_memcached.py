"""MemcachedFixture, with the real memcached and pymemcache; over TLS too."""

from __future__ import annotations

import functools
import json
import os
import signal
import ssl
import sys
import typing

import fixtures
from pymemcache.client.base import Client  # type: ignore[import-untyped]
from pymemcache.exceptions import MemcacheUnexpectedCloseError  # type: ignore[import-untyped]

from fixtures_daemons import (
    AdminError,
    DaemonExited,
    DaemonFixture,
    Endpoint,
    ExecutableNotFound,
    MemcachedFixture,
    MisuseError,
)
from fixtures_daemons.base import certificates
from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.daemons.memcached import MemcachedAdmin
from fixtures_daemons.process.users import RunAs
from tests import daemon_base, test_cli


def client(daemon: MemcachedFixture, host: str | None = None) -> Client:
    """A pymemcache client of ``daemon``; over TLS when it speaks TLS,
    verifying it with the CA it exports."""
    context = daemon.tls_context() if daemon.ca_cert else None
    return Client(
        (host or daemon.host, daemon.port), connect_timeout=10, timeout=10, tls_context=context
    )


class TestMemcached(
    daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    daemon_class = MemcachedFixture
    # Documented: like a real memcached restart, stopped() brings it back empty.
    keeps_data_over_restart = False

    def write(self, fixture: MemcachedFixture, key: str, value: str) -> None:
        c = client(fixture)
        try:
            self.assertTrue(c.set(key, value, noreply=False))
        finally:
            c.close()

    def read(self, fixture: MemcachedFixture, key: str) -> str | None:
        c = client(fixture)
        try:
            value = c.get(key)
        finally:
            c.close()
        return None if value is None else value.decode()

    def assertCannotConnect(self, fixture: MemcachedFixture) -> None:
        c = client(fixture)
        try:
            self.assertRaises(ConnectionRefusedError, c.version)
        finally:
            c.close()

    # -- memcached specifics ---------------------------------------------------

    def test_url(self) -> None:
        daemon = self.useFixture(MemcachedFixture())
        self.assertEqual("memcached://127.0.0.1:%d" % daemon.port, daemon.url)
        self.assertEqual(str(daemon.port), daemon.env["FIXTURES_DAEMONS_MEMCACHED_PORT"])

    def test_memory_and_threads(self) -> None:
        daemon = self.useFixture(MemcachedFixture(memory=8, threads=3))
        c = client(daemon)
        try:
            stats = c.stats()
        finally:
            c.close()
        self.assertEqual(8 * 1024 * 1024, stats[b"limit_maxbytes"])
        self.assertEqual(3, stats[b"threads"])

    def test_no_udp(self) -> None:
        daemon = self.useFixture(MemcachedFixture())
        kinds = {kind for _, _, kind in daemon_base.listening_addresses(daemon_base.pid_of(daemon))}
        self.assertEqual({"tcp"}, kinds)

    def test_command_helper(self) -> None:
        daemon = self.useFixture(MemcachedFixture())
        self.assertTrue(daemon.command("version").startswith("VERSION "))
        self.write(daemon, "key", "value")
        self.assertEqual("OK", daemon.command("flush_all"))
        self.assertIsNone(self.read(daemon, "key"))


class TestMemcachedBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = MemcachedFixture
    package = "memcached"
    rejected = {"settings": {"no-such-option": "1"}}
    complaint = "unrecognized option '--no-such-option=1'"
    crash_complaint = "memcached crashing on purpose"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        # memcached has no data to corrupt: a wrapper that starts it and
        # crashes (killed by a signal) before it answers.
        real = find_executable(MemcachedFixture.executable)
        wrapper = self.writeScript(
            self.scriptsDir(),
            "memcached",
            "#!/bin/sh\necho 'memcached crashing on purpose'\n"
            'kill -%d $$\nexec %s "$@"\n' % (signal.SIGKILL, real),
        )
        return MemcachedFixture(binary=wrapper, **kwargs)

    def test_killed_by_a_signal(self) -> None:
        error = self.assertSetUpRaises(DaemonExited, self.broken(temp_root=self.temp_root))
        self.assertEqual(-signal.SIGKILL, error.returncode)
        self.assertIn("killed by signal %d" % signal.SIGKILL, str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)


# -- TLS -----------------------------------------------------------------------


class TlsMemcachedFixture(MemcachedFixture):
    """MemcachedFixture with ``tls=True`` by default, so that the contracts
    (which make fixtures of ``daemon_class``) run over TLS."""

    def __init__(self, *, tls: bool = True, **kwargs: typing.Any) -> None:
        super().__init__(tls=tls, **kwargs)


class TestMemcachedTls(TestMemcached):
    """Every contract again, over TLS with a throw-away certificate: the
    clients, the readiness probe, reset, attaching (the admin speaks TLS)."""

    daemon_class = TlsMemcachedFixture

    def test_url(self) -> None:
        # The URL is pifpaf's and pymemcache has none: TLS is told apart by
        # TLS_ENABLED and CA_CERT, as pifpaf's MEMCACHED_TLS_ENABLED does.
        daemon = self.useFixture(self.make())
        self.assertEqual("memcached://127.0.0.1:%d" % daemon.port, daemon.url)
        self.assertTrue(daemon.tls_enabled)
        own = "FIXTURES_DAEMONS_MEMCACHED_"
        self.assertEqual("1", daemon.env[own + "TLS_ENABLED"])
        self.assertEqual(daemon.ca_cert, daemon.env[own + "CA_CERT"])
        self.assertEqual(daemon.ca_cert, os.environ[own + "CA_CERT"])
        self.assertEqual(daemon.path("ca.pem"), daemon.ca_cert)
        self.assertEqual(
            sorted(["ca.pem", "server.pem", "server.key", "memcached.log"]),
            sorted(os.listdir(daemon.temp_dir)),
        )
        key = os.stat(daemon.path("server.key"))
        self.assertEqual((0o600, self.expectedUser(daemon)), (key.st_mode & 0o777, key.st_uid))
        self.assertEqual("", self.useFixture(MemcachedFixture()).ca_cert)

    def test_plain_client_refused(self) -> None:
        daemon = self.useFixture(self.make())
        plain = Client((daemon.host, daemon.port), connect_timeout=10, timeout=10)
        try:
            # Reset, or closed: memcached drops what is not a TLS handshake.
            self.assertRaises(
                (OSError, MemcacheUnexpectedCloseError), plain.set, "k", "v", 0, False
            )
        finally:
            plain.close()
        self.write(daemon, "key", "value")  # and it still serves TLS clients

    def test_ca_verifies_the_server(self) -> None:
        daemon = self.useFixture(self.make())
        self.write(daemon, "key", "value")
        # The name checked is the one connected to: both are in the certificate.
        self.assertEqual("value", self.read_at(daemon, "localhost", "key"))
        context = daemon.tls_context()
        self.assertTrue(context.check_hostname)
        self.assertEqual(ssl.CERT_REQUIRED, context.verify_mode)
        # Another CA, or the system's, does not verify it.
        other = certificates.Authority.create()
        for untrusting in (
            ssl.create_default_context(cadata=other.certificate.decode()),
            ssl.create_default_context(),
        ):
            c = Client((daemon.host, daemon.port), connect_timeout=10, timeout=10,
                       tls_context=untrusting)  # fmt: skip
            try:
                self.assertRaises(ssl.SSLCertVerificationError, c.get, "key")
            finally:
                c.close()

    def read_at(self, daemon: MemcachedFixture, host: str, key: str) -> str | None:
        c = client(daemon, host)
        try:
            value = c.get(key)
        finally:
            c.close()
        return None if value is None else value.decode()

    def test_certificates_made_once_per_process(self) -> None:
        one = self.useFixture(self.make())
        two = self.useFixture(self.make(mode="spawn"))
        with open(one.ca_cert, "rb") as a, open(two.ca_cert, "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertIs(certificates.server_certificates(), certificates.server_certificates())

    def test_admin_refuses_a_server_it_cannot_verify(self) -> None:
        daemon = self.useFixture(self.make())
        self.assertTrue(daemon.admin.answers())
        other = self.useFixture(fixtures.TempDir()).path
        wrong = certificates.ServerCertificates.create().write(other)
        endpoint = daemon.server_endpoint.replace(extra={"tls": "1", "ca_cert": wrong.ca_cert})
        admin = MemcachedAdmin(endpoint, "memcached", timeout=5)
        error = self.assertRaises(AdminError, admin.answers)
        self.assertIn(wrong.ca_cert, str(error))
        self.assertIn("does not verify against", str(error))

    def test_plain_fixture_attached_to_a_tls_server(self) -> None:
        # What the state variable says wins: the attached fixture speaks TLS.
        server = self.useFixture(self.make(share=True))
        attached = self.useFixture(MemcachedFixture(mode="attach"))
        self.assertEqual(server.ca_cert, attached.ca_cert)
        self.assertEqual("1", attached.env["FIXTURES_DAEMONS_MEMCACHED_TLS_ENABLED"])
        self.put(attached, "key", "value")
        self.assertEqual("value", self.get(attached, "key"))


def _daemon_user() -> tuple[int, int]:
    """The uid and gid memcached runs as in these tests."""
    if daemon_base.IS_ROOT:
        return daemon_base.NOBODY.pw_uid, daemon_base.NOBODY.pw_gid
    return os.geteuid(), os.getegid()


@functools.cache
def _user_certificates() -> certificates.ServerCertificates:
    """Certificates "of the user's": another CA than the fixtures' own."""
    return certificates.ServerCertificates.create(("127.0.0.1",))


class GivenFiles(fixtures.Fixture):
    """A user's certificate files, in a dir memcached's user can read."""

    def _setUp(self) -> None:
        self.dir = self.useFixture(fixtures.TempDir()).path
        os.chmod(self.dir, 0o755)
        owner = None
        if daemon_base.IS_ROOT:
            owner = RunAs("nobody", *_daemon_user())
        self.files = _user_certificates().write(self.dir, owner, prefix="user-")


class TestMemcachedTlsFiles(daemon_base.DaemonTestCase):
    """``ssl_chain_cert``, ``ssl_key`` and ``ssl_ca_cert``, as pifpaf's."""

    def setUp(self) -> None:
        super().setUp()
        self.temp_root = self.ownTempRoot()
        self.tagged = self.taggedPids()
        self.given = self.useFixture(GivenFiles()).files

    def make(self, **kwargs: typing.Any) -> MemcachedFixture:
        kwargs.setdefault("temp_root", self.temp_root)
        return MemcachedFixture(mode="spawn", **kwargs)

    def test_given_files_used_as_given(self) -> None:
        given = self.given
        daemon = self.startManually(
            self.make(ssl_chain_cert=given.cert, ssl_key=given.key, ssl_ca_cert=given.ca_cert)
        )
        self.assertTrue(daemon.tls_enabled)
        assert daemon.process is not None
        command = daemon.process.command
        for option in (
            "ssl_verify_mode=1",
            "ssl_chain_cert=" + given.cert,
            "ssl_key=" + given.key,
            "ssl_ca_cert=" + given.ca_cert,
        ):
            self.assertIn(option, command)
        self.assertEqual("-Z", command[1])
        self.assertEqual(["memcached.log"], os.listdir(daemon.temp_dir))  # nothing made
        self.assertEqual(given.ca_cert, daemon.ca_cert)
        self.assertEqual(given.ca_cert, daemon.env["FIXTURES_DAEMONS_MEMCACHED_CA_CERT"])
        # The server presents the given certificate, which the given CA verifies.
        c = client(daemon)
        try:
            self.assertTrue(c.set("key", "value", noreply=False))
            self.assertEqual(b"value", c.get("key"))
            peer = c.sock.getpeercert(binary_form=True)
        finally:
            c.close()
        with open(given.cert) as f:
            self.assertEqual(ssl.PEM_cert_to_DER_cert(f.read()), peer)
        self.assertTrue(daemon.command("version").startswith("VERSION "))
        # ssl_ca_cert checks the client certificates that are sent
        # (ssl_verify_mode=1): one of its own passes, another CA's does not.
        for certificate, accepted in (
            (_user_certificates().server, True),
            (certificates.ServerCertificates.create().server, False),
        ):
            context = daemon.tls_context()
            own = self.useFixture(fixtures.TempDir()).path
            for name, data in (("c.pem", certificate.certificate), ("c.key", certificate.key)):
                with open(os.path.join(own, name), "wb") as f:
                    f.write(data)
            context.load_cert_chain(os.path.join(own, "c.pem"), os.path.join(own, "c.key"))
            c = Client((daemon.host, daemon.port), connect_timeout=10, timeout=10,
                       tls_context=context)  # fmt: skip
            try:
                if accepted:
                    self.assertIsNone(c.get("missing"))
                else:
                    self.assertRaises((OSError, MemcacheUnexpectedCloseError), c.get, "missing")
            finally:
                c.close()
        self.assertCleanedUp(daemon)
        self.assertTrue(os.path.exists(given.key))  # the user's files stay

    def test_chain_and_key_only(self) -> None:
        # No CA given: the admin trusts the server's own certificate, and so
        # does what ca_cert names.
        daemon = self.useFixture(self.make(ssl_chain_cert=self.given.cert, ssl_key=self.given.key))
        assert daemon.process is not None
        self.assertFalse([a for a in daemon.process.command if a.startswith("ssl_ca_cert")])
        self.assertEqual(self.given.cert, daemon.ca_cert)
        self.assertEqual("OK", daemon.command("flush_all"))
        daemon.reset()

    def test_relative_paths_are_the_callers(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("os.getcwd", lambda: "/somewhere"))
        fixture = MemcachedFixture(ssl_chain_cert="c.pem", ssl_key="k.pem")
        self.assertEqual(
            ("/somewhere/c.pem", "/somewhere/k.pem"), (fixture.ssl_chain_cert, fixture.ssl_key)
        )

    def test_missing_or_unusable_file(self) -> None:
        missing = os.path.join(self.temp_root, "missing.pem")
        for kwargs, parameter, path, reason in (
            ({"ssl_chain_cert": missing}, "ssl_chain_cert", missing, "no such file"),
            (
                {"ssl_chain_cert": self.given.cert, "ssl_key": missing},
                "ssl_key",
                missing,
                "no such file",
            ),
            (
                {"ssl_chain_cert": self.given.cert, "ssl_ca_cert": self.temp_root},
                "ssl_ca_cert",
                self.temp_root,
                "not a regular file",
            ),
        ):
            error = self.assertSetUpRaises(certificates.CertificateError, self.make(**kwargs))
            self.assertEqual((parameter, path), (error.parameter, error.path))
            self.assertIn("%s=%s: %s" % (parameter, path, reason), str(error))
            self.assertNothingLeft(self.temp_root, self.tagged)

    def test_key_that_does_not_match(self) -> None:
        daemon = self.make(ssl_chain_cert=self.given.cert, ssl_key=self.wrongKey())
        error = self.assertSetUpRaises(DaemonExited, daemon)
        self.assertIn("key values mismatch", error.log_tail)
        self.assertNothingLeft(self.temp_root, self.tagged, daemon.ports.get("main"))

    def wrongKey(self) -> str:
        path = os.path.join(os.path.dirname(self.given.key), "wrong.key")
        with open(path, "wb") as f:
            f.write(certificates.server_certificates().server.key)
        os.chmod(path, 0o644)
        return path

    def test_key_closed_to_the_daemon_user(self) -> None:
        if not daemon_base.IS_ROOT:
            self.skipTest("only when the daemon runs as another user")
        os.chown(self.given.key, 0, 0)
        daemon = self.make(ssl_chain_cert=self.given.cert, ssl_key=self.given.key)
        error = self.assertSetUpRaises(DaemonExited, daemon)
        self.assertIn("Error loading the key: %s" % self.given.key, error.log_tail)
        self.assertNothingLeft(self.temp_root, self.tagged, daemon.ports.get("main"))

    def test_key_or_ca_without_a_chain(self) -> None:
        for parameter in ("ssl_key", "ssl_ca_cert"):
            error = self.assertRaises(MisuseError, MemcachedFixture, **{parameter: self.given.key})
            self.assertIn("%s needs ssl_chain_cert" % parameter, str(error))

    def test_openssl_missing(self) -> None:
        self.useFixture(
            fixtures.EnvironmentVariable("FIXTURES_DAEMONS_OPENSSL", "/nowhere/openssl")
        )
        error = self.assertSetUpRaises(ExecutableNotFound, self.make(tls=True))
        self.assertEqual("/nowhere/openssl", error.executable)
        self.assertIn("Debian/Ubuntu: openssl", str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)

    def test_tls_context_without_tls(self) -> None:
        daemon = self.useFixture(self.make())
        self.assertRaises(MisuseError, daemon.tls_context)


#: Sets and gets a key over TLS, verifying the server with the CA file the
#: CLI exported; exits non-zero otherwise.
TLS_CLIENT = (
    "import os, ssl; from pymemcache.client.base import Client; "
    "e = os.environ; p = 'FIXTURES_DAEMONS_MEMCACHED_'; "
    "c = Client((e[p + 'HOST'], int(e[p + 'PORT'])), timeout=10, "
    "tls_context=ssl.create_default_context(cafile=e[p + 'CA_CERT'])); "
    "assert e[p + 'TLS_ENABLED'] == '1'; c.set('k', 'v'); assert c.get('k') == b'v'"
)


class TestMemcachedTlsCli(test_cli.CliTestCase):
    """``fixtures-daemons run memcached`` with TLS options."""

    def test_run_with_a_throw_away_certificate(self) -> None:
        result = self.cli("run", "memcached", "--tls", "--", sys.executable, "-c", TLS_CLIENT)
        self.assertStatus(0, result)

    def test_run_with_given_files(self) -> None:
        given = self.useFixture(GivenFiles()).files
        env = self.runDump(
            "run", "memcached", "--ssl-chain-cert", given.cert, "--ssl-key", given.key,
            "--ssl-ca-cert", given.ca_cert,
        )  # fmt: skip
        self.assertEqual("1", env["FIXTURES_DAEMONS_MEMCACHED_TLS_ENABLED"])
        self.assertEqual(given.ca_cert, env["FIXTURES_DAEMONS_MEMCACHED_CA_CERT"])
        state = json.loads(env["FIXTURES_DAEMONS_MEMCACHED_STATE"])
        endpoint = Endpoint.from_dict(state["endpoint"])
        self.assertEqual(given.cert, endpoint.extra["server_cert"])

    def test_pifpaf_exports_with_ssl_options(self) -> None:
        if daemon_base.IS_ROOT:
            self.skipTest("pifpaf's memcached driver cannot run as root (memcached needs -u)")
        compat = test_cli.TestPifpafCompatibility
        try:
            import pifpaf  # noqa: F401
        except ImportError:
            self.skipTest("pifpaf is not installed: nothing to compare with")
        self.pifpaf = self.pifpafCommand()
        given = self.useFixture(GivenFiles()).files
        files = [
            "--ssl_chain_cert",
            given.cert,
            "--ssl_key",
            given.key,
            "--ssl_ca_cert",
            given.ca_cert,
        ]
        port = str(self.useFixture(test_cli.PortFixture()).port)
        theirs, ours = compat.environments(
            self,  # type: ignore[arg-type]
            "memcached",
            ["--port", port, *files],
            [a.replace("_", "-") if a.startswith("--") else a for a in files],
        )
        self.assertEqual("1", theirs["PIFPAF_MEMCACHED_TLS_ENABLED"])
        compat.assertSameExports(self, theirs, ours)  # type: ignore[arg-type]
        self.assertEqual(given.ca_cert, ours["PIFPAF_MEMCACHED_CA_CERT"])

    normalise = staticmethod(test_cli.TestPifpafCompatibility.normalise)
