"""The host-side journal of device changes.

Before perflab changes anything on a phone (charging suspended, governor pinned, screen
off, stay-awake, a process started in the background that outlives its adb shell), it appends a ``change`` record with the OLD value to a JSON-lines file
for that serial, and fsyncs it. Undoing appends a ``done`` record. So a run that crashes —
or a phone that drops off USB mid-cell — leaves exactly the list of what to put back, and
``perflab devices restore [SERIAL]`` (or the next run) undoes it in reverse order.

The journal knows nothing about adb: the undo itself is a callable the device supplies.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from perflab.core.names import serial_filename
from perflab.devices.lock import state_dir
from perflab.errors import DeviceError, DeviceGoneError, StoreError


class ChangeKind(StrEnum):
    WRITE_FILE = "write_file"  # target: sysfs path; old/new: file contents (stripped)
    SETTING = "setting"  # target: "<namespace>/<key>"; old None = was unset
    SCREEN = "screen"  # target: "screen"; old/new: "on" / "off"
    PROPERTY = "property"  # target: a system property (setprop); old "" = was unset
    TRACE_INSTANCE = "trace_instance"  # target: an ftrace instance dir perflab made (mkdir); undo: rmdir
    # target: the PID file a process perflab starts in the background writes itself; new: text
    # its /proc/<pid>/cmdline holds (so a recycled PID is never killed); undo: kill it, rm the file
    PROCESS = "process"


@dataclass(frozen=True)
class Change:
    id: str
    serial: str
    run_id: str
    kind: ChangeKind
    target: str
    old: str | None
    new: str | None
    root: bool  # needs root to undo
    what: str  # human words: "suspend charging", "pin governor"
    ts: float

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> Change:
        return Change(
            id=str(d["id"]), serial=str(d["serial"]), run_id=str(d.get("run_id", "")),
            kind=ChangeKind(d["kind"]), target=str(d["target"]),
            old=None if d.get("old") is None else str(d["old"]),
            new=None if d.get("new") is None else str(d["new"]),
            root=bool(d.get("root", False)), what=str(d.get("what", "")), ts=float(d.get("ts", 0.0)),
        )


def journal_dir() -> Path:
    return state_dir() / "journal"


class Journal:
    """The journal file of one serial."""

    def __init__(self, serial: str, directory: Path | None = None) -> None:
        self.serial = serial
        self.path = (directory or journal_dir()) / f"{serial_filename(serial)}.jsonl"

    def _append(self, record: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps(record, sort_keys=True) + "\n"
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line  # the last write was torn by a crash: start a fresh line
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError(f"cannot write device journal {self.path}: {exc}") from exc

    def record(
        self, kind: ChangeKind, target: str, old: str | None, new: str | None, *,
        run_id: str = "", root: bool = False, what: str = "",
    ) -> Change:
        """Journal a change BEFORE making it. Returns the entry (keep its id to mark it done)."""
        ch = Change(uuid.uuid4().hex, self.serial, run_id, kind, target, old, new, root, what, time.time())
        self._append({"op": "change", **ch.to_json()})
        return ch

    def mark_done(self, change: Change, note: str = "") -> None:
        self._append({"op": "done", "id": change.id, "ts": time.time(), "note": note})

    def entries(self) -> list[tuple[Change, bool]]:
        """Every change in order, with whether it was undone. A torn last line is ignored."""
        if not self.path.exists():
            return []
        changes: dict[str, Change] = {}
        order: list[str] = []
        done: set[str] = set()
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"cannot read device journal {self.path}: {exc}") from exc
        for raw in text.splitlines():
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                if rec.get("op") == "change":
                    ch = Change.from_json(rec)
                    changes[ch.id] = ch
                    order.append(ch.id)
                elif rec.get("op") == "done":
                    done.add(str(rec["id"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash mid-write
        return [(changes[i], i in done) for i in order]

    def pending(self) -> list[Change]:
        """Changes not yet undone, oldest first."""
        return [ch for ch, is_done in self.entries() if not is_done]

    def restore(self, undo: Callable[[Change], None]) -> list[Change]:
        """Undo every pending change, newest first, marking each done as it succeeds.

        A DeviceGoneError stops at once (the rest stays pending for later); any other
        DeviceError is collected and the others still get undone; then one error says
        which could not be. Returns the changes undone."""
        undone: list[Change] = []
        failures: list[tuple[Change, DeviceError]] = []
        for ch in reversed(self.pending()):
            try:
                undo(ch)
            except DeviceGoneError:
                raise
            except DeviceError as exc:
                failures.append((ch, exc))
                continue
            self.mark_done(ch)
            undone.append(ch)
        if failures:
            first = failures[0]
            raise DeviceError(
                self.serial,
                f"could not undo {len(failures)} change(s), still journaled in {self.path}: "
                + "; ".join(f"{c.what or c.kind.value} {c.target} -> {c.old!r}" for c, _ in failures)
                + f" (first error: {first[1].message})",
            )
        return undone

    def compact(self) -> None:
        """Drop the file when nothing is pending (keeps the state dir small)."""
        if self.path.exists() and not self.pending():
            with contextlib.suppress(OSError):
                self.path.unlink()


def journaled_serials(directory: Path | None = None) -> list[str]:
    """Serials that have changes still pending (for ``perflab devices restore`` with no serial)."""
    d = directory or journal_dir()
    if not d.is_dir():
        return []
    serials: set[str] = set()
    for p in sorted(d.glob("*.jsonl")):
        try:
            for raw in p.read_text(encoding="utf-8").splitlines():
                rec = json.loads(raw)
                if rec.get("op") == "change":
                    serial = str(rec["serial"])
                    if Journal(serial, d).pending():
                        serials.add(serial)
                    break
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(serials)
