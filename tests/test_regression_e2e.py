"""A regression found end to end: the same scenario run twice on this machine, the model file
behind one cell swapped for a slower build in between (what a regression is in practice: a new
model that got slower). `perflab compare` flags it with exit 1, a confidence interval and a
JUnit failure naming the changed file; the dashboard over both runs renders."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support.timing import measure_until_within

from perflab.store.runfolder import load_run
from perflab.zoo.registry import get_artifact

PERFLAB = str(Path(sys.executable).with_name("perflab"))

pytestmark = pytest.mark.slow


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PERFLAB, *args], capture_output=True, text=True, timeout=900, check=False)


def test_a_slower_model_build_is_a_regression(tmp_path: Path) -> None:
    model = tmp_path / "sr.tflite"
    shutil.copy(get_artifact("bicubic", 2, "fp32").path, model)  # tonight's build: the fast one
    scen = tmp_path / "nightly.yaml"
    scen.write_text(textwrap.dedent("""\
        name: nightly
        geometry: {lr_width: 320, lr_height: 180, scale: 2}
        pacing: {fps: 30, also_back_to_back: false}
        delegates: [xnnpack]
        threads: 1
        runs: {warmup: 2, iterations: 40}
        profiling: {op_profiling: false}
        telemetry: {idle_baseline_s: 0}
        inputs:
          images:
            - skimage: coffee
        models:
          - {path: sr.tflite, name: our_sr, scale: 2}
        """))
    attempt = 0

    def two_nights() -> tuple[Path, Path, Path]:
        """Night 1 on tonight's build (bicubic, a tiny graph), night 2 on the next (ESPCN fp32), fresh folders."""
        nonlocal attempt
        attempt += 1
        root = tmp_path / f"attempt{attempt}"
        root.mkdir()
        db, a, b = root / "store.sqlite", root / "night1", root / "night2"
        shutil.copy(get_artifact("bicubic", 2, "fp32").path, model)
        r = run(["run", str(scen), "--device", "local", "--out", str(a), "--db", str(db), "-q"])
        assert r.returncode == 0, r.stdout + r.stderr
        shutil.copy(get_artifact("espcn", 2, "fp32").path, model)  # the next build: slower on this CPU
        r = run(["run", str(scen), "--device", "local", "--out", str(b), "--db", str(db), "-q"])
        assert r.returncode == 0, r.stdout + r.stderr
        return db, a, b

    def premise_misses(nights: tuple[Path, Path, Path]) -> list[str]:
        """The premise (the next build slower by > 20%), which a busy host can upset in one pair
        of runs (night 1 disturbed): measured again, the bound never widened."""
        _, a, b = nights
        slow = {c.cell_id: c for c in load_run(b).cells}["our_sr.file.xnnpack"].latency_ms
        fast = {c.cell_id: c for c in load_run(a).cells}["our_sr.file.xnnpack"].latency_ms
        assert slow is not None and fast is not None and slow.median is not None and fast.median is not None
        return [] if slow.median > 1.2 * fast.median else [f"next {slow.median:.1f} ms vs tonight {fast.median:.1f} ms"]

    db, a, b = measure_until_within(two_nights, premise_misses)

    out = tmp_path / "cmp"
    r = run(["compare", str(a), str(b), "--threshold", "latency.median:5%", "--out", str(out)])
    assert r.returncode == 1, r.stdout + r.stderr  # a regression
    assert "our_sr" in r.stdout and "sha256" in (r.stdout + r.stderr)  # the model changed: said
    junit = ET.parse(out / "junit.xml").getroot()
    failed = {tc.get("name", ""): tc.find("failure") for tc in junit.iter("testcase") if tc.find("failure") is not None}
    # the swapped model's cell is a regression, with its interval and the changed file named (an
    # unchanged cell may move too on a busy 2-core machine: that is the data, not asserted here)
    msg = failed["our_sr.file.xnnpack:latency.median"]
    assert msg is not None and "[+" in (msg.get("message") or "") and "sha256" in (msg.text or "")
    page = (out / "index.html").read_text()
    assert "our_sr.file.xnnpack" in page and "95% intervals" in page  # shown with its confidence interval

    dash = tmp_path / "dash"
    r = run(["dashboard", "--db", str(db), "--out", str(dash)])
    assert r.returncode == 0, r.stderr
    assert (dash / "index.html").is_file()
