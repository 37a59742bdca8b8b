"""The split planner's 10% check, judged per executed plan (issue 23): within or not, and when
not, a reason built only from the figures measured — or "unexplained" with them. Pure."""

from __future__ import annotations

import pytest

from perflab.analysis.plan_check import LatencyFigures, Seam, judge_latency, summary

QUIET = {"fp32": 1.5, "int8": -2.0}  # a noise floor well inside 10%


def _fig(pred: float, meas: float, *, pred_se: float | None = 0.01, mad: float = 0.01, meas_se: float = 0.01,
         noise: dict[str, float | None] | None = None, seams: tuple[Seam, ...] = (),
         variant: str | None = None) -> LatencyFigures:
    return LatencyFigures(pred, pred_se, meas, mad, meas_se, 5, QUIET if noise is None else noise, seams, variant)


def test_within_10pct_has_no_reason() -> None:
    c = judge_latency(_fig(2.0, 2.19))
    assert c.within_10pct is True and c.reason is None and c.error_pct == pytest.approx(9.5)
    j = c.to_json()
    assert j["predicted_ms"] == 2.0 and j["measured_ms"] == 2.19 and j["within_10pct"] is True
    assert j["threshold_pct"] == 10.0


def test_nothing_measured_explains_it_says_unexplained_with_the_figures() -> None:
    c = judge_latency(_fig(2.0, 2.5))
    assert c.within_10pct is False and c.explained is False
    assert c.reason is not None and c.reason.startswith("unexplained")
    for figure in ("2.000 ± 0.010 ms", "2.500 ms", "+25.0%", "fp32 +1.5%", "int8 -2.0%"):
        assert figure in c.reason


def test_a_noise_floor_wider_than_10pct_accounts_for_an_error_no_larger() -> None:
    c = judge_latency(_fig(2.0, 2.22, noise={"fp32": -12.4, "int8": 3.0}))  # +11%
    assert c.explained is True and c.reason is not None
    assert "noise floor" in c.reason and "fp32 -12.4%" in c.reason and "unexplained" not in c.reason
    big = judge_latency(_fig(2.0, 2.5, noise={"fp32": -12.4, "int8": 3.0}))  # +25%: more than the floor
    assert big.explained is False and big.reason is not None and big.reason.startswith("unexplained")
    assert "wider than 10%, though smaller than this +25.0%" in big.reason


def test_the_first_pass_prediction_is_given_beside_as_a_figure() -> None:
    c = judge_latency(LatencyFigures(2.0, 0.01, 1.2, 0.01, 0.01, 5, QUIET, (), None, 1.21))
    assert c.reason is not None and c.reason.startswith("unexplained")
    assert "against the first pass's prediction (1.210 ms, from the inputs timed before) it is -0.8%" in c.reason


def test_the_plans_own_spread_and_the_standard_errors_are_reasons() -> None:
    spread = judge_latency(_fig(2.0, 2.3, mad=0.3))  # 1.4826·0.3/2.3 = 19.3% ≥ +15%
    assert spread.explained is True and spread.reason is not None and "spread ±19.3%" in spread.reason
    se = judge_latency(_fig(2.0, 2.5, pred_se=0.2, meas_se=0.2))  # 0.5 ms ≤ 2·0.283 ms
    assert se.reason is not None and "within 2 standard errors" in se.reason and "2 × 0.283 ms" in se.reason
    no_se = judge_latency(_fig(2.0, 2.5, pred_se=None, meas_se=5.0))  # no propagated spread: no claim on it
    assert no_se.reason is not None and no_se.reason.startswith("unexplained")


def test_a_plan_that_is_an_input_variant_is_noise_unless_a_seam_was_floored() -> None:
    c = judge_latency(_fig(2.0, 1.7, variant="C01:2"))
    assert c.reason is not None and "input variant C01:2 itself" in c.reason
    floored = Seam("c3", "fp32", "int8", 0.0, -0.25)
    c = judge_latency(_fig(2.0, 1.7, variant="C01:2", seams=(floored,)))
    assert c.reason is not None and "C01:2" not in c.reason  # the prediction is not the variant's median then
    assert "before c3 fp32→int8 -0.250 ms" in c.reason and "by 0.250 ms; it is 0.300 ms above" in c.reason
    assert c.explained is True
    small = judge_latency(_fig(2.0, 1.4, seams=(Seam("c3", "fp32", "int8", 0.0, -0.05),)))  # 0.05 of 0.6 ms
    assert small.explained is False and small.reason is not None and "lift the prediction by 0.050 ms" in small.reason
    slower = judge_latency(_fig(2.0, 2.3, seams=(floored,)))  # the floor lifts the prediction: not this way
    assert slower.reason is not None and slower.reason.startswith("unexplained")


def test_seams_measured_outside_the_plan_are_a_fact_never_the_explanation() -> None:
    seams = (Seam("c2", "fp32", "int8", 0.2, 0.2), Seam("c3", "int8", "fp32", 0.1, 0.1))
    c = judge_latency(_fig(2.0, 2.5, seams=seams))
    assert c.reason is not None and c.reason.startswith("unexplained") and c.explained is False
    assert "its 2 seams, 0.300 ms in all, were each measured alone" in c.reason


def test_no_prediction_above_0_is_not_judged_and_the_summary_counts() -> None:
    none = judge_latency(_fig(-0.1, 1.0))
    assert none.within_10pct is None and none.error_pct is None and none.reason is not None
    assert "not judged" in none.reason
    checks = [none, judge_latency(_fig(2.0, 2.1)), judge_latency(_fig(2.0, 2.5)),
              judge_latency(_fig(2.0, 2.25, noise={"fp32": 15.0}))]
    assert summary(checks) == {"threshold_pct": 10.0, "plans": 4, "within": 1, "not_within": 2, "unexplained": 1,
                               "not_judged": 1}
