"""The adb ``sync:`` service of an emulated phone: stat, list, push (SEND) and pull (RECV)."""

from __future__ import annotations

import os
import posixpath
import stat as statmod
from pathlib import Path
from typing import BinaryIO, Protocol

from perflab.emulator import adb_protocol as ap
from perflab.emulator.fs import SHELL_UID, FsError, PhoneFS, normalize


class SyncStream(Protocol):
    def read(self, timeout_s: float | None = None) -> bytes | None: ...

    def write(self, data: bytes) -> None: ...


class _Upload:
    """One SEND: written to a hidden temporary file, moved into place only on DONE."""

    def __init__(self, fs: PhoneFS, target: str, mode: int, uid: int) -> None:
        self.fs = fs
        self.target = target
        self.mode = mode
        self.error: str | None = None
        self.tmp: Path | None = None
        self.fh: BinaryIO | None = None
        if statmod.S_ISLNK(mode):
            self.error = "symlinks are not supported by the emulated phone"
            return
        try:
            parent = posixpath.dirname(normalize(target))
            if not fs.is_dir(parent) and fs.writable_by(parent, uid):
                fs.mkdir(parent, uid, parents=True)  # fixed_push_mkdir
            host = fs.open_for_write(target, uid, mode)
            self.tmp = host.with_name(f".{host.name}.adbtmp")
            self.fh = open(self.tmp, "wb")  # noqa: SIM115 - closed by finish() or abandon()
        except FsError as exc:
            self.error = f"couldn't create file: {os.strerror(exc.errno_)}"

    def write(self, data: bytes) -> None:
        if self.fh is not None:
            self.fh.write(data)

    def abandon(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)

    def finish(self, mtime: int) -> None:
        if self.fh is None or self.tmp is None or self.error is not None:
            self.abandon()
            return
        self.fh.close()
        self.fh = None
        final = self.fs.host_path(self.target)
        os.replace(self.tmp, final)
        os.chmod(final, self.mode & 0o777)
        if mtime:
            os.utime(final, (mtime, mtime))


class SyncSession:
    """Serves one ``sync:`` stream until QUIT or the host closes it."""

    def __init__(self, fs: PhoneFS, st: SyncStream, uid: int = SHELL_UID) -> None:
        self.fs = fs
        self.st = st
        self.uid = uid
        self.reader = ap.SyncReader()
        self.pending: list[ap.SyncRequest] = []

    def next_request(self) -> ap.SyncRequest | None:
        while not self.pending:
            chunk = self.st.read()
            if chunk is None:
                return None
            self.pending.extend(self.reader.feed(chunk))
        return self.pending.pop(0)

    def serve(self) -> None:
        handlers = {b"STAT": self.stat_v1, b"STA2": self.stat_v2, b"LST2": self.stat_v2,
                    b"LIST": self.listing, b"LIS2": self.listing, b"SEND": self.send, b"RECV": self.recv}
        while True:
            req = self.next_request()
            if req is None or req.ident == b"QUIT":
                return
            handler = handlers.get(req.ident)
            if handler is None:
                self.st.write(ap.sync_fail(f"unknown sync request {req.ident!r}"))
                return
            handler(req)

    @staticmethod
    def _path(req: ap.SyncRequest) -> str:
        return req.data.decode("utf-8", "surrogateescape")

    def stat_v1(self, req: ap.SyncRequest) -> None:
        self.st.write(ap.sync_stat_v1(self.fs.stat(self._path(req))))

    def stat_v2(self, req: ap.SyncRequest) -> None:
        fst = self.fs.stat(self._path(req))
        self.st.write(ap.sync_stat_v2(req.ident, fst if fst is not None else ap.FileStat(0, 0, 0, error=2)))

    def listing(self, req: ap.SyncRequest) -> None:
        path = self._path(req)
        v2 = req.ident == b"LIS2"
        out = bytearray()
        try:
            names = [".", "..", *self.fs.listdir(path)]
        except FsError:
            names = []
        for nm in names:
            fst = self.fs.stat(normalize(posixpath.join(path, nm)))
            if fst is not None:
                out += ap.sync_dent_v2(nm, fst) if v2 else ap.sync_dent_v1(nm, fst)
        out += ap.sync_dent_v2_done() if v2 else ap.sync_dent_v1_done()
        self.st.write(bytes(out))

    def recv(self, req: ap.SyncRequest) -> None:
        try:
            data = self.fs.read_bytes(self._path(req), self.uid)
        except FsError as exc:
            self.st.write(ap.sync_fail(os.strerror(exc.errno_)))
            return
        out = bytearray()
        for i in range(0, len(data), ap.SYNC_DATA_MAX):
            out += ap.sync_data(data[i:i + ap.SYNC_DATA_MAX])
            if len(out) >= 4 * ap.SYNC_DATA_MAX:
                self.st.write(bytes(out))
                out.clear()
        out += ap.sync_done()
        self.st.write(bytes(out))

    def send(self, req: ap.SyncRequest) -> None:
        target, mode = ap.parse_send_target(req.data)
        upload = _Upload(self.fs, target, mode, self.uid)
        while True:
            part = self.next_request()
            if part is None:  # the host went away mid-push
                upload.abandon()
                return
            if part.ident == b"DATA":
                upload.write(part.data)
                continue
            if part.ident == b"DONE":
                upload.finish(part.arg)
            else:
                upload.error = upload.error or f"unexpected {part.ident!r} during SEND"
                upload.abandon()
            break
        self.st.write(ap.sync_okay() if upload.error is None else ap.sync_fail(upload.error))
