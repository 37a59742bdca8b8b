"""A series' timing as its stored record (pure): raw samples summarised, else the device tool's
own summary with what it cannot give missing."""

from __future__ import annotations

from typing import Any

import numpy as np

from perflab.analysis.stats import summarize
from perflab.core.types import TimingResult
from perflab.store.results import LatencyRecord


def latency_record(t: TimingResult, fps: float | None) -> LatencyRecord:
    """TimingResult → LatencyRecord; raw samples when present, else the tool's summary."""
    missing = dict(t.missing)
    warm = float(np.mean(t.warmup_ms)) if t.warmup_ms else t.warmup_mean_ms
    base: dict[str, Any] = {"mode": t.mode.value, "fps_target": fps, "init": t.init_ms, "first": t.first_ms,
                            "warmup_mean": warm}
    if t.samples_ms:
        s = summarize(t.samples_ms)
        return LatencyRecord(
            **base, source=f"raw samples: {t.samples_source}" if t.samples_source else "raw samples",
            median=s.median_ms, mean=s.mean_ms, p10=s.p10_ms, p90=s.p90_ms, p95=s.p95_ms, p99=s.p99_ms, min=s.min_ms,
            max=s.max_ms, std=s.std_ms, mad=s.mad_ms, cv_pct=s.cv_pct, n=s.n,
            missing={k: v for k, v in missing.items() if k in ("init", "first", "warmup_mean")},
        )
    if t.summary is not None:
        sm = t.summary
        why = "the device tool reports only count/avg/std/min/max, not raw per-run samples"
        for k in ("median", "p90", "p95", "p99", "mad"):
            missing.setdefault(k, why)
        cv = (sm.std_ms / sm.mean_ms * 100.0) if sm.std_ms is not None and sm.mean_ms > 0 else None
        return LatencyRecord(**base, source="tool summary", mean=sm.mean_ms, std=sm.std_ms, min=sm.min_ms,
                             max=sm.max_ms, cv_pct=cv, n=sm.count, missing=missing)
    missing.setdefault("median", "no timing samples were produced")
    return LatencyRecord(**base, source="none", n=0, missing=missing)
