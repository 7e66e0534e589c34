"""What the daemon tests share: the base TestCase and the daemon contract.

:class:`DaemonTestCase` adds to :class:`tests.base.TestCase` the checks that
every daemon test makes: that a fixture left nothing behind (no process, no
temp dir, no port reservation), that a daemon listens on loopback only, runs
as the right user, in a private dir.

:class:`DaemonContract` is the behaviour every daemon promises (write and
read back through a real client, reset, two instances side by side, cleanUp,
exported variables, outages); a daemon's test module mixes it in and says
how its client writes, reads and fails to connect.
"""

from __future__ import annotations

import os
import pwd
import select
import shutil
import socket
import stat
import tempfile
import typing

import fixtures
import psutil

from fixtures_daemons import (
    AttachError,
    DaemonExited,
    DaemonFixture,
    ExecutableNotFound,
    MisuseError,
    NotOwnedError,
    PortUnavailable,
    StateError,
    TempDirError,
    close_spare_servers,
    reserve_port,
)
from fixtures_daemons.process._reaper import find_tagged
from fixtures_daemons.process.tempdirs import PREFIX, default_temp_root
from fixtures_daemons.process.waiting import Deadline, wait_for
from fixtures_daemons.process.watchdog import Watchdog
from tests import base

IS_ROOT = os.geteuid() == 0
#: The user daemons that refuse root run as when the tests run as root.
NOBODY = pwd.getpwnam("nobody")

F = typing.TypeVar("F", bound=fixtures.Fixture)


def process_tree(pid: int) -> list[psutil.Process]:
    """Handles on the process ``pid`` and all its descendants."""
    process = psutil.Process(pid)
    return [process] + process.children(recursive=True)


def listening_addresses(pid: int) -> list[tuple[str, int, str]]:
    """(ip, port, kind) of every TCP listening and UDP socket of the tree."""
    found = []
    for process in process_tree(pid):
        try:
            connections = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            # An exiting process (a backend whose client just hung up) has
            # no memory map left, and then only root may read its fds: it
            # is going, with its sockets. One that stays is a real denial.
            if wait_for(lambda process=process: base.is_gone(process), 5.0):
                continue
            raise
        for conn in connections:
            if conn.type == 1 and conn.status != psutil.CONN_LISTEN:  # SOCK_STREAM
                continue  # a connected TCP socket says nothing of what it serves
            kind = "tcp" if conn.type == 1 else "udp"
            found.append((conn.laddr.ip, conn.laddr.port, kind))
    return found


def pid_of(fixture: DaemonFixture) -> int:
    """The pid of a running daemon fixture."""
    assert fixture.process is not None and fixture.process.pid is not None
    return fixture.process.pid


def _remove_root(path: str) -> None:
    """Remove a test's own temp root. A child process the test started
    may have been killed a moment ago (a failing test): its watchdog is
    then still removing its dirs here, so entries vanish under rmtree."""
    wait_for(lambda: not os.listdir(path), 10)

    def vanished(function: typing.Any, name: str, exc_info: typing.Any) -> None:
        if not isinstance(exc_info[1], FileNotFoundError):
            raise exc_info[1]

    shutil.rmtree(path, onerror=vanished)


class DaemonTestCase(base.TestCase):
    """Base class of the daemon tests."""

    def setUp(self) -> None:
        super().setUp()
        # These tests are about daemons they start themselves: never attach
        # to one described in the environment (``fixtures-daemons run``).
        for variable in list(os.environ):
            if variable.startswith("FIXTURES_DAEMONS_") and variable.endswith("_STATE"):
                self.useFixture(fixtures.EnvironmentVariable(variable))

    def startManually(self, fixture: F) -> F:
        """Set up ``fixture`` for a test that cleans it up itself midway;
        cleaned up at the end of the test anyway if the test fails first."""
        fixture.setUp()
        state = {"up": True}
        original = fixture.cleanUp

        def clean_up(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
            if not state["up"]:
                return None
            state["up"] = False
            return original(*args, **kwargs)

        fixture.cleanUp = clean_up  # type: ignore[method-assign]
        self.addCleanup(clean_up)
        return fixture

    def ownTempRoot(self) -> str:
        """An empty temp root for one test (where daemon temp dirs would be
        made), on the same file system as the default one, that the daemon
        user can enter."""
        path = tempfile.mkdtemp(prefix="daemon-tests-root-", dir=default_temp_root())
        self.addCleanup(_remove_root, path)
        os.chmod(path, 0o755)
        return path

    def scriptsDir(self) -> str:
        """A dir for programs the daemon's user must be able to run."""
        path: str = self.useFixture(fixtures.TempDir()).path
        os.chmod(path, 0o755)
        return path

    def writeScript(self, directory: str, name: str, text: str) -> str:
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path

    def taggedPids(self) -> set[int]:
        """Live processes that carry a tag of this test process, once the
        spare servers are gone and the cleanUps under way are done."""
        close_spare_servers()
        return set(find_tagged(Watchdog.get().token + ":"))

    def assertSetUpRaises(
        self, exc_type: type[BaseException], fixture: fixtures.Fixture
    ) -> typing.Any:
        """Set up ``fixture``; assert that it raises ``exc_type`` itself (not
        wrapped in ``MultipleExceptions``); return the error."""
        try:
            fixture.setUp()
        except exc_type as error:
            str(error)  # never raises, and says something
            return error
        except BaseException as error:
            self.fail("expected %s, got %s: %s" % (exc_type.__name__, type(error).__name__, error))
        fixture.cleanUp()
        self.fail("%r set up fine, expected %s" % (fixture, exc_type.__name__))

    def assertNothingLeft(
        self, temp_root: str, tagged_before: set[int], port: int | None = None
    ) -> None:
        """Nothing of a fixture that failed is left: no process tagged by
        us that was not there before, nothing in its temp root, its port
        free to reserve again."""
        self.assertEqual([], os.listdir(temp_root))
        left = wait_for(lambda: not (self.taggedPids() - tagged_before), 5.0)
        self.assertTrue(left, "processes left: %s" % (self.taggedPids() - tagged_before))
        if port:
            reserve_port("127.0.0.1", port).release()

    def assertCleanedUp(self, fixture: DaemonFixture) -> None:
        """cleanUp ``fixture`` (set up by :meth:`startManually`) and assert
        its process tree is gone, its temp dir removed, its port released."""
        tree = process_tree(pid_of(fixture))
        temp_dir = fixture.temp_dir
        port = fixture.port
        self.assertTrue(os.path.isdir(temp_dir))
        fixture.cleanUp()
        self.assertGone(*tree)
        self.assertDirGone(temp_dir)
        self.assertPortFree(fixture.host, port)

    def assertPortFree(self, host: str, port: int) -> None:
        """``port`` can be reserved again, now or within 5 s (the cleanUp
        of a fixture that adopted a spare releases it in the background,
        once the daemon has exited)."""

        def free() -> bool:
            try:
                reserve_port(host, port).release()
            except PortUnavailable:
                return False
            return True

        self.assertTrue(wait_for(free, 5.0), "port %d still reserved" % port)

    def assertLoopbackOnly(self, fixture: DaemonFixture) -> None:
        """The daemon listens on 127.0.0.1:port, and on no wildcard address."""
        addresses = listening_addresses(pid_of(fixture))
        self.assertIn(("127.0.0.1", fixture.port, "tcp"), addresses)
        for ip, port, kind in addresses:
            self.assertEqual("127.0.0.1", ip, "%s socket on %s:%d" % (kind, ip, port))

    def expectedUser(self, fixture: DaemonFixture) -> int:
        """The uid the daemon must run as."""
        if IS_ROOT and fixture.refuses_root:
            return NOBODY.pw_uid
        return os.geteuid()

    def assertRunsAs(self, uid: int, fixture: DaemonFixture) -> None:
        for process in process_tree(pid_of(fixture)):
            uids = process.uids()
            self.assertEqual((uid, uid), (uids.real, uids.effective), str(process))

    def assertPrivateDir(self, fixture: DaemonFixture) -> None:
        st = os.stat(fixture.temp_dir)
        self.assertEqual(0o700, stat.S_IMODE(st.st_mode))
        self.assertEqual(self.expectedUser(fixture), st.st_uid)
        name = os.path.basename(fixture.temp_dir)
        self.assertTrue(name.startswith("%s%s-" % (PREFIX, fixture.daemon_name)), name)

    def assertStoppedState(self, fixture: DaemonFixture) -> None:
        """Every process of the daemon is stopped (SIGSTOP), soon."""
        tree = process_tree(pid_of(fixture))

        def all_stopped() -> bool:
            # A zombie is a child that exited and that nobody can reap now;
            # a process that is gone (a backend that ended) is not running.
            done = (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
            return all(_status(p) in done for p in tree)

        self.assertTrue(wait_for(all_stopped, 5.0), [(p, _status(p)) for p in tree])

    def assertNotStoppedState(self, fixture: DaemonFixture) -> None:
        """No process of the daemon is stopped any more, soon."""
        tree = process_tree(pid_of(fixture))

        def none_stopped() -> bool:
            return not any(_status(p) == psutil.STATUS_STOPPED for p in tree)

        self.assertTrue(wait_for(none_stopped, 5.0), [(p, _status(p)) for p in tree])


def _status(process: psutil.Process) -> str:
    """The process's status; ``dead`` once it is gone."""
    try:
        return str(process.status())
    except psutil.NoSuchProcess:
        return psutil.STATUS_DEAD


class DaemonContract:
    """Tests every daemon passes; mixed into a :class:`DaemonTestCase`.

    A daemon's test class sets :attr:`daemon_class` and implements
    :meth:`write`, :meth:`read` and :meth:`assertCannotConnect` with the
    daemon's real client library.
    """

    daemon_class: type[DaemonFixture]
    #: False for a daemon whose data does not survive :meth:`stopped`.
    keeps_data_over_restart = True

    # What each daemon's test class provides.

    def write(self, fixture: typing.Any, key: str, value: str) -> None:
        raise NotImplementedError

    def read(self, fixture: typing.Any, key: str) -> str | None:
        """The value stored under ``key``; None when there is none."""
        raise NotImplementedError

    def assertCannotConnect(self, fixture: typing.Any) -> None:
        raise NotImplementedError

    # The contract.  The methods of DaemonTestCase are reached through self.

    def make(self, **kwargs: typing.Any) -> typing.Any:
        return self.daemon_class(**kwargs)

    def test_write_read_back(self: typing.Any) -> None:
        daemon = self.useFixture(self.make())
        self.write(daemon, "greeting", "hello")
        self.assertEqual("hello", self.read(daemon, "greeting"))
        self.assertIsNone(self.read(daemon, "missing"))

    def test_reset_empties(self: typing.Any) -> None:
        daemon = self.useFixture(self.make())
        self.write(daemon, "greeting", "hello")
        daemon.reset()
        self.assertIsNone(self.read(daemon, "greeting"))
        self.write(daemon, "greeting", "again")  # and it is usable at once
        self.assertEqual("again", self.read(daemon, "greeting"))

    def test_two_instances_side_by_side(self: typing.Any) -> None:
        one = self.useFixture(self.make())
        # spawn: not attached to the first, which exported itself
        two = self.useFixture(self.make(mode="spawn"))
        self.assertNotEqual(one.port, two.port)
        self.assertNotEqual(one.temp_dir, two.temp_dir)
        self.assertNotEqual(one.url, two.url)
        self.write(one, "key", "one")
        self.write(two, "key", "two")
        self.assertEqual("one", self.read(one, "key"))
        self.assertEqual("two", self.read(two, "key"))
        one.reset()
        self.assertIsNone(self.read(one, "key"))
        self.assertEqual("two", self.read(two, "key"))

    def test_cleanup_stops_and_removes(self: typing.Any) -> None:
        daemon = self.startManually(self.make())
        self.write(daemon, "key", "value")
        self.assertCleanedUp(daemon)

    def test_exports_env_and_restores_it(self: typing.Any) -> None:
        own = "FIXTURES_DAEMONS_%s_" % self.daemon_class.daemon_name.upper()
        self.useFixture(fixtures.EnvironmentVariable(own + "URL", "previous-own-url"))
        self.useFixture(fixtures.EnvironmentVariable(own + "HOST"))
        self.useFixture(fixtures.EnvironmentVariable(own + "PORT"))
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_URL", "previous-url"))
        before = dict(os.environ)
        daemon = self.startManually(self.make())
        self.assertEqual(daemon.url, os.environ[own + "URL"])
        self.assertEqual("127.0.0.1", os.environ[own + "HOST"])
        self.assertEqual(str(daemon.port), os.environ[own + "PORT"])
        self.assertEqual(daemon.url, os.environ["FIXTURES_DAEMONS_URL"])
        for key, value in daemon.env.items():
            self.assertEqual(value, os.environ.get(key), key)
        daemon.cleanUp()
        self.assertEqual(before, dict(os.environ))

    def test_env_prefix(self: typing.Any) -> None:
        ours = {k: v for k, v in os.environ.items() if k.startswith("FIXTURES_DAEMONS_")}
        before = dict(os.environ)
        daemon = self.startManually(self.make(env_prefix="FXDTEST"))
        name = self.daemon_class.daemon_name.upper()
        self.assertEqual(daemon.url, os.environ["FXDTEST_%s_URL" % name])
        self.assertEqual(str(daemon.port), os.environ["FXDTEST_%s_PORT" % name])
        self.assertEqual(daemon.url, os.environ["FXDTEST_URL"])
        # Only prefixed names, but for those the daemon's own clients read.
        unprefixed = set(daemon.client_exports(daemon.endpoint))
        self.assertTrue(
            all(key.startswith("FXDTEST_") or key in unprefixed for key in daemon.env), daemon.env
        )
        self.assertEqual(
            ours, {k: v for k, v in os.environ.items() if k.startswith("FIXTURES_DAEMONS_")}
        )
        daemon.cleanUp()
        self.assertEqual(before, dict(os.environ))

    def test_listens_on_loopback_only(self: typing.Any) -> None:
        daemon = self.useFixture(self.make())
        self.write(daemon, "key", "value")  # with a client connected, too
        self.assertLoopbackOnly(daemon)

    def test_private_temp_dir(self: typing.Any) -> None:
        daemon = self.useFixture(self.make())
        self.assertPrivateDir(daemon)
        self.assertEqual(default_temp_root(), os.path.dirname(daemon.temp_dir))

    def test_user_under_root(self: typing.Any) -> None:
        if not IS_ROOT:
            self.skipTest("needs root")
        daemon = self.useFixture(self.make())
        expected = NOBODY.pw_uid if self.daemon_class.refuses_root else 0
        self.assertRunsAs(expected, daemon)

    def test_user_when_not_root(self: typing.Any) -> None:
        if IS_ROOT:
            self.skipTest("runs as root")
        daemon = self.useFixture(self.make())
        self.assertRunsAs(os.geteuid(), daemon)

    def test_stopped(self: typing.Any) -> None:
        daemon = self.useFixture(self.make())
        self.write(daemon, "key", "kept")
        port, old = daemon.port, process_tree(pid_of(daemon))
        with daemon.stopped():
            self.assertGone(*old)
            self.assertCannotConnect(daemon)
        self.assertEqual(port, daemon.port)
        self.assertNotEqual(old[0].pid, pid_of(daemon))
        if self.keeps_data_over_restart:
            self.assertEqual("kept", self.read(daemon, "key"))
        else:
            self.assertIsNone(self.read(daemon, "key"))
        self.write(daemon, "key", "after")
        self.assertEqual("after", self.read(daemon, "key"))

    def test_paused(self: typing.Any) -> None:
        daemon = self.useFixture(self.make())
        self.write(daemon, "key", "value")
        pid = pid_of(daemon)
        with daemon.paused():
            self.assertStoppedState(daemon)
        self.assertEqual(pid, pid_of(daemon))
        self.assertNotStoppedState(daemon)
        self.assertEqual("value", self.read(daemon, "key"))

    def test_cleanup_while_paused(self: typing.Any) -> None:
        daemon = self.startManually(self.make())
        self.write(daemon, "key", "value")
        tree, temp_dir = process_tree(pid_of(daemon)), daemon.temp_dir
        with daemon.paused():
            self.assertStoppedState(daemon)
            deadline = Deadline(daemon.stop_timeout)
            daemon.cleanUp()
            # Continued and stopped with its stop signal, not killed after
            # the stop timeout.
            self.assertFalse(deadline.expired())
        self.assertGone(*tree)
        self.assertDirGone(temp_dir)


class BadInputs:
    """Bad inputs for one daemon; mixed into a DaemonTestCase."""

    daemon_class: type[DaemonFixture]
    #: The Debian package the error must name.
    package: str
    #: A setting (or argument) the daemon rejects, and its complaint.
    rejected: dict[str, typing.Any]
    complaint: str
    #: What the daemon logs when it exits during startup (see :meth:`broken`).
    crash_complaint: str

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        """A fixture of the daemon that exits during startup."""
        raise NotImplementedError

    def setUp(self: typing.Any) -> None:
        super().setUp()  # type: ignore[misc]
        self.temp_root = self.ownTempRoot()
        self.tagged = self.taggedPids()

    def make(self, **kwargs: typing.Any) -> DaemonFixture:
        kwargs.setdefault("temp_root", self.temp_root)
        return self.daemon_class(mode="spawn", **kwargs)

    def test_binary_missing(self: typing.Any) -> None:
        path = "/nonexistent/%s" % self.daemon_class.executable.names[0]
        error = self.assertSetUpRaises(ExecutableNotFound, self.make(binary=path))
        self.assertEqual(path, error.executable)
        self.assertIn(path, str(error))
        self.assertIn("Debian/Ubuntu: %s" % self.package, str(error))
        self.assertIn(self.daemon_class.executable.env_var, str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)

    def test_binary_variable_points_nowhere(self: typing.Any) -> None:
        variable = self.daemon_class.executable.env_var
        self.useFixture(fixtures.EnvironmentVariable(variable, "/nowhere/daemon"))
        error = self.assertSetUpRaises(ExecutableNotFound, self.make())
        self.assertEqual("/nowhere/daemon", error.executable)
        self.assertEqual(variable, error.env_var)
        self.assertIn("Debian/Ubuntu: %s" % self.package, str(error))
        self.assertNothingLeft(self.temp_root, self.tagged)

    def test_rejected_setting(self: typing.Any) -> None:
        daemon = self.make(**self.rejected)
        error = self.assertSetUpRaises(DaemonExited, daemon)
        self.assertIsInstance(error.returncode, int)
        self.assertNotEqual(0, error.returncode)
        self.assertIn(self.complaint, error.log_tail)
        self.assertIn(self.complaint, str(error))
        self.assertEqual(daemon.binary, error.command[0])
        log = daemon.getDetails()["%s-log" % daemon.daemon_name].as_text()
        self.assertIn(self.complaint, log)
        self.assertNothingLeft(self.temp_root, self.tagged, next(iter(daemon.ports.values()), None))

    def test_exits_during_startup(self: typing.Any) -> None:
        daemon = self.broken(temp_root=self.temp_root, mode="spawn")
        error = self.assertSetUpRaises(DaemonExited, daemon)
        self.assertIsInstance(error.returncode, int)
        self.assertNotEqual(0, error.returncode)
        self.assertIn(self.crash_complaint, error.log_tail)
        self.assertIn("before it was ready", str(error))
        self.assertNothingLeft(self.temp_root, self.tagged, next(iter(daemon.ports.values()), None))

    def test_temp_root_under_a_file(self: typing.Any) -> None:
        # Not even root can make a dir whose parent is a regular file.
        parent = os.path.join(self.temp_root, "a-file")
        with open(parent, "w"):
            pass
        root = os.path.join(parent, "temp")
        error = self.assertSetUpRaises(TempDirError, self.make(temp_root=root))
        self.assertEqual(root, error.root)
        self.assertIn(root, str(error))
        os.unlink(parent)
        self.assertNothingLeft(self.temp_root, self.tagged)

    def test_temp_root_not_writable(self: typing.Any) -> None:
        if IS_ROOT:
            self.skipTest("root can write anywhere")
        root = os.path.join(self.temp_root, "read-only")
        os.mkdir(root, 0o500)
        error = self.assertSetUpRaises(TempDirError, self.make(temp_root=root))
        self.assertEqual(root, error.root)
        self.assertEqual([], os.listdir(root))
        os.rmdir(root)
        self.assertNothingLeft(self.temp_root, self.tagged)

    def test_temp_root_closed_to_the_daemon_user(self: typing.Any) -> None:
        if not (IS_ROOT and self.daemon_class.refuses_root):
            self.skipTest("only when the daemon runs as another user")
        root = os.path.join(self.temp_root, "root-only")
        os.mkdir(root, 0o700)
        error = self.assertSetUpRaises(TempDirError, self.make(temp_root=root))
        self.assertIn("nobody", str(error))
        self.assertEqual([], os.listdir(root))
        os.rmdir(root)
        self.assertNothingLeft(self.temp_root, self.tagged)

    def test_port_taken_by_another_program(self: typing.Any) -> None:
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        error = self.assertSetUpRaises(PortUnavailable, self.make(port=port))
        self.assertEqual(port, error.port)
        self.assertEqual("127.0.0.1", error.host)
        self.assertIn(str(port), str(error))
        # Nothing connected to the other program, not even a probe.
        readable, _, _ = select.select([listener], [], [], 0)
        self.assertEqual([], readable)
        self.assertNothingLeft(self.temp_root, self.tagged)


class AttachContract:
    """Sharing one daemon, for every daemon; mixed into a daemon's
    :class:`DaemonContract` test class (its ``write``/``read`` are used
    with the fixture's key prefix, so they honour every kind of
    namespace)."""

    daemon_class: type[DaemonFixture]

    def put(self: typing.Any, fixture: DaemonFixture, key: str, value: str) -> None:
        self.write(fixture, fixture.endpoint.key_prefix + key, value)

    def get(self: typing.Any, fixture: DaemonFixture, key: str) -> str | None:
        value: str | None = self.read(fixture, fixture.endpoint.key_prefix + key)
        return value

    def test_two_fixtures_give_two_daemons(self: typing.Any) -> None:
        one = self.useFixture(self.daemon_class())
        two = self.useFixture(self.daemon_class())
        self.assertFalse(two.attached)
        self.assertNotEqual(one.port, two.port)
        self.assertNotEqual(pid_of(one), pid_of(two))
        self.put(one, "key", "one")
        with two.stopped():  # both are stoppable: each owns its process
            self.assertEqual("one", self.get(one, "key"))
        with one.stopped():
            self.put(two, "key", "two")
        self.assertEqual("two", self.get(two, "key"))

    def test_shared_daemon_gives_each_fixture_a_namespace(self: typing.Any) -> None:
        server = self.useFixture(self.daemon_class(share=True))
        a = self.startManually(self.daemon_class())
        if self.daemon_class.namespace is None:
            # No namespaces: auto mode never attaches, it starts its own.
            self.assertFalse(a.attached)
            self.assertNotEqual(server.port, a.port)
            return
        b = self.useFixture(self.daemon_class())
        self.assertTrue(a.attached and b.attached)
        self.assertIsNone(a.process)
        self.assertEqual(server.port, a.port)
        self.assertNotEqual(a.endpoint, b.endpoint)
        self.put(a, "key", "a")
        self.put(b, "key", "b")
        self.assertEqual("a", self.get(a, "key"))
        self.assertEqual("b", self.get(b, "key"))
        self.assertIsNone(self.get(server, "key"))
        a.reset()
        self.assertIsNone(self.get(a, "key"))
        self.assertEqual("b", self.get(b, "key"))
        for call in (a.stopped, a.paused):
            error = self.assertRaises(NotOwnedError, lambda c=call: c().__enter__())
            self.assertIn("did not start", str(error))
        a.cleanUp()
        self.assertIsNone(server.process.process.poll())
        self.assertEqual("b", self.get(b, "key"))

    def test_spawn_mode_ignores_a_shared_daemon(self: typing.Any) -> None:
        server = self.useFixture(self.daemon_class(share=True))
        own = self.useFixture(self.daemon_class(mode="spawn"))
        self.assertFalse(own.attached)
        self.assertNotEqual(server.port, own.port)

    def test_attach_mode_without_a_shared_daemon(self: typing.Any) -> None:
        variable = "FIXTURES_DAEMONS_%s_STATE" % self.daemon_class.daemon_name.upper()
        before = dict(os.environ)
        error = self.assertSetUpRaises(MisuseError, self.daemon_class(mode="attach"))
        self.assertIn(variable, str(error))
        self.assertIn("fixtures-daemons run %s -- " % self.daemon_class.daemon_name, str(error))
        self.assertEqual(before, dict(os.environ))

    def test_garbage_in_the_state_variable(self: typing.Any) -> None:
        variable = "FIXTURES_DAEMONS_%s_STATE" % self.daemon_class.daemon_name.upper()
        temp_root = self.ownTempRoot()
        tagged = self.taggedPids()
        for garbage in (
            "not json",
            "[1, 2]",
            '{"daemon": "%s", "endpoint": {"ports": {"main": "x"}}}'
            % self.daemon_class.daemon_name,
        ):
            self.useFixture(fixtures.EnvironmentVariable(variable, garbage))
            error = self.assertSetUpRaises(
                StateError, self.daemon_class(mode="attach", temp_root=temp_root)
            )
            self.assertEqual(variable, error.source)
            self.assertIn(variable, str(error))
        self.assertNothingLeft(temp_root, tagged)

    def test_attach_after_the_shared_daemon_restarted(self: typing.Any) -> None:
        # stopped() gives it a new process: what it exports says so.
        server = self.useFixture(self.daemon_class(share=True))
        with server.stopped():
            pass
        attached = self.useFixture(self.daemon_class(mode="attach"))
        self.assertTrue(attached.attached)
        self.assertEqual(pid_of(server), attached.server_endpoint.pid)
        self.put(attached, "key", "after")
        self.assertEqual("after", self.get(attached, "key"))

    def test_attach_to_a_hung_daemon(self: typing.Any) -> None:
        # Its port accepts connections (the kernel does that), but it does
        # not answer: a typed error within the fixture's timeout.
        server = self.useFixture(self.daemon_class(share=True))
        with server.paused():
            deadline = Deadline(15.0)
            error = self.assertSetUpRaises(
                AttachError, self.daemon_class(mode="attach", timeout=0.5)
            )
            self.assertFalse(deadline.expired())
        self.assertIn("does not answer", str(error))

    def test_attach_to_a_dead_daemon(self: typing.Any) -> None:
        server = self.startManually(self.daemon_class(share=True))
        state = os.environ[server.state_variable()]
        server.cleanUp()
        self.useFixture(fixtures.EnvironmentVariable(server.state_variable(), state))
        error = self.assertSetUpRaises(AttachError, self.daemon_class(mode="attach"))
        self.assertIn(server.state_variable(), str(error))
