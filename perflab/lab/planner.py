"""The split planner on ``local`` (issue 23): measure the inputs, solve, run the plans, compare.

On this machine the two "processors" are the CPU's fp32 and int8 paths (LiteRT with XNNPACK).
For a zoo chain model (perflab.zoo.segments) :func:`plan_model`

1. **measures the inputs**, each variant timed in interleaved rounds (alternating order, so a
   slow drift hits every variant alike); a round's sample is the fastest of its iterations, and
   each variant's number is the median over rounds with its spread (MAD, standard error):

   * per-unit cost per precision — differential: the prefix segment [0, k) in precision p
     timed for every k; unit k−1 costs P_p(k) − P_p(k−1) (unit 0 carries the per-invoke cost
     and, for int8, the quantisation of the frame);
   * switch cost at each boundary k in each direction — two-segment variants: [0, k) in p then
     [k, n) in q, two interpreters in sequence; S(k, p→q) = C(k,p,q) − P_p(k) − (P_q(n) − P_q(k)):
     what the seam (dequantise/quantise, the hop between interpreters) adds beyond the layers;
   * per-unit quality sensitivity — the plan with only unit i in int8, run on the scenario's
     frames: the PSNR-Y (and SSIM-Y) it loses against all-fp32, median over frames;

2. **solves** them (perflab.analysis.split_plan): the exact Pareto front, the fastest plan
   within the quality floor, FYE-SR's relaxed-gradient baseline on the same inputs;

3. **executes** all-fp32, all-int8, the baseline's plan and the exact plans on the front as
   segment models in sequence (one LiteRT interpreter per segment, float tensors between them),
   timed in interleaved rounds *together with the input variants again* and scored on the frames:
   measured latency beside the prediction from the inputs of the same rounds (the model's error,
   not the machine's drift between the passes; the first pass's prediction is kept beside it),
   measured PSNR-Y/SSIM-Y beside the additive proxy's.

Everything lands in one JSON-ready dict (``plan.json``; perflab.report.plan_page renders it).
The stop check is called between variants and rounds (RunInterrupted propagates).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from perflab.analysis import split_plan as sp
from perflab.analysis.plan_check import LatencyCheck, LatencyFigures, Seam, judge_latency, summary
from perflab.core.types import ModelArtifact
from perflab.errors import MeasurementError, ModelError, UserInputError
from perflab.quality.frames import hr_to_lr, quantize_8bit, resize_bicubic
from perflab.quality.metrics import psnr_ssim_y
from perflab.quality.piqe import piqe_score
from perflab.zoo.segments import SegmentKey, SegmentMaker

PLAN_SCHEMA = "perflab.plan/1"
PROCESSORS = ("fp32", "int8")  # on this machine the processors are the CPU's two precisions
PRECISIONS = ("fp32", "int8")  # processor 0 runs fp32 segments, processor 1 int8 ones
MAD_TO_SIGMA = 1.4826
MAX_EXECUTED_FRONT = 6  # exact plans on the front that are run (besides the chosen one)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PlanSettings:
    lr_width: int
    lr_height: int
    threads: int = 2
    rounds: int = 5  # interleaved rounds per variant
    iterations: int = 5  # timed invokes per round (the round's fastest is its sample)
    warmup: int = 2
    quality_floor_db: float | None = None  # minimum PSNR-Y of the chosen plan; None: fp32's − 0.1 dB
    border_px: int | None = None  # cropped before PSNR/SSIM; None: the scale, as a run's cells do
    check_plans: tuple[str, ...] = ()  # more plans to run, as labels ("FIFI"): e.g. many seams, to test the model


# --------------------------------------------------------------------------- running segments


class Chain:
    """A plan's segment models in sequence: one LiteRT interpreter each, float tensors between."""

    def __init__(self, paths: Sequence[Path], threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._its = [Interpreter(model_path=str(p), num_threads=threads) for p in paths]
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"LiteRT cannot load a segment: {exc}") from exc
        self._shape: tuple[int, ...] | None = None
        self._io = [self._inputs(it) for it in self._its]

    @staticmethod
    def _inputs(it: Any) -> tuple[int, int | None]:
        """(the activation input's index, the LR frame's where the segment also reads it)."""
        details = it.get_input_details()
        if len(details) == 1:
            return int(details[0]["index"]), None
        lr = [d for d in details if re.search(r"(^|_)lr(:\d+)?$", str(d["name"]))]
        if len(details) != 2 or len(lr) != 1:
            raise ModelError(f"a segment with inputs {[d['name'] for d in details]}: expected one activation "
                             "and the LR frame 'lr'")
        other = next(d for d in details if d is not lr[0])
        return int(other["index"]), int(lr[0]["index"])

    def _resize(self, shape: tuple[int, ...]) -> None:
        if self._shape == shape:
            return
        h, w = shape[1], shape[2]
        try:
            for it, (_act, lr) in zip(self._its, self._io, strict=True):
                for d in it.get_input_details():
                    channels = 3 if d["index"] == lr else int(d["shape"][-1])
                    it.resize_tensor_input(d["index"], [1, h, w, channels], strict=True)
                it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot resize segments to {w}x{h}: {exc}") from exc
        self._shape = shape

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference of the whole chain: input [1, H, W, 3] float32 → the last output."""
        self._resize(tuple(x.shape))
        y = x
        for it, (act, lr) in zip(self._its, self._io, strict=True):
            it.set_tensor(act, y)
            if lr is not None:
                it.set_tensor(lr, x)
            it.invoke()
            y = it.get_tensor(it.get_output_details()[0]["index"])
        return y

    def time_ms(self, x: np.ndarray, iterations: int) -> float:
        """The fastest of ``iterations`` chain inferences (ms): on a shared machine preemption only
        ever adds time, so a round's minimum is its least disturbed sample."""
        out = []
        for _ in range(iterations):
            t0 = time.perf_counter_ns()
            self.run(x)
            out.append((time.perf_counter_ns() - t0) / 1e6)
        return min(out)


@dataclass(frozen=True)
class Timed:
    name: str
    median_ms: float
    mad_ms: float
    se_ms: float  # 1.4826·MAD/√rounds
    samples_ms: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "median_ms": self.median_ms, "mad_ms": self.mad_ms, "se_ms": self.se_ms,
                "samples_ms": list(self.samples_ms)}


Keys = tuple[SegmentKey, ...]


class Runner(Protocol):
    """Where a plan's segments run and are timed: this machine's LiteRT (:class:`LocalRunner`) or a
    phone's benchmark_model (perflab.lab.planner_phone)."""

    #: the two processors' names, for precision fp32 and int8 (plan.json, the page)
    processors: tuple[str, str]
    #: how a chain of segments is run and timed, in words (plan.json's inputs.method.timing)
    timing_method: str

    def warm(self, group: dict[str, Keys], x: np.ndarray, warmup: int) -> None:
        """Run every variant of the group ``warmup`` times untimed (allocations at the frame's size)."""

    def round(self, group: dict[str, Keys], x: np.ndarray, iterations: int, reverse: bool,
              check: Callable[[], None]) -> dict[str, float]:
        """One round's sample (ms) per variant of the group: the fastest of ``iterations`` runs of
        its chain of segments, the variants in order (``reverse``: the other way round)."""
        ...

    def output(self, keys: Keys, lr: np.ndarray) -> np.ndarray:
        """One inference of the chain on one LR frame [1, H, W, 3] float32: its output."""
        ...


class LocalRunner:
    """Segment chains on this machine (:class:`Chain`), timed one by one: one chain (its own
    interpreters) per variant name, so a prefix ``P<p>:<n>`` and the plan all-p are two
    interpreters of one file, whose difference is the machine's noise."""

    processors = PROCESSORS
    timing_method = ("this machine's LiteRT (XNNPACK), one interpreter per segment in sequence, float tensors "
                     "between them; a round's sample is the fastest of its iterations")

    def __init__(self, maker: SegmentMaker, threads: int) -> None:
        self.maker, self.threads = maker, threads
        self._chains: dict[tuple[str, Keys], Chain] = {}

    def chain(self, keys: Keys, name: str = "") -> Chain:
        if (name, keys) not in self._chains:
            self._chains[(name, keys)] = Chain(self.maker.paths(list(keys)), self.threads)
        return self._chains[(name, keys)]

    def warm(self, group: dict[str, Keys], x: np.ndarray, warmup: int) -> None:
        for name, keys in group.items():
            for _ in range(max(1, warmup)):
                self.chain(keys, name).run(x)

    def round(self, group: dict[str, Keys], x: np.ndarray, iterations: int, reverse: bool,
              check: Callable[[], None]) -> dict[str, float]:
        names = list(group)
        return {name: self.chain(group[name], name).time_ms(x, iterations)
                for name in (reversed(names) if reverse else names)}

    def output(self, keys: Keys, lr: np.ndarray) -> np.ndarray:
        return self.chain(keys).run(lr)


def time_interleaved(runner: Runner, groups: Sequence[dict[str, Keys]], x: np.ndarray, s: PlanSettings,
                     check: Callable[[], None], progress: Progress, what: str) -> dict[str, Timed]:
    """Every variant of the groups timed in ``s.rounds`` rounds, the order reversed every other
    round (a runner may share one timed segment among the variants of one group, never across)."""
    for group in groups:  # warm-up (also allocates at the frame's size)
        runner.warm(group, x, s.warmup)
    count = sum(len(g) for g in groups)
    samples: dict[str, list[float]] = {n: [] for g in groups for n in g}
    for r in range(s.rounds):
        check()
        progress(f"  {what}: round {r + 1}/{s.rounds} ({count} variants)")
        for group in groups if r % 2 == 0 else reversed(groups):
            for name, ms in runner.round(group, x, s.iterations, r % 2 == 1, check).items():
                samples[name].append(ms)
    out = {}
    for name, xs in samples.items():
        a = np.asarray(xs)
        med = float(np.median(a))
        mad = float(np.median(np.abs(a - med)))
        out[name] = Timed(name, med, mad, MAD_TO_SIGMA * mad / math.sqrt(len(xs)), tuple(xs))
    return out


def plan_keys(plan: Sequence[int]) -> Keys:
    """A plan's segments: units [start, end) in the precision of their processor."""
    return tuple(SegmentKey(g.start, g.end, PRECISIONS[g.processor]) for g in sp.segments(plan))


def plan_label(plan: Sequence[int]) -> str:
    """A plan as its precisions per unit, e.g. ``F F I I`` → "FFII"."""
    return "".join("FI"[p] for p in plan)


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class PlanFrame:
    name: str
    lr: np.ndarray  # float32 [H, W, 3] in [0, 1]
    hr: np.ndarray


def planner_frames(frames: Sequence[tuple[str, np.ndarray]], scale: int) -> list[PlanFrame]:
    """HR frames → (LR, HR) pairs by the documented degradation (perflab.quality.frames)."""
    out = []
    for name, hr in frames:
        lr = hr_to_lr(hr, scale)
        h, w = lr.shape[:2]
        out.append(PlanFrame(name, lr, np.asarray(hr[: h * scale, : w * scale], dtype=np.float32)))
    if not out:
        raise UserInputError("the split planner needs at least one input frame for quality")
    return out


def timing_input(frames: Sequence[PlanFrame], s: PlanSettings) -> np.ndarray:
    """The first frame's LR resized to the scenario's geometry: what the plans are timed on."""
    lr = resize_bicubic(frames[0].lr, s.lr_width, s.lr_height)
    return np.asarray(np.clip(lr, 0.0, 1.0)[None], dtype=np.float32)


@dataclass(frozen=True)
class Score:
    """One output frame's quality: PSNR-Y/SSIM-Y against its HR (border cropped), PIQE (no
    reference, lower is better) on the whole output as a run's cells score it — clipped and
    rounded to 8 bits; None with why where it cannot be measured (a frame under 16×16)."""

    psnr_y_db: float
    ssim_y: float
    piqe: float | None
    piqe_missing: str | None = None


def _piqe(img: np.ndarray) -> tuple[float | None, str | None]:
    try:
        return piqe_score(quantize_8bit(np.clip(img, 0.0, 1.0))), None
    except MeasurementError as exc:
        return None, str(exc)


def _quality(runner: Runner, keys: Keys, frames: Sequence[PlanFrame], border_px: int | None) -> list[Score]:
    out = []
    for f in frames:
        sr = np.clip(runner.output(keys, f.lr[None].astype(np.float32))[0], 0.0, 1.0)
        q = psnr_ssim_y(sr, f.hr, border_px or 0)
        out.append(Score(q.psnr_y_db, q.ssim_y, *_piqe(sr)))
    return out


def _mean_piqe(scores: Sequence[Score]) -> tuple[float | None, str | None]:
    """The mean PIQE over frames, or None with the first frame's reason when any is missing."""
    missing = next((s.piqe_missing for s in scores if s.piqe is None), None)
    if missing is not None or not scores:
        return None, missing or "no frames"
    return float(np.mean([s.piqe for s in scores if s.piqe is not None])), None


# --------------------------------------------------------------------------- the whole pass


Grid = list[list[float]]


@dataclass
class _Costs:
    timed: dict[str, Timed]
    cost: Grid
    cost_se: Grid
    switch: list[Grid]
    switch_se: list[Grid]
    switch_raw: list[Grid]  # before negative values (noise) count as 0


def _cost_variants(n: int) -> dict[str, Keys]:
    """The variants the inputs come from: prefixes ``P<p>:<k>`` (units [0, k) in precision p as
    one segment) and two-segment ``C<p><q>:<k>``."""
    variants: dict[str, Keys] = {}
    for p in range(2):
        for k in range(1, n + 1):
            variants[f"P{p}:{k}"] = (SegmentKey(0, k, PRECISIONS[p]),)
    for k in range(1, n):
        for p in range(2):
            variants[f"C{p}{1 - p}:{k}"] = plan_keys((p,) * k + (1 - p,) * (n - k))
    return variants


def _derive_costs(timed: dict[str, Timed], n: int) -> _Costs:
    """Per-unit costs (prefix differences) and switch costs (two-segment variants minus prefixes)."""

    def val(name: str | None) -> tuple[float, float]:
        return (0.0, 0.0) if name is None else (timed[name].median_ms, timed[name].se_ms)

    def pre(p: int, k: int) -> tuple[float, float]:
        return val(f"P{p}:{k}" if k > 0 else None)

    out = _Costs({k: v for k, v in timed.items() if k[0] in "PC" and ":" in k},
                 [[0.0, 0.0] for _ in range(n)], [[0.0, 0.0] for _ in range(n)],
                 [[[0.0, 0.0], [0.0, 0.0]] for _ in range(n - 1)], [[[0.0, 0.0], [0.0, 0.0]] for _ in range(n - 1)],
                 [[[0.0, 0.0], [0.0, 0.0]] for _ in range(n - 1)])
    for p in range(2):
        for i in range(n):
            (hi, hse), (lo, lse) = pre(p, i + 1), pre(p, i)
            out.cost[i][p], out.cost_se[i][p] = hi - lo, math.hypot(hse, lse)
    for k in range(1, n):
        for p in range(2):
            q = 1 - p
            (c, cse), (a, ase), (whole, wse), (b, bse) = val(f"C{p}{q}:{k}"), pre(p, k), pre(q, n), pre(q, k)
            # a seam adds work (dequantise, quantise, a hop between interpreters): a negative
            # difference is noise, and the exact solver would exploit it (a plan with many
            # "free" seams predicted faster than it runs), so it counts as 0; the raw value is kept
            out.switch_raw[k - 1][p][q] = c - a - (whole - b)
            out.switch[k - 1][p][q] = max(0.0, c - a - (whole - b))
            out.switch_se[k - 1][p][q] = math.sqrt(cse ** 2 + ase ** 2 + wse ** 2 + bse ** 2)
    return out


def _inputs(units: Sequence[str], processors: tuple[str, str], costs: _Costs, loss: Grid,
            loss_se: Grid) -> sp.PlanInputs:
    return sp.PlanInputs(
        units=tuple(units), processors=processors, cost_ms=_tup(costs.cost),
        switch_ms=tuple(_tup(m) for m in costs.switch), loss_db=_tup(loss), cost_se_ms=_tup(costs.cost_se),
        switch_se_ms=tuple(_tup(m) for m in costs.switch_se), loss_se_db=_tup(loss_se))


def _measure_sensitivity(runner: Runner, units: Sequence[str], frames: Sequence[PlanFrame], s: PlanSettings,
                         check: Callable[[], None]) -> tuple[list[Score], Grid, Grid, list[dict[str, Any]]]:
    """(all-fp32's scores per frame, loss [unit][precision], its standard error, rows): the
    PSNR-Y lost when only unit i runs int8, median over frames."""
    n = len(units)
    ref = _quality(runner, plan_keys((0,) * n), frames, s.border_px)
    loss: Grid = [[0.0, 0.0] for _ in range(n)]
    loss_se: Grid = [[0.0, 0.0] for _ in range(n)]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        check()
        scores = _quality(runner, plan_keys(tuple(1 if j == i else 0 for j in range(n))), frames, s.border_px)
        d_psnr = np.asarray([r.psnr_y_db - v.psnr_y_db for r, v in zip(ref, scores, strict=True)])
        d_ssim = np.asarray([r.ssim_y - v.ssim_y for r, v in zip(ref, scores, strict=True)])
        d_piqe = [v.piqe - r.piqe for r, v in zip(ref, scores, strict=True) if v.piqe is not None and r.piqe is not None]
        med = float(np.median(d_psnr))
        mad = float(np.median(np.abs(d_psnr - med)))
        loss[i][1] = med
        loss_se[i][1] = MAD_TO_SIGMA * mad / math.sqrt(len(d_psnr))
        rows.append({"unit": units[i], "psnr_y_loss_db": med, "psnr_y_loss_mad_db": mad,
                     "ssim_y_loss": float(np.median(d_ssim)), "frames": len(d_psnr),
                     # PIQE's change against all-fp32 (+: worse); not a solver input (no additive proxy)
                     "piqe_change": float(np.median(d_piqe)) if len(d_piqe) == len(d_psnr) else None})
    return ref, loss, loss_se, rows


def _tup(g: Grid) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(r) for r in g)


def parse_label(label: str, n: int) -> tuple[int, ...]:
    """"FIFI" → (0, 1, 0, 1); UserInputError unless n letters of F (fp32) and I (int8)."""
    if len(label) != n or set(label) - {"F", "I"}:
        raise UserInputError(f"plan {label!r}: give {n} letters, F (fp32) or I (int8), one per unit of the model")
    return tuple("FI".index(c) for c in label)


def _plans_to_run(n: int, front: Sequence[sp.FrontPoint], chosen: sp.FrontPoint,
                  baseline: sp.RelaxedResult, extra: Sequence[str] = ()) -> dict[tuple[int, ...], list[str]]:
    to_run: dict[tuple[int, ...], list[str]] = {}
    picks = [((0,) * n, "all-fp32"), ((1,) * n, "all-int8"), (baseline.plan, "relaxed baseline"),
             (chosen.plan, "exact (chosen)")]
    picks += [(parse_label(label, n), "check") for label in extra]
    step = max(1, math.ceil(len(front) / MAX_EXECUTED_FRONT))
    picks += [(f.plan, "exact front") for f in front[::step]]
    for plan, role in picks:
        to_run.setdefault(plan, []).append(role)
    return to_run


def _same_as_variant(plan: Sequence[int]) -> str | None:
    """The input variant a plan with at most one seam is (all-p: the prefix ``P<p>:<n>``; one seam
    at k: ``C<p><q>:<k>``); None for a plan with more seams."""
    segs = sp.segments(plan)
    if len(segs) == 1:
        return f"P{segs[0].processor}:{len(plan)}"
    if len(segs) == 2:
        return f"C{segs[0].processor}{segs[1].processor}:{segs[0].end}"
    return None


def _latency_check(plan: Sequence[int], units: Sequence[str], processors: tuple[str, str], again: sp.Prediction, first: sp.Prediction, m: Timed,
                   same: _Costs, noise: dict[str, float]) -> LatencyCheck:
    """The 10% check of one executed plan against the prediction from the same rounds, with why
    not (perflab.analysis.plan_check) from the figures of those rounds."""
    segs = sp.segments(plan)
    seams = tuple(Seam(units[b.start], processors[a.processor], processors[b.processor],
                       same.switch[b.start - 1][a.processor][b.processor],
                       same.switch_raw[b.start - 1][a.processor][b.processor]) for a, b in itertools.pairwise(segs))
    fig = LatencyFigures(again.latency_ms, again.latency_se_ms, m.median_ms, m.mad_ms, m.se_ms, len(m.samples_ms),
                         dict(noise), seams, _same_as_variant(plan), first.latency_ms)
    return judge_latency(fig)


def _executed(plan: tuple[int, ...], roles: list[str], processors: tuple[str, str], inputs: sp.PlanInputs, same_rounds: sp.PlanInputs, m: Timed,
              scores: Sequence[Score], ref: Sequence[Score], front: Sequence[sp.FrontPoint],
              hull: set[tuple[int, ...]], check: dict[str, Any]) -> dict[str, Any]:
    """One executed plan: the prediction it was chosen on, the prediction from the input variants
    timed in the same rounds as it, what was measured, the errors (against the latter) and the
    10% check."""
    pred = sp.predict(inputs, plan)
    again = sp.predict(same_rounds, plan)

    def pct(pred_ms: float) -> float | None:
        return 100.0 * (m.median_ms - pred_ms) / pred_ms if pred_ms > 0 else None

    ref_psnr = float(np.mean([v.psnr_y_db for v in ref]))
    psnr = float(np.mean([v.psnr_y_db for v in scores]))
    piqe, piqe_missing = _mean_piqe(scores)
    ref_piqe, _ = _mean_piqe(ref)
    return {
        "label": plan_label(plan), "roles": roles, "plan": list(plan),
        "processors": [processors[p] for p in plan],
        "segments": [{"start": g.start, "end": g.end, "processor": processors[g.processor]}
                     for g in sp.segments(plan)],
        "on_front": any(f.plan == plan for f in front), "on_hull": plan in hull,
        "predicted": {"latency_ms": again.latency_ms, "latency_se_ms": again.latency_se_ms,
                      "first_pass_latency_ms": pred.latency_ms, "first_pass_latency_se_ms": pred.latency_se_ms,
                      "psnr_y_db": ref_psnr - pred.loss_db, "loss_db": pred.loss_db, "loss_se_db": pred.loss_se_db},
        "measured": {"latency_ms": m.median_ms, "latency_mad_ms": m.mad_ms, "latency_se_ms": m.se_ms,
                     "latency_samples_ms": list(m.samples_ms), "psnr_y_db": psnr,
                     "ssim_y": float(np.mean([v.ssim_y for v in scores])), "loss_db": ref_psnr - psnr,
                     "piqe": piqe, "piqe_missing": piqe_missing,
                     "piqe_change": None if piqe is None or ref_piqe is None else piqe - ref_piqe},
        "error": {"latency_pct": pct(again.latency_ms), "first_pass_latency_pct": pct(pred.latency_ms),
                  "psnr_y_db": psnr - (ref_psnr - pred.loss_db),
                  "why_missing": None if again.latency_ms > 0 and pred.latency_ms > 0 else
                  "a prediction is not above 0 ms: the inputs' spread is larger than the layers (tiny frames or a "
                  "busy machine); more --rounds or a larger geometry"},
        "latency_check": check,
    }


def local_runner(maker: SegmentMaker, threads: int) -> Runner:
    return LocalRunner(maker, threads)


def plan_model(art: ModelArtifact, frames: Sequence[PlanFrame], s: PlanSettings, *, segment_root: Path | None = None,
               check: Callable[[], None] = lambda: None, progress: Progress = lambda _m: None,
               runner: Callable[[SegmentMaker, int], Runner] = local_runner) -> dict[str, Any]:
    """Measure, solve, execute and compare for one chain model (see the module); ``runner`` makes
    what runs the segments (this machine's LiteRT by default, or a phone's benchmark_model)."""
    if s.border_px is None:
        s = dataclasses.replace(s, border_px=art.scale)
    maker = SegmentMaker(art, root=segment_root, check=check)
    units = maker.units()
    n = len(units)
    for label in s.check_plans:  # bad input is said before anything is measured
        parse_label(label, n)
    x = timing_input(frames, s)
    progress(f"{art.name}: {n} units ({', '.join(units)}); building and timing segment models")
    variants = _cost_variants(n)
    for keys in variants.values():  # made (or found in the cache) before any timing
        check()
        maker.paths(list(keys))
    run = runner(maker, s.threads)
    processors = run.processors
    progress(f"  timing {len(variants)} variants at {s.lr_width}x{s.lr_height}")
    costs = _derive_costs(time_interleaved(run, [variants], x, s, check, progress, "inputs"), n)
    progress(f"{art.name}: quality sensitivity, {n} single-unit int8 plans on {len(frames)} frame(s)")
    ref, loss, loss_se, sens_rows = _measure_sensitivity(run, units, frames, s, check)
    inputs = _inputs(units, processors, costs, loss, loss_se)

    ref_psnr = float(np.mean([r.psnr_y_db for r in ref]))
    floor = s.quality_floor_db if s.quality_floor_db is not None else ref_psnr - 0.1
    budget = ref_psnr - floor
    if budget < 0:
        raise UserInputError(f"--quality-floor {floor:.2f} dB is above what all-fp32 reaches on these frames "
                             f"({ref_psnr:.2f} dB PSNR-Y): no plan can meet it")
    front = sp.pareto_front(inputs)
    chosen = sp.exact_plan(inputs, budget)
    if chosen is None:  # cannot be: all-fp32 loses nothing
        raise MeasurementError(f"{art.name}: no plan meets a loss budget of {budget:.3f} dB")
    baseline = sp.relaxed_baseline(inputs, budget)
    hull = {f.plan for f in sp.lagrangian_front(inputs)}

    to_run = _plans_to_run(n, front, chosen, baseline, s.check_plans)
    # the plans are timed in the same interleaved rounds as the input variants again: the error
    # against that prediction is the additive model's, not the machine's drift between two passes
    progress(f"{art.name}: executing {len(to_run)} plans as segment models (with the input variants again)")
    exec_plans = {plan_label(p): plan_keys(p) for p in to_run}
    for keys in exec_plans.values():
        check()
        maker.paths(list(keys))
    measured = time_interleaved(run, [variants, exec_plans], x, s, check, progress, "plans")
    same_costs = _derive_costs(measured, n)
    same_rounds = _inputs(units, processors, same_costs, loss, loss_se)
    # the noise floor: the whole model in each precision is in the same rounds twice (prefix P<p>:n
    # and the plan all-p, two interpreters of one file): what they differ by is the machine's
    noise = {processors[p]: 100.0 * (measured[plan_label((p,) * n)].median_ms - measured[f"P{p}:{n}"].median_ms)
             / measured[f"P{p}:{n}"].median_ms for p in range(2)}
    plans_out, checks = [], []
    for plan, roles in to_run.items():
        check()
        scores = _quality(run, exec_plans[plan_label(plan)], frames, s.border_px)
        m = measured[plan_label(plan)]
        latency_check = _latency_check(plan, units, processors, sp.predict(same_rounds, plan), sp.predict(inputs, plan), m,
                                       same_costs, noise)
        checks.append(latency_check)
        plans_out.append(_executed(plan, roles, processors, inputs, same_rounds, m, scores, ref, front, hull,
                                   latency_check.to_json()))
    hr_piqe, hr_piqe_missing = _mean_piqe([Score(0.0, 0.0, *_piqe(f.hr)) for f in frames])
    ref_piqe, ref_piqe_missing = _mean_piqe(ref)
    return {
        "model": art.name, "family": art.family, "scale": art.scale, "units": units, "processors": list(processors),
        "precisions": list(PRECISIONS),
        "geometry": {"lr_width": s.lr_width, "lr_height": s.lr_height},
        "settings": {"threads": s.threads, "rounds": s.rounds, "iterations": s.iterations, "warmup": s.warmup,
                     "border_px": s.border_px},
        "frames": [f.name for f in frames],
        "inputs": {
            "cost_ms": costs.cost, "cost_se_ms": costs.cost_se, "switch_ms": costs.switch,
            "switch_se_ms": costs.switch_se, "switch_raw_ms": costs.switch_raw, "loss_db": loss,
            "loss_se_db": loss_se, "sensitivity": sens_rows,
            "variants": {k: v.to_json() for k, v in costs.timed.items()},
            "method": {"timing": run.timing_method,
                       "cost": "differential over prefix segments [0,k) per precision",
                       "switch": "two-segment variants [0,k) p → [k,n) q, minus their prefixes; a negative "
                                 "difference (noise) counts as 0",
                       "loss": "PSNR-Y lost when only that unit runs int8 (median over frames)"},
        },
        "noise_floor_pct": noise,
        "reference_psnr_y_db": ref_psnr,
        # PIQE (no reference, lower is better) of all-fp32's outputs and of the HR frames themselves
        "reference_piqe": ref_piqe, "reference_piqe_missing": ref_piqe_missing,
        "hr_piqe": hr_piqe, "hr_piqe_missing": hr_piqe_missing,
        "quality_floor_db": floor, "loss_budget_db": budget,
        "front": [{"label": plan_label(f.plan), "plan": list(f.plan), "latency_ms": f.latency_ms,
                   "psnr_y_db": ref_psnr - f.loss_db, "on_hull": f.plan in hull} for f in front],
        "chosen": plan_label(chosen.plan),
        "baseline": {"label": plan_label(baseline.plan), "alpha": list(baseline.alpha), "steps": baseline.steps,
                     "meets_floor": sp.within_budget(baseline.loss_db, budget)},
        "plans": plans_out,
        "latency_check": summary(checks),
    }


def finite(obj: Any) -> Any:
    """The document with every non-finite float as None (JSON has no NaN or inf)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def plan_document(models: list[dict[str, Any]], *, scenario: str, device: str, skipped: list[dict[str, str]],
                  started: str, emulated: bool = False, device_model: str | None = None) -> dict[str, Any]:
    """The whole ``plan.json`` (non-finite numbers as null); ``emulated``: measured on an
    emulated phone (its times are the emulator's, spent on the host)."""
    doc: dict[str, Any] = finite({"schema": PLAN_SCHEMA, "scenario": scenario, "device": device, "emulated": emulated,
                   "device_model": device_model, "started": started, "models": models, "skipped": skipped})
    return doc
