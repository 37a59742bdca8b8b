"""The split planner's solvers (issue 23): which unit of a chain runs on which processor. Pure.

A model is a chain of units 0..n−1 (ESPCN's convs and tail, FSRCNN's layers). Each unit runs on
one of P processors (on ``local``: the CPU's fp32 and int8 paths; on phones: GPU and NPU). The
additive model of FYE-SR (MobiCom 2024):

    T(plan) = Σᵢ cost[i][pᵢ] + Σₖ switch[k][pₖ₋₁][pₖ]        (k = 1..n−1, 0 when pₖ₋₁ = pₖ)
    L(plan) = Σᵢ loss[i][pᵢ]                                  (the quality proxy: dB of PSNR-Y lost)

Three solvers on the same :class:`PlanInputs`:

* :func:`pareto_front` — exact: dynamic programming over units with "processor of the current
  unit" as state, each state keeping its non-dominated (latency, loss) labels; the result is
  every Pareto-optimal plan, supported or not. :func:`exact_plan` picks the fastest plan whose
  proxy loss is within a budget from it.
* :func:`lagrangian_front` — the classic Lagrangian form: for a multiplier λ the plain DP over
  (unit, processor) minimises T + λ·L; sweeping λ over the breakpoints gives the supported
  points of the front (its convex hull). Kept because it is the textbook method and cheap
  (O(n·P²) per λ); the exact front is a superset of it (tested).
* :func:`relaxed_baseline` — FYE-SR's method for two processors: a ∈ [0,1]ⁿ (share of unit i
  on processor 1), T and L relaxed to polynomials in a, projected gradient descent on
  T + μ·max(0, L − budget)², a rounded at 0.5.

:func:`brute_force` enumerates all Pⁿ plans (tests and tiny chains only).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from perflab.errors import UserInputError

Plan = tuple[int, ...]  # processor index per unit

_EPS = 1e-12  # ties in sums of measured numbers


@dataclass(frozen=True)
class PlanInputs:
    """Measured (or emulated) inputs of a chain; index order [unit][processor],
    switch [boundary k−1][from][to] for the boundary before unit k (k = 1..n−1)."""

    units: tuple[str, ...]
    processors: tuple[str, ...]
    cost_ms: tuple[tuple[float, ...], ...]
    switch_ms: tuple[tuple[tuple[float, ...], ...], ...]
    loss_db: tuple[tuple[float, ...], ...]
    cost_se_ms: tuple[tuple[float, ...], ...] | None = None
    switch_se_ms: tuple[tuple[tuple[float, ...], ...], ...] | None = None
    loss_se_db: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        n, p = len(self.units), len(self.processors)
        if n < 1 or p < 1:
            raise UserInputError("a plan needs at least one unit and one processor")

        def grid(name: str, g: Sequence[Sequence[float]] | None) -> None:
            if g is None:
                return
            if len(g) != n or any(len(row) != p for row in g):
                raise UserInputError(f"plan inputs: {name} must be {n} units × {p} processors")
            if not all(math.isfinite(x) for row in g for x in row):
                raise UserInputError(f"plan inputs: {name} has a non-finite value")

        def seams(name: str, g: Sequence[Sequence[Sequence[float]]] | None) -> None:
            if g is None:
                return
            if len(g) != n - 1 or any(len(m) != p or any(len(r) != p for r in m) for m in g):
                raise UserInputError(f"plan inputs: {name} must be {n - 1} boundaries × {p} × {p}")
            if not all(math.isfinite(x) for m in g for r in m for x in r):
                raise UserInputError(f"plan inputs: {name} has a non-finite value")

        grid("cost_ms", self.cost_ms)
        grid("loss_db", self.loss_db)
        grid("cost_se_ms", self.cost_se_ms)
        grid("loss_se_db", self.loss_se_db)
        seams("switch_ms", self.switch_ms)
        seams("switch_se_ms", self.switch_se_ms)

    @property
    def n(self) -> int:
        return len(self.units)

    def switch(self, k: int, a: int, b: int) -> float:
        """Cost of the boundary before unit k (k ≥ 1) from processor a to b (0 when a == b)."""
        return 0.0 if a == b else self.switch_ms[k - 1][a][b]


@dataclass(frozen=True)
class Prediction:
    latency_ms: float
    latency_se_ms: float | None
    loss_db: float
    loss_se_db: float | None


@dataclass(frozen=True)
class Segment:
    start: int  # first unit
    end: int  # one past the last unit
    processor: int


def check_plan(inputs: PlanInputs, plan: Sequence[int]) -> Plan:
    if len(plan) != inputs.n or any(not 0 <= p < len(inputs.processors) for p in plan):
        raise UserInputError(f"a plan must give one of {len(inputs.processors)} processors for each of "
                             f"{inputs.n} units, got {list(plan)}")
    return tuple(int(p) for p in plan)


def latency_ms(inputs: PlanInputs, plan: Sequence[int]) -> float:
    plan = check_plan(inputs, plan)
    t = sum(inputs.cost_ms[i][p] for i, p in enumerate(plan))
    return t + sum(inputs.switch(k, plan[k - 1], plan[k]) for k in range(1, inputs.n))


def loss_db(inputs: PlanInputs, plan: Sequence[int]) -> float:
    plan = check_plan(inputs, plan)
    return sum(inputs.loss_db[i][p] for i, p in enumerate(plan))


def predict(inputs: PlanInputs, plan: Sequence[int]) -> Prediction:
    """The model's latency and loss of a plan, with standard errors where the inputs have them
    (independent errors: root of the summed squares)."""
    plan = check_plan(inputs, plan)
    lat_se: float | None = None
    if inputs.cost_se_ms is not None and inputs.switch_se_ms is not None:
        var = sum(inputs.cost_se_ms[i][p] ** 2 for i, p in enumerate(plan))
        var += sum(inputs.switch_se_ms[k - 1][plan[k - 1]][plan[k]] ** 2
                   for k in range(1, inputs.n) if plan[k - 1] != plan[k])
        lat_se = math.sqrt(var)
    loss_se: float | None = None
    if inputs.loss_se_db is not None:
        loss_se = math.sqrt(sum(inputs.loss_se_db[i][p] ** 2 for i, p in enumerate(plan)))
    return Prediction(latency_ms=latency_ms(inputs, plan), latency_se_ms=lat_se,
                      loss_db=loss_db(inputs, plan), loss_se_db=loss_se)


def segments(plan: Sequence[int]) -> list[Segment]:
    """The plan's maximal runs of units on one processor (each becomes one segment model)."""
    out: list[Segment] = []
    for i, p in enumerate(plan):
        if out and out[-1].processor == p:
            out[-1] = Segment(out[-1].start, i + 1, p)
        else:
            out.append(Segment(i, i + 1, int(p)))
    return out


# --------------------------------------------------------------------------- exact: Pareto DP


@dataclass(frozen=True)
class FrontPoint:
    plan: Plan
    latency_ms: float
    loss_db: float


def _prune(labels: list[FrontPoint]) -> list[FrontPoint]:
    """Non-dominated labels, by latency then loss (ties: the lexicographically smaller plan)."""
    out: list[FrontPoint] = []
    for lab in sorted(labels, key=lambda x: (x.latency_ms, x.loss_db, x.plan)):
        if out and lab.loss_db >= out[-1].loss_db - _EPS:
            continue
        out.append(lab)
    return out


def pareto_front(inputs: PlanInputs) -> list[FrontPoint]:
    """Every Pareto-optimal plan (latency ↑, loss ↓ along the list), exactly.

    State after unit i: the processor of unit i; each state keeps the non-dominated
    (latency, loss) labels of the prefixes ending there. A dominated prefix cannot be part of
    a Pareto-optimal plan (the rest of the chain adds the same to both), so pruning is exact.
    """
    n, procs = inputs.n, range(len(inputs.processors))
    state: list[list[FrontPoint]] = [[FrontPoint((p,), inputs.cost_ms[0][p], inputs.loss_db[0][p])] for p in procs]
    for i in range(1, n):
        nxt: list[list[FrontPoint]] = []
        for q in procs:
            labels = [FrontPoint((*lab.plan, q), lab.latency_ms + inputs.switch(i, p, q) + inputs.cost_ms[i][q],
                                 lab.loss_db + inputs.loss_db[i][q])
                      for p in procs for lab in state[p]]
            nxt.append(_prune(labels))
        state = nxt
    return _prune([lab for s in state for lab in s])


def within_budget(loss_db: float, max_loss_db: float | None) -> bool:
    """The one rule for "this plan's proxy loss meets the budget" (None: no budget), ties of
    sums of measured numbers included — the exact solver's and the baseline's verdicts alike."""
    return max_loss_db is None or loss_db <= max_loss_db + _EPS


def exact_plan(inputs: PlanInputs, max_loss_db: float | None = None) -> FrontPoint | None:
    """The fastest plan whose proxy loss is at most ``max_loss_db`` (None: no budget); None when
    no plan meets the budget."""
    front = pareto_front(inputs)
    ok = [f for f in front if within_budget(f.loss_db, max_loss_db)]
    return min(ok, key=lambda f: (f.latency_ms, f.loss_db)) if ok else None


# --------------------------------------------------------------------------- Lagrangian DP


def lagrangian_plan(inputs: PlanInputs, lam: float) -> FrontPoint:
    """argmin over plans of T + λ·L by the plain DP over (unit, processor)."""
    n, procs = inputs.n, range(len(inputs.processors))
    best: list[tuple[float, Plan]] = [(inputs.cost_ms[0][p] + lam * inputs.loss_db[0][p], (p,)) for p in procs]
    for i in range(1, n):
        best = [min(((best[p][0] + inputs.switch(i, p, q) + inputs.cost_ms[i][q] + lam * inputs.loss_db[i][q],
                      (*best[p][1], q)) for p in procs), key=lambda x: (x[0], x[1])) for q in procs]
    _, plan = min(best, key=lambda x: (x[0], x[1]))
    return FrontPoint(plan, latency_ms(inputs, plan), loss_db(inputs, plan))


def lagrangian_front(inputs: PlanInputs, max_steps: int = 200) -> list[FrontPoint]:
    """The supported Pareto points: λ = 0 (fastest) and λ large (least loss), then the
    breakpoint λ between each pair of neighbours found, recursively (Eisner–Severance)."""
    scale = sum(abs(x) for row in inputs.cost_ms for x in row) + sum(abs(x) for m in inputs.switch_ms for r in m for x in r)
    big = 1e6 * (scale + 1.0) / max(_EPS, min((abs(x) for row in inputs.loss_db for x in row if abs(x) > _EPS),
                                              default=1.0))
    lo, hi = lagrangian_plan(inputs, 0.0), lagrangian_plan(inputs, big)
    # the fastest plan with the least loss, and the least-loss plan with the least latency
    points = {lo.plan: lo, hi.plan: hi}
    stack = [(lo, hi)]
    steps = 0
    while stack and steps < max_steps:
        a, b = stack.pop()
        steps += 1
        if a.loss_db - b.loss_db <= _EPS:
            continue
        lam = (b.latency_ms - a.latency_ms) / (a.loss_db - b.loss_db)
        c = lagrangian_plan(inputs, lam)
        val_c = c.latency_ms + lam * c.loss_db
        if val_c < a.latency_ms + lam * a.loss_db - 1e-9 and c.plan not in points:
            points[c.plan] = c
            stack.extend([(a, c), (c, b)])
    return _prune(list(points.values()))


# --------------------------------------------------------------------------- FYE-SR relaxed baseline


@dataclass(frozen=True)
class RelaxedResult:
    plan: Plan
    alpha: tuple[float, ...]  # the relaxed shares on processor 1 before rounding
    latency_ms: float
    loss_db: float
    steps: int


def relaxed_baseline(inputs: PlanInputs, max_loss_db: float | None = None, *, penalty: float = 100.0,
                     steps: int = 2000, lr: float | None = None) -> RelaxedResult:
    """FYE-SR's relaxed-gradient split for two processors (0 and 1), on the same inputs.

    a ∈ [0,1]ⁿ (FYE-SR's alpha) is unit i's share on processor 1:
    T(a) = Σ aᵢ cᵢ¹ + (1−aᵢ) cᵢ⁰ + Σₖ aₖ₋₁(1−aₖ) sₖ¹⁰ + (1−aₖ₋₁)aₖ sₖ⁰¹,
    L(a) = Σ aᵢ lᵢ¹ + (1−aᵢ) lᵢ⁰; projected gradient descent on T + μ·max(0, L − budget)²
    from a = ½, then aᵢ ≥ ½ → processor 1. Deterministic. (FYE-SR learns a network for the
    quality term; here the same additive proxy the exact solver uses stands in for it.)
    """
    if len(inputs.processors) != 2:
        raise UserInputError("the relaxed baseline splits between exactly two processors")
    n = inputs.n
    c0 = [inputs.cost_ms[i][0] for i in range(n)]
    c1 = [inputs.cost_ms[i][1] for i in range(n)]
    l0 = [inputs.loss_db[i][0] for i in range(n)]
    l1 = [inputs.loss_db[i][1] for i in range(n)]
    s01 = [0.0] + [inputs.switch_ms[k - 1][0][1] for k in range(1, n)]
    s10 = [0.0] + [inputs.switch_ms[k - 1][1][0] for k in range(1, n)]
    mag = max([abs(x) for x in c0 + c1 + s01 + s10] + [_EPS])
    lmag = max([abs(x) for x in l0 + l1] + [_EPS])
    mu = penalty * mag / (lmag * lmag)  # scale-free: the penalty weighs like the latency terms
    step = lr if lr is not None else 0.5 / (mag + mu * lmag * lmag * n)
    a = [0.5] * n
    for _ in range(steps):
        grad = [c1[i] - c0[i] for i in range(n)]
        for k in range(1, n):  # seam terms
            grad[k - 1] += (1 - a[k]) * s10[k] - a[k] * s01[k]
            grad[k] += -a[k - 1] * s10[k] + (1 - a[k - 1]) * s01[k]
        if max_loss_db is not None:
            over = sum(a[i] * l1[i] + (1 - a[i]) * l0[i] for i in range(n)) - max_loss_db
            if over > 0:
                for i in range(n):
                    grad[i] += 2 * mu * over * (l1[i] - l0[i])
        a = [min(1.0, max(0.0, a[i] - step * grad[i])) for i in range(n)]
    plan = tuple(1 if x >= 0.5 else 0 for x in a)
    return RelaxedResult(plan=plan, alpha=tuple(a), latency_ms=latency_ms(inputs, plan),
                         loss_db=loss_db(inputs, plan), steps=steps)


def brute_force(inputs: PlanInputs, max_loss_db: float | None = None) -> FrontPoint | None:
    """The fastest plan within the budget by enumerating all Pⁿ plans (small chains only)."""
    best: FrontPoint | None = None
    for plan in itertools.product(range(len(inputs.processors)), repeat=inputs.n):
        t, lo = latency_ms(inputs, plan), loss_db(inputs, plan)
        if max_loss_db is not None and lo > max_loss_db + _EPS:
            continue
        if best is None or (t, lo) < (best.latency_ms, best.loss_db):
            best = FrontPoint(tuple(plan), t, lo)
    return best
