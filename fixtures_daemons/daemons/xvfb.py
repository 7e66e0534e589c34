"""Xvfb, the virtual-framebuffer X server, on a display number of its own.

The display number is reserved like a port
(:mod:`fixtures_daemons.process.displays`). The server listens on its unix
sockets only (``-nolisten tcp``) and admits only clients that present the
random cookie of the Xauthority file in its private temp dir (``-auth``),
exported as ``XAUTHORITY`` with ``DISPLAY``: another local user cannot
connect.

Readiness is an X connection setup with that cookie on the display's
socket, answered "success": the server has loaded the cookie and serves
clients. ``-displayfd`` would say the same, but an X server given it makes
no ``/tmp/.X<n>-lock``, and then an X server that does not use this
library (``xvfb-run``, Xvnc) does not see that the display is taken and
steals its socket. The setup is 12 bytes and a cookie each way, written
here (:doc:`/design`, the rule for hand-written protocol code: only for
servers this library started, with the cookie it made); no X client
library is needed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import typing

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.binaries import Executable
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.namespaces import WholeDaemon
from fixtures_daemons.base.resources import DaemonResource
from fixtures_daemons.errors import AdminError, MisuseError
from fixtures_daemons.process import probes
from fixtures_daemons.process.displays import (
    DisplayFixture,
    ensure_socket_dir,
    x_socket_path,
)
from fixtures_daemons.process.probes import Probe

__all__ = ["XvfbFixture", "XvfbResource", "XvfbAdmin"]

#: The only authorization protocol we use.
COOKIE_NAME = b"MIT-MAGIC-COOKIE-1"
#: An Xauthority entry valid for any address (libXau matches it for the
#: display number alone): the host name a client computes does not matter.
FAMILY_WILD = 0xFFFF
#: The depths Xvfb's screens accept.
DEPTHS = (1, 4, 8, 12, 15, 16, 24, 30)
_RESOLUTION = re.compile(r"^(\d{1,5})x(\d{1,5})(?:x(\d{1,2}))?$")


def parse_resolution(resolution: str, name: str = "xvfb") -> tuple[int, int, int]:
    """``WIDTHxHEIGHT[xDEPTH]`` as ``(width, height, depth)`` (depth 24
    when not given); :class:`~fixtures_daemons.MisuseError` saying what is
    wrong otherwise."""
    call = "XvfbFixture(resolution=%r)" % (resolution,)
    match = _RESOLUTION.match(resolution) if isinstance(resolution, str) else None
    if match is None:
        raise MisuseError(
            name, call, "a resolution is WIDTHxHEIGHT or WIDTHxHEIGHTxDEPTH, e.g. '1280x1024x24'"
        )
    width, height = int(match.group(1)), int(match.group(2))
    depth = int(match.group(3) or 24)
    if not (1 <= width <= 32767 and 1 <= height <= 32767):
        raise MisuseError(name, call, "width and height must be between 1 and 32767")
    if depth not in DEPTHS:
        raise MisuseError(
            name, call, "Xvfb's depths are %s, not %d" % (", ".join(map(str, DEPTHS)), depth)
        )
    return width, height, depth


# -- the Xauthority format (libXau): big-endian counted strings -------------------


def _counted(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def xauthority_entry(display: int, cookie: bytes) -> bytes:
    """One Xauthority entry: ``cookie`` for display ``display``, any host."""
    return (
        struct.pack(">H", FAMILY_WILD)
        + _counted(b"")
        + _counted(str(display).encode())
        + _counted(COOKIE_NAME)
        + _counted(cookie)
    )


def read_cookie(path: str, display: int) -> bytes:
    """The cookie for ``display`` in the Xauthority file ``path``
    (``b""`` when it has none); :exc:`OSError` when it cannot be read."""
    with open(path, "rb") as f:
        data = f.read()
    offset, wanted = 0, str(display).encode()
    try:
        while offset < len(data):
            offset += 2  # family
            fields = []
            for _ in range(4):
                (length,) = struct.unpack_from(">H", data, offset)
                fields.append(data[offset + 2 : offset + 2 + length])
                offset += 2 + length
            number, name, cookie = fields[1], fields[2], fields[3]
            if name == COOKIE_NAME and number in (wanted, b""):
                return cookie
    except struct.error:
        pass  # a truncated file: no cookie
    return b""


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("the X server closed the connection")
        data += chunk
    return data


class XvfbAdmin(Admin):
    """One of our X servers: an X connection setup on its unix socket,
    with the cookie of its Xauthority file (``extra["xauthority"]``)."""

    @property
    def display_number(self) -> int:
        return int(self.endpoint.display.lstrip(":").split(".", 1)[0] or 0)

    def setup(self) -> tuple[int, str]:
        """Open an X connection and close it: the server's status (1:
        success, 0: refused, 2: more authentication wanted) and its
        reason; :exc:`OSError` when it cannot be reached or hangs."""
        xauthority = self.endpoint.extra.get("xauthority", "")
        cookie = read_cookie(xauthority, self.display_number) if xauthority else b""
        name = COOKIE_NAME if cookie else b""
        request = (
            struct.pack("<BxHHHHxx", 0x6C, 11, 0, len(name), len(cookie))
            + _pad(name)
            + _pad(cookie)
        )
        path = self.endpoint.socket or x_socket_path(self.display_number)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(min(self.timeout, 5.0))
            sock.connect(path)
            sock.sendall(request)
            head = _receive(sock, 8)
            status = head[0]
            (words,) = struct.unpack_from("<H", head, 6)
            if status == 1:
                return 1, ""
            rest = _receive(sock, words * 4)
            reason = rest[: head[1]] if status == 0 else rest
            return status, reason.decode("latin-1").strip("\0").strip()

    def answers(self) -> bool:
        """True when it accepts an X connection with our cookie; False when
        it is down or hung; :class:`~fixtures_daemons.AdminError` when it
        refuses the cookie."""
        try:
            status, reason = self.setup()
        except OSError:
            return False
        if status != 1:
            raise AdminError(
                self.name,
                "X connection setup on %s" % self.endpoint.display,
                "refused: %s" % (reason or "no reason given"),
            )
        return True


class XvfbFixture(DaemonFixture):
    """An Xvfb X server on a display number of its own.

    It listens on ``/tmp/.X11-unix/X<n>`` (and Linux's abstract socket),
    never on TCP; only clients with the cookie of its Xauthority file may
    connect. It is ready when an X connection setup with that cookie
    succeeds. When we are root it runs as ``nobody``. It keeps its state
    while clients come and go (``-noreset``); :meth:`reset` restarts it on
    the same display (connected clients lose their connection), as
    :meth:`stopped` does. cleanUp stops it with SIGTERM, on which Xvfb
    removes its lock file and socket.

    :param resolution: the screen's ``WIDTHxHEIGHTxDEPTH`` (as
        pytest-services' ``xvfb_resolution``); depth 24 when left out.
    :param display: pin the display number (the default reserves a free
        one); a number taken by another X server fails with
        ``DisplayUnavailable``.

    ``port`` is not taken (an X server here has no TCP port); ``settings``
    become Xvfb options (``{"dpi": "96"}`` -> ``-dpi 96``; an empty value
    gives the option alone).

    Attributes: ``display`` (``:<n>``, what ``DISPLAY`` holds),
    ``display_number``, ``xauthority`` (the cookie file's path),
    ``resolution``, ``width``, ``height``, ``depth``. It exports
    ``DISPLAY`` and ``XAUTHORITY`` (the names X clients read), and
    ``<PREFIX>_XVFB_DISPLAY``, ``..._XAUTHORITY``, ``..._SOCKET``.
    """

    daemon_name = "xvfb"
    executable = Executable(
        names=("Xvfb",),
        packages={"Debian/Ubuntu": "xvfb", "Fedora/RHEL": "xorg-x11-server-Xvfb"},
        env_var="FIXTURES_DAEMONS_XVFB",
    )
    port_names = ()
    refuses_root = True
    stop_signal = signal.SIGTERM  # Xvfb removes its lock file and socket on it
    restart_signal = signal.SIGTERM
    admin_class = XvfbAdmin

    def __init__(
        self,
        *,
        resolution: str = "1280x1024x24",
        display: int | None = None,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(**kwargs)
        self.width, self.height, self.depth = parse_resolution(resolution, self.daemon_name)
        self.resolution = "%dx%dx%d" % (self.width, self.height, self.depth)
        if self.requested_port:
            raise MisuseError(
                self.daemon_name,
                "XvfbFixture(port=%r)" % (self.requested_port,),
                "Xvfb listens on no TCP port: pin its display number with display=",
            )
        self.requested_display = display

    def _clear_state(self) -> None:
        super()._clear_state()
        self._display_number = 0

    # -- hooks -----------------------------------------------------------------

    def prepare(self) -> None:
        if not self._display_number:
            reserved = self.useFixture(
                DisplayFixture(self.requested_display, "%s display" % self.daemon_name)
            )
            self._display_number = reserved.display
        ensure_socket_dir()
        # A new random cookie, readable by the server's user only.
        path = self.path("Xauthority")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(xauthority_entry(self._display_number, os.urandom(16)))
        if self.run_as is not None:
            os.chown(path, self.run_as.uid, self.run_as.gid)

    def command_line(self) -> list[str]:
        command = [
            self.binary,
            ":%d" % self._display_number,
            "-screen",
            "0",
            self.resolution,
            "-nolisten",
            "tcp",
            "-auth",
            self.path("Xauthority"),
            "-noreset",
        ]
        for key, value in self.settings().items():
            command += ["-" + key] + ([value] if value else [])
        return command

    def probe(self) -> Probe:
        admin = typing.cast(XvfbAdmin, self.admin)
        return probes.Callable(
            admin.answers, "an X connection setup on :%d with our cookie" % self._display_number
        )

    def build_endpoint(self) -> Endpoint:
        return (
            super()
            .build_endpoint()
            .replace(
                display=":%d" % self._display_number,
                sockets={"x11": x_socket_path(self._display_number)},
                extra={"xauthority": self.path("Xauthority"), "resolution": self.resolution},
            )
        )

    def extra_exports(self, endpoint: Endpoint) -> dict[str, str]:
        return {"XAUTHORITY": endpoint.extra.get("xauthority", "")}

    def client_exports(self, endpoint: Endpoint) -> dict[str, str]:
        return {"DISPLAY": endpoint.display, "XAUTHORITY": endpoint.extra.get("xauthority", "")}

    def reset(self) -> None:
        """Restart the server on the same display: a fresh X server
        (windows, properties, selections gone); a fixture attached to a
        shared one refuses (:class:`~fixtures_daemons.NotOwnedError`)."""
        if isinstance(self._namespace, WholeDaemon) and not self._namespace.shared:
            with self.stopped():
                pass
            return
        super().reset()

    # -- what tests use ------------------------------------------------------

    @property
    def display(self) -> str:
        """``:<n>``: what ``DISPLAY`` holds."""
        return self.endpoint.display

    @property
    def display_number(self) -> int:
        """The display number."""
        return self._display_number or int(self.endpoint.display.lstrip(":") or 0)

    @property
    def xauthority(self) -> str:
        """The Xauthority file with the server's cookie."""
        return self.endpoint.extra.get("xauthority", "")


class XvfbResource(DaemonResource):
    """A testresources manager sharing one :class:`XvfbFixture`."""

    fixture_class = XvfbFixture
