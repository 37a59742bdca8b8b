"""Video quality in the report: per-frame metrics over time (a figure in index.html) and the frame viewer
(viewer.html beside it: side by side / wipe of SR, bicubic and the reference, charts of the stored
per-frame metrics), checked in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.records import cell, latency, run

from perflab.quality.temporal import FIRST_FRAME, NO_SEQUENCE
from perflab.report.html import render_run_report
from perflab.rules.derive import finalize_cells
from perflab.rules.quality import quality_record
from perflab.store.results import FrameQuality, RunRecord
from perflab.store.runfolder import HR, LR, RunFolder

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (CI installs it)")
BASE, SR = "bicubic_x2.fp32.xnnpack", "espcn_x2.fp32.xnnpack"
FRAMES = [f"clip-{i:06d}" for i in range(6)]
KEPT = 3
COLOURS = {HR: (0, 200, 0), LR: (200, 200, 200), BASE: (0, 0, 255), SR: (255, 0, 0)}  # flat frames, told apart


def _per_frame(temporal: list[float | None], psnr0: float, still: bool = False) -> list[FrameQuality]:
    why = NO_SEQUENCE if still else FIRST_FRAME
    return [FrameQuality(frame=f, psnr_y_db=psnr0 + 0.1 * i, ssim_y=0.8 + 0.01 * i, temporal_err_y=t,
                         missing={} if t is not None else {"temporal_err_y": why})
            for i, (f, t) in enumerate(zip(FRAMES, temporal, strict=True))]


def build(path: Path, *, still: bool = False, kept: int = KEPT, render: bool = True) -> RunRecord:
    none = [None] * len(FRAMES)
    sr_t: list[float | None] = none if still else [None, 0.5, 4.0, 4.2, 0.6, 0.5]
    base_t: list[float | None] = none if still else [None, 0.3, 2.6, 2.5, 0.4, 0.3]
    cells = finalize_cells([
        cell(BASE, latency_ms=latency(3.0), quality=quality_record(_per_frame(base_t, 30.0, still), "test")),
        cell(SR, latency_ms=latency(9.0), quality=quality_record(_per_frame(sr_t, 31.0, still), "test")),
    ], fps=30.0)
    record = run(cells)
    folder = RunFolder.create(path)
    folder.write_results(record)
    for f in FRAMES[:kept]:
        for group, rgb in COLOURS.items():
            size = (16, 12) if group == LR else (32, 24)
            img = np.zeros((size[1], size[0], 3), dtype=np.float32) + np.asarray(rgb, dtype=np.float32) / 255.0
            folder.save_frame(folder.frame_group(group) if group not in (HR, LR) else group, f, img)
    if render:
        render_run_report(path)
    return record


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video-report") / "run"
    build(path)
    return path


def _no_b64(html: str) -> str:
    return re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,…", html)


def _viewer_json(path: Path) -> dict[str, object]:
    m = re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>',
                  (path / "viewer.html").read_text(), re.DOTALL)
    assert m is not None
    data: dict[str, object] = json.loads(m.group(1))
    return data


def test_the_report_draws_per_frame_metrics_over_time_and_links_the_viewer(clip_run: Path) -> None:
    html = _no_b64((clip_run / "index.html").read_text())
    assert "<script" not in html  # the report itself stays script-free (docs/report.md)
    fig = html[html.index('id="over-time"'):]
    assert 'alt="Per-frame PSNR-Y, SSIM-Y, Temporal error of each cell over the frames' in fig
    assert "Per-frame metrics over time" in fig and "6 frames" in fig
    assert "Not drawn — VMAF" in fig  # a metric no cell stored says so (until VMAF is stored)
    assert '<a href="viewer.html" id="viewer-link">Frame viewer</a>' in html


def test_the_viewer_page_points_at_the_kept_frames_only(clip_run: Path) -> None:
    page = (clip_run / "viewer.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "http://" not in page.replace(
        "http://www.w3.org/2000/svg", "")
    data = _viewer_json(clip_run)
    (g,) = data["groups"]  # type: ignore[misc]
    assert g["frames"] == FRAMES and g["kept"] == FRAMES[:KEPT]
    ids = [s["id"] for s in g["sources"]]
    assert ids == ["hr", "lr", BASE, SR]
    for s in g["sources"]:
        assert sorted(s["images"]) == FRAMES[:KEPT]
        assert all((clip_run / rel).is_file() for rel in s["images"].values())
    temporal = next(m for m in g["metrics"] if m["key"] == "temporal_err_y")
    assert temporal["higher_better"] is False
    by_cell = {t["cell"]: t["values"] for t in temporal["tracks"]}
    assert by_cell[SR] == [None, 0.5, 4.0, 4.2, 0.6, 0.5] and by_cell[BASE][2] == 2.6


def test_still_images_say_why_there_is_no_temporal_line(tmp_path: Path) -> None:
    build(tmp_path / "run", still=True)
    html = _no_b64((tmp_path / "run" / "index.html").read_text())
    assert f"Not drawn — Temporal error: {NO_SEQUENCE}" in html
    assert all(m["key"] != "temporal_err_y" for m in _viewer_json(tmp_path / "run")["groups"][0]["metrics"])  # type: ignore[index]


def test_no_kept_frames_no_viewer(tmp_path: Path) -> None:
    path = tmp_path / "run"
    build(path)
    assert (path / "viewer.html").is_file()
    shutil.rmtree(path / "frames")
    render_run_report(path)
    assert not (path / "viewer.html").exists()  # the stale page went with the frames
    assert 'id="viewer-link"' not in (path / "index.html").read_text()


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="perflab-chromium-")
    try:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--allow-file-access-from-files", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, env={**os.environ, "LANG": "C.UTF-8"}, check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@needs_chromium
def test_chromium_builds_the_viewer_from_its_data(clip_run: Path) -> None:
    url = (clip_run / "viewer.html").as_uri() + f"#frame={FRAMES[1]}&c=lr"
    r = _chromium("--dump-dom", url)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None and 'data-viewer-ready="1"' in body.group(0), body  # no data-js-error: the script ran through
    section = re.search(r'<section class="viewer" id="viewer-0"[^>]*>', dom)
    assert section is not None
    for attr, want in (("ready", "1"), ("mode", "sbs"), ("frame", FRAMES[1]), ("a", SR), ("b", BASE), ("c", "lr")):
        assert f'data-{attr}="{want}"' in section.group(0), (attr, section.group(0))
    srcs = re.findall(r'<img src="([^"]+)"[^>]*data-source="([^"]+)"', dom)
    assert srcs == [(f"frames/{SR}/{FRAMES[1]}.png", SR), (f"frames/{BASE}/{FRAMES[1]}.png", BASE),
                    (f"frames/lr/{FRAMES[1]}.png", "lr")]
    assert sorted(re.findall(r'<svg[^>]*data-metric="([^"]+)"', dom)) == ["psnr_y_db", "ssim_y", "temporal_err_y"]
    assert f"espcn_x2 fp32 — frame {FRAMES[1]}: PSNR-Y 31.10 dB, SSIM-Y 0.8100, Temporal error 0.5000 Y levels" in dom


@needs_chromium
def test_chromium_breaks_a_metric_line_at_frames_without_a_value(tmp_path: Path) -> None:
    """SR's temporal error [—, 0.5, —, 4.2, 0.6, 0.5]: frame 1 alone is a dot, frames 3–5 a line; no
    line drawn across frame 2 (it has no value)."""
    path = tmp_path / "run"
    build(path, render=False)
    results = path / "results.json"
    data = json.loads(results.read_text())
    sr = next(c for c in data["cells"] if c["cell_id"] == SR)
    sr["quality"]["per_frame"][2]["temporal_err_y"] = None
    results.write_text(json.dumps(data))
    render_run_report(path)
    r = _chromium("--dump-dom", (path / "viewer.html").as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    chart = re.search(r'<svg[^>]*data-metric="temporal_err_y".*?</svg>', r.stdout, re.DOTALL)
    assert chart is not None
    lines = re.findall(rf'<polyline points="([^"]+)"[^>]*data-cell="{re.escape(SR)}"', chart.group(0))
    dots = re.findall(rf'<circle [^>]*data-cell="{re.escape(SR)}"', chart.group(0))
    assert [len(p.split()) for p in lines] == [3] and len(dots) == 1, (lines, dots)


@needs_chromium
def test_chromium_wipes_sr_over_bicubic(clip_run: Path, tmp_path: Path) -> None:
    shot = tmp_path / "wipe.png"
    url = (clip_run / "viewer.html").as_uri() + "#mode=wipe&wipe=25&zoom=4"
    r = _chromium(f"--screenshot={shot}", "--window-size=900,700", "--hide-scrollbars", url)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int32)
    red = (img[..., 0] > 200) & (img[..., 1] < 40) & (img[..., 2] < 40)  # the SR frame (A), left of the wipe
    blue = (img[..., 2] > 200) & (img[..., 0] < 40) & (img[..., 1] < 40)  # bicubic (B), right of it
    rows = np.nonzero(red.any(axis=1) & blue.any(axis=1))[0]
    assert len(rows) > 40, "the wipe did not show both frames on the same rows"
    row = rows[len(rows) // 2]
    xr, xb = np.nonzero(red[row])[0], np.nonzero(blue[row])[0]
    assert xr.max() < xb.min()  # A left, B right
    width = xb.max() - xr.min() + 1  # 32 px × zoom 4
    assert abs(width - 128) <= 2
    assert abs((xr.max() + 1 - xr.min()) / width - 0.25) < 0.05  # the wipe at 25%


def test_the_answer_sets_the_temporal_error_beside_bicubic(tmp_path: Path) -> None:
    from perflab.report.view import build_view

    rec = build(tmp_path / "clip", kept=0, render=False)
    rows = {r.cell_id: r for ad in build_view(rec).answer for r in ad.rows}
    sr, base = rows[SR].d_temporal, rows[BASE].d_temporal
    # means over the frames with a value: SR (0.5+4+4.2+0.6+0.5)/5 = 1.96, bicubic 1.22
    assert (sr.text, sr.sub, sr.cls) == ("+0.74", "1.96", "bad") and "worst frame 4.200" in (sr.title or "")
    assert base.text == "1.22" and "bicubic's own temporal error" in (base.title or "")
    still = build(tmp_path / "photos", still=True, kept=0)
    v = build_view(still)
    rows = {r.cell_id: r for ad in v.answer for r in ad.rows}
    assert rows[SR].d_temporal.missing and rows[SR].d_temporal.title == NO_SEQUENCE
    html = (tmp_path / "photos" / "index.html").read_text()
    assert "Δ temporal ↓</th>" in html and NO_SEQUENCE in html


def test_an_lr_only_frame_is_in_the_viewer_without_a_reference(tmp_path: Path) -> None:
    path = tmp_path / "run"
    build(path, render=False)
    (path / "frames" / HR / f"{FRAMES[2]}.png").unlink()  # an LR-only input keeps no HR frame
    render_run_report(path)
    (g,) = _viewer_json(path)["groups"]  # type: ignore[misc]
    assert g["kept"] == FRAMES[:KEPT]
    hr = next(s for s in g["sources"] if s["id"] == "hr")
    assert sorted(hr["images"]) == FRAMES[:2]
