"""S3Fixture, with the real moto_server and boto3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import typing
from unittest import mock

import fixtures
from botocore.exceptions import ClientError, EndpointConnectionError  # type: ignore[import-untyped]

from fixtures_daemons import (
    AdminError,
    ClientLibraryMissing,
    DaemonFixture,
    ExecutableNotFound,
    MisuseError,
)
from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.daemons.s3 import S3Admin, S3Fixture
from fixtures_daemons.process.ports import PortFixture
from tests import daemon_base, test_cli

#: The bucket the contract's keys go to in a fixture without one of its own.
CONTRACT_BUCKET = "fxd-contract"

_clients: dict[str, typing.Any] = {}


def client(fixture: S3Fixture) -> typing.Any:
    """A boto3 client of ``fixture`` (one per server URL: making one is slow)."""
    key = "%s %s" % (fixture.http_url, fixture.access_key_id)
    if key not in _clients:
        _clients[key] = fixture.client()
    return _clients[key]


def bucket_of(fixture: S3Fixture) -> str:
    return fixture.bucket or CONTRACT_BUCKET


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class TestS3(daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase):
    daemon_class = S3Fixture
    # moto keeps its data in memory: stopped() brings it back empty.
    keeps_data_over_restart = False

    def write(self, fixture: S3Fixture, key: str, value: str) -> None:
        c = client(fixture)
        bucket = bucket_of(fixture)
        try:
            c.put_object(Bucket=bucket, Key=key, Body=value.encode())
        except ClientError as exc:
            if error_code(exc) != "NoSuchBucket" or fixture.bucket:
                raise
            c.create_bucket(Bucket=bucket)
            c.put_object(Bucket=bucket, Key=key, Body=value.encode())

    def read(self, fixture: S3Fixture, key: str) -> str | None:
        try:
            reply = client(fixture).get_object(Bucket=bucket_of(fixture), Key=key)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise
        return typing.cast(bytes, reply["Body"].read()).decode()

    def assertCannotConnect(self, fixture: S3Fixture) -> None:
        self.assertRaises(EndpointConnectionError, client(fixture).list_buckets)

    # -- S3 specifics ------------------------------------------------------------

    def test_urls_and_exports(self) -> None:
        daemon = self.useFixture(S3Fixture())
        own = "FIXTURES_DAEMONS_S3_"
        http_url = "http://127.0.0.1:%d" % daemon.port
        self.assertEqual("s3://testing:testing@127.0.0.1:%d" % daemon.port, daemon.url)
        self.assertEqual(http_url, daemon.http_url)
        self.assertEqual("", daemon.bucket)
        expected = {
            own + "HTTP_URL": http_url,
            own + "BUCKET": "",
            own + "ACCESS_KEY_ID": "testing",
            own + "SECRET_ACCESS_KEY": "testing",
            own + "REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": http_url,
        }
        for key, value in expected.items():
            self.assertEqual(value, daemon.env.get(key), key)
            self.assertEqual(value, os.environ.get(key), key)
        assert daemon.process is not None
        self.assertEqual(
            [daemon.binary, "--host", "127.0.0.1", "--port", str(daemon.port)],
            daemon.process.command,
        )
        self.assertTrue(daemon.version().startswith("moto "), daemon.version())

    def test_boto3_in_a_subprocess_with_the_exported_variables_only(self) -> None:
        daemon = self.useFixture(S3Fixture(bucket="from-env"))
        script = (
            "import boto3, sys\n"
            "c = boto3.client('s3')\n"
            "c.put_object(Bucket=sys.argv[1], Key='k', Body=b'from a subprocess')\n"
            "print(c.meta.endpoint_url)\n"
        )
        env = dict(daemon.env, PATH=os.environ.get("PATH", os.defpath))
        result = subprocess.run(
            [sys.executable, "-c", script, daemon.env["FIXTURES_DAEMONS_S3_BUCKET"]],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=daemon.temp_dir if os.access(daemon.temp_dir, os.X_OK) else "/",
        )
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual(daemon.http_url + "\n", result.stdout)
        self.assertEqual("from a subprocess", self.read(daemon, "k"))

    def test_bucket_parameter(self) -> None:
        daemon = self.useFixture(S3Fixture(bucket="my-bucket"))
        self.assertEqual("my-bucket", daemon.bucket)
        self.assertTrue(daemon.url.endswith("/my-bucket"), daemon.url)
        self.assertEqual("my-bucket", os.environ["FIXTURES_DAEMONS_S3_BUCKET"])
        c = client(daemon)
        c.create_bucket(Bucket="other")
        self.write(daemon, "key", "value")
        daemon.reset()  # every bucket gone, its own made again, empty
        names = [b["Name"] for b in c.list_buckets()["Buckets"]]
        self.assertEqual(["my-bucket"], names)
        self.assertIsNone(self.read(daemon, "key"))
        self.write(daemon, "key", "value")
        with daemon.stopped():
            self.assertCannotConnect(daemon)
        self.assertEqual(["my-bucket"], [b["Name"] for b in c.list_buckets()["Buckets"]])
        self.assertIsNone(self.read(daemon, "key"))

    def test_a_bucket_name_s3_refuses(self) -> None:
        for name in ("Upper", "ab", "under_score", "-dash", "x" * 64):
            error = self.assertRaises(MisuseError, S3Fixture, bucket=name)
            self.assertIn("not a valid S3 bucket name", str(error))

    def test_region(self) -> None:
        daemon = self.useFixture(S3Fixture(region="eu-west-3", bucket="in-paris"))
        self.assertEqual("eu-west-3", daemon.env["AWS_DEFAULT_REGION"])
        location = client(daemon).get_bucket_location(Bucket="in-paris")
        self.assertEqual("eu-west-3", location["LocationConstraint"])

    def test_aws_variables_unless_turned_off(self) -> None:
        daemon = self.useFixture(S3Fixture(env_prefix="FXDTEST"))
        self.assertEqual(daemon.http_url, daemon.env["FXDTEST_S3_HTTP_URL"])
        self.assertEqual(daemon.http_url, daemon.env["AWS_ENDPOINT_URL_S3"])
        self.assertEqual(daemon.http_url, os.environ["AWS_ENDPOINT_URL_S3"])
        off = self.useFixture(S3Fixture(aws_env=False))
        self.assertNotIn("AWS_ENDPOINT_URL_S3", off.env)
        self.assertEqual(daemon.http_url, os.environ["AWS_ENDPOINT_URL_S3"])

    def test_attached_bucket_is_emptied_and_removed(self) -> None:
        server = self.useFixture(S3Fixture(share=True))
        attached = self.startManually(S3Fixture())
        self.assertTrue(attached.attached)
        bucket = attached.bucket
        self.assertRegex(bucket, r"^fxd-[0-9a-f]{12}$")
        self.assertEqual(bucket, attached.env["FIXTURES_DAEMONS_S3_BUCKET"])
        self.assertTrue(attached.url.endswith("/" + bucket), attached.url)
        c = client(server)
        # A versioned bucket, with an old version and a delete marker.
        c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for body in (b"1", b"2"):
            c.put_object(Bucket=bucket, Key="k", Body=body)
        c.delete_object(Bucket=bucket, Key="k")
        c.create_multipart_upload(Bucket=bucket, Key="unfinished")
        attached.reset()
        versions = c.list_object_versions(Bucket=bucket)
        self.assertEqual([], versions.get("Versions", []) + versions.get("DeleteMarkers", []))
        self.assertEqual([], c.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
        c.put_object(Bucket=bucket, Key="k", Body=b"3")
        attached.cleanUp()
        self.assertNotIn(bucket, [b["Name"] for b in c.list_buckets()["Buckets"]])

    def test_admin(self) -> None:
        daemon = self.useFixture(S3Fixture())
        admin = typing.cast(S3Admin, daemon.admin)
        self.assertTrue(admin.answers())
        admin.create_bucket("made-here")
        self.assertTrue(admin.bucket_exists("made-here"))
        error = self.assertRaises(AdminError, admin.empty_bucket, "no-such-bucket")
        self.assertIn("ListObjectVersions no-such-bucket", str(error))
        self.assertIn("NoSuchBucket", str(error))
        error = self.assertRaises(AdminError, admin.request, "GET", "/no-such-bucket")
        self.assertIn("HTTP 404", str(error))
        admin.drop_bucket("made-here")
        admin.drop_bucket("made-here")  # gone already: nothing to do
        self.assertFalse(admin.bucket_exists("made-here"))

    def test_without_boto3(self) -> None:
        # boto3 is the s3 extra: a fixture that starts its own server and
        # makes no bucket works without it; what needs it says what to install.
        missing = {"boto3": None, "boto3.session": None, "botocore.config": None}
        with mock.patch.dict(sys.modules, missing):
            daemon = self.useFixture(S3Fixture())
            daemon.reset()
            error = self.assertRaises(ClientLibraryMissing, daemon.client)
            self.assertEqual("fixtures-daemons[s3]", error.extra)
            self.assertIn("pip install 'fixtures-daemons[s3]'", str(error))
            error = self.assertSetUpRaises(ClientLibraryMissing, S3Fixture(bucket="needs-boto3"))
            self.assertEqual("boto3", error.library)
        self.assertTrue(daemon.admin.answers())

    def test_moto_server_beside_python_first(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_S3"))
        beside = os.path.join(os.path.dirname(sys.executable), "moto_server")
        if not os.access(beside, os.X_OK):
            self.skipTest("moto_server is not beside %s" % sys.executable)
        # An empty PATH: found all the same.
        self.useFixture(fixtures.EnvironmentVariable("PATH", "/nonexistent"))
        self.assertEqual(beside, find_executable(S3Fixture.executable))
        # The parameter, then the variable, win.
        error = self.assertRaises(
            ExecutableNotFound, find_executable, S3Fixture.executable, "/x/moto_server"
        )
        self.assertIn("/x/moto_server", str(error))
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_S3", "/y/moto_server"))
        error = self.assertRaises(ExecutableNotFound, find_executable, S3Fixture.executable)
        self.assertIn("/y/moto_server", str(error))


class TestS3BadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = S3Fixture
    package = "moto[server]"
    rejected = {"args": ["--no-such-option"]}
    complaint = "unrecognized arguments: --no-such-option"
    crash_complaint = "moto_server crashing on purpose"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        # moto has no data to corrupt: a wrapper that crashes (killed by a
        # signal) before it answers.
        real = find_executable(S3Fixture.executable)
        wrapper = self.writeScript(
            self.scriptsDir(),
            "moto_server",
            "#!/bin/sh\necho 'moto_server crashing on purpose'\n"
            'kill -%d $$\nexec %s "$@"\n' % (signal.SIGKILL, real),
        )
        return S3Fixture(binary=wrapper, **kwargs)

    # moto_server has no Debian package: the error names the PyPI one. These
    # two are BadInputs' own, but for the packaging system's name.

    def assertNamesThePackage(self, error: ExecutableNotFound) -> None:
        self.assertIn("PyPI: %s" % self.package, str(error))
        self.assertEqual({"PyPI": "moto[server]"}, error.packages)

    def test_binary_missing(self) -> None:
        path = "/nonexistent/moto_server"
        error = self.assertSetUpRaises(ExecutableNotFound, self.make(binary=path))
        self.assertEqual(path, error.executable)
        self.assertIn(path, str(error))
        self.assertNamesThePackage(error)
        self.assertIn("FIXTURES_DAEMONS_S3", str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)

    def test_binary_variable_points_nowhere(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_S3", "/nowhere/daemon"))
        error = self.assertSetUpRaises(ExecutableNotFound, self.make())
        self.assertEqual("/nowhere/daemon", error.executable)
        self.assertEqual("FIXTURES_DAEMONS_S3", error.env_var)
        self.assertNamesThePackage(error)
        self.assertNothingLeft(self.temp_root, self.tagged)


class TestS3Pifpaf(test_cli.CliTestCase):
    """``-e PIFPAF`` exports what ``pifpaf run s3rver`` and ``pifpaf run
    fakes3`` do. Neither program is here (s3rver is Node's, fakes3 Ruby's):
    pifpaf's real drivers run a stand-in of each that prints the line the
    driver waits for and runs moto_server on the driver's port."""

    environments = test_cli.TestPifpafCompatibility.environments
    normalise = staticmethod(test_cli.TestPifpafCompatibility.normalise)
    assertSameExports = test_cli.TestPifpafCompatibility.assertSameExports

    STAND_INS = {
        "s3rver": "S3rver listening on",
        "fakes3": "INFO  WEBrick::HTTPServer#start: pid=$$",
    }

    def standIn(self, name: str) -> None:
        """A ``name`` program on PATH that pifpaf's driver takes for it."""
        moto = find_executable(S3Fixture.executable, S3Fixture().requested_binary)
        directory = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(
                "#!/bin/sh\n"
                'while [ $# -gt 0 ]; do [ "$1" = --port ] && port=$2; shift; done\n'
                "echo '%s'\n"
                'exec %s --port "$port"\n' % (self.STAND_INS[name], moto)
            )
        os.chmod(path, 0o755)
        self.useFixture(
            fixtures.EnvironmentVariable("PATH", directory + os.pathsep + os.environ["PATH"])
        )

    def check(self, name: str) -> None:
        self.pifpaf = self.pifpafCommand()
        self.standIn(name)
        port = str(self.useFixture(PortFixture()).port)
        theirs, ours = self.environments(name, ["--port", port], [])
        self.assertEqual("s3://localhost:{port}", theirs["PIFPAF_URL"])
        self.assertEqual("http://localhost:{port}", theirs["PIFPAF_HTTP_URL"])
        self.assertEqual("{port}", theirs["PIFPAF_%s_PORT" % name.upper()])
        self.assertEqual(name, ours["PIFPAF_DAEMON"])  # as typed, as pifpaf has it
        self.assertSameExports(theirs, ours)

    def test_s3rver(self) -> None:
        self.check("s3rver")

    def test_fakes3(self) -> None:
        self.check("fakes3")

    def test_boto3_under_run(self) -> None:
        script = (
            "import boto3\n"
            "c = boto3.client('s3')\n"
            "c.create_bucket(Bucket='under-run')\n"
            "c.put_object(Bucket='under-run', Key='k', Body=b'hello')\n"
            "print(c.get_object(Bucket='under-run', Key='k')['Body'].read().decode())\n"
        )
        result = self.cli("run", "s3", "--", sys.executable, "-c", script)
        self.assertStatus(0, result)
        self.assertEqual("hello\n", result.stdout)

    def test_aliases(self) -> None:
        for alias in ("moto", "s3rver", "fakes3"):
            result = self.cli("run", alias, "--", "sh", "-c", "echo $FIXTURES_DAEMONS_DAEMON")
            self.assertStatus(0, result)
            self.assertEqual("s3\n", result.stdout)
