"""Throttling judged on a sustained run's part timeline (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from perflab.store.results import SustainedPart, WarningRecord


class ThrottleThresholds(Protocol):
    """The scenario's ``sustained:`` thresholds (perflab.scenario.schema.Sustained has them)."""

    @property
    def latency_drift_pct(self) -> float: ...

    @property
    def freq_drop_pct(self) -> float: ...


def _early_late(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Means of the first and the last fifth (at least one part each) of the known values."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None, None
    k = max(1, len(known) // 5)
    return float(np.mean(known[:k])), float(np.mean(known[-k:]))


def throttle_analysis(parts: Sequence[SustainedPart], cfg: ThrottleThresholds) -> tuple[dict[str, Any], dict[str, str],
                                                                                list[WarningRecord]]:
    """Throttling from the part timeline (pure): a CPU or GPU clock that drops more than
    ``freq_drop_pct`` below its early level while the load stays (late busy ≥ 80% of early),
    or a late latency more than ``latency_drift_pct`` above the early one."""
    out: dict[str, Any] = {}
    missing: dict[str, str] = {}
    warnings: list[WarningRecord] = []
    lat_e, lat_l = _early_late([p.latency_mean_ms for p in parts])
    out.update(latency_early_ms=lat_e, latency_late_ms=lat_l)
    drift = None if lat_e is None or lat_l is None or lat_e <= 0 else (lat_l - lat_e) / lat_e * 100.0
    out["latency_drift_pct"] = drift
    if drift is None:
        missing["latency_drift_pct"] = "fewer than two parts with a latency"
    verdicts: list[bool] = []
    if drift is not None:
        verdicts.append(drift > cfg.latency_drift_pct)
        if drift > cfg.latency_drift_pct:
            warnings.append(WarningRecord(code="latency_drift", message=(
                f"sustained: latency went from {lat_e:.2f} ms early to {lat_l:.2f} ms late (+{drift:.1f}%, "
                f"threshold {cfg.latency_drift_pct:g}%): the device slows down under sustained load")))
    for name, freq_key, busy_key in (("CPU", "cpu_freq_mhz", "device_cpu_busy_pct"),
                                     ("GPU", "gpu_freq_mhz", "gpu_busy_pct")):
        f_e, f_l = _early_late([getattr(p, freq_key) for p in parts])
        out[f"{freq_key.split('_')[0]}_freq_early_mhz"], out[f"{freq_key.split('_')[0]}_freq_late_mhz"] = f_e, f_l
        if f_e is None or f_l is None or f_e <= 0:
            missing[f"{name.lower()}_freq"] = f"no {name} clock timeline (the device sampler gave none)"
            continue
        b_e, b_l = _early_late([getattr(p, busy_key) for p in parts])
        load_stays = b_e is None or b_l is None or b_l >= 0.8 * b_e
        drop = (f_e - f_l) / f_e * 100.0
        capped = drop > cfg.freq_drop_pct and load_stays
        verdicts.append(capped)
        if capped:
            load = "" if b_e is None or b_l is None else f" while its load stayed ({b_e:.0f}% → {b_l:.0f}% busy)"
            warnings.append(WarningRecord(code="throttling", message=(
                f"sustained: the {name} clock fell from {f_e:.0f} MHz early to {f_l:.0f} MHz late (−{drop:.1f}%, "
                f"threshold {cfg.freq_drop_pct:g}%){load}: thermal throttling")))
    temps = [p.temp_c for p in parts if p.temp_c is not None]
    if temps:
        out.update(temp_end_c=temps[-1], temp_max_c=max(temps))
    else:
        missing["temp_c"] = "no temperature was read during the sustained run"
    out["throttled"] = any(verdicts) if verdicts else None
    if not verdicts:
        missing["throttled"] = "neither latency nor clocks could be compared early vs late"
    return out, missing, warnings
