"""What every per-layer pass of a cell is given (perflab.lab.layers runs them): the options from
the scenario's ``profiling:`` block and the cell's context (its workload, model, delegate, geometry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from perflab.core.types import (
    ModelArtifact,
)
from perflab.workloads.base import Workload


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
