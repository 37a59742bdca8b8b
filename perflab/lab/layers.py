"""Per-layer passes of a cell, glued into a run (issue 10): each its own pass, never the timed series.

``layer_passes(ctx)`` runs what the scenario's ``profiling:`` block asks for and returns one
LayersRecord:

* ``op_profile`` — the workload's op profile (benchmark_model's op profiling on phones;
  missing on ``local``, whose LiteRT binding has no profiler). Its rows also fill the record's
  legacy ``source``/``rows``/``total_ms`` fields, as before.
* ``differential`` — the virtual-layer profiler: model variants from perflab.zoo.variants
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

This module holds the passes (they run things on the device or read the model file); every
rule that turns their results into records without either is in perflab.rules.layers.

A method that cannot run is a pass with ``missing`` set (no TensorFlow, not a zoo model, an
error of the device tool); RunInterrupted and DeviceGoneError propagate (the runner stops or
waits for the phone).
"""

from __future__ import annotations

import os
import random
import re
import time
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
    MissingDependencyError,
    PerflabError,
    RunInterrupted,
)
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
    PassLoadRecord,
    SpanRecord,
    SumCheckRecord,
    SwitchSummaryRecord,
    TraceLatencyRecord,
    VariantTimingRecord,
)
from perflab.store.results import CompatRecord, DelegateRecord, LatencyRecord
from perflab.store.runfolder import Artefact
from perflab.tracing.attribution import Attribution
from perflab.tracing.differential import (
    BOOTSTRAP_N,
    CI_FLOOR_PCT,
    CI_TARGET_PCT,
    MIN_ROUNDS_FOR_CI,
    ROUND_QUANTILE_PCT,
    DifferentialSolution,
    VariantRounds,
    VariantTiming,
    robust_timing,
    solve_robust,
    sum_check,
    unreliable_reason,
    unresolved_layers,
    variant_timing,
    wide_layers,
)
from perflab.tracing.kernel_events import SwitchLatency
from perflab.workloads.base import Workload
from perflab.zoo.tflite_graph import op_tensor_names

DIFFERENTIAL_WARMUP = 2
# A variant's time is the 10th percentile of its samples: on a shared machine the low quantile
# is the least disturbed by other load (two identical models' medians differed by up to 9% here,
# their 10th percentiles by ≤ 2.6%), so layer costs are undisturbed costs. Phones' tools give
# only a mean, which is used there.
DIFFERENTIAL_QUANTILE_PCT = 10.0
DIFFERENTIAL_STOP_BOOT = 200  # resamples when judging whether to stop (the final fit uses BOOTSTRAP_N)
WHOLE = "whole"


@dataclass(frozen=True)
class PassOptions:
    op_profiling: bool = True
    trace: bool = False
    differential: bool = False
    differential_max_layers: int | None = 12
    differential_rounds: int = 3  # rounds always run (at least MIN_ROUNDS_FOR_CI)
    differential_iterations: int = 10
    differential_max_rounds: int = 12  # rounds at most, while a layer's interval is too wide
    differential_budget_s: float = 300.0  # no new round after this long
    differential_seed: int | None = None  # the rounds' shuffle and the bootstrap (None: a fresh one, recorded)
    estimate: bool = True
    cache_root: Path | None = None  # variants cache (None: perflab.zoo.variants.cache_root())


@dataclass
class PassContext:
    workload: Workload
    art: ModelArtifact
    delegate: str
    threads: int
    timeout_s: float
    lr_width: int
    lr_height: int
    check_stop: Callable[[], None] = lambda: None
    input_frame: object = None
    whole_ms: float | None = None  # the cell's own whole-model latency (for the estimate)
    whole_source: str = ""


def options_from_profiling(p: object, cache_root: Path | None = None) -> PassOptions:
    """The scenario's ``profiling:`` block (perflab.scenario.schema.Profiling) as PassOptions."""
    return PassOptions(
        op_profiling=bool(getattr(p, "op_profiling", True)), trace=bool(getattr(p, "trace", False)),
        differential=bool(getattr(p, "differential", False)),
        differential_max_layers=getattr(p, "differential_max_layers", 12),
        differential_rounds=int(getattr(p, "differential_rounds", 3)),
        differential_iterations=int(getattr(p, "differential_iterations", 10)),
        differential_max_rounds=int(getattr(p, "differential_max_rounds", 12)),
        differential_budget_s=float(getattr(p, "differential_budget_s", 300.0)),
        estimate=bool(getattr(p, "estimate", True)), cache_root=cache_root,
    )


# --------------------------------------------------------------------------- op profile


def op_profile_pass(prof: ProfileResult | ProfileMissing) -> LayerPassRecord:
    if isinstance(prof, ProfileMissing):
        return LayerPassRecord(method="op_profile", source="none", missing=prof.reason)
    return LayerPassRecord(
        method="op_profile", source=prof.source, total_ms=prof.total_ms,
        rows=[LayerRow(index=r.index, node_type=r.node_type, name=r.name, avg_ms=r.avg_ms, first_ms=r.first_ms,
                       pct=r.pct, times_called=r.times_called, method="op_profile") for r in prof.layers],
    )


# --------------------------------------------------------------------------- differential


def _round_value(r: TimingResult) -> float | None:
    """One round's value of a variant (one tool run): the 10th percentile of its samples where
    the tool gives them (the least disturbed by other load), else the run's minimum where the
    tool reports one (phones: benchmark_model's summary; of its 10–15 runs the nearest order
    statistic to the 10th percentile; its mean moved by a tenth of every disturbed run and
    made two adjacent layers trade time on a busy host), else the mean."""
    if r.samples_ms:
        return float(np.percentile(r.samples_ms, DIFFERENTIAL_QUANTILE_PCT))
    if r.summary is None:
        return None
    return r.summary.min_ms if r.summary.min_ms is not None else r.summary.mean_ms


def _round_statistic(results: Sequence[TimingResult]) -> str:
    """What :func:`_round_value` took of the rounds' runs, for the variants' ``statistic``."""
    if any(r.samples_ms for r in results):
        return f"p{DIFFERENTIAL_QUANTILE_PCT:g}"
    if any(r.summary is not None and r.summary.min_ms is not None for r in results):
        return "min"
    return "mean"


def _rounds_of(name: str, counts: Sequence[int], results: Sequence[TimingResult]) -> VariantRounds:
    values = tuple(v for v in (_round_value(r) for r in results) if v is not None)
    if not values:
        raise PerflabError(f"variant {name}: the device reported no latency")
    return VariantRounds(name=name, counts=tuple(counts), values_ms=values)


def _host_cpu() -> tuple[float | None, tuple[float, float] | None]:
    """The host's 1-minute load average and its CPUs' (busy, total) seconds so far."""
    try:
        load: float | None = os.getloadavg()[0]
    except OSError:
        load = None
    try:
        import psutil

        t = psutil.cpu_times()
        idle = float(t.idle) + float(getattr(t, "iowait", 0.0))
        total = float(sum(t))
        return load, (total - idle, total)
    except (ImportError, OSError):
        return load, None


def _phone_loadavg(workload: Workload) -> tuple[float | None, str | None]:
    from perflab.devices.capabilities import ShellDevice

    dev = getattr(workload, "device", None)
    if not isinstance(dev, ShellDevice):
        return None, "not a phone"
    try:
        text = dev.read_file("/proc/loadavg")
        return (float(text.split()[0]), None) if text else (None, "/proc/loadavg could not be read")
    except (PerflabError, ValueError, IndexError) as exc:
        return None, f"/proc/loadavg could not be read: {exc}"


class _LoadWatch:
    """The host's (and the phone's) load over a pass, read at its start and end."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.load0, self.cpu0 = _host_cpu()
        self.phone0, self.phone_why = _phone_loadavg(workload)

    def record(self) -> PassLoadRecord:
        load1, cpu1 = _host_cpu()
        phone1, why1 = _phone_loadavg(self.workload)
        busy = None
        if self.cpu0 is not None and cpu1 is not None and cpu1[1] > self.cpu0[1]:
            busy = 100.0 * (cpu1[0] - self.cpu0[0]) / (cpu1[1] - self.cpu0[1])
        missing: dict[str, str] = {}
        if self.phone0 is None or phone1 is None:
            missing["phone_loadavg_1m"] = self.phone_why or why1 or "not read"
        if busy is None:
            missing["host_cpu_busy_pct"] = "psutil's CPU times were not available"
        return PassLoadRecord(host_loadavg_1m_start=self.load0, host_loadavg_1m_end=load1, host_cpu_busy_pct=busy,
                              host_cpus=os.cpu_count(), phone_loadavg_1m_start=self.phone0,
                              phone_loadavg_1m_end=phone1, missing=missing)


_Runs = list[tuple[str, tuple[int, ...], ModelArtifact]]


def _solve(runs: _Runs, got: Mapping[str, list[TimingResult]], names: Sequence[str], n_boot: int,
           seed: int) -> tuple[DifferentialSolution, VariantTiming]:
    variants = [_rounds_of(name, counts, got[name]) for name, counts, _ in runs if name != WHOLE]
    return (solve_robust(variants, names, n_boot=n_boot, seed=seed),
            robust_timing(_rounds_of(WHOLE, (), got[WHOLE])))


def _time_rounds(ctx: PassContext, opts: PassOptions, runs: _Runs, got: dict[str, list[TimingResult]],
                 names: Sequence[str], seed: int) -> tuple[int, str]:
    """Rounds of every variant and the whole model, each round in a fresh random order, until
    the stopping rule holds (after at least MIN_ROUNDS_FOR_CI rounds), the round limit or the
    time budget; how many rounds ran and why they stopped."""
    rng = random.Random(seed)
    min_rounds = max(opts.differential_rounds, MIN_ROUNDS_FOR_CI)
    max_rounds = max(opts.differential_max_rounds, min_rounds)
    t0 = time.monotonic()
    rounds = 0
    while True:
        order = list(runs)
        rng.shuffle(order)
        for name, _, art in order:
            ctx.check_stop()
            req = TimingRequest(mode=SeriesMode.BACK_TO_BACK, fps=None, warmup=DIFFERENTIAL_WARMUP,
                                iterations=opts.differential_iterations, threads=ctx.threads,
                                delegate=ctx.delegate, timeout_s=ctx.timeout_s, lr_width=ctx.lr_width,
                                lr_height=ctx.lr_height, input_frame=ctx.input_frame)
            got[name].append(ctx.workload.run_timing(art, req))
        rounds += 1
        if rounds < min_rounds:
            continue
        sol, whole = _solve(runs, got, names, DIFFERENTIAL_STOP_BOOT, seed)
        wide = wide_layers(sol, whole.time_ms)
        if not wide:
            return rounds, (f"converged: every layer's 95% interval within ±{CI_TARGET_PCT:g}% of its cost "
                            f"or ±{CI_FLOOR_PCT:g}% of the whole model")
        if rounds >= max_rounds:
            return rounds, f"round limit ({max_rounds}) reached with {', '.join(wide)} still wider than the target"
        if time.monotonic() - t0 >= opts.differential_budget_s:
            return rounds, (f"time budget ({opts.differential_budget_s:g} s) spent with {', '.join(wide)} still "
                            "wider than the target")


def differential_pass(ctx: PassContext, opts: PassOptions) -> LayerPassRecord:
    """Generate (or reuse) the variants; time them in rounds, each round every variant and the
    whole model once in a fresh random order, until every layer's 95% interval is narrow enough
    (perflab.tracing.differential.wide_layers) or the rounds or the time budget end; solve
    (lower quartile of the rounds per variant, non-negative least squares, bootstrap intervals),
    check the sum. A layer whose interval is still wider than ±10% of its cost (and ±2% of the
    whole model) when the rounds stopped is marked ``unresolved`` on its row, with the figures;
    a failed sum check, or no layer resolved, marks the whole pass unreliable."""
    from perflab.zoo import variants as zv

    try:
        vs = zv.variant_set(ctx.art, max_layers=opts.differential_max_layers, root=opts.cache_root,
                            check=ctx.check_stop)
    except MissingDependencyError as exc:
        return LayerPassRecord(method="differential", source="none",
                               missing=f"differential numbers missing: {exc.needed_for}")
    except RunInterrupted:
        raise
    except PerflabError as exc:
        return LayerPassRecord(method="differential", source="none",
                               missing=f"differential numbers missing: variants could not be generated: {exc}")
    runs: _Runs = [(v.name, v.counts, vs.artifact(v)) for v in vs.variants]
    runs.append((WHOLE, (), ctx.art))
    names = [u.name for u in vs.units]
    got: dict[str, list[TimingResult]] = {name: [] for name, _, _ in runs}
    seed = opts.differential_seed if opts.differential_seed is not None else random.SystemRandom().randrange(2**31)
    watch = _LoadWatch(ctx.workload)
    try:
        rounds, stop = _time_rounds(ctx, opts, runs, got, names, seed)
    except (RunInterrupted, DeviceGoneError):
        raise
    except PerflabError as exc:
        return LayerPassRecord(method="differential", source="none",
                               missing=f"differential numbers missing: a variant failed on the device: {exc}",
                               load=watch.record())
    load = watch.record()
    try:
        sol, whole = _solve(runs, got, names, BOOTSTRAP_N, seed)
    except PerflabError as exc:
        return LayerPassRecord(method="differential", source="none", missing=f"differential numbers missing: {exc}",
                               load=load)
    check = sum_check(sol, whole.time_ms)
    unreliable = unreliable_reason(check, sol)
    unresolved = unresolved_layers(sol, whole.time_ms)
    total = sol.sum_ms
    rows = [
        LayerRow(index=c.index, node_type=vs.units[c.index].kind, name=c.name, avg_ms=c.cost_ms,
                 pct=(100.0 * c.cost_ms / total) if total > 0 else None, method="differential", se_ms=c.se_ms,
                 ci_lo_ms=lo, ci_hi_ms=hi, unresolved=unresolved.get(c.name),
                 macs_per_lr_pixel=vs.units[c.index].macs_per_lr_pixel, layers=list(vs.units[c.index].layers))
        for c, (lo, hi) in zip(sol.layers, sol.intervals_ms, strict=True)
    ]
    stat = _round_statistic(got[WHOLE]) + f" per round, p{ROUND_QUANTILE_PCT:g} (lower quartile) over the rounds"
    timings = [robust_timing(_rounds_of(name, counts, got[name])) for name, counts, _ in runs if name != WHOLE]
    variant_recs = [VariantTimingRecord(name=t.name, counts=list(t.counts), time_ms=t.time_ms, statistic=stat,
                                        se_ms=t.se_ms, n=t.n, residual_ms=r)
                    for t, r in zip(timings, sol.residuals_ms, strict=True)]
    variant_recs.append(VariantTimingRecord(name=WHOLE, time_ms=whole.time_ms, statistic=stat, se_ms=whole.se_ms,
                                            n=whole.n))
    notes = [f"weights: {vs.weights}",
             "the first row also carries the fixed per-invoke cost (input handling, the interpreter call)",
             f"variant order shuffled every round (seed {seed})"]
    if vs.ops_match is False:
        notes.append("the regenerated whole model's op list differs from the shipped model's")
    if unresolved and unreliable is None:
        notes.append(f"{len(unresolved)} of {len(rows)} rows not resolved ({', '.join(unresolved)}): shown with their "
                     "intervals, greyed, left out of the rank checks; the other rows are numbers")
    n_dup = sum(1 for v in vs.variants if v.kind == "duplicate")
    source = (f"differential: {len(vs.variants) - n_dup} prefix + {n_dup} duplicate variants of {ctx.art.name} "
              f"{ctx.art.variant}, {rounds} rounds in random order × {opts.differential_iterations} "
              f"runs each, non-negative least squares, 95% bootstrap intervals ({sol.n_boot} resamples)")
    return LayerPassRecord(
        method="differential", source=source, rows=rows, total_ms=total,
        sum_check=SumCheckRecord(layers_sum_ms=check.layers_sum_ms, layers_sum_se_ms=check.layers_sum_se_ms,
                                 whole_model_ms=check.whole_model_ms,
                                 whole_model_source=f"the shipped {ctx.art.path.name}, timed in the same rounds",
                                 diff_pct=check.diff_pct, tolerance_pct=check.tolerance_pct, ok=check.ok),
        variants=variant_recs, fit_chi2=sol.chi2, fit_dof=sol.dof, fit_birge=sol.birge, notes=notes,
        unreliable=unreliable, rounds=rounds, stop=stop, load=load,
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
        op = op_profile_pass(ctx.workload.run_profile(ctx.art, ctx.threads, ctx.delegate, ctx.timeout_s))
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
