"""NginxFixture, with the real nginx and urllib as its HTTP client."""

from __future__ import annotations

import os
import signal
import sys
import typing
import urllib.error
import urllib.request

import fixtures
import psutil

from fixtures_daemons import CommandFailed, DaemonDied, DaemonFixture, MisuseError
from fixtures_daemons.base.binaries import find_executable
from fixtures_daemons.daemons.etcd import EtcdFixture
from fixtures_daemons.daemons.nginx import READY_PATH, NginxFixture
from fixtures_daemons.process.waiting import wait_for
from tests import base, daemon_base, test_cli

TIMEOUT = 30


def get(url: str) -> tuple[int, str, typing.Mapping[str, str]]:
    """``GET url``: its status, body and headers (an error status too)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode(), error.headers


def workers(fixture: NginxFixture) -> list[psutil.Process]:
    return psutil.Process(daemon_base.pid_of(fixture)).children()


class TestNginx(daemon_base.DaemonContract, daemon_base.AttachContract, daemon_base.DaemonTestCase):
    """The contracts on a fixture that serves its own directory: a file
    written into ``root`` is the value, ``GET /<key>`` reads it back."""

    daemon_class = NginxFixture

    def write(self, fixture: NginxFixture, key: str, value: str) -> None:
        path = os.path.join(fixture.root, key)
        with open(path, "w") as f:  # mode 0644: nobody reads it too
            f.write(value)

    def read(self, fixture: NginxFixture, key: str) -> str | None:
        status, body, _ = get("%s/%s" % (fixture.url, key))
        if status == 404:
            return None
        self.assertEqual(200, status, body)
        return body

    def assertCannotConnect(self, fixture: NginxFixture) -> None:
        error = self.assertRaises(urllib.error.URLError, get, fixture.url + "/key")
        self.assertIsInstance(error.reason, ConnectionRefusedError)

    # -- nginx specifics -------------------------------------------------------

    def test_everything_in_its_temp_dir(self) -> None:
        daemon = self.useFixture(NginxFixture())
        self.assertEqual("http://127.0.0.1:%d" % daemon.port, daemon.url)
        self.assertEqual(daemon.url, daemon.http_url)
        self.assertEqual(os.path.join(daemon.temp_dir, "html"), daemon.root)
        self.assertEqual(daemon.root, daemon.env["FIXTURES_DAEMONS_NGINX_ROOT"])
        self.write(daemon, "page.html", "<p>hi</p>")
        status, body, headers = get(daemon.url + "/page.html")
        self.assertEqual((200, "<p>hi</p>"), (status, body))
        self.assertEqual("text/html", headers["Content-Type"])

        # The worker logs the request after it answered it.
        def logged() -> bool:
            with open(daemon.access_log_path) as f:
                return '"GET /page.html HTTP/1.1" 200' in f.read()

        self.assertTrue(wait_for(logged, 10))
        made = set(os.listdir(daemon.temp_dir))
        for name in ("nginx.conf", "nginx.pid", "access.log", "nginx.log", "html"):
            self.assertIn(name, made)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            self.assertIn(kind + "_temp", made)
        with open(os.path.join(daemon.temp_dir, "nginx.pid")) as f:
            self.assertEqual(str(daemon_base.pid_of(daemon)), f.read().strip())
        # The master and its one worker; the probe's requests are not logged.
        self.assertEqual(1, len(workers(daemon)))
        self.assertNotIn(READY_PATH, open(daemon.access_log_path).read())
        self.assertNotIn("[emerg]", open(daemon.log_path).read())

    def test_serves_a_directory_of_yours(self) -> None:
        directory = self.scriptsDir()  # mode 0755: nobody can read it
        with open(os.path.join(directory, "data.json"), "w") as f:
            f.write('{"a": 1}')
        daemon = self.useFixture(NginxFixture(root=directory))
        self.assertEqual(directory, daemon.root)
        status, body, headers = get(daemon.url + "/data.json")
        self.assertEqual((200, '{"a": 1}'), (status, body))
        self.assertEqual("application/json", headers["Content-Type"])
        # Not the fixture's to empty: reset() leaves the user's files.
        daemon.reset()
        self.assertEqual(200, get(daemon.url + "/data.json")[0])

    def test_root_that_nginx_cannot_read(self) -> None:
        if not daemon_base.IS_ROOT:
            self.skipTest("needs root: nginx runs as nobody then")
        directory = self.useFixture(fixtures.TempDir()).path  # 0700, root's
        error = self.assertSetUpRaises(MisuseError, NginxFixture(root=directory))
        self.assertIn("nobody", str(error))
        self.assertIn("chmod o+rx", str(error))

    def test_root_that_is_not_a_directory(self) -> None:
        error = self.assertSetUpRaises(MisuseError, NginxFixture(root="/nonexistent/site"))
        self.assertIn("not a directory", str(error))

    def test_root_and_proxy_together(self) -> None:
        error = self.assertRaises(
            MisuseError, NginxFixture, root="/tmp", proxy="http://127.0.0.1:1"
        )
        self.assertIn("give one of root, proxy and proxy_daemon", str(error))
        error = self.assertRaises(MisuseError, NginxFixture, proxy="etcd://127.0.0.1:1")
        self.assertIn("http:// or https://", str(error))
        self.assertRaises(MisuseError, NginxFixture, proxy=object())

    def test_proxy_to_an_upstream_it_starts(self) -> None:
        upstream = NginxFixture()
        # cleanUp must stop nginx first, then the upstream it started.
        front_tree: list[psutil.Process] = []
        seen: list[bool] = []
        original = upstream.cleanUp

        def clean_up(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
            seen.append(all(base.is_gone(p) for p in front_tree))
            return original(*args, **kwargs)

        upstream.cleanUp = clean_up  # type: ignore[method-assign]
        front = self.startManually(NginxFixture(proxy=upstream))
        self.assertIs(upstream, front.upstream)
        self.assertEqual(upstream.url, front.proxy_url)
        self.assertEqual(upstream.url, front.env["FIXTURES_DAEMONS_NGINX_PROXY_URL"])
        self.assertEqual("", front.root)
        self.assertNotEqual(upstream.port, front.port)
        self.write(upstream, "hello.txt", "from upstream")
        self.assertEqual((200, "from upstream"), get(front.url + "/hello.txt")[:2])
        self.assertEqual(404, get(front.url + "/missing")[0])
        # The upstream down: nginx answers for it, 502, and still answers
        # its own ready location.
        with upstream.stopped():
            self.assertEqual(502, get(front.url + "/hello.txt")[0])
            self.assertTrue(front.admin.answers())
        self.assertEqual(200, get(front.url + "/hello.txt")[0])
        front_tree += daemon_base.process_tree(daemon_base.pid_of(front))
        upstream_tree = daemon_base.process_tree(daemon_base.pid_of(upstream))
        temp_dirs = (front.temp_dir, upstream.temp_dir)
        front.cleanUp()
        self.assertEqual([True], seen)
        self.assertGone(*front_tree, *upstream_tree)
        self.assertDirGone(*temp_dirs)

    def test_proxy_to_an_upstream_of_yours_and_a_path(self) -> None:
        upstream = self.useFixture(NginxFixture())
        os.mkdir(os.path.join(upstream.root, "sub"))
        self.write(upstream, "sub/a.txt", "in sub")
        front = self.startManually(NginxFixture(proxy=upstream.url + "/sub/"))
        self.assertIsNone(front.upstream)
        self.assertEqual((200, "in sub"), get(front.url + "/a.txt")[:2])
        # A set-up fixture given as the upstream is the caller's: it stays.
        other = self.startManually(NginxFixture(proxy=upstream))
        self.assertEqual((200, "in sub"), get(other.url + "/sub/a.txt")[:2])
        other.cleanUp()
        front.cleanUp()
        self.assertIsNone(upstream.process.process.poll())
        self.assertEqual(200, get(upstream.url + "/sub/a.txt")[0])

    def test_proxy_to_etcd(self) -> None:
        # etcd's url is etcd://: its http_url is what nginx proxies to; and
        # the same etcd again, found from what it exports (proxy_daemon).
        etcd = EtcdFixture()
        front = self.useFixture(NginxFixture(proxy=etcd))
        self.assertEqual(etcd.http_url, front.proxy_url)
        status, body, _ = get(front.url + "/health")
        self.assertEqual(200, status)
        self.assertIn('"health":"true"', body)
        by_name = self.useFixture(NginxFixture(proxy_daemon="etcd"))
        self.assertEqual(etcd.http_url, by_name.proxy_url)
        self.assertIn('"health":"true"', get(by_name.url + "/health")[1])

    def test_proxy_daemon_not_exported(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_NOPE_URL"))
        self.useFixture(fixtures.EnvironmentVariable("FIXTURES_DAEMONS_NOPE_HTTP_URL"))
        error = self.assertSetUpRaises(MisuseError, NginxFixture(proxy_daemon="nope"))
        self.assertIn("fixtures-daemons run nope -- ", str(error))

    def test_settings_and_reload(self) -> None:
        daemon = self.useFixture(
            NginxFixture(
                workers=2,
                settings={"events.worker_connections": "64", "add_header": "X-Fxd one"},
                server_config="location = /teapot { return 418; }",
            )
        )
        self.write(daemon, "a.txt", "a")
        # The master forks its workers one by one: the first may answer
        # before the second exists.
        self.assertTrue(wait_for(lambda: len(workers(daemon)) == 2, 10), workers(daemon))
        self.assertEqual("one", get(daemon.url + "/a.txt")[2]["X-Fxd"])
        self.assertEqual(418, get(daemon.url + "/teapot")[0])
        with open(daemon.conf_path) as f:
            conf = f.read()
        self.assertIn("worker_processes 2;", conf)
        self.assertIn("    worker_connections 64;", conf)
        master, old = daemon_base.pid_of(daemon), {p.pid for p in workers(daemon)}
        daemon.reload(settings={"add_header": "X-Fxd two"}, server_config="")
        self.assertEqual(2, daemon.generation)
        self.assertEqual("two", get(daemon.url + "/a.txt")[2]["X-Fxd"])
        self.assertEqual(404, get(daemon.url + "/teapot")[0])
        self.assertEqual(master, daemon_base.pid_of(daemon))
        self.assertFalse(old & {p.pid for p in workers(daemon)})
        # A bad configuration is refused before nginx sees it; the running
        # one stays, and so does the file.
        error = self.assertRaises(CommandFailed, daemon.reload, settings={"no_such_directive": "1"})
        self.assertIn('unknown directive "no_such_directive"', str(error))
        self.assertEqual(2, daemon.generation)
        self.assertEqual("two", get(daemon.url + "/a.txt")[2]["X-Fxd"])
        self.assertNotIn("no_such_directive", open(daemon.conf_path).read())
        self.assertNotIn("no_such_directive", daemon.extra_settings)

    def test_workers_die_with_a_killed_master(self) -> None:
        daemon = self.startManually(NginxFixture())
        tree = daemon_base.process_tree(daemon_base.pid_of(daemon))
        self.assertEqual(2, len(tree))
        os.kill(tree[0].pid, signal.SIGKILL)  # its worker is orphaned
        self.assertGone(tree[0])
        temp_dir = daemon.temp_dir
        # The master's death is reported, and everything still goes.
        error = self.assertRaises(DaemonDied, daemon.cleanUp)
        self.assertEqual(-signal.SIGKILL, error.returncode)
        self.assertGone(*tree)
        self.assertDirGone(temp_dir)


class TestNginxBadInputs(daemon_base.BadInputs, daemon_base.DaemonTestCase):
    daemon_class = NginxFixture
    package = "nginx"
    rejected = {"settings": {"no_such_directive": "1"}}
    complaint = 'unknown directive "no_such_directive"'
    crash_complaint = "nginx crashing on purpose"

    def broken(self, **kwargs: typing.Any) -> DaemonFixture:
        # nginx has no data to corrupt: a wrapper that crashes before it
        # starts nginx.
        real = find_executable(NginxFixture.executable)
        wrapper = self.writeScript(
            self.scriptsDir(),
            "nginx",
            "#!/bin/sh\necho 'nginx crashing on purpose'\n"
            'kill -%d $$\nexec %s "$@"\n' % (signal.SIGKILL, real),
        )
        return NginxFixture(binary=wrapper, **kwargs)


class TestNginxCli(test_cli.CliTestCase):
    def test_composed_under_run(self) -> None:
        # The composition of the guide: nginx in front of etcd, the upstream
        # found from what the outer run exports.
        script = (
            "import os, urllib.request; "
            "print(urllib.request.urlopen(os.environ['FIXTURES_DAEMONS_NGINX_URL'] + '/health',"
            " timeout=30).read().decode())"
        )
        result = self.cli(
            *("run", "etcd", "--"),
            *(*test_cli.CLI, "run", "nginx", "--proxy-daemon", "etcd", "--"),
            *(sys.executable, "-c", script),
        )
        self.assertStatus(0, result)
        self.assertIn('"health":"true"', result.stdout)
