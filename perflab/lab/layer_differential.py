"""The differential (virtual-layer) pass of a cell: model variants from perflab.zoo.variants
(prefixes and duplicated layers, generated with TensorFlow, cached), timed with the cell's own
``Workload.run_timing`` in interleaved rounds (alternating order, so a slow drift hits every
variant alike) together with the shipped model itself, which stays out of the fit and is the
whole-model time of the sum check. Per-layer costs and their standard errors come from
perflab.tracing.differential (pure); perflab.lab.layers glues this pass into a cell's record."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping, Sequence

import numpy as np

from perflab.core.types import (
    ModelArtifact,
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
from perflab.lab.layer_pass import PassContext, PassOptions
from perflab.store.layer_records import (
    LayerPassRecord,
    LayerRow,
    PassLoadRecord,
    SumCheckRecord,
    VariantTimingRecord,
)
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
    wide_layers,
)
from perflab.workloads.base import Workload

DIFFERENTIAL_WARMUP = 2
# A variant's time is the 10th percentile of its samples: on a shared machine the low quantile
# is the least disturbed by other load (two identical models' medians differed by up to 9% here,
# their 10th percentiles by ≤ 2.6%), so layer costs are undisturbed costs. Phones' tools give
# only a mean, which is used there.
DIFFERENTIAL_QUANTILE_PCT = 10.0
DIFFERENTIAL_STOP_BOOT = 200  # resamples when judging whether to stop (the final fit uses BOOTSTRAP_N)
WHOLE = "whole"


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
