"""results.json records for tests, built one way: cells, runs and run folders.

The store, dashboard, compare, matrix and property tests build the same records with different
numbers; each says only what differs (a cell id ``model.variant.delegate`` gives the model record,
its name ``bicubic…`` makes it the baseline, a latency comes from a median or from samples).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perflab.store.results import (
    CellRecord,
    CellStatus,
    DeviceRecord,
    LatencyRecord,
    ModelRecord,
    ProvenanceRecord,
    QualityRecord,
    RunRecord,
    ScenarioRecord,
    TelemetryRecord,
)
from perflab.store.runfolder import RunFolder

#: the nightly history's scenario (store, dashboard, compare tests)
LIGHT = ScenarioRecord(name="light", file="light.yaml", sha256="a" * 64, text="x", lr_width=8, lr_height=8, scale=2,
                       fps=30.0)
#: the smallest scenario a run needs (round-trip and property tests)
SMALL = ScenarioRecord(name="s", file="s.yaml", sha256="0" * 64, text="x", lr_width=8, lr_height=8, scale=2, fps=30.0)
LOCAL = DeviceRecord(serial="local", kind="local", model="m")
STARTED_UTC = "2026-11-23T00:00:00+00:00"


def emulated_device(serial: str, model: str | None = None, **fields: Any) -> DeviceRecord:
    return DeviceRecord(serial=serial, kind="emulated", model=model or f"Phone {serial}", **fields)


def latency(median_ms: float, *, n: int = 10, p90_ms: float | None = None, **fields: Any) -> LatencyRecord:
    """A paced latency from raw samples, summarised: mean = median, p90 = 1.1 × median unless given."""
    return LatencyRecord(mode="paced", source="raw samples", median=median_ms, mean=median_ms,
                         p90=median_ms * 1.1 if p90_ms is None else p90_ms, n=n, **fields)


def latency_of(samples_ms: Sequence[float] | np.ndarray, *, summary_only: bool = False,
               why_missing: str = "tool summary only", **fields: Any) -> LatencyRecord:
    """The latency record of these samples: median/mean/p90/std from raw samples, or (a phone's
    benchmark_model) only count, mean and std, the median missing with ``why_missing``."""
    xs = np.asarray(samples_ms, dtype=float)
    if summary_only:
        return LatencyRecord(mode="paced", source="tool summary", mean=float(xs.mean()), std=float(xs.std(ddof=1)),
                             n=len(xs), missing={"median": why_missing}, **fields)
    return LatencyRecord(mode="paced", source="raw samples", median=float(np.median(xs)), mean=float(xs.mean()),
                         p90=float(np.percentile(xs, 90)), std=float(xs.std(ddof=1)), n=len(xs), **fields)


def provenance(source_file: str = "pixel8_espcn.log", **fields: Any) -> ProvenanceRecord:
    """An imported cell's provenance (a benchmark_model log perflab did not measure)."""
    fields.setdefault("sha256", "ab" * 32)
    fields.setdefault("size_bytes", 2048)
    fields.setdefault("format", "benchmark_model")
    fields.setdefault("imported_utc", "2026-12-07T00:00:00+00:00")
    return ProvenanceRecord(source_file=source_file, **fields)


def cell(cell_id: str, *, device: DeviceRecord = LOCAL, latency_ms: LatencyRecord | None = None,
         status: CellStatus = CellStatus.OK, reason: str | None = None, artifact_key: str | None = None,
         family: str | None = None, model_sha256: str | None = None, threads: int = 2, **fields: Any) -> CellRecord:
    """A cell ``model.variant.delegate`` on ``device``; a bicubic model is the baseline; a cell that is not
    ok says why (``reason`` defaults to "it broke")."""
    name, variant, delegate = cell_id.split(".")
    ok = status == CellStatus.OK
    fields.setdefault("baseline", name.startswith("bicubic"))
    return CellRecord(
        cell_id=cell_id, artifact_key=artifact_key or cell_id, device=device,
        model=ModelRecord(name=name, family=family or name, variant=variant, scale=2, sha256=model_sha256),
        delegate=delegate, threads=threads, status=status, reason=reason if reason or ok else "it broke",
        latency_ms=latency_ms, **fields)


def run(cells: list[CellRecord], *, run_id: str = "r1", scenario: ScenarioRecord = SMALL,
        started_utc: str = STARTED_UTC, perflab_version: str = "0", **fields: Any) -> RunRecord:
    return RunRecord(perflab_version=perflab_version, run_id=run_id, scenario=scenario, started_utc=started_utc,
                     cells=cells, **fields)


def write_run_folder(path: Path, record: RunRecord, samples: Mapping[str, Sequence[float]] | None = None,
                     *, report_html: str | None = None) -> Path:
    """``record`` as a run folder (results.json, its paced samples by artifact key, and an index.html
    when ``report_html`` is given, for pages that link to it)."""
    folder = RunFolder.create(path)
    for key, xs in (samples or {}).items():
        folder.append_samples(key, "paced", list(xs))
    folder.write_results(record)
    if report_html is not None:
        (path / "index.html").write_text(report_html)
    return path


__all__ = ["LIGHT", "LOCAL", "SMALL", "CellStatus", "QualityRecord", "TelemetryRecord", "cell", "emulated_device",
           "latency", "latency_of", "provenance", "run", "write_run_folder"]
