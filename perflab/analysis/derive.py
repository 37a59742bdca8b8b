"""Derived values of a run, one rule each: baseline pairing, deltas, the real-time verdict and
the MAI 2021 score. Pure functions over plain values; ``perflab.rules.derive`` applies them to
stored records once, at the end of a run, and the report only renders what they produced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from perflab.core.units import hz_to_period_ms
from perflab.errors import MeasurementError

MAI2021_C = 1.0
"""Normalisation constant C of the MAI 2021 score. See docs/quality.md: the challenge report
defines ``score = 2^(2·PSNR) / (C · runtime)`` with C a constant normalisation factor; it
cancels in every comparison (ratio or ranking) of two scores, so perflab uses C = 1 and the
runtime in milliseconds."""


def mai2021_score(psnr_db: float, runtime_ms: float, c: float = MAI2021_C) -> float:
    """Mobile AI 2021 SR challenge score ``2^(2·PSNR) / (C · runtime_ms)``.

    +0.5 dB PSNR doubles the score, as does halving the runtime.
    """
    if not math.isfinite(psnr_db):
        raise MeasurementError(f"MAI 2021 score needs a finite PSNR, got {psnr_db}")
    if not runtime_ms > 0.0 or not math.isfinite(runtime_ms):
        raise MeasurementError(f"MAI 2021 score needs a positive runtime, got {runtime_ms} ms")
    if not c > 0.0:
        raise MeasurementError(f"MAI 2021 constant C must be positive, got {c}")
    return float(2.0 ** (2.0 * psnr_db) / (c * runtime_ms))


def diff(a: float | None, b: float | None) -> float | None:
    """``a − b``, or None when either is missing."""
    return None if a is None or b is None else a - b


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing or ``b`` is not positive."""
    return None if a is None or b is None or not b > 0 else a / b


@dataclass(frozen=True)
class PairKey:
    """What pairing looks at: a cell's device and delegate, and whether it is the baseline."""

    device: str
    delegate: str
    baseline: bool


def pair_baselines(keys: Sequence[PairKey]) -> dict[int, int]:
    """Index of each non-baseline cell → index of its baseline cell: the baseline on the same
    device and delegate. A cell with no such baseline is absent. One rule, whatever the cells'
    status: whether a delta can be computed is decided by the values, not by the pairing."""
    base = {(k.device, k.delegate): i for i, k in enumerate(keys) if k.baseline}
    out: dict[int, int] = {}
    for i, k in enumerate(keys):
        j = base.get((k.device, k.delegate))
        if not k.baseline and j is not None:
            out[i] = j
    return out


HEADLINE_STATISTIC = "p90"
FALLBACK_STATISTIC = "mean"
ORDER_STATISTICS = ("median", "p10", "p90", "p95", "p99", "mad")


@dataclass(frozen=True)
class HeadlineLatency:
    """The one latency a cell is shown, ranked and judged by: its p90 where per-run samples were
    measured, else the tool's mean, and which of the two it is."""

    value_ms: float | None
    statistic: str | None  # "p90" or "mean"; None when no latency was measured
    missing: str | None = None  # why there is no value

    @property
    def is_mean(self) -> bool:
        return self.statistic == FALLBACK_STATISTIC


def headline_latency(p90_ms: float | None, mean_ms: float | None) -> HeadlineLatency:
    """One rule for every view (report, verdict, matrix, compare, dashboard, JUnit): p90 where
    raw samples were measured, else the mean, named "mean" (pure)."""
    if p90_ms is not None:
        return HeadlineLatency(p90_ms, HEADLINE_STATISTIC)
    if mean_ms is not None:
        return HeadlineLatency(mean_ms, FALLBACK_STATISTIC)
    return HeadlineLatency(None, None, "no latency was measured")


def latency_stand_in(statistic: str) -> str | None:
    """The statistic that stands in for ``statistic`` on a series without per-run samples (a
    tool's summary): the mean for an order statistic (median, p90 …), else none (pure). Where it
    stands in, it is shown as the mean, never under the order statistic's name."""
    return FALLBACK_STATISTIC if statistic in ORDER_STATISTICS else None


@dataclass(frozen=True)
class Verdict:
    """Whether a series fits the frame budget, and by which rule."""

    meets: bool | None
    statistic: str | None  # "p90" or "mean"
    value_ms: float | None
    budget_ms: float | None
    rule: str
    missing: str | None = None


REALTIME_RULE_P90 = "p90 latency ≤ frame budget (1000/fps ms)"
REALTIME_RULE_MEAN = ("mean latency ≤ frame budget (1000/fps ms): only mean and std were reported "
                      "(no per-run samples, so no p90) — a weaker test")


def realtime_verdict(fps: float | None, p90_ms: float | None, mean_ms: float | None,
                     why_no_p90: str | None = None) -> Verdict:
    """The headline latency (:func:`headline_latency`) within 1000/fps ms; where it is the mean,
    the rule says so, and why there is no p90 when given (e.g. the phone could not be traced)."""
    if not fps:
        return Verdict(None, None, None, None, REALTIME_RULE_P90, "the scenario is not paced (no fps)")
    budget = hz_to_period_ms(fps)
    h = headline_latency(p90_ms, mean_ms)
    if h.value_ms is None:
        return Verdict(None, None, None, budget, REALTIME_RULE_P90, h.missing)
    rule = REALTIME_RULE_P90
    if h.is_mean:
        rule = REALTIME_RULE_MEAN + (f"; no p90 because {why_no_p90}" if why_no_p90 else "")
    return Verdict(h.value_ms <= budget, h.statistic, h.value_ms, budget, rule)


def frame_deltas(
    cell: dict[str, tuple[float | None, float | None]], base: dict[str, tuple[float | None, float | None]]
) -> dict[str, tuple[float | None, float | None]]:
    """Per frame name: (ΔPSNR-Y dB, ΔSSIM-Y) of a cell minus its baseline on the same frame."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, (psnr, ssim) in cell.items():
        if name in base:
            bp, bs = base[name]
            out[name] = (diff(psnr, bp), diff(ssim, bs))
    return out
