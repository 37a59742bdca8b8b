"""Kernel trace capture on ``local`` as root: a private ftrace instance, restored on every exit.

:class:`LocalTraceCapture` (a context manager):

1. finds tracefs (``/sys/kernel/tracing``, else ``/sys/kernel/debug/tracing``); when neither
   is mounted it mounts tracefs at ``/sys/kernel/tracing`` and unmounts it afterwards;
2. makes its own instance ``instances/perflab-<pid>`` (its own ring buffer, events, clock
   and trace_marker), so the global buffer other tools may use is untouched; instances left
   by a perflab process that no longer exists (a hard kill) are removed first;
3. sets the buffer size (KiB per CPU), the clock (``mono`` when offered), and enables
   irq_handler_entry/exit and sched_switch (trace_marker writes are always recorded);
4. writes perflab's segment markers (``perflab:segment:<name>:begin|end``) and, while
   :meth:`worker_markers` is active, tells worker processes where to write their per-invoke
   markers (``$PERFLAB_TRACE_MARKER``, read by perflab.workloads.host_worker);
5. on exit — normal, an exception, or RunInterrupted after Ctrl-C — stops tracing, saves
   the instance's ``trace`` with a first line ``# trace_clock: <trace_clock file>`` (the
   kernel's header does not name the clock; perflab.tracing.ftrace reads this line), then
   disables the events, removes the instance and unmounts what it mounted. A failure to save
   never skips the restore.

Without root (or without tracefs) :func:`local_trace_missing` says why; callers record the
trace numbers as missing with that reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from perflab.errors import DeviceError, MeasurementError
from perflab.tracing.capture_base import TraceCapture

TRACEFS_MOUNT = Path("/sys/kernel/tracing")
TRACEFS_PATHS = (TRACEFS_MOUNT, Path("/sys/kernel/debug/tracing"))
MARKER_ENV = "PERFLAB_TRACE_MARKER"  # same name as perflab.workloads.host_worker.TRACE_MARKER_ENV
LOCAL_EVENTS = ("irq/irq_handler_entry", "irq/irq_handler_exit", "sched/sched_switch")
INSTANCE_PREFIX = "perflab-"
DEFAULT_BUFFER_KB = 4096
MOUNT_TIMEOUT_S = 30.0
_INSTANCE_RE = re.compile(rf"^{re.escape(INSTANCE_PREFIX)}(\d+)(?:-\d+)?$")


def local_trace_missing() -> str | None:
    """Why this machine cannot be traced by perflab (None when it can try)."""
    if not sys.platform.startswith("linux"):
        return f"kernel tracing needs Linux ftrace (this is {sys.platform})"
    if os.geteuid() != 0:
        return "kernel tracing on local needs root (tracefs and its instances are root-only); run perflab as root"
    return None


def _is_tracefs(p: Path) -> bool:
    return (p / "instances").is_dir() and (p / "trace_marker").exists()


def _mount_tracefs(at: Path) -> None:
    try:
        proc = subprocess.run(["mount", "-t", "tracefs", "nodev", str(at)], capture_output=True, text=True,
                              check=False, timeout=MOUNT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceError("local", f"cannot mount tracefs at {at}: {exc}", command=f"mount -t tracefs nodev {at}") \
            from exc
    if proc.returncode != 0:
        raise DeviceError("local", f"cannot mount tracefs at {at}", command=f"mount -t tracefs nodev {at}",
                          exit_code=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)


def _umount(at: Path) -> None:
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(["umount", str(at)], capture_output=True, check=False, timeout=MOUNT_TIMEOUT_S)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_instances(names: list[str], alive: dict[int, bool]) -> list[str]:
    """perflab instances whose creating process is gone (pure; ``alive`` maps pid → running)."""
    out = []
    for n in names:
        m = _INSTANCE_RE.match(n)
        if m and not alive.get(int(m.group(1)), True):
            out.append(n)
    return out


def _write(p: Path, value: str) -> None:
    try:
        p.write_text(value)
    except OSError as exc:
        raise DeviceError("local", f"cannot write {value!r} to {p}: {exc}") from exc


@dataclass(frozen=True)
class CaptureResult:
    path: Path  # the saved trace
    trace_clock: str  # the trace_clock file's content
    bytes_written: int
    instance: str
    mounted: bool  # perflab mounted tracefs for this capture (and unmounted it)


class LocalTraceCapture(TraceCapture):
    """One capture into ``out``; use as ``with LocalTraceCapture(out) as cap: …``."""

    def __init__(self, out: Path, *, buffer_kb: int = DEFAULT_BUFFER_KB, clock: str = "mono",
                 events: tuple[str, ...] = LOCAL_EVENTS, tracefs: Path | None = None) -> None:
        self.out = out
        self.buffer_kb = buffer_kb
        self.clock = clock
        self.events = events
        self._tracefs_hint = tracefs
        self.tracefs: Path | None = None
        self.instance: Path | None = None
        self._mounted = False
        self._marker_fd: int | None = None
        self._enabled: list[Path] = []
        self.result: CaptureResult | None = None

    # -- setup ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        why = local_trace_missing()
        if why:
            raise MeasurementError(why)
        try:
            self._start()
        except BaseException:
            self._restore()
            raise
        return self

    def _find_tracefs(self) -> Path:
        for p in ([self._tracefs_hint] if self._tracefs_hint else list(TRACEFS_PATHS)):
            if _is_tracefs(p):
                return p
        at = self._tracefs_hint or TRACEFS_MOUNT
        if not at.is_dir():
            raise MeasurementError(f"no tracefs: {at} does not exist (kernel without ftrace?)")
        _mount_tracefs(at)
        self._mounted = True
        if not _is_tracefs(at):
            raise MeasurementError(f"tracefs mounted at {at} has no instances/ (kernel too old for instances)")
        return at

    def _start(self) -> None:
        self.tracefs = self._find_tracefs()
        inst_dir = self.tracefs / "instances"
        names = [p.name for p in inst_dir.iterdir()] if inst_dir.is_dir() else []
        pids = {int(m.group(1)) for n in names if (m := _INSTANCE_RE.match(n))}
        for stale in stale_instances(names, {p: _pid_alive(p) for p in pids}):
            with contextlib.suppress(OSError):
                (inst_dir / stale).rmdir()
        name = f"{INSTANCE_PREFIX}{os.getpid()}"
        k = 0
        while (inst_dir / name).exists():
            k += 1
            name = f"{INSTANCE_PREFIX}{os.getpid()}-{k}"
        inst = inst_dir / name
        try:
            inst.mkdir()
        except OSError as exc:
            raise DeviceError("local", f"cannot create ftrace instance {inst}: {exc}") from exc
        self.instance = inst
        _write(inst / "tracing_on", "0")
        _write(inst / "buffer_size_kb", str(self.buffer_kb))
        if (inst / "options" / "record-tgid").exists():
            # the process id on every line: the benchmark's threads are its process's, not every
            # thread that shares its name (other python processes on a shared host)
            _write(inst / "options" / "record-tgid", "1")
        offered = (inst / "trace_clock").read_text()
        if re.search(rf"(^|\s|\[){re.escape(self.clock)}(\]|\s|$)", offered):
            _write(inst / "trace_clock", self.clock)
        for ev in self.events:
            p = inst / "events" / ev / "enable"
            if p.exists():  # a kernel without the event: the trace simply lacks it
                _write(p, "1")
                self._enabled.append(p)
        _write(inst / "trace", "")  # clear
        self._marker_fd = os.open(inst / "trace_marker", os.O_WRONLY)
        _write(inst / "tracing_on", "1")

    # -- markers -------------------------------------------------------------------------

    @property
    def marker_path(self) -> Path:
        if self.instance is None:
            raise MeasurementError("no trace is active")
        return self.instance / "trace_marker"

    def mark(self, text: str) -> None:
        if self._marker_fd is not None:
            os.write(self._marker_fd, text.encode("utf-8", "replace"))

    @contextlib.contextmanager
    def worker_markers(self) -> Iterator[None]:
        """Worker processes started inside this block write per-invoke markers into this
        instance (the variable is inherited; the runner traces one local cell at a time)."""
        old = os.environ.get(MARKER_ENV)
        os.environ[MARKER_ENV] = str(self.marker_path)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(MARKER_ENV, None)
            else:
                os.environ[MARKER_ENV] = old

    # -- teardown ------------------------------------------------------------------------

    def _save(self) -> None:
        inst = self.instance
        if inst is None:
            return
        with contextlib.suppress(OSError):
            (inst / "tracing_on").write_text("0")
        clock = (inst / "trace_clock").read_text().strip()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        with open(inst / "trace", encoding="utf-8", errors="replace") as src, \
                open(self.out, "w", encoding="utf-8") as dst:
            dst.write(f"# trace_clock: {clock}\n")
            while chunk := src.read(1 << 20):
                dst.write(chunk)
                n += len(chunk)
        self.result = CaptureResult(path=self.out, trace_clock=clock, bytes_written=n, instance=inst.name,
                                    mounted=self._mounted)

    def _restore(self) -> None:
        if self._marker_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._marker_fd)
            self._marker_fd = None
        inst = self.instance
        if inst is not None:
            with contextlib.suppress(OSError):
                (inst / "tracing_on").write_text("0")
            for p in self._enabled:
                with contextlib.suppress(OSError):
                    p.write_text("0")
            with contextlib.suppress(OSError):
                inst.rmdir()  # removing an instance frees its buffers
            self.instance = None
        if self._mounted and self.tracefs is not None:
            _umount(self.tracefs)
            self._mounted = False
