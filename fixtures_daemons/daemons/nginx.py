"""nginx: a web server that serves a directory or proxies to an upstream.

It runs as an unprivileged master (``user`` is never set: as root, the
whole nginx runs as ``nobody``, through ``refuses_root``), in the
foreground (``daemon off;``), with everything in its private temp dir:
its configuration, pid file, access log and every ``*_temp_path``
(``nginx -p <temp dir>/ -c nginx.conf -e stderr``; its error log is
stderr, so it is the fixture's log). One worker process, test speed.

Given an upstream fixture that is not set up yet, the nginx fixture sets
it up with ``useFixture`` before it starts nginx: cleanUp stops nginx
first, then the upstream.
"""

from __future__ import annotations

import os
import shutil
import signal
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.errors import AdminError, CommandFailed, MisuseError
from fixtures_daemons.process import _reaper
from fixtures_daemons.process.probes import ATTEMPT_TIMEOUT, Callable, Probe
from fixtures_daemons.process.waiting import wait_for

__all__ = ["NginxFixture", "NginxResource", "NginxAdmin"]

#: The path nginx itself answers (never the document root nor the
#: upstream): the readiness probe and attaching ask it.
READY_PATH = "/_fixtures_daemons_ready"

#: The contexts a ``settings`` key may name (``events.worker_connections``);
#: a key without one goes into ``http``.
CONTEXTS = ("main", "events", "http")

#: A few MIME types, so that no file outside the temp dir is read
#: (``/etc/nginx/mime.types`` is where Debian puts it, not Homebrew).
_TYPES = {
    "text/html": "html htm",
    "text/plain": "txt",
    "text/css": "css",
    "text/xml": "xml",
    "text/javascript": "js mjs",
    "application/json": "json",
    "image/png": "png",
    "image/jpeg": "jpg jpeg",
    "image/gif": "gif",
    "image/svg+xml": "svg",
    "application/pdf": "pdf",
    "application/wasm": "wasm",
}


def _http_host(host: str) -> str:
    return "[%s]" % host if ":" in host else host


class NginxAdmin(Admin):
    """One of our nginx servers, over HTTP (:mod:`http.client`) on the
    endpoint's port: it asks :data:`READY_PATH`, which nginx answers
    itself with the configuration's generation."""

    def generation(self) -> str:
        """The generation of the configuration that answers (``"1"`` after
        the start, one more after each :meth:`NginxFixture.reload`);
        :exc:`OSError` when nothing answers."""
        import http.client  # here: it would slow every CLI run

        endpoint = self.endpoint
        connection = http.client.HTTPConnection(
            _http_host(endpoint.host), endpoint.port or 0, timeout=self.timeout
        )
        try:
            connection.request("GET", READY_PATH)
            response = connection.getresponse()
            body = response.read()
        except http.client.HTTPException as exc:
            raise OSError("%s: %s" % (type(exc).__name__, exc)) from exc
        finally:
            connection.close()
        if response.status != 200:
            raise AdminError(
                self.name, "GET " + READY_PATH, "answered %d, not 200" % response.status
            )
        return body.decode("ascii", "replace").strip()

    def answers(self) -> bool:
        """True when nginx answers its own ready location; False when it is
        down or hung (bounded by the timeout)."""
        try:
            return bool(self.generation())
        except (OSError, AdminError):
            return False

    def flush(self) -> None:
        """Empty the document root the fixture made in its temp dir; a
        directory of the user's (``root=``) or a proxy has nothing of the
        fixture's to empty."""
        root = self.endpoint.extra.get("root", "")
        if not (root and self.endpoint.extra.get("own_root") == "1"):
            return
        for entry in os.listdir(root):
            path = os.path.join(root, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


class NginxFixture(DaemonFixture):
    """An nginx web server on loopback: it serves a directory, or proxies
    every request to an upstream URL.

    With neither ``root`` nor ``proxy`` it serves an empty directory of its
    own (``root``, in its temp dir): put files there. As root, nginx runs
    as ``nobody`` (``$FIXTURES_DAEMONS_USER``), which must be able to read
    a ``root`` of yours. cleanUp stops it with SIGTERM (nginx's fast
    shutdown: the master stops its workers, then exits); so does
    :meth:`stopped`.

    :param root: serve this directory (absolute, or relative to the
        current directory); readable by the user nginx runs as.
    :param proxy: proxy every request to this upstream: a URL
        (``http://127.0.0.1:8080``; a path in it replaces the location's,
        as in ``proxy_pass``), or a fixture with an ``http_url`` or an
        http ``url`` (an ``EtcdFixture``, another ``NginxFixture``). A
        fixture not set up yet is set up by this one, through
        ``useFixture``, before nginx starts, and cleaned up after nginx
        stops.
    :param proxy_daemon: proxy to the daemon of that name exported around
        us (``fixtures-daemons run etcd -- fixtures-daemons run nginx
        --proxy-daemon etcd -- cmd``): its ``<PREFIX>_<NAME>_HTTP_URL``,
        else its ``<PREFIX>_<NAME>_URL``.
    :param workers: nginx's ``worker_processes``.
    :param server_config: nginx configuration text added to the ``server``
        block (``location`` blocks, ``add_header`` lines).

    ``settings`` are nginx directives (``{"client_max_body_size": "1m"}``
    writes ``client_max_body_size 1m;``) for the ``http`` block, or for
    ``main`` or ``events`` with the context in front
    (``events.worker_connections``).

    Attributes: ``url`` (``http://host:port``, also ``http_url``),
    ``root`` (the directory served, or ``""`` when proxying),
    ``proxy_url`` (the upstream's URL, or ``""``), ``upstream`` (the
    upstream fixture, when one was given), ``conf_path``,
    ``access_log_path``, ``generation`` (of the configuration);
    :meth:`reload` applies new settings without a restart.
    """

    daemon_name = "nginx"
    executable = Executable(
        names=("nginx",),
        packages={"Debian/Ubuntu": "nginx", "Homebrew": "nginx"},
        env_var="FIXTURES_DAEMONS_NGINX",
        version_args=("-v",),
    )
    refuses_root = True
    stop_signal = signal.SIGTERM  # fast shutdown: a few milliseconds
    restart_signal = signal.SIGTERM
    scheme = "http"
    admin_class = NginxAdmin
    #: Its upstream may come from another fixture's exported URL.
    spare_servers = False

    def __init__(
        self,
        *,
        root: str | None = None,
        proxy: typing.Any = None,
        proxy_daemon: str | None = None,
        workers: int = 1,
        server_config: str = "",
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        given = [
            name
            for name, value in (("root", root), ("proxy", proxy), ("proxy_daemon", proxy_daemon))
            if value
        ]
        if len(given) > 1:
            raise MisuseError(
                self.daemon_name,
                "%s(%s=...)" % (type(self).__name__, "=..., ".join(given)),
                "nginx serves a directory or proxies to an upstream: give one of root, "
                "proxy and proxy_daemon",
            )
        if proxy is not None and not isinstance(proxy, str) and not _has_url(proxy):
            raise MisuseError(
                self.daemon_name,
                "%s(proxy=%r)" % (type(self).__name__, proxy),
                "proxy is a URL or a fixture with an http_url or url attribute",
            )
        if isinstance(proxy, str):
            _check_url(proxy, self.daemon_name, "proxy=%r" % proxy)
        # Absolute now: a relative path means the caller's directory.
        self.requested_root = os.path.abspath(root) if root else None
        self.proxy = proxy
        self.proxy_daemon = proxy_daemon
        self.workers = workers
        self.server_config = server_config
        self.generation = 0
        self._root = ""
        self._proxy_url = ""

    # -- hooks -----------------------------------------------------------------

    def _upstream_url(self) -> str:
        if self.proxy_daemon:
            stem = "%s_%s_" % (self.env_prefix, self.proxy_daemon.upper())
            url = os.environ.get(stem + "HTTP_URL") or os.environ.get(stem + "URL", "")
            if not url:
                raise MisuseError(
                    self.daemon_name,
                    "proxy_daemon=%r" % self.proxy_daemon,
                    "neither %sHTTP_URL nor %sURL is set: run nginx inside `fixtures-daemons "
                    "run %s -- ...`" % (stem, stem, self.proxy_daemon),
                )
            _check_url(url, self.daemon_name, "proxy_daemon=%r (%s)" % (self.proxy_daemon, url))
            return url
        if self.proxy is None:
            return ""
        if isinstance(self.proxy, str):
            return self.proxy
        try:
            url = _url_of(self.proxy)
        except MisuseError:  # not set up: ours to start, and to stop after nginx
            self.useFixture(self.proxy)
            url = _url_of(self.proxy)
        _check_url(
            url, self.daemon_name, "proxy=%s (its URL is %s)" % (type(self.proxy).__name__, url)
        )
        return url

    def prepare(self) -> None:
        self.generation = 0
        self._proxy_url = self._upstream_url()
        if self._proxy_url:
            self._root = ""
        elif self.requested_root:
            self._root = self.requested_root
            self._check_root()
        else:
            self._root = self.path("html")
            os.mkdir(self._root, 0o755)
            if self.run_as is not None:
                os.chown(self._root, self.run_as.uid, self.run_as.gid)
        self.write_config()

    def _check_root(self) -> None:
        root = self._root
        if not os.path.isdir(root):
            raise MisuseError(
                self.daemon_name, "root=%r" % root, "it is not a directory: give one to serve"
            )
        if self.run_as is None:
            return
        try:  # as nginx's user: can it list and read the directory?
            self.run_helper(["test", "-r", root, "-a", "-x", root], "checking root=")
        except CommandFailed:
            raise MisuseError(
                self.daemon_name,
                "root=%r" % root,
                "nginx runs as %s, who cannot read it: make it and its parents readable "
                "(chmod o+rx), or choose the user with os_user= or $FIXTURES_DAEMONS_USER"
                % self.run_as.name,
            ) from None

    def server_settings(self) -> dict[str, str]:
        return {
            "main.worker_processes": str(self.workers),
            "events.worker_connections": "256",
            "access_log": "access.log",
            "sendfile": "on",
            "keepalive_timeout": "5",
        }

    def config(self) -> str:
        """The text of ``nginx.conf``, from the parameters and settings."""
        by_context: dict[str, list[str]] = {context: [] for context in CONTEXTS}
        for key, value in self.settings().items():
            context, _, directive = key.rpartition(".")
            if context not in CONTEXTS:
                context = "http"
            by_context[context].append("%s %s;" % (directive, value) if value else directive + ";")
        host = _http_host(self.requested_host)
        if self._proxy_url:
            content = "location / {\n            proxy_pass %s;\n        }" % self._proxy_url
        else:
            content = "root %s;" % _quote(self._root)
        types = "\n".join("        %s %s;" % item for item in _TYPES.items())
        return _CONFIG % {
            "main": _lines(by_context["main"], 0),
            "events": _lines(by_context["events"], 4),
            "http": _lines(by_context["http"], 4),
            "types": types,
            "listen": "%s:%d" % (host, self.port),
            "ready": READY_PATH,
            "generation": self.generation,
            "content": content,
            "server_config": self.server_config,
        }

    def write_config(self) -> str:
        """Write ``nginx.conf`` for the next generation; return its path."""
        self.generation += 1
        return self.write_file("nginx.conf", self.config(), 0o644)

    def command_line(self) -> list[str]:
        return [self.binary, "-p", self.temp_dir + "/", "-c", "nginx.conf", "-e", "stderr"]

    def probe(self) -> Probe:
        # Each attempt bounded on its own: one stuck request must not use up
        # the whole start's timeout.
        admin = self.make_admin(self.build_endpoint())
        admin.timeout = min(self.timeout, ATTEMPT_TIMEOUT)
        return Callable(admin.answers, "GET %s answered by nginx" % READY_PATH)

    def build_endpoint(self) -> Endpoint:
        endpoint = super().build_endpoint()
        if self._proxy_url:
            return endpoint.replace(extra={"proxy": self._proxy_url})
        own = "1" if self._root == self.path("html") else "0"
        return endpoint.replace(extra={"root": self._root, "own_root": own})

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        if endpoint.extra.get("proxy"):
            return {"PROXY_URL": endpoint.extra["proxy"]}
        return {"ROOT": endpoint.extra.get("root", "")}

    # -- what tests use ------------------------------------------------------

    @property
    def http_url(self) -> str:
        """``http://host:port``, as :attr:`url`."""
        return self.url

    @property
    def root(self) -> str:
        """The directory served, or ``""`` when proxying."""
        return self.endpoint.extra.get("root", "")

    @property
    def proxy_url(self) -> str:
        """The upstream's URL, or ``""`` when serving a directory."""
        return self.endpoint.extra.get("proxy", "")

    @property
    def upstream(self) -> typing.Any:
        """The upstream fixture given as ``proxy``, or None."""
        return None if isinstance(self.proxy, str) else self.proxy

    @property
    def conf_path(self) -> str:
        return os.path.join(self.temp_dir, "nginx.conf")

    @property
    def access_log_path(self) -> str:
        return os.path.join(self.temp_dir, "access.log")

    def reload(
        self, settings: typing.Mapping[str, str] | None = None, server_config: str | None = None
    ) -> None:
        """Apply new ``settings`` (merged into those given) or a new
        ``server_config`` without a restart: the configuration is checked
        with ``nginx -t`` first (a bad one raises
        :class:`~fixtures_daemons.CommandFailed` with nginx's complaint, and
        the running configuration stays), then nginx reloads (SIGHUP);
        returns once the new workers answer and the old ones have exited."""
        process = self._own_process("reload()")
        previous = (dict(self.extra_settings), self.server_config, self.generation)
        if settings:
            self.extra_settings.update(settings)
        if server_config is not None:
            self.server_config = server_config
        try:
            self.write_config()
            self.run_helper(self.command_line() + ["-t", "-q"], "nginx -t")
        except BaseException:
            self.extra_settings, self.server_config, generation = previous
            self.generation = generation - 1
            self.write_config()
            raise
        pid = process.pid or 0
        old = _children(pid)
        os.kill(pid, signal.SIGHUP)
        admin = typing.cast(NginxAdmin, self.admin)
        wanted = str(self.generation)

        def reloaded() -> bool:
            try:
                if admin.generation() != wanted:
                    return False
            except (OSError, AdminError):
                return False
            return not any(_reaper.start_time(child) == started for child, started in old)

        if not wait_for(reloaded, self.timeout):
            raise AdminError(
                self.daemon_name,
                "reload (SIGHUP)",
                "the new configuration (generation %s) did not take over within %g s: see "
                "its log, %s" % (wanted, self.timeout, self.log_path),
            )


def _children(pid: int) -> list[tuple[int, str]]:
    """The children of ``pid`` (nginx's workers), each with its start time."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            pids = [int(word) for word in f.read().split()]
    except OSError:
        return []
    return [(child, _reaper.start_time(child)) for child in pids]


def _has_url(upstream: object) -> bool:
    return hasattr(type(upstream), "http_url") or hasattr(type(upstream), "url")


def _url_of(upstream: typing.Any) -> str:
    """The upstream fixture's HTTP URL (MisuseError when it is not set up)."""
    if hasattr(type(upstream), "http_url"):
        return str(upstream.http_url)
    return str(upstream.url)


def _check_url(url: str, name: str, call: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise MisuseError(name, call, "nginx proxies to an http:// or https:// URL, not %r" % url)


def _quote(path: str) -> str:
    return '"%s"' % path.replace("\\", "\\\\").replace('"', '\\"')


def _lines(lines: list[str], indent: int) -> str:
    return "\n".join(" " * indent + line for line in lines)


_CONFIG = """\
# Written by fixtures-daemons: nginx -p <this dir>/ -c nginx.conf -e stderr
daemon off;
master_process on;
pid nginx.pid;
lock_file nginx.lock;
error_log stderr notice;
%(main)s

events {
%(events)s
}

http {
    default_type application/octet-stream;
    types {
%(types)s
    }
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
%(http)s

    server {
        listen %(listen)s;
        server_name _;

        location = %(ready)s {
            access_log off;
            default_type text/plain;
            return 200 "%(generation)s\\n";
        }

        %(content)s

%(server_config)s
    }
}
"""


class NginxResource(DaemonResource):
    """A testresources manager sharing one :class:`NginxFixture`."""

    fixture_class = NginxFixture
