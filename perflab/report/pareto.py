"""Pareto front of cost-versus-quality points, and the run report's table of it. Pure functions, no I/O.

A point is (cost, value): lower cost is better (latency in ms, model size in bytes), higher value is
better (PSNR-Y in dB). A point is on the front when no other point is at least as good on both axes
and strictly better on one. Equal points are all kept: neither dominates the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from perflab.report.view_common import cell_label, device_name, is_emulated
from perflab.store.results import CellRecord


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when ``a`` is at least as good as ``b`` on both axes and strictly better on one."""
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices (into ``points``) of the non-dominated points, ordered by cost, then by value descending.

    Raises ValueError for a non-finite coordinate: a missing number must be left out by the caller,
    never plotted as 0 or infinity.
    """
    for i, (x, y) in enumerate(points):
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"point {i} is not finite: ({x}, {y})")
    front = [
        i for i, p in enumerate(points) if not any(dominates(q, p) for j, q in enumerate(points) if j != i)
    ]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1], i))


@dataclass
class ParetoRow:
    device: str
    label: str
    delegate: str
    cost: str
    psnr: str
    baseline: bool
    emulated: bool


def pareto_rows(
    points: list[tuple[CellRecord, float, float]], cost_fmt: Callable[[CellRecord, float], str]
) -> list[ParetoRow]:
    """Pareto-optimal cells per device (cost lower, PSNR-Y higher), in device then cost order."""
    out = []
    serials = list(dict.fromkeys(c.device.serial for c, _, _ in points))
    for s in serials:
        pts = [(c, x, y) for c, x, y in points if c.device.serial == s]
        for i in pareto_front([(x, y) for _, x, y in pts]):
            c, x, y = pts[i]
            out.append(ParetoRow(device_name(c.device), cell_label(c), c.delegate, cost_fmt(c, x), f"{y:.2f}",
                                 c.baseline, is_emulated(c)))
    return out
