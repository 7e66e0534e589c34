"""Mosquitto, an MQTT broker: one loopback listener, a password of its own.

Mosquitto 2 listens only where its configuration says, so the fixture
writes ``mosquitto.conf`` in its private temp dir: one listener on
``host:port``, anonymous clients refused, a password file with one user
(its password random per daemon, so that other local users cannot
connect), persistence in the temp dir (retained messages survive
:meth:`~MosquittoFixture.stopped`). A retained message is the broker's
only stored data: ``reset()`` clears the retained messages (all of them,
or those under an attached fixture's topic prefix).
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import typing
import uuid

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.credentials import PasswordAuth
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import KeyPrefix
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.errors import AdminError, ClientLibraryMissing
from fixtures_daemons.process.probes import LogPattern, Probe
from fixtures_daemons.process.waiting import Deadline

__all__ = ["MosquittoFixture", "MosquittoResource", "MosquittoAdmin", "TopicPrefix"]

EXTRA = "fixtures-daemons[mosquitto]"
#: The user clients log in as (its password is random per daemon).
#: mosquitto_passwd's PBKDF2-SHA512 iterations (its ``$7$`` format).
_PBKDF2_ITERATIONS = 101


def _paho(name: str, request: str) -> typing.Any:
    try:
        import paho.mqtt.client as mqtt  # here: only the admin needs it
    except ImportError:
        raise ClientLibraryMissing(name, request, "paho.mqtt", EXTRA) from None
    return mqtt


def password_line(user: str, password: str) -> str:
    """A line of a mosquitto 2 password file (what ``mosquitto_passwd``
    writes: PBKDF2-SHA512, 101 iterations, a 12-byte salt)."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    return "%s:$7$%d$%s$%s\n" % (
        user,
        _PBKDF2_ITERATIONS,
        base64.b64encode(salt).decode(),
        base64.b64encode(digest).decode(),
    )


class TopicPrefix(KeyPrefix):
    """A topic prefix of its own, ``fxd-<random>/`` (a topic level: ``/``,
    not a key prefix's ``:``), whose retained messages ``reset()`` and
    cleanUp clear."""

    separator = "/"


class _Session:
    """One paho client connected to the broker, driven by hand (no
    thread), every step bounded by ``deadline``."""

    def __init__(self, admin: MosquittoAdmin, request: str) -> None:
        self.admin = admin
        self.request = request
        self.deadline = Deadline(admin.timeout)
        mqtt = _paho(admin.name, request)
        endpoint = admin.endpoint
        self.client = client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id="fxd-admin-" + uuid.uuid4().hex[:12],
            protocol=mqtt.MQTTv311,
        )
        if endpoint.user:
            client.username_pw_set(endpoint.user, endpoint.password or None)
        client.connect_timeout = max(0.1, min(admin.timeout, 5.0))
        self.connack: typing.Any = None
        self.messages: list[typing.Any] = []
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.connect(endpoint.host, endpoint.port or 1883, keepalive=60)
        if not self.until(lambda: self.connack is not None):
            raise AdminError(admin.name, request, "no CONNACK within %.1f s" % admin.timeout)
        reason: typing.Any = self.connack  # set by the callback
        if reason.is_failure:
            raise AdminError(admin.name, request, "connection refused: %s" % reason)

    def _on_connect(self, client: typing.Any, userdata: object, *args: object) -> None:
        # (flags, reason code, properties)
        reason = args[1]
        self.connack = reason

    def _on_message(self, client: typing.Any, userdata: object, message: typing.Any) -> None:
        self.messages.append(message)

    def until(self, condition: typing.Callable[[], bool]) -> bool:
        """Run the client's network loop until ``condition()`` or the
        deadline; False at the deadline or when the connection drops."""
        while not condition():
            if self.deadline.expired():
                return False
            # loop() waits on the socket (at most that long) and reads.
            if self.client.loop(timeout=min(0.05, max(0.001, self.deadline.remaining()))):
                return bool(condition())  # disconnected (after a refusing CONNACK, say)
        return True

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop(timeout=0.01)

    def retained(self, topic_filter: str) -> dict[str, bytes]:
        """The retained messages under ``topic_filter``. The broker sends
        a subscription's retained messages before it handles the client's
        next packet, so once a message published after the subscription
        comes back, every retained one has arrived."""
        sync = "fxd-sync/" + uuid.uuid4().hex
        self.client.subscribe([(topic_filter, 0), (sync, 0)])
        self.client.publish(sync, b"", qos=0)
        if not self.until(lambda: any(m.topic == sync for m in self.messages)):
            raise AdminError(
                self.admin.name, self.request, "no answer within %.1f s" % self.admin.timeout
            )
        return {m.topic: m.payload for m in self.messages if m.retain and m.topic != sync}

    def clear(self, topics: typing.Iterable[str]) -> None:
        """Clear the retained message of each topic (an empty retained
        message deletes it), waiting for the broker's PUBACKs."""
        infos = [self.client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        if not self.until(lambda: all(info.is_published() for info in infos)):
            raise AdminError(
                self.admin.name, self.request, "no PUBACK within %.1f s" % self.admin.timeout
            )


class MosquittoAdmin(Admin):
    """A Mosquitto broker, through paho-mqtt (imported when needed; the
    ``mosquitto`` extra). Its data is its retained messages."""

    def session(self, request: str) -> _Session:
        """A connected client; :class:`~fixtures_daemons.AdminError` when
        the broker refuses it or does not answer in time, :exc:`OSError`
        when it cannot be reached."""
        return _Session(self, request)

    def answers(self) -> bool:
        """True when the broker accepts a login (CONNACK success)."""
        try:
            self.session("CONNECT").close()
        except (OSError, AdminError):
            return False
        return True

    def retained(self, topic_filter: str = "#") -> dict[str, bytes]:
        """The retained messages under ``topic_filter``, by topic."""
        session = self.session("SUBSCRIBE %s" % topic_filter)
        try:
            return session.retained(topic_filter)
        finally:
            session.close()

    def clear_retained(self, topic_filter: str = "#") -> int:
        """Clear the retained messages under ``topic_filter``; how many."""
        session = self.session("clearing retained messages under %s" % topic_filter)
        try:
            topics = list(session.retained(topic_filter))
            session.clear(topics)
        finally:
            session.close()
        return len(topics)

    def flush(self) -> None:
        self.clear_retained("#")

    def delete_prefixed(self, prefix: str, number: int = 0) -> bool:
        self.clear_retained(prefix + "#")
        return True


class MosquittoFixture(PasswordAuth, DaemonFixture):
    """A Mosquitto MQTT broker on one loopback listener, with a user and
    a random password of its own (anonymous clients refused).

    Its configuration is ``mosquitto.conf`` in the private temp dir;
    ``settings`` are lines of it (``{"max_keepalive": "30"}``), after
    ours. It is ready when it logs that it is running (after its listener
    is open). cleanUp kills it; :meth:`stopped` stops it with SIGTERM, so
    that it saves its retained messages, which are back after the restart.
    It refuses to run as root: under root it runs as
    ``$FIXTURES_DAEMONS_USER`` or ``nobody``.

    :param anonymous: allow anonymous clients, with no password file (any
        local user can then connect).
    :param persistence: keep retained messages and sessions over
        :meth:`stopped` (a database file in the temp dir).

    Attributes: ``url`` (``mqtt://user:password@host:port``), ``username``,
    ``password``, ``topic_prefix`` (empty, or when attached to a shared
    broker this fixture's own prefix, ``fxd-<random>/``: put it in front
    of your topics), ``config_path``.
    """

    daemon_name = "mosquitto"
    aliases = ("mqtt",)
    executable = Executable(
        names=("mosquitto",),
        packages={"Debian/Ubuntu": "mosquitto", "Homebrew": "mosquitto"},
        env_var="FIXTURES_DAEMONS_MOSQUITTO",
        version_args=("-h",),
    )
    refuses_root = True
    stop_signal = signal.SIGKILL
    restart_signal = signal.SIGTERM  # it saves its database first
    scheme = "mqtt"
    namespace = TopicPrefix
    admin_class = MosquittoAdmin

    def __init__(
        self,
        *,
        persistence: bool = True,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.persistence = persistence

    # -- hooks -----------------------------------------------------------------

    @property
    def config_path(self) -> str:
        return self.path("mosquitto.conf")

    def server_settings(self) -> dict[str, str]:
        settings = {
            "allow_anonymous": "true" if self.anonymous else "false",
            "persistence": "true" if self.persistence else "false",
            "persistence_location": self.temp_dir.rstrip("/") + "/",
            "persistence_file": "mosquitto.db",
            "log_dest": "stderr",
            "log_timestamp_format": "%Y-%m-%dT%H:%M:%S",
        }
        if not self.anonymous:
            settings["password_file"] = self.path("passwords")
        return settings

    def prepare(self) -> None:
        if not self.anonymous:
            self.make_password()
            self.write_file(
                "passwords", password_line(self.requested_username, self.server_password)
            )
        lines = ["%s %s" % item for item in self.settings().items()]
        # Per-listener options given in settings apply to it: it comes last.
        lines.append("listener %d %s" % (self.port, self.requested_host))
        self.write_file("mosquitto.conf", "\n".join(lines) + "\n")

    def command_line(self) -> list[str]:
        return [self.binary, "-c", self.config_path]

    def probe(self) -> Probe:
        # Logged once its listeners are open.
        return LogPattern(r"mosquitto version \S+ running")

    def build_endpoint(self) -> Endpoint:
        return self.with_credential(super().build_endpoint())

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        exports = {"TOPIC_PREFIX": endpoint.key_prefix}
        return exports

    # -- what tests use ------------------------------------------------------

    @property
    def topic_prefix(self) -> str:
        return self.endpoint.key_prefix

    def retained(self, topic_filter: str = "#") -> dict[str, bytes]:
        """The broker's retained messages under ``topic_filter``."""
        return typing.cast(MosquittoAdmin, self.admin).retained(topic_filter)


class MosquittoResource(DaemonResource):
    """A testresources manager sharing one :class:`MosquittoFixture`."""

    fixture_class = MosquittoFixture
