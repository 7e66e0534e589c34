"""Finding a daemon's program (binaries.py), with fake programs in temp
dirs and with the daemons really installed here."""

from __future__ import annotations

import os

import fixtures

from fixtures_daemons import (
    ExecutableNotFound,
    MemcachedFixture,
    MysqlFixture,
    PostgresqlFixture,
    RedisFixture,
)
from fixtures_daemons.base.binaries import Executable, find_executable, program_version, sibling
from tests import base


class TestFindExecutable(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.path_dir = self.dir("on-path")
        self.useFixture(fixtures.EnvironmentVariable("PATH", self.path_dir))
        self.useFixture(fixtures.EnvironmentVariable("FXD_TEST_BINARY"))

    def dir(self, *parts: str) -> str:
        path = os.path.join(self.root, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def fake(self, directory: str, name: str, output: str = "", mode: int = 0o755) -> str:
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho '%s'\n" % output)
        os.chmod(path, mode)
        return path

    def spec(self, *names: str, dirs: tuple[str, ...] = ()) -> Executable:
        return Executable(
            names=names or ("fxd-daemon",),
            dirs=dirs,
            packages={"Debian/Ubuntu": "fxd-daemon-pkg"},
            env_var="FXD_TEST_BINARY",
        )

    def test_on_path(self) -> None:
        path = self.fake(self.path_dir, "fxd-daemon")
        self.assertEqual(path, find_executable(self.spec()))

    def test_explicit_path_wins(self) -> None:
        self.fake(self.path_dir, "fxd-daemon")
        other = self.fake(self.dir("other"), "fxd-daemon")
        via_env = self.fake(self.dir("env"), "fxd-daemon")
        self.useFixture(fixtures.EnvironmentVariable("FXD_TEST_BINARY", via_env))
        self.assertEqual(other, find_executable(self.spec(), other))
        self.assertEqual(via_env, find_executable(self.spec()))

    def test_explicit_name_searched_on_path(self) -> None:
        path = self.fake(self.path_dir, "custom-name")
        self.assertEqual(path, find_executable(self.spec(), "custom-name"))

    def test_explicit_relative_path_made_absolute(self) -> None:
        path = self.fake(self.dir("rel"), "fxd-daemon")
        cwd = os.getcwd()
        os.chdir(self.root)
        self.addCleanup(os.chdir, cwd)
        self.assertEqual(path, find_executable(self.spec(), "./rel/fxd-daemon"))

    def test_explicit_missing(self) -> None:
        self.fake(self.path_dir, "fxd-daemon")  # not used as a fallback
        error = self.assertRaises(
            ExecutableNotFound, find_executable, self.spec(), "/nonexistent/fxd-daemon", "fxd"
        )
        self.assertEqual("/nonexistent/fxd-daemon", error.executable)
        self.assertEqual("fxd", error.name)
        self.assertIn("Debian/Ubuntu: fxd-daemon-pkg", str(error))
        self.assertIn("FXD_TEST_BINARY", str(error))

    def test_explicit_not_executable(self) -> None:
        path = self.fake(self.dir("x"), "fxd-daemon", mode=0o644)
        if os.access(path, os.X_OK):
            self.skipTest("root may execute anything with an x bit; this has none")
        self.assertRaises(ExecutableNotFound, find_executable, self.spec(), path)

    def test_variable_missing(self) -> None:
        self.fake(self.path_dir, "fxd-daemon")
        self.useFixture(fixtures.EnvironmentVariable("FXD_TEST_BINARY", "/nowhere/fxd"))
        error = self.assertRaises(ExecutableNotFound, find_executable, self.spec())
        self.assertEqual("/nowhere/fxd", error.executable)
        self.assertEqual("FXD_TEST_BINARY", error.env_var)

    def test_empty_variable_ignored(self) -> None:
        path = self.fake(self.path_dir, "fxd-daemon")
        self.useFixture(fixtures.EnvironmentVariable("FXD_TEST_BINARY", ""))
        self.assertEqual(path, find_executable(self.spec()))

    def test_extra_dirs_newest_version_first(self) -> None:
        for version in ("9.6", "10", "15", "100-beta"):
            self.fake(self.dir("pg", version, "bin"), "fxd-daemon")
        pattern = os.path.join(self.root, "pg", "*", "bin")
        found = find_executable(self.spec(dirs=(pattern,)))
        self.assertEqual(os.path.join(self.root, "pg", "100-beta", "bin", "fxd-daemon"), found)

    def test_path_before_extra_dirs(self) -> None:
        on_path = self.fake(self.path_dir, "fxd-daemon")
        self.fake(self.dir("extra"), "fxd-daemon")
        extra = os.path.join(self.root, "extra")
        self.assertEqual(on_path, find_executable(self.spec(dirs=(extra,))))

    def test_names_in_order_of_preference(self) -> None:
        self.fake(self.path_dir, "mysqld")
        preferred = self.fake(self.dir("extra"), "mariadbd")
        spec = self.spec("mariadbd", "mysqld", dirs=(os.path.join(self.root, "extra"),))
        self.assertEqual(preferred, find_executable(spec))

    def test_not_found(self) -> None:
        extra = self.dir("extra")
        error = self.assertRaises(
            ExecutableNotFound,
            find_executable,
            self.spec("fxd-a", "fxd-b", dirs=(extra,)),
            None,
            "fxd",
        )
        self.assertEqual("fxd-a or fxd-b", error.executable)
        self.assertEqual("PATH", error.searched[0])
        self.assertIn(extra, error.searched)
        self.assertIn(extra, str(error))
        self.assertIn("fxd-daemon-pkg", str(error))
        self.assertEqual({"Debian/Ubuntu": "fxd-daemon-pkg"}, error.packages)


class TestSibling(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable("PATH", os.path.join(self.root, "path")))
        for directory in ("real", "links", "path"):
            os.mkdir(os.path.join(self.root, directory))
        self.daemon = self.fake("real", "daemon")
        self.link = os.path.join(self.root, "links", "daemon")
        os.symlink(self.daemon, self.link)

    def fake(self, directory: str, name: str) -> str:
        path = os.path.join(self.root, directory, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(path, 0o755)
        return path

    def test_beside_the_real_path_first(self) -> None:
        real_init = self.fake("real", "init")
        self.fake("links", "init")
        self.assertEqual(real_init, sibling(self.link, "init"))

    def test_beside_the_link(self) -> None:
        init = self.fake("links", "init")
        self.assertEqual(init, sibling(self.link, "init"))

    def test_on_path(self) -> None:
        init = self.fake("path", "init")
        self.assertEqual(init, sibling(self.link, "init"))

    def test_missing(self) -> None:
        spec = Executable(names=("daemon",), packages={"Debian/Ubuntu": "daemon-pkg"})
        error = self.assertRaises(ExecutableNotFound, sibling, self.link, "init", spec, "what")
        self.assertEqual("init", error.executable)
        self.assertIn("daemon-pkg", str(error))


class TestProgramVersion(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.runs = os.path.join(self.root, "runs")
        self.path = os.path.join(self.root, "daemon")

    def write(self, version: str, to: str = "") -> None:
        with open(self.path, "w") as f:
            f.write("#!/bin/sh\necho run >> %s\necho 'daemon %s' %s\n" % (self.runs, version, to))
        os.chmod(self.path, 0o755)

    def count(self) -> int:
        with open(self.runs) as f:
            return len(f.readlines())

    def test_run_once_per_binary(self) -> None:
        self.write("1.0")
        self.assertEqual("daemon 1.0", program_version(self.path))
        self.assertEqual("daemon 1.0", program_version(self.path))
        self.assertEqual(1, self.count())

    def test_changed_binary_asked_again(self) -> None:
        self.write("1.0")
        self.assertEqual("daemon 1.0", program_version(self.path))
        self.write("2.0.1")  # another size: another binary
        self.assertEqual("daemon 2.0.1", program_version(self.path))
        self.assertEqual(2, self.count())

    def test_stderr(self) -> None:
        self.write("3.0", to=">&2")
        self.assertEqual("daemon 3.0", program_version(self.path))


class TestInstalledDaemons(base.TestCase):
    """The daemons installed here are found where their packages put them."""

    def test_postgresql_without_path(self) -> None:
        # Debian keeps postgres in /usr/lib/postgresql/<version>/bin, off PATH.
        self.useFixture(fixtures.EnvironmentVariable("PATH", "/nonexistent"))
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_POSTGRES"))
        path = find_executable(PostgresqlFixture.executable)
        self.assertEqual("postgres", os.path.basename(path))
        self.assertIn("PostgreSQL", program_version(path))
        self.assertTrue(os.access(sibling(path, "initdb"), os.X_OK))

    def test_mysql_without_path(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("PATH", "/nonexistent"))
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_MYSQLD"))
        path = find_executable(MysqlFixture.executable)
        self.assertIn(os.path.basename(path), ("mariadbd", "mysqld"))
        self.assertRegex(program_version(path), r"Ver \d+\.\d+")

    def test_redis_and_memcached(self) -> None:
        for fixture_class in (RedisFixture, MemcachedFixture):
            path = find_executable(fixture_class.executable)
            self.assertTrue(os.path.isabs(path), path)
            self.assertTrue(os.access(path, os.X_OK), path)
