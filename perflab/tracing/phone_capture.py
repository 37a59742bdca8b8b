"""Kernel trace capture on a rooted phone over adb: its own ftrace instance, every change
journaled and undone on exit.

:class:`PhoneTraceCapture` (a context manager) on an AndroidDevice:

1. needs root (else MeasurementError saying so) and a tracefs (``/sys/kernel/tracing``, else
   ``/sys/kernel/debug/tracing``; perflab does not mount one on a phone);
2. journals, then sets, ``debug.tflite.trace`` = 1 (TFLite reads it when its interpreter
   starts, so benchmark_model started afterwards writes its ATrace sections) and app tracing
   for benchmark_model (``debug.atrace.app_*``: libcutils enables ATrace in a process only
   when its cmdline is listed there, on a debuggable build);
3. makes its own ftrace instance ``instances/perflab`` (journaled before the ``mkdir``, so a
   crash leaves an entry whose undo is ``rmdir``; an instance of that name left over is removed
   first) with its own buffer size, clock (``boot``), events — irq_handler_entry/exit,
   sched_switch, binder, and the GPU/fastrpc events this kernel has — and ``tracing_on``.
   Settings inside the instance are not journaled: ``rmdir`` takes them with it;
4. ATrace: apps and TFLite write their sections to the *top-level* ``trace_marker``, which on
   most phone kernels feeds the top-level buffer only. With ``options/copy_trace_marker``
   (Linux 6.16) the instance sets it and gets those writes too (mode ``instance``). Without
   it (mode ``instance+top-level markers``) the top-level buffer is switched on with the same
   clock (and at least :data:`TOP_MARKERS_MIN_KB` per CPU; all journaled; its events and
   contents are left alone), and at the end its marker
   lines between perflab's ``perflab:capture:begin``/``end`` markers are merged by timestamp
   into the saved trace (:func:`merge_top_level_markers`);
5. :meth:`segment` writes ``perflab:segment:<name>:begin|end`` into the instance's own
   ``trace_marker``;
6. on exit — also after an error or Ctrl-C's RunInterrupted — stops tracing, saves the buffer
   to ``out`` with a first line ``# trace_clock: <trace_clock file>`` and ``# perflab:`` lines
   saying where the events came from, and undoes every change newest first (the instance's
   ``rmdir`` last), marking each done in the device's journal. A phone that drops off keeps
   its entries pending: ``perflab devices restore`` (or the next run) undoes them.

A kernel without ``instances/`` (before Linux 3.10, where instances came in) or where ``mkdir``
fails falls back to the top-level buffer, with every setting journaled and the buffer cleared
(mode ``global``); :attr:`PhoneTraceCapture.notes` and the saved file say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Self

from perflab.devices.capabilities import ShellDevice
from perflab.devices.journal import Change, ChangeKind
from perflab.errors import DeviceError, DeviceGoneError, MeasurementError
from perflab.tracing.capture_base import TraceCapture
from perflab.tracing.ftrace import LINE_PATTERN

PHONE_TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
ATRACE_PROP = "debug.tflite.trace"
PHONE_INSTANCE = "perflab"
PHONE_EVENTS = ("irq/irq_handler_entry", "irq/irq_handler_exit", "sched/sched_switch",
                "kgsl/kgsl_issueibcmds", "kgsl/adreno_cmdbatch_submitted", "fastrpc/fastrpc_transport_send",
                "fastrpc/fastrpc_transport_response", "binder/binder_transaction",
                "binder/binder_transaction_received")
PHONE_BUFFER_KB = 8192
TOP_MARKERS_MIN_KB = 1024  # per CPU: the top-level buffer that carries ATrace, when it must
CAPTURE_BEGIN = "perflab:capture:begin"
CAPTURE_END = "perflab:capture:end"
MARKER_EVENTS = frozenset({"tracing_mark_write", "0", "print"})
_BRACKETED = re.compile(r"\[([^\]]+)\]")
_LINE_RE = re.compile(LINE_PATTERN)
_ENTRIES_RE = re.compile(r"^#\s*entries-in-buffer/entries-written:\s*(\d+)/(\d+)")


class CaptureMode(StrEnum):
    INSTANCE = "instance"  # everything in instances/perflab (copy_trace_marker brings ATrace in)
    INSTANCE_TOP_MARKERS = "instance+top-level markers"  # ATrace merged in from the top-level buffer
    GLOBAL = "global"  # no instance: the top-level buffer, every setting journaled


def current_clock(trace_clock_text: str) -> str:
    """The selected clock of a ``trace_clock`` file (``local [boot] mono`` → ``boot``); pure."""
    m = _BRACKETED.search(trace_clock_text)
    return m.group(1) if m else trace_clock_text.strip()


def merge_top_level_markers(instance_text: str, top_text: str) -> tuple[str, int]:
    """The instance's trace with the top-level buffer's trace_marker lines (ATrace) merged in
    by timestamp; pure. Only marker lines stamped between the instance's
    ``perflab:capture:begin`` and ``perflab:capture:end`` markers are taken (the top-level
    buffer may hold older lines, and other tools' events); both buffers must run the same
    clock. Returns the merged text and how many lines came from the top level. The instance's
    header stays; a ``# perflab:`` comment gives the top-level buffer's own entry counts (its
    overwritten events may be ATrace lost before the capture read it)."""
    head: list[str] = []
    events: list[tuple[float, int, str]] = []
    begin = end = None
    for k, line in enumerate(instance_text.splitlines()):
        m = _LINE_RE.match(line)
        if m is None:  # the header; later, LOST / buffer-started lines: they keep their place
            if events:
                events.append((events[-1][0], k, line))
            else:
                head.append(line)
            continue
        ts = float(m.group(6))
        if m.group(7) in MARKER_EVENTS:
            payload = m.group(8).strip()
            if payload == CAPTURE_BEGIN and begin is None:
                begin = ts
            elif payload == CAPTURE_END:
                end = ts
        events.append((ts, k, line))
    taken = 0
    top_entries = ""
    n0 = len(events) + 1
    for k, line in enumerate(top_text.splitlines()):
        if (em := _ENTRIES_RE.match(line)) is not None:
            top_entries = f"{em.group(1)}/{em.group(2)}"
        m = _LINE_RE.match(line)
        if m is None or m.group(7) not in MARKER_EVENTS:
            continue
        ts = float(m.group(6))
        if (begin is not None and ts < begin) or (end is not None and ts > end):
            continue
        events.append((ts, n0 + k, line))
        taken += 1
    events.sort(key=lambda e: (e[0], e[1]))
    note = (f"# perflab: {taken} trace_marker lines (ATrace) merged from the top-level buffer"
            + (f" (its entries-in-buffer/entries-written: {top_entries})" if top_entries else ""))
    return "\n".join([*head, note, *(e[2] for e in events)]) + "\n", taken


@dataclass(frozen=True)
class _Done:
    change: Change
    undo: tuple[str, str]  # (path, "prop:<name>" or "rmdir:<dir>"; the value to put back)


class PhoneTraceCapture(TraceCapture):
    def __init__(self, device: ShellDevice, out: Path, *, buffer_kb: int = PHONE_BUFFER_KB, clock: str = "boot",
                 events: tuple[str, ...] = PHONE_EVENTS, instance: str | None = PHONE_INSTANCE) -> None:
        self.device = device
        self.out = out
        self.buffer_kb = buffer_kb
        self.clock = clock
        self.events = events
        self.instance_name = instance  # None: the top-level buffer, as on kernels without instances
        self.tracefs: str | None = None
        self.root: str | None = None  # the trace array's directory: the instance, or tracefs itself
        self.mode: CaptureMode | None = None
        self.notes: list[str] = []
        self._made: list[_Done] = []
        self.saved_bytes = 0

    # -- changes, each journaled before it is made ----------------------------------------

    def _run_id(self) -> str:
        return str(getattr(self.device, "_run_id", ""))

    def _set_file(self, path: str, value: str, old: str) -> None:
        ch = self.device.journal.record(ChangeKind.WRITE_FILE, path, old, value, run_id=self._run_id(), root=True,
                                        what="kernel trace")
        self._made.append(_Done(ch, (path, old)))
        self.device.write_file(path, value, root=True)

    def _file(self, name: str, value: str) -> None:
        """A top-level tracefs setting: journaled, restored on exit."""
        assert self.tracefs is not None
        path = f"{self.tracefs}/{name}"
        old = self.device.read_file(path, root=True)
        if old is None:
            return  # the kernel lacks it (an event this phone does not have): the trace lacks it too
        if name == "trace_clock":
            old = current_clock(old)
        if old != value:
            self._set_file(path, value, old)

    def _inst_file(self, name: str, value: str) -> bool:
        """A setting inside perflab's instance (gone with its rmdir: not journaled). False when
        the kernel lacks the file."""
        assert self.root is not None
        path = f"{self.root}/{name}"
        if self.device.read_file(path, root=True) is None:
            return False
        self.device.write_file(path, value, root=True)
        return True

    def _note_lacking(self, events: list[str]) -> None:
        """Say in the trace which of the events asked for this kernel does not have (a reader
        can then tell "no fastrpc call" from "no fastrpc events on this phone")."""
        if events:
            self.notes.append(f"this kernel has no events {', '.join(events)}")

    def _prop(self, name: str, value: str, what: str = "TFLite ATrace sections") -> None:
        old = self.device.sh(["getprop", name]).stdout.strip()
        if old == value:
            return
        ch = self.device.journal.record(ChangeKind.PROPERTY, name, old, value, run_id=self._run_id(), root=False,
                                        what=what)
        self._made.append(_Done(ch, (f"prop:{name}", old)))
        self.device.sh(["setprop", name, value])

    def _app_tracing(self) -> None:
        """ATrace_isEnabled() in a native process: libcutils sets the app tag only when
        ``ro.debuggable`` is 1 and the process's cmdline (argv[0]) is one of
        ``debug.atrace.app_<i>``, i < ``debug.atrace.app_number`` (``*`` on recent Android; the
        tool's exact path for older ones) — what ``atrace -a`` sets. Read at process start."""
        self._prop("debug.atrace.app_0", "*", "ATrace app tracing for benchmark_model")
        self._prop("debug.atrace.app_1", self.device.benchmark_remote_path, "ATrace app tracing for benchmark_model")
        self._prop("debug.atrace.app_number", "2", "ATrace app tracing for benchmark_model")
        if self.device.sh(["getprop", "ro.debuggable"]).stdout.strip() != "1":
            self.notes.append("ro.debuggable is not 1: Android writes no app ATrace sections (TFLite's) on this "
                              "build; the kernel events are captured all the same")

    def _exists(self, path: str) -> bool:
        return self.device.sh(["ls", "-d", path], root=True, check=False).exit_code == 0

    def _make_instance(self) -> str | None:
        """mkdir instances/<name> (journaled first); its path, or None with a note saying why not."""
        assert self.tracefs is not None and self.instance_name is not None
        parent = f"{self.tracefs}/instances"
        if not self._exists(parent):
            self.notes.append(f"this kernel's tracefs has no instances/ ({parent}): captured in the top-level buffer")
            return None
        path = f"{parent}/{self.instance_name}"
        if self._exists(path):  # left by a run that crashed before its journal was replayed
            self.device.sh(["rmdir", path], root=True, check=False)
        ch = self.device.journal.record(ChangeKind.TRACE_INSTANCE, path, None, "created", run_id=self._run_id(),
                                        root=True, what="ftrace instance")
        res = self.device.sh(["mkdir", path], root=True, check=False)
        if res.exit_code != 0:
            self.device.journal.mark_done(ch, note="mkdir failed; nothing was made")
            why = (res.stderr or res.stdout).strip() or f"exit {res.exit_code}"
            self.notes.append(f"cannot make the ftrace instance {path} ({why}): captured in the top-level buffer")
            return None
        self._made.append(_Done(ch, (f"rmdir:{path}", "")))
        return path

    # -- the capture ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if not self.device.is_rooted():
            raise MeasurementError(f"[{self.device.serial}] kernel tracing on a phone needs root (tracefs is "
                                   "root-only); this phone is not rooted")
        for p in PHONE_TRACEFS:
            if self.device.read_file(f"{p}/tracing_on", root=True) is not None:
                self.tracefs = p
                break
        if self.tracefs is None:
            raise MeasurementError(f"[{self.device.serial}] no tracefs at {' or '.join(PHONE_TRACEFS)}")
        try:
            self._prop(ATRACE_PROP, "1")
            self._app_tracing()
            inst = self._make_instance() if self.instance_name is not None else None
            if inst is not None:
                self._start_instance(inst)
            else:
                self._start_global()
        except BaseException:
            self._restore()
            raise
        return self

    def _start_instance(self, inst: str) -> None:
        self.root = inst
        self._inst_file("tracing_on", "0")  # a new instance starts with tracing on
        self._inst_file("buffer_size_kb", str(self.buffer_kb))
        self._inst_file("trace_clock", self.clock)
        self._note_lacking([ev for ev in self.events if not self._inst_file(f"events/{ev}/enable", "1")])
        if self._inst_file("options/copy_trace_marker", "1"):
            self.mode = CaptureMode.INSTANCE
            self.notes.append(f"captured in the ftrace instance {inst}; top-level trace_marker writes (ATrace) "
                              "copied in by options/copy_trace_marker")
        else:
            self.mode = CaptureMode.INSTANCE_TOP_MARKERS
            self.notes.append(f"captured in the ftrace instance {inst}; this kernel has no copy_trace_marker, so "
                              "ATrace (top-level trace_marker) lines come from the top-level buffer, merged by time")
            self._file("trace_clock", self.clock)  # the same clock in both buffers, or the merge is meaningless
            self._top_buffer_at_least(TOP_MARKERS_MIN_KB)
            self._file("tracing_on", "1")
        self.device.write_file(f"{inst}/trace", "", root=True)  # clear
        self._inst_file("tracing_on", "1")
        self.mark(CAPTURE_BEGIN)

    def _top_buffer_at_least(self, kb: int) -> None:
        """A top-level buffer too small for the ATrace lines of a run is enlarged (journaled).
        Its file may read ``7 (expanded: 1408)`` before first use: the number is the size."""
        assert self.tracefs is not None
        path = f"{self.tracefs}/buffer_size_kb"
        text = self.device.read_file(path, root=True)
        m = re.match(r"\s*(\d+)", text or "")
        if m is not None and int(m.group(1)) < kb:
            self._set_file(path, str(kb), m.group(1))

    def _start_global(self) -> None:
        assert self.tracefs is not None
        self.root = self.tracefs
        self.mode = CaptureMode.GLOBAL
        self._file("tracing_on", "0")
        self._file("buffer_size_kb", str(self.buffer_kb))
        self._file("trace_clock", self.clock)
        self._note_lacking([ev for ev in self.events
                            if self.device.read_file(f"{self.tracefs}/events/{ev}/enable", root=True) is None])
        for ev in self.events:
            self._file(f"events/{ev}/enable", "1")
        self.device.write_file(f"{self.tracefs}/trace", "", root=True)  # clear
        self._file("tracing_on", "1")
        self.mark(CAPTURE_BEGIN)

    def mark(self, text: str) -> None:
        """A marker into this capture's trace array (the instance's own trace_marker)."""
        assert self.root is not None
        self.device.write_file(f"{self.root}/trace_marker", text, root=True)

    def _save(self) -> None:
        if self.root is None or self.tracefs is None:
            return
        dev = self.device
        self.mark(CAPTURE_END)
        dev.write_file(f"{self.root}/tracing_on", "0", root=True)
        clock = (dev.read_file(f"{self.root}/trace_clock", root=True) or "").strip()
        text = dev.sh(["cat", f"{self.root}/trace"], root=True, timeout_s=120.0).stdout
        if self.mode is CaptureMode.INSTANCE_TOP_MARKERS:
            top = dev.sh(["cat", f"{self.tracefs}/trace"], root=True, timeout_s=120.0).stdout
            text, _ = merge_top_level_markers(text, top)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        notes = "".join(f"# perflab: {n}\n" for n in self.notes)
        self.out.write_text(f"# trace_clock: {clock}\n{notes}{text}", encoding="utf-8")
        self.saved_bytes = len(text)

    def _restore(self) -> None:
        """Undo newest first; a phone that is gone keeps the rest pending in its journal."""
        while self._made:
            done = self._made.pop()
            target, old = done.undo
            try:
                if target.startswith("prop:"):
                    self.device.sh(["setprop", target[5:], old])
                elif target.startswith("rmdir:"):
                    self.device.sh(["rmdir", target[6:]], root=True)
                else:
                    self.device.write_file(target, old, root=True)
            except DeviceGoneError:
                self._made.clear()
                return
            except DeviceError:
                continue  # stays pending: the device's restore tries again
            self.device.journal.mark_done(done.change)
