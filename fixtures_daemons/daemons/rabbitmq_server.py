"""RabbitMQ servers the library did not start: a vhost per fixture.

AMQP clients cannot make a vhost, so this admin uses the broker's
management HTTP API (the ``rabbitmq_management`` plugin, which managed
brokers and the ``rabbitmq:*-management`` images have), with the URL's
user and password: ``amqp://user:password@host:5672/`` reaches the API at
``http://host:15672``; ``?management=https://host:15671`` names another
place (``&ca_cert=/path/ca.pem`` for HTTPS with a private CA). The user
needs the ``administrator`` tag: RabbitMQ lets no one else create vhosts.
Each vhost it makes carries its maker's mark
(:mod:`fixtures_daemons.base.makers`) in its description, and the user is
given every permission on it. The first fixture of a process deletes the
vhosts whose maker is dead.
"""

from __future__ import annotations

import base64
import json
import ssl
import typing
import urllib.error
import urllib.parse
import urllib.request

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.endpoint import ADMIN_QUERY, redact
from fixtures_daemons.base.makers import left, mark
from fixtures_daemons.errors import AdminError, ServerError

__all__ = ["RabbitmqServerAdmin"]


class RabbitmqServerAdmin(Admin):
    """Vhosts on a RabbitMQ broker the library did not start, through its
    management HTTP API."""

    def _options(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.endpoint.extra.get(ADMIN_QUERY, "")))

    def api_root(self) -> str:
        """Where the management API is (no trailing slash)."""
        given = self._options().get("management", "")
        if given:
            return given.rstrip("/")
        host = self.endpoint.host
        return "http://%s:15672" % ("[%s]" % host if ":" in host else host)

    def request(self, method: str, path: str, body: object = None) -> typing.Any:
        """``method`` on ``/api/<path>`` with ``body`` as JSON; the decoded
        reply (None when empty). The API's refusals raise AdminError with
        its reason; no connection raises OSError."""
        url = "%s/api/%s" % (self.api_root(), path)
        if not url.startswith(("http://", "https://")):
            raise AdminError(self.name, path, "the management API's URL is not http(s): %s" % url)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http(s))
        token = base64.b64encode(
            ("%s:%s" % (self.endpoint.user, self.endpoint.password)).encode()
        ).decode()
        request.add_header("Authorization", "Basic " + token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        context = None
        ca_cert = self._options().get("ca_cert")
        if url.startswith("https:"):
            context = ssl.create_default_context(cafile=ca_cert or None)
        try:
            with urllib.request.urlopen(  # noqa: S310 (http(s), checked above)
                request, timeout=self.timeout, context=context
            ) as reply:
                text = reply.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace").strip()
            raise AdminError(
                self.name, "%s /api/%s" % (method, path), "HTTP %d: %s" % (exc.code, detail)
            ) from None
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            raise AdminError(
                self.name, "%s /api/%s" % (method, path), "not JSON: %r" % text[:200]
            ) from None

    def answers(self) -> bool:
        try:
            self.request("GET", "whoami")
        except (OSError, AdminError):
            return False
        return True

    def check_server(self, source: str) -> None:
        url = redact(self.endpoint.url)
        try:
            self.request("GET", "whoami")
        except AdminError as exc:
            if "401" in exc.reason:
                reason, hint = (
                    "it refuses the credentials (%s)" % exc.reason,
                    (
                        "check the user and password in the URL; the user needs the "
                        "administrator tag"
                    ),
                )
            else:
                reason, hint = exc.reason, "see the guide, 'Servers'"
            raise ServerError(self.name, source, url, reason, hint) from None
        except OSError as exc:
            text = str(getattr(exc, "reason", exc))
            if "ssl" in text.lower() or "certificate" in text.lower():
                reason, hint = "TLS failed (%s)" % text, "check management= and ca_cert"
            else:
                reason, hint = (
                    "its management API does not answer at %s (%s)" % (self.api_root(), text),
                    "enable the rabbitmq_management plugin, or name the API with ?management=URL",
                )
            raise ServerError(self.name, source, url, reason, hint) from None

    # -- vhosts ------------------------------------------------------------------

    @staticmethod
    def _vhost(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    def database_exists(self, name: str) -> bool:
        try:
            self.request("GET", "vhosts/" + self._vhost(name))
        except AdminError as exc:
            if "HTTP 404" in exc.reason:
                return False
            raise
        return True

    def create_database(self, name: str, template: str | None = None) -> None:
        self.sweep()
        self.request("PUT", "vhosts/" + self._vhost(name), {"description": mark()})
        try:
            self.request(
                "PUT",
                "permissions/%s/%s" % (self._vhost(name), self._vhost(self.endpoint.user)),
                {"configure": ".*", "write": ".*", "read": ".*"},
            )
        except BaseException:
            self.drop_database(name)
            raise

    def drop_database(self, name: str) -> None:
        try:
            self.request("DELETE", "vhosts/" + self._vhost(name))
        except AdminError as exc:
            if "HTTP 404" not in exc.reason:
                raise

    def flush(self) -> None:
        self._lacks("flush()", "way to be emptied that spares other people's vhosts")

    def leftovers(self, remove: bool = False, templates: bool = False) -> list[str]:
        vhosts = self.request("GET", "vhosts") or []
        found = [
            str(vhost.get("name"))
            for vhost in vhosts
            if isinstance(vhost, dict) and left(str(vhost.get("description") or ""))
        ]
        if remove:
            for name in found:
                try:
                    self.drop_database(name)
                except (AdminError, OSError):
                    pass  # the next sweep
        return found
