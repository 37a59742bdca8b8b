"""Per-layer passes of a cell, glued into a run (issue 10): each its own pass, never the timed series.

``layer_passes(ctx)`` runs what the scenario's ``profiling:`` block asks for and returns one
LayersRecord:

* ``op_profile`` — the workload's op profile (benchmark_model's op profiling on phones;
  missing on ``local``, whose LiteRT binding has no profiler). Its rows also fill the record's
  legacy ``source``/``rows``/``total_ms`` fields, as before.
* ``differential`` — the virtual-layer profiler (perflab.lab.layer_differential): model variants from perflab.zoo.variants
  (prefixes and duplicated layers, generated with TensorFlow, cached), timed with the same
  ``Workload.run_timing`` as the cell, in interleaved rounds (alternating order, so a slow
  drift hits every variant alike), together with the shipped model itself, which stays out of
  the fit and is the whole-model time of the sum check. Per-layer costs and their standard
  errors come from perflab.tracing.differential. Rows carry the layer's MACs, and the pass
  records its rank agreement with every other method that has rows — and with the MACs, a
  proxy, where no other method measured anything.
* ``atrace`` + ``LayersRecord.trace`` — a kernel-trace pass (perflab.tracing.capture on
  ``local`` as root, one run; rooted phones: perflab.tracing.phone_capture, several tool runs
  in one capture, per operator the lower quartile of its per-run medians), when ``profiling.trace`` is on:
  latency statistics of the per-inference intervals, per-operator ATrace rows where the
  runtime writes them, switch latencies and irqs.
* ``estimate`` — no device time: the cell's latency shared among the ops by a cost model.
* ``LayersRecord.partition`` — the delegate partition table (perflab.rules.layers.partition_table).
* ``LayersRecord.aligned`` — the passes row for row (:func:`align_passes`): the shipped model's
  ops (read with LiteRT) mapped to the differential groups, each method's per-op times summed
  per group, disagreements flagged (the rules: perflab.analysis.layer_align, as a record by
  perflab.rules.layers.aligned_record).

This module holds the passes (they run things on the device or read the model file) — the
differential in perflab.lab.layer_differential, what every pass is given in
perflab.lab.layer_pass; every rule that turns their results into records without either is in
perflab.rules.layers.

A method that cannot run is a pass with ``missing`` set (no TensorFlow, not a zoo model, an
error of the device tool); RunInterrupted and DeviceGoneError propagate (the runner stops or
waits for the phone).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from perflab.analysis import layer_align as la
from perflab.core.types import (
    ModelArtifact,
    ProfileMissing,
    ProfileResult,
    SeriesMode,
    TimingRequest,
    TimingResult,
)
from perflab.errors import (
    DeviceGoneError,
    PerflabError,
    RunInterrupted,
)
from perflab.lab.layer_differential import differential_pass
from perflab.lab.layer_pass import PassContext, PassOptions, options_from_profiling
from perflab.rules.layers import (
    OpShape,
    aligned_record,
    estimate_rows,
    partition_table,
    rank_against_macs,
    rank_between,
)
from perflab.store.layer_records import (
    AlignedLayersRecord,
    InferenceTimelineRecord,
    IrqCountRecord,
    LayerPassRecord,
    LayerRow,
    LayersRecord,
    SpanRecord,
    SwitchSummaryRecord,
    TraceLatencyRecord,
)
from perflab.store.results import CompatRecord, DelegateRecord, LatencyRecord
from perflab.store.runfolder import Artefact
from perflab.tracing.attribution import Attribution
from perflab.tracing.differential import (
    ROUND_QUANTILE_PCT,
    variant_timing,
)
from perflab.tracing.kernel_events import SwitchLatency
from perflab.workloads.base import Workload
from perflab.zoo.tflite_graph import op_tensor_names

# --------------------------------------------------------------------------- op profile


def op_profile_pass(prof: ProfileResult | ProfileMissing) -> LayerPassRecord:
    if isinstance(prof, ProfileMissing):
        return LayerPassRecord(method="op_profile", source="none", missing=prof.reason)
    return LayerPassRecord(
        method="op_profile", source=prof.source, total_ms=prof.total_ms,
        rows=[LayerRow(index=r.index, node_type=r.node_type, name=r.name, avg_ms=r.avg_ms, first_ms=r.first_ms,
                       pct=r.pct, times_called=r.times_called, method="op_profile") for r in prof.layers],
    )


# --------------------------------------------------------------------------- estimate

def model_op_shapes(path: Path, lr_width: int, lr_height: int) -> list[OpShape]:
    """The model's ops with tensor shapes at this input size (LiteRT, builtin CPU kernels, so
    every tensor is allocated)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    d = it.get_input_details()[0]
    if lr_width and lr_height:
        it.resize_tensor_input(d["index"], [1, lr_height, lr_width, int(d["shape"][-1])], strict=False)
    it.allocate_tensors()
    shapes = {int(t["index"]): tuple(int(x) for x in t["shape"]) for t in it.get_tensor_details()}
    return [OpShape(index=int(o["index"]), op=str(o["op_name"]),
                    inputs=tuple(shapes.get(int(i), ()) for i in o["inputs"] if int(i) >= 0),
                    outputs=tuple(shapes.get(int(i), ()) for i in o["outputs"] if int(i) >= 0))
            for o in it._get_ops_details() if str(o["op_name"]) != "DELEGATE"]


def estimate_pass(art: ModelArtifact, lr_width: int, lr_height: int, whole_ms: float | None,
                  whole_source: str) -> LayerPassRecord:
    """Per-op estimate: no extra run on the device; the headline median apportioned by a cost
    model. Said to be an estimate everywhere it is shown."""
    if whole_ms is None or whole_ms <= 0:
        return LayerPassRecord(method="estimate", source="none", missing="the cell has no whole-model latency to share")
    try:
        ops = model_op_shapes(art.path, lr_width, lr_height)
    except (ValueError, RuntimeError, OSError) as exc:
        return LayerPassRecord(method="estimate", source="none", missing=f"the model's ops could not be read: {exc}")
    rows = estimate_rows(ops, whole_ms)
    return LayerPassRecord(
        method="estimate", rows=rows, total_ms=whole_ms,
        source=(f"estimate: {whole_source} ({whole_ms:.3f} ms) shared by MACs (conv-like ops) and output elements "
                "(other ops); not measured per layer"),
        notes=["an estimate: memory traffic, activations fused into convs and delegate scheduling are not modelled"])


# --------------------------------------------------------------------------- kernel trace

TRACE_WARMUP = 3
TRACE_ITERATIONS = 30
TRACE_SEGMENT = "timing"
#: a phone's trace pass is this many benchmark_model runs in one capture (the iterations shared
#: among them): per operator, the lower quartile across the runs of its median in each run
TRACE_ROUNDS = 3
#: delegates that reach an NPU where the phone has one (their trace says why when none was reached)
NPU_DELEGATES = ("hexagon", "nnapi")
TRACE_TOLERANCE_PCT = 2.0


@dataclass(frozen=True)
class TraceTarget:
    """Where a trace pass writes (a run folder's ``traces/`` file); ``local`` says whether the cell
    runs on this machine (the only place perflab captures today)."""

    file: Artefact
    local: bool
    iterations: int = TRACE_ITERATIONS
    device: object = None  # the AndroidDevice of a phone cell (its trace is captured over adb)
    log: Artefact | None = None  # where the traced run's own tool output is kept (logs/…trace.log)
    rounds: int = TRACE_ROUNDS  # tool runs on a phone (local: always one)


def trace_round_segment(k: int) -> str:
    """The segment of the ``k``-th (0-based) traced run of a phone's trace pass, inside
    :data:`TRACE_SEGMENT`."""
    return f"{TRACE_SEGMENT}:run{k + 1}"


def round_iterations(total: int, rounds: int) -> list[int]:
    """``total`` timed inferences shared as evenly as possible among at most ``rounds`` runs
    (the earlier runs take the remainder; never a run of none); pure."""
    n = max(1, min(rounds, total))
    base, extra = divmod(max(total, 1), n)
    return [base + (1 if k < extra else 0) for k in range(n)]


def trace_passes(ctx: PassContext, target: TraceTarget) -> tuple[LayerPassRecord, TraceLatencyRecord]:
    """A kernel-trace pass: the model timed once more (back to back) while ftrace records;
    per-inference intervals → latency statistics checked against the run's own timer, and
    ATrace operator sections → per-layer rows where the runtime writes them. On a phone the
    pass is :attr:`TraceTarget.rounds` tool runs in one capture, each in its own segment
    (:func:`trace_round_segment`), the iterations shared among them (:func:`round_iterations`)."""
    def missing(why: str) -> tuple[LayerPassRecord, TraceLatencyRecord]:
        return (LayerPassRecord(method="atrace", source="none", missing=why),
                TraceLatencyRecord(trace_file="", missing={"trace": why}))

    from perflab.devices.capabilities import ShellDevice

    out = target.file.path
    req = TimingRequest(mode=SeriesMode.BACK_TO_BACK, fps=None, warmup=TRACE_WARMUP, iterations=target.iterations,
                        threads=ctx.threads, delegate=ctx.delegate, timeout_s=ctx.timeout_s, lr_width=ctx.lr_width,
                        lr_height=ctx.lr_height, input_frame=ctx.input_frame)
    dev = target.device
    if not target.local and not isinstance(dev, ShellDevice):
        return missing("kernel trace capture needs local (as root) or a rooted Android phone")
    if not target.local and isinstance(dev, ShellDevice):
        from perflab.tracing.phone_capture import PhoneTraceCapture

        ctx.check_stop()
        timings: list[TimingResult] = []
        try:
            with PhoneTraceCapture(dev, out) as pcap, pcap.segment(TRACE_SEGMENT):
                for k, n in enumerate(round_iterations(target.iterations, target.rounds)):
                    if k:
                        ctx.check_stop()
                    with pcap.segment(trace_round_segment(k)):
                        timings.append(ctx.workload.run_timing(ctx.art, replace(req, iterations=n)))
        except (RunInterrupted, DeviceGoneError):
            raise
        except PerflabError as exc:
            return missing(f"kernel trace failed: {exc}")
        op, lat = trace_records(out.read_text(encoding="utf-8", errors="replace"), target.file.rel, timings,
                                skip_first=TRACE_WARMUP, npu_expected=ctx.delegate in NPU_DELEGATES)
        # how the phone was traced (its own instance or the top-level buffer, ATrace gates)
        return (op.model_copy(update={"notes": [*op.notes, *pcap.notes]}),
                lat.model_copy(update={"notes": [*lat.notes, *pcap.notes], **_keep_tool_log(target, timings)}))
    from perflab.tracing.capture import LocalTraceCapture, local_trace_missing

    why = local_trace_missing()
    if why:
        return missing(why)
    ctx.check_stop()
    try:
        with LocalTraceCapture(out) as cap, cap.worker_markers(), cap.segment(TRACE_SEGMENT):
            timing = ctx.workload.run_timing(ctx.art, req)
    except (RunInterrupted, DeviceGoneError):
        raise
    except PerflabError as exc:
        return missing(f"kernel trace failed: {exc}")
    except OSError as exc:
        return missing(f"kernel trace failed: {exc}")
    op, lat = trace_records(out.read_text(encoding="utf-8", errors="replace"), target.file.rel, timing,
                            skip_first=1 + TRACE_WARMUP, npu_expected=ctx.delegate in NPU_DELEGATES)
    return op, lat.model_copy(update=_keep_tool_log(target, [timing]))


def _keep_tool_log(target: TraceTarget, timings: Sequence[TimingResult]) -> dict[str, str]:
    """The traced runs' own output written beside the cell's log, so their counts and means
    (what the trace's latency is checked against) can be read from the run folder: one run as
    it is, several one after the other, each under a ``# perflab: traced run k of R`` header;
    the field that names it, or nothing when there is no log to keep or nowhere to keep it."""
    if target.log is None or not any(t.tool_log for t in timings):
        return {}
    if len(timings) == 1:
        text = timings[0].tool_log
    else:
        text = "".join(f"# perflab: traced run {k + 1} of {len(timings)} (segment {trace_round_segment(k)})\n"
                       f"{t.tool_log}{'' if t.tool_log.endswith(chr(10)) else chr(10)}"
                       for k, t in enumerate(timings))
    try:
        target.log.path.parent.mkdir(parents=True, exist_ok=True)
        target.log.path.write_text(text, encoding="utf-8")
    except OSError:
        return {}
    return {"tool_log_file": target.log.rel}


def _timed_count(timing: TimingResult) -> int | None:
    return len(timing.samples_ms) if timing.samples_ms else (timing.summary.count if timing.summary else None)


def _tool_total(timing: TimingResult) -> tuple[float, int] | None:
    """The run's own (sum of latencies ms, count): from its samples, else its summary's mean."""
    if timing.samples_ms:
        return sum(timing.samples_ms), len(timing.samples_ms)
    if timing.summary is not None and timing.summary.mean_ms is not None and timing.summary.count:
        return timing.summary.mean_ms * timing.summary.count, timing.summary.count
    if timing.summary is not None and timing.summary.mean_ms is not None:
        return timing.summary.mean_ms, 1
    return None


def trace_records(text: str, rel_path: str, timing: TimingResult | Sequence[TimingResult], *, skip_first: int,
                  tolerance_pct: float = TRACE_TOLERANCE_PCT,
                  npu_expected: bool = False) -> tuple[LayerPassRecord, TraceLatencyRecord]:
    """Records from a saved trace and the timing of the traced run (pure). One run: its
    inferences inside :data:`TRACE_SEGMENT`. Several runs (a sequence of timings): run ``k``'s
    inferences inside :func:`trace_round_segment` ``(k)``. Per run the statistics use the last N
    invoke sections of its segment, N = the run's own count of timed runs (the first run and
    the warm-up runs are invoke sections too, and benchmark_model may add warm-up runs to reach
    its minimum time); ``skip_first`` only when the run gives no count.

    The latency statistics are over every run's selected inferences together, against the
    runs' combined tool mean (their latencies summed over their counts): the same inferences
    on both sides. The operator rows: one run, each operator's median; several, each
    operator's median inside each run, then the lower quartile of those across the runs (a
    disturbed run is slower, never faster: the shift of a whole run under a busy neighbour must
    not become the answer), with ``se_ms`` the order-statistic standard error across the runs.
    ``npu_expected`` (the cell's delegate is one that reaches an NPU): when no delegate node
    reached one, ``missing["npu_switch"]`` says why."""
    from perflab.tracing.attribution import attribute, saved_trace_facts
    from perflab.tracing.sections import latency_stats

    runs = [(TRACE_SEGMENT, timing)] if isinstance(timing, TimingResult) else \
        [(trace_round_segment(k), t) for k, t in enumerate(timing)]
    per_run: list[tuple[Attribution, int, int, int | None]] = []  # attribution, invoke sections, left out, timed
    try:
        parsed, per_tick = saved_trace_facts(text, rel_path)
        for seg, t in runs:
            timed = _timed_count(t)
            a = attribute(parsed, us_per_tick=per_tick, segment=seg)
            in_segment = len(a.inferences)
            skip = max(0, in_segment - timed) if timed else skip_first
            if skip:
                a = attribute(parsed, us_per_tick=per_tick, segment=seg, skip_first=skip)
            per_run.append((a, in_segment, skip, timed))
    except PerflabError as exc:
        why = f"the trace could not be read: {exc}"
        return (LayerPassRecord(method="atrace", source="none", trace_file=rel_path, missing=why),
                TraceLatencyRecord(trace_file=rel_path, missing={"trace": why}))
    several = len(per_run) > 1
    if not several:
        _, in_segment, skip, _ = per_run[0]
        notes = [(f"clock {parsed.info.clock}; {in_segment} invoke sections in the segment, the first {skip} "
                  f"(first run + warm-up) left out")]
    else:
        notes = [(f"clock {parsed.info.clock}; {len(per_run)} tool runs, each in its own segment: "
                  f"{'/'.join(str(r[1]) for r in per_run)} invoke sections, the first "
                  f"{'/'.join(str(r[2]) for r in per_run)} (first run + warm-up) left out; latency statistics over "
                  "all runs' inferences against the runs' combined tool mean")]
    for k, (_, in_segment, _, timed) in enumerate(per_run):
        if timed and in_segment < timed:
            which = f"run {k + 1} " if several else "run "
            notes.append(f"the {which}timed {timed} inferences but the trace holds {in_segment} "
                         "(lost events or a late start)")
    lost = parsed.info.lost_total
    if lost:
        notes.append(f"{lost} events lost")
    a0 = per_run[0][0]
    infs = [i for r in per_run for i in r[0].inferences]
    lat = latency_stats(infs)
    a = replace(a0, inferences=infs, latency_ms=lat, switches=[s for r in per_run for s in r[0].switches])
    totals = [_tool_total(t) for _, t in runs]
    tool_mean = None
    if totals and all(x is not None for x in totals):
        n_all = sum(x[1] for x in totals if x is not None)
        tool_mean = sum(x[0] for x in totals if x is not None) / n_all if n_all else None
    diff = ok = None
    miss = _latency_missing(lat is None, tool_mean is None, npu_switch_missing(a.switches, text) if npu_expected else None)
    if lat is not None and tool_mean:
        diff = (lat.mean_ms - tool_mean) / tool_mean * 100.0
        ok = abs(diff) <= tolerance_pct
    irqs = sorted(a.irq_summary, key=lambda q: -q.total_us)[:10]
    latency = TraceLatencyRecord(
        trace_file=rel_path, n=lat.n if lat else 0, median_ms=lat.median_ms if lat else None,
        p90_ms=lat.p90_ms if lat else None, mean_ms=lat.mean_ms if lat else None, tool_mean_ms=tool_mean,
        diff_pct=diff, tolerance_pct=tolerance_pct, ok=ok, lost_events=lost, switches=switch_summary(a.switches),
        irqs=[IrqCountRecord(name=q.name, count=q.count, total_us=q.total_us, max_us=q.max_us) for q in irqs],
        timeline=inference_timeline(a),
        notes=notes, missing=miss)
    rows, total, src, row_notes = _atrace_rows([r[0] for r in per_run], rel_path)
    if not rows:
        op_pass = LayerPassRecord(
            method="atrace", source=f"kernel trace {rel_path}", trace_file=rel_path, notes=notes,
            missing="the runtime wrote no per-operator ATrace sections (LiteRT on local writes none; on Android "
                    "they need debug.tflite.trace=1 when the interpreter starts)")
        return op_pass, latency
    return (LayerPassRecord(method="atrace", source=src, rows=rows, total_ms=total, trace_file=rel_path,
                            notes=[*notes, *row_notes]),
            latency)


def _atrace_rows(runs: Sequence[Attribution], rel_path: str) -> tuple[list[LayerRow], float, str, list[str]]:
    """Per-operator rows of one run (its medians) or of several (per operator the lower
    quartile across the runs of its median in each run, ``se_ms`` the order-statistic standard
    error, ``times_called`` every run's count); their sum, the pass's source and notes (pure)."""
    if len(runs) == 1:
        top = [o for o in runs[0].ops if o.share_pct > 0 or not o.delegate]
        ordered = sorted(top, key=lambda o: (_node_index(o.name), o.name))
        rows = [LayerRow(index=i, node_type=o.op_type, name=o.name, avg_ms=o.stats_ms.median_ms,
                         pct=o.share_pct or None, times_called=o.stats_ms.n, method="atrace")
                for i, o in enumerate(ordered)]
        return (rows, sum(r.avg_ms for r in rows),
                f"kernel trace {rel_path}: ATrace operator sections, median per operator", [])
    medians: dict[str, list[float]] = {}
    calls: dict[str, int] = {}
    kind: dict[str, str] = {}
    top_level: set[str] = set()
    for a in runs:
        for o in a.ops:
            if not (o.share_pct > 0 or not o.delegate):
                continue
            medians.setdefault(o.name, []).append(o.stats_ms.median_ms)
            calls[o.name] = calls.get(o.name, 0) + o.stats_ms.n
            kind.setdefault(o.name, o.op_type)
            if o.share_pct > 0:
                top_level.add(o.name)
    value: dict[str, tuple[float, float | None]] = {}
    for name, xs in medians.items():
        if len(xs) > 1:
            t = variant_timing(name, (1,), xs, quantile_pct=ROUND_QUANTILE_PCT)
            value[name] = (t.time_ms, t.se_ms)
        else:
            value[name] = (xs[0], None)
    top_sum = sum(value[n][0] for n in top_level)
    names = sorted(medians, key=lambda n: (_node_index(n), n))
    rows = [LayerRow(index=i, node_type=kind[n], name=n, avg_ms=value[n][0], se_ms=value[n][1],
                     pct=(value[n][0] / top_sum * 100.0) if n in top_level and top_sum > 0 else None,
                     times_called=calls[n], method="atrace")
            for i, n in enumerate(names)]
    r = len(runs)
    notes = [(f"per operator: its median inside each of the {r} tool runs, then the lower quartile across the runs "
              "(timing noise is one-sided: a run disturbed by a busy neighbour is slower, never faster, so a "
              "shifted run does not become the answer); ± is the order-statistic standard error across the runs")]
    partial = [n for n in names if len(medians[n]) < r]
    if partial:
        notes.append(f"{len(partial)} operators were not traced in every run: " + ", ".join(
            f"{n} ({len(medians[n])} of {r})" for n in partial[:5]))
    whole = [a.latency_ms.median_ms for a in runs if a.latency_ms is not None]
    if whole:
        notes.append("the runs' whole-inference medians: " + ", ".join(f"{m:.3f}" for m in whole) + " ms")
    src = (f"kernel trace {rel_path}: ATrace operator sections, lower quartile across {r} tool runs of the median "
           "per operator in each run")
    return rows, sum(row.avg_ms for row in rows), src, notes


def _latency_missing(no_latency: bool, no_tool_mean: bool, npu_why: str | None) -> dict[str, str]:
    miss: dict[str, str] = {}
    if no_latency:
        miss["median"] = "no invoke sections in the traced segment (the runtime wrote no markers)"
    if no_tool_mean:
        miss["tool_mean_ms"] = "the traced run reported no latency of its own"
    if npu_why is not None:
        miss["npu_switch"] = npu_why
    return miss


def inference_timeline(a: Attribution) -> InferenceTimelineRecord | None:
    """The selected inference nearest the median, its op sections and the irqs inside it (pure)."""
    if not a.inferences or a.latency_ms is None:
        return None
    med_us = a.latency_ms.median_ms * 1000.0
    inf = min(a.inferences, key=lambda i: abs(i.duration_us - med_us))
    spans = [SpanRecord(name=o.name, kind="delegate" if o.delegate else "op", begin_us=o.begin_us - inf.begin_us,
                        end_us=o.end_us - inf.begin_us, track=f"tid {inf.tid}") for o in inf.ops]
    spans += [SpanRecord(name=q.name, kind="irq", begin_us=q.begin_us - inf.begin_us, end_us=q.end_us - inf.begin_us,
                         track=f"CPU {q.cpu}")
              for q in a.irqs if inf.begin_us <= q.begin_us and q.end_us <= inf.end_us][:500]
    return InferenceTimelineRecord(index=inf.index, duration_us=inf.duration_us, spans=spans)


def switch_summary(switches: Sequence[SwitchLatency]) -> list[SwitchSummaryRecord]:
    """Median and p90 of the switch latencies per delegate node (pure)."""
    groups: dict[tuple[str, str, str], list[SwitchLatency]] = {}
    for sw in switches:
        groups.setdefault((sw.op, sw.irq_name, sw.via), []).append(sw)
    out = []
    for (op, irq, via), g in sorted(groups.items()):
        there = np.asarray([s.cpu_to_accel_us for s in g], dtype=np.float64)
        back = np.asarray([s.accel_to_cpu_us for s in g], dtype=np.float64)
        own = np.asarray([s.accel_us for s in g if s.accel_us is not None], dtype=np.float64)
        out.append(SwitchSummaryRecord(
            op=op, irq_name=irq, via=via, n=len(g), cpu_to_accel_median_us=float(np.median(there)),
            cpu_to_accel_p90_us=float(np.percentile(there, 90)), accel_to_cpu_median_us=float(np.median(back)),
            accel_to_cpu_p90_us=float(np.percentile(back, 90)), processor=g[0].processor or None,
            accel_median_us=float(np.median(own)) if own.size else None,
            accel_p90_us=float(np.percentile(own, 90)) if own.size else None))
    return out


#: the trace's note (perflab.tracing.phone_capture) naming events this phone's kernel lacks
_LACKS_NOTE = re.compile(r"^# perflab: this kernel has no (?:trace )?events? (.+)$", re.MULTILINE)


def npu_switch_missing(switches: Sequence[SwitchLatency], trace_text: str) -> str | None:
    """Why the trace gives no CPU↔NPU switch latency (None when it does; pure): no delegate node
    handed its work to an NPU over RPC, and what the trace says about why (the kernel has no
    fastrpc events: no DSP reached over fastrpc on this phone)."""
    if any(s.processor == "npu" for s in switches):
        return None
    lacks = " ".join(m.group(1) for m in _LACKS_NOTE.finditer(trace_text[:20000]))
    if "fastrpc" in lacks:
        return ("no delegate node reached an NPU over RPC: this phone's kernel has no fastrpc events (no DSP "
                "reached over fastrpc)")
    if not switches:
        return "no delegate node in the trace handed work to an accelerator (a CPU run, or no ATrace sections)"
    kinds = ", ".join(sorted({s.via for s in switches}))
    return f"no delegate node reached an NPU over RPC: the hand-overs seen were {kinds} (not a DSP's fastrpc calls)"


def _node_index(name: str) -> int:
    m = re.search(r"@(\d+)", name)
    return int(m.group(1)) if m else 1 << 30


# --------------------------------------------------------------------------- the model file's ops


def model_ops(path: Path) -> list[la.ModelOp]:
    """The model file's ops in execution order, each with its output and constant-input tensor
    names (what names its Keras layer)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    names = op_tensor_names(it)
    return [la.ModelOp(index=int(o["index"]), op=str(o["op_name"]), tensor_names=names.get(int(o["index"]), ""))
            for o in it._get_ops_details() if str(o["op_name"]) != "DELEGATE"]


def align_passes(passes: Sequence[LayerPassRecord], model: Path) -> AlignedLayersRecord | None:
    """The aligned table of a cell's passes, reading the model's ops; None when no pass has rows."""
    if not any(p.rows for p in passes):
        return None
    try:
        ops = model_ops(model)
    except (ValueError, RuntimeError, OSError) as exc:
        return AlignedLayersRecord(model_file=model.name, missing=f"the model's ops could not be read: {exc}")
    return aligned_record(passes, ops, model.name)


# --------------------------------------------------------------------------- all passes


def cell_layers(workload: Workload, art: ModelArtifact, *, profiling: object, delegate: str, threads: int,
                timeout_s: float, lr_width: int, lr_height: int, input_frame: object, check_stop: Callable[[], None],
                trace: Artefact, local: bool, delegates: Sequence[DelegateRecord],
                compat: CompatRecord | None, series: Mapping[str, LatencyRecord] | None = None,
                device: object = None, trace_log: Artefact | None = None) -> LayersRecord | None:
    """The runner's one call (its per-layer block): every pass ``profiling`` asks for, the
    trace statistics and the delegate partition table; None when no pass is asked for."""
    opts = options_from_profiling(profiling)
    if not (opts.op_profiling or opts.trace or opts.differential):
        return None
    whole = (series or {}).get("back_to_back") or next(iter((series or {}).values()), None)
    whole_ms = None if whole is None else (whole.median if whole.median is not None else whole.mean)
    ctx = PassContext(workload=workload, art=art, delegate=delegate, threads=threads, timeout_s=timeout_s,
                      lr_width=lr_width, lr_height=lr_height, check_stop=check_stop, input_frame=input_frame,
                      whole_ms=whole_ms, whole_source=f"the cell's {whole.mode} median" if whole else "")
    trace_box: list[TraceLatencyRecord] = []

    def trace_pass() -> list[LayerPassRecord]:
        op, lat = trace_passes(ctx, TraceTarget(trace, local, device=device, log=trace_log))
        trace_box.append(lat)
        return [op]

    rec = layer_passes(ctx, opts, trace_pass if opts.trace else None)
    atrace = next((p for p in rec.passes if p.method == "atrace"), None)
    return rec.model_copy(update={"trace": trace_box[0] if trace_box else None,
                                  "partition": partition_table(delegate, delegates, compat, atrace)})


def layer_passes(ctx: PassContext, opts: PassOptions,
                 extra: Callable[[], list[LayerPassRecord]] | None = None) -> LayersRecord:
    """Every per-layer pass the options ask for, as one record (the op profile also fills the
    legacy fields). ``extra`` runs further passes (the trace pass) and returns their records."""
    passes: list[LayerPassRecord] = []
    legacy = LayersRecord(source="none", missing="op_profiling is off in the scenario")
    if opts.op_profiling:
        ctx.check_stop()
        op = op_profile_pass(ctx.workload.run_profile(ctx.art, ctx.threads, ctx.delegate, ctx.timeout_s,
                                                      lr_width=ctx.lr_width, lr_height=ctx.lr_height))
        passes.append(op)
        legacy = LayersRecord(source=op.source, total_ms=op.total_ms,
                              rows=[r.model_copy(update={"method": None}) for r in op.rows], missing=op.missing)
    if extra is not None:
        passes.extend(extra())
    if opts.estimate and (opts.op_profiling or opts.trace or opts.differential):
        passes.append(estimate_pass(ctx.art, ctx.lr_width, ctx.lr_height, ctx.whole_ms, ctx.whole_source))
    if opts.differential:
        ctx.check_stop()
        diff = differential_pass(ctx, opts)
        aligned = align_passes([*passes, diff], ctx.art.path)
        if diff.unreliable:  # untrusted rows are not ranked against anything
            passes.append(diff.model_copy(update={"notes": [*diff.notes, "no rank checks: the rows are unreliable"]}))
            return legacy.model_copy(update={"passes": passes, "aligned": aligned})
        skip = frozenset(r.name for r in diff.rows if r.unresolved)
        checks = [] if aligned is None else [
            c for c in (rank_between(aligned, diff.method, o.method, skip) for o in passes
                        if o.rows and o.method != "estimate")
            if c is not None]
        macs = rank_against_macs(diff)
        if macs is not None:
            checks.append(macs)
        passes.append(diff.model_copy(update={"rank_checks": checks}))
        return legacy.model_copy(update={"passes": passes, "aligned": aligned})
    return legacy.model_copy(update={"passes": passes, "aligned": align_passes(passes, ctx.art.path)})
