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
from perflab.report.view import fmt_ratio, fmt_signed
from perflab.store.results import (
    CellRecord,
    CellStatus,
    CompatRecord,
    DeltaRecord,
    DeviceRecord,
    GpuIssueRecord,
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
PIQE_MISSING = "PIQE undefined: no 16×16 block of this frame is active (flat image)"
NO_TF = "TensorFlow is not installed here (scripts/setup.sh --dev installs it); its analyzer is needed"
D2S_REASON = "OP is supported, but tensor type/shape isn't compatible."  # what the TF 2.x analyzer prints
REPLACING = ("Replacing 5 out of 7 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 2 partitions "
             "for the whole graph.")
PARTIAL = "Explicitly applied GPU delegate, and the model graph will be partially executed by the delegate w/ 1 delegate kernels."
XNN_FULL = "Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate."
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

    def quality(cell_id: str, psnr_mean: float, ssim: float, piqe: float | None, median_ms: float) -> QualityRecord:
        """Per-frame rows as the runner writes them (PSNR-RGB, PIQE or piqe_missing) and, for SR cells, the
        difference to bicubic on the same frame as the run's finaliser adds it."""
        per: list[dict[str, object]] = []
        for k, (f, v) in enumerate(sorted(psnr.get(cell_id, {}).items())):
            row: dict[str, object] = {"frame": f, "psnr_y_db": round(v, 4), "ssim_y": round(ssim + 0.01 * k, 4),
                                      "psnr_rgb_db": round(v - 1.3, 4)}
            if piqe is None:
                row["piqe_missing"] = PIQE_MISSING
            else:
                row["piqe"] = round(piqe + 3.0 * k, 3)
            if cell_id != "local-cpu-bicubic-fp32":
                b = round(psnr["local-cpu-bicubic-fp32"][f], 4)
                row["d_psnr_y_db"] = round(float(row["psnr_y_db"]) - b, 4)  # type: ignore[arg-type]
                row["d_ssim_y"] = round(float(row["ssim_y"]) - round(0.861 + 0.01 * k, 4), 4)  # type: ignore[arg-type]
            per.append(row)
        mean = float(np.mean([p["psnr_y_db"] for p in per])) if per else psnr_mean
        return QualityRecord(
            psnr_y_db=mean, ssim_y=ssim, psnr_rgb_db=mean - 1.3,
            piqe=None if piqe is None else piqe + 1.5,
            mai2021_score=2.0 ** (2.0 * mean) / median_ms,
            psnr_y_db_min=min((float(p["psnr_y_db"]) for p in per), default=None),  # type: ignore[arg-type]
            frames=len(per) or 4, per_frame=per, computed_on="device outputs",
            missing={"piqe": PIQE_MISSING} if piqe is None else {},
        )

    tel_local = TelemetryRecord(cpu_load_pct=96.0, mem_peak_mb=212.0, mem_source="/proc/self/status VmHWM",
                                power_source=None, missing={"power_source": "no power meter on local: RAPL "
                                                            "energy counters not readable (permission denied)"})
    cells: list[CellRecord] = []
    s = series("local-cpu-bicubic-fp32", 2.1, 0.15)
    bic_q = quality("local-cpu-bicubic-fp32", 27.9, 0.861, 48.0, s["paced"].median)  # type: ignore[arg-type]
    cells.append(CellRecord(
        cell_id="local-cpu-bicubic-fp32", device=LOCAL,
        model=ModelRecord(name="bicubic", family="bicubic", variant="fp32", scale=2, sha256="ab" * 32, size_bytes=1872,
                          compat=BICUBIC_COMPAT),
        delegate="cpu", threads=2, status=CellStatus.OK, baseline=True, latency_ms=s["paced"], series=s,
        quality=bic_q, delegate_log=["ops: STRIDED_SLICE CONCATENATION CONV_2D DEPTH_TO_SPACE MINIMUM DELEGATE"], telemetry=tel_local, realtime=True,
    ))
    s = series("local-cpu-espcn-fp32", 18.5, 0.9)
    q = quality("local-cpu-espcn-fp32", 29.4, 0.893, 31.0, s["paced"].median)  # type: ignore[arg-type]
    cells.append(CellRecord(
        cell_id="local-cpu-espcn-fp32", device=LOCAL,
        model=ModelRecord(name="espcn", family="ESPCN", variant="fp32", scale=2, sha256="cd" * 32, size_bytes=98_304,
                          compat=ESPCN_FP32_COMPAT),
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
        model=ModelRecord(name="espcn", family="ESPCN", variant="int8", scale=2, sha256="ef" * 32, size_bytes=27_648,
                          compat=ESPCN_INT8_COMPAT),
        delegate="cpu", threads=2, status=CellStatus.OK, latency_ms=s["paced"], series=s,
        quality=quality("local-cpu-espcn-int8", 28.6, 0.874, None, s["paced"].median),  # type: ignore[arg-type]
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
        model=ModelRecord(name=EVIL, family="user model", variant="fp32", scale=2, size_bytes=4096,
                          missing={"compat": NO_TF}),
        delegate="cpu", threads=2, status=CellStatus.OK, latency_ms=s["paced"], series=s,
        quality=QualityRecord(missing={k: "output shape did not match HR" for k in ("psnr_y_db", "ssim_y", "piqe")}),
        telemetry=tel_local,
    ))
    # Emulated phone: latency from the (emulated) benchmark_model summary, no raw rows.
    summary_missing = {k: "benchmark_model reports count/mean/std/min/max only" for k in ("median", "p90", "p95", "mad")}
    emu_tel = TelemetryRecord(cpu_load_pct=38.0, mem_peak_mb=61.0, power_source="battery counters (emulated)",
                              power_confidence="low", start_temp_c=31.5)
    emu_models = {"bicubic": ("ab" * 32, BICUBIC_COMPAT), "espcn": ("ef" * 32, ESPCN_INT8_COMPAT)}
    for name, variant, mean, psnr_v, size in (("bicubic", "fp32", 3.4, 27.8, 1872), ("espcn", "int8", 9.6, 28.5, 27_648)):
        lat = LatencyRecord(mode="paced", fps_target=30.0, source="benchmark_model summary", init=41.0, first=15.2,
                            mean=mean, std=0.3, min=mean - 0.4, max=mean + 1.1, n=100, missing=summary_missing)
        cells.append(CellRecord(
            cell_id=f"emu-cpu-{name}-{variant}", device=EMU,
            model=ModelRecord(name=name, family=name.upper(), variant=variant, scale=2, size_bytes=size,
                              sha256=emu_models[name][0], compat=emu_models[name][1]),
            delegate="cpu", threads=4, status=CellStatus.OK, baseline=name == "bicubic", emulated=True,
            latency_ms=lat, series={"paced": lat}, delegate_log=[XNN_FULL],
            quality=QualityRecord(psnr_y_db=psnr_v, ssim_y=0.87, frames=4, mai2021_score=2.0 ** (2 * psnr_v) / mean,
                                  missing={"piqe": "PIQE not computed on the emulated phone's outputs"}),
            telemetry=emu_tel, realtime=True,
            warnings=[WarningRecord(code="emulated", message="emulated phone: numbers come from perflab's "
                                    "phone model, not hardware")],
        ))
    lat = LatencyRecord(mode="paced", fps_target=30.0, source="benchmark_model summary", init=310.0, first=22.0,
                        mean=14.2, std=0.6, min=13.1, max=16.0, n=100, missing=summary_missing)
    cells.append(CellRecord(  # the same file as local espcn fp32: one entry in the compatibility section
        cell_id="emu-gpu-espcn-fp32", device=EMU,
        model=ModelRecord(name="espcn", family="ESPCN", variant="fp32", scale=2, sha256="cd" * 32, size_bytes=98_304,
                          compat=ESPCN_FP32_COMPAT),
        delegate="gpu", threads=4, status=CellStatus.OK, emulated=True, latency_ms=lat, series={"paced": lat},
        quality=QualityRecord(psnr_y_db=29.3, ssim_y=0.89, frames=4), telemetry=emu_tel, realtime=True,
        delegate_log=[REPLACING, PARTIAL],
    ))
    cells.append(CellRecord(
        cell_id="emu-gpu-espcn-int8", device=EMU,
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
            assert len(tds) == 18 and all(t.strip() for t in tds), (cell.cell_id, tds)
    int8 = rows["local-cpu-espcn-int8"]
    assert int8[16].startswith("—") and "peak memory not sampled" in html_text  # Peak MB column
    assert int8[17].startswith("—")  # no power source, with its reason
    assert int8[13].startswith("—")  # PIQE undefined on this cell's frames, with the reason


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


def _section(html_text: str, section_id: str) -> str:
    start = html_text.index(f'<section id="{section_id}">')
    return html_text[start:html_text.index("</section>", start)]


def _plain(html_fragment: str) -> str:
    return " ".join(" ".join(collect(html_fragment).text).split())


def test_piqe_and_mai_columns(report: tuple[Path, RunRecord]) -> None:
    html_text, run = report[0].read_text(encoding="utf-8"), report[1]
    rows = collect(html_text).rows
    by_id = {c.cell_id: c for c in run.cells}
    bic, fp32 = by_id["local-cpu-bicubic-fp32"].quality, by_id["local-cpu-espcn-fp32"].quality
    assert bic.piqe is not None and fp32.piqe is not None
    assert bic.mai2021_score is not None and fp32.mai2021_score is not None
    r = rows["local-cpu-espcn-fp32"]
    # PIQE: lower is better, so a lower PIQE than bicubic is shown as a negative Δ
    assert r[13] == f"{fp32.piqe:.1f}{fp32.piqe - bic.piqe:+.1f}".replace("-", "−")  # value, then Δ below it
    # MAI score: compact scientific notation, and its ratio to bicubic's score
    mant, exp = f"{fp32.mai2021_score:.2e}".split("e")
    assert r[14] == f"{mant}e{int(exp)}{fmt_ratio(fp32.mai2021_score / bic.mai2021_score)}× bic"
    assert rows["local-cpu-bicubic-fp32"][14].endswith("baseline")
    assert "only comparable within perflab" in html_text  # the MAI tooltip
    # missing: each with its reason, never blank
    assert rows["local-cpu-espcn-int8"][13].startswith("—")
    assert rows["local-cpu-evil"][13].startswith("—") and rows["local-cpu-evil"][14].startswith("—")
    foot = html_text[html_text.index('id="footnotes"'):]
    assert PIQE_MISSING in foot and "MAI score needs PSNR-Y" in foot
    assert "PIQE not computed on the emulated phone" in foot


def test_delegate_compatibility_section(report: tuple[Path, RunRecord]) -> None:
    html_text = report[0].read_text(encoding="utf-8")
    sec = _section(html_text, "compat")
    # one entry per model file: espcn fp32 ran on the host CPU and the emulated GPU, but is listed once
    models = re.findall(r'<div class="compat[^"]*" id="[^"]+" data-model="([^"]+)"', sec)
    assert models.count("espcn fp32") == 1 and models.count("espcn int8") == 1 and models.count("bicubic fp32") == 1
    assert len(models) == 5  # bicubic, espcn fp32, espcn int8, fsrcnn fp16, the user's model
    blocks = dict(zip(models, re.split(r'<div class="compat[^"]*" id="[^"]+" data-model="[^"]+">', sec)[1:]))
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
    by_id = {c.cell_id: c for c in run.cells}
    fp32 = by_id["local-cpu-espcn-fp32"]
    frame = fp32.quality.per_frame[0]
    # frame by frame: PSNR-Y, SSIM-Y and PIQE with the difference to bicubic on the same frame
    row = re.search(rf'<tr data-frame="{frame["frame"]}">(.*?)</tr>', sec, re.DOTALL)
    assert row is not None
    cells = [" ".join(c.split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.DOTALL)]
    texts = [_plain(c) for c in cells]
    bic_frame = by_id["local-cpu-bicubic-fp32"].quality.per_frame[0]
    assert texts[0] == frame["frame"] and texts[1] == f"{bic_frame['psnr_y_db']:.2f}"
    assert texts[4] == f"{frame['psnr_y_db']:.2f} {frame['d_psnr_y_db']:+.2f} dB".replace("-", "−")
    assert texts[5] == f"{frame['ssim_y']:.4f} {frame['d_ssim_y']:+.4f}".replace("-", "−")
    assert texts[6] == f"{frame['piqe']:.1f} {frame['piqe'] - bic_frame['piqe']:+.1f}".replace("-", "−")
    assert texts[9].startswith("—")  # espcn int8: PIQE undefined on this frame, with its reason
    # over all frames: statistics per cell, PSNR-RGB among them
    stats = {m.group(1): _plain(m.group(2)) for m in
             re.finditer(r'<tr class="framestat[^"]*" data-cell-id="([^"]+)">(.*?)</tr>', sec, re.DOTALL)}
    assert set(stats) == {"local-cpu-bicubic-fp32", "local-cpu-espcn-fp32", "local-cpu-espcn-int8"}
    assert f"{fp32.quality.psnr_rgb_db:.2f}" in stats["local-cpu-espcn-fp32"]
    assert "0 of 2" in stats["local-cpu-espcn-fp32"]  # never worse than bicubic on a frame
    assert "Per-frame quality — x86_64 host (local) · cpu, 2 frames" in sec  # the distribution figure
    assert sec.count("data:image/png;base64,") == 1


def test_per_frame_is_bounded_for_long_clips(tmp_path: Path) -> None:
    """A clip of many frames: the table lists the first few, statistics and the figure cover all."""
    from perflab.report.view import MAX_FRAME_ROWS

    run_dir = tmp_path / "long"
    run = build_run_folder(run_dir, with_frames=False)
    n = 240
    rng = np.random.default_rng(5)
    bic = [{"frame": f"clip_{i:05d}", "psnr_y_db": 30 + float(rng.normal()), "ssim_y": 0.9, "psnr_rgb_db": 29.0,
            "piqe": 40.0 + float(rng.normal())} for i in range(n)]
    deltas = rng.normal(0.4, 0.3, n)
    sr = [{**b, "psnr_y_db": float(b["psnr_y_db"]) + float(d), "d_psnr_y_db": float(d), "d_ssim_y": 0.01,  # type: ignore[arg-type]
           "piqe": 30.0} for b, d in zip(bic, deltas)]
    cells = []
    for c in run.cells:
        if c.cell_id == "local-cpu-bicubic-fp32":
            c = c.model_copy(update={"quality": c.quality.model_copy(update={"per_frame": bic, "frames": n})})
        elif c.cell_id == "local-cpu-espcn-fp32":
            c = c.model_copy(update={"quality": c.quality.model_copy(update={"per_frame": sr, "frames": n})})
        cells.append(c)
    (run_dir / "results.json").write_text(run.model_copy(update={"cells": cells}).to_json())
    sec = _section(render_run_report(run_dir).read_text(encoding="utf-8"), "per-frame")
    assert sec.count("<tr data-frame=") == MAX_FRAME_ROWS
    assert f"first {MAX_FRAME_ROWS} of {n}" in sec and f"{n - MAX_FRAME_ROWS} more frames not listed" in sec
    stat = re.search(r'<tr class="framestat[^"]*" data-cell-id="local-cpu-espcn-fp32">(.*?)</tr>', sec, re.DOTALL)
    assert stat is not None
    text = _plain(stat.group(1))
    assert f"{int((deltas < 0).sum())} of {n}" in text
    assert fmt_signed(float(deltas.mean()), 2, " dB") in text and fmt_signed(float(deltas.min()), 2, " dB") in text
    assert f"{n} frames" in sec and sec.count("data:image/png;base64,") == 1


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
    # the new sections render: delegate compatibility with the GPU reject reason, per-frame statistics
    assert "Delegate compatibility" in text and "SR trap: depth-to-space rejected" in text
    assert "DEPTH_TO_SPACE block_size 3 is not supported on this GPU backend" in text
    assert "5 of 7 nodes on TfLiteGpuDelegateV2" in text
    assert "The analyzer says a GPU delegate rejects ops of espcn fp32 (DEPTH_TO_SPACE)" in text  # summary pointer
    assert f"No analyzer report: {NO_TF}" in text  # a missing analyzer report says why
    assert "Over all frames" in text and "frames worse than bicubic" in text
    assert PIQE_MISSING in text and "MAI score needs PSNR-Y" in text  # missing PIQE / MAI with their reasons
    assert 'title="MAI 2021 score: 2^(2·PSNR-Y)' in dom


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
