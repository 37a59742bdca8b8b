"""The emulated benchmark_model's run: set-up as the real tool does it, the warm-up and timed
phases (each invoke timed on the phone's clock (:mod:`.clock`), op by op where the model can be
cut (:mod:`.segments`), paced by --run_delay / --run_frequency, the injected per-layer delays
spent inside their ops), the memory footprint, and --output_filepath. What it prints is
formatted by :mod:`.output`; the op profile's rows by :mod:`.opprofile`."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perflab.emulator.benchmark_model import clock
from perflab.emulator.benchmark_model import model as mdl
from perflab.emulator.benchmark_model.atrace import TraceWriter
from perflab.emulator.benchmark_model.delays import delays_from_env, op_delays_s
from perflab.emulator.benchmark_model.delegates import announce_delegate, first_supported_delegate
from perflab.emulator.benchmark_model.flags import Flag, FlagError, parse_flags
from perflab.emulator.benchmark_model.handover import Moments, Placement, placement
from perflab.emulator.benchmark_model.opprofile import print_op_profile
from perflab.emulator.benchmark_model.output import (
    Abort,
    MemoryStatus,
    Stat,
    banner,
    error,
    fail,
    fmt_g,
    info,
    memory_lines,
    phase_end,
    phase_start,
    timings_line,
)
from perflab.emulator.benchmark_model.sandbox import Sandbox
from perflab.emulator.benchmark_model.segments import OpTimes, SegmentedModel
from perflab.zoo.tflite_graph import op_tensor_names

if TYPE_CHECKING:
    from perflab.emulator.profiles import Profile

# ============================================================================ memory


def _proc_status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class _PeakMonitor:
    """--report_peak_memory_footprint: VmRSS polled on a thread, as the tool does."""

    def __init__(self, interval_ms: int) -> None:
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self._stop = threading.Event()
        self._interval_s = max(0.001, interval_ms / 1000.0)
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        v = _proc_status_mb("VmRSS")
        if v is not None:
            self.peak_mb = max(self.peak_mb, v)

    def start(self) -> None:
        self._sample()
        self.start_mb = self.peak_mb
        self._t.start()

    def stop(self) -> None:
        self._stop.set()
        self._t.join()
        self._sample()

    def status(self) -> MemoryStatus:
        return MemoryStatus(
            peak_mb=self.peak_mb,
            vmrss_mb=_proc_status_mb("VmRSS") or 0.0,
            rss_anon_mb=_proc_status_mb("RssAnon") or 0.0,
            rss_file_shmem_mb=(_proc_status_mb("RssFile") or 0.0) + (_proc_status_mb("RssShmem") or 0.0),
        )


# ============================================================================ the phases


class _Pacer:
    """How runs are spaced: --run_frequency (fixed starts) or --run_delay (a pause between runs)."""

    def __init__(self, v: dict[str, Flag]) -> None:
        self.run_delay = float(v["run_delay"].value)
        self.run_freq = float(v["run_frequency"].value)
        self.next_start = 0.0

    def start(self, now: float) -> None:
        self.next_start = now

    def before_next_run(self) -> None:
        if self.run_freq > 0:
            self.next_start += 1.0 / self.run_freq
            delay = self.next_start - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        elif self.run_delay > 0:
            time.sleep(self.run_delay)


class _Invoker:
    """One invoke of the model: segment by segment when it could be cut (each op timed, its
    injected delay and its cost on the delegate's processor spent inside it), else the whole
    interpreter and the layers' delay after it; an accelerator delegate's hand-overs spent
    around the graph (:mod:`.handover`)."""

    def __init__(self, interp: Any, seg: SegmentedModel | None, op_delays_s: list[float],
                 place: Placement | None = None) -> None:
        self.interp, self.seg, self.op_delays_s = interp, seg, op_delays_s
        self.delay_s = sum(op_delays_s)
        self.place = place

    def __call__(self, times: OpTimes | None) -> Callable[[TraceWriter, float, float, float], None]:
        """One invoke; what writes it into the trace, called after the invoke is timed with
        (the writer, the invoke's start on the host's monotonic clock (the trace's), its start
        and end on the phone's clock): the sections start where the invoke started on the host
        and last what they lasted on the phone."""
        moments = Moments()
        place = self.place
        if place is not None:
            place.before(moments)
        if self.seg is not None:
            spans = self.seg.invoke(self.op_delays_s, place.layer_s if place is not None else None)
            if place is not None:
                place.after(moments)
            if times is not None:
                per_op_ms = [(e - b) * 1000.0 for b, e in spans]
                if per_op_ms and len(moments.at) >= 2:  # a delegate's node: its hand-overs count in it
                    outside_s = (moments.at[-1][0] - moments.at[0][0]) - (spans[-1][1] - spans[0][0])
                    per_op_ms[0] += max(0.0, outside_s) * 1000.0
                times.add(per_op_ms)
            return lambda tw, wall0, t0, t1: tw.invoke([(wall0 + b - t0, wall0 + e - t0) for b, e in spans],
                                                       wall0, wall0 + t1 - t0,
                                                       [(wall0 + m - t0, w) for m, w in moments.at])
        p0 = clock.now_s()
        self.interp.invoke()
        if place is not None and sum(place.layer_s) > 0:  # the graph lasts its cost on the accelerator
            clock.hide(clock.now_s() - p0)
            clock.spend_until(p0 + sum(place.layer_s))
        p1 = clock.now_s()
        if self.delay_s:
            clock.spend(self.delay_s)
        if place is not None:
            place.after(moments)
        return lambda tw, wall0, t0, t1: tw.invoke_whole(wall0 + p0 - t0, wall0 + p1 - t0, wall0 + t1 - t0,
                                                         [(wall0 + m - t0, w) for m, w in moments.at])


def _run_phase(invoke: _Invoker, v: dict[str, Flag], min_runs: int, min_secs: float,
               tracer: TraceWriter | None = None, times: OpTimes | None = None) -> Stat:
    """One series (warm-up or timed): at least ``min_runs`` invokes and ``min_secs``, at most
    --max_secs (both on the host's clock); each invoke's time (µs, on the phone's clock:
    :mod:`.clock`) includes the injected delay."""
    max_secs = float(v["max_secs"].value)
    dry = bool(v["dry_run"].value)
    pacer = _Pacer(v)
    phase_start(min_runs, min_secs, max_secs)
    stat = Stat()
    start = time.perf_counter()
    pacer.start(start)
    while True:
        elapsed = time.perf_counter() - start
        if (stat.count >= min_runs and elapsed >= min_secs) or elapsed >= max_secs:
            break
        if stat.count > 0:
            pacer.before_next_run()
        wall0, t = time.monotonic(), clock.now_s()
        trace = invoke(times) if not dry else None
        t1 = clock.now_s()
        stat.add(max(0, int((t1 - t) * 1e6)))
        if tracer is not None and trace is not None:
            trace(tracer, wall0, t, t1)
    phase_end(stat)
    return stat


def _write_outputs(interp: Any, sandbox: Sandbox, v: dict[str, Flag], applied: str | None) -> None:
    import numpy as np

    out_path = str(v["output_filepath"].value)
    if not out_path:
        return
    if not sandbox.writable(out_path):
        raise fail(f"Failed to open output file {out_path}")
    blobs = []
    for d in interp.get_output_details():
        arr = interp.get_tensor(d["index"])
        if applied == "gpu" and v["gpu_precision_loss_allowed"].value and arr.dtype == np.float32:
            arr = arr.astype(np.float16).astype(np.float32)  # the GPU's FP16 path, emulated
        blobs.append(np.ascontiguousarray(arr).tobytes())
    try:
        sandbox.host(out_path).write_bytes(b"".join(blobs))
    except OSError:
        raise fail(f"Failed to open output file {out_path}") from None


# ============================================================================ the tool


def _profile(name: str) -> Profile | None:
    if not name:
        return None
    from perflab.emulator.profiles import load_profile

    return load_profile(name)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except Abort as stop:
        return stop.code


def _main(args: list[str]) -> int:
    sandbox = Sandbox.from_env()
    info("STARTING!")
    try:
        v, unconsumed, delegate_order = parse_flags(args)
    except FlagError as exc:
        error(f"Failed to parse flag '{exc}'. Booleans take only true or false.")
        error("usage: benchmark_model --graph=<model.tflite> [flags]  (perflab emulated benchmark_model)")
        return 1
    banner(sandbox.profile, v, unconsumed)
    graph, model_host = mdl.model_path(sandbox, v)
    profile_name = sandbox.profile
    applied = first_supported_delegate(profile_name, delegate_order)
    xnnpack_off = bool(v["use_xnnpack"].set_ and not v["use_xnnpack"].value)
    t0 = time.perf_counter()
    interp = mdl.interpreter(graph, model_host, int(v["num_threads"].value),
                             default_delegates=not xnnpack_off and applied is None)
    modify_graph_ms = (time.perf_counter() - t0) * 1000.0
    mdl.resize_inputs(interp, v)
    alloc_ms = mdl.allocate(interp)
    ops = mdl.ops(interp)
    applied = announce_delegate(interp, applied, delegate_order, xnnpack_off, profile_name,
                                len(mdl.builtin_ops(ops)))
    info(f"The input model file size (MB): {fmt_g(model_host.stat().st_size / 1e6)}")
    init_ms = (time.perf_counter() - t0) * 1000.0
    info(f"Initialized session in {fmt_g(init_ms)}ms.")
    # the footprint follows the model's real tensors (its weights and activations at this input
    # size), not the host interpreter's own memory (Python and LiteRT, ~100 MB whatever the model)
    tensors_kb = mdl.tensor_bytes(interp) // 1024
    mdl.set_inputs(interp, sandbox, v)
    monitor = _PeakMonitor(int(v["memory_footprint_check_interval_ms"].value)) \
        if v["report_peak_memory_footprint"].value else None
    if monitor:
        monitor.start()
    builtin = mdl.builtin_ops(ops)
    dry = bool(v["dry_run"].value)
    place = placement(_profile(profile_name), applied, builtin)
    # every op on an accelerator whose cost the profile sets: the host's time is not the phone's
    all_on_accelerator = place is not None and bool(place.layer_s) and all(s > 0 for s in place.layer_s)
    seg = None if dry else SegmentedModel.build(model_host.read_bytes(), interp, int(v["num_threads"].value))
    names = op_tensor_names(interp)
    invoke = _Invoker(interp, seg, op_delays_s([names.get(o.index, "") for o in builtin], delays_from_env()), place)
    warm_times, run_times = (OpTimes(), OpTimes()) if seg is not None else (None, None)
    try:
        tracer = TraceWriter(interp, ops, place, profile_name)
        tw = tracer if tracer.active else None
        warm = _run_phase(invoke, v, int(v["warmup_runs"].value), float(v["warmup_min_secs"].value), tw, warm_times)
        runs = _run_phase(invoke, v, int(v["num_runs"].value), float(v["min_secs"].value), tw, run_times)
        out_interp = interp
        if seg is not None and str(v["output_filepath"].value):
            if all_on_accelerator:
                # every op on the accelerator: its result, computed on the host's fast kernels
                out_interp = mdl.host_copy(model_host, int(v["num_threads"].value), interp)
            out_interp.invoke()  # the outputs are the whole graph's, as before
    except RuntimeError as exc:
        raise fail(f"Failed to invoke! {exc}") from None
    if monitor:
        monitor.stop()
    timings_line(init_ms, warm, runs)
    status = monitor.status() if monitor else None
    if status is not None:  # the process at the tool's start plus the model's tensors
        status = replace(status, peak_mb=monitor.start_mb + tensors_kb / 1024.0 if monitor else status.peak_mb)
    memory_lines(0, tensors_kb, tensors_kb, status)
    if v["enable_op_profiling"].value:
        measured = (warm_times.first_ms, run_times.avg_ms()) \
            if warm_times is not None and run_times is not None and warm_times.count and run_times.count else None
        print_op_profile(interp, ops, applied, xnnpack_off, warm, runs, modify_graph_ms, alloc_ms, measured)
    _write_outputs(out_interp, sandbox, v, applied)
    return 0
