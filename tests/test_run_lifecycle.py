"""A run that a lab can stop and resume: SIGINT/SIGTERM after the first cell of a 3-cell `local`
run ends with a final results.json, an INCOMPLETE report and no leftover process; `--resume`
finishes it; a non-empty `--out` is bad input."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import psutil
import pytest

from perflab.store.results import CellStatus
from perflab.store.runfolder import load_run

PERFLAB = str(Path(sys.executable).with_name("perflab"))

pytestmark = pytest.mark.slow


def scenario(tmp_path: Path, iterations: int) -> Path:
    p = tmp_path / "three.yaml"
    p.write_text(textwrap.dedent(f"""\
        name: three
        geometry: {{lr_width: 160, lr_height: 96, scale: 2}}
        pacing: {{fps: 100, also_back_to_back: true}}
        models:
          - {{zoo: espcn, variants: [fp32, int8]}}
        delegates: [xnnpack]
        threads: 1
        runs: {{warmup: 1, iterations: {iterations}}}
        inputs:
          images:
            - skimage: coffee
        """))
    return p


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([PERFLAB, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, "PYTHONUNBUFFERED": "1"})


def stop_after_first_cell(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[str, str]:
    """Read progress until the baseline cell is reported, then send ``sig``; return all output."""
    assert proc.stdout is not None and proc.stderr is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if "bicubic_x2.fp32.xnnpack: ok" in line:
            proc.send_signal(sig)
            break
    out, err = proc.communicate(timeout=600)
    return "".join(seen) + out, err


def workers_of(folder: Path) -> list[psutil.Process]:
    """Host worker processes whose command line points into this run folder."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "host_worker" in cmd and str(folder) in cmd:
            found.append(p)
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_after_first_cell_stops_cleanly_and_resume_finishes(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "run"
    p = scenario(tmp_path, iterations=200)
    proc = start(["run", str(p), "--device", "local", "--out", str(out), "--reports-dir", str(tmp_path / "reports")])
    stdout, stderr = stop_after_first_cell(proc, sig)
    assert proc.returncode == 128 + sig, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert f"perflab run --resume {out}" in stderr  # the user is told how to finish it

    run = load_run(out)  # final, valid results
    assert run.finished_utc is not None and run.exit_code == 128 + sig
    assert run.stop is not None and run.stop.signal == sig.name
    by_id = {c.cell_id: c for c in run.cells}
    assert by_id["bicubic_x2.fp32.xnnpack"].status == CellStatus.OK
    # the cell that was running was cancelled, the one after it never started
    assert by_id["espcn_x2.fp32.xnnpack"].status == CellStatus.INTERRUPTED
    assert by_id["espcn_x2.int8.xnnpack"].status == CellStatus.INTERRUPTED
    assert "not started" in (by_id["espcn_x2.int8.xnnpack"].reason or "")
    assert [(pc.serial, pc.cell_id) for pc in run.planned] == [("local", c) for c in by_id]
    assert not run.complete
    page = (out / "index.html").read_text()
    assert "INCOMPLETE" in page
    assert not workers_of(out), "a host worker outlived the run"
    assert not (out / ".work").exists()  # scratch files stay inside the run folder and are removed

    r = subprocess.run([PERFLAB, "run", "--resume", str(out), "--reports-dir", str(tmp_path / "reports")],
                       capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    done = load_run(out)
    assert done.complete and done.stop is None and len(done.resumed_utc) == 1
    assert all(c.status == CellStatus.OK for c in done.cells) and len(done.cells) == 3
    assert done.cells[0] == run.cells[0]  # the ok cell was not measured again
    with (out / "samples.csv").open() as f:
        counts = Counter((row["cell_id"], row["series"]) for row in csv.DictReader(f))
    # one series of 200 per cell and mode: nothing left over from the interrupted attempt
    assert set(counts.values()) == {200} and len(counts) == 6
    assert "INCOMPLETE" not in (out / "index.html").read_text()


def test_out_that_is_not_empty_is_bad_input(tmp_path: Path) -> None:
    out = tmp_path / "used"
    out.mkdir()
    (out / "results.json").write_text("{}")
    r = subprocess.run([PERFLAB, "run", str(scenario(tmp_path, 3)), "--device", "local", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not empty" in lines[0] and "--resume" in lines[0]
    assert (out / "results.json").read_text() == "{}"  # nothing of the earlier run is touched


def test_unwritable_out_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = subprocess.run([PERFLAB, "run", str(scenario(tmp_path, 3)), "--device", "local", "--out",
                        str(blocker / "run")], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--out" in r.stderr
