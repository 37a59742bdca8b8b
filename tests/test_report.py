"""The HTML run report: rendered from a realistic run folder, checked as text and in headless Chromium."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from perflab.errors import StoreError
from perflab.report.html import render_run_report
from perflab.store.results import (
    CellRecord,
    CellStatus,
    DeltaRecord,
    DeviceRecord,
    LatencyRecord,
    LayerRow,
    LayersRecord,
    ModelRecord,
    QualityRecord,
    RunRecord,
    ScenarioRecord,
    TelemetryRecord,
    WarningRecord,
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


def _lat(mode: str, samples: np.ndarray, init: float, first: float) -> LatencyRecord:
    return LatencyRecord(
        mode=mode, fps_target=30.0 if mode == "paced" else None, source="raw samples", init=init, first=first,
        warmup_mean=float(samples[:3].mean()), median=float(np.median(samples)), mean=float(samples.mean()),
        p90=float(np.percentile(samples, 90)), p95=float(np.percentile(samples, 95)), min=float(samples.min()),
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
            Image.fromarray(np.round(arr).astype(np.uint8)).save(run_dir / "frames" / cell / f"{name}.png")
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
            rows.extend((cell_id, series_name, i, round(float(v), 4)) for i, v in enumerate(arr))
        return {"paced": _lat("paced", paced, init=center * 4, first=center * 2.5),
                "back_to_back": _lat("back_to_back", b2b, init=center * 4, first=center * 2.5)}

    def quality(cell_id: str, psnr_mean: float, ssim: float) -> QualityRecord:
        per = [{"frame": f, "psnr_y_db": round(v, 4), "ssim_y": round(ssim + 0.01 * k, 4)}
               for k, (f, v) in enumerate(sorted(psnr.get(cell_id, {}).items()))]
        mean = float(np.mean([p["psnr_y_db"] for p in per])) if per else psnr_mean
        return QualityRecord(psnr_y_db=mean, ssim_y=ssim, frames=len(per) or 4, per_frame=per,
                             computed_on="device outputs")

    tel_local = TelemetryRecord(cpu_load_pct=96.0, mem_peak_mb=212.0, mem_source="/proc/self/status VmHWM",
                                power_source=None, missing={"power_source": "no power meter on local: RAPL "
                                                            "energy counters not readable (permission denied)"})
    cells: list[CellRecord] = []
    s = series("local-cpu-bicubic-fp32", 2.1, 0.15)
    bic_q = quality("local-cpu-bicubic-fp32", 27.9, 0.861)
    cells.append(CellRecord(
        cell_id="local-cpu-bicubic-fp32", device=LOCAL,
        model=ModelRecord(name="bicubic", family="bicubic", variant="fp32", scale=2, sha256="ab" * 32, size_bytes=1872),
        delegate="cpu", threads=2, status=CellStatus.OK, baseline=True, latency_ms=s["paced"], series=s,
        quality=bic_q, telemetry=tel_local, realtime=True,
    ))
    s = series("local-cpu-espcn-fp32", 18.5, 0.9)
    q = quality("local-cpu-espcn-fp32", 29.4, 0.893)
    cells.append(CellRecord(
        cell_id="local-cpu-espcn-fp32", device=LOCAL,
        model=ModelRecord(name="espcn", family="ESPCN", variant="fp32", scale=2, sha256="cd" * 32, size_bytes=98_304),
        delegate="cpu", threads=2, status=CellStatus.OK, latency_ms=s["paced"], series=s, quality=q,
        telemetry=tel_local, realtime=True,
        deltas=DeltaRecord(baseline_cell_id="local-cpu-bicubic-fp32",
                           latency_median_ms=s["paced"].median - cells[0].latency_ms.median,  # type: ignore[union-attr,operator]
                           psnr_y_db=q.psnr_y_db - bic_q.psnr_y_db,  # type: ignore[operator]
                           ssim_y=q.ssim_y - bic_q.ssim_y),  # type: ignore[operator]
        layers=LayersRecord(source="tflite op profiler (separate pass)", total_ms=19.8, rows=[
            LayerRow(index=0, node_type="CONV_2D", name="feat/conv5x5", avg_ms=7.9, first_ms=9.1, times_called=1),
            LayerRow(index=1, node_type="CONV_2D", name="map/conv3x3", avg_ms=6.2, first_ms=7.0, times_called=1),
            LayerRow(index=2, node_type="CONV_2D", name="up/conv3x3", avg_ms=4.1, first_ms=4.9, times_called=1),
            LayerRow(index=3, node_type="DEPTH_TO_SPACE", name="up/pixel_shuffle", avg_ms=1.1, times_called=1),
        ]),
    ))
    s = series("local-cpu-espcn-int8", 11.0, 2.6)
    cells.append(CellRecord(
        cell_id="local-cpu-espcn-int8", device=LOCAL,
        model=ModelRecord(name="espcn", family="ESPCN", variant="int8", scale=2, sha256="ef" * 32, size_bytes=27_648),
        delegate="cpu", threads=2, status=CellStatus.OK, latency_ms=s["paced"], series=s,
        quality=quality("local-cpu-espcn-int8", 28.6, 0.874),
        telemetry=TelemetryRecord(cpu_load_pct=91.0, mem_peak_mb=None,
                                  missing={"mem_peak_mb": "peak memory not sampled: /proc read failed mid-run"},
                                  power_source=None, power_confidence="none"),
        realtime=True,
        warnings=[WarningRecord(code="high_cv", message="unstable: CV 23.6% > 10% (mean 11.05 ms, std 2.61 ms). "
                                "Close background load, add warm-up runs or raise runs.iterations.")],
    ))
    cells.append(CellRecord(
        cell_id="local-cpu-fsrcnn-fp16", device=LOCAL,
        model=ModelRecord(name="fsrcnn", family="FSRCNN", variant="fp16", scale=2, size_bytes=None),
        delegate="cpu", threads=2, status=CellStatus.FAILED,
        reason="ModelError: tensor allocation failed: TRANSPOSE_CONV output shape 1x1080x1920x1 does not match",
    ))
    s = series("local-cpu-evil", 7.5, 0.4)
    cells.append(CellRecord(
        cell_id="local-cpu-evil", device=LOCAL,
        model=ModelRecord(name=EVIL, family="user model", variant="fp32", scale=2, size_bytes=4096),
        delegate="cpu", threads=2, status=CellStatus.OK, latency_ms=s["paced"], series=s,
        quality=QualityRecord(missing={"psnr_y_db": "output shape did not match HR", "ssim_y": "output shape did "
                                       "not match HR"}), telemetry=tel_local,
    ))
    # Emulated phone: latency from the (emulated) benchmark_model summary, no raw rows.
    summary_missing = {k: "benchmark_model reports count/mean/std/min/max only" for k in ("median", "p90", "p95", "mad")}
    emu_tel = TelemetryRecord(cpu_load_pct=38.0, mem_peak_mb=61.0, power_source="battery counters (emulated)",
                              power_confidence="low", start_temp_c=31.5)
    for name, variant, mean, psnr_v, size in (("bicubic", "fp32", 3.4, 27.8, 1872), ("espcn", "int8", 9.6, 28.5, 27_648)):
        lat = LatencyRecord(mode="paced", fps_target=30.0, source="benchmark_model summary", init=41.0, first=15.2,
                            mean=mean, std=0.3, min=mean - 0.4, max=mean + 1.1, n=100, missing=summary_missing)
        cells.append(CellRecord(
            cell_id=f"emu-cpu-{name}-{variant}", device=EMU,
            model=ModelRecord(name=name, family=name.upper(), variant=variant, scale=2, size_bytes=size),
            delegate="cpu", threads=4, status=CellStatus.OK, baseline=name == "bicubic", emulated=True,
            latency_ms=lat, series={"paced": lat}, quality=QualityRecord(psnr_y_db=psnr_v, ssim_y=0.87, frames=4),
            telemetry=emu_tel, realtime=True,
            warnings=[WarningRecord(code="emulated", message="emulated phone: numbers come from perflab's "
                                    "phone model, not hardware")],
        ))
    cells.append(CellRecord(
        cell_id="emu-gpu-espcn-int8", device=EMU,
        model=ModelRecord(name="espcn", family="ESPCN", variant="int8", scale=2, size_bytes=27_648),
        delegate="gpu", threads=4, status=CellStatus.UNSUPPORTED, emulated=True,
        reason="GPU delegate rejects DEPTH_TO_SPACE with int8 tensors (op 3); whole graph would fall back to CPU",
    ))
    run = RunRecord(
        perflab_version="0.1.0", run_id="20240611T101500Z-3f9c",
        scenario=ScenarioRecord(name="540p30", file="scenarios/540p30.yaml",
                                sha256=hashlib.sha256(SCENARIO_TEXT.encode()).hexdigest(), text=SCENARIO_TEXT,
                                lr_width=960, lr_height=540, scale=2, fps=30.0),
        started_utc="2024-06-11T10:15:00Z", finished_utc="2024-06-11T10:19:42Z",
        host={"python": "3.11.2", "os": "Debian 12"}, devices=[LOCAL, EMU], cells=cells, exit_code=1,
    )
    (run_dir / "results.json").write_text(run.to_json(), encoding="utf-8")
    if with_samples:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["cell_id", "series", "iteration", "latency_ms"])
        w.writerows(rows)
        (run_dir / "samples.csv").write_text(buf.getvalue(), encoding="utf-8")
    return run


class RowCollector(HTMLParser):
    """Text of each <td> in every <tr data-cell-id=…> of the summary tables, and page text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._row: str | None = None
        self._td: list[str] | None = None
        self._script_depth = 0
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "tr" and "cellrow" in (a.get("class") or ""):
            self._row = a.get("data-cell-id")
            assert self._row is not None
            self.rows[self._row] = []
        elif tag == "td" and self._row is not None:
            self._td = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._td is not None:
            self.rows[self._row].append(" ".join("".join(self._td).split()))
            self._td = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._td is not None:
            self._td.append(data)


def collect(html_text: str) -> RowCollector:
    p = RowCollector()
    p.feed(html_text)
    return p


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
    rows = collect(html_text).rows
    assert set(rows) == {c.cell_id for c in run.cells}
    # baseline first in each device/delegate table
    order = [m.group(1) for m in re.finditer(r'<tr id="[^"]+" class="cellrow[^"]*" data-cell-id="([^"]+)"', html_text)]
    assert order.index("local-cpu-bicubic-fp32") < order.index("local-cpu-espcn-fp32")
    assert order.index("emu-cpu-bicubic-fp32") < order.index("emu-cpu-espcn-int8")
    # ok rows: no blank number, and a missing number is "—" with a footnote, never 0
    for cell in run.cells:
        tds = rows[cell.cell_id]
        if cell.status == CellStatus.OK:
            assert len(tds) == 16 and all(t.strip() for t in tds), (cell.cell_id, tds)
    int8 = rows["local-cpu-espcn-int8"]
    assert int8[14].startswith("—") and "peak memory not sampled" in html_text  # Peak MB column
    assert int8[15].startswith("—")  # no power source, with its reason


def test_numbers_and_deltas(report: tuple[Path, RunRecord]) -> None:
    run = report[1]
    rows = collect(report[0].read_text(encoding="utf-8")).rows
    fp32 = next(c for c in run.cells if c.cell_id == "local-cpu-espcn-fp32")
    bic = next(c for c in run.cells if c.cell_id == "local-cpu-bicubic-fp32")
    r = rows["local-cpu-espcn-fp32"]
    assert fp32.series["paced"].median is not None and fp32.quality.psnr_y_db is not None
    assert r[4].startswith(f"{fp32.series['paced'].median:.1f}")  # paced median, 18.x ms → 1 decimal
    assert r[10] == "yes"  # real time at 30 fps
    d = fp32.quality.psnr_y_db - bic.quality.psnr_y_db  # type: ignore[operator]
    assert f"{fp32.quality.psnr_y_db:.2f}" in r[11] and f"+{d:.2f} dB" in r[11]
    assert rows["local-cpu-bicubic-fp32"][11].endswith("baseline")
    # emulated phone: summary-only latency → the tool's mean, labelled, and p90 "—" with the tool's reason
    e = rows["emu-cpu-espcn-int8"]
    assert "EMULATED" in e[0] and "benchmark_model summary" in e[1]
    assert e[4].startswith("9.60") and "mean, no median" in e[4] and e[5].startswith("—")


def test_missing_reasons_footnoted(report: tuple[Path, RunRecord]) -> None:
    text = report[0].read_text(encoding="utf-8")
    foot = text[text.index('id="footnotes"'):]
    for reason in ("RAPL energy counters not readable", "benchmark_model reports count/mean/std/min/max only",
                   "output shape did not match HR", "first-run time per layer not given"):
        assert reason in foot, reason


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
    assert collect(text).rows["local-cpu-espcn-fp32"][10].startswith("—")

    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    empty = run.model_copy(update={"cells": [], "devices": []})
    (empty_dir / "results.json").write_text(empty.to_json())
    text = render_run_report(empty_dir).read_text(encoding="utf-8")
    assert "No raw per-iteration samples" in text and "nothing to plot" in text


def test_devices_sharing_cell_ids(tmp_path: Path) -> None:
    """The runner's multi-device layout: same cell_id on every device, samples keyed ``serial/cell_id``,
    outputs in ``frames/<serial>_<cell_id>/``."""
    run_dir = tmp_path / "multi"
    run = build_run_folder(run_dir)
    rename = {"emu-cpu-bicubic-fp32": "cpu-bicubic-fp32", "emu-cpu-espcn-int8": "cpu-espcn-int8",
              "local-cpu-bicubic-fp32": "cpu-bicubic-fp32", "local-cpu-espcn-int8": "cpu-espcn-int8"}
    cells = []
    for c in run.cells:
        upd: dict[str, object] = {"cell_id": rename.get(c.cell_id, c.cell_id)}
        if c.deltas is not None:
            upd["deltas"] = c.deltas.model_copy(update={"baseline_cell_id": "cpu-bicubic-fp32"})
        cells.append(c.model_copy(update=upd))
    (run_dir / "results.json").write_text(run.model_copy(update={"cells": cells}).to_json())
    lines = (run_dir / "samples.csv").read_text().splitlines()
    out = [lines[0]]
    for ln in lines[1:]:
        cid, rest = ln.split(",", 1)
        out.append(f"local/{rename.get(cid, cid)},{rest}")
    (run_dir / "samples.csv").write_text("\n".join(out) + "\n")
    for old, new in rename.items():
        if old.startswith("local") and (run_dir / "frames" / old).is_dir():
            (run_dir / "frames" / old).rename(run_dir / "frames" / f"local_{new}")
    (run_dir / "frames" / "local-cpu-espcn-fp32").rename(run_dir / "frames" / "local_local-cpu-espcn-fp32")
    text = render_run_report(run_dir).read_text(encoding="utf-8")
    rows = collect(text).rows
    assert {"local/cpu-bicubic-fp32", "emulator-perflab-1/cpu-bicubic-fp32", "local/cpu-espcn-int8",
            "emulator-perflab-1/cpu-espcn-int8", "local-cpu-espcn-fp32"} <= set(rows)
    assert "EMULATED" in rows["emulator-perflab-1/cpu-espcn-int8"][0]
    assert "EMULATED" not in rows["local/cpu-espcn-int8"][0]
    # deltas against the baseline of the same device, raw samples and crops still found
    assert "+0.70 dB" in rows["emulator-perflab-1/cpu-espcn-int8"][11]
    assert "Latency distribution — x86_64 host (local)" in text
    assert 'id="visual"' in text and "espcn int8</strong>" in text


def test_bad_run_folders(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no results.json"):
        render_run_report(tmp_path)
    (tmp_path / "results.json").write_text('{"schema": "perflab.results/99"}', encoding="utf-8")
    with pytest.raises(StoreError, match="perflab.results/99"):
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
    rows = page.rows
    assert set(rows) == {c.cell_id for c in run.cells}
    for c in run.cells:
        emulated_row = "EMULATED" in rows[c.cell_id][0]
        assert emulated_row == (c.device.kind == "emulated"), c.cell_id
    failed = " ".join(rows["local-cpu-fsrcnn-fp16"])
    assert "failed" in failed and "TRANSPOSE_CONV output shape" in failed
    assert "DEPTH_TO_SPACE with int8 tensors" in " ".join(rows["emu-gpu-espcn-int8"])
    text = " ".join(" ".join(page.text).split())
    assert EVIL in text  # shown literally, as text
    assert "EMULATED results in this run" in text
    assert "unstable: CV 23.6%" in text
    assert "Pareto front — quality vs size" in text


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
