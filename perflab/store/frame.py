"""Stored runs as one pandas DataFrame: one row per cell × device, typed columns.

``runs_frame`` turns RunRecords into the frame (pure); ``load_frame`` reads run folders;
``load_frame_from_db`` reads the runs a results index (SQLite) names — from their run folders
(the source of truth), or, where a folder is gone, from the index's own cell rows (fewer
columns; the ``source`` column says which). ``write_frame`` exports Parquet (pyarrow) or CSV.

Column conventions: units in names; a value that was not measured is missing (NaN / <NA> /
None) and its reason is in ``missing`` (a JSON object ``{"field": "reason"}``), never 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from perflab.analysis.derive import headline_latency
from perflab.core.units import frame_budget_ms
from perflab.errors import MissingDependencyError, UserInputError
from perflab.store.results import CellRecord, RunRecord
from perflab.store.runfolder import is_run_folder, load_run

FRAME_VERSION = 1
"""Bumped when a column changes meaning or is removed (adding a column does not bump it)."""

# name → pandas dtype; the order is the frame's column order
COLUMNS: dict[str, str] = {
    "run_id": "string",
    "run_started_utc": "string",
    "run_folder": "string",
    "report_path": "string",
    "source": "string",  # "run folder", or "results store" (the folder was gone: the store's record)
    "scenario": "string",
    "scenario_sha256": "string",
    "fps": "Float64",
    "budget_ms": "Float64",
    "lr_width": "Int64",
    "lr_height": "Int64",
    "device_serial": "string",
    "device_kind": "string",  # local / android / emulated / imported
    "emulated": "boolean",
    "imported": "boolean",  # numbers read from a capture perflab did not measure (CellRecord.imported)
    "provenance_file": "string",  # the imported capture's file name
    "provenance_sha256": "string",
    "device_model": "string",
    "device_manufacturer": "string",
    "device_soc": "string",
    "device_gpu": "string",
    "android_release": "string",
    "device_sdk": "Int64",
    "cell_id": "string",
    "model_name": "string",
    "model_family": "string",
    "model_variant": "string",
    "model_scale": "Int64",
    "model_sha256": "string",
    "model_size_bytes": "Int64",
    "delegate": "string",
    "threads": "Int64",
    "baseline": "boolean",
    "status": "string",
    "reason": "string",
    "latency_mode": "string",
    "latency_init_ms": "Float64",
    "latency_first_ms": "Float64",
    "latency_median_ms": "Float64",
    "latency_mean_ms": "Float64",
    "latency_p90_ms": "Float64",
    "latency_std_ms": "Float64",
    "latency_n": "Int64",
    "latency_headline_ms": "Float64",  # the one shown and ranked: p90 where measured, else the mean
    "latency_statistic": "string",  # "p90" or "mean" (perflab.analysis.derive.headline_latency)
    "realtime_meets": "boolean",
    "realtime_statistic": "string",
    "realtime_value_ms": "Float64",
    "realtime_budget_ms": "Float64",
    "realtime_rule": "string",
    "psnr_y_db": "Float64",
    "ssim_y": "Float64",
    "baseline_cell_id": "string",
    "delta_psnr_y_db": "Float64",
    "delta_ssim_y": "Float64",
    "vmaf": "Float64",  # quality.vmaf: mean VMAF of the kept outputs (/7)
    "delta_vmaf": "Float64",
    "delta_latency_median_ms": "Float64",
    "cpu_load_pct": "Float64",
    "mem_peak_mb": "Float64",
    "power_source": "string",
    "power_confidence": "string",
    "power_mw": "Float64",
    "delta_current_ma": "Float64",  # cell minus the device at rest (vs_idle), mA
    "energy_mj_per_frame": "Float64",  # telemetry.mj_per_frame
    "missing": "string",
}


def _opt_float(obj: object, name: str) -> float | None:
    v = getattr(obj, name, None)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _fields(rec: object | None, **columns: str) -> dict[str, Any]:
    """column → ``rec.<attribute>`` for each ``column=attribute``; every column None when there is no record."""
    return {col: None if rec is None else getattr(rec, attr) for col, attr in columns.items()}


def _cell_row(run: RunRecord, folder: Path | None, c: CellRecord) -> dict[str, Any]:
    sc = run.scenario
    lat = c.latency_ms
    rt = c.realtime
    d = c.deltas
    head = headline_latency(lat.p90 if lat else None, lat.mean if lat else None)
    tel = c.telemetry
    missing: dict[str, str] = {}
    if lat is not None:
        missing.update({f"latency.{k}": v for k, v in lat.missing.items()})
    elif c.status.value == "ok":
        missing["latency"] = "no headline latency series recorded"
    missing.update({f"quality.{k}": v for k, v in c.quality.missing.items()})
    missing.update({f"telemetry.{k}": v for k, v in tel.missing.items()})
    if d is not None:
        missing.update({f"deltas.{k}": v for k, v in d.missing.items()})
    if rt is not None and rt.missing:
        missing["realtime"] = rt.missing
    elif rt is None:
        missing["realtime"] = ("the scenario is not paced (no frame budget)" if not sc.fps
                               else f"cell {c.status.value}" if c.status.value != "ok" else "no verdict recorded")
    # power: read by name so this works before and after the telemetry fields land in the schema
    power_reason = tel.missing.get("power_source") or tel.missing.get("power") or "no power source recorded"
    energy = _opt_float(tel, "mj_per_frame")
    power_mw = _opt_float(tel, "power_mw")
    vs_idle = getattr(c, "vs_idle", None)
    delta_current_ma = _opt_float(vs_idle, "current_ma") if vs_idle is not None else None
    if energy is None:
        missing.setdefault("telemetry.mj_per_frame", power_reason)
    if power_mw is None:
        missing.setdefault("telemetry.power_mw", power_reason)
    if delta_current_ma is None:
        idle_missing = getattr(vs_idle, "missing", None)
        why = idle_missing.get("current_ma") if isinstance(idle_missing, dict) else None
        missing.setdefault("vs_idle.current_ma", str(why) if why else
                           (power_reason if vs_idle is not None else "no idle measurement of the device in this run"))
    report = folder / "index.html" if folder is not None else None
    return {
        "run_id": run.run_id,
        "run_started_utc": run.started_utc,
        "run_folder": str(folder) if folder is not None else None,
        "report_path": str(report) if report is not None else None,
        "source": "run folder" if folder is not None else "results store",
        "scenario": sc.name,
        "scenario_sha256": sc.sha256,
        "fps": sc.fps,
        "budget_ms": frame_budget_ms(sc.fps),
        "lr_width": sc.lr_width,
        "lr_height": sc.lr_height,
        "device_serial": c.device.serial,
        "device_kind": c.device.kind,
        "emulated": c.emulated or c.device.kind == "emulated",
        "imported": c.imported,
        "provenance_file": c.provenance.source_file if c.provenance else None,
        "provenance_sha256": c.provenance.sha256 if c.provenance else None,
        "device_model": c.device.model,
        "device_manufacturer": c.device.extra.get("manufacturer"),
        "device_soc": c.device.soc,
        "device_gpu": c.device.extra.get("gpu"),
        "android_release": c.device.extra.get("android_release"),
        "device_sdk": c.device.sdk,
        "cell_id": c.cell_id,
        "model_name": c.model.name,
        "model_family": c.model.family,
        "model_variant": c.model.variant,
        "model_scale": c.model.scale,
        "model_sha256": c.model.sha256,
        "model_size_bytes": c.model.size_bytes,
        "delegate": c.delegate,
        "threads": c.threads,
        "baseline": c.baseline,
        "status": c.status.value,
        "reason": c.reason,
        **_fields(lat, latency_mode="mode", latency_init_ms="init", latency_first_ms="first",
                  latency_median_ms="median", latency_mean_ms="mean", latency_p90_ms="p90", latency_std_ms="std",
                  latency_n="n"),
        "latency_headline_ms": head.value_ms,
        "latency_statistic": head.statistic,
        **_fields(rt, realtime_meets="meets", realtime_statistic="statistic", realtime_value_ms="value_ms",
                  realtime_budget_ms="budget_ms", realtime_rule="rule"),
        "psnr_y_db": c.quality.psnr_y_db,
        "ssim_y": c.quality.ssim_y,
        **_fields(d, baseline_cell_id="baseline_cell_id", delta_psnr_y_db="psnr_y_db", delta_ssim_y="ssim_y",
                  delta_latency_median_ms="latency_median_ms", delta_vmaf="vmaf"),
        "vmaf": c.quality.vmaf,
        "cpu_load_pct": tel.cpu_load_pct,
        "mem_peak_mb": tel.mem_peak_mb,
        "power_source": tel.power_source,
        "power_confidence": tel.power_confidence,
        "power_mw": power_mw,
        "delta_current_ma": delta_current_ma,
        "energy_mj_per_frame": energy,
        "missing": json.dumps(missing, sort_keys=True, ensure_ascii=False),
    }


def typed_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows (dicts keyed by COLUMNS; absent keys are missing) → the typed frame."""
    data = {name: pd.array([r.get(name) for r in rows], dtype=dtype)  # type: ignore[call-overload]
            for name, dtype in COLUMNS.items()}
    return pd.DataFrame(data, columns=list(COLUMNS))


@dataclass(frozen=True)
class StoredRun:
    run: RunRecord
    folder: Path | None  # None: the record came without its folder


def runs_frame(runs: Iterable[StoredRun]) -> pd.DataFrame:
    """One row per cell × device of every run, in the runs' order (pure)."""
    return typed_frame([_cell_row(r.run, r.folder, c) for r in runs for c in r.run.cells])


def load_runs(paths: Sequence[Path]) -> list[StoredRun]:
    """Run folders (or results.json files) → records; a path that is not one is a StoreError."""
    out: list[StoredRun] = []
    for p in paths:
        folder = p if p.is_dir() else p.parent
        out.append(StoredRun(load_run(p), folder))
    return out


def load_frame(paths: Sequence[Path]) -> pd.DataFrame:
    return runs_frame(load_runs(paths))


def load_from_db(url: str | Path) -> tuple[list[StoredRun], pd.DataFrame, list[str]]:
    """The runs a results store names (a SQLite file or a postgresql:// URL): (runs, frame rows
    the runs do not cover, notes). A run is read from its folder when the folder is here (its
    report can be linked), else from the record the store keeps of it, and a note says so."""
    from perflab.store.sql import SqlStore

    if "://" not in str(url) and not Path(url).is_file():
        raise UserInputError(f"{url}: --db: no such results store")
    stored: list[StoredRun] = []
    notes: list[str] = []
    with SqlStore(url) as store:
        for run_id in store.run_ids():
            folder = store.run_folder(run_id)
            if folder is not None and is_run_folder(folder):
                stored.append(StoredRun(load_run(folder), folder))
                continue
            rec = store.load_run(run_id)
            if rec is None:
                notes.append(f"run {run_id}: its folder {folder} is gone and the store keeps no record of it "
                             "(indexed before the store kept records): left out")
                continue
            notes.append(f"run {run_id}: folder {folder} is gone; read from the store's record (no report to link)")
            stored.append(StoredRun(rec, None))
    return stored, typed_frame([]), notes


def load_frame_from_db(url: str | Path) -> pd.DataFrame:
    stored, orphans, _ = load_from_db(url)
    frames = [f for f in (runs_frame(stored), orphans) if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else typed_frame([])


def write_frame(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Export the frame as ``parquet`` (needs pyarrow) or ``csv``; returns the file written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            df.to_csv(path, index=False)
        elif fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError as exc:
                raise MissingDependencyError("pyarrow", "Parquet export") from exc
            df.to_parquet(path, index=False)
        else:
            raise UserInputError(f"--format: {fmt!r} is not one of parquet, csv")
    except OSError as exc:
        raise UserInputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path
