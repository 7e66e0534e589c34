"""Readiness probes: each answers yes and no correctly, and says what it is."""

from __future__ import annotations

import http.server
import os
import socket
import sys
import threading

import fixtures

from fixtures_daemons import AdminError, PortFixture
from fixtures_daemons.process import probes
from fixtures_daemons.process.probes import ProbeContext
from tests import base


class Flag(probes.Callable):
    """A Callable probe answering whatever ``value`` says, counting calls."""

    def __init__(self, value: bool, name: str) -> None:
        self.value = value
        self.calls = 0
        super().__init__(self._answer, name)

    def _answer(self) -> bool:
        self.calls += 1
        return self.value


class TestLogPattern(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path, "daemon.log")

    def write(self, text: str) -> None:
        with open(self.path, "a") as log:
            log.write(text)

    def probe(self, pattern: str = r"^ready$") -> probes.LogPattern:
        probe = probes.LogPattern(pattern)
        probe.start(ProbeContext(log_path=self.path))
        return probe

    def test_matches_new_output(self) -> None:
        self.write("")
        probe = self.probe()
        self.assertFalse(probe.ready())
        self.write("starting\n")
        self.assertFalse(probe.ready())
        self.write("ready\n")
        self.assertTrue(probe.ready())

    def test_missing_log_is_not_ready(self) -> None:
        probe = self.probe()
        self.assertFalse(probe.ready())
        self.assertIn("No such file", probe.last_error)
        self.write("ready\n")
        self.assertTrue(probe.ready())

    def test_only_output_since_start_counts(self) -> None:
        self.write("ready\n")  # from an earlier run of the daemon
        probe = self.probe()
        self.assertFalse(probe.ready())
        self.write("restarted\nready\n")
        self.assertTrue(probe.ready())

    def test_offset_from_context(self) -> None:
        self.write("ready\n")  # an earlier run
        offset = os.path.getsize(self.path)
        self.write("ready\n")  # this run, printed before the probe started
        probe = probes.LogPattern(r"^ready$")
        probe.start(ProbeContext(log_path=self.path, log_offset=offset))
        self.assertTrue(probe.ready())
        probe.start(ProbeContext(log_path=self.path, log_offset=os.path.getsize(self.path)))
        self.assertFalse(probe.ready())

    def test_banner_in_two_halves(self) -> None:
        self.write("")
        probe = self.probe()
        self.write("rea")
        self.assertFalse(probe.ready())
        self.write("dy\n")
        self.assertTrue(probe.ready())

    def test_restart_looks_at_new_output_only(self) -> None:
        self.write("")
        probe = self.probe()
        self.write("ready\n")
        self.assertTrue(probe.ready())
        probe.start(ProbeContext(log_path=self.path))
        self.assertFalse(probe.ready())

    def test_compiled_pattern(self) -> None:
        import re

        self.write("")
        probe = probes.LogPattern(re.compile(r"accepting connections"))
        probe.start(ProbeContext(log_path=self.path))
        self.write("LOG: database system is ready to accept connections\n")
        self.assertFalse(probe.ready())
        self.write("LOG: accepting connections\n")
        self.assertTrue(probe.ready())

    def test_describe(self) -> None:
        self.assertIn("^ready$", probes.LogPattern(r"^ready$").describe())
        self.assertIn("log", probes.LogPattern(r"x").describe())


class TestTcp(base.TestCase):
    def test_listening(self) -> None:
        server = socket.socket()
        self.addCleanup(server.close)
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        probe = probes.Tcp("127.0.0.1", server.getsockname()[1])
        self.assertTrue(probe.ready(), probe.last_error)

    def test_nothing_listening(self) -> None:
        # A reserved port: nobody else binds it while we hold it.
        port = self.useFixture(PortFixture()).port
        probe = probes.Tcp("127.0.0.1", port)
        self.assertFalse(probe.ready())
        self.assertIn("refused", probe.last_error.lower())

    def test_describe(self) -> None:
        self.assertEqual("TCP connect to 127.0.0.1:5432", probes.Tcp("127.0.0.1", 5432).describe())


class TestUnixSocket(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path, "daemon.sock")

    def test_listening(self) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(server.close)
        server.bind(self.path)
        server.listen(8)
        probe = probes.UnixSocket(self.path)
        self.assertTrue(probe.ready(), probe.last_error)

    def test_missing(self) -> None:
        probe = probes.UnixSocket(self.path)
        self.assertFalse(probe.ready())
        self.assertTrue(probe.last_error)

    def test_bound_but_not_listening(self) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(server.close)
        server.bind(self.path)
        self.assertFalse(probes.UnixSocket(self.path).ready())

    def test_describe(self) -> None:
        self.assertIn(self.path, probes.UnixSocket(self.path).describe())


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        status = {"/ok": 200, "/created": 201, "/busy": 503}.get(self.path.split("?")[0], 404)
        body = b"status %d\n" % status
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TestHttp(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.base = "http://127.0.0.1:%d" % server.server_address[1]

    def test_2xx(self) -> None:
        for path in ("/ok", "/created", "/ok?check=1"):
            probe = probes.Http(self.base + path)
            self.assertTrue(probe.ready(), "%s: %s" % (path, probe.last_error))

    def test_other_status(self) -> None:
        probe = probes.Http(self.base + "/busy")
        self.assertFalse(probe.ready())
        self.assertEqual("HTTP status 503", probe.last_error)
        self.assertFalse(probes.Http(self.base + "/missing").ready())

    def test_statuses(self) -> None:
        self.assertTrue(probes.Http(self.base + "/busy", statuses={503}).ready())
        self.assertFalse(probes.Http(self.base + "/ok", statuses={503}).ready())

    def test_nothing_listening(self) -> None:
        port = self.useFixture(PortFixture()).port
        probe = probes.Http("http://127.0.0.1:%d/" % port)
        self.assertFalse(probe.ready())
        self.assertTrue(probe.last_error)

    def test_describe(self) -> None:
        url = self.base + "/ok"
        self.assertEqual("HTTP GET %s" % url, probes.Http(url).describe())
        self.assertEqual("HTTP HEAD %s" % url, probes.Http(url, method="HEAD").describe())


class TestPidFile(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path, "daemon.pid")

    def write(self, text: str) -> None:
        with open(self.path, "w") as f:
            f.write(text)

    def test_missing(self) -> None:
        probe = probes.PidFile(self.path)
        self.assertFalse(probe.ready())
        self.assertTrue(probe.last_error)

    def test_empty_or_garbage(self) -> None:
        probe = probes.PidFile(self.path)
        for text in ("", "\n", "not-a-pid\n"):
            self.write(text)
            self.assertFalse(probe.ready(), repr(text))

    def test_pid(self) -> None:
        probe = probes.PidFile(self.path)
        for text in ("1234", "1234\n", "1234\nmore lines\n"):
            self.write(text)
            self.assertTrue(probe.ready(), repr(text))

    def test_describe(self) -> None:
        self.assertIn(self.path, probes.PidFile(self.path).describe())


class TestCommand(base.TestCase):
    def python(self, code: str) -> list[str]:
        return [sys.executable, "-c", code]

    def test_exit_0(self) -> None:
        probe = probes.Command(self.python("raise SystemExit(0)"))
        self.assertTrue(probe.ready(), probe.last_error)

    def test_exit_1(self) -> None:
        probe = probes.Command(self.python("print('not yet'); raise SystemExit(1)"))
        self.assertFalse(probe.ready())
        self.assertIn("exit 1", probe.last_error)
        self.assertIn("not yet", probe.last_error)

    def test_missing_command(self) -> None:
        missing = os.path.join(self.useFixture(fixtures.TempDir()).path, "no-such-client")
        probe = probes.Command([missing])
        self.assertFalse(probe.ready())
        self.assertIn("no-such-client", probe.last_error)

    def test_env(self) -> None:
        code = "import os; raise SystemExit(os.environ.get('FXD_PROBE') != 'yes')"
        self.assertTrue(probes.Command(self.python(code), env={"FXD_PROBE": "yes"}).ready())
        self.assertFalse(probes.Command(self.python(code), env={"FXD_PROBE": "no"}).ready())

    def test_describe(self) -> None:
        self.assertEqual(
            "command pg_isready -q exiting 0", probes.Command(["pg_isready", "-q"]).describe()
        )


class TestCallable(base.TestCase):
    def test_true_and_false(self) -> None:
        self.assertTrue(probes.Callable(lambda: True).ready())
        self.assertTrue(probes.Callable(lambda: "a truthy value").ready())
        self.assertFalse(probes.Callable(lambda: False).ready())
        self.assertFalse(probes.Callable(lambda: None).ready())

    def test_a_daemon_error_gives_up(self) -> None:
        # The check says the start cannot succeed: no retrying until the
        # timeout.
        def verify() -> bool:
            raise AdminError("memcached", "version", "certificate verify failed")

        self.assertRaises(AdminError, probes.Callable(verify).ready)

    def test_raising_is_not_ready(self) -> None:
        def ping() -> bool:
            raise ConnectionRefusedError("server not up")

        probe = probes.Callable(ping)
        self.assertFalse(probe.ready())
        self.assertIn("ConnectionRefusedError", probe.last_error)
        self.assertIn("server not up", probe.last_error)

    def test_describe(self) -> None:
        def ping() -> bool:
            return True

        self.assertEqual("ping returning true", probes.Callable(ping).describe())
        self.assertEqual(
            "redis PING returning true", probes.Callable(ping, "redis PING").describe()
        )

    def test_start_clears_last_error(self) -> None:
        probe = probes.Callable(lambda: 1 / 0)
        self.assertFalse(probe.ready())
        self.assertTrue(probe.last_error)
        probe.start(ProbeContext())
        self.assertEqual("", probe.last_error)


class TestCombinations(base.TestCase):
    def test_all_of(self) -> None:
        yes, no = Flag(True, "yes"), Flag(False, "no")
        self.assertTrue(probes.AllOf(yes, Flag(True, "also")).ready())
        self.assertFalse(probes.AllOf(yes, no).ready())
        self.assertFalse(probes.AllOf(no, yes).ready())

    def test_all_of_asks_each_until_it_said_yes(self) -> None:
        first, second = Flag(True, "first"), Flag(False, "second")
        probe = probes.AllOf(first, second)
        probe.start(ProbeContext())
        self.assertFalse(probe.ready())
        self.assertFalse(probe.ready())
        self.assertEqual(1, first.calls)
        second.value = True
        self.assertTrue(probe.ready())
        # A new wait (a restart) asks everything again.
        probe.start(ProbeContext())
        first.value = False
        self.assertFalse(probe.ready())

    def test_all_of_reports_the_failing_probe(self) -> None:
        def down() -> bool:
            raise OSError("no route")

        probe = probes.AllOf(Flag(True, "up"), probes.Callable(down))
        self.assertFalse(probe.ready())
        self.assertIn("no route", probe.last_error)

    def test_any_of(self) -> None:
        yes, no = Flag(True, "yes"), Flag(False, "no")
        self.assertTrue(probes.AnyOf(no, yes).ready())
        self.assertTrue(probes.AnyOf(yes, no).ready())
        self.assertFalse(probes.AnyOf(no, Flag(False, "neither")).ready())

    def test_any_of_reports_every_error(self) -> None:
        def first() -> bool:
            raise OSError("first down")

        def second() -> bool:
            raise OSError("second down")

        probe = probes.AnyOf(probes.Callable(first), probes.Callable(second))
        self.assertFalse(probe.ready())
        self.assertIn("first down", probe.last_error)
        self.assertIn("second down", probe.last_error)

    def test_operators(self) -> None:
        yes, no = Flag(True, "yes"), Flag(False, "no")
        both = yes & no
        either = yes | no
        self.assertIsInstance(both, probes.AllOf)
        self.assertIsInstance(either, probes.AnyOf)
        self.assertFalse(both.ready())
        self.assertTrue(either.ready())
        self.assertFalse((no | no).ready())
        self.assertTrue((yes & yes).ready())
        self.assertTrue(((no & yes) | yes).ready())

    def test_start_reaches_every_probe(self) -> None:
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, "log")
        with open(path, "w") as log:
            log.write("ready\n")  # before the wait: must not count
        probe = probes.LogPattern("ready") & Flag(True, "up")
        probe.start(ProbeContext(log_path=path))
        self.assertFalse(probe.ready())
        with open(path, "a") as log:
            log.write("ready\n")
        self.assertTrue(probe.ready())

    def test_describe(self) -> None:
        yes, no = Flag(True, "yes"), Flag(False, "no")
        self.assertEqual("(yes returning true and no returning true)", (yes & no).describe())
        self.assertEqual("(yes returning true or no returning true)", (yes | no).describe())
        self.assertIn("TCP connect to h:1", repr(probes.Tcp("h", 1) | yes))

    def test_empty_is_an_error(self) -> None:
        self.assertRaises(ValueError, probes.AllOf)
        self.assertRaises(ValueError, probes.AnyOf)
