"""A thin, strict layer over adbutils and the adb server.

Why not adbutils' own calls: its ``shell()`` ignores exit codes, and its sync push/pull open
the transport with no timeout (a phone that stops answering hangs the run). This module:

* puts a deadline on every call (``timeout_s``, total, not per read);
* runs shell commands over shell protocol v2, so the exit code and stderr are real; a
  non-zero exit raises :class:`DeviceError` with serial, command, exit code, stdout, stderr;
* speaks the sync protocol itself (push/pull/stat) on an adbutils connection with a
  deadline, and verifies every transfer with sha256 on both ends (``sha256sum`` on the phone);
* retries transport errors (server restarting, device briefly offline) with backoff, and
  turns a device that is gone into :class:`DeviceGoneError`;
* prefixes every log line with the device's serial.

Commands are passed either as an argv list (each word quoted with :func:`shlex.quote`) or as
one string that the caller has built from quoted parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import shlex
import socket
import stat as stat_mod
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from perflab.errors import DeviceError, DeviceGoneError, DeviceTimeoutError, UserInputError


def _import_adbutils() -> Any:
    """adbutils builds a global client at import time, which turns a bad
    ``$ANDROID_ADB_SERVER_PORT`` into a ValueError traceback before perflab can say anything.
    Import it with the variable hidden when it is not a number; ``adb_server_port()`` then
    reports it as bad input when a command needs the server."""
    bad = os.environ.get("ANDROID_ADB_SERVER_PORT", "").strip()
    if not bad or bad.isdigit():
        return importlib.import_module("adbutils")
    del os.environ["ANDROID_ADB_SERVER_PORT"]
    try:
        return importlib.import_module("adbutils")
    finally:
        os.environ["ANDROID_ADB_SERVER_PORT"] = bad


if TYPE_CHECKING:
    import adbutils
else:
    adbutils = _import_adbutils()
from adbutils import AdbError, AdbTimeout

log = logging.getLogger("perflab.devices.adb")

DEFAULT_TIMEOUT_S = 20.0
DEFAULT_SERVER_PORT = 5037
PORT_ENV = "ANDROID_ADB_SERVER_PORT"
SYNC_CHUNK = 64 * 1024
T = TypeVar("T")

# adb server messages that mean "the device is not (or no longer) there"
_GONE_MARKERS = ("not found", "offline", "no devices", "device still connecting", "closed",
                 "unauthorized", "no permissions", "connection reset", "broken pipe")


class _Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.end = time.monotonic() + timeout_s

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def socket_timeout(self) -> float:
        left = self.remaining()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return max(0.01, left)


class _Timeout(Exception):
    pass


class _Transport(Exception):
    """Connection-level failure (server or device); ``gone`` when the device is not there."""

    def __init__(self, message: str, *, gone: bool, started: bool) -> None:
        super().__init__(message)
        self.gone = gone
        self.started = started


def adb_server_port(environ: dict[str, str] | None = None) -> int:
    """The adb server's port: ``$ANDROID_ADB_SERVER_PORT`` (as adb itself reads it) or 5037.
    A value that is not a port number is bad input (one line), not a traceback."""
    text = (os.environ if environ is None else environ).get(PORT_ENV, "").strip()
    if not text:
        return DEFAULT_SERVER_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UserInputError(f"{PORT_ENV}={text!r} is not a TCP port number (1-65535)")
    return int(text)


def quote_argv(argv: Sequence[str]) -> str:
    """One shell command line from words, each quoted."""
    if isinstance(argv, str):
        raise TypeError("quote_argv takes a sequence of words, not a string")
    return " ".join(shlex.quote(str(a)) for a in argv)


@dataclass(frozen=True)
class DeviceEntry:
    """One line of ``adb devices -l``."""

    serial: str
    state: str  # device / offline / unauthorized / no permissions / ...
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShellResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float


class _PrefixAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['serial'] if self.extra else '?'}] {msg}", kwargs


def device_logger(serial: str, name: str = "perflab.devices") -> logging.LoggerAdapter:  # type: ignore[type-arg]
    return _PrefixAdapter(logging.getLogger(name), {"serial": serial})


_TAG_KEYS = ("product", "model", "device", "transport_id")


def parse_devices_l(text: str) -> list[DeviceEntry]:
    """Parse ``adb devices -l`` / ``host:devices-l`` output: the serial (padded to 22
    columns, or tab-separated in the short form), a state that may contain spaces
    (``no permissions (...)``), an optional devpath (``usb:1-1``) and ``key:value`` tags."""
    entries: list[DeviceEntry] = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or line.startswith(("List of devices", "* ")):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        serial, rest = parts
        words = rest.split()
        tags: dict[str, str] = {}
        while words and words[-1].split(":", 1)[0] in _TAG_KEYS and ":" in words[-1]:
            k, _, v = words.pop().partition(":")
            tags[k] = v
        if len(words) > 1 and words[-1].startswith("usb:"):
            tags["devpath"] = words.pop()
        state = " ".join(words)
        if state.startswith("no permissions"):
            state = "no permissions"
        entries.append(DeviceEntry(serial=serial, state=state or "unknown", tags=tags))
    return entries


class _NoStartConnection(adbutils.AdbConnection):  # type: ignore[misc]
    """adbutils' connection, except that a refused connection is an error: adbutils then runs
    ``adb start-server``, which starts a server on *this machine's default port* whatever host
    and port were asked — a health check of a rack host that is down left an adb server on
    127.0.0.1:5037 behind the user's back. perflab starts servers only where it means to
    (``discover_devices(start_server=True)``, the emulator's own)."""

    def _safe_connect(self) -> socket.socket:
        return self._create_socket()  # type: ignore[no-any-return]


class _NoStartClient(adbutils.AdbClient):  # type: ignore[misc]
    """An adbutils client whose connections never start a server (:class:`_NoStartConnection`)."""

    def __init__(self, host: str, port: int, socket_timeout: float) -> None:
        super().__init__(host=host, port=port, socket_timeout=socket_timeout)
        self._socket_timeout = socket_timeout

    def make_connection(self, timeout: float | None = None) -> adbutils.AdbConnection:
        conn = _NoStartConnection(self.host, self.port)
        t = timeout or self._socket_timeout
        if t:
            conn.conn.settimeout(t)
        return conn


class Adb:
    """The adb server (host side). Cheap to create; opens a connection per call."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.host = host
        self.port = port if port is not None else adb_server_port()
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.client = _NoStartClient(self.host, self.port, timeout_s)

    # ---- host services ------------------------------------------------------------------

    def _host_query(self, service: str, timeout_s: float | None = None) -> str:
        dl = _Deadline(timeout_s or self.timeout_s)

        def once() -> str:
            with self.client.make_connection(timeout=dl.socket_timeout()) as c:
                c.send_command(service)
                c.check_okay()
                return str(c.read_string_block())

        return _with_retries(once, what=service, serial="adb-server", retries=self.retries,
                             backoff_s=self.backoff_s, deadline=dl, idempotent=True)

    def devices(self, timeout_s: float | None = None) -> list[DeviceEntry]:
        """Every device the server knows, with its state (device/offline/unauthorized/...)."""
        return parse_devices_l(self._host_query("host:devices-l", timeout_s))

    def server_version(self, timeout_s: float | None = None) -> int:
        return int(self._host_query("host:version", timeout_s), 16)

    def connect(self, address: str, timeout_s: float | None = None) -> str:
        """``adb connect HOST:PORT``; returns the server's answer."""
        return self._host_query(f"host:connect:{address}", timeout_s)

    def disconnect(self, address: str, timeout_s: float | None = None) -> str:
        return self._host_query(f"host:disconnect:{address}", timeout_s)

    def state(self, serial: str, timeout_s: float | None = None) -> str | None:
        """The device's state, or None if the server does not list it."""
        for e in self.devices(timeout_s):
            if e.serial == serial:
                return e.state
        return None

    def device(self, serial: str) -> AdbDevice:
        return AdbDevice(self, serial)


class AdbDevice:
    """One device behind the adb server. Every method takes ``timeout_s``."""

    def __init__(self, adb: Adb, serial: str) -> None:
        self.adb = adb
        self.serial = serial
        self.log = device_logger(serial)
        self._dev = adbutils.AdbDevice(adb.client, serial=serial)
        self._features: frozenset[str] | None = None

    # ---- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _sync_session(self, dl: _Deadline) -> Iterator[socket.socket]:
        """A ``sync:`` connection for one transfer, closed afterwards; a failure inside reads as
        ``_Timeout`` (the deadline passed) or ``_Transport`` (the connection dropped: device gone)."""
        c = self._open("sync:", dl)
        try:
            sock: socket.socket = c.conn
            yield sock
        except (TimeoutError, AdbTimeout) as exc:
            raise _Timeout(str(exc)) from exc
        except (EOFError, OSError) as exc:
            raise _Transport(str(exc), gone=True, started=True) from exc
        finally:
            c.close()

    def _open(self, service: str, dl: _Deadline) -> Any:
        """A connection to ``service`` on this device (transport chosen by serial)."""
        try:
            c = self.adb.client.make_connection(timeout=dl.socket_timeout())
        except (TimeoutError, AdbTimeout) as exc:
            raise _Timeout(str(exc)) from exc
        except (AdbError, OSError) as exc:
            raise _Transport(f"cannot reach the adb server: {exc}", gone=False, started=False) from exc
        try:
            c.send_command(f"host:transport:{self.serial}")
            c.check_okay()
            c.send_command(service)
            c.check_okay()
        except (TimeoutError, AdbTimeout) as exc:
            c.close()
            raise _Timeout(str(exc)) from exc
        except (AdbError, OSError, EOFError) as exc:
            c.close()
            msg = str(exc)
            raise _Transport(msg, gone=_is_gone(msg), started=False) from exc
        return c

    def features(self, timeout_s: float | None = None) -> frozenset[str]:
        if self._features is None:
            text = self.adb._host_query(f"host-serial:{self.serial}:features", timeout_s)
            self._features = frozenset(f for f in text.strip().split(",") if f)
        return self._features

    def get_state(self, timeout_s: float | None = None) -> str | None:
        return self.adb.state(self.serial, timeout_s)

    def _run(self, fn: Callable[[_Deadline], T], what: str, timeout_s: float | None, idempotent: bool) -> T:
        dl = _Deadline(timeout_s if timeout_s is not None else self.adb.timeout_s)
        return _with_retries(lambda: fn(dl), what=what, serial=self.serial, retries=self.adb.retries,
                             backoff_s=self.adb.backoff_s, deadline=dl, idempotent=idempotent)

    # ---- shell --------------------------------------------------------------------------------

    def shell(
        self,
        command: str | Sequence[str],
        *,
        timeout_s: float | None = None,
        check: bool = True,
        idempotent: bool = True,
    ) -> ShellResult:
        """Run ``command`` (argv list, quoted here; or a pre-quoted string) with a real exit
        code. ``check``: a non-zero exit raises DeviceError with the whole context.
        ``idempotent``: whether a transport error after the command started may re-run it."""
        cmd = command if isinstance(command, str) else quote_argv(command)
        if "\0" in cmd:
            raise DeviceError(self.serial, "refusing a command with a NUL byte", command=cmd)
        res = self._run(lambda dl: self._shell_once(cmd, dl), f"shell {cmd[:80]}", timeout_s, idempotent)
        self.log.debug("shell %r -> %d (%.3fs)", cmd[:200], res.exit_code, res.duration_s)
        if check and res.exit_code != 0:
            raise DeviceError(
                self.serial, "device command failed", command=cmd, exit_code=res.exit_code,
                stdout=res.stdout, stderr=res.stderr,
            )
        return res

    def _shell_once(self, cmd: str, dl: _Deadline) -> ShellResult:
        t0 = time.monotonic()
        use_v2 = "shell_v2" in self.features(dl.remaining())
        service = f"shell,v2,raw:{cmd}" if use_v2 else f"shell:{cmd} ; r=$?; echo; echo PERFLAB_EXIT:$r"
        c = self._open(service, dl)
        out, err = bytearray(), bytearray()
        code: int | None = None
        try:
            sock: socket.socket = c.conn
            if use_v2:
                while code is None:
                    head = _recv_exact(sock, 5, dl)
                    pid, n = head[0], struct.unpack("<I", head[1:])[0]
                    data = _recv_exact(sock, n, dl) if n else b""
                    if pid == 1:
                        out += data
                    elif pid == 2:
                        err += data
                    elif pid == 3:
                        code = data[0] if data else 255
            else:
                while True:
                    sock.settimeout(dl.socket_timeout())
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    out += chunk
                marker = out.rfind(b"\nPERFLAB_EXIT:")
                if marker < 0:
                    raise _Transport("shell closed before the command finished", gone=True, started=True)
                code = int(out[marker + len(b"\nPERFLAB_EXIT:"):].strip() or b"255")
                del out[marker:]
        except (TimeoutError, AdbTimeout) as exc:
            raise _Timeout(f"no answer within {dl.timeout_s:g}s") from exc
        except EOFError as exc:
            raise _Transport("connection closed before the command finished", gone=True, started=True) from exc
        except OSError as exc:
            raise _Transport(str(exc), gone=True, started=True) from exc
        finally:
            c.close()
        return ShellResult(cmd, code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                           time.monotonic() - t0)

    # ---- sync ---------------------------------------------------------------------------------

    def stat(self, remote: str, *, timeout_s: float | None = None) -> tuple[int, int, int] | None:
        """(mode, size, mtime) of a remote path, or None if it does not exist."""
        def once(dl: _Deadline) -> tuple[int, int, int] | None:
            with self._sync_session(dl) as sock:
                _sync_send(sock, b"STAT", remote.encode(), dl)
                resp = _recv_exact(sock, 16, dl)
                if resp[:4] != b"STAT":
                    raise _Transport(f"bad STAT reply {resp[:4]!r}", gone=False, started=True)
                mode, size, mtime = struct.unpack("<III", resp[4:])
                _sync_quit(sock)
                return None if mode == 0 else (mode, size, mtime)
        return self._run(once, f"stat {remote}", timeout_s, idempotent=True)

    def push_bytes(self, data: bytes, remote: str, *, mode: int = 0o644, timeout_s: float | None = None) -> str:
        """Write ``data`` to ``remote``; verify with sha256sum on the device. Returns the sha256."""
        want = hashlib.sha256(data).hexdigest()

        def once(dl: _Deadline) -> None:
            with self._sync_session(dl) as sock:
                _sync_send(sock, b"SEND", f"{remote},{stat_mod.S_IFREG | mode}".encode(), dl)
                for off in range(0, len(data), SYNC_CHUNK):
                    _sync_send(sock, b"DATA", data[off:off + SYNC_CHUNK], dl)
                sock.settimeout(dl.socket_timeout())
                sock.sendall(b"DONE" + struct.pack("<I", int(time.time())))
                resp = _recv_exact(sock, 8, dl)
                if resp[:4] == b"FAIL":
                    n = struct.unpack("<I", resp[4:])[0]
                    msg = _recv_exact(sock, n, dl).decode("utf-8", "replace")
                    raise DeviceError(self.serial, f"push to {remote} failed: {msg}", command=f"push {remote}")
                if resp[:4] != b"OKAY":
                    raise _Transport(f"bad push reply {resp[:4]!r}", gone=False, started=True)
                _sync_quit(sock)

        self._run(once, f"push {remote}", timeout_s, idempotent=True)
        got = self.sha256(remote, timeout_s=timeout_s)
        if got != want:
            raise DeviceError(self.serial, f"checksum mismatch after push to {remote}: host {want}, device {got}",
                              command=f"push {remote}")
        self.log.debug("pushed %d bytes to %s (sha256 %s…)", len(data), remote, want[:12])
        return want

    def push(self, local: Path, remote: str, *, mode: int | None = None, timeout_s: float | None = None) -> str:
        """Push a host file; verified by sha256 on both ends. Returns the sha256."""
        data = Path(local).read_bytes()
        if mode is None:
            mode = Path(local).stat().st_mode & 0o777
        return self.push_bytes(data, remote, mode=mode, timeout_s=timeout_s)

    def pull_bytes(self, remote: str, *, timeout_s: float | None = None) -> bytes:
        """Read a remote file; verified against sha256sum on the device."""
        def once(dl: _Deadline) -> bytes:
            buf = bytearray()
            with self._sync_session(dl) as sock:
                _sync_send(sock, b"RECV", remote.encode(), dl)
                while True:
                    head = _recv_exact(sock, 8, dl)
                    ident, n = head[:4], struct.unpack("<I", head[4:])[0]
                    if ident == b"DATA":
                        buf += _recv_exact(sock, n, dl)
                    elif ident == b"DONE":
                        break
                    elif ident == b"FAIL":
                        msg = _recv_exact(sock, n, dl).decode("utf-8", "replace")
                        raise DeviceError(self.serial, f"pull of {remote} failed: {msg}", command=f"pull {remote}")
                    else:
                        raise _Transport(f"bad pull reply {ident!r}", gone=False, started=True)
                _sync_quit(sock)
                return bytes(buf)

        data = self._run(once, f"pull {remote}", timeout_s, idempotent=True)
        want = self.sha256(remote, timeout_s=timeout_s)
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise DeviceError(self.serial, f"checksum mismatch after pull of {remote}: device {want}, host {got}",
                              command=f"pull {remote}")
        return data

    def pull(self, remote: str, local: Path, *, timeout_s: float | None = None) -> str:
        data = self.pull_bytes(remote, timeout_s=timeout_s)
        Path(local).write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    def sha256(self, remote: str, *, timeout_s: float | None = None) -> str | None:
        """sha256 of a remote file as the device computes it; None if the file is missing."""
        res = self.shell(["sha256sum", "--", remote], timeout_s=timeout_s, check=False)
        if res.exit_code == 0:
            return res.stdout.split()[0].lower() if res.stdout.split() else None
        if res.exit_code == 127 or ("not found" in res.stderr and "sha256sum" in res.stderr):
            raise DeviceError(self.serial, "the device has no sha256sum: transfers cannot be verified",
                              command=res.command, exit_code=res.exit_code, stdout=res.stdout, stderr=res.stderr)
        return None

    # ---- small helpers ------------------------------------------------------------------------

    def getprop(self, key: str | None = None, *, timeout_s: float | None = None) -> str:
        return self.shell(["getprop"] + ([key] if key else []), timeout_s=timeout_s).stdout.strip()

    def read_text(self, path: str, *, timeout_s: float | None = None, check: bool = True) -> str | None:
        """``cat`` one small file; None (check=False) when it cannot be read."""
        res = self.shell(["cat", path], timeout_s=timeout_s, check=check)
        return res.stdout if res.exit_code == 0 else None


# ---- module helpers --------------------------------------------------------------------------


def _is_gone(message: str) -> bool:
    low = message.lower()
    return any(m in low for m in _GONE_MARKERS)


def _recv_exact(sock: socket.socket, n: int, dl: _Deadline) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        sock.settimeout(dl.socket_timeout())
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def _sync_send(sock: socket.socket, ident: bytes, payload: bytes, dl: _Deadline) -> None:
    sock.settimeout(dl.socket_timeout())
    sock.sendall(ident + struct.pack("<I", len(payload)) + payload)


def _sync_quit(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(b"QUIT" + struct.pack("<I", 0))


@dataclass
class _Backoff:
    """Exponential back-off between attempts, within a deadline."""

    retries: int
    backoff_s: float
    deadline: _Deadline
    attempt: int = 0  # failed attempts so far

    def next_wait_s(self, allowed: bool = True) -> float | None:
        """Counts a failed attempt; the wait before the next one, or None when there is none
        (not allowed, out of retries, or the deadline comes first)."""
        self.attempt += 1
        wait = self.backoff_s * (2 ** (self.attempt - 1))
        return wait if allowed and self.attempt <= self.retries and self.deadline.remaining() > wait else None


def _with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    serial: str,
    retries: int,
    backoff_s: float,
    deadline: _Deadline,
    idempotent: bool,
) -> T:
    backoff = _Backoff(retries, backoff_s, deadline)
    while True:
        try:
            return fn()
        except _Timeout as exc:
            raise DeviceTimeoutError(serial, f"timed out after {deadline.timeout_s:g}s: {what}", command=what) from exc
        except _Transport as exc:
            if (wait := backoff.next_wait_s(idempotent or not exc.started)) is not None:
                log.info("[%s] transport error on %s (%s); retry %d/%d in %.1fs", serial, what, exc,
                         backoff.attempt, retries, wait)
                time.sleep(wait)
                continue
            if exc.gone:
                raise DeviceGoneError(serial, f"device is gone ({exc}) during: {what}", command=what) from exc
            raise DeviceError(serial, f"adb transport error ({exc}) during: {what}", command=what) from exc
        except (TimeoutError, AdbTimeout) as exc:
            raise DeviceTimeoutError(serial, f"timed out after {deadline.timeout_s:g}s: {what}", command=what) from exc
        except AdbError as exc:
            msg = str(exc)
            if (wait := backoff.next_wait_s()) is not None:
                time.sleep(wait)
                continue
            if _is_gone(msg):
                raise DeviceGoneError(serial, f"device is gone ({msg}) during: {what}", command=what) from exc
            raise DeviceError(serial, f"adb error ({msg}) during: {what}", command=what) from exc
        except (ConnectionError, OSError) as exc:
            if (wait := backoff.next_wait_s()) is not None:
                time.sleep(wait)
                continue
            raise DeviceError(serial, f"cannot talk to the adb server ({exc}) during: {what}",
                              command=what) from exc
