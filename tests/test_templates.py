"""The template cache: initialise once, copy for every instance.

TemplateCache itself is tested with small fake templates; the daemon-level
tests (a stale template, two processes building at once, clear_cache) use
PostgreSQL's real initdb, each with its own cache dir. Every other test of
the suite uses the default cache, so initdb runs once per machine.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import typing

import fixtures
import psycopg

from fixtures_daemons import DaemonExited, PostgresqlFixture, cache_root, clear_cache
from fixtures_daemons.base.binaries import find_executable, sibling
from fixtures_daemons.base.spares import SPARES_ENV
from fixtures_daemons.base.templates import CACHE_ENV, TemplateCache, _Spares, copy_tree
from fixtures_daemons.process import _reaper
from fixtures_daemons.process.tempdirs import TMPDIR_ENV
from fixtures_daemons.process.users import RunAs
from fixtures_daemons.process.waiting import wait_for
from tests import base, daemon_base
from tests.daemon_base import IS_ROOT, NOBODY


def templates(root: str, kind: str) -> list[str]:
    """The template dirs of ``kind`` in the cache ``root``."""
    return sorted(
        os.path.join(root, name)
        for name in os.listdir(root)
        if name.startswith(kind + "-") and not name.endswith(".lock")
    )


def read_meta(template: str) -> dict[str, typing.Any]:
    with open(os.path.join(template, "meta.json")) as f:
        meta: dict[str, typing.Any] = json.load(f)
    return meta


def write_meta(template: str, meta: dict[str, typing.Any]) -> None:
    with open(os.path.join(template, "meta.json"), "w") as f:
        json.dump(meta, f)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


class TestTemplateCache(daemon_base.DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.cache = TemplateCache(self.root)
        self.temp_root = self.ownTempRoot()  # where builds happen
        self.dst_root = self.useFixture(fixtures.TempDir()).path
        self.builds: list[str] = []

    def build(self, directory: str) -> None:
        self.builds.append(directory)
        self.assertEqual([], os.listdir(directory))
        with open(os.path.join(directory, "data.txt"), "w") as f:
            f.write("built %d" % len(self.builds))
        os.mkdir(os.path.join(directory, "sub"), 0o750)
        path = os.path.join(directory, "sub", "secret")
        with open(path, "w") as f:
            f.write("s")
        os.chmod(path, 0o600)
        os.symlink("../data.txt", os.path.join(directory, "sub", "link"))

    def instantiate(
        self,
        version: str = "1",
        key: dict[str, object] | None = None,
        build: typing.Callable[[str], None] | None = None,
        kind: str = "fake",
        owner: RunAs | None = None,
    ) -> str:
        dst = os.path.join(self.dst_root, "copy-%d" % len(os.listdir(self.dst_root)))
        self.cache.instantiate(
            kind,
            key if key is not None else {"option": "a"},
            version,
            build or self.build,
            dst,
            owner,
            self.temp_root,
        )
        return dst

    def test_builds_once_and_copies(self) -> None:
        first = self.instantiate()
        second = self.instantiate()
        self.assertEqual(1, len(self.builds))
        self.assertNotEqual(first, second)
        for copy in (first, second):
            self.assertEqual("built 1", read(os.path.join(copy, "data.txt")))
        [template] = templates(self.root, "fake")
        self.assertEqual("1", read_meta(template)["version"])
        # The build happened in the temp root, and its dir is gone.
        self.assertTrue(self.builds[0].startswith(self.temp_root + os.sep))
        self.assertEqual([], os.listdir(self.temp_root))

    def test_copies_are_independent(self) -> None:
        first = self.instantiate()
        with open(os.path.join(first, "data.txt"), "w") as f:
            f.write("changed")
        second = self.instantiate()
        self.assertEqual("built 1", read(os.path.join(second, "data.txt")))

    def test_copy_keeps_modes_and_symlinks(self) -> None:
        copy = self.instantiate()
        self.assertEqual(0o750, stat.S_IMODE(os.stat(os.path.join(copy, "sub")).st_mode))
        secret = os.path.join(copy, "sub", "secret")
        self.assertEqual(0o600, stat.S_IMODE(os.stat(secret).st_mode))
        self.assertEqual("../data.txt", os.readlink(os.path.join(copy, "sub", "link")))
        self.assertEqual("built 1", read(os.path.join(copy, "sub", "link")))

    def test_copy_tree_skips_sockets_and_fifos(self) -> None:
        src = self.useFixture(fixtures.TempDir()).path
        os.mkfifo(os.path.join(src, "fifo"))
        with open(os.path.join(src, "file"), "w") as f:
            f.write("x")
        dst = os.path.join(self.dst_root, "copy")
        copy_tree(src, dst)
        self.assertEqual(["file"], os.listdir(dst))

    def test_copy_owned_by_the_daemon_user(self) -> None:
        if not IS_ROOT:
            self.skipTest("needs root")
        nobody = RunAs(NOBODY.pw_name, NOBODY.pw_uid, NOBODY.pw_gid)
        copy = self.instantiate(owner=nobody)
        for directory, dirs, files in os.walk(copy):
            for name in [directory] + [os.path.join(directory, n) for n in dirs + files]:
                self.assertEqual(NOBODY.pw_uid, os.lstat(name).st_uid, name)

    def test_other_version_rebuilds(self) -> None:
        self.instantiate(version="1")
        copy = self.instantiate(version="2")
        self.assertEqual(2, len(self.builds))
        self.assertEqual("built 2", read(os.path.join(copy, "data.txt")))
        [template] = templates(self.root, "fake")
        self.assertEqual("2", read_meta(template)["version"])
        self.instantiate(version="2")
        self.assertEqual(2, len(self.builds))
        self.assertEqual([], [n for n in os.listdir(self.root) if n.endswith(".old")])

    def test_key_parts(self) -> None:
        self.assertEqual(
            self.cache.key("fake", {"a": 1, "b": [2]}), self.cache.key("fake", {"b": [2], "a": 1})
        )
        self.assertNotEqual(self.cache.key("fake", {"a": 1}), self.cache.key("fake", {"a": 2}))
        self.assertNotEqual(self.cache.key("fake", {"a": 1}), self.cache.key("other", {"a": 1}))
        self.instantiate(key={"option": "a"})
        self.instantiate(key={"option": "b"})
        self.assertEqual(2, len(self.builds))
        self.assertEqual(2, len(templates(self.root, "fake")))

    def test_corrupt_meta_rebuilds(self) -> None:
        self.instantiate()
        [template] = templates(self.root, "fake")
        with open(os.path.join(template, "meta.json"), "w") as f:
            f.write("{not json")
        copy = self.instantiate()
        self.assertEqual(2, len(self.builds))
        self.assertEqual("built 2", read(os.path.join(copy, "data.txt")))

    def test_missing_data_rebuilds(self) -> None:
        self.instantiate()
        [template] = templates(self.root, "fake")
        os.rename(os.path.join(template, "data"), os.path.join(self.dst_root, "moved"))
        copy = self.instantiate()
        self.assertEqual(2, len(self.builds))
        self.assertEqual("built 2", read(os.path.join(copy, "data.txt")))

    def test_failed_build_leaves_nothing(self) -> None:
        def fail(directory: str) -> None:
            with open(os.path.join(directory, "half-done"), "w"):
                pass
            raise RuntimeError("initialisation failed")

        dst = os.path.join(self.dst_root, "never")
        error = self.assertRaises(
            RuntimeError, self.cache.instantiate, "fake", {}, "1", fail, dst, None, self.temp_root
        )
        self.assertEqual("initialisation failed", str(error))
        self.assertFalse(os.path.lexists(dst))
        self.assertEqual([], os.listdir(self.temp_root))
        self.assertEqual([], [n for n in os.listdir(self.root) if not n.endswith(".lock")])
        self.instantiate(key={})  # and the next attempt builds it
        self.assertEqual(1, len(self.builds))

    def test_clear(self) -> None:
        self.instantiate(kind="fake")
        self.instantiate(kind="fake", key={"option": "b"})
        self.instantiate(kind="other")
        removed = self.cache.clear("fake")
        self.assertEqual(2, len(removed))
        self.assertEqual([], templates(self.root, "fake"))
        for path in removed:
            self.assertFalse(os.path.lexists(path))
        self.assertEqual(1, len(templates(self.root, "other")))
        self.assertEqual(templates(self.root, "other"), self.cache.clear())
        self.assertEqual([], self.cache.clear())
        self.instantiate(kind="fake")  # rebuilt after a clear
        self.assertEqual(4, len(self.builds))

    def test_clear_missing_root(self) -> None:
        self.assertEqual([], TemplateCache(os.path.join(self.root, "missing")).clear())

    def test_clear_cache_uses_the_cache_dir(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(CACHE_ENV, self.root))
        self.assertEqual(self.root, cache_root())
        self.instantiate()
        [template] = templates(self.root, "fake")
        self.assertEqual([template], clear_cache("fake"))
        self.assertFalse(os.path.lexists(template))


class TestCacheRoot(base.TestCase):
    def test_variable_wins(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(CACHE_ENV, "/some/where"))
        self.useFixture(fixtures.EnvironmentVariable("XDG_CACHE_HOME", "/xdg"))
        self.assertEqual("/some/where", cache_root())

    def test_xdg_cache_home(self) -> None:
        xdg = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(CACHE_ENV))
        self.useFixture(fixtures.EnvironmentVariable("XDG_CACHE_HOME", xdg))
        self.assertEqual(os.path.join(xdg, "fixtures-daemons"), cache_root())

    def test_home(self) -> None:
        home = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(CACHE_ENV))
        self.useFixture(fixtures.EnvironmentVariable("XDG_CACHE_HOME"))
        self.useFixture(fixtures.EnvironmentVariable("HOME", home))
        self.assertEqual(os.path.join(home, ".cache", "fixtures-daemons"), cache_root())


CHILD = """
import sys
import psycopg
from fixtures_daemons import PostgresqlFixture

print("waiting", flush=True)
sys.stdin.readline()
pg = PostgresqlFixture(binary=%r)
pg.setUp()
try:
    with psycopg.connect(pg.url) as conn:
        print("ok", conn.execute("SELECT 40 + 2").fetchone()[0], flush=True)
finally:
    pg.cleanUp()
"""


class TestPostgresqlTemplates(daemon_base.DaemonTestCase):
    """The template cache with PostgreSQL's initdb, in a cache of its own."""

    def setUp(self) -> None:
        super().setUp()
        self.cache = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(CACHE_ENV, self.cache))
        # Each setUp here must go through the cache (a spare server was
        # copied from the cache as it was when it was started).
        self.useFixture(fixtures.EnvironmentVariable(SPARES_ENV, "0"))

    def assertWorks(self, pg: PostgresqlFixture) -> None:
        with psycopg.connect(pg.url) as conn:
            self.assertEqual((42,), conn.execute("SELECT 40 + 2").fetchone())

    def test_stale_template_rebuilt(self) -> None:
        pg = self.startManually(PostgresqlFixture())
        version = pg.version()
        pg.cleanUp()
        [template] = templates(self.cache, "postgresql")
        meta = read_meta(template)
        self.assertEqual(version, meta["version"])
        # As if made by another version of the same binary path.
        meta["version"] = "postgres (PostgreSQL) 9.6.0"
        write_meta(template, meta)
        marker = os.path.join(template, "data", "STALE_MARKER")
        with open(marker, "w"):
            pass
        pg = self.useFixture(PostgresqlFixture())
        self.assertWorks(pg)
        self.assertEqual([template], templates(self.cache, "postgresql"))
        self.assertEqual(version, read_meta(template)["version"])
        self.assertFalse(os.path.exists(marker))
        self.assertFalse(os.path.exists(os.path.join(pg.data_dir, "STALE_MARKER")))

    def test_damaged_template_is_rebuilt(self) -> None:
        # Files missing from the cached data dir, a page corrupted: the
        # server exits on the copy; the template is checked, found damaged,
        # built again once, and the setUp succeeds.
        root = self.ownTempRoot()
        self.startManually(PostgresqlFixture(temp_root=root)).cleanUp()
        [template] = templates(self.cache, "postgresql")
        before = read_meta(template)
        os.unlink(os.path.join(template, "data", "global", "pg_control"))
        pg = self.useFixture(PostgresqlFixture(temp_root=root))
        self.assertWorks(pg)
        self.assertTrue(os.path.exists(os.path.join(template, "data", "global", "pg_control")))
        after = read_meta(template)["files"]
        self.assertEqual(set(before["files"]), set(after))  # the same files,
        self.assertNotEqual(before["files"], after)  # from a new initdb
        # Its log says what the first try met.
        self.assertIn("pg_control", read(pg.log_path))

    def test_a_bad_setting_does_not_rebuild_the_template(self) -> None:
        root = self.ownTempRoot()
        self.startManually(PostgresqlFixture(temp_root=root)).cleanUp()
        [template] = templates(self.cache, "postgresql")
        built = os.stat(os.path.join(template, "meta.json")).st_mtime_ns
        fixture = PostgresqlFixture(temp_root=root, settings={"shared_buffers": "x"})
        self.assertSetUpRaises(DaemonExited, fixture)
        self.assertEqual(built, os.stat(os.path.join(template, "meta.json")).st_mtime_ns)

    def test_the_cache_dir_being_a_file(self) -> None:
        cache = os.path.join(self.cache, "a-file")
        with open(cache, "w") as f:
            f.write("not a directory")
        self.useFixture(fixtures.EnvironmentVariable(CACHE_ENV, cache))
        self.assertWorks(self.useFixture(PostgresqlFixture(temp_root=self.ownTempRoot())))
        self.assertTrue(os.path.isdir(cache))

    def test_two_processes_build_once(self) -> None:
        # A postgres whose initdb counts its runs: wrappers in a dir of their
        # own (sibling() finds initdb beside the binary's real path).
        real = os.path.realpath(find_executable(PostgresqlFixture.executable))
        real_initdb = sibling(real, "initdb")
        bindir = self.scriptsDir()
        runs = os.path.join(bindir, "initdb-runs")
        with open(runs, "w"):
            pass
        os.chmod(runs, 0o666)  # the daemon's user writes it
        postgres = self.writeScript(bindir, "postgres", '#!/bin/sh\nexec %s "$@"\n' % real)
        self.writeScript(
            bindir, "initdb", '#!/bin/sh\necho run >> %s\nexec %s "$@"\n' % (runs, real_initdb)
        )
        env = base.python_env(**{CACHE_ENV: self.cache})
        children = [self.spawnPython(CHILD % postgres, env=env) for _ in range(2)]
        readers = [base.LineReader(typing.cast(typing.IO[bytes], c.stdout)) for c in children]
        for reader in readers:
            self.readLine(reader, prefix="waiting")
        for child in children:  # both at once
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.flush()
        for reader in readers:
            self.assertEqual("ok 42", self.readLine(reader, timeout=120, prefix="ok"))
        for child in children:
            self.assertEqual(0, child.wait(60))
        self.assertEqual("run\n", read(runs))
        [template] = templates(self.cache, "postgresql")
        self.assertIn("PostgreSQL", read_meta(template)["version"])

    def test_clear_cache(self) -> None:
        pg = self.useFixture(PostgresqlFixture())
        [template] = templates(self.cache, "postgresql")
        self.assertEqual([], clear_cache("mysql"))
        self.assertEqual([template], clear_cache("postgresql"))
        self.assertFalse(os.path.lexists(template))
        self.assertEqual([], clear_cache())
        self.assertWorks(pg)  # a running daemon has its own copy


#: A test process of its own, with a default temp root of its own (so no
#: other worker's spares, and no earlier use of the template, interfere):
#: the first setUp orders no spare, the second does, the third claims it.
SPARE_CHECKER = """
import json, os
from fixtures_daemons import PostgresqlFixture
from fixtures_daemons.process.tempdirs import default_temp_root
from fixtures_daemons.process.waiting import wait_for

root = default_temp_root()

def spares():
    return [os.path.join(root, n) for n in os.listdir(root)
            if n.startswith(".fxd-spare-") and not n.endswith(".part")]

report = {}
first = PostgresqlFixture(mode="spawn")
first.setUp()
report["after_first"] = spares() + [n for n in os.listdir(root) if n.endswith(".part")]
second = PostgresqlFixture(mode="spawn")
second.setUp()
ordered = wait_for(spares, 60)
report["ordered"] = ordered
inode = os.stat(ordered[0]).st_ino
third = PostgresqlFixture(mode="spawn")
third.setUp()
report["claimed"] = os.stat(third.data_dir).st_ino == inode and not os.path.exists(ordered[0])
report["spare_after_third"] = wait_for(spares, 60)
for fixture in (first, second, third):
    report.setdefault("answers", []).append(fixture.query("SELECT 1")[0][0])
    fixture.cleanUp()
print("REPORT " + json.dumps(report), flush=True)
input()
"""


class TestSpares(daemon_base.DaemonTestCase):
    """The watchdog prepares the next instance's copy of a template."""

    def test_spares_are_ordered_claimed_and_removed(self) -> None:
        # A cache of its own, built here: another worker's builds (of other
        # templates in a shared cache) hold no lock the copies wait for.
        cache = self.useFixture(fixtures.TempDir()).path
        with fixtures.EnvironmentVariable(CACHE_ENV, cache):
            self.startManually(PostgresqlFixture(temp_root=self.ownTempRoot())).cleanUp()
        self.checkSpares(base.python_env(**{CACHE_ENV: cache}))

    def test_a_use_that_built_the_template_counts(self) -> None:
        # The first setUp builds the template in an empty cache; the second
        # still orders the spare.
        cache = self.useFixture(fixtures.TempDir()).path
        self.checkSpares(base.python_env(**{CACHE_ENV: cache}))
        self.assertEqual(1, len(templates(cache, "postgresql")))

    def checkSpares(self, env: dict[str, str]) -> None:
        root = self.ownTempRoot()
        env[TMPDIR_ENV] = root
        env[SPARES_ENV] = "0"  # the copies, not spare servers started from them
        child = self.spawnPython(SPARE_CHECKER, env=env)
        assert child.stdout is not None and child.stdin is not None
        line = self.readLine(base.LineReader(child.stdout), 120, prefix="REPORT ")
        report = json.loads(line.split(" ", 1)[1])
        self.assertEqual([], report["after_first"], "a first use orders no spare")
        self.assertEqual(1, len(report["ordered"]), report)
        self.assertTrue(report["claimed"], "the third instance runs on the spare")
        self.assertEqual(1, len(report["spare_after_third"]), report)
        self.assertEqual(["1", "1", "1"], report["answers"])
        child.stdin.close()
        child.wait()
        # The unclaimed spare goes with the process's watchdog.
        self.assertTrue(wait_for(lambda: not os.listdir(root), 5), os.listdir(root))


#: Back-to-back setUp and cleanUp, faster than the watchdog copies: the
#: spares (ready or being copied) never number more than one.
PILE_CHECKER = """
import json, os
from fixtures_daemons import PostgresqlFixture
from fixtures_daemons.process.tempdirs import default_temp_root

root = default_temp_root()
most = 0
for _ in range(25):
    fixture = PostgresqlFixture(mode="spawn")
    fixture.setUp()
    most = max(most, len([n for n in os.listdir(root) if n.startswith(".fxd-spare-")]))
    fixture.cleanUp()
print("REPORT " + json.dumps({"most": most}), flush=True)
"""


class TestSparesDoNotPileUp(daemon_base.DaemonTestCase):
    def test_at_most_one_spare(self) -> None:
        root = self.ownTempRoot()
        env = base.python_env()
        env[TMPDIR_ENV] = root
        env[SPARES_ENV] = "0"
        child = self.spawnPython(PILE_CHECKER, env=env)
        assert child.stdout is not None
        line = self.readLine(base.LineReader(child.stdout), 180, prefix="REPORT ")
        self.assertEqual({"most": 1}, json.loads(line.split(" ", 1)[1]))
        child.wait(60)
        self.assertTrue(wait_for(lambda: not os.listdir(root), 10), os.listdir(root))


class TestSpareRaces(daemon_base.DaemonTestCase):
    """A watchdog removing its unclaimed spares while another process
    claims one (a stestr worker exiting while another sets up): the claim
    gets a whole spare, or none."""

    FILES = 200

    def setUp(self) -> None:
        super().setUp()
        self.root = self.ownTempRoot()
        self.token = os.urandom(16).hex()
        claimer_dir = os.path.join(self.root, "fxd-claimer")
        os.mkdir(claimer_dir)
        self.dst = os.path.join(claimer_dir, "data")
        self.spares = _Spares("fake-0123", "1", self.dst, None)
        self.spare = os.path.join(
            self.root, "%s%s-%s" % (self.spares.prefix, self.token[:8], os.urandom(4).hex())
        )
        os.mkdir(self.spare, 0o700)
        for n in range(self.FILES):
            with open(os.path.join(self.spare, "f%d" % n), "w") as f:
                f.write("x")
        self.watchdog = _reaper._Watchdog(self.token)
        self.watchdog.handle(
            "C " + json.dumps(["/template", "/lock", self.spare, -1, -1]), replay=True
        )

    def test_claim_during_removal_gets_none(self) -> None:
        # The removal is held half-way through its first rmtree (as a
        # deletion under way is) while the claim is tried; a spare removed
        # in place would be claimed half deleted.
        real_rmtree = shutil.rmtree
        claims: list[bool] = []

        def rmtree_half_way(path: str, *args: typing.Any, **kwargs: typing.Any) -> None:
            if not claims and os.path.isdir(path):
                for top, _dirs, files in os.walk(path):
                    for name in files[::2]:
                        os.unlink(os.path.join(top, name))
                claims.append(self.spares.claim())
            real_rmtree(path, *args, **kwargs)

        self.useFixture(fixtures.MonkeyPatch("shutil.rmtree", rmtree_half_way))
        self.watchdog.remove_spares()
        self.assertEqual([False], claims)
        self.assertFalse(os.path.lexists(self.dst))
        self.assertEqual(["fxd-claimer"], os.listdir(self.root))

    def test_claimed_first_is_left_whole(self) -> None:
        self.assertTrue(self.spares.claim())
        self.watchdog.remove_spares()
        self.assertEqual(self.FILES, len(os.listdir(self.dst)))
        self.assertEqual(["fxd-claimer"], os.listdir(self.root))

    def test_spares_found_by_name(self) -> None:
        # Spares the journal no longer lists (it was compacted, or the
        # order was lost with the watchdog), and a copy cut short.
        part = self.spare + "x.part"
        os.mkdir(part)
        other = os.path.join(self.root, "%s%s-%s" % (self.spares.prefix, "f" * 8, "0" * 8))
        os.mkdir(other)  # another watchdog's: not touched
        watchdog = _reaper._Watchdog(self.token)
        watchdog.handle("S " + self.root)
        watchdog.remove_spares()
        self.assertEqual(
            sorted(["fxd-claimer", os.path.basename(other)]), sorted(os.listdir(self.root))
        )

    def test_a_spare_of_another_owner_is_not_claimed(self) -> None:
        if not IS_ROOT:
            self.skipTest("needs root")
        os.chown(self.spare, NOBODY.pw_uid, NOBODY.pw_gid)
        self.assertFalse(self.spares.claim())
        self.assertFalse(os.path.lexists(self.dst))
