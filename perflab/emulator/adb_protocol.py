"""Pure encoders/decoders for the device side of the adb wire protocols.

Three layers, all little-endian:

* transport messages: a 24-byte header (command, arg0, arg1, data_length, data_check,
  magic = command ^ 0xffffffff) followed by ``data_length`` bytes of payload;
* the file sync protocol spoken inside a ``sync:`` stream (8-byte ``ID + u32`` requests,
  framed independently of the WRTE packets that carry them, so they need reassembly);
* the shell protocol v2 spoken inside ``shell,v2...:`` streams (``u8 id + u32 length``).

Everything here is a pure function or a small buffer class with no I/O, so it is tested
with plain bytes.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from perflab.errors import PerflabError

HEADER_SIZE = 24
_HEADER = struct.Struct("<6I")

A_VERSION_MIN = 0x01000000  # checksums required
A_VERSION_SKIP_CHECKSUM = 0x01000001  # checksums may be zero
A_VERSION = A_VERSION_SKIP_CHECKSUM
MAX_PAYLOAD = 256 * 1024
MAX_PAYLOAD_V1 = 4 * 1024


class ProtocolError(PerflabError):
    """Bytes on the wire that do not follow the adb protocol."""


def _cmd(name: bytes) -> int:
    return int(struct.unpack("<I", name)[0])


class Command(enum.IntEnum):
    """Transport message commands (four ASCII bytes read as a little-endian u32)."""

    SYNC = _cmd(b"SYNC")
    CNXN = _cmd(b"CNXN")
    AUTH = _cmd(b"AUTH")
    OPEN = _cmd(b"OPEN")
    OKAY = _cmd(b"OKAY")
    CLSE = _cmd(b"CLSE")
    WRTE = _cmd(b"WRTE")
    STLS = _cmd(b"STLS")


@dataclass(frozen=True)
class Message:
    """One transport message."""

    command: Command
    arg0: int
    arg1: int
    data: bytes = b""

    def __str__(self) -> str:
        return f"{self.command.name}({self.arg0:#x}, {self.arg1:#x}, {len(self.data)} B)"


def checksum(data: bytes) -> int:
    """The adb "crc": the sum of all payload bytes, modulo 2**32."""
    return sum(data) & 0xFFFFFFFF


def pack_message(msg: Message, *, with_checksum: bool = True) -> bytes:
    """Encode a message (header + payload)."""
    check = checksum(msg.data) if with_checksum else 0
    header = _HEADER.pack(
        int(msg.command),
        msg.arg0 & 0xFFFFFFFF,
        msg.arg1 & 0xFFFFFFFF,
        len(msg.data),
        check,
        int(msg.command) ^ 0xFFFFFFFF,
    )
    return header + msg.data


@dataclass(frozen=True)
class Header:
    command: Command
    arg0: int
    arg1: int
    data_length: int
    data_check: int


def unpack_header(raw: bytes, *, max_payload: int = 16 * 1024 * 1024) -> Header:
    """Decode and validate a 24-byte header. Raises ProtocolError on garbage."""
    if len(raw) != HEADER_SIZE:
        raise ProtocolError(f"adb header must be {HEADER_SIZE} bytes, got {len(raw)}")
    command, arg0, arg1, length, check, magic = _HEADER.unpack(raw)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic {magic:#x} for command {command:#x}")
    try:
        cmd = Command(command)
    except ValueError:
        raise ProtocolError(f"unknown adb command {raw[:4]!r}") from None
    if length > max_payload:
        raise ProtocolError(f"payload of {length} bytes exceeds the maximum {max_payload}")
    return Header(cmd, arg0, arg1, length, check)


def verify_payload(header: Header, data: bytes) -> None:
    """Check the payload against its header. A zero checksum is accepted (protocol >= 0x01000001)."""
    if len(data) != header.data_length:
        raise ProtocolError(f"payload length {len(data)} != header's {header.data_length}")
    if header.data_check != 0 and header.data_check != checksum(data):
        raise ProtocolError(f"bad payload checksum in {header.command.name}")


class MessageReader:
    """Reassembles transport messages from arbitrary byte chunks (a pure push parser)."""

    def __init__(self, *, max_payload: int = 16 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max_payload = max_payload

    def feed(self, chunk: bytes) -> list[Message]:
        self._buf += chunk
        out: list[Message] = []
        while len(self._buf) >= HEADER_SIZE:
            header = unpack_header(bytes(self._buf[:HEADER_SIZE]), max_payload=self._max_payload)
            end = HEADER_SIZE + header.data_length
            if len(self._buf) < end:
                break
            data = bytes(self._buf[HEADER_SIZE:end])
            del self._buf[:end]
            verify_payload(header, data)
            out.append(Message(header.command, header.arg0, header.arg1, data))
        return out


# ---------------------------------------------------------------- connection banner


@dataclass(frozen=True)
class Banner:
    """The CNXN payload: ``<system-type>:<serial>:<prop>=<v>;...;features=a,b``."""

    system_type: str
    serial: str
    props: dict[str, str]
    features: tuple[str, ...]


def format_banner(props: dict[str, str], features: tuple[str, ...], system_type: str = "device") -> bytes:
    parts = [f"{k}={v}" for k, v in props.items()]
    parts.append("features=" + ",".join(features))
    return f"{system_type}::{';'.join(parts)}".encode()


def parse_banner(data: bytes) -> Banner:
    text = data.rstrip(b"\0").decode("utf-8", "replace")
    pieces = text.split(":", 2)
    if len(pieces) < 2:
        raise ProtocolError(f"malformed CNXN banner {text!r}")
    system_type, serial = pieces[0], pieces[1]
    props: dict[str, str] = {}
    features: tuple[str, ...] = ()
    if len(pieces) == 3:
        for item in pieces[2].split(";"):
            if "=" not in item:
                continue
            key, value = item.split("=", 1)
            if key == "features":
                features = tuple(f for f in value.split(",") if f)
            else:
                props[key] = value
    return Banner(system_type, serial, props, features)


# ---------------------------------------------------------------- service names


@dataclass(frozen=True)
class ShellService:
    """A parsed ``shell[,args]:command`` or ``exec:command`` service request."""

    command: str
    v2: bool
    pty: bool
    exec_: bool
    env: dict[str, str]


def parse_shell_service(service: str) -> ShellService | None:
    """Parse ``shell:``, ``shell,v2,TERM=xterm,raw:cmd`` or ``exec:cmd``; None if neither."""
    if service.startswith("exec:"):
        return ShellService(service[len("exec:"):], v2=False, pty=False, exec_=True, env={})
    if not service.startswith("shell"):
        return None
    head, sep, command = service.partition(":")
    if not sep:
        return None
    args = head.split(",")
    if args[0] != "shell":
        return None
    v2 = False
    pty: bool | None = None
    env: dict[str, str] = {}
    for arg in args[1:]:
        if arg == "v2":
            v2 = True
        elif arg == "raw":
            pty = False
        elif arg == "pty":
            pty = True
        elif "=" in arg:
            key, value = arg.split("=", 1)
            env[key] = value
    if pty is None:
        # adb's default: a pty for an interactive session (no command), raw otherwise.
        pty = command == ""
    return ShellService(command, v2=v2, pty=pty, exec_=False, env=env)


# ---------------------------------------------------------------- shell protocol v2


class ShellPacketId(enum.IntEnum):
    STDIN = 0
    STDOUT = 1
    STDERR = 2
    EXIT = 3
    CLOSE_STDIN = 4
    WINDOW_SIZE_CHANGE = 5
    INVALID = 255


_SHELL_HEADER = struct.Struct("<BI")


def pack_shell_packet(packet_id: ShellPacketId, data: bytes) -> bytes:
    return _SHELL_HEADER.pack(int(packet_id), len(data)) + data


def pack_shell_exit(exit_code: int) -> bytes:
    return pack_shell_packet(ShellPacketId.EXIT, bytes([exit_code & 0xFF]))


class ShellPacketReader:
    """Reassembles shell-v2 packets from the WRTE payloads of one stream."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[ShellPacketId, bytes]]:
        self._buf += chunk
        out: list[tuple[ShellPacketId, bytes]] = []
        while len(self._buf) >= _SHELL_HEADER.size:
            raw_id, length = _SHELL_HEADER.unpack_from(self._buf)
            end = _SHELL_HEADER.size + length
            if len(self._buf) < end:
                break
            data = bytes(self._buf[_SHELL_HEADER.size:end])
            del self._buf[:end]
            try:
                pid = ShellPacketId(raw_id)
            except ValueError:
                pid = ShellPacketId.INVALID
            out.append((pid, data))
        return out


# ---------------------------------------------------------------- sync protocol

SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024

_ID_HDR = struct.Struct("<4sI")
_STAT_V1 = struct.Struct("<4sIII")
_DENT_V1 = struct.Struct("<4sIIII")
_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")
_DENT_V2 = struct.Struct("<4sIQQIIIIQqqqI")

#: Requests that carry a path (``ID + u32 length + path``).
SYNC_PATH_REQUESTS = frozenset({b"STAT", b"STA2", b"LST2", b"LIST", b"LIS2", b"SEND", b"RECV"})


@dataclass(frozen=True)
class SyncRequest:
    """One framed sync request. ``arg`` is the u32 after the id; ``data`` its payload."""

    ident: bytes
    arg: int
    data: bytes


class SyncReader:
    """Reassembles sync frames, which are split and merged across WRTE packets arbitrarily.

    ``DATA`` frames carry ``arg`` bytes of payload, path requests carry an ``arg``-byte path,
    ``DONE``/``QUIT``/``OKAY`` carry only the u32 (``DONE``'s is the mtime).
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[SyncRequest]:
        self._buf += chunk
        out: list[SyncRequest] = []
        while len(self._buf) >= _ID_HDR.size:
            ident, arg = _ID_HDR.unpack_from(self._buf)
            if ident == b"DATA":
                if arg > SYNC_DATA_MAX:
                    raise ProtocolError(f"sync DATA chunk of {arg} bytes exceeds {SYNC_DATA_MAX}")
                length = arg
            elif ident in SYNC_PATH_REQUESTS:
                if arg > SYNC_PATH_MAX:
                    raise ProtocolError(f"sync path of {arg} bytes exceeds {SYNC_PATH_MAX}")
                length = arg
            elif ident in (b"DONE", b"QUIT", b"OKAY"):
                length = 0
            else:
                raise ProtocolError(f"unknown sync request {bytes(ident)!r}")
            end = _ID_HDR.size + length
            if len(self._buf) < end:
                break
            data = bytes(self._buf[_ID_HDR.size:end])
            del self._buf[:end]
            out.append(SyncRequest(bytes(ident), arg, data))
        return out


def sync_request(ident: bytes, payload: bytes) -> bytes:
    """A host-side request (used by tests): ``ID + len + payload``."""
    return _ID_HDR.pack(ident, len(payload)) + payload


def sync_data(chunk: bytes) -> bytes:
    return _ID_HDR.pack(b"DATA", len(chunk)) + chunk


def sync_done(arg: int = 0) -> bytes:
    return _ID_HDR.pack(b"DONE", arg & 0xFFFFFFFF)


def sync_okay() -> bytes:
    return _ID_HDR.pack(b"OKAY", 0)


def sync_fail(message: str) -> bytes:
    raw = message.encode()
    return _ID_HDR.pack(b"FAIL", len(raw)) + raw


@dataclass(frozen=True)
class FileStat:
    """What a stat reports; ``error`` is an errno (0 = ok)."""

    mode: int
    size: int
    mtime_s: int
    error: int = 0
    dev: int = 0
    ino: int = 0
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    atime_s: int = 0
    ctime_s: int = 0


def sync_stat_v1(st: FileStat | None) -> bytes:
    """``STAT`` reply: a missing file is all zeros (v1 has no error field)."""
    if st is None or st.error:
        return _STAT_V1.pack(b"STAT", 0, 0, 0)
    return _STAT_V1.pack(b"STAT", st.mode, st.size & 0xFFFFFFFF, st.mtime_s & 0xFFFFFFFF)


def sync_stat_v2(ident: bytes, st: FileStat) -> bytes:
    """``STA2``/``LST2`` reply (72 bytes)."""
    if st.error:
        return _STAT_V2.pack(ident, st.error, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return _STAT_V2.pack(
        ident, 0, st.dev, st.ino, st.mode, st.nlink, st.uid, st.gid, st.size,
        st.atime_s, st.mtime_s, st.ctime_s,
    )


def sync_dent_v1(name: str, st: FileStat) -> bytes:
    raw = name.encode()
    return _DENT_V1.pack(b"DENT", st.mode, st.size & 0xFFFFFFFF, st.mtime_s & 0xFFFFFFFF, len(raw)) + raw


def sync_dent_v1_done() -> bytes:
    return _DENT_V1.pack(b"DONE", 0, 0, 0, 0)


def sync_dent_v2(name: str, st: FileStat) -> bytes:
    raw = name.encode()
    return _DENT_V2.pack(
        b"DNT2", st.error, st.dev, st.ino, st.mode, st.nlink, st.uid, st.gid, st.size,
        st.atime_s, st.mtime_s, st.ctime_s, len(raw),
    ) + raw


def sync_dent_v2_done() -> bytes:
    return _DENT_V2.pack(b"DONE", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def parse_send_target(data: bytes) -> tuple[str, int]:
    """``SEND`` carries ``path,mode``; returns (path, mode). Mode defaults to 0644 regular."""
    text = data.decode("utf-8", "surrogateescape")
    path, sep, mode_text = text.rpartition(",")
    if not sep:
        return text, 0o100644
    try:
        return path, int(mode_text)
    except ValueError:
        return text, 0o100644


def unpack_stat_v1(raw: bytes) -> tuple[bytes, int, int, int]:
    """(id, mode, size, mtime) of a 16-byte v1 stat reply (for tests and clients)."""
    ident, mode, size, mtime = _STAT_V1.unpack(raw)
    return bytes(ident), mode, size, mtime


def unpack_stat_v2(raw: bytes) -> tuple[bytes, FileStat]:
    fields = _STAT_V2.unpack(raw)
    ident = bytes(fields[0])
    st = FileStat(
        error=fields[1], dev=fields[2], ino=fields[3], mode=fields[4], nlink=fields[5],
        uid=fields[6], gid=fields[7], size=fields[8], atime_s=fields[9], mtime_s=fields[10],
        ctime_s=fields[11],
    )
    return ident, st
