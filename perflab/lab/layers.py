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
* ``atrace`` / ``trace`` — from a kernel-trace pass (perflab.lab.layers_trace), when
  ``profiling.trace`` is on.

A method that cannot run is a pass with ``missing`` set (no TensorFlow, not a zoo model, an
error of the device tool); RunInterrupted and DeviceGoneError propagate (the runner stops or
waits for the phone).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perflab.core.types import (
    ModelArtifact,
    ProfileMissing,
    ProfileResult,
    SeriesMode,
    TimingRequest,
    TimingResult,
)
from perflab.errors import DeviceGoneError, MissingDependencyError, PerflabError, RunInterrupted
from perflab.store.results import (
    LayerPassRecord,
    LayerRow,
    LayersRecord,
    RankCheckRecord,
    SumCheckRecord,
    VariantTimingRecord,
)
from perflab.tracing.differential import (
    VariantTiming,
    solve_layers,
    spearman,
    sum_check,
    variant_timing,
)
from perflab.workloads.base import Workload

DIFFERENTIAL_WARMUP = 2
WHOLE = "whole"


@dataclass(frozen=True)
class PassOptions:
    op_profiling: bool = True
    trace: bool = False
    differential: bool = False
    differential_max_layers: int | None = 12
    differential_rounds: int = 3
    differential_iterations: int = 10
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
    notes: list[str] = field(default_factory=list)


def options_from_profiling(p: object, cache_root: Path | None = None) -> PassOptions:
    """The scenario's ``profiling:`` block (perflab.scenario.schema.Profiling) as PassOptions."""
    return PassOptions(
        op_profiling=bool(getattr(p, "op_profiling", True)), trace=bool(getattr(p, "trace", False)),
        differential=bool(getattr(p, "differential", False)),
        differential_max_layers=getattr(p, "differential_max_layers", 12),
        differential_rounds=int(getattr(p, "differential_rounds", 3)),
        differential_iterations=int(getattr(p, "differential_iterations", 10)), cache_root=cache_root,
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


def _timing_of(name: str, counts: Sequence[int], results: Sequence[TimingResult]) -> VariantTiming:
    samples = [s for r in results for s in (r.samples_ms or [])]
    if samples:
        return variant_timing(name, counts, samples)
    # the tool gave only its summary (benchmark_model): mean and std of count runs, per series
    means = [r.summary.mean_ms for r in results if r.summary is not None]
    if not means:
        raise PerflabError(f"variant {name}: the device reported no latency")
    n = sum(r.summary.count for r in results if r.summary is not None)
    stds = [r.summary.std_ms for r in results if r.summary is not None and r.summary.std_ms is not None]
    mean = sum(means) / len(means)
    if len(means) > 1:
        spread = math.sqrt(sum((m - mean) ** 2 for m in means) / (len(means) - 1)) / math.sqrt(len(means))
    else:
        spread = (stds[0] / math.sqrt(max(n, 1))) if stds else abs(mean) * 0.05
    return VariantTiming(name=name, counts=tuple(counts), time_ms=mean, se_ms=spread, n=n)


def differential_pass(ctx: PassContext, opts: PassOptions) -> LayerPassRecord:
    """Generate (or reuse) the variants, time them in interleaved rounds, solve, check."""
    from perflab.zoo import variants as zv

    try:
        vs = zv.variant_set(ctx.art, max_layers=opts.differential_max_layers, root=opts.cache_root)
    except MissingDependencyError as exc:
        return LayerPassRecord(method="differential", source="none",
                               missing=f"differential numbers missing: {exc.needed_for}")
    except PerflabError as exc:
        return LayerPassRecord(method="differential", source="none",
                               missing=f"differential numbers missing: variants could not be generated: {exc}")
    runs: list[tuple[str, tuple[int, ...], ModelArtifact]] = [
        (v.name, v.counts, vs.artifact(v)) for v in vs.variants]
    runs.append((WHOLE, (), ctx.art))
    got: dict[str, list[TimingResult]] = {name: [] for name, _, _ in runs}
    try:
        for rnd in range(opts.differential_rounds):
            order = runs if rnd % 2 == 0 else list(reversed(runs))
            for name, _, art in order:
                ctx.check_stop()
                req = TimingRequest(mode=SeriesMode.BACK_TO_BACK, fps=None, warmup=DIFFERENTIAL_WARMUP,
                                    iterations=opts.differential_iterations, threads=ctx.threads,
                                    delegate=ctx.delegate, timeout_s=ctx.timeout_s, lr_width=ctx.lr_width,
                                    lr_height=ctx.lr_height, input_frame=ctx.input_frame)
                got[name].append(ctx.workload.run_timing(art, req))
    except (RunInterrupted, DeviceGoneError):
        raise
    except PerflabError as exc:
        return LayerPassRecord(method="differential", source="none",
                               missing=f"differential numbers missing: a variant failed on the device: {exc}")
    names = [u.name for u in vs.units]
    try:
        timings = [_timing_of(name, counts, got[name]) for name, counts, _ in runs if name != WHOLE]
        whole = _timing_of(WHOLE, (), got[WHOLE])
        sol = solve_layers(timings, names)
    except PerflabError as exc:
        return LayerPassRecord(method="differential", source="none", missing=f"differential numbers missing: {exc}")
    check = sum_check(sol, whole.time_ms)
    total = sol.sum_ms
    rows = [
        LayerRow(index=c.index, node_type=vs.units[c.index].kind, name=c.name, avg_ms=c.cost_ms,
                 pct=(100.0 * c.cost_ms / total) if total > 0 else None, method="differential", se_ms=c.se_ms,
                 macs_per_lr_pixel=vs.units[c.index].macs_per_lr_pixel)
        for c in sol.layers
    ]
    variant_recs = [VariantTimingRecord(name=t.name, counts=list(t.counts), median_ms=t.time_ms, se_ms=t.se_ms, n=t.n,
                                        residual_ms=r) for t, r in zip(timings, sol.residuals_ms, strict=True)]
    variant_recs.append(VariantTimingRecord(name=WHOLE, median_ms=whole.time_ms, se_ms=whole.se_ms, n=whole.n))
    notes = [f"weights: {vs.weights}",
             "the first row also carries the fixed per-invoke cost (input handling, the interpreter call)"]
    if vs.ops_match is False:
        notes.append("the regenerated whole model's op list differs from the shipped model's")
    n_dup = sum(1 for v in vs.variants if v.kind == "duplicate")
    source = (f"differential: {len(vs.variants) - n_dup} prefix + {n_dup} duplicate variants of {ctx.art.name} "
              f"{ctx.art.variant}, {opts.differential_rounds} interleaved rounds × {opts.differential_iterations} "
              f"runs each, weighted least squares")
    return LayerPassRecord(
        method="differential", source=source, rows=rows, total_ms=total,
        sum_check=SumCheckRecord(layers_sum_ms=check.layers_sum_ms, layers_sum_se_ms=check.layers_sum_se_ms,
                                 whole_model_ms=check.whole_model_ms,
                                 whole_model_source=f"the shipped {ctx.art.path.name}, timed in the same rounds",
                                 diff_pct=check.diff_pct, tolerance_pct=check.tolerance_pct, ok=check.ok),
        variants=variant_recs, fit_chi2=sol.chi2, fit_dof=sol.dof, fit_birge=sol.birge, notes=notes,
    )


# --------------------------------------------------------------------------- rank agreement


def _conv_rows(p: LayerPassRecord) -> list[LayerRow]:
    return [r for r in p.rows if r.node_type in ("conv", "merged") or r.node_type.upper().startswith("CONV")]


def rank_against_macs(p: LayerPassRecord) -> RankCheckRecord | None:
    """Rank agreement of a pass's conv rows with their MACs (a proxy where nothing else measured)."""
    rows = [r for r in _conv_rows(p) if r.macs_per_lr_pixel]
    if len(rows) < 2:
        return None
    times = [r.avg_ms for r in rows]
    macs = [float(r.macs_per_lr_pixel or 0) for r in rows]
    same_top = times.index(max(times)) in [i for i, m in enumerate(macs) if m == max(macs)]
    return RankCheckRecord(against="macs", spearman=spearman(times, macs), n=len(rows), same_top=same_top,
                           note="conv rows only; MACs are a proxy: element-wise work and memory traffic are not counted")


def rank_between(p: LayerPassRecord, other: LayerPassRecord) -> RankCheckRecord | None:
    """Rank agreement of two passes over the rows both have (matched by name, in order)."""
    mine = {r.name: r.avg_ms for r in p.rows}
    theirs = {r.name: r.avg_ms for r in other.rows}
    common = [n for n in mine if n in theirs]
    if len(common) < 2:
        return None
    a, b = [mine[n] for n in common], [theirs[n] for n in common]
    return RankCheckRecord(against=other.method, spearman=spearman(a, b), n=len(common),
                           same_top=a.index(max(a)) == b.index(max(b)))


# --------------------------------------------------------------------------- all passes


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
    if opts.differential:
        ctx.check_stop()
        diff = differential_pass(ctx, opts)
        checks = [c for c in (rank_between(diff, o) for o in passes if o.rows) if c is not None]
        macs = rank_against_macs(diff)
        if macs is not None:
            checks.append(macs)
        passes.append(diff.model_copy(update={"rank_checks": checks}))
    return legacy.model_copy(update={"passes": passes})
