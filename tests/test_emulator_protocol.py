"""Pure tests of the adb wire formats the emulated phone speaks."""

from __future__ import annotations

import random
import struct

import pytest

from perflab.emulator import adb_protocol as ap


def test_message_roundtrip_and_magic() -> None:
    msg = ap.Message(ap.Command.WRTE, 3, 7, b"hello")
    raw = ap.pack_message(msg)
    assert len(raw) == ap.HEADER_SIZE + 5
    cmd, a0, a1, length, check, magic = struct.unpack("<6I", raw[:24])
    assert raw[:4] == b"WRTE"
    assert (a0, a1, length) == (3, 7, 5)
    assert check == sum(b"hello")
    assert magic == cmd ^ 0xFFFFFFFF
    assert ap.MessageReader().feed(raw) == [msg]


def test_zero_checksum_is_accepted_and_bad_one_rejected() -> None:
    raw = ap.pack_message(ap.Message(ap.Command.OPEN, 1, 0, b"shell:id\0"), with_checksum=False)
    assert ap.MessageReader().feed(raw)[0].data == b"shell:id\0"
    bad = bytearray(ap.pack_message(ap.Message(ap.Command.OPEN, 1, 0, b"x")))
    bad[16] ^= 0x55
    with pytest.raises(ap.ProtocolError):
        ap.MessageReader().feed(bytes(bad))


def test_bad_magic_rejected() -> None:
    raw = bytearray(ap.pack_message(ap.Message(ap.Command.OKAY, 1, 2)))
    raw[20] ^= 1
    with pytest.raises(ap.ProtocolError, match="magic"):
        ap.MessageReader().feed(bytes(raw))


def test_reader_reassembles_arbitrary_splits() -> None:
    msgs = [ap.Message(ap.Command.WRTE, i, i + 1, bytes([i]) * (i * 37)) for i in range(1, 20)]
    stream = b"".join(ap.pack_message(m) for m in msgs)
    rng = random.Random(1)
    reader = ap.MessageReader()
    got: list[ap.Message] = []
    i = 0
    while i < len(stream):
        n = rng.randint(1, 50)
        got += reader.feed(stream[i:i + n])
        i += n
    assert got == msgs


def test_banner_format_and_parse() -> None:
    raw = ap.format_banner({"ro.product.name": "panther", "ro.product.model": "Pixel 7",
                            "ro.product.device": "panther"}, ("shell_v2", "cmd", "stat_v2"))
    assert raw.startswith(b"device::ro.product.name=panther;")
    assert b"delayed_ack" not in raw
    b = ap.parse_banner(raw)
    assert b.system_type == "device"
    assert b.props["ro.product.model"] == "Pixel 7"
    assert b.features == ("shell_v2", "cmd", "stat_v2")


@pytest.mark.parametrize(
    ("service", "command", "v2", "exec_"),
    [
        ("shell:echo hi", "echo hi", False, False),
        ("shell,v2,TERM=xterm-256color,raw:ls -l", "ls -l", True, False),
        ("shell,v2:exit 3", "exit 3", True, False),
        ("exec:cat /x", "cat /x", False, True),
        ("shell,v2,raw:echo a:b", "echo a:b", True, False),
    ],
)
def test_parse_shell_service(service: str, command: str, v2: bool, exec_: bool) -> None:
    svc = ap.parse_shell_service(service)
    assert svc is not None
    assert (svc.command, svc.v2, svc.exec_) == (command, v2, exec_)
    assert not svc.pty


def test_parse_shell_service_rejects_others() -> None:
    assert ap.parse_shell_service("sync:") is None
    assert ap.parse_shell_service("shellx:foo") is None


def test_shell_v2_packets_split_across_writes() -> None:
    data = (ap.pack_shell_packet(ap.ShellPacketId.STDIN, b"abc")
            + ap.pack_shell_packet(ap.ShellPacketId.CLOSE_STDIN, b"")
            + ap.pack_shell_exit(3))
    reader = ap.ShellPacketReader()
    got = []
    for b in data:
        got += reader.feed(bytes([b]))
    assert got == [(ap.ShellPacketId.STDIN, b"abc"), (ap.ShellPacketId.CLOSE_STDIN, b""),
                   (ap.ShellPacketId.EXIT, b"\x03")]


def test_sync_reader_split_and_merged() -> None:
    payload = bytes(range(256)) * 300
    stream = (ap.sync_request(b"SEND", b"/data/local/tmp/x,33188")
              + ap.sync_data(payload[:65536]) + ap.sync_data(payload[65536:])
              + ap.sync_done(1234) + ap.sync_request(b"STA2", b"/data") + ap.sync_request(b"QUIT", b""))
    rng = random.Random(7)
    for _ in range(20):
        reader = ap.SyncReader()
        got: list[ap.SyncRequest] = []
        i = 0
        while i < len(stream):
            n = rng.choice([1, 3, 8, 1000, 70000])
            got += reader.feed(stream[i:i + n])
            i += n
        assert [g.ident for g in got] == [b"SEND", b"DATA", b"DATA", b"DONE", b"STA2", b"QUIT"]
        assert got[1].data + got[2].data == payload
        assert got[3].arg == 1234
        assert ap.parse_send_target(got[0].data) == ("/data/local/tmp/x", 33188)


def test_sync_reader_rejects_unknown_and_oversized() -> None:
    with pytest.raises(ap.ProtocolError):
        ap.SyncReader().feed(b"NOPE\0\0\0\0")
    with pytest.raises(ap.ProtocolError):
        ap.SyncReader().feed(struct.pack("<4sI", b"DATA", 70000))


def test_stat_replies() -> None:
    st = ap.FileStat(mode=0o100644, size=5, mtime_s=10)
    assert ap.unpack_stat_v1(ap.sync_stat_v1(st)) == (b"STAT", 0o100644, 5, 10)
    assert ap.unpack_stat_v1(ap.sync_stat_v1(None)) == (b"STAT", 0, 0, 0)
    raw = ap.sync_stat_v2(b"STA2", ap.FileStat(0, 0, 0, error=2))
    assert len(raw) == 72
    ident, back = ap.unpack_stat_v2(raw)
    assert ident == b"STA2" and back.error == 2
    ident, back = ap.unpack_stat_v2(ap.sync_stat_v2(b"LST2", st))
    assert back.size == 5 and back.mode == 0o100644
