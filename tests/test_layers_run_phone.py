"""`perflab run` on an emulated rooted phone with every per-layer pass: op profile, kernel
trace (ATrace through the emulated tracefs, captured over the real adb server with journaled
changes), differential and estimate side by side; median and p90 from the trace; the run's
traces export to one Chrome trace JSON."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

if shutil.which("adb") is None:
    pytest.skip("adb is not installed", allow_module_level=True)
pytest.importorskip("tensorflow")

from support.phones import PhoneFactory

from perflab.store.runfolder import load_run

PERFLAB = str(Path(sys.executable).with_name("perflab"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_phone_run_with_every_layer_pass(phones: PhoneFactory, tmp_path: Path) -> None:
    p = tmp_path / "phone.yaml"
    p.write_text(textwrap.dedent("""\
        name: phone_layers
        geometry: {lr_width: 96, lr_height: 64, scale: 2}
        delegates: [gpu]
        threads: 1
        runs: {warmup: 2, iterations: 10}
        telemetry: {enabled: false}
        profiling: {op_profiling: true, trace: true, differential: true, differential_rounds: 2,
                    differential_max_rounds: 4, differential_budget_s: 45,
                    differential_iterations: 6}
        inputs:
          images:
            - skimage: coffee
        models:
          - zoo: espcn
            variants: [fp32]
        """))
    phone = phones.start(profile="pixel7")
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_BENCHMARK_MODEL"}
    env.update(ANDROID_ADB_SERVER_PORT=str(phones.server.port), PERFLAB_STATE_DIR=str(tmp_path / "state"),
               PERFLAB_CACHE_DIR=str(tmp_path / "cache"))
    out = tmp_path / "run"
    r = subprocess.run([PERFLAB, "run", str(p), "--device", phone.serial, "--out", str(out), "--reports-dir",
                        str(tmp_path / "reports"), "--quiet"], capture_output=True, text=True, env=env,
                       timeout=1100, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    run = load_run(out)
    cell = next(c for c in run.cells if c.cell_id == "espcn_x2.fp32.gpu")
    assert cell.emulated and cell.layers is not None
    by = {x.method: x for x in cell.layers.passes}
    assert set(by) == {"op_profile", "atrace", "differential", "estimate"}
    assert all(x.missing is None for x in by.values()), {m: x.missing for m, x in by.items()}
    assert [r.node_type for r in by["atrace"].rows] == ["TfLiteGpuDelegateV2"]  # opaque on the GPU …
    assert [r.name for r in by["differential"].rows] == ["c1", "c2", "c3", "tail"]  # … not to this one
    t = cell.layers.trace
    assert t is not None and t.n == 30 and t.median_ms is not None and t.p90_ms is not None
    assert t.ok is True, t  # the trace's mean within 2% of benchmark_model's own average
    # the traced run's own output is kept: its count and average are the ones checked against
    from perflab.formats.benchmark_output import parse_output

    # (the pass is three tool runs, their outputs one after the other under a header each)
    assert t.tool_log_file is not None and t.tool_log_file.startswith("logs/"), t
    log = (out / t.tool_log_file).read_text()
    parts = re.split(r"^# perflab: traced run \d+ of 3 .*$", log, flags=re.MULTILINE)[1:]
    kept = [parse_output(p) for p in parts]
    assert [k.inference.count if k.inference else None for k in kept] == [10, 10, 10]
    assert sum((k.inference_avg_ms or 0.0) * 10 for k in kept) / 30 == pytest.approx(t.tool_mean_ms)
    assert t.switches and t.timeline is not None and any(s.kind == "irq" for s in t.timeline.spans)
    assert any("ftrace instance" in n for n in t.notes)  # how the phone was traced is stored with it
    part = cell.layers.partition
    assert part is not None and part.on_delegate == len(part.rows) > 0 and "log" in part.sources
    al = cell.layers.aligned  # the GPU's one node is compared in the totals, the groups by estimate/differential
    assert al is not None and [r.name for r in al.rows] == ["c1", "c2", "c3", "tail", "total"]
    lv = {m.method: m.level for m in al.methods}
    assert lv == {"op_profile": "total", "atrace": "total", "estimate": "op", "differential": "group"}, lv
    col = {m.method: k for k, m in enumerate(al.methods)}
    for method in ("op_profile", "atrace"):
        assert all("compared in the totals only" in (r.cells[col[method]].missing or "") for r in al.rows[:-1])
        assert al.rows[-1].cells[col[method]].time_ms == pytest.approx(by[method].rows[0].avg_ms)
    exported = tmp_path / "run.json"
    r = subprocess.run([PERFLAB, "trace", "export", str(out), "--out", str(exported)], capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    doc = json.loads(exported.read_text())
    assert doc["otherData"]["inferences"] >= 2 * 30  # both cells' traces (the bicubic baseline too)
