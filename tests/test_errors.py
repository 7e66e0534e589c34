"""The error classes: useful messages, and str() that never raises."""

from __future__ import annotations

import pickle
import typing

from fixtures_daemons import errors
from tests import base


class EvilError(Exception):
    """Carries the object that raised it, so even its repr() raises."""


class Evil:
    """An attribute value on which everything formatting may call raises."""

    def _raise(self, *args: object) -> typing.NoReturn:
        raise EvilError(self)

    __str__ = __repr__ = __format__ = __bool__ = __len__ = __iter__ = _raise
    __int__ = __index__ = __float__ = __lt__ = __neg__ = __getitem__ = _raise


GARBAGE: list[object] = [
    None,
    Evil(),
    object(),
    3.5,
    -7,
    float("nan"),
    b"bytes \xff",
    "",
    "x" * 10000,
    ["a list", Evil()],
    {"a": Evil(), Evil(): "b"},
    (Evil(),),
]

#: One well-formed instance of every error class.
SAMPLES: dict[type[errors.DaemonError], typing.Callable[[], errors.DaemonError]] = {
    errors.DaemonError: lambda: errors.DaemonError("db", "it broke", "line 1\nline 2"),
    errors.ExecutableNotFound: lambda: errors.ExecutableNotFound(
        "postgresql",
        "postgres",
        ["/usr/bin", "/usr/lib/postgresql/16/bin"],
        {"Debian/Ubuntu": "postgresql", "Homebrew": "postgresql@16"},
        "FIXTURES_DAEMONS_POSTGRES",
    ),
    errors.StartupTimeout: lambda: errors.StartupTimeout(
        "redis", "TCP connect to 127.0.0.1:6379", 2.5, "loading dataset"
    ),
    errors.DaemonExited: lambda: errors.DaemonExited(
        "mysqld", 1, ["mysqld", "--datadir", "/tmp/x"], "[ERROR] Aborting"
    ),
    errors.DaemonDied: lambda: errors.DaemonDied(
        "redis", -11, ["redis-server", "redis.conf"], "# Redis is starting"
    ),
    errors.PortUnavailable: lambda: errors.PortUnavailable(
        "memcached", "127.0.0.1", 11211, "held by pid 42 (memcached)"
    ),
    errors.DisplayUnavailable: lambda: errors.DisplayUnavailable("xvfb", 1234, "X server pid 42"),
    errors.TempDirError: lambda: errors.TempDirError("pg", "/srv/tmp", "Permission denied"),
    errors.UserError: lambda: errors.UserError("pg", "postgres", "no such user on this machine"),
    errors.CommandFailed: lambda: errors.CommandFailed(
        "pg", ["initdb", "-D", "/tmp/data"], 1, "initdb: error: directory exists"
    ),
    errors.StateError: lambda: errors.StateError("FXD_REDIS_STATE", "not JSON (bad char)"),
    errors.AttachError: lambda: errors.AttachError("redis", "FXD_REDIS_STATE", "pid 42 is gone"),
    errors.ServerError: lambda: errors.ServerError(
        "postgresql", "server=", "postgresql://app:***@db/postgres", "TLS failed", "check sslmode"
    ),
    errors.MisuseError: lambda: errors.MisuseError("redis", "RedisFixture.url", "not set up"),
    errors.NotOwnedError: lambda: errors.NotOwnedError(
        "redis", "RedisFixture.stopped()", "it did not start its daemon"
    ),
    errors.DefinitionError: lambda: errors.DefinitionError("MyFixture", "probe()", "a Probe"),
    errors.CertificateError: lambda: errors.CertificateError(
        "memcached", "ssl_key", "/x.pem", "no such file"
    ),
    errors.ClientLibraryMissing: lambda: errors.ClientLibraryMissing(
        "zookeeper", "create /test_x", "kazoo", "fixtures-daemons[zookeeper]"
    ),
    errors.AdminError: lambda: errors.AdminError(
        "pg", "CREATE DATABASE x", 'ERROR: database "x" already exists'
    ),
}

#: What each sample's message must say.
EXPECTED = {
    errors.DaemonError: ["db: it broke", "line 1", "line 2"],
    errors.ExecutableNotFound: [
        "postgresql:",
        "'postgres' not found",
        "/usr/lib/postgresql/16/bin",
        "Debian/Ubuntu: postgresql",
        "Homebrew: postgresql@16",
        "FIXTURES_DAEMONS_POSTGRES",
    ],
    errors.StartupTimeout: ["redis:", "2.5 s", "TCP connect to 127.0.0.1:6379", "loading dataset"],
    errors.DaemonExited: ["mysqld:", "exited with code 1", "mysqld --datadir /tmp/x", "Aborting"],
    errors.DaemonDied: ["redis:", "killed by signal 11 while in use", "redis.conf", "is starting"],
    errors.PortUnavailable: ["memcached:", "port 11211 on 127.0.0.1", "held by pid 42"],
    errors.DisplayUnavailable: ["xvfb:", "display :1234 is taken", "leave display unset"],
    errors.TempDirError: ["pg:", "/srv/tmp", "Permission denied", "FIXTURES_DAEMONS_TMPDIR"],
    errors.UserError: ["pg:", "'postgres'", "no such user"],
    errors.CommandFailed: ["pg:", "initdb -D /tmp/data exited with code 1", "directory exists"],
    errors.StateError: ["FXD_REDIS_STATE does not describe a daemon", "not JSON", "unset it"],
    errors.AttachError: ["redis:", "FXD_REDIS_STATE", "pid 42 is gone", "unset"],
    errors.ServerError: ["postgresql:", "server=", "app:***@db", "TLS failed", "check sslmode"],
    errors.MisuseError: ["redis:", "RedisFixture.url:", "not set up"],
    errors.NotOwnedError: ["redis:", "RedisFixture.stopped():", "did not start"],
    errors.DefinitionError: ["MyFixture must define probe()", "a Probe"],
    errors.AdminError: ["pg:", "CREATE DATABASE x failed", "already exists"],
    errors.CertificateError: ["memcached:", "ssl_key=/x.pem: no such file"],
    errors.ClientLibraryMissing: ["zookeeper:", "kazoo is not installed", "zookeeper]'"],
}


class TestMessages(base.TestCase):
    def test_every_error_class_has_a_sample(self) -> None:
        self.assertEqual(set(errors.__all__), {cls.__name__ for cls in SAMPLES})

    def test_all_are_daemon_errors(self) -> None:
        for cls in SAMPLES:
            self.assertTrue(issubclass(cls, errors.DaemonError), cls)
            self.assertTrue(issubclass(cls, Exception), cls)

    def test_messages(self) -> None:
        for cls, make in SAMPLES.items():
            text = str(make())
            for expected in EXPECTED[cls]:
                self.assertIn(expected, text, cls.__name__)

    def test_pickle_round_trip(self) -> None:
        # Errors cross process boundaries (multiprocessing, parallel runners).
        for cls, make in SAMPLES.items():
            error = make()
            copy = pickle.loads(pickle.dumps(error))
            self.assertIsInstance(copy, cls)
            self.assertEqual(vars(error), vars(copy))
            self.assertEqual(str(error), str(copy))

    def test_killed_by_signal(self) -> None:
        text = str(errors.DaemonExited("redis", -9, ["redis-server"]))
        self.assertIn("killed by signal 9", text)

    def test_no_name_no_tail(self) -> None:
        self.assertEqual("it broke", str(errors.DaemonError(message="it broke")))

    def test_port_zero_when_none_was_free(self) -> None:
        text = str(errors.PortUnavailable("", "127.0.0.1", 0, "no free port found in 200 tries"))
        self.assertIn("no free port found", text)


class TestNeverRaises(base.TestCase):
    def assertFormats(self, error: errors.DaemonError, what: str) -> None:
        try:
            text = str(error)
        except BaseException as exc:
            self.fail("str() of %s raised %s" % (what, type(exc).__name__))
        self.assertIsInstance(text, str, what)

    def test_each_attribute_garbage(self) -> None:
        for cls, make in SAMPLES.items():
            for attribute in vars(make()):
                for value in GARBAGE:
                    error = make()
                    setattr(error, attribute, value)
                    self.assertFormats(error, "%s.%s=%s" % (cls.__name__, attribute, type(value)))

    def test_every_attribute_garbage(self) -> None:
        for cls, make in SAMPLES.items():
            for value in GARBAGE:
                error = make()
                for attribute in vars(error):
                    setattr(error, attribute, value)
                self.assertFormats(error, "%s with all %s" % (cls.__name__, type(value)))

    def test_garbage_constructor_arguments(self) -> None:
        for value in GARBAGE:
            for error in (
                errors.DaemonError(value, value, value),  # type: ignore[arg-type]
                errors.ExecutableNotFound(value, value),  # type: ignore[arg-type]
                errors.StartupTimeout(value, value, value, value),  # type: ignore[arg-type]
                errors.DaemonExited(value, value, log_tail=value),  # type: ignore[arg-type]
                errors.PortUnavailable(value, value, value, value),  # type: ignore[arg-type]
                errors.TempDirError(value, value, value),  # type: ignore[arg-type]
                errors.UserError(value, value, value),  # type: ignore[arg-type]
            ):
                self.assertFormats(error, "%s(%s)" % (type(error).__name__, type(value)))

    def test_fallback_names_the_class(self) -> None:
        error = errors.DaemonExited("redis", 1)
        error.returncode = Evil()  # type: ignore[assignment]
        self.assertIn("DaemonExited", str(error))
