"""The emulated phone's tracefs: the top-level trace buffer and ftrace instances.

Semantics follow Linux (kernel/trace/trace.c, trace_events.c), strictly, for what perflab uses:

* Every *trace array* — the top level and each ``instances/<name>`` that root made with
  ``mkdir`` — has its own ring buffer, ``tracing_on``, ``buffer_size_kb``, ``trace_clock``,
  ``trace`` (read: the buffer; write: clear it), ``trace_marker`` and per-event enables
  (``events/<group>/enable``, ``events/<group>/<event>/enable``). A new instance starts with
  tracing on, every event off, the ``local`` clock and an empty buffer; ``rmdir`` removes it
  and its buffer. Only root may mkdir/rmdir, only under ``instances/`` (elsewhere EPERM).
* A kernel event is recorded in every trace array that has it enabled and tracing on at the
  moment it fires. A write to a trace array's own ``trace_marker`` lands in that array only;
  the top-level ``trace_marker`` — where ATrace (libcutils, TFLite's ``debug.tflite.trace``)
  writes — lands in the top-level buffer, and, on kernels with the ``copy_trace_marker``
  option (Linux 6.16), also in each instance that sets ``options/copy_trace_marker``. The
  emulated kernel is a 5.10 GKI one and has no such option unless a test says so
  (:attr:`EmuTrace.copy_trace_marker_supported`).
* Changing ``trace_clock`` clears that buffer (the kernel resets it: old timestamps would not
  compare). ``counter`` prints the event's sequence number and ``uptime`` jiffies (HZ 250),
  the other clocks seconds with 6 decimals.
* Which events exist depends on the phone: every kernel has irq, sched and binder; a
  Qualcomm one (Adreno/kgsl GPU) has kgsl and the dsp-kernel's fastrpc events; Mali (Pixel
  Tensor, Exynos) and MediaTek ones have neither kgsl nor fastrpc. A missing event has no
  ``enable`` file, as on a real kernel.

Not implemented, refused: ring-buffer overflow (``buffer_size_kb`` is kept but never
overwrites), ``trace_pipe``, tracers other than nop, filters, triggers and other options —
their files do not exist, so a write fails with ENOENT/EACCES instead of being ignored.

How events get in: processes of the phone (the emulated benchmark_model) append lines with
boot-clock timestamps to one host file, :attr:`EmuTrace.buffer` (the events the kernel fires
and the ATrace writes to the top-level trace_marker); each trace array's state history
(tracing on/off and enabled events over time) decides, when its ``trace`` is read, which of
those lines it recorded.
"""

from __future__ import annotations

import bisect
import errno
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perflab.emulator.fs import ROOT_UID, FsError, PhoneFS, VNode, normalize

TRACEFS = "/sys/kernel/tracing"
INSTANCES = f"{TRACEFS}/instances"
TRACE_CLOCKS = ("local", "global", "counter", "uptime", "perf", "mono", "mono_raw", "boot")
UPTIME_HZ = 250
DEFAULT_BUFFER_KB = 1408
#: events of every emulated kernel
BASE_EVENTS = ("irq/irq_handler_entry", "irq/irq_handler_exit", "sched/sched_switch",
               "binder/binder_transaction", "binder/binder_transaction_received")
#: Qualcomm kernels: Adreno's kgsl driver and the dsp-kernel module's fastrpc events
QCOM_EVENTS = ("kgsl/kgsl_issueibcmds", "kgsl/adreno_cmdbatch_submitted", "fastrpc/fastrpc_transport_send",
               "fastrpc/fastrpc_transport_response", "fastrpc/fastrpc_context_complete")
MARKER_EVENT = "tracing_mark_write"
TRACE_HEADER = ("# tracer: nop\n#\n# entries-in-buffer/entries-written: {n}/{n}   #P:{cpus}\n#\n"
                "#                                _-----=> irqs-off/BH-disabled\n"
                "#                               / _----=> need-resched\n"
                "#                              | / _---=> hardirq/softirq\n"
                "#                              || / _--=> preempt-depth\n"
                "#                              ||| / _-=> migrate-disable\n"
                "#                              |||| /     delay\n"
                "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
                "#              | |         |   |||||     |         |\n")
_LINE_TS_EVENT = re.compile(r"\]\s+\S{4,5}\s+(\d+\.\d{6}): ([^:\s]+):")
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def kernel_events(gpu_kind: str) -> tuple[str, ...]:
    """The trace events an emulated kernel has, by the phone's GPU family (kgsl = Qualcomm)."""
    return BASE_EVENTS + (QCOM_EVENTS if gpu_kind == "kgsl" else ())


@dataclass
class TraceArray:
    """One trace array: the top level (``name`` "") or an instance."""

    name: str
    events: dict[str, bool]
    on: bool
    clock: str = "local"
    buffer_kb: int = DEFAULT_BUFFER_KB
    copy_trace_marker: bool = False  # top level: True (the default: its own trace_marker feeds it)
    cleared_at_s: float = float("-inf")
    #: (since, tracing on, enabled events, copy_trace_marker), in boot-clock seconds; the last
    #: entry is the present
    history: list[tuple[float, bool, frozenset[str], bool]] = field(default_factory=list)
    own_lines: list[tuple[float, str]] = field(default_factory=list)  # writes to its own trace_marker

    def note(self, now_s: float) -> None:
        self.history.append((now_s, self.on, frozenset(e for e, v in self.events.items() if v),
                             self.copy_trace_marker))

    def state_at(self, ts_s: float) -> tuple[bool, frozenset[str], bool]:
        """(tracing on, enabled events, copy_trace_marker) at that moment."""
        i = bisect.bisect_right(self.history, ts_s, key=lambda h: h[0]) - 1
        if i < 0:
            return False, frozenset(), False
        _, on, enabled, copy = self.history[i]
        return on, enabled, copy

    def records(self, ts_s: float, event: str) -> bool:
        """Whether this array holds a line of ``event`` stamped ``ts_s`` (a top-level
        trace_marker write when ``event`` is tracing_mark_write)."""
        if ts_s < self.cleared_at_s:
            return False
        on, enabled, copy = self.state_at(ts_s)
        if not on:
            return False
        if event == MARKER_EVENT:
            return copy
        return any(e.endswith("/" + event) for e in enabled)


@dataclass
class EmuTrace:
    """The phone's tracefs. ``buffer`` is the host file the phone's processes append kernel
    events and top-level trace_marker writes to (boot-clock timestamps, see the module doc)."""

    buffer: Path
    boot_mono_s: float
    kernel_events: tuple[str, ...] = BASE_EVENTS
    copy_trace_marker_supported: bool = False  # Linux >= 6.16
    top: TraceArray = field(init=False)
    instances: dict[str, TraceArray] = field(default_factory=dict)
    cpus: int = 8
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.top = self._new_array("", on=False, clock="boot", copy=True)

    def _new_array(self, name: str, *, on: bool, clock: str, copy: bool) -> TraceArray:
        arr = TraceArray(name, dict.fromkeys(self.kernel_events, False), on, clock=clock, copy_trace_marker=copy)
        arr.note(self.boot_s())
        return arr

    def reset(self) -> None:
        """A reboot: no instances, the top level as after boot, the buffer empty."""
        with self.lock:
            self.instances.clear()
            self.top = self._new_array("", on=False, clock="boot", copy=True)
            self.buffer.write_bytes(b"")

    # -- what the phone's processes see (perflab.emulator.shell.benchmark reads these) -------

    def boot_s(self) -> float:
        return time.monotonic() - self.boot_mono_s

    @property
    def on(self) -> bool:
        """Some trace array is recording (a process started now writes its trace lines)."""
        return self.top.on or any(a.on for a in self.instances.values())

    @property
    def events(self) -> dict[str, bool]:
        """Per event, whether some recording trace array has it enabled."""
        arrays = [a for a in (self.top, *self.instances.values()) if a.on]
        return {e: any(a.events[e] for a in arrays) for e in self.kernel_events}

    @property
    def clock(self) -> str:
        return self.top.clock

    def offset_s(self) -> float:
        """What a process subtracts from host monotonic seconds to write boot-clock stamps."""
        return self.boot_mono_s

    def append(self, text: str) -> None:
        with open(self.buffer, "a", encoding="utf-8") as fh:
            fh.write(text)

    # -- instances ---------------------------------------------------------------------------

    def mkdir(self, name: str) -> None:
        if not _INSTANCE_NAME.match(name):
            raise FsError(errno.EINVAL, f"{INSTANCES}/{name}")
        with self.lock:
            if name in self.instances:
                raise FsError(errno.EEXIST, f"{INSTANCES}/{name}")
            self.instances[name] = self._new_array(name, on=True, clock="local", copy=False)

    def rmdir(self, name: str) -> None:
        with self.lock:
            if self.instances.pop(name, None) is None:
                raise FsError(errno.ENOENT, f"{INSTANCES}/{name}")
            self._prune()

    def _prune(self) -> None:
        """Drop the shared stream's lines that no trace array holds, so a long emulated run
        does not re-read them on every ``trace`` read. Called when an instance goes (the
        capture has ended, and with it the tool that writes the stream)."""
        if not self.buffer.is_file():
            return
        arrays = (self.top, *self.instances.values())
        with open(self.buffer, "r+", encoding="utf-8") as fh:
            lines = fh.read().splitlines(keepends=True)
            kept = [ln for ln in lines if (m := _LINE_TS_EVENT.search(ln)) is not None
                    and any(a.records(float(m.group(1)), m.group(2)) for a in arrays)]
            if len(kept) < len(lines):
                fh.seek(0)
                fh.write("".join(kept))
                fh.truncate()

    def array(self, name: str) -> TraceArray:
        arr = self.top if name == "" else self.instances.get(name)
        if arr is None:
            raise FsError(errno.ENOENT, f"{INSTANCES}/{name}")
        return arr

    # -- node writes and reads, per trace array ------------------------------------------------

    def set_on(self, name: str, raw: bytes) -> None:
        arr = self.array(name)
        text = raw.strip()  # any unsigned number, non-zero = on (rb_simple_write); event enables take 0/1
        if not text.isdigit():
            raise FsError(errno.EINVAL, f"{name}/tracing_on")
        arr.on = int(text) != 0
        arr.note(self.boot_s())

    def set_kb(self, name: str, raw: bytes) -> None:
        try:
            kb = int(raw.strip())
        except ValueError:
            raise FsError(errno.EINVAL, f"{name}/buffer_size_kb") from None
        if kb < 1:
            raise FsError(errno.EINVAL, f"{name}/buffer_size_kb")
        self.array(name).buffer_kb = kb

    def set_clock(self, name: str, raw: bytes) -> None:
        clock = raw.decode(errors="replace").strip()
        if clock not in TRACE_CLOCKS:
            raise FsError(errno.EINVAL, f"{name}/trace_clock")
        arr = self.array(name)
        if clock != arr.clock:
            arr.clock = clock
            self._clear(arr)  # the kernel resets the buffer: old stamps would not compare

    def clock_text(self, name: str) -> bytes:
        cur = self.array(name).clock
        return (" ".join(f"[{c}]" if c == cur else c for c in TRACE_CLOCKS) + "\n").encode()

    def clear(self, name: str, raw: bytes) -> None:
        del raw  # any write (also an empty one) clears, as O_TRUNC of trace does
        self._clear(self.array(name))

    def _clear(self, arr: TraceArray) -> None:
        arr.cleared_at_s = self.boot_s()
        arr.own_lines.clear()
        if arr is self.top and not self.instances:
            with self.lock:
                self.buffer.write_bytes(b"")  # nothing else reads the shared stream

    def mark(self, name: str, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip("\n")
        now = self.boot_s()
        line = f"              sh-1       [000] .....  {now:.6f}: {MARKER_EVENT}: {text}"
        if name == "":
            self.append(line + "\n")  # the top level: read out per array by its copy_trace_marker
            return
        arr = self.array(name)
        if arr.on:
            arr.own_lines.append((now, line))

    def set_event(self, name: str, event: str, raw: bytes) -> None:
        arr = self.array(name)
        arr.events[event] = _bool(raw, f"{name}/events/{event}/enable")
        arr.note(self.boot_s())

    def set_group(self, name: str, group: str, raw: bytes) -> None:
        arr = self.array(name)
        value = _bool(raw, f"{name}/events/{group}/enable")
        for e in arr.events:
            if e.startswith(group + "/"):
                arr.events[e] = value
        arr.note(self.boot_s())

    def group_text(self, name: str, group: str) -> bytes:
        values = {v for e, v in self.array(name).events.items() if e.startswith(group + "/")}
        return b"X\n" if len(values) > 1 else f"{int(values.pop())}\n".encode()

    def set_copy(self, name: str, raw: bytes) -> None:
        arr = self.array(name)
        arr.copy_trace_marker = _bool(raw, f"{name}/options/copy_trace_marker")
        arr.note(self.boot_s())

    # -- reading a trace array's buffer --------------------------------------------------------

    def lines_of(self, name: str) -> list[tuple[float, str]]:
        """(boot-clock seconds, line) of what this trace array recorded, in time order."""
        arr = self.array(name)
        raw = self.buffer.read_text(encoding="utf-8").splitlines() if self.buffer.is_file() else []
        out = [x for x in arr.own_lines if x[0] >= arr.cleared_at_s]
        for line in raw:
            m = _LINE_TS_EVENT.search(line)
            if m is None:
                continue
            ts = float(m.group(1))
            if arr.records(ts, m.group(2)):
                out.append((ts, line))
        out.sort(key=lambda x: x[0])
        return out

    def render(self, name: str) -> bytes:
        arr = self.array(name)
        lines = self.lines_of(name)
        body = []
        for k, (ts, line) in enumerate(lines):
            body.append(_restamp(line, _stamp(arr.clock, ts, self.boot_mono_s, k)) + "\n")
        return (TRACE_HEADER.format(n=len(body), cpus=self.cpus) + "".join(body)).encode()


def _bool(raw: bytes, what: str) -> bool:
    value = raw.strip()
    if value not in (b"0", b"1"):
        raise FsError(errno.EINVAL, what)
    return value == b"1"


def _stamp(clock: str, boot_s: float, boot_mono_s: float, seq: int) -> str:
    if clock == "counter":
        return str(seq + 1)
    if clock == "uptime":
        return str(int(boot_s * UPTIME_HZ))
    return f"{boot_s if clock == 'boot' else boot_s + boot_mono_s:.6f}"


def _restamp(line: str, stamp: str) -> str:
    m = _LINE_TS_EVENT.search(line)
    assert m is not None
    return line[:m.start(1)] + stamp + line[m.end(1):]


# ---- the nodes ------------------------------------------------------------------------------


def _text(fn: Callable[[], object]) -> Callable[[], bytes]:
    return lambda: f"{fn()}\n".encode()


def array_nodes(tr: EmuTrace, name: str) -> dict[str, VNode]:
    """The files of one trace array, by path relative to its directory."""

    def w(fn: Callable[[str, bytes], None]) -> Callable[[bytes], None]:
        return lambda raw: fn(name, raw)

    arr = tr.array(name)
    nodes = {
        "tracing_on": VNode(_text(lambda: int(arr.on)), w(tr.set_on), root_only_read=True),
        "buffer_size_kb": VNode(_text(lambda: arr.buffer_kb), w(tr.set_kb), root_only_read=True),
        "trace_clock": VNode(lambda: tr.clock_text(name), w(tr.set_clock), root_only_read=True),
        "trace": VNode(lambda: tr.render(name), w(tr.clear), root_only_read=True),
        "trace_marker": VNode(lambda: b"", w(tr.mark), root_only_read=True),
    }
    if tr.copy_trace_marker_supported:
        nodes["options/copy_trace_marker"] = VNode(_text(lambda: int(arr.copy_trace_marker)), w(tr.set_copy),
                                                   root_only_read=True)
    for group in sorted({e.split("/")[0] for e in tr.kernel_events}):
        nodes[f"events/{group}/enable"] = VNode(lambda g=group: tr.group_text(name, g),  # type: ignore[misc]
                                                lambda raw, g=group: tr.set_group(name, g, raw),  # type: ignore[misc]
                                                root_only_read=True)
    for ev in tr.kernel_events:
        nodes[f"events/{ev}/enable"] = VNode(lambda e=ev: f"{int(arr.events[e])}\n".encode(),  # type: ignore[misc]
                                             lambda raw, e=ev: tr.set_event(name, e, raw),  # type: ignore[misc]
                                             root_only_read=True)
    return nodes


class TracefsPhoneFS(PhoneFS):
    """The phone's filesystem with tracefs's directory rules: ``mkdir``/``rmdir`` of
    ``instances/<name>`` by root make and remove an ftrace instance; any other mkdir/rmdir
    inside tracefs is EPERM, as in Linux; elsewhere the plain rules apply."""

    trace: EmuTrace | None = None
    _instance_nodes: dict[str, dict[str, VNode]]

    def attach(self, tr: EmuTrace) -> None:
        self.trace = tr
        self._instance_nodes = {}
        for rel, node in array_nodes(tr, "").items():
            self.add_node(f"{TRACEFS}/{rel}", node)
        self.add_dynamic(INSTANCES, self._instance_files)

    def _instance_files(self) -> dict[str, VNode]:
        tr = self.trace
        if tr is None:
            return {}
        for gone in set(self._instance_nodes) - set(tr.instances):
            del self._instance_nodes[gone]
        out: dict[str, VNode] = {}
        for name in tr.instances:
            nodes = self._instance_nodes.get(name)
            if nodes is None:
                nodes = self._instance_nodes[name] = array_nodes(tr, name)
            out.update({f"{name}/{rel}": n for rel, n in nodes.items()})
        return out

    def _has_instances(self) -> bool:
        """Whether this kernel has instances/ (a fault can hide it: an old kernel)."""
        return self.trace is not None and not self._is_hidden(INSTANCES)

    def is_vdir(self, path: str) -> bool:
        return (path == INSTANCES and self._has_instances()) or super().is_vdir(path)

    def listdir(self, path: str) -> list[str]:
        if normalize(path) == INSTANCES and self._has_instances():
            assert self.trace is not None
            return sorted(self.trace.instances)
        return super().listdir(path)

    def mkdir(self, path: str, uid: int, *, parents: bool = False) -> None:
        norm = normalize(path)
        if self.trace is None or not (norm + "/").startswith(TRACEFS + "/"):
            super().mkdir(path, uid, parents=parents)
            return
        if self.is_dir(norm):
            if parents:
                return
            raise FsError(errno.EEXIST, norm)
        parent, _, name = norm.rpartition("/")
        if not self.is_dir(parent):
            raise FsError(errno.ENOENT, norm)
        if parent != INSTANCES:
            raise FsError(errno.EPERM, norm)
        if uid != ROOT_UID:
            raise FsError(errno.EACCES, norm)
        self.trace.mkdir(name)

    def rmdir(self, path: str, uid: int) -> None:
        """``rmdir``: an ftrace instance (root), or an empty real directory in the scratch areas."""
        norm = normalize(path)
        if self.trace is not None and (norm + "/").startswith(TRACEFS + "/"):
            parent, _, name = norm.rpartition("/")
            if not self.exists(norm):
                raise FsError(errno.ENOENT, norm)
            if parent != INSTANCES:
                raise FsError(errno.EPERM, norm)
            if uid != ROOT_UID:
                raise FsError(errno.EACCES, norm)
            self.trace.rmdir(name)
            return
        super().rmdir(norm, uid)
