"""A full `perflab run` of small scenarios on the local device, through the real CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from perflab.store.runfolder import load_run, read_samples
from perflab.zoo.registry import get_artifact

PERFLAB = str(Path(sys.executable).with_name("perflab"))
REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def scenario(tmp_path: Path, models: str, extra: str = "") -> Path:
    p = tmp_path / "small.yaml"
    head = textwrap.dedent("""\
        name: small
        geometry: {lr_width: 240, lr_height: 136, scale: 2}
        pacing: {fps: 60}
        delegates: [xnnpack, gpu]
        threads: 2
        runs: {warmup: 2, iterations: 12}
        inputs:
          images:
            - skimage: coffee
            - skimage: rocket
        models:
        """)
    p.write_text(head + textwrap.dedent(models) + extra)
    return p


def run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PERFLAB, *args], capture_output=True, text=True, timeout=900, check=False)


def _unloadable_model() -> bytes:
    """A TFLite flatbuffer (so `scenario check` takes it) that no interpreter can load: espcn
    with every op made a custom op nobody registered. Only the run finds out."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(get_artifact("espcn", 2, "fp32").path.read_bytes(), 0)
    for code in model.operatorCodes:
        code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.CUSTOM
        code.customCode = b"PerflabNoSuchOp"
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_full_run_with_a_broken_model(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(_unloadable_model())
    p = scenario(tmp_path, """\
          - zoo: espcn
            variants: [fp32, int8]
          - path: broken.tflite
            scale: 2
        """)
    out = tmp_path / "run"
    r = run_cli(["run", str(p), "--device", "local", "--out", str(out), "--reports-dir", str(tmp_path / "reports")])
    assert r.returncode == 1, r.stdout + r.stderr  # one cell failed, the rest were measured
    run = load_run(out)
    assert run.schema_ == "perflab.results/7" and run.exit_code == 1
    by_id = {c.cell_id: c for c in run.cells}
    assert set(by_id) == {
        "bicubic_x2.fp32.xnnpack", "espcn_x2.fp32.xnnpack", "espcn_x2.int8.xnnpack", "broken.file.xnnpack",
        "bicubic_x2.fp32.gpu", "espcn_x2.fp32.gpu", "espcn_x2.int8.gpu", "broken.file.gpu",
    }
    assert by_id["broken.file.xnnpack"].status == "failed" and "broken.tflite" in (by_id["broken.file.xnnpack"].reason or "")
    assert by_id["espcn_x2.fp32.gpu"].status == "unsupported"
    base = by_id["bicubic_x2.fp32.xnnpack"]
    for cid in ("bicubic_x2.fp32.xnnpack", "espcn_x2.fp32.xnnpack", "espcn_x2.int8.xnnpack"):
        c = by_id[cid]
        assert c.status == "ok", c.reason
        assert c.device.kind == "local" and c.emulated is False
        assert c.model.sha256 and len(c.model.sha256) == 64 and c.model.size_bytes and c.model.size_bytes > 0
        lat = c.latency_ms
        assert lat is not None and lat.mode == "paced" and lat.n == 12
        assert lat.median is not None and lat.p90 is not None and lat.init is not None and lat.first is not None
        assert 0 < lat.min <= lat.median <= lat.p90 <= lat.max  # type: ignore[operator]
        assert set(c.series) == {"paced", "back_to_back"}
        assert c.telemetry.cpu_load_pct is not None and c.telemetry.cpu_load_pct > 0
        assert c.telemetry.mem_peak_mb is not None and c.telemetry.mem_peak_mb > 10
        assert c.quality.frames == 2 and c.quality.psnr_y_db is not None and c.quality.ssim_y is not None
        assert "power_source" in c.telemetry.missing  # no power source on this machine: said, not zero
        # what it cost, sampled on this machine over the headline series: CPU and memory, not power
        tel = c.telemetry
        assert tel.device_cpu_busy_pct is not None and tel.rss_peak_mb is not None and tel.rss_peak_mb > 10
        assert tel.timeline_file and (out / tel.timeline_file).is_file()
        assert tel.power_mw is None and "current_ma" in tel.missing and "battery" in tel.missing["current_ma"]
        assert tel.sampler_cpu_pct is not None
    assert [i.serial for i in run.idle] == ["local"] and run.idle[0].device_cpu_busy_pct is not None
    sr = by_id["espcn_x2.fp32.xnnpack"]
    assert sr.deltas is not None and sr.deltas.baseline_cell_id == base.cell_id
    assert sr.vs_idle is not None and sr.vs_idle.device_cpu_busy_pct is not None
    assert sr.quality.psnr_y_db > base.quality.psnr_y_db  # type: ignore[operator]
    assert sr.deltas.psnr_y_db == pytest.approx(sr.quality.psnr_y_db - base.quality.psnr_y_db)  # type: ignore[operator]
    # raw samples are kept, and match the statistics
    samples = [s for s in read_samples(out) if s[0] == "espcn_x2.fp32.xnnpack" and s[1] == "paced"]
    assert len(samples) == 12
    assert max(s[3] for s in samples) == pytest.approx(sr.latency_ms.max, abs=1e-5)  # type: ignore[union-attr]
    assert (out / "frames" / "espcn_x2.fp32.xnnpack" / "coffee.png").is_file()
    _check_vmaf(out, run, [by_id[c] for c in ("bicubic_x2.fp32.xnnpack", "espcn_x2.fp32.xnnpack",
                                              "espcn_x2.int8.xnnpack")])
    assert (out / "index.html").is_file()
    # the run is indexed in the results database
    import sqlite3

    con = sqlite3.connect(tmp_path / "reports" / "perflab.sqlite")
    assert con.execute("SELECT count(*) FROM cells WHERE run_id = ?", (run.run_id,)).fetchone()[0] == 8
    # the report rebuilds from the folder alone
    (out / "index.html").unlink()
    r2 = run_cli(["report", str(out)])
    assert r2.returncode == 0, r2.stderr
    assert (out / "index.html").is_file()
    # streamed progress names every cell
    for cid in by_id:
        assert cid in r.stdout


def _check_vmaf(out: Path, run: Any, cells: list[Any]) -> None:
    """Every ok cell has VMAF beside bicubic's, computed from the kept lossless files, and a
    plain `ffmpeg -lavfi libvmaf` run on those files gives the same per-frame scores (±0.05)."""
    from perflab.formats.vmaf_log import parse_vmaf_log
    from perflab.quality.video import ffmpeg_exe

    ref = run.reference_video
    assert ref is not None and ref.missing is None and ref.frames == 2 and len(ref.segments) == 2  # two sizes
    base = cells[0]
    for c in cells:
        q = c.quality
        assert q.vmaf is not None and q.vmaf_harmonic_mean is not None and q.vmaf_p5 is not None, q.missing
        assert q.vmaf_frames == 2 and q.vmaf_model is not None and q.vmaf_model.startswith("vmaf_v0.6.1 (libvmaf ")
        assert q.video is not None and [s.frames for s in q.video.segments] == [s.frames for s in ref.segments]
        if c is not base:
            assert c.deltas.vmaf == pytest.approx(q.vmaf - base.quality.vmaf)
            assert all(f.d_vmaf is not None for f in q.per_frame)
        for seg, rseg in zip(q.video.segments, ref.segments, strict=True):
            log = out / "plain.json"
            subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(out / seg.file), "-i",
                            str(out / rseg.file), "-lavfi", "libvmaf=log_fmt=json:log_path=plain.json", "-f", "null",
                            "-"], cwd=out, check=True, timeout=300)
            plain = parse_vmaf_log(log.read_text()).scores
            log.unlink()
            ours = [f.vmaf for f in q.per_frame if f.frame in seg.frames]
            assert len(plain) == len(ours) and all(abs(a - b) <= 0.05 for a, b in zip(ours, plain, strict=True))


def test_default_out_folder_and_json(tmp_path: Path) -> None:
    p = scenario(tmp_path, """\
          - zoo: bicubic
            variants: [int8]
        """).read_text().replace("delegates: [xnnpack, gpu]", "delegates: [cpu]")
    sc = tmp_path / "s2.yaml"
    sc.write_text(p)
    r = run_cli(["run", str(sc), "--device", "local", "--reports-dir", str(tmp_path / "rep"), "--no-report"])
    assert r.returncode == 0, r.stdout + r.stderr
    runs = list((tmp_path / "rep" / "small").iterdir())
    assert len(runs) == 1
    data = json.loads((runs[0] / "results.json").read_text())
    assert [c["status"] for c in data["cells"]] == ["ok", "ok"]
    assert data["cells"][1]["model"]["variant"] == "int8"
    # the run ends with the answer per cell, then where the files are
    lines = r.stdout.splitlines()
    head = lines.index("  cells (latency of the headline series: p90 where measured, else the tool's mean):")
    assert re.fullmatch(r"    local \S+ fp32 cpu: ok · p90 [0-9.]+ ms · real time (yes|no) by p90 · bicubic baseline",
                        lines[head + 1]), lines
    assert re.fullmatch(r"    local \S+ int8 cpu: ok · p90 [0-9.]+ ms · real time (yes|no) by p90 · "
                        r"Δ vs bicubic median [+−±][0-9.]+ ms, PSNR-Y [+−±][0-9.]+ dB", lines[head + 2]), lines
    assert lines[-1].startswith("  results: ")


def test_corrupt_image_is_bad_input(tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    p = scenario(tmp_path, """\
          - zoo: bicubic
            variants: [int8]
        """).read_text().replace("    - skimage: rocket\n", "    - path: pics\n")
    sc = tmp_path / "s3.yaml"
    sc.write_text(p)
    r = run_cli(["run", str(sc), "--device", "local", "--out", str(tmp_path / "o"), "--no-report"])
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "broken.png" in err[0] and "Traceback" not in r.stderr
