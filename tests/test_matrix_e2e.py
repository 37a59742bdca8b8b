"""A real `perflab run` on this machine (tiny frames, few iterations) fed into `perflab matrix`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perflab.store.runfolder import load_run

PERFLAB = str(Path(sys.executable).with_name("perflab"))

pytestmark = pytest.mark.slow


def test_a_real_local_run_in_the_matrix(tmp_path: Path) -> None:
    scen = tmp_path / "tiny.yaml"
    scen.write_text(textwrap.dedent("""\
        name: tiny
        geometry: {lr_width: 96, lr_height: 64, scale: 2}
        pacing: {fps: 30}
        delegates: [xnnpack]
        threads: 1
        runs: {warmup: 1, iterations: 5}
        inputs:
          images:
            - skimage: coffee
        models:
          - zoo: espcn
            variants: [int8]
        """))
    run_dir = tmp_path / "run"
    r = subprocess.run([PERFLAB, "run", str(scen), "--device", "local", "--out", str(run_dir), "--quiet",
                        "--reports-dir", str(tmp_path / "reports")], capture_output=True, text=True, timeout=900,
                       check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    run = load_run(run_dir)
    cat = tmp_path / "catalog.csv"
    cat.write_text("# source: test\nmanufacturer,model,soc,share_pct\nGoogle,Pixel 7,GS201,100\n")
    out = tmp_path / "matrix"
    r = subprocess.run([PERFLAB, "matrix", str(run_dir), "--catalog", str(cat), "--out", str(out), "--format",
                        "parquet"], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "matrix.json").read_text())
    (dev,) = data["devices"]
    assert dev["serial"] == "local" and dev["kind"] == "local" and dev["emulated"] is False
    sr = next(c for c in run.cells if not c.baseline)
    cell = dev["cells"][f"{sr.model.name}|{sr.model.variant}|{sr.delegate}|{sr.model.scale}"]
    assert sr.latency_ms is not None and cell["median_ms"] == pytest.approx(sr.latency_ms.median)
    assert sr.realtime is not None
    meets_floor = sr.deltas is not None and sr.deltas.psnr_y_db is not None and sr.deltas.psnr_y_db >= 0
    expected = "rt_q" if sr.realtime.meets and meets_floor else "rt" if sr.realtime.meets else "slow"
    assert cell["verdict"] == expected
    assert (out / cell["report"]).resolve() == (run_dir / "index.html").resolve() and (run_dir / "index.html").is_file()
    # `local` is not a catalog phone: it measures no catalog share and the SoC shows up as a gap
    assert [c["measured_pct"] for c in data["coverage"]] == [0.0]
    assert data["gaps"][0]["soc"] == "GS201" and (out / "frame.parquet").is_file()
    # each run report links its devices' rows once the matrix sits beside the runs (<runs>/matrix/)
    before = (run_dir / "index.html").read_text()
    assert "no matrix beside this run yet" in before and "#device=local" not in before
    r = subprocess.run([PERFLAB, "report", str(run_dir)], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert 'href="../matrix/index.html#device=local"' in (run_dir / "index.html").read_text()
