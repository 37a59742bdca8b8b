"""The HTML run report: rendered from a realistic run folder, checked as text and in headless Chromium."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from perflab.core.display import fmt_mai, fmt_ms, fmt_ratio, fmt_signed
from perflab.errors import StoreError
from perflab.report.html import render_run_report
from perflab.rules.derive import finalize_cells
from perflab.store.layer_records import LayerRow, LayersRecord
from perflab.store.results import (
    CellRecord,
    CellStatus,
    CompatRecord,
    CurrentConventionRecord,
    DelegateRecord,
    DeviceRecord,
    FrameQuality,
    GpuIssueRecord,
    IdleRecord,
    LatencyRecord,
    ModelRecord,
    PlannedCell,
    QualityRecord,
    RunRecord,
    ScenarioRecord,
    StopRecord,
    TelemetryRecord,
    WarningRecord,
    artifact_dir,
    artifact_key,
)

CHROMIUM = Path("/usr/bin/chromium")
EVIL = "<script>document.title='PWNED'</script>"
SCENARIO_TEXT = """name: 540p30
geometry: {lr: [960, 540], scale: 2}
pacing: {fps: 30}
baseline: bicubic
models:
  - {name: espcn, variants: [fp32, int8]}
"""

LOCAL = DeviceRecord(serial="local", kind="local", model="x86_64 host", soc="Intel Xeon (2 cores)",
                     tflite_version="ai-edge-litert 1.2")
EMU = DeviceRecord(serial="emulator-perflab-1", kind="emulated", model="Pixel 7 (perflab emulated)", soc="gs201",
                   abi="arm64-v8a", sdk=34, rooted=True, fingerprint="perflab/emulated/pixel7:14")

RNG_SEED = 20240611
PIQE_MISSING = "PIQE undefined: no 16×16 block of this frame is active (flat image)"
NO_TF = "TensorFlow is not installed here (scripts/setup.sh --dev installs it); its analyzer is needed"
D2S_REASON = "OP is supported, but tensor type/shape isn't compatible."  # what the TF 2.x analyzer prints
REPLACING = ("Replacing 5 out of 7 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 2 partitions "
             "for the whole graph.")
PARTIAL = "Explicitly applied GPU delegate, and the model graph will be partially executed by the delegate w/ 1 delegate kernels."
XNN_FULL = "Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate."
HOST_OPS = "ops: STRIDED_SLICE CONCATENATION CONV_2D DEPTH_TO_SPACE MINIMUM DELEGATE"
# the delegate lines as the runner stores them (parsed once, at run time)
REPLACING_REC = DelegateRecord(kind="replaced", line=REPLACING, delegate="TfLiteGpuDelegateV2", replaced=5, total=7,
                               partitions=2)
PARTIAL_REC = DelegateRecord(kind="applied", line=PARTIAL, delegate="GPU", coverage="partial", delegate_kernels=1)
XNN_FULL_REC = DelegateRecord(kind="applied", line=XNN_FULL, delegate="XNNPACK", coverage="full")
HOST_OPS_REC = DelegateRecord(kind="ops", line=HOST_OPS, ops=HOST_OPS[5:].split())
EMU_MEM_SOURCE = "benchmark_model overall delta of max RSS since tool start (emulated, MB)"
TRAINING_WARNING = ("scikit-image photo 'astronaut' is in the zoo's training data: zoo models' quality on it is "
                    "flattered (use a held-out photo: coffee, chelsea, rocket)")
NO_PROFILE = "this device's benchmark_model cannot profile per op (no --enable_op_profiling)"
EMU_WARNING = "emulated phone: numbers come from perflab's phone model, not hardware"
N_DEVICES = 2  # LOCAL and EMU: artefacts are named serial/cell_id (the store's rule)


def key(serial: str, cell_id: str) -> str:
    return artifact_key(serial, cell_id, N_DEVICES)
ESPCN_OPS = ["CONV_2D", "TANH", "CONV_2D", "TANH", "CONV_2D", "DEPTH_TO_SPACE", "MINIMUM"]


def _compat(ops: list[str], issues: list[GpuIssueRecord]) -> CompatRecord:
    counts: dict[str, int] = {}
    for o in ops:
        counts[o] = counts.get(o, 0) + 1
    return CompatRecord(source="tflite analyzer, run when the zoo model was built", ops=ops, op_counts=counts,
                        gpu_checked=True, gpu_compatible=not issues, gpu_issues=issues, runtime_version="2.21.0")


BICUBIC_COMPAT = _compat(["STRIDED_SLICE", "CONCATENATION", "CONV_2D", "DEPTH_TO_SPACE", "MINIMUM"], [])
ESPCN_FP32_COMPAT = _compat(ESPCN_OPS, [
    GpuIssueRecord(op_index=5, op_name="DEPTH_TO_SPACE", reason="GPU delegate: DEPTH_TO_SPACE block_size 3 is not "
                   "supported on this GPU backend (pixel shuffle)", source="tflite analyzer"),
])
ESPCN_INT8_COMPAT = _compat(["QUANTIZE", *ESPCN_OPS, "FlexErf", "DEQUANTIZE"], [
    GpuIssueRecord(op_index=6, op_name="DEPTH_TO_SPACE", reason=D2S_REASON, source="tflite analyzer"),
    GpuIssueRecord(op_index=8, op_name="FlexErf", reason="Flex (TF Select) ops never run on a GPU delegate",
                   source="perflab"),
])


def _lat(mode: str, samples: np.ndarray, init: float, first: float) -> LatencyRecord:
    return LatencyRecord(
        mode=mode, fps_target=30.0 if mode == "paced" else None, source="raw samples", init=init, first=first,
        warmup_mean=float(samples[:3].mean()), median=float(np.median(samples)), mean=float(samples.mean()),
        p10=float(np.percentile(samples, 10)), p90=float(np.percentile(samples, 90)), p95=float(np.percentile(samples, 95)), min=float(samples.min()),
        max=float(samples.max()), std=float(samples.std(ddof=1)),
        mad=float(np.median(np.abs(samples - np.median(samples)))),
        cv_pct=float(samples.std(ddof=1) / samples.mean() * 100), n=int(samples.size),
    )


def _frames(run_dir: Path) -> dict[str, dict[str, float]]:
    """HR/LR frames from a packaged photograph and per-cell 'device outputs' (bicubic, a sharper SR, int8)."""
    import skimage.data

    photo = np.asarray(skimage.data.astronaut(), dtype=np.uint8)  # type: ignore[no-untyped-call]
    hr_frames = {
        "astronaut_face": photo[40:168, 160:352],
        "astronaut_flag": photo[300:428, 0:192],
    }
    for d in ("hr", "lr", "local-cpu-bicubic-fp32", "local-cpu-espcn-fp32", "local-cpu-espcn-int8"):
        d = d if d in ("hr", "lr") else artifact_dir(key("local", d))
        (run_dir / "frames" / d).mkdir(parents=True, exist_ok=True)
    psnr: dict[str, dict[str, float]] = {}
    for name, hr in hr_frames.items():
        h, w = hr.shape[:2]
        hr_img = Image.fromarray(hr)
        lr_img = hr_img.resize((w // 2, h // 2), Image.Resampling.BICUBIC)
        bic = np.asarray(lr_img.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64)
        sr = np.clip(0.55 * bic + 0.45 * hr, 0, 255)
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        sr8 = np.clip(sr + rng.normal(0, 3.0, sr.shape), 0, 255)
        hr_img.save(run_dir / "frames" / "hr" / f"{name}.png")
        lr_img.save(run_dir / "frames" / "lr" / f"{name}.png")
        outs = {"local-cpu-bicubic-fp32": bic, "local-cpu-espcn-fp32": sr, "local-cpu-espcn-int8": sr8}
        for cell, arr in outs.items():
            Image.fromarray(np.round(arr).astype(np.uint8)).save(
                run_dir / "frames" / artifact_dir(key("local", cell)) / f"{name}.png")
            mse = float(np.mean((np.round(arr) - hr.astype(np.float64)) ** 2))
            psnr.setdefault(cell, {})[name] = 10 * np.log10(255.0**2 / mse)
    return psnr


def build_run_folder(run_dir: Path, *, with_samples: bool = True, with_frames: bool = True) -> RunRecord:
    rng = np.random.default_rng(RNG_SEED)
    run_dir.mkdir(parents=True, exist_ok=True)
    psnr = _frames(run_dir) if with_frames else {}
    rows: list[tuple[str, str, int, float]] = []

    def series(cell_id: str, center: float, spread: float, n: int = 60) -> dict[str, LatencyRecord]:
        paced = rng.normal(center, spread, n).clip(center * 0.6)
        b2b = rng.normal(center * 0.92, spread * 0.8, n).clip(center * 0.5)
        warm = rng.normal(center * 1.6, spread * 2, 5).clip(center)
        for series_name, arr in (("warmup", warm), ("paced", paced), ("back_to_back", b2b)):
            rows.extend((key("local", cell_id), series_name, i, round(float(v), 4)) for i, v in enumerate(arr))
        return {"paced": _lat("paced", paced, init=center * 4, first=center * 2.5),
                "back_to_back": _lat("back_to_back", b2b, init=center * 4, first=center * 2.5)}

    def quality(cell_id: str, psnr_mean: float, ssim: float, piqe: float | None) -> QualityRecord:
        """Per-frame rows as the runner writes them (PSNR-RGB, PIQE or its reason); the differences to bicubic
        and the MAI score are added by the run's finaliser (perflab.rules.derive), as in a real run."""
        per: list[FrameQuality] = []
        for k, (f, v) in enumerate(sorted(psnr.get(cell_id, {}).items())):
            per.append(FrameQuality(
                frame=f, psnr_y_db=round(v, 4), ssim_y=round(ssim + 0.01 * k, 4), psnr_rgb_db=round(v - 1.3, 4),
                piqe=None if piqe is None else round(piqe + 3.0 * k, 3),
                missing={"piqe": PIQE_MISSING} if piqe is None else {},
            ))
        mean = float(np.mean([p.psnr_y_db for p in per])) if per else psnr_mean
        return QualityRecord(
            psnr_y_db=mean, ssim_y=ssim, psnr_rgb_db=mean - 1.3,
            piqe=None if piqe is None else piqe + 1.5,
            psnr_y_db_min=min((p.psnr_y_db for p in per if p.psnr_y_db is not None), default=None),
            frames=len(per) or 4, per_frame=per, computed_on="device outputs",
            missing={"piqe": PIQE_MISSING} if piqe is None else {},
        )

    tel_local = TelemetryRecord(cpu_load_pct=96.0, mem_peak_mb=212.0, mem_source="/proc/self/status VmHWM",
                                power_source=None, missing={"power_source": "no power meter on local: RAPL "
                                                            "energy counters not readable (permission denied)"})
    cells: list[CellRecord] = []
    # Sampler timelines as the run writes them (telemetry/<dir>.txt): local has CPU and memory only; the
    # emulated phone has battery, GPU and a thermal zone. Each device's phases follow one another on its clock.
    (run_dir / "telemetry").mkdir(exist_ok=True)
    clock: dict[str, float] = {"local": 2000.0, EMU.serial: 1000.0}
    states: dict[str, dict[str, float]] = {}

    def timeline(serial: str, name: str, phase: Phase) -> tuple[str, dict[str, float]]:
        text, stored = sampler_text(clock[serial], phase, state=states.setdefault(serial, {
            "busy": 1e6, "total": 4e6, "charge": 3.2e6, "self": 10}))
        clock[serial] = stored["end_s"] + 0.7  # set-up between cells: not sampled
        rel = f"telemetry/{artifact_dir(name)}.txt"
        (run_dir / rel).write_text(text, encoding="utf-8")
        return rel, stored

    local_idle_rel, _ = timeline("local", "local.idle", Phase(3.0, 6.0, None, None, None, None))
    local_tl = {cid_: timeline("local", key("local", cid_), Phase(2.0, cpu, None, None, None, rss))[0]
                for cid_, cpu, rss in (("local-cpu-bicubic-fp32", 55.0, 205.0), ("local-cpu-espcn-fp32", 97.0, 226.0))}
    no_tel = {"current_ma": LOCAL_NO_BATTERY, "temp_c": LOCAL_NO_TZ, "gpu_busy_pct": LOCAL_NO_GPU}
    idle = [IdleRecord(serial="local", duration_s=3.0, device_cpu_busy_pct=6.0, mem_avail_min_mb=5150.0,
                       timeline_file=local_idle_rel, missing=no_tel)]
    emu_idle_rel, _ = timeline(EMU.serial, "emu.idle", Phase(5.0, 4.0, 1.0, 160.0, 32.1, None))
    idle.append(IdleRecord(serial=EMU.serial, duration_s=5.0, device_cpu_busy_pct=4.0, gpu_busy_pct=1.0,
                           mem_avail_min_mb=5170.0, temp_c=32.1, current_ma=160.0, power_mw=160.0 * VOLTAGE_V,
                           timeline_file=emu_idle_rel, convention=EMU_CONV))
    emu_phases = {"emu-cpu-bicubic-fp32": Phase(6.0, 22.0, 3.0, 214.0, 33.0, 61.0),
                  "emu-cpu-espcn-int8": Phase(6.0, 41.0, 3.0, 312.0, 34.2, 64.5),
                  "emu-gpu-espcn-fp32": Phase(6.0, 12.0, 57.0, 296.0, 34.9, 70.0)}
    emu_tels = {}
    for cid_, ph in emu_phases.items():
        rel, stored = timeline(EMU.serial, key(EMU.serial, cid_), ph)
        emu_tels[cid_] = phone_telemetry(stored, ph, rel, mem_mb=ph.rss_mb or 0.0)

    def cell(cell_id: str, device: DeviceRecord, **kw: object) -> CellRecord:
        return CellRecord(cell_id=cell_id, artifact_key=key(device.serial, cell_id), device=device, **kw)  # type: ignore[arg-type]

    s = series("local-cpu-bicubic-fp32", 2.1, 0.15)
    cells.append(cell(
        "local-cpu-bicubic-fp32", LOCAL,
        model=ModelRecord(name="bicubic", family="bicubic", variant="fp32", scale=2, sha256="ab" * 32, size_bytes=1872,
                          compat=BICUBIC_COMPAT),
        delegate="cpu", threads=2, status=CellStatus.OK, baseline=True, latency_ms=s["paced"], series=s,
        quality=quality("local-cpu-bicubic-fp32", 27.9, 0.861, 48.0), delegates=[HOST_OPS_REC],
        telemetry=tel_local.model_copy(update={"device_cpu_busy_pct": 55.0, "rss_peak_mb": 205.0,
                                               "timeline_file": local_tl["local-cpu-bicubic-fp32"],
                                               "missing": {**tel_local.missing, **no_tel}}),
    ))
    s = series("local-cpu-espcn-fp32", 18.5, 0.9)
    cells.append(cell(
        "local-cpu-espcn-fp32", LOCAL,
        model=ModelRecord(name="espcn", family="ESPCN", variant="fp32", scale=2, sha256="cd" * 32, size_bytes=98_304,
                          compat=ESPCN_FP32_COMPAT),
        delegate="cpu", threads=2, status=CellStatus.OK, latency_ms=s["paced"], series=s,
        quality=quality("local-cpu-espcn-fp32", 29.4, 0.893, 31.0),
        telemetry=tel_local.model_copy(update={"cpu_load_pct": 99.0, "mem_peak_mb": 230.0, "device_cpu_busy_pct": 97.0,
                                               "rss_peak_mb": 226.0, "timeline_file": local_tl["local-cpu-espcn-fp32"],
                                               "missing": {**tel_local.missing, **no_tel}}),
        layers=LayersRecord(source="tflite op profiler (separate pass)", total_ms=19.8, rows=[
            LayerRow(index=0, node_type="CONV_2D", name="feat/conv5x5", avg_ms=7.9, first_ms=9.1, times_called=1),
            LayerRow(index=1, node_type="CONV_2D", name="map/conv3x3", avg_ms=6.2, first_ms=7.0, times_called=1),
            LayerRow(index=2, node_type="CONV_2D", name="up/conv3x3", avg_ms=4.1, first_ms=4.9, times_called=1),
            LayerRow(index=3, node_type="DEPTH_TO_SPACE", name="up/pixel_shuffle", avg_ms=1.1, times_called=1),
        ]),
    ))
    s = series("local-cpu-espcn-int8", 11.0, 2.6)
    cells.append(cell(
        "local-cpu-espcn-int8", LOCAL,
        model=ModelRecord(name="espcn", family="ESPCN", variant="int8", scale=2, sha256="ef" * 32, size_bytes=27_648,
                          compat=ESPCN_INT8_COMPAT),
        delegate="cpu", threads=2, status=CellStatus.OK, latency_ms=s["paced"], series=s,
        quality=quality("local-cpu-espcn-int8", 28.6, 0.874, None),
        telemetry=TelemetryRecord(cpu_load_pct=91.0, mem_peak_mb=None,
                                  missing={"mem_peak_mb": "peak memory not sampled: /proc read failed mid-run"},
                                  power_source=None, power_confidence="none"),
        warnings=[WarningRecord(code="high_cv", message="paced: unstable: CV 23.6% > 10% (mean 11.05 ms, std 2.61 "
                                "ms). Close background load, add warm-up runs or raise runs.iterations."),
                  WarningRecord(code="high_cv", message="back_to_back: unstable: CV 19.0% > 10% (mean 10.12 ms, std "
                                "1.92 ms). Close background load, add warm-up runs or raise runs.iterations.")],
    ))
    cells.append(cell(
        "local-cpu-fsrcnn-fp16", LOCAL,
        model=ModelRecord(name="fsrcnn", family="FSRCNN", variant="fp16", scale=2, size_bytes=None),
        delegate="cpu", threads=2, status=CellStatus.FAILED,
        reason="ModelError: tensor allocation failed: TRANSPOSE_CONV output shape 1x1080x1920x1 does not match",
    ))
    s = series("local-cpu-evil", 7.5, 0.4)
    cells.append(cell(
        "local-cpu-evil", LOCAL,
        model=ModelRecord(name=EVIL, family="user model", variant="fp32", scale=2, size_bytes=4096,
                          missing={"compat": NO_TF}),
        delegate="cpu", threads=2, status=CellStatus.OK, latency_ms=s["paced"], series=s,
        quality=QualityRecord(missing={k: "output shape did not match HR" for k in ("psnr_y_db", "ssim_y", "piqe")}),
        telemetry=tel_local,
    ))
    # Emulated phone: latency from the (emulated) benchmark_model summary, no raw rows; memory is the tool's delta.
    summary_missing = {k: "benchmark_model reports count/mean/std/min/max only" for k in ("median", "p90", "p95", "mad")}
    emu_warning = WarningRecord(code="emulated", message=EMU_WARNING)
    emu_models = {"bicubic": ("ab" * 32, BICUBIC_COMPAT), "espcn": ("ef" * 32, ESPCN_INT8_COMPAT)}
    for name, variant, mean, psnr_v, size in (("bicubic", "fp32", 3.4, 27.8, 1872), ("espcn", "int8", 9.6, 28.5, 27_648)):
        lat = LatencyRecord(mode="paced", fps_target=30.0, source="benchmark_model summary", init=41.0, first=15.2,
                            mean=mean, std=0.3, min=mean - 0.4, max=mean + 1.1, n=100, missing=summary_missing)
        cells.append(cell(
            f"emu-cpu-{name}-{variant}", EMU,
            model=ModelRecord(name=name, family=name.upper(), variant=variant, scale=2, size_bytes=size,
                              sha256=emu_models[name][0], compat=emu_models[name][1]),
            delegate="cpu", threads=4, status=CellStatus.OK, baseline=name == "bicubic", emulated=True,
            latency_ms=lat, series={"paced": lat}, delegates=[XNN_FULL_REC],
            quality=QualityRecord(psnr_y_db=psnr_v, ssim_y=0.87, frames=4,
                                  missing={"piqe": "PIQE not computed on the emulated phone's outputs"}),
            telemetry=emu_tels[f"emu-cpu-{name}-{variant}"],
            warnings=[emu_warning], layers=LayersRecord(source="none", missing=NO_PROFILE),
        ))
    lat = LatencyRecord(mode="paced", fps_target=30.0, source="benchmark_model summary", init=310.0, first=22.0,
                        mean=14.2, std=0.6, min=13.1, max=16.0, n=100, missing=summary_missing)
    cells.append(cell(  # the same file as local espcn fp32: one entry in the compatibility section
        "emu-gpu-espcn-fp32", EMU,
        model=ModelRecord(name="espcn", family="ESPCN", variant="fp32", scale=2, sha256="cd" * 32, size_bytes=98_304,
                          compat=ESPCN_FP32_COMPAT),
        delegate="gpu", threads=4, status=CellStatus.OK, emulated=True, latency_ms=lat, series={"paced": lat},
        quality=QualityRecord(psnr_y_db=29.3, ssim_y=0.89, frames=4), telemetry=emu_tels["emu-gpu-espcn-fp32"],
        delegates=[REPLACING_REC, PARTIAL_REC], warnings=[emu_warning],
    ))
    cells.append(cell(
        "emu-gpu-espcn-int8", EMU,
        model=ModelRecord(name="espcn", family="ESPCN", variant="int8", scale=2, sha256="ef" * 32, size_bytes=27_648,
                          compat=ESPCN_INT8_COMPAT),
        delegate="gpu", threads=4, status=CellStatus.UNSUPPORTED, emulated=True,
        reason="GPU delegate rejects DEPTH_TO_SPACE with int8 tensors (op 3); whole graph would fall back to CPU",
    ))
    run = RunRecord(
        perflab_version="0.1.0", run_id="20240611T101500Z-3f9c",
        scenario=ScenarioRecord(name="540p30", file="scenarios/540p30.yaml",
                                sha256=hashlib.sha256(SCENARIO_TEXT.encode()).hexdigest(), text=SCENARIO_TEXT,
                                lr_width=960, lr_height=540, scale=2, fps=30.0),
        started_utc="2024-06-11T10:15:00Z", finished_utc="2024-06-11T10:19:42Z",
        host={"python": "3.11.2", "os": "Debian 12"}, devices=[LOCAL, EMU],
        planned=[PlannedCell(serial=c.device.serial, cell_id=c.cell_id) for c in cells],
        warnings=[WarningRecord(code="training_images", message=TRAINING_WARNING)],
        idle=idle,
        cells=finalize_cells(cells, 30.0, idle),  # deltas, vs idle, verdicts, per-frame deltas, MAI: as a run stores
        exit_code=1,
    )
    (run_dir / "results.json").write_text(run.to_json(), encoding="utf-8")
    if with_samples:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["cell_id", "series", "iteration", "latency_ms"])
        w.writerows(rows)
        (run_dir / "samples.csv").write_text(buf.getvalue(), encoding="utf-8")
    return run


class Table:
    """One kind of table (all tables of one class merged): leaf column names from its header, rows by cell id."""

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.rows: dict[str, dict[str, str]] = {}

    def col(self, name: str) -> str:
        """The column called ``name``: its full header text ("Paced @ 30 fps / median"), or its first words
        ("PIQE" for "PIQE ↓ better"); exactly one column must match."""
        hits = [c for c in self.columns if c == name or c.startswith(name + " ")]
        assert len(hits) == 1, (name, self.columns)
        return hits[0]

    def cell(self, cell_id: str, name: str) -> str:
        return self.rows[cell_id].get(self.col(name), "")


class TableCollector(HTMLParser):
    """Every ``table.data`` by its first extra class (summary, answer, …): header cells with their colspan and
    rowspan laid out into leaf column names, and the text of each ``<td>`` of rows that carry a
    ``data-cell-id``, keyed by column name. Also the page's text and its script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, Table] = {}
        self.text: list[str] = []
        self.scripts = 0
        self._table: Table | None = None
        self._in_head = False
        self._head: list[list[tuple[str, int, int]]] = []
        self._cell: list[str] | None = None
        self._span = (1, 1)
        self._row: str | None = None
        self._row_cells: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        elif tag == "table" and "data" in classes:
            kind = next((c for c in classes if c != "data"), "data")
            self._table = self.tables.setdefault(kind, Table())
            self._head = []
        elif self._table is None:
            return
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            if self._in_head:
                self._head.append([])
            else:
                self._row = a.get("data-cell-id") or a.get("data-frame")
                self._row_cells = []
        elif tag in ("th", "td"):
            self._cell = []
            self._span = (int(a.get("colspan") or 1), int(a.get("rowspan") or 1))
        elif (tag == "br" or "sub" in classes) and self._cell is not None:
            self._cell.append(" ")  # a line break, or the small second line of a value

    def handle_endtag(self, tag: str) -> None:
        if self._table is None:
            return
        if tag in ("th", "td") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            if self._in_head:
                self._head[-1].append((text, *self._span))
            elif self._row is not None:
                self._row_cells.append((text, self._span[0]))
            self._cell = None
        elif tag == "thead":
            self._in_head = False
            self._table.columns = _leaf_columns(self._head)
        elif tag == "tr" and not self._in_head and self._row is not None:
            row, i = {}, 0
            for text, colspan in self._row_cells:
                row[self._table.columns[i]] = text
                i += colspan
            self._table.rows[self._row] = row
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _leaf_columns(head: list[list[tuple[str, int, int]]]) -> list[str]:
    """Header rows with colspan/rowspan → one name per column: the texts above it joined by " / "."""
    grid: dict[tuple[int, int], str] = {}
    for r, cells in enumerate(head):
        c = 0
        for text, colspan, rowspan in cells:
            while (r, c) in grid:
                c += 1
            for dr in range(rowspan):
                for dc in range(colspan):
                    grid[(r + dr, c + dc)] = text
            c += colspan
    n_cols = max((c for _, c in grid), default=-1) + 1
    names = []
    for c in range(n_cols):
        parts = [grid[(r, c)] for r in range(len(head)) if (r, c) in grid]
        names.append(" / ".join(dict.fromkeys(parts)))
    return names


def collect(html_text: str) -> TableCollector:
    p = TableCollector()
    p.feed(html_text)
    return p


def summary(html_text: str) -> Table:
    return collect(html_text).tables["summary"]


def cid(cell_id: str) -> str:
    """The id a cell carries in the page: its artifact key (the store's rule; two devices in this run)."""
    return key("emulator-perflab-1" if cell_id.startswith("emu-") else "local", cell_id)



LOCAL_NO_BATTERY = "this machine has no battery (no /sys/class/power_supply battery): no current or energy"
LOCAL_NO_TZ = "this machine has no thermal zones (/sys/class/thermal) and no hwmon temperatures"
LOCAL_NO_GPU = "no GPU load source on this machine"
EMU_SOURCE = "emulated battery counters (not charging)"
EMU_CONVENTION = "unit µA from the device config; discharge sign -1 from the device config"
EMU_CONV = CurrentConventionRecord(ua_per_unit=1.0, discharge_sign=-1, uv_per_unit=1.0, unit_source="config",
                                   sign_source="config", how=EMU_CONVENTION)
VOLTAGE_V = 3.85
CORES = 8


@dataclass
class Phase:
    """One stretch of a device's sampler timeline: at rest, or a cell (its process alive in the middle)."""

    seconds: float
    cpu_pct: float
    gpu_pct: float | None
    current_ma: float | None
    temp_c: float | None
    rss_mb: float | None  # the measured process's RSS while it is alive; None at rest


def sampler_text(t0_s: float, phase: Phase, *, interval_s: float = 0.1, pad_s: float = 0.5,
                 state: dict[str, float] | None = None) -> tuple[str, dict[str, float]]:
    """Sampler lines (perflab.analysis.timeline's format) for one phase on the device's monotonic clock, with
    ``pad_s`` before and after the process is alive; plus what the cell's summary stores (means over the window).
    Streams a device lacks are ``E`` lines with their reason, as the samplers write them."""
    st = state if state is not None else {"busy": 1e6, "total": 4e6, "charge": 3.2e6, "self": 10}
    lines: list[str] = []
    if phase.current_ma is None:
        lines.append(f"E bat {LOCAL_NO_BATTERY}")
    if phase.temp_c is None:
        lines.append(f"E tz {LOCAL_NO_TZ}")
    if phase.gpu_pct is None:
        lines.append(f"E gpu {LOCAL_NO_GPU}")
    n = round((phase.seconds + 2 * pad_s) / interval_s)
    window: list[tuple[float, float, float]] = []  # (current, temp, rss)
    for i in range(n + 1):
        t = t0_s + i * interval_s
        alive = pad_s - 1e-9 <= i * interval_s <= pad_s + phase.seconds + 1e-9
        load = phase.cpu_pct if alive else phase.cpu_pct * 0.15
        tick = CORES * 100 * interval_s
        st["busy"] += round(tick * load / 100)
        st["total"] += tick
        busy, total = int(st["busy"]), int(st["total"])
        lines += [f"T {t:.3f}", f"cpu cpu {busy} 0 0 {total - busy} 0 0 0 0 0 0", f"mem {5_300_000 - 40 * i}"]
        if phase.gpu_pct is not None:
            lines.append(f"gpu pct {(phase.gpu_pct if alive else 1.0):.0f}")
        temp = None
        if phase.temp_c is not None:
            temp = phase.temp_c + (0.3 * i * interval_s / max(phase.seconds, 1e-9) if alive else 0.0)
            lines.append(f"tz cpu-therm {round(temp * 1000)}")
        cur = None
        if phase.current_ma is not None:
            cur = phase.current_ma * (1.0 if alive else 0.6) + 4.0 * math.sin(i)
            st["charge"] -= cur * interval_s / 3.6
            lines.append(f"bat {round(-cur * 1000)} {round(VOLTAGE_V * 1e6)} {round(st['charge'])} "
                         f"{round((temp or 30.0) * 10)} Discharging")
        if alive and phase.rss_mb is not None:
            lines.append(f"rss {round(phase.rss_mb * 1024)}")
            window.append((cur or 0.0, temp or 0.0, phase.rss_mb))
        st["self"] += 0.1
        lines.append(f"self {int(st['self'])} 0 100")
    stored: dict[str, float] = {"end_s": t0_s + n * interval_s}
    if window and phase.current_ma is not None:
        stored["current_ma"] = float(np.mean([w[0] for w in window]))
    if window and phase.temp_c is not None:
        stored["temp_max_c"] = max(w[1] for w in window)
    return "\n".join(lines) + "\n", stored


def phone_telemetry(stored: dict[str, float], phase: Phase, rel: str, mem_mb: float) -> TelemetryRecord:
    """A phone cell's telemetry as the run stores it (battery counters, charging suspended)."""
    cur = stored["current_ma"]
    return TelemetryRecord(
        cpu_load_pct=None, mem_peak_mb=mem_mb, mem_source=EMU_MEM_SOURCE, start_temp_c=phase.temp_c,
        device_cpu_busy_pct=phase.cpu_pct, cpu_core_busy_pct={f"cpu{i}": phase.cpu_pct for i in range(CORES)},
        gpu_busy_pct=phase.gpu_pct, rss_peak_mb=phase.rss_mb, mem_avail_min_mb=5100.0, temp_zone="cpu-therm",
        temp_end_c=stored["temp_max_c"], temp_max_c=stored["temp_max_c"], current_ma=cur, voltage_v=VOLTAGE_V,
        power_mw=cur * VOLTAGE_V, energy_mj=cur * VOLTAGE_V * phase.seconds, mj_per_frame=cur * VOLTAGE_V / 30.0,
        mah_per_hour=cur, charging=False, current_convention=EMU_CONVENTION, convention=EMU_CONV, power_source=EMU_SOURCE,
        power_confidence="medium", window_s=phase.seconds, sample_interval_ms=100.0, sampler_cpu_pct=0.6,
        timeline_file=rel, missing={"cpu_load_pct": "benchmark_model does not report CPU load"},
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunRecord]:
    run_dir = tmp_path_factory.mktemp("run") / "540p30" / "20240611T101500Z-3f9c"
    run = build_run_folder(run_dir)
    out = render_run_report(run_dir)
    assert out == run_dir / "index.html"
    return out, run


# ------------------------------------------------------------------ rendered text


def test_report_is_self_contained_and_escaped(report: tuple[Path, RunRecord]) -> None:
    html_text = report[0].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html_text), "external resource referenced"
    assert "url(http" not in html_text and "@import" not in html_text
    assert "<script" not in html_text.lower()  # the report needs no script, and the user's is escaped
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;" in html_text
    assert html_text.count("data:image/png;base64,") >= 6  # 2 latency + 2 trade-off + crops


def test_every_cell_has_a_row_beside_its_baseline(report: tuple[Path, RunRecord]) -> None:
    html_text, run = report[0].read_text(encoding="utf-8"), report[1]
    t = summary(html_text)
    assert set(t.rows) == {c.artifact_key for c in run.cells}
    # baseline first in each device/delegate table
    order = [m.group(1) for m in re.finditer(r'<tr id="[^"]+" class="cellrow[^"]*" data-cell-id="([^"]+)"', html_text)]
    assert order.index(cid("local-cpu-bicubic-fp32")) < order.index(cid("local-cpu-espcn-fp32"))
    assert order.index(cid("emu-cpu-bicubic-fp32")) < order.index(cid("emu-cpu-espcn-int8"))
    # ok rows: every column filled, and a missing number is "—" with a footnote, never 0
    for cell in run.cells:
        if cell.status == CellStatus.OK:
            row = t.rows[cell.artifact_key]
            assert set(row) == set(t.columns) and all(v.strip() for v in row.values()), (cell.cell_id, row)
    int8 = cid("local-cpu-espcn-int8")
    assert t.cell(int8, "Peak MB").startswith("—") and "peak memory not sampled" in html_text
    assert t.cell(int8, "Power").startswith("—")  # no power source, with its reason
    emu_power = next(c.telemetry.power_mw for c in run.cells if c.cell_id == "emu-cpu-espcn-int8")
    assert t.cell(cid("emu-cpu-espcn-int8"), "Power") == f"{emu_power:.0f} mW {EMU_SOURCE} · medium"
    assert t.cell(int8, "PIQE").startswith("—")  # PIQE undefined on this cell's frames, with the reason


def test_numbers_and_deltas(report: tuple[Path, RunRecord]) -> None:
    run = report[1]
    t = summary(report[0].read_text(encoding="utf-8"))
    by_id = {c.cell_id: c for c in run.cells}
    fp32, bic = by_id["local-cpu-espcn-fp32"], by_id["local-cpu-bicubic-fp32"]
    r = cid("local-cpu-espcn-fp32")
    assert fp32.series["paced"].median is not None and fp32.quality.psnr_y_db is not None
    assert fp32.deltas is not None and fp32.deltas.psnr_y_db is not None
    median = t.cell(r, "Paced @ 30 fps / median")
    assert median.startswith(f"{fp32.series['paced'].median:.1f}")  # paced median, 18.x ms → 1 decimal
    assert median.endswith(f"+{fp32.deltas.latency_median_ms:.1f} ms")  # the stored difference to bicubic
    assert t.cell(r, "Real time") == "yes by p90"  # real time at 30 fps, and the statistic that decided it
    psnr = t.cell(r, "PSNR-Y dB")
    assert f"{fp32.quality.psnr_y_db:.2f}" in psnr and f"+{fp32.deltas.psnr_y_db:.2f} dB" in psnr
    assert t.cell(cid("local-cpu-bicubic-fp32"), "PSNR-Y dB").endswith("baseline")
    assert bic.quality.psnr_y_db is not None
    assert fp32.deltas.psnr_y_db == pytest.approx(fp32.quality.psnr_y_db - bic.quality.psnr_y_db)
    # emulated phone: summary-only latency → the tool's mean, labelled, p90 "—" with the tool's reason, and a
    # real-time verdict that says it was judged on the mean
    e = cid("emu-cpu-espcn-int8")
    assert "EMULATED" in t.cell(e, "Status") and "benchmark_model summary" in t.cell(e, "Model")
    assert t.cell(e, "Paced @ 30 fps / median").startswith("9.60")
    assert "mean, no median" in t.cell(e, "Paced @ 30 fps / median")
    assert t.cell(e, "Paced @ 30 fps / p90").startswith("—")
    assert t.cell(e, "Real time") == "yes by mean"


def test_memory_columns_have_one_meaning_each(report: tuple[Path, RunRecord]) -> None:
    """An absolute peak (VmHWM on local) and a tool's growth of max RSS (benchmark_model on phones) are different
    quantities: each has its own column, and the other column says where the number is."""
    html_text = report[0].read_text(encoding="utf-8")
    t = summary(html_text)
    local, phone = cid("local-cpu-espcn-fp32"), cid("emu-cpu-espcn-int8")
    assert t.cell(local, "Peak MB") == "230" and t.cell(local, "Mem Δ MB").startswith("—")
    assert t.cell(phone, "Mem Δ MB") == "64" and t.cell(phone, "Peak MB").startswith("—")
    foot = html_text[html_text.index('id="footnotes"'):]
    assert f"({EMU_MEM_SOURCE}); see the Mem Δ MB column" in foot


def test_cpu_columns_name_the_same_two_figures_as_the_cost_table(report: tuple[Path, RunRecord]) -> None:
    """Issue 22: the process's CPU (% of one core) and the device's busy (% of all cores) are two named columns in
    the summary, as in the cost table; on a phone the process's is "—" with its own reason, the device's shown."""
    html_text, run = report[0].read_text(encoding="utf-8"), report[1]
    t = summary(html_text)
    by_id = {c.cell_id: c for c in run.cells}
    phone, local = cid("emu-cpu-espcn-int8"), cid("local-cpu-espcn-fp32")
    assert t.cell(phone, "CPU proc").startswith("—")
    assert t.cell(phone, "CPU dev") == f"{by_id['emu-cpu-espcn-int8'].telemetry.device_cpu_busy_pct:.0f}%"
    assert t.cell(local, "CPU proc") == f"{by_id['local-cpu-espcn-fp32'].telemetry.cpu_load_pct:.0f}%"
    assert "CPU" not in t.columns and "Δ CPU" not in collect(_section(html_text, "answer")).tables["cost"].columns


def test_missing_reasons_footnoted(report: tuple[Path, RunRecord]) -> None:
    text = report[0].read_text(encoding="utf-8")
    foot = text[text.index('id="footnotes"'):]
    for reason in ("RAPL energy counters not readable", "benchmark_model reports count/mean/std/min/max only",
                   "output shape did not match HR", "first-run time per layer not given"):
        assert reason in foot, reason


def _section(html_text: str, section_id: str) -> str:
    start = html_text.index(f'<section id="{section_id}">')
    return html_text[start:html_text.index("</section>", start)]


def _plain(html_fragment: str) -> str:
    return " ".join(" ".join(collect(html_fragment).text).split())


def test_piqe_and_mai_columns(report: tuple[Path, RunRecord]) -> None:
    html_text, run = report[0].read_text(encoding="utf-8"), report[1]
    t = summary(html_text)
    by_id = {c.cell_id: c for c in run.cells}
    bic, fp32 = by_id["local-cpu-bicubic-fp32"].quality, by_id["local-cpu-espcn-fp32"].quality
    assert bic.piqe is not None and fp32.piqe is not None
    assert bic.mai2021_score is not None and fp32.mai2021_score is not None
    r = cid("local-cpu-espcn-fp32")
    # PIQE: the value; its difference to bicubic only where the run stored one
    assert t.cell(r, "PIQE").startswith(f"{fp32.piqe:.1f}")
    # MAI score (2.12e18-like) shown as log10 with two decimals
    assert fmt_mai(fp32.mai2021_score) == f"{np.log10(fp32.mai2021_score):.2f}"
    assert t.cell(r, "MAI log₁₀").startswith(fmt_mai(fp32.mai2021_score))
    assert "e1" not in t.cell(r, "MAI log₁₀")
    assert t.cell(cid("local-cpu-bicubic-fp32"), "MAI log₁₀") == f"{fmt_mai(bic.mai2021_score)} baseline"
    assert "only comparable within perflab" in html_text and "+0.30 = twice the score" in html_text
    # missing: each with its reason, never blank
    assert t.cell(cid("local-cpu-espcn-int8"), "PIQE").startswith("—")
    evil = cid("local-cpu-evil")
    assert t.cell(evil, "PIQE").startswith("—") and t.cell(evil, "MAI log₁₀").startswith("—")
    foot = html_text[html_text.index('id="footnotes"'):]
    assert PIQE_MISSING in foot and "needs PSNR-Y and a latency" in foot  # the MAI reason the run stored
    assert "PIQE not computed on the emulated phone" in foot


def test_answer_first(report: tuple[Path, RunRecord]) -> None:
    """Above the fold: per device, each SR model beside bicubic — real time with its rule, latency with its
    spread, Δ quality and Δ cost, read from what the run stored."""
    html_text, run = report[0].read_text(encoding="utf-8"), report[1]
    assert html_text.index('<section id="answer">') < html_text.index('<section id="devices">')
    ans = collect(html_text).tables["answer"]
    assert set(ans.rows) == {c.artifact_key for c in run.cells}
    by_id = {c.cell_id: c for c in run.cells}
    fp32 = by_id["local-cpu-espcn-fp32"]
    assert fp32.latency_ms is not None and fp32.deltas is not None and fp32.realtime is not None
    r = cid("local-cpu-espcn-fp32")
    assert ans.cell(r, "Real time @ 30 fps") == "yes by p90"
    assert fp32.realtime.statistic == "p90" and fp32.realtime.rule in html_text
    lat = ans.cell(r, "Latency")
    assert lat.startswith(f"{fp32.latency_ms.median:.1f} ms") and f"p90 {fp32.latency_ms.p90:.1f}" in lat
    assert ans.cell(r, "Δ PSNR-Y") == fmt_signed(fp32.deltas.psnr_y_db or 0.0, 2, " dB")
    assert ans.cell(r, "Δ SSIM-Y") == fmt_signed(fp32.deltas.ssim_y or 0.0, 4)
    assert ans.cell(r, "Δ PIQE ↓") == fmt_signed(fp32.deltas.piqe or 0.0, 1)  # stored Δ PIQE (lower is better)
    assert fp32.deltas.mai2021_ratio is not None and ans.cell(r, "MAI × bicubic") == \
        f"{fmt_ratio(fp32.deltas.mai2021_ratio)}×"
    assert ans.cell(cid("local-cpu-bicubic-fp32"), "Δ PSNR-Y") == "baseline"
    # p10–p90 where the run stored a p10
    assert fp32.latency_ms.p10 is not None
    assert f"spread p10 {fp32.latency_ms.p10:.3f} – p90 {fp32.latency_ms.p90:.3f} ms" in html_text  # summary tooltip
    assert lat == (f"{fp32.latency_ms.median:.1f} ms median [p10 {fmt_ms(fp32.latency_ms.p10)} – p90 "
                   f"{fmt_ms(fp32.latency_ms.p90 or 0.0)}]")
    # a phone that reports only mean ± std: said so, in the verdict and in the latency
    e = cid("emu-cpu-espcn-int8")
    assert ans.cell(e, "Real time @ 30 fps") == "yes by mean"
    assert ans.cell(e, "Latency") == "9.60 ± 0.30 ms mean ± std (tool summary)"
    assert "EMULATED" in ans.cell(e, "Model")
    # the run-level caveat that bears on the Δ quality sits in the answer, and with the warnings
    answer = _plain(_section(html_text, "answer"))
    assert f"Read with care: training_images {TRAINING_WARNING}" in answer.replace("&#39;", "'")
    assert "Quality measured on images the zoo was trained on — 1 warning about the whole run" in _plain(
        _section(html_text, "warnings"))
    # a cell that did not finish shows its status and reason in the answer too
    assert "failed" in ans.cell(cid("local-cpu-fsrcnn-fp16"), "Real time @ 30 fps")


def cost(table: Table, row: str, column: str) -> str:
    """A cost-table cell by the end of its column name (the group header is long)."""
    name = next(c for c in table.columns if c == column or c.endswith(" / " + column))
    return table.cell(row, name)


def test_cost_versus_bicubic(report: tuple[Path, RunRecord]) -> None:
    """Issue 9 item 8: for every SR cell, in the answer: ΔCPU, ΔGPU, ΔMB, Δ°C, ΔmA, mAh per hour and mJ per frame
    versus bicubic, each with its power source and confidence; "—" with the reason where missing; the idle
    baseline per device; the sentence users quote."""
    html_text, run = report[0].read_text(encoding="utf-8"), report[1]
    answer = _section(html_text, "answer")
    t = collect(answer).tables["cost"]
    by_id = {c.cell_id: c for c in run.cells}
    assert set(t.rows) == {c.artifact_key for c in run.cells}
    e = cid("emu-cpu-espcn-int8")
    d = by_id["emu-cpu-espcn-int8"].deltas
    tel = by_id["emu-cpu-espcn-int8"].telemetry
    assert d is not None and d.current_ma is not None and d.mah_per_hour is not None and d.mj_per_frame is not None
    assert cost(t, e, "Δ CPU dev") == "+19 pts +37 vs idle"  # 41 % vs 22 % (bicubic) and 4 % (at rest)
    # the process's CPU (% of one core) and the device's busy (points of all cores): two named columns, the
    # process's not measured on a phone, with that reason (not the device's)
    assert cost(t, e, "Δ CPU proc").startswith("—")
    lp = by_id["local-cpu-espcn-fp32"].deltas
    assert lp is not None and lp.cpu_load_pct is not None
    assert cost(t, cid("local-cpu-espcn-fp32"), "Δ CPU proc") == fmt_signed(lp.cpu_load_pct, 0, " pts")
    assert cost(t, e, "Δ °C skin").startswith("—")
    assert cost(t, e, "Δ GPU") == "±0 pts +2 vs idle"
    assert cost(t, e, "Δ MB") == "+4 MB"  # 64.5 − 61 MB
    assert cost(t, e, "Δ °C SoC") == fmt_signed(d.temp_max_c or 0.0, 1, " °C")
    vs_idle = by_id["emu-cpu-espcn-int8"].vs_idle
    assert vs_idle is not None and vs_idle.current_ma is not None
    assert cost(t, e, "Δ mA") == f"{fmt_signed(d.current_ma, 0, ' mA')} {fmt_signed(vs_idle.current_ma, 0)} vs idle"
    # mAh per hour is the cell's own mean mA held for an hour: shown as its own value, never the Δ mA again
    assert cost(t, e, "mAh / h") == f"{tel.mah_per_hour:.0f} this cell"
    assert cost(t, e, "Δ mJ / frame") == f"{fmt_signed(d.mj_per_frame, 1)} {tel.mj_per_frame:.1f} total"
    assert cost(t, e, "Power source") == f"{EMU_SOURCE} confidence medium"
    assert (f'title="power source: {EMU_SOURCE}, confidence medium; current_now: {EMU_CONVENTION}; window 6.0 s '
            "sampled every 100 ms; the sampler&#39;s own cost: 0.60% of one core") in answer
    assert "EMULATED" in cost(t, e, "Model")
    # bicubic's row: its own values, with the Δ to the device at rest under CPU and current
    b = cid("emu-cpu-bicubic-fp32")
    assert cost(t, b, "Δ CPU dev") == "22% +18 vs idle" and cost(t, b, "Δ MB") == "61 MB baseline"
    # local: no battery, so current and energy are "—" with the sampler's reason; CPU and memory are measured
    lf = cid("local-cpu-espcn-fp32")
    assert cost(t, lf, "Δ CPU dev").startswith("+42 pts") and cost(t, lf, "Δ MB") == "+18 MB"
    for col in ("Δ mA", "mAh / h", "Δ mJ / frame", "Δ °C SoC", "Δ GPU"):
        assert cost(t, lf, col).startswith("—"), col
    foot = _plain(_section(html_text, "summary"))
    assert LOCAL_NO_BATTERY in foot and LOCAL_NO_TZ in foot and LOCAL_NO_GPU in foot
    # a cell with no sampled telemetry says so instead of a blank
    assert cost(t, cid("local-cpu-espcn-int8"), "Δ CPU dev").startswith("—")
    assert "telemetry not recorded by this perflab version or not sampled" in foot
    # no bicubic on the emulated GPU delegate: no deltas, and why
    assert cost(t, cid("emu-gpu-espcn-fp32"), "Δ mA").startswith("—")
    # the idle baseline per device, under its heading
    idle = re.search(r'<p class="idle" data-device="emulator-perflab-1">(.*?)</p>', answer, re.DOTALL)
    assert idle is not None
    assert _plain(idle.group(1)) == ("Idle (5.0 s at rest before the first cell): CPU 4% · GPU 1% · memory available "
                                     "5170 MB · temperature 32.1 °C · current 160 mA · power 616 mW")
    local_idle = re.search(r'<p class="idle" data-device="local">(.*?)</p>', answer, re.DOTALL)
    assert local_idle is not None and "current —" in _plain(local_idle.group(1))
    # the sentence users quote, with the source and its confidence
    sentences = _plain(" ".join(re.findall(r'<ul class="plain costsentences"[^>]*>(.*?)</ul>', answer, re.DOTALL)))
    assert (f"espcn int8 · cpu at 30 fps: {fmt_signed(d.current_ma, 0, ' mA')} vs bicubic ({EMU_SOURCE}, "
            f"confidence medium), {fmt_signed(d.mj_per_frame, 1, ' mJ')} per frame; device CPU +19 pts") in sentences
    assert ("espcn fp32 · cpu at 30 fps: current and power not measured "
            f"({LOCAL_NO_BATTERY}); device CPU +42 pts, memory +18 MB.") in sentences
    assert "bicubic fp32 · cpu at 30" not in sentences  # the baseline has no sentence of its own


def _timeline(html_text: str, serial: str) -> str:
    m = re.search(r'<div class="timeline" id="timeline-' + re.escape(serial) + r'"[^>]*>(.*?)(?=<div class="timeline"|$)',
                  html_text, re.DOTALL)
    assert m is not None, serial
    return m.group(1)


def test_timelines_per_device(report: tuple[Path, RunRecord]) -> None:
    """Issue 9 item 8: per device, current, power, temperature, CPU and GPU load over the run from the stored
    sampler files, each cell's window numbered in a key; a stream the device lacks says why instead of an axis."""
    html_text = report[0].read_text(encoding="utf-8")
    sec = _section(html_text, "timelines")
    assert html_text.index('<section id="timelines">') > html_text.index('<section id="latency">')
    emu = _timeline(sec, "emulator-perflab-1")
    imgs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', emu)
    assert len(imgs) == 1
    w, h = Image.open(io.BytesIO(base64.b64decode(imgs[0]))).size
    assert w > 800 and h > 600  # seven stacked streams (two temperature sensors)
    key = _plain(emu)
    assert "Windows: idle at rest (idle baseline) · 1 bicubic fp32 · cpu · 2 espcn int8 · cpu · 3 espcn fp32 · gpu" in key
    # the phone has every stream but a skin sensor: that line is not drawn, with why (never another zone's line)
    assert "skin temperature not drawn: no skin thermal zone among cpu-therm" in key
    assert key.count("not drawn") == 1
    assert "EMULATED" in key
    local = _plain(_timeline(sec, "local"))
    assert f"battery current not drawn: {LOCAL_NO_BATTERY}" in local and f"power not drawn: {LOCAL_NO_BATTERY}" in local
    assert f"SoC temperature not drawn: {LOCAL_NO_TZ}" in local and f"skin temperature not drawn: {LOCAL_NO_TZ}" in local
    assert f"GPU busy not drawn: {LOCAL_NO_GPU}" in local
    assert "device CPU busy not drawn" not in local and "process RSS not drawn" not in local  # CPU and memory drawn
    assert "No timeline stored for espcn int8 · cpu" in local  # a cell without a sampler file says so


def test_every_stored_telemetry_number(report: tuple[Path, RunRecord]) -> None:
    """Each ok cell's stored telemetry, its own values, per device; missing ones with their reasons."""
    html_text, run = report[0].read_text(encoding="utf-8"), report[1]
    t = collect(_section(html_text, "timelines")).tables["telemetry"]
    c = next(c for c in run.cells if c.cell_id == "emu-cpu-espcn-int8")
    tel = c.telemetry
    r = cid("emu-cpu-espcn-int8")
    assert t.cell(r, "CPU busy") == "41% cores 41%" and t.cell(r, "GPU busy") == "3%"
    # one sensor per column: the SoC zone's end (max); the cool-down gate's start reading (another sensor) only in
    # the tooltip, named; the skin its own column
    assert t.cell(r, "SoC °C") == f"{tel.temp_end_c:.1f} ({tel.temp_max_c:.1f}) cpu-therm"
    assert t.cell(r, "Skin °C").startswith("—")
    assert t.cell(r, "Current") == f"{tel.current_ma:.0f} mA" and t.cell(r, "Voltage") == "3.850 V"
    assert t.cell(r, "Power") == f"{tel.power_mw:.0f} mW" and t.cell(r, "Window") == "6.0 s every 100 ms"
    assert t.cell(r, "RSS peak") == "64 MB"  # 64.5 rounds to even
    lb = cid("local-cpu-bicubic-fp32")
    assert t.cell(lb, "CPU busy") == "55%" and t.cell(lb, "RSS peak") == "205 MB"
    for col in ("Current", "Voltage", "Power", "Energy", "GPU busy", "SoC °C", "Skin °C"):
        assert t.cell(lb, col).startswith("—"), col
    assert cid("local-cpu-fsrcnn-fp16") not in t.rows  # failed: nothing was sampled


def test_timeline_files_outside_the_run_folder_are_not_read(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    run = build_run_folder(run_dir, with_frames=False, with_samples=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("T 1\ncpu cpu 1 0 0 1 0 0 0 0\nT 2\ncpu cpu 2 0 0 2 0 0 0 0\n")
    cells = [c.model_copy(update={"telemetry": c.telemetry.model_copy(update={"timeline_file": "../secret.txt"})})
             if c.cell_id == "local-cpu-bicubic-fp32" else c for c in run.cells]
    cells = [c.model_copy(update={"telemetry": c.telemetry.model_copy(update={"timeline_file": "telemetry/gone.txt"})})
             if c.cell_id == "local-cpu-espcn-fp32" else c for c in cells]
    (run_dir / "results.json").write_text(run.model_copy(update={"cells": cells}).to_json())
    emu_file = next(c.telemetry.timeline_file for c in cells if c.cell_id == "emu-cpu-bicubic-fp32")
    assert emu_file is not None
    with (run_dir / emu_file).open("a", encoding="utf-8") as f:
        f.write("bat not numbers at all\n\x00\x01 binary junk\n")  # a damaged file: counted, never guessed at
    sec = _section(render_run_report(run_dir).read_text(encoding="utf-8"), "timelines")
    local = _plain(_timeline(sec, "local"))
    assert "bicubic fp32 · cpu: ../secret.txt: outside the run folder, not read" in local
    assert "espcn fp32 · cpu: telemetry/gone.txt: cannot read" in local
    assert f"bicubic fp32 · cpu: 2 line(s) of {emu_file} not understood, skipped" in _plain(
        _timeline(sec, "emulator-perflab-1"))


def test_an_older_results_json_without_the_stored_convention_still_renders(tmp_path: Path) -> None:
    """A perflab.results/2 file written before the battery convention and the sampler's achieved rate were stored
    (no ``convention``, ``sample_rate_hz``, ``sample_max_gap_ms`` keys): it reads and renders; the raw current of
    those files is not plotted in mA, and the timeline says why instead of guessing a unit and sign."""
    run_dir = tmp_path / "old"
    build_run_folder(run_dir, with_frames=False, with_samples=False)
    raw = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    for rec in [*(c["telemetry"] for c in raw["cells"]), *raw["idle"]]:
        for k in ("convention", "sample_rate_hz", "sample_max_gap_ms"):
            rec.pop(k, None)
    raw["schema"] = "perflab.results/2"
    (run_dir / "results.json").write_text(json.dumps(raw), encoding="utf-8")
    html_text = render_run_report(run_dir).read_text(encoding="utf-8")
    emu = _plain(_timeline(_section(html_text, "timelines"), "emulator-perflab-1"))
    assert "battery current not drawn: raw battery current was sampled, but its record stores how the unit and " \
           "sign of current_now were decided only in words" in emu and "cannot be plotted in mA" in emu
    # the other streams are still drawn (this phone has no skin zone: that line says so, the SoC one is drawn)
    assert "power not drawn" in emu and "SoC temperature not drawn" not in emu
    assert "skin temperature not drawn: no skin thermal zone among cpu-therm" in emu
    assert f"current_now: {EMU_CONVENTION}" in html_text  # the old sentence is still shown


def test_a_stalled_sampler_is_a_grouped_warning_with_its_numbers(tmp_path: Path) -> None:
    """The sampler's achieved rate and longest gap as the run stores them, and the warnings the run files for a
    sampler that fell behind (perflab.lab.costs): grouped in the report, the numbers in the Window tooltip."""
    from perflab.lab.costs import sampler_rate_warnings

    run_dir = tmp_path / "stall"
    run = build_run_folder(run_dir, with_frames=False, with_samples=False)
    warned = sampler_rate_warnings(4.1, 1320.0, 100.0)
    assert [w.code for w in warned] == ["sampler_rate", "sampler_stall"]
    cells = [c.model_copy(update={"telemetry": c.telemetry.model_copy(update={"sample_rate_hz": 4.1,
                                                                             "sample_max_gap_ms": 1320.0}),
                                  "warnings": [*c.warnings, *warned]})
             if c.cell_id == "emu-cpu-espcn-int8" else c for c in run.cells]
    (run_dir / "results.json").write_text(run.model_copy(update={"cells": cells}).to_json())
    html_text = render_run_report(run_dir).read_text(encoding="utf-8")
    text = _plain(_section(html_text, "warnings"))
    assert "The telemetry sampler fell behind its asked rate — 1 warning on 1 cell" in text
    assert "The telemetry sampler stalled during the inference window — 1 warning on 1 cell" in text
    assert "its longest gap was 1320 ms, 13.2× the 100 ms interval" in text
    assert "window 6.00 s (achieved 4.10 Hz, longest gap 1320 ms)" in html_text


def test_warnings_grouped_by_kind_with_counts(report: tuple[Path, RunRecord]) -> None:
    sec = _section(report[0].read_text(encoding="utf-8"), "warnings")
    groups = re.findall(r'<div class="warngroup" data-code="([^"]+)">', sec)
    assert groups == ["training_images", "high_cv", "emulated"]  # run-level first
    text = _plain(sec)
    assert "Emulated numbers — 3 warnings on 3 cells" in text
    assert "Unstable timing (high coefficient of variation) — 2 warnings on 1 cell" in text
    # the three identical emulated notices are one item naming its three cells
    assert text.count(EMU_WARNING) == 1 and 'data-count="3"' in sec and "3 cells:" in text


def test_delegate_compatibility_section(report: tuple[Path, RunRecord]) -> None:
    html_text = report[0].read_text(encoding="utf-8")
    sec = _section(html_text, "compat")
    # one entry per model file: espcn fp32 ran on the host CPU and the emulated GPU, but is listed once
    models = re.findall(r'<div class="compat[^"]*" id="[^"]+" data-model="([^"]+)"', sec)
    assert models.count("espcn fp32") == 1 and models.count("espcn int8") == 1 and models.count("bicubic fp32") == 1
    assert len(models) == 5  # bicubic, espcn fp32, espcn int8, fsrcnn fp16, the user's model
    blocks = dict(zip(models, re.split(r'<div class="compat[^"]*" id="[^"]+" data-model="[^"]+">', sec)[1:], strict=True))
    fp32 = _plain(blocks["espcn fp32"])
    assert "CONV_2D×3" in fp32 and "TANH×2" in fp32 and "DEPTH_TO_SPACE×1" in fp32
    assert "GPU delegate would reject 1 op(s)" in fp32 and "SR trap: depth-to-space rejected" in fp32
    assert "block_size 3 is not supported on this GPU backend" in fp32
    assert 'class="op rejected trap"' in blocks["espcn fp32"]
    # what the devices did: host CPU, and the emulated phone's own partition lines read in plain words
    assert "delegate cpu" in fp32 and "delegate gpu" in fp32
    assert REPLACING in fp32 and "5 of 7 nodes on TfLiteGpuDelegateV2 in 2 partition(s); 2 node(s) fell back to CPU" in fp32
    assert "graph only partly on GPU" in fp32
    int8 = _plain(blocks["espcn int8"])
    assert D2S_REASON in int8 and "Flex (TF Select) ops never run on a GPU delegate" in int8 and "perflab" in int8
    assert "GPU delegate would reject 2 op(s)" in int8 and "whole graph on XNNPACK" in int8
    assert "DEPTH_TO_SPACE with int8 tensors" in int8  # the unsupported GPU cell's own reason
    bic = _plain(blocks["bicubic fp32"])
    assert "GPU delegate: compatible (TFLite runtime 2.21.0)" in bic and "the analyzer accepts it here" in bic
    assert "host LiteRT: 1 delegate node(s)" in bic
    # no analyzer report: the reason
    assert NO_TF in _plain(blocks["&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt; fp32"])
    assert "not analysed: the cell ended failed" in _plain(blocks["fsrcnn fp16"])


def test_per_frame_section(report: tuple[Path, RunRecord]) -> None:
    html_text, run = report[0].read_text(encoding="utf-8"), report[1]
    sec = _section(html_text, "per-frame")
    page = collect(sec)
    by_id = {c.cell_id: c for c in run.cells}
    fp32 = by_id["local-cpu-espcn-fp32"]
    frame = fp32.quality.per_frame[0]
    assert frame.psnr_y_db is not None and frame.d_psnr_y_db is not None and frame.d_ssim_y is not None
    assert frame.ssim_y is not None and frame.piqe is not None
    bic_frame = by_id["local-cpu-bicubic-fp32"].quality.per_frame[0]
    assert bic_frame.psnr_y_db is not None
    # the stored per-frame difference is this frame's PSNR-Y minus bicubic's on the same frame
    assert frame.d_psnr_y_db == pytest.approx(frame.psnr_y_db - bic_frame.psnr_y_db)
    # frame by frame: PSNR-Y and SSIM-Y with the stored difference to bicubic on the same frame, PIQE alone
    t = page.tables["perframe"]
    assert t.cell(frame.frame, "Frame") == frame.frame
    assert t.cell(frame.frame, "bicubic fp32 baseline / PSNR-Y dB") == f"{bic_frame.psnr_y_db:.2f}"
    assert t.cell(frame.frame, "espcn fp32 / PSNR-Y dB") == f"{frame.psnr_y_db:.2f} " + fmt_signed(frame.d_psnr_y_db, 2,
                                                                                                 " dB")
    assert t.cell(frame.frame, "espcn fp32 / SSIM-Y") == f"{frame.ssim_y:.4f} {fmt_signed(frame.d_ssim_y, 4)}"
    assert t.cell(frame.frame, "espcn fp32 / PIQE") == f"{frame.piqe:.1f}"
    assert t.cell(frame.frame, "espcn int8 / PIQE").startswith("—")  # PIQE undefined on this frame, with why
    # over all frames: statistics per cell, PSNR-RGB among them
    st = page.tables["framestats"]
    assert set(st.rows) == {cid("local-cpu-bicubic-fp32"), cid("local-cpu-espcn-fp32"), cid("local-cpu-espcn-int8")}
    assert st.cell(cid("local-cpu-espcn-fp32"), "PSNR-RGB dB") == f"{fp32.quality.psnr_rgb_db:.2f}"
    assert st.cell(cid("local-cpu-espcn-fp32"), "frames worse than bicubic") == "0 of 2"
    assert "Per-frame quality — x86_64 host (local) · cpu, 2 frames" in sec  # the distribution figure
    assert "Per-frame metrics over time — x86_64 host (local) · cpu, 2 frames" in sec  # and the metrics over time
    assert sec.count("data:image/png;base64,") == 2


def test_per_frame_is_bounded_for_long_clips(tmp_path: Path) -> None:
    """A clip of many frames: the table lists the first few, statistics and the figure cover all."""
    from perflab.report.view_frames import MAX_FRAME_ROWS

    run_dir = tmp_path / "long"
    run = build_run_folder(run_dir, with_frames=False)
    n = 240
    rng = np.random.default_rng(5)
    bic = [FrameQuality(frame=f"clip_{i:05d}", psnr_y_db=30 + float(rng.normal()), ssim_y=0.9, psnr_rgb_db=29.0,
                        piqe=40.0 + float(rng.normal())) for i in range(n)]
    deltas = rng.normal(0.4, 0.3, n)
    sr = [b.model_copy(update={"psnr_y_db": (b.psnr_y_db or 0.0) + float(d), "piqe": 30.0}) for b, d in zip(bic, deltas, strict=True)]
    cells = []
    for c in run.cells:
        if c.cell_id == "local-cpu-bicubic-fp32":
            c = c.model_copy(update={"quality": c.quality.model_copy(update={"per_frame": bic, "frames": n})})
        elif c.cell_id == "local-cpu-espcn-fp32":
            c = c.model_copy(update={"quality": c.quality.model_copy(update={"per_frame": sr, "frames": n})})
        cells.append(c)
    cells = finalize_cells(cells, 30.0)  # the per-frame deltas, as the run stores them
    (run_dir / "results.json").write_text(run.model_copy(update={"cells": cells}).to_json())
    sec = _section(render_run_report(run_dir).read_text(encoding="utf-8"), "per-frame")
    assert sec.count("<tr data-frame=") == MAX_FRAME_ROWS
    assert f"first {MAX_FRAME_ROWS} of {n}" in sec and f"{n - MAX_FRAME_ROWS} more frames not listed" in sec
    st = collect(sec).tables["framestats"]
    r = cid("local-cpu-espcn-fp32")
    assert st.cell(r, "frames worse than bicubic") == f"{int((deltas < 0).sum())} of {n}"
    assert st.cell(r, "ΔPSNR-Y mean") == fmt_signed(float(deltas.mean()), 2, " dB")
    assert st.cell(r, "Δ worst frame").startswith(fmt_signed(float(deltas.min()), 2, " dB"))
    assert f"{n} frames" in sec and sec.count("data:image/png;base64,") == 2  # distribution, metrics over time


def test_report_without_samples_or_frames(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    build_run_folder(run_dir, with_samples=False, with_frames=False)
    text = render_run_report(run_dir).read_text(encoding="utf-8")
    assert "no samples.csv" in text and 'id="visual"' not in text
    assert 'id="summary"' in text and "Quality vs latency" in text


def test_back_to_back_scenario_and_empty_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "b2b"
    run = build_run_folder(run_dir, with_frames=False)
    scen = run.scenario.model_copy(update={"fps": None})
    cells = [c.model_copy(update={"realtime": None}) for c in run.cells]
    (run_dir / "results.json").write_text(run.model_copy(update={"scenario": scen, "cells": cells}).to_json())
    text = render_run_report(run_dir).read_text(encoding="utf-8")
    assert "back-to-back (no fps, no frame budget)" in text
    assert "no frame budget to judge real time against" in text
    assert summary(text).cell(cid("local-cpu-espcn-fp32"), "Real time").startswith("—")

    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    empty = run.model_copy(update={"cells": [], "devices": []})
    (empty_dir / "results.json").write_text(empty.to_json())
    text = render_run_report(empty_dir).read_text(encoding="utf-8")
    assert "No raw per-iteration samples" in text and "nothing to plot" in text


def test_devices_sharing_cell_ids(tmp_path: Path) -> None:
    """The runner's multi-device layout: the same cell_id on every device; rows, samples and outputs found by the
    store's artefact key (``serial/cell_id`` in samples.csv, ``frames/serial_cell_id/``)."""
    run_dir = tmp_path / "multi"
    run = build_run_folder(run_dir)
    rename = {"emu-cpu-bicubic-fp32": "cpu-bicubic-fp32", "emu-cpu-espcn-int8": "cpu-espcn-int8",
              "local-cpu-bicubic-fp32": "cpu-bicubic-fp32", "local-cpu-espcn-int8": "cpu-espcn-int8"}
    old_keys = {c.artifact_key: c for c in run.cells}
    cells = [c.model_copy(update={"cell_id": rename.get(c.cell_id, c.cell_id),
                                  "artifact_key": key(c.device.serial, rename.get(c.cell_id, c.cell_id))})
             for c in run.cells]
    cells = finalize_cells(cells, 30.0)  # pairing by device and delegate, as the run does it
    (run_dir / "results.json").write_text(run.model_copy(update={"cells": cells}).to_json())
    new_key = {old: key(c.device.serial, rename.get(c.cell_id, c.cell_id)) for old, c in old_keys.items()}
    lines = (run_dir / "samples.csv").read_text().splitlines()
    out = [lines[0]]
    for ln in lines[1:]:
        k, rest = ln.split(",", 1)
        out.append(f"{new_key[k]},{rest}")
    (run_dir / "samples.csv").write_text("\n".join(out) + "\n")
    for old, new in new_key.items():
        if (run_dir / "frames" / artifact_dir(old)).is_dir() and old != new:
            (run_dir / "frames" / artifact_dir(old)).rename(run_dir / "frames" / artifact_dir(new))
    text = render_run_report(run_dir).read_text(encoding="utf-8")
    t = summary(text)
    assert {"local/cpu-bicubic-fp32", "emulator-perflab-1/cpu-bicubic-fp32", "local/cpu-espcn-int8",
            "emulator-perflab-1/cpu-espcn-int8", "local/local-cpu-espcn-fp32"} <= set(t.rows)
    assert "EMULATED" in t.cell("emulator-perflab-1/cpu-espcn-int8", "Status")
    assert "EMULATED" not in t.cell("local/cpu-espcn-int8", "Status")
    # deltas against the baseline of the same device, raw samples and crops still found
    assert "+0.70 dB" in t.cell("emulator-perflab-1/cpu-espcn-int8", "PSNR-Y dB")
    assert "Latency distribution — x86_64 host (local)" in text
    assert 'id="visual"' in text and "espcn int8</strong>" in text


def test_report_renders_what_the_run_stored(tmp_path: Path) -> None:
    """The report computes no delta, verdict or score of its own: change the stored ones and the page follows."""
    from perflab.store.results import RealtimeRecord

    run_dir = tmp_path / "stored"
    run = build_run_folder(run_dir, with_frames=False)
    cells = []
    for c in run.cells:
        if c.cell_id == "local-cpu-espcn-fp32":
            assert c.deltas is not None
            c = c.model_copy(update={
                "deltas": c.deltas.model_copy(update={"psnr_y_db": 9.99, "latency_median_ms": -1.0,
                                                       "mai2021_ratio": 7.5, "piqe": 3.25}),
                "realtime": RealtimeRecord(meets=False, statistic="p90", value_ms=40.0, budget_ms=33.3,
                                           rule="a rule stated by the run"),
                "quality": c.quality.model_copy(update={"mai2021_score": 1.0e10}),
            })
        cells.append(c)
    (run_dir / "results.json").write_text(run.model_copy(update={"cells": cells}).to_json())
    text = render_run_report(run_dir).read_text(encoding="utf-8")
    t, ans = summary(text), collect(text).tables["answer"]
    r = cid("local-cpu-espcn-fp32")
    assert t.cell(r, "PSNR-Y dB").endswith("+9.99 dB") and ans.cell(r, "Δ PSNR-Y") == "+9.99 dB"
    assert t.cell(r, "Paced @ 30 fps / median").endswith("−1.0 ms") and ans.cell(r, "Δ latency") == "−1.0 ms"
    assert t.cell(r, "Real time") == "no by p90" and "a rule stated by the run" in text
    assert t.cell(r, "MAI log₁₀") == "10.00 7.5× bic" and ans.cell(r, "MAI × bicubic") == "7.5×"
    assert ans.cell(r, "Δ PIQE ↓") == "+3.2"  # the stored Δ, not one computed from the PIQE values


def test_incomplete_run_says_what_never_ran(tmp_path: Path) -> None:
    """A run stopped by a signal: an INCOMPLETE banner above everything, naming the cells that never ran and those
    interrupted; interrupted cells marked in the tables."""
    run_dir = tmp_path / "stopped"
    run = build_run_folder(run_dir, with_frames=False)
    cells = [c for c in run.cells if c.cell_id != "emu-gpu-espcn-int8"]  # planned, never started
    cells = [c.model_copy(update={"status": CellStatus.INTERRUPTED, "reason": "stopped by SIGINT during timing",
                                  "latency_ms": None, "series": {}})
             if c.cell_id == "emu-gpu-espcn-fp32" else c for c in cells]
    stopped = run.model_copy(update={"cells": cells, "stop": StopRecord(
        signal="SIGINT", reason="interrupted from the keyboard (Ctrl-C)", at_utc="2024-06-11T10:18:03Z"), "exit_code": 130})
    assert not stopped.complete
    (run_dir / "results.json").write_text(stopped.to_json())
    text = render_run_report(run_dir).read_text(encoding="utf-8")
    assert text.index('id="incomplete-banner"') < text.index('<section id="answer">')
    banner = _plain(text[text.index('id="incomplete-banner"'):text.index('<section id="answer">')])
    assert "INCOMPLETE run: the run was stopped (SIGINT) at 2024-06-11T10:18:03Z: interrupted from the keyboard" in banner
    assert "Never ran (1): Pixel 7 (perflab emulated) (emulator-perflab-1) · emu-gpu-espcn-int8" in banner
    assert "Interrupted (1): Pixel 7 (perflab emulated) (emulator-perflab-1) · emu-gpu-espcn-fp32" in banner
    assert "stopped by SIGINT during timing" in banner
    t = summary(text)
    assert "interrupted" in t.cell(cid("emu-gpu-espcn-fp32"), "Status")
    assert 'data-status="interrupted"' in text and "badge st-interrupted" in text
    # the same run, complete: no banner
    (run_dir / "results.json").write_text(run.to_json())
    assert 'id="incomplete-banner"' not in render_run_report(run_dir).read_text(encoding="utf-8")


def _as_v1(raw: dict[str, object]) -> dict[str, object]:
    """A /2 results dict in the shape perflab.results/1 wrote (what an old run folder holds)."""
    out = {k: v for k, v in raw.items() if k not in ("planned", "stop", "warnings", "resumed_utc")}
    out["schema"] = "perflab.results/1"
    cells = []
    for c in raw["cells"]:  # type: ignore[attr-defined]
        c = {k: v for k, v in c.items() if k not in ("artifact_key", "delegates")}
        c["delegate_log"] = [d["line"] for d in raw_cell_delegates(c, raw)]
        rt = c.get("realtime")
        c["realtime"] = rt["meets"] if isinstance(rt, dict) else None
        if isinstance(c.get("deltas"), dict):
            c["deltas"] = {k: v for k, v in c["deltas"].items() if k != "missing"}
        q = dict(c["quality"])
        frames = []
        for f in q["per_frame"]:
            g = {k: v for k, v in f.items() if k != "missing" and v is not None}
            if "piqe" in f.get("missing", {}):
                g["piqe_missing"] = f["missing"]["piqe"]
            frames.append(g)
        q["per_frame"] = frames
        c["quality"] = q
        if isinstance(c.get("layers"), dict):
            c["layers"] = {k: v for k, v in c["layers"].items() if k != "missing"}
        cells.append(c)
    out["cells"] = cells
    return out


def raw_cell_delegates(c: dict[str, object], raw: dict[str, object]) -> list[dict[str, str]]:
    src = next(x for x in raw["cells"] if x["cell_id"] == c["cell_id"] and x["device"] == c["device"])  # type: ignore[attr-defined]
    return list(src.get("delegates", []))


def test_v1_results_still_render(tmp_path: Path) -> None:
    """A perflab.results/1 folder renders: the store upgrades it, and what /1 did not record shows as missing with
    that reason; its delegate lines are shown verbatim (no structured reading), its verdicts with /1's rule."""
    import json

    run_dir = tmp_path / "v1"
    run = build_run_folder(run_dir)
    (run_dir / "results.json").write_text(json.dumps(_as_v1(json.loads(run.to_json()))), encoding="utf-8")
    text = render_run_report(run_dir).read_text(encoding="utf-8")
    t = summary(text)
    assert set(t.rows) == {c.artifact_key for c in run.cells}  # /1's naming rule gives the same keys here
    assert t.cell(cid("local-cpu-espcn-fp32"), "Real time").startswith("yes")
    assert "recorded by perflab.results/1" in text  # the rule a /1 verdict was made by
    assert "Latency distribution — x86_64 host (local)" in text and 'id="visual"' in text  # samples, frames found
    assert REPLACING in _plain(_section(text, "compat")) and "5 of 7 nodes" not in text
    assert 'id="incomplete-banner"' not in text  # finished; /1 lists no plan, which is not a reason to alarm
    assert "not recorded by this perflab version" in _plain(_section(text, "layers"))


def test_layers_section_says_why_a_device_has_none(report: tuple[Path, RunRecord]) -> None:
    sec = _section(report[0].read_text(encoding="utf-8"), "layers")
    text = _plain(sec)
    assert "espcn fp32 · cpu" in text  # the one profiled cell
    assert "Without a per-layer table" in text
    assert "x86_64 host (local)" in text and "Pixel 7 (perflab emulated) (emulator-perflab-1)" in text
    assert "profiling was not requested" in text  # local cells that were not profiled, and why that is not known
    assert f"{NO_PROFILE} (2 cells: bicubic fp32 · cpu, espcn int8 · cpu)" in text  # the reason the run stored


def test_bad_run_folders(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no results\.json"):
        render_run_report(tmp_path)
    (tmp_path / "results.json").write_text('{"schema": "perflab.results/99"}', encoding="utf-8")
    with pytest.raises(StoreError, match=r"perflab\.results/99"):
        render_run_report(tmp_path)
    run_dir = tmp_path / "r"
    build_run_folder(run_dir, with_frames=False)
    (run_dir / "samples.csv").write_text("cell_id,series,iteration,latency_ms\nx,paced,0,1.0\nx,bogus,1,2\n")
    with pytest.raises(StoreError, match=r"samples.csv:3: series 'bogus'"):
        render_run_report(run_dir)


def test_report_does_not_import_devices_workloads_or_emulator() -> None:
    code = ("import sys, perflab.report.html, perflab.report.plots, perflab.report.pareto; "
            "bad = [m for m in sys.modules if m.split('.')[:2] in "
            "(['perflab','devices'], ['perflab','workloads'], ['perflab','emulator'])]; print(bad); "
            "sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------------ headless Chromium

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (CI installs it)")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="perflab-chromium-")
    try:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, env={**os.environ, "LANG": "C.UTF-8"}, check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@needs_chromium
def test_chromium_dom(report: tuple[Path, RunRecord]) -> None:
    path, run = report
    r = _chromium("--dump-dom", path.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    page = collect(dom)
    assert page.scripts == 0, "a script element made it into the page"
    assert "<title>perflab · 540p30 · 20240611T101500Z-3f9c</title>" in dom  # the injected script did not run
    assert "PWNED</title>" not in dom
    t = page.tables["summary"]
    assert set(t.rows) == {c.artifact_key for c in run.cells}
    for c in run.cells:
        emulated_row = "EMULATED" in t.cell(c.artifact_key, "Status")
        assert emulated_row == (c.device.kind == "emulated"), c.cell_id
    failed = " ".join(t.rows[cid("local-cpu-fsrcnn-fp16")].values())
    assert "failed" in failed and "TRANSPOSE_CONV output shape" in failed
    assert "DEPTH_TO_SPACE with int8 tensors" in " ".join(t.rows[cid("emu-gpu-espcn-int8")].values())
    assert page.tables["answer"].cell(cid("local-cpu-espcn-fp32"), "Real time @ 30 fps") == "yes by p90"
    text = " ".join(" ".join(page.text).split())
    assert EVIL in text  # shown literally, as text
    assert "EMULATED results in this run" in text
    assert "unstable: CV 23.6%" in text
    assert "Pareto front — quality vs size" in text
    # the new sections render: delegate compatibility with the GPU reject reason, per-frame statistics
    assert "Delegate compatibility" in text and "SR trap: depth-to-space rejected" in text
    assert "DEPTH_TO_SPACE block_size 3 is not supported on this GPU backend" in text
    assert "5 of 7 nodes on TfLiteGpuDelegateV2" in text
    assert "The analyzer says a GPU delegate rejects ops of espcn fp32 (DEPTH_TO_SPACE)" in text  # summary pointer
    assert f"No analyzer report: {NO_TF}" in text  # a missing analyzer report says why
    assert "Over all frames" in text and "frames worse than bicubic" in text
    assert PIQE_MISSING in text and "needs PSNR-Y and a latency" in text  # missing PIQE / MAI with their reasons
    assert "Emulated numbers — 3 warnings on 3 cells" in text
    assert 'title="MAI 2021 score: 2^(2·PSNR-Y)' in dom
    # what SR costs: the table in the answer, the sentence, and the timelines with their missing streams
    assert page.tables["cost"].rows[cid("emu-cpu-espcn-int8")]
    assert "vs bicubic (emulated battery counters (not charging), confidence medium)" in text
    assert "Timeline — Pixel 7 (perflab emulated)" in text and "battery current not drawn: " + LOCAL_NO_BATTERY in text


@needs_chromium
def test_chromium_screenshot_not_blank(report: tuple[Path, RunRecord], tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1400,2200", "--hide-scrollbars", report[0].as_uri())
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert img.shape[:2] == (2200, 1400)
    assert img.std() > 20.0  # not a flat page
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200  # text, tables and figures, not an empty frame
    keep = os.environ.get("PERFLAB_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_per_layer_section_puts_the_stored_methods_side_by_side(tmp_path: Path) -> None:
    from test_report_parts import _LAYERS_FIXTURE

    from perflab.store.layer_records import LayersRecord

    run_dir = tmp_path / "r"
    run = build_run_folder(run_dir, with_frames=False, with_samples=False)
    lay = LayersRecord.model_validate(_LAYERS_FIXTURE)
    cells = [c.model_copy(update={"layers": lay}) if c.cell_id == "local-cpu-espcn-fp32" else c for c in run.cells]
    (run_dir / "results.json").write_text(run.model_copy(update={"cells": cells}).to_json())
    sec = _section(render_run_report(run_dir).read_text(encoding="utf-8"), "layers")
    start = sec.index('<table class="data layers-compare">')
    table = sec[start:sec.index("</table>", start)]
    assert [m in table for m in ('data-method="op_profile"', 'data-method="estimate"', 'data-method="differential"')] \
        == [True, True, True]
    text = _plain(sec)
    assert "c1 1.099 ± 0.168" in text and "CONV_2D@2 3.421" in text
    assert "sum of layers 5.327 ms vs whole model 4.588 ms" in text
    assert "median 4.610 ms, p90 5.020 ms" in text and "Delegate partition" in text
    fig = sec[sec.index('<figure class="layer-timeline">'):]
    assert '<img alt="one traced inference of' in fig and 'src="data:image/png;base64,' in fig
    assert "4610 µs" in _plain(fig[:fig.index("</figure>")])


# ------------------------------------------------------------------ reports rendered at once (a worker's threads)

_FIGURES: dict[str, object] = {}


def _figure_made(fig: object) -> None:
    """A pyplot figure hook (rcParams["figure.hooks"]): count the other figures open in this process
    when one is made (pyplot registers the new one after its hooks). The first one waits for another thread's figure: two figures drawn at once is the
    hazard (Matplotlib is not thread-safe), so it is given every chance to happen."""
    import matplotlib.pyplot as plt

    cond = _FIGURES["cond"]
    assert isinstance(cond, threading.Condition)
    with cond:
        seen = _FIGURES["open"]
        assert isinstance(seen, list)
        seen.append(len(plt.get_fignums()))
        cond.notify_all()
        if len(seen) == 1:  # lets a second thread's figure in, unless drawing waits for this one
            cond.wait_for(lambda: len(seen) > 1, timeout=5.0)


def test_reports_rendered_at_once_draw_one_figure_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker renders several units' reports in threads: their figures are drawn one at a time
    (two at once crashed a night with FT_Load_Glyph errors, once a heap abort), and every report
    comes out the same as when drawn alone."""
    import matplotlib
    import matplotlib.pyplot as plt

    folders = []
    for i in range(2):
        d = tmp_path / f"run{i}"
        d.mkdir()
        build_run_folder(d, with_frames=False)
        folders.append(d)
    alone = render_run_report(folders[0]).read_text()
    plt.close("all")
    _FIGURES.update(cond=threading.Condition(), open=[])
    monkeypatch.setitem(matplotlib.rcParams, "figure.hooks", [f"{__name__}:_figure_made"])
    errors: list[BaseException] = []
    start = threading.Barrier(len(folders))

    def render(folder: Path) -> None:
        start.wait()
        try:
            render_run_report(folder)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=render, args=(d,)) for d in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    seen = _FIGURES["open"]
    assert isinstance(seen, list) and len(seen) >= 2 * 4, seen  # every report drew its figures
    assert max(seen) == 0, f"figures open while another was made: {seen}"
    assert plt.get_fignums() == []
    for d in folders:  # the same page as drawn alone (run ids and paths aside, the folders are alike)
        assert (d / "index.html").read_text().replace(d.name, "run0") == alone


def test_cell_lines_end_a_run_with_the_answer_per_cell(tmp_path: Path) -> None:
    """`perflab run` and `perflab nightly` end with a line per cell: device (EMULATED where
    emulated), model, variant, delegate, status, the headline latency with its statistic named,
    real time yes/no, Δ vs bicubic; a cell that did not run says why."""
    from perflab.report.cell_lines import cell_lines

    run = build_run_folder(tmp_path, with_samples=False, with_frames=False)
    lines = list(cell_lines(run))
    assert lines[0] == "  cells (latency of the headline series: p90 where measured, else the tool's mean):"
    assert len(lines) == 1 + len(run.cells)
    assert "    local bicubic fp32 cpu: ok · p90 2.23 ms · real time yes by p90 · bicubic baseline" in lines
    assert ("    local espcn int8 cpu: ok · p90 14.4 ms · real time yes by p90 · Δ vs bicubic median +9.0 ms, "
            "PSNR-Y +0.70 dB") in lines
    assert ("    emulator-perflab-1 (EMULATED) espcn int8 cpu: ok · mean 9.60 ms · real time yes by mean · "
            "Δ vs bicubic mean +6.2 ms, PSNR-Y +0.70 dB") in lines  # only the tool's mean: said so
    assert ("    emulator-perflab-1 (EMULATED) espcn fp32 gpu: ok · mean 14.2 ms · real time yes by mean · "
            "Δ vs bicubic — (no bicubic on this device and delegate)") in lines
    assert any(x.startswith("    local fsrcnn fp16 cpu: failed — ModelError: tensor allocation failed") for x in lines)
    assert any(x.startswith("    emulator-perflab-1 (EMULATED) espcn int8 gpu: unsupported — GPU delegate") for x in lines)
