"""The split planner's solvers (perflab.analysis.split_plan): the exact DP against brute force
and against FYE-SR's relaxed-gradient baseline, on random chains."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflab.analysis import split_plan as sp
from perflab.errors import UserInputError

# on a µs / µdB grid, as measured numbers are: a cost of 1e-12 ms is below the 1e-12 tie tolerance
# of the front checks, and hypothesis found one the solver (rightly) counts as faster
_ms = st.floats(min_value=0.0, max_value=20.0, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 6))
_db = st.floats(min_value=0.0, max_value=3.0, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 6))


@st.composite
def chains(draw: st.DrawFn, max_units: int = 7, procs: int = 2) -> sp.PlanInputs:
    n = draw(st.integers(min_value=1, max_value=max_units))
    cost = tuple(tuple(draw(_ms) for _ in range(procs)) for _ in range(n))
    loss = tuple((0.0, *(draw(_db) for _ in range(procs - 1))) for _ in range(n))
    switch = tuple(tuple(tuple(0.0 if a == b else draw(_ms) for b in range(procs)) for a in range(procs))
                   for _ in range(n - 1))
    return sp.PlanInputs(units=tuple(f"u{i}" for i in range(n)), processors=tuple(f"p{j}" for j in range(procs)),
                         cost_ms=cost, switch_ms=switch, loss_db=loss)


@settings(max_examples=150, deadline=None)
@given(chains(), st.one_of(st.none(), _db))
def test_exact_equals_brute_force_and_beats_the_relaxed_baseline(inp: sp.PlanInputs, budget: float | None) -> None:
    exact = sp.exact_plan(inp, budget)
    brute = sp.brute_force(inp, budget)
    assert exact is not None and brute is not None  # all-p0 loses nothing: always feasible
    assert exact.latency_ms == pytest.approx(brute.latency_ms, abs=1e-9)
    assert exact.loss_db <= (budget if budget is not None else float("inf")) + 1e-9
    assert sp.latency_ms(inp, exact.plan) == pytest.approx(exact.latency_ms)
    base = sp.relaxed_baseline(inp, budget)
    if budget is None or base.loss_db <= budget + 1e-9:
        assert exact.latency_ms <= base.latency_ms + 1e-9


@settings(max_examples=100, deadline=None)
@given(chains(max_units=6, procs=3))
def test_front_is_every_pareto_point_and_holds_the_lagrangian_hull(inp: sp.PlanInputs) -> None:
    import itertools

    every = [(sp.latency_ms(inp, p), sp.loss_db(inp, p)) for p in itertools.product(range(3), repeat=inp.n)]
    front = sp.pareto_front(inp)
    for f in front:  # nothing dominates a front point
        assert not any((t < f.latency_ms - 1e-12 and lo <= f.loss_db + 1e-12) or
                       (t <= f.latency_ms + 1e-12 and lo < f.loss_db - 1e-12) for t, lo in every)
    for t, lo in every:  # every plan is weakly dominated by some front point
        assert any(f.latency_ms <= t + 1e-9 and f.loss_db <= lo + 1e-9 for f in front)
    for h in sp.lagrangian_front(inp):
        assert any(abs(f.latency_ms - h.latency_ms) < 1e-9 and abs(f.loss_db - h.loss_db) < 1e-9 for f in front)


def test_a_seam_too_dear_keeps_the_chain_on_one_processor() -> None:
    inp = sp.PlanInputs(units=("c1", "c2", "c3"), processors=("fp32", "int8"),
                        cost_ms=((3.0, 1.0), (3.0, 1.0), (3.0, 1.0)),
                        switch_ms=(((0.0, 5.0), (5.0, 0.0)),) * 2,
                        loss_db=((0.0, 0.1), (0.0, 2.0), (0.0, 0.1)))
    # within 0.5 dB: c2 must stay fp32; int8 around it pays two seams (10 ms) to save 4 ms
    assert sp.exact_plan(inp, 0.5) == sp.FrontPoint((0, 0, 0), 9.0, 0.0)
    assert sp.exact_plan(inp, None) == sp.FrontPoint((1, 1, 1), 3.0, 2.2)
    assert sp.segments((0, 1, 1, 0)) == [sp.Segment(0, 1, 0), sp.Segment(1, 3, 1), sp.Segment(3, 4, 0)]
    pred = sp.predict(inp, (1, 1, 1))
    assert pred.latency_se_ms is None and pred.latency_ms == 3.0


def test_malformed_inputs_are_user_errors() -> None:
    with pytest.raises(UserInputError, match="cost_ms"):
        sp.PlanInputs(units=("a", "b"), processors=("x", "y"), cost_ms=((1.0, 2.0),),
                      switch_ms=(((0.0, 1.0), (1.0, 0.0)),), loss_db=((0.0, 0.0), (0.0, 0.0)))
    inp = sp.PlanInputs(units=("a",), processors=("x", "y"), cost_ms=((1.0, 2.0),), switch_ms=(),
                        loss_db=((0.0, 0.0),))
    with pytest.raises(UserInputError, match="plan"):
        sp.latency_ms(inp, (2,))
