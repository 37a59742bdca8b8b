"""Kernel trace capture on a rooted phone over adb: every change journaled, undone on exit.

:class:`PhoneTraceCapture` (a context manager) on an AndroidDevice:

1. needs root (else MeasurementError saying so) and a tracefs (``/sys/kernel/tracing``, else
   ``/sys/kernel/debug/tracing``; perflab does not mount one on a phone);
2. journals, then makes, each change: ``setprop debug.tflite.trace 1`` (TFLite reads it when
   its interpreter starts, so benchmark_model started afterwards writes its ATrace
   sections), the buffer size, the clock (``boot``), irq_handler_entry/exit and sched_switch
   (and the GPU/fastrpc events the kernel has), ``tracing_on``; the global buffer is cleared;
3. :meth:`segment` writes ``perflab:segment:<name>:begin|end`` into trace_marker;
4. on exit — also after an error or Ctrl-C's RunInterrupted — stops tracing, saves the
   buffer to ``out`` with a first line ``# trace_clock: <trace_clock file>``, and undoes every
   change newest first, marking each done in the device's journal. A phone that drops off
   keeps its entries pending: ``perflab devices restore`` (or the next run) undoes them.

The phone's global buffer is used (instances need a newer kernel than many phones run, and
atrace itself uses the global one); its previous settings are what the journal restores.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from perflab.devices.android import AndroidDevice
from perflab.devices.journal import Change, ChangeKind
from perflab.errors import DeviceError, DeviceGoneError, MeasurementError

PHONE_TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
ATRACE_PROP = "debug.tflite.trace"
PHONE_EVENTS = ("irq/irq_handler_entry", "irq/irq_handler_exit", "sched/sched_switch",
                "kgsl/kgsl_issueibcmds", "kgsl/adreno_cmdbatch_submitted", "fastrpc/fastrpc_transport_send",
                "fastrpc/fastrpc_transport_response", "binder/binder_transaction",
                "binder/binder_transaction_received")
PHONE_BUFFER_KB = 8192
_BRACKETED = re.compile(r"\[([^\]]+)\]")


def current_clock(trace_clock_text: str) -> str:
    """The selected clock of a ``trace_clock`` file (``local [boot] mono`` → ``boot``); pure."""
    m = _BRACKETED.search(trace_clock_text)
    return m.group(1) if m else trace_clock_text.strip()


@dataclass(frozen=True)
class _Done:
    change: Change
    undo: tuple[str, str]  # (path or property, value to put back)


class PhoneTraceCapture:
    def __init__(self, device: AndroidDevice, out: Path, *, buffer_kb: int = PHONE_BUFFER_KB, clock: str = "boot",
                 events: tuple[str, ...] = PHONE_EVENTS) -> None:
        self.device = device
        self.out = out
        self.buffer_kb = buffer_kb
        self.clock = clock
        self.events = events
        self.tracefs: str | None = None
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
        assert self.tracefs is not None
        path = f"{self.tracefs}/{name}"
        old = self.device.read_file(path, root=True)
        if old is None:
            return  # the kernel lacks it (an event this phone does not have): the trace lacks it too
        if name == "trace_clock":
            old = current_clock(old)
        if old != value:
            self._set_file(path, value, old)

    def _prop(self, name: str, value: str) -> None:
        old = self.device.sh(["getprop", name]).stdout.strip()
        if old == value:
            return
        ch = self.device.journal.record(ChangeKind.PROPERTY, name, old, value, run_id=self._run_id(), root=False,
                                        what="TFLite ATrace sections")
        self._made.append(_Done(ch, (f"prop:{name}", old)))
        self.device.sh(["setprop", name, value])

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
            self._file("tracing_on", "0")
            self._file("buffer_size_kb", str(self.buffer_kb))
            self._file("trace_clock", self.clock)
            for ev in self.events:
                self._file(f"events/{ev}/enable", "1")
            self.device.write_file(f"{self.tracefs}/trace", "", root=True)  # clear
            self._file("tracing_on", "1")
        except BaseException:
            self._undo()
            raise
        return self

    def mark(self, text: str) -> None:
        assert self.tracefs is not None
        self.device.write_file(f"{self.tracefs}/trace_marker", text, root=True)

    @contextlib.contextmanager
    def segment(self, name: str) -> Iterator[None]:
        self.mark(f"perflab:segment:{name}:begin")
        try:
            yield
        finally:
            self.mark(f"perflab:segment:{name}:end")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._save()
        finally:
            self._undo()

    def _save(self) -> None:
        assert self.tracefs is not None
        dev = self.device
        dev.write_file(f"{self.tracefs}/tracing_on", "0", root=True)
        clock = (dev.read_file(f"{self.tracefs}/trace_clock", root=True) or "").strip()
        text = dev.sh(["cat", f"{self.tracefs}/trace"], root=True, timeout_s=120.0).stdout
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(f"# trace_clock: {clock}\n{text}", encoding="utf-8")
        self.saved_bytes = len(text)

    def _undo(self) -> None:
        """Undo newest first; a phone that is gone keeps the rest pending in its journal."""
        while self._made:
            done = self._made.pop()
            target, old = done.undo
            try:
                if target.startswith("prop:"):
                    self.device.sh(["setprop", target[5:], old])
                else:
                    self.device.write_file(target, old, root=True)
            except DeviceGoneError:
                self._made.clear()
                return
            except DeviceError:
                continue  # stays pending: the device's restore tries again
            self.device.journal.mark_done(done.change)
