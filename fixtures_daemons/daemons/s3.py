"""An S3 endpoint: moto's server mode (``moto_server``), in memory.

moto keeps everything in memory: cleanUp kills it, and :meth:`S3Fixture.stopped`
brings it back empty (like a memcached restart). A fixture attached to a
shared server owns a bucket of its own (:class:`Bucket`), made on setUp
and removed with its objects on cleanUp.

The admin's readiness and flush requests are two plain HTTP requests to
our own moto (``GET /``, S3's ListBuckets; ``POST /moto-api/reset``,
moto's own API, which no S3 client has); what a namespace does to a
bucket goes through boto3, S3's client library (the ``s3`` extra).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import Namespace, random_name
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.errors import AdminError, ClientLibraryMissing, MisuseError
from fixtures_daemons.process.probes import Callable, Probe

__all__ = ["S3Fixture", "S3Resource", "S3Admin", "Bucket"]

#: What to install for boto3, the client the bucket operations use.
EXTRA = "fixtures-daemons[s3]"
#: The fake credentials: moto accepts any; these are the ones its
#: documentation uses, and they can never reach a real AWS account.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # noqa: S105 (fake: moto takes any)
DEFAULT_REGION = "us-east-1"
#: What S3 takes as a bucket name.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _http_host(host: str) -> str:
    return "[%s]" % host if ":" in host else host


def http_url(endpoint: Endpoint, host: str | None = None) -> str:
    """``http://host:port``: what S3 clients take as their endpoint URL."""
    return "http://%s:%d" % (_http_host(host or endpoint.host), endpoint.port or 0)


class S3Admin(Admin):
    """One of our moto servers: plain HTTP for readiness and flush, boto3
    for buckets.

    The endpoint's ``user`` and ``password`` are the access key and
    secret, ``extra["region"]`` the region.
    """

    def __init__(self, endpoint: Endpoint, name: str = "", timeout: float = 30.0) -> None:
        super().__init__(endpoint, name, timeout)
        self._client: typing.Any = None

    def request(self, method: str, path: str) -> bytes:
        """``method path`` without a body; the reply's body. A reply other
        than 2xx raises :class:`~fixtures_daemons.AdminError`; no
        connection (or no reply in time) raises :exc:`OSError`."""
        import http.client  # here: it would slow every CLI run

        endpoint = self.endpoint
        connection = http.client.HTTPConnection(
            _http_host(endpoint.host), endpoint.port or 0, timeout=min(self.timeout, 10.0)
        )
        try:
            connection.request(method, path)
            response = connection.getresponse()
            data = response.read()
        except http.client.HTTPException as exc:
            raise AdminError(self.name, "%s %s" % (method, path), repr(exc)) from exc
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            text = data.decode("utf-8", "replace").strip()[:500]
            raise AdminError(
                self.name, "%s %s" % (method, path), "HTTP %d: %s" % (response.status, text)
            )
        return data

    def answers(self) -> bool:
        """``GET /`` (S3's ListBuckets) answers with a bucket list."""
        try:
            return b"ListAllMyBucketsResult" in self.request("GET", "/")
        except (OSError, AdminError):
            return False

    def flush(self) -> None:
        """Every bucket (and everything else moto holds) gone: moto's reset."""
        self.request("POST", "/moto-api/reset")

    # -- buckets, through boto3 ------------------------------------------------

    def client(self) -> typing.Any:
        """A boto3 S3 client of the server (made once)."""
        if self._client is None:
            self._client = make_client(self.endpoint, self.name, self.timeout)
        return self._client

    def _call(self, what: str, operation: str, **kwargs: typing.Any) -> typing.Any:
        """The client's ``operation(**kwargs)``; what S3 refuses (or a
        connection that fails) raises :class:`~fixtures_daemons.AdminError`
        naming ``what``."""
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        client = self.client()
        try:
            if operation.startswith("paginate:"):
                paginator = client.get_paginator(operation.split(":", 1)[1])
                return list(paginator.paginate(**kwargs))
            return getattr(client, operation)(**kwargs)
        except ClientError as exc:
            raise AdminError(self.name, what, str(exc)) from None
        except BotoCoreError as exc:
            raise AdminError(self.name, what, "%s: %s" % (type(exc).__name__, exc)) from None

    def create_bucket(self, name: str) -> None:
        """Create the bucket ``name`` in the endpoint's region."""
        region = self.endpoint.extra.get("region", DEFAULT_REGION)
        kwargs: dict[str, typing.Any] = {"Bucket": name}
        if region != "us-east-1":  # S3 refuses us-east-1 as a location constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self._call("CreateBucket %s" % name, "create_bucket", **kwargs)

    def bucket_exists(self, name: str) -> bool:
        found = self._call("ListBuckets", "list_buckets")
        return any(bucket["Name"] == name for bucket in found.get("Buckets", []))

    def empty_bucket(self, name: str) -> int:
        """Delete every object (every version, every delete marker) and
        every unfinished multipart upload of ``name``; how many objects
        there were."""
        deleted = 0
        pages = self._call(
            "ListObjectVersions %s" % name, "paginate:list_object_versions", Bucket=name
        )
        for page in pages:
            keys = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for kind in ("Versions", "DeleteMarkers")
                for item in page.get(kind, [])
            ]
            for start in range(0, len(keys), 1000):
                batch = {"Objects": keys[start : start + 1000], "Quiet": True}
                self._call("DeleteObjects %s" % name, "delete_objects", Bucket=name, Delete=batch)
            deleted += len(page.get("Versions", []))
        uploads = self._call(
            "ListMultipartUploads %s" % name, "list_multipart_uploads", Bucket=name
        )
        for upload in uploads.get("Uploads", []):
            self._call(
                "AbortMultipartUpload %s" % name,
                "abort_multipart_upload",
                Bucket=name,
                Key=upload["Key"],
                UploadId=upload["UploadId"],
            )
        return deleted

    def drop_bucket(self, name: str) -> None:
        """Empty the bucket ``name`` and delete it, if it exists."""
        try:
            self.empty_bucket(name)
            self._call("DeleteBucket %s" % name, "delete_bucket", Bucket=name)
        except AdminError as exc:
            if "NoSuchBucket" not in exc.reason:
                raise


def make_client(endpoint: Endpoint, name: str = "s3", timeout: float = 30.0) -> typing.Any:
    """A boto3 S3 client of the server at ``endpoint``: its HTTP URL, its
    credentials and region, path-style addressing (``bucket.localhost``
    does not resolve everywhere); :class:`~fixtures_daemons.ClientLibraryMissing`
    without boto3."""
    try:
        import boto3.session  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]
    except ImportError:
        raise ClientLibraryMissing(name, "a boto3 client", "boto3", EXTRA) from None
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=http_url(endpoint),
        aws_access_key_id=endpoint.user or ACCESS_KEY_ID,
        aws_secret_access_key=endpoint.password or SECRET_ACCESS_KEY,
        region_name=endpoint.extra.get("region", DEFAULT_REGION),
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=min(timeout, 10.0),
            read_timeout=timeout,
            retries={"max_attempts": 1},
        ),
    )


class Bucket(Namespace):
    """A bucket of its own (``fxd-<random>``), made on setUp, emptied and
    deleted on cleanUp; ``reset()`` empties it. The endpoint's
    ``database`` names it (the URL's path).

    (The base's :class:`~fixtures_daemons.base.namespaces.Database` would
    do, but its random names, ``test_...``, are not valid bucket names.)
    """

    narrows = ("database",)

    def enter(self, endpoint: Endpoint) -> Endpoint:
        admin = typing.cast(S3Admin, self.fixture.admin)
        self.name = random_name("fxd-")
        admin.create_bucket(self.name)
        self.fixture.addCleanup(admin.drop_bucket, self.name)
        return endpoint.replace(database=self.name)

    def reset(self) -> None:
        typing.cast(S3Admin, self.fixture.admin).empty_bucket(self.name)


class S3Fixture(DaemonFixture):
    """An S3 endpoint, moto's server (``moto_server``, from PyPI:
    ``pip install 'moto[server]'``), on a reserved loopback port.

    It is ready when ``GET /`` answers S3's bucket list. moto keeps its
    data in memory: cleanUp kills it, and :meth:`stopped` brings it back
    empty (the ``bucket`` made again). ``moto_server`` is looked for
    beside the running Python first (the same virtualenv), then on PATH.
    moto accepts any credentials; the fixture's are fake ones
    (``testing``), exported with the endpoint so that boto3 works with the
    exported variables alone.

    :param bucket: a bucket to make once the server answers (and again
        after :meth:`reset` and :meth:`stopped`); its name is ``bucket``.
        An attached fixture gets a bucket of its own instead.
    :param region: the region clients use (exported as
        ``AWS_DEFAULT_REGION``); buckets are made in it.
    :param aws_env: also export boto3's own variables, unprefixed (the
        default): ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
        ``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL_S3``; False: only
        the prefixed names.

    Attributes: ``url`` (``s3://testing:testing@host:port[/bucket]``),
    ``http_url`` (``http://host:port``, what clients take as
    ``endpoint_url``), ``bucket`` (the attached fixture's own bucket, or
    the ``bucket`` parameter; ``""`` when none), ``access_key_id``,
    ``secret_access_key``, ``region``, and :meth:`client` (a boto3 client).
    """

    daemon_name = "s3"
    #: pifpaf's S3 daemons: moto speaks the same protocol, and ``-e PIFPAF``
    #: exports their variables too (see :meth:`pifpaf_raw_exports`).
    aliases = ("moto", "s3rver", "fakes3")
    executable = Executable(
        names=("moto_server",),
        packages={"PyPI": "moto[server]"},
        env_var="FIXTURES_DAEMONS_S3",
        beside_python=True,  # pip installs it into the test's virtualenv
        # moto_server has no --version: its help, which starts nothing (the
        # fixture's version() asks moto itself).
        version_args=("--help",),
    )
    # An HTTP server that runs whatever a test sends it: not as root.
    refuses_root = True
    stop_signal = signal.SIGKILL  # its data is in memory, thrown away
    restart_signal = signal.SIGKILL  # nothing to keep: it comes back empty anyway
    scheme = "s3"
    namespace = Bucket
    admin_class = S3Admin

    def __init__(
        self,
        *,
        bucket: str | None = None,
        region: str = DEFAULT_REGION,
        aws_env: bool = True,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        if bucket is not None and not _BUCKET_NAME.fullmatch(bucket):
            raise MisuseError(
                self.daemon_name,
                "%s(bucket=%r)" % (type(self).__name__, bucket),
                "not a valid S3 bucket name: 3 to 63 lowercase letters, digits, dots and "
                "hyphens, beginning and ending with a letter or digit",
            )
        self.requested_bucket = bucket
        self.region = region
        self.aws_env = aws_env

    def version(self) -> str:
        """moto's version, asked of the Python that runs ``moto_server``
        (``moto_server`` itself has no ``--version``)."""
        from fixtures_daemons.base.binaries import program_version

        return program_version(
            self.interpreter(), ("-c", "import moto; print('moto', moto.__version__)")
        )

    def interpreter(self) -> str:
        """The Python of ``moto_server``'s ``#!`` line (else ours)."""
        try:
            with open(self.binary, "rb") as f:
                first = f.readline(4096).decode("utf-8", "replace")
        except OSError:
            return sys.executable
        if first.startswith("#!"):
            words = first[2:].split()
            if words and os.path.basename(words[0]).startswith("python"):
                return words[0]
        return sys.executable

    # -- hooks -------------------------------------------------------------------

    def command_line(self) -> list[str]:
        return [self.binary, "--host", self.requested_host, "--port", str(self.port)]

    def process_environment(self) -> dict[str, str | None]:
        # Its own MOTO_PORT wins over --port in places (presigned URLs):
        # ours, not one inherited from an enclosing moto.
        return {"MOTO_PORT": str(self.port), "HOME": self.temp_dir}

    def probe(self) -> Probe:
        return Callable(self.admin.answers, "GET / answering a bucket list")

    def build_endpoint(self) -> Endpoint:
        return (
            super()
            .build_endpoint()
            .replace(
                user=ACCESS_KEY_ID,
                password=SECRET_ACCESS_KEY,
                database=self.requested_bucket or "",
                extra={"region": self.region},
            )
        )

    def started(self) -> None:
        if self.requested_bucket:
            typing.cast(S3Admin, self.admin).create_bucket(self.requested_bucket)

    def reset(self) -> None:
        """Empty what this fixture owns: every bucket of its own server (the
        ``bucket`` made again), or its own bucket in a shared one."""
        super().reset()
        if not self.attached:
            self.started()

    @contextlib.contextmanager
    def stopped(self) -> typing.Iterator[None]:
        """Stop moto for the with-block; it comes back empty (moto keeps
        nothing over a restart), with the ``bucket`` made again."""
        with super().stopped():
            yield
        self.started()

    # -- what tests use ------------------------------------------------------------

    @property
    def bucket(self) -> str:
        """This fixture's bucket: its own one when attached, else the
        ``bucket`` parameter; ``""`` when it has none."""
        return self.endpoint.database

    @property
    def http_url(self) -> str:
        return http_url(self.endpoint)

    @property
    def access_key_id(self) -> str:
        return self.endpoint.user

    @property
    def secret_access_key(self) -> str:
        return self.endpoint.password

    def client(self) -> typing.Any:
        """A new boto3 S3 client of this server (boto3 is the ``s3`` extra)."""
        return make_client(self.endpoint, self.daemon_name, self.timeout)

    # -- exports ---------------------------------------------------------------------

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        return {
            "HTTP_URL": http_url(endpoint),
            "BUCKET": endpoint.database,
            "ACCESS_KEY_ID": endpoint.user,
            "SECRET_ACCESS_KEY": endpoint.password,
            "REGION": endpoint.extra.get("region", DEFAULT_REGION),
        }

    def client_exports(self, endpoint: Endpoint) -> dict[str, str]:
        return aws_variables(endpoint) if self.aws_env else {}

    def pifpaf_url(self, endpoint: Endpoint) -> str:
        return "s3://localhost:%d" % (endpoint.port or 0)

    def pifpaf_raw_exports(self, endpoint: Endpoint, prefix: str) -> dict[str, str]:
        """pifpaf's ``s3rver`` and ``fakes3`` drivers' variables, both
        (the CLI does not tell the fixture which name it was run as):
        ``<PREFIX>_HTTP_URL``, ``<PREFIX>_S3RVER_PORT``,
        ``<PREFIX>_FAKES3_PORT``, and the ``<PREFIX>_<DAEMON>_URL`` that
        ``pifpaf run`` adds."""
        port = str(endpoint.port or 0)
        url = self.pifpaf_url(endpoint)
        env = {prefix + "_HTTP_URL": http_url(endpoint, "localhost")}
        for name in ("S3RVER", "FAKES3"):
            env["%s_%s_PORT" % (prefix, name)] = port
            env["%s_%s_URL" % (prefix, name)] = url
        return env


def aws_variables(endpoint: Endpoint) -> dict[str, str]:
    """boto3's (and the AWS CLI's) own variables for the server at
    ``endpoint``: with them alone, ``boto3.client("s3")`` talks to it."""
    return {
        "AWS_ACCESS_KEY_ID": endpoint.user or ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": endpoint.password or SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": endpoint.extra.get("region", DEFAULT_REGION),
        "AWS_ENDPOINT_URL_S3": http_url(endpoint),
    }


class S3Resource(DaemonResource):
    """A testresources manager sharing one :class:`S3Fixture`."""

    fixture_class = S3Fixture
