"""HttpbinFixture, with the real httpbin and urllib as its client."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import typing
import urllib.error
import urllib.parse
import urllib.request

import fixtures
import psutil

from fixtures_daemons import (
    AdminError,
    DaemonExited,
    DaemonFixture,
    ExecutableNotFound,
    NotOwnedError,
)
from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.daemons import httpbin
from fixtures_daemons.daemons.httpbin import HttpbinFixture, HttpbinResource
from fixtures_daemons.process.ports import PortFixture
from tests import daemon_base, test_cli

#: The bound of one request of the tests (a loaded machine is slow, a
#: hung server must still fail the test).
TIMEOUT = 30.0


def get(url: str) -> typing.Any:
    """``GET url``: the decoded JSON reply."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:
        return json.load(reply)


def post_json(url: str, body: typing.Any) -> typing.Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
        return json.load(reply)


def debian_python() -> str | None:
    """``/usr/bin/python3`` when it can import httpbin (python3-httpbin)."""
    python = "/usr/bin/python3"
    return python if os.access(python, os.X_OK) and httpbin._can_import_httpbin(python) else None


class TestHttpbin(
    daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase
):
    """The contracts, for a daemon that keeps no data.

    httpbin stores nothing, so "writing" a value is a round trip that must
    come back unchanged (a POST whose JSON body httpbin echoes), and
    "reading" it is another (a GET whose query httpbin echoes) of what was
    written to that server process; nothing was written to a new process,
    so a restart forgets (``keeps_data_over_restart = False``). ``reset()``
    has nothing to empty: the two contract tests that expect it to forget
    are replaced below by what it does for httpbin.
    """

    daemon_class = HttpbinFixture
    keeps_data_over_restart = False

    def setUp(self) -> None:
        super().setUp()
        #: (port, server pid) -> what was written to that process.
        self.written: dict[tuple[int, int], dict[str, str]] = {}

    def _sent(self, fixture: HttpbinFixture) -> dict[str, str]:
        server = fixture.server_endpoint
        return self.written.setdefault((server.port or 0, server.pid), {})

    def write(self, fixture: HttpbinFixture, key: str, value: str) -> None:
        echoed = post_json(fixture.url + "/anything", {key: value})
        self.assertEqual({key: value}, echoed["json"])
        self._sent(fixture)[key] = value

    def read(self, fixture: HttpbinFixture, key: str) -> str | None:
        sent = self._sent(fixture)
        if key not in sent:
            get(fixture.url + "/get")  # it answers, with nothing of ours
            return None
        query = urllib.parse.urlencode({key: sent[key]})
        value: str = get(fixture.url + "/get?" + query)["args"][key]
        return value

    def assertCannotConnect(self, fixture: HttpbinFixture) -> None:
        error = self.assertRaises(urllib.error.URLError, get, fixture.url + "/get")
        self.assertIsInstance(error.reason, ConnectionRefusedError)

    # -- the contract tests whose premise (reset() forgets) httpbin lacks ------

    def test_reset_empties(self) -> None:
        # Nothing to empty: reset() checks that it answers, and the same
        # process goes on serving.
        daemon = self.useFixture(HttpbinFixture())
        pid = daemon_base.pid_of(daemon)
        daemon.reset()
        self.assertEqual(pid, daemon_base.pid_of(daemon))
        self.assertEqual({"a": "1"}, get(daemon.url + "/get?a=1")["args"])
        with daemon.paused():  # a server that does not answer: an error, in time
            daemon.admin.timeout = 0.5
            self.assertRaises(AdminError, daemon.reset)

    def test_two_instances_side_by_side(self) -> None:
        one = self.useFixture(HttpbinFixture())
        two = self.useFixture(HttpbinFixture(mode="spawn"))
        self.assertNotEqual(one.port, two.port)
        self.assertNotEqual(one.temp_dir, two.temp_dir)
        self.assertNotEqual(one.url, two.url)
        self.write(one, "key", "one")
        self.write(two, "key", "two")
        self.assertEqual("one", self.read(one, "key"))
        self.assertEqual("two", self.read(two, "key"))
        # Each answers on its own port, in its own process.
        with one.stopped():
            self.assertCannotConnect(one)
            self.assertEqual("two", self.read(two, "key"))

    def test_reset_of_a_shared_server_refused(self) -> None:
        server = self.useFixture(HttpbinFixture(share=True))
        attached = self.useFixture(HttpbinFixture(mode="attach"))
        self.assertTrue(attached.attached)
        self.assertEqual(server.url, attached.url)
        self.assertRaises(NotOwnedError, attached.reset)

    # -- httpbin's own ---------------------------------------------------------

    def test_get_echoes_args_and_headers(self) -> None:
        daemon = self.useFixture(HttpbinFixture())
        request = urllib.request.Request(
            daemon.url + "/get?colour=blue&n=1&n=2", headers={"X-Fxd-Test": "yes"}
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
            self.assertEqual(200, reply.status)
            echoed = json.load(reply)
        self.assertEqual({"colour": "blue", "n": ["1", "2"]}, echoed["args"])
        self.assertEqual("yes", echoed["headers"]["X-Fxd-Test"])
        self.assertEqual(daemon.url + "/get?colour=blue&n=1&n=2", echoed["url"])

    def test_post_echoes_the_body(self) -> None:
        daemon = self.useFixture(HttpbinFixture())
        echoed = post_json(daemon.url + "/post", {"list": [1, 2], "text": "héllo"})
        self.assertEqual({"list": [1, 2], "text": "héllo"}, echoed["json"])
        form = urllib.parse.urlencode({"field": "value"}).encode()
        with urllib.request.urlopen(daemon.url + "/post", form, timeout=TIMEOUT) as reply:
            self.assertEqual({"field": "value"}, json.load(reply)["form"])

    def test_status_418(self) -> None:
        daemon = self.useFixture(HttpbinFixture())
        error = self.assertRaises(
            urllib.error.HTTPError,
            urllib.request.urlopen,
            daemon.url + "/status/418",
            None,
            TIMEOUT,
        )
        self.addCleanup(error.close)
        self.assertEqual(418, error.code)
        self.assertIn(b"teapot", error.read())

    def test_url_and_exports(self) -> None:
        daemon = self.useFixture(HttpbinFixture())
        # Plain: what a proxy in front of it (nginx) takes as its upstream.
        self.assertEqual("http://127.0.0.1:%d" % daemon.port, daemon.url)
        self.assertEqual(
            {
                "FIXTURES_DAEMONS_HTTPBIN_URL": daemon.url,
                "FIXTURES_DAEMONS_HTTPBIN_HOST": "127.0.0.1",
                "FIXTURES_DAEMONS_HTTPBIN_PORT": str(daemon.port),
                "FIXTURES_DAEMONS_URL": daemon.url,
            },
            daemon.env,
        )
        pifpaf = daemon.exports("PIFPAF", style="pifpaf")
        self.assertEqual(daemon.url, pifpaf["PIFPAF_URL"])
        self.assertEqual(daemon.url, pifpaf["PIFPAF_HTTPBIN_URL"])
        self.assertEqual(str(daemon.port), pifpaf["PIFPAF_HTTPBIN_PORT"])
        self.assertEqual(daemon.temp_dir, pifpaf["PIFPAF_DATA"])

    def test_served_by_the_first_python_that_has_httpbin(self) -> None:
        daemon = self.useFixture(HttpbinFixture())
        usable = [p for p in httpbin.candidate_pythons() if httpbin._can_import_httpbin(p)]
        self.assertEqual(usable[0], daemon.binary)
        if importlib.util.find_spec("httpbin") is not None:
            self.assertEqual(sys.executable, daemon.binary)
        command = psutil.Process(daemon_base.pid_of(daemon)).cmdline()
        self.assertEqual([daemon.binary, "-c", httpbin.SERVER], command[:3])

    def test_debian_python(self) -> None:
        python = debian_python()
        if python is None:
            self.skipTest("/usr/bin/python3 cannot import httpbin (Debian: python3-httpbin)")
        daemon = self.useFixture(HttpbinFixture(binary=python))
        self.assertEqual(python, daemon.binary)
        self.assertEqual({"a": "b"}, get(daemon.url + "/get?a=b")["args"])
        self.assertTrue(daemon.version().startswith("httpbin "), daemon.version())

    def test_python_named_by_the_variable(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(httpbin.ENV_VAR, sys.executable))
        if not httpbin._can_import_httpbin(sys.executable):
            self.skipTest("this Python cannot import httpbin (pip install httpbin)")
        daemon = self.useFixture(HttpbinFixture())
        self.assertEqual(sys.executable, daemon.binary)

    def test_resource_shares_one_server(self) -> None:
        resource = HttpbinResource()
        daemon = resource.getResource()
        self.addCleanup(daemon.cleanUp)  # if the test fails; a no-op after finishedWith
        process = psutil.Process(daemon_base.pid_of(daemon))
        self.assertIsInstance(daemon, HttpbinFixture)
        self.assertEqual({"shared": "1"}, get(daemon.url + "/get?shared=1")["args"])
        # No namespaces: a fixture of a test starts its own server...
        own = self.useFixture(HttpbinFixture())
        self.assertFalse(own.attached)
        self.assertNotEqual(daemon.port, own.port)
        # ... unless told to share the resource's.
        attached = self.startManually(HttpbinFixture(mode="attach"))
        self.assertEqual(daemon.url, attached.url)
        attached.cleanUp()
        resource.finishedWith(daemon)
        self.assertGone(process)

    def test_not_threaded(self) -> None:
        daemon = self.useFixture(HttpbinFixture(settings={"threaded": "false"}))
        self.assertIn("--threaded=false", psutil.Process(daemon_base.pid_of(daemon)).cmdline())
        self.assertEqual({"x": "1"}, get(daemon.url + "/get?x=1")["args"])


def python_without_httpbin(test: daemon_base.DaemonTestCase) -> str:
    """A program that is a Python which cannot import httpbin: Python
    without its site directories."""
    return test.writeScript(
        test.scriptsDir(), "python3", '#!/bin/sh\nexec %s -S "$@"\n' % sys.executable
    )


class TestHttpbinBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = HttpbinFixture
    package = "python3-httpbin"
    rejected = {"settings": {"no-such-setting": "1"}}
    complaint = "unrecognized arguments: --no-such-setting=1"
    crash_complaint = "cannot import httpbin with"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        return HttpbinFixture(binary=python_without_httpbin(self), **kwargs)

    def test_broken_python_says_what_to_do(self) -> None:
        daemon = self.broken(temp_root=self.temp_root, mode="spawn")
        error = self.assertSetUpRaises(DaemonExited, daemon)
        for advice in ("pip install httpbin", "python3-httpbin", httpbin.ENV_VAR):
            self.assertIn(advice, error.log_tail)

    def test_no_python_has_httpbin(self) -> None:
        # Neither the running Python nor Debian's can import it: the error
        # names both packages and the variable, and says what was tried.
        without = python_without_httpbin(self)
        self.useFixture(fixtures.MockPatchObject(httpbin, "candidate_pythons", lambda: [without]))
        httpbin.python_with_httpbin.cache_clear()
        self.addCleanup(httpbin.python_with_httpbin.cache_clear)
        self.useFixture(fixtures.EnvironmentVariable(httpbin.ENV_VAR))
        error = self.assertSetUpRaises(ExecutableNotFound, self.make())
        message = str(error)
        for needed in ("Debian/Ubuntu: python3-httpbin", "PyPI: httpbin", httpbin.ENV_VAR, without):
            self.assertIn(needed, message)
        self.assertRaises(ExecutableNotFound, find_executable, HttpbinFixture.executable)
        self.assertNothingLeft(self.temp_root, self.tagged)


class TestHttpbinPifpaf(test_cli.CliTestCase):
    """``-e PIFPAF`` exports what ``pifpaf run httpbin`` does."""

    environments = test_cli.TestPifpafCompatibility.environments
    normalise = staticmethod(test_cli.TestPifpafCompatibility.normalise)
    assertSameExports = test_cli.TestPifpafCompatibility.assertSameExports

    def test_pifpaf_exports(self) -> None:
        self.pifpaf = self.pifpafCommand()
        # pifpaf's driver runs ``sys.executable -m httpbin.core``: its own
        # Python, the one running these tests, must have httpbin.
        if importlib.util.find_spec("httpbin") is None:
            self.skipTest("pifpaf runs httpbin with its own Python: pip install httpbin")
        port = str(self.useFixture(PortFixture()).port)
        theirs, ours = self.environments("httpbin", ["--port", port], [])
        self.assertEqual("http://127.0.0.1:{port}", theirs["PIFPAF_URL"])
        self.assertEqual("{port}", theirs["PIFPAF_HTTPBIN_PORT"])
        self.assertSameExports(theirs, ours)

    def test_request_under_run(self) -> None:
        script = (
            "import json, os, urllib.request; "
            "url = os.environ['FIXTURES_DAEMONS_HTTPBIN_URL'] + '/get?via=cli'; "
            "print(json.load(urllib.request.urlopen(url, timeout=30))['args']['via'])"
        )
        result = self.cli("run", "httpbin", "--", sys.executable, "-c", script)
        self.assertStatus(0, result)
        self.assertEqual("cli\n", result.stdout)
