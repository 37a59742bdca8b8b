"""Is an executed split plan's measured latency within 10% of its prediction, and if not, why
(issue 23's "done when"). Pure: figures in, a verdict out.

A reason is only ever built from figures measured in the same pass, each named with its numbers;
it *accounts for* the error only where it is as large (marked ⊢ below), else it is given beside
"unexplained":

* the plan **is an input variant** (all-p is the prefix P_p(n); a one-seam plan is the two-segment
  variant C(k,p,q)), timed again in the same rounds under its own name — the prediction is that
  variant's median, so the error is two timings of one model differing: the machine's noise (⊢);
* the **noise floor** — the whole model timed twice in the same rounds — is wider than 10%
  (⊢ when at least as wide as the error);
* the plan's **own rounds spread** (1.4826·MAD / median) is wider than 10% (⊢ likewise);
* the error is **within two standard errors** of prediction and measurement combined (⊢);
* a **seam counted as 0** — measured negative in these rounds (noise) — lifts the prediction by
  that much, when the plan ran faster than predicted (⊢ when the lift is half the gap or more).

When none accounts for it the reason says "unexplained" with the figures. The error against the
first pass's prediction is added as a figure; that the plan's seams were measured outside it
(each alone, in a two-segment variant) as a fact, never as the explanation: how much seams
interact was not measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WITHIN_PCT = 10.0
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Seam:
    before_unit: str  # the unit the seam leads into
    from_processor: str
    to_processor: str
    cost_ms: float  # as counted in the prediction (never below 0)
    raw_ms: float  # as measured in these rounds (negative: noise)


@dataclass(frozen=True)
class LatencyFigures:
    predicted_ms: float
    predicted_se_ms: float | None  # None: the inputs had no spread to propagate
    measured_ms: float
    measured_mad_ms: float
    measured_se_ms: float
    rounds: int
    noise_floor_pct: Mapping[str, float | None]
    seams: Sequence[Seam] = ()
    same_as_variant: str | None = None  # the input variant this plan is, timed in the same rounds
    first_pass_ms: float | None = None  # the prediction the plan was chosen on (inputs timed in the first pass)


@dataclass(frozen=True)
class LatencyCheck:
    predicted_ms: float
    measured_ms: float
    error_pct: float | None
    within_10pct: bool | None  # None: not judged (no prediction above 0 ms)
    reason: str | None  # why not within (None when within)
    explained: bool | None  # a measured figure accounts for it; False: "unexplained"
    threshold_pct: float = WITHIN_PCT

    def to_json(self) -> dict[str, Any]:
        return {"predicted_ms": self.predicted_ms, "measured_ms": self.measured_ms, "error_pct": self.error_pct,
                "threshold_pct": self.threshold_pct, "within_10pct": self.within_10pct, "reason": self.reason,
                "explained": self.explained}


def _pct(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:+.1f}%"


def _noise_text(noise: Mapping[str, float | None]) -> str:
    return ", ".join(f"{k} {_pct(v)}" for k, v in noise.items()) or "not measured"


def judge_latency(f: LatencyFigures, threshold_pct: float = WITHIN_PCT) -> LatencyCheck:
    """The verdict for one executed plan (see the module for the reasons it may give)."""
    if not f.predicted_ms > 0:
        return LatencyCheck(f.predicted_ms, f.measured_ms, None, None,
                            f"not judged: the prediction is {f.predicted_ms:.3f} ms, not above 0 (the inputs' spread "
                            "is larger than the layers: tiny frames or a busy machine)", None, threshold_pct)
    delta_ms = f.measured_ms - f.predicted_ms
    err = 100.0 * delta_ms / f.predicted_ms
    if abs(err) <= threshold_pct:
        return LatencyCheck(f.predicted_ms, f.measured_ms, err, True, None, None, threshold_pct)

    # (what was measured, whether it is as large as the error: only then does it account for it)
    found: list[tuple[str, bool]] = []

    def add(text: str, accounts: bool) -> None:
        found.append((text, accounts))

    clamped = [s for s in f.seams if s.raw_ms < 0]
    if f.same_as_variant is not None and not clamped:
        add(f"the plan is the input variant {f.same_as_variant} itself, timed again in the same rounds: "
            f"its {err:+.1f}% is two timings of one model differing (the machine's noise)", True)
    noise = [abs(v) for v in f.noise_floor_pct.values() if v is not None]
    if noise and max(noise) > threshold_pct:
        big = max(noise) >= abs(err)
        add(f"the noise floor (the whole model timed twice in the same rounds) is "
            f"{_noise_text(f.noise_floor_pct)}: wider than {threshold_pct:g}%"
            + ("" if big else f", though smaller than this {err:+.1f}%"), big)
    spread_pct = 100.0 * MAD_TO_SIGMA * f.measured_mad_ms / f.measured_ms if f.measured_ms > 0 else 0.0
    if spread_pct > threshold_pct:
        big = spread_pct >= abs(err)
        add(f"its own {f.rounds} rounds spread ±{spread_pct:.1f}% (1.4826·MAD / median): wider than "
            f"{threshold_pct:g}%" + ("" if big else f", though smaller than this {err:+.1f}%"), big)
    se_ms = None if f.predicted_se_ms is None else math.hypot(f.predicted_se_ms, f.measured_se_ms)
    if se_ms is not None and abs(delta_ms) <= 2.0 * se_ms:
        add(f"the error, {delta_ms:+.3f} ms, is within 2 standard errors of prediction and measurement "
            f"combined (2 × {se_ms:.3f} ms)", True)
    lift_ms = -sum(s.raw_ms for s in clamped)
    if clamped and delta_ms < 0:
        names = ", ".join(f"before {s.before_unit} {s.from_processor}→{s.to_processor} {s.raw_ms:+.3f} ms"
                          for s in clamped)
        add(f"seams measured negative in these rounds count as 0 ({names}): they lift the prediction by "
            f"{lift_ms:.3f} ms; it is {-delta_ms:.3f} ms above the measurement",
            lift_ms >= 0.5 * -delta_ms)
    explained = any(big for _, big in found)
    facts = "; ".join(text for text, _ in found)
    if explained:
        reason = facts
    else:
        pm = "" if f.predicted_se_ms is None else f" ± {f.predicted_se_ms:.3f}"
        reason = (f"unexplained: predicted {f.predicted_ms:.3f}{pm} ms, measured {f.measured_ms:.3f} ms (MAD "
                  f"{f.measured_mad_ms:.3f} ms over {f.rounds} rounds), {err:+.1f}%; noise floor "
                  f"{_noise_text(f.noise_floor_pct)}, own rounds spread ±{spread_pct:.1f}%"
                  + (f"; {facts}" if facts else ""))
    if f.first_pass_ms is not None and f.first_pass_ms > 0:
        first = 100.0 * (f.measured_ms - f.first_pass_ms) / f.first_pass_ms
        reason += (f"; against the first pass's prediction ({f.first_pass_ms:.3f} ms, from the inputs timed before) "
                   f"it is {first:+.1f}%")
    if len(f.seams) >= 2:
        reason += (f" (its {len(f.seams)} seams, {sum(s.cost_ms for s in f.seams):.3f} ms in all, were each "
                   "measured alone in a two-segment variant, never together in this plan)")
    return LatencyCheck(f.predicted_ms, f.measured_ms, err, False, reason, explained, threshold_pct)


def summary(checks: Sequence[LatencyCheck], threshold_pct: float = WITHIN_PCT) -> dict[str, Any]:
    """How many executed plans are within the threshold, not within (explained or not), not judged."""
    judged = [c for c in checks if c.within_10pct is not None]
    return {"threshold_pct": threshold_pct, "plans": len(checks),
            "within": sum(1 for c in judged if c.within_10pct),
            "not_within": sum(1 for c in judged if not c.within_10pct),
            "unexplained": sum(1 for c in judged if not c.within_10pct and c.explained is False),
            "not_judged": len(checks) - len(judged)}
