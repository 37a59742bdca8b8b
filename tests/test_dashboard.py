"""The nightly dashboard from a real results store: an injected step is marked as a regression
since its night, a flaky cell is listed, every point links to its run report, and the page loads
in headless Chromium. Also: two nightlies compared by run id through the store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from support import records

from perflab.store.results import (
    CellStatus,
    QualityRecord,
    RunRecord,
    ScenarioRecord,
    TelemetryRecord,
)
from perflab.store.sql import SqlStore

CHROMIUM = Path("/usr/bin/chromium")
SCEN = records.LIGHT
NIGHTS = 12
STEP_NIGHT = 8  # emu-1's espcn gets 20% slower from this night on


def _night(root: Path, i: int, scen: ScenarioRecord = SCEN, factor: float = 1.0,
           step_night: int = STEP_NIGHT, summary_only: bool = False) -> tuple[RunRecord, Path]:
    rng = np.random.default_rng(100 + i)
    run_id = f"night{i:02d}" if scen is SCEN else f"{scen.name}{i:02d}"
    path = root / scen.name / run_id
    cells, samples = [], {}
    plan = [("emu-1", "bicubic_x2.fp32.cpu", 5.0, CellStatus.OK),
            ("emu-1", "espcn_x2.fp32.cpu", 24.0 if i >= step_night else 20.0, CellStatus.OK),
            ("emu-2", "espcn_x2.fp32.cpu", 22.0, CellStatus.OK),
            ("emu-2", "espcn_x2.fp16.gpu", 9.0, CellStatus.FAILED if i in (3, 4, 9) else CellStatus.OK)]
    for serial, cid, median, status in plan:
        key = f"{serial}/{cid}"
        lat = None
        if status == CellStatus.OK:
            xs = factor * median * np.exp(rng.normal(0.0, 0.04, 30))
            lat = records.latency_of(xs, summary_only=summary_only)  # summary only: a phone's count, mean, std
            if not summary_only:
                samples[key] = xs.tolist()
        cells.append(records.cell(
            cid, artifact_key=key, device=records.emulated_device(serial), status=status,
            reason=None if status == CellStatus.OK else "GPU delegate lost", emulated=True, latency_ms=lat,
            quality=QualityRecord(psnr_y_db=31.0 + rng.normal(0, 0.01) if lat else None),
            telemetry=TelemetryRecord(power_mw=800.0 + rng.normal(0, 5) if lat else None)))
    minute = 0 if scen is SCEN else 30
    run = records.run(cells, run_id=run_id, scenario=scen, perflab_version="0.9",
                      started_utc=f"2026-11-{i + 1:02d}T02:{minute:02d}:00+00:00")
    records.write_run_folder(path, run, samples, report_html=f"<html><body>report {run_id}</body></html>")
    return run, path


@pytest.fixture(scope="module")
def history() -> Iterator[tuple[Path, str]]:
    root = Path(tempfile.mkdtemp(prefix="perflab-dash-"))
    db = root / "perflab.sqlite"
    with SqlStore(db) as st:
        for i in range(NIGHTS):
            run, path = _night(root / "reports", i)
            st.index_run(run, path)
    yield root, str(db)
    shutil.rmtree(root, ignore_errors=True)


def _perflab(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perflab", *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def test_dashboard_marks_the_step_flaky_cell_and_links_reports(history: tuple[Path, str]) -> None:
    root, db = history
    out, junit = root / "site" / "dash", root / "dash-junit.xml"
    r = _perflab("dashboard", "--db", db, "--out", out, "--junit", junit, "--fail-on-regression")
    assert r.returncode == 1, r.stdout + r.stderr
    regs = [ln for ln in r.stdout.splitlines() if ln.startswith("REGRESSION")]
    # the step shows in the median and the p90 of that one cell, from that night on, nowhere else
    assert [ln.split(":")[0] for ln in regs] == ["REGRESSION emu-1/espcn_x2.fp32.cpu"] * 2, r.stdout
    assert [ln.split()[2] for ln in regs] == ["latency.median", "latency.p90"]
    assert all(f"since night{STEP_NIGHT:02d}" in ln and ("+19." in ln or "+20." in ln) for ln in regs)
    assert "flaky emu-2/espcn_x2.fp16.gpu: 4 flips, not ok 3 of 12 nights" in r.stdout
    page = (out / "index.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page  # offline
    assert f"REGRESSION since night{STEP_NIGHT:02d}" in page and 'id="flaky-table"' in page
    links = _Links()
    links.feed(page)
    reports = [h for h in links.hrefs if h.endswith("index.html")]
    # every point and every status square links to an existing run report, by a relative path
    assert len(reports) >= NIGHTS * 4 and all(not h.startswith("/") for h in reports)
    assert all((out / h).resolve().is_file() for h in reports)
    assert {(out / h).resolve().parent.name for h in reports} == {f"night{i:02d}" for i in range(NIGHTS)}
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2" and suite.get("tests") == "16"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["espcn_x2.fp32.cpu:latency.median", "espcn_x2.fp32.cpu:latency.p90"]
    assert (out / "dashboard.json").read_text().startswith('{\n "schema": "perflab.dashboard/1"')


@pytest.mark.slow
def test_dashboard_threshold_and_no_failure_without_a_step(history: tuple[Path, str]) -> None:
    root, db = history
    # a 30% threshold: the 20% step is a change, not a regression
    r = _perflab("dashboard", "--db", db, "--out", root / "d30", "--threshold", "latency.median:30%",
                 "--threshold", "latency.p90:30%", "--fail-on-regression")
    assert r.returncode == 0 and "REGRESSION" not in r.stdout, r.stdout
    page = (root / "d30" / "index.html").read_text()
    assert 'id="no-regressions"' in page and '<line class="step"' in page  # the step is drawn, as a change
    # only emu-2's metrics (no step there), by metric: nothing flagged either
    r = _perflab("dashboard", "--db", db, "--out", root / "dpsnr", "--metric", "quality.psnr_y_db",
                 "--fail-on-regression")
    assert r.returncode == 0 and "0 regression(s)" in r.stdout
    r = _perflab("dashboard", "--db", db, "--out", root / "dx", "--metric", "latency.fastest")
    assert r.returncode == 2 and r.stderr.count("\n") == 1


@pytest.mark.slow
def test_two_nightlies_compared_by_run_id_through_the_store(history: tuple[Path, str]) -> None:
    root, db = history
    before, after = f"night{STEP_NIGHT - 1:02d}", f"night{STEP_NIGHT:02d}"
    r = _perflab("compare", before, after, "--db", db, "--junit", root / "cmp.xml")
    assert r.returncode == 1, r.stdout + r.stderr
    regs = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("REGRESSION")]
    assert len(regs) == 1 and regs[0].startswith("REGRESSION emu-1/espcn_x2.fp32.cpu: latency.median")
    r = _perflab("compare", "night01", "night02", "--db", db)
    assert r.returncode == 0, r.stdout


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (CI installs it)")
@pytest.mark.slow
def test_dashboard_loads_in_headless_chromium(history: tuple[Path, str]) -> None:
    root, db = history
    out = root / "site" / "chromium"
    assert _perflab("dashboard", "--db", db, "--out", out).returncode == 0
    profile = tempfile.mkdtemp(prefix="perflab-chromium-")
    try:
        r = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--dump-dom", (out / "index.html").as_uri()],
            capture_output=True, text=True, timeout=120, env={**os.environ, "LANG": "C.UTF-8"}, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    # the browser parsed the whole page: every chart, its linked points and the tables
    assert dom.count('<svg class="trend"') == 4 * 4  # 4 cells × (median, p90, PSNR, power)
    assert dom.count("<circle") >= NIGHTS * 3 and 'data-regressed="yes"' in dom
    assert 'id="regression-table"' in dom and 'id="flaky-table"' in dom and "EMULATED" in dom


@pytest.mark.slow
def test_dashboard_and_compare_from_postgresql(pg_schema_url: str, tmp_path: Path) -> None:
    """The same nightly history in a real PostgreSQL store (its own schema): the dashboard and
    compare by run id read it there."""
    store_url = pg_schema_url
    with SqlStore(store_url) as st:
        for i in range(NIGHTS):
            run, path = _night(tmp_path / "reports", i)
            st.index_run(run, path)
    r = _perflab("dashboard", "--db", store_url, "--out", tmp_path / "dash", "--fail-on-regression")
    assert r.returncode == 1, r.stdout + r.stderr
    regs = [ln for ln in r.stdout.splitlines() if ln.startswith("REGRESSION")]
    assert [ln.split()[1:3] for ln in regs] == [["emu-1/espcn_x2.fp32.cpu:", "latency.median"],
                                               ["emu-1/espcn_x2.fp32.cpu:", "latency.p90"]]
    r = _perflab("compare", f"night{STEP_NIGHT - 1:02d}", f"night{STEP_NIGHT:02d}", "--db", store_url)
    assert r.returncode == 1 and "REGRESSION emu-1/espcn_x2.fp32.cpu: latency.median" in r.stdout


@pytest.mark.slow
def test_scenarios_are_never_mixed_in_one_trend(tmp_path: Path) -> None:
    """Two scenarios with the same cell ids, the second twice as slow, night after night: no
    step appears from interleaving them; each has its own trends."""
    heavy = SCEN.model_copy(update={"name": "heavy", "sha256": "e" * 64})
    db = tmp_path / "perflab.sqlite"
    with SqlStore(db) as st:
        for i in range(8):
            for scen, factor in ((SCEN, 1.0), (heavy, 2.0)):
                run, path = _night(tmp_path / "reports", i, scen, factor, step_night=99)
                st.index_run(run, path)
    r = _perflab("dashboard", "--db", db, "--out", tmp_path / "d", "--fail-on-regression")
    assert r.returncode == 0 and "0 regression(s)" in r.stdout, r.stdout
    page = (tmp_path / "d" / "index.html").read_text()
    assert "<h3>heavy:espcn_x2.fp32.cpu</h3>" in page and "<h3>light:espcn_x2.fp32.cpu</h3>" in page
    assert '<line class="step' not in page
    r = _perflab("dashboard", "--db", db, "--out", tmp_path / "h", "--scenario", "heavy")
    assert r.returncode == 0 and "(8 runs, 4 cells" in r.stdout


def test_phone_history_without_medians_trends_the_mean(tmp_path: Path) -> None:
    """Phones record no median (benchmark_model's summary only): the mean stands in, says so, and
    its step is the regression."""
    db = tmp_path / "perflab.sqlite"
    with SqlStore(db) as st:
        for i in range(NIGHTS):
            run, path = _night(tmp_path / "reports", i, summary_only=True)
            st.index_run(run, path)
    r = _perflab("dashboard", "--db", db, "--out", tmp_path / "d", "--fail-on-regression")
    assert r.returncode == 1, r.stdout + r.stderr
    regs = [ln for ln in r.stdout.splitlines() if ln.startswith("REGRESSION")]
    assert len(regs) == 1 and regs[0].startswith("REGRESSION emu-1/espcn_x2.fp32.cpu: latency.mean")
    assert f"since night{STEP_NIGHT:02d}" in regs[0]
    page = (tmp_path / "d" / "index.html").read_text()
    assert page.count("(for latency.median: only the tool's summary)") == 4  # every cell
    assert "for latency.p90" not in page  # one mean series per cell, not one under each order statistic's name
    # p90 alone, as the headline asks: the mean stands in for it too, shown as the mean
    r = _perflab("dashboard", "--db", db, "--out", tmp_path / "p", "--metric", "latency.p90")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "p" / "index.html").read_text().count("(for latency.p90: only the tool's summary)") == 4


def test_nights_units_from_the_task_queue_are_shown_truthfully(pg_schema_url: str, tmp_path: Path) -> None:
    """Where the store shares the task queue's database, the dashboard shows each night's units:
    a unit whose page failed is "ok, report failed" (amber, never plain green), a failed unit is
    red, and a unit left "pending" by a job that ended without an outcome is failed, not pending."""
    pytest.importorskip("procrastinate", reason="the task queue (pip install procrastinate)")
    import json

    from perflab.lab.nightly import UnitOutcome, UnitStatus
    from perflab.lab.queue import ensure_tables, record

    url = pg_schema_url
    ensure_tables(url)
    for o in (UnitOutcome("emu-1", "h1", "light", UnitStatus.OK, report="rendered"),
              UnitOutcome("emu-2", "h1", "light", UnitStatus.OK, report="not rendered: RuntimeError: FT_Load_Glyph"),
              UnitOutcome("emu-3", "h2", "light", UnitStatus.FAILED, "espcn: failed: GPU delegate lost"),
              UnitOutcome("emu-4", "h2", "light", UnitStatus.PENDING)):  # its job died without recording
        assert record(url, "n1", "lab", o)
    with SqlStore(url) as st:
        for i in range(3):
            run, path = _night(tmp_path / "reports", i)
            st.index_run(run, path)
    out = tmp_path / "dash"
    r = _perflab("dashboard", "--db", url, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    page = (out / "index.html").read_text()
    assert '<tr data-night="n1">' in page
    assert ('<span class="nchip n-ok">1 ok</span><span class="nchip n-report">1 ok, report failed</span>'
            '<span class="nchip n-bad">2 not ok</span>') in page
    assert '<div class="n-report" data-unit="h1/emu-2/light">h1/emu-2 light: ok, report failed' in page
    assert '<div class="n-bad" data-unit="h2/emu-3/light">h2/emu-3 light: failed' in page
    assert '<div class="n-bad" data-unit="h2/emu-4/light">h2/emu-4 light: failed' in page
    assert "its job ended without recording an outcome" in page and "n-pending" not in page.split("</style>")[1]
    units = {u["serial"]: u for u in json.loads((out / "dashboard.json").read_text())["units"]}
    assert units["emu-2"]["status"] == "ok" and units["emu-2"]["report_failed"] is True
    assert units["emu-4"]["status"] == "failed"


def test_imported_nights_are_labelled_in_the_history(tmp_path: Path) -> None:
    """Captures imported night after night for a phone perflab does not own (a device farm's Pixel 8),
    beside perflab's own nights: the imported cell, its points and its regression line say IMPORTED;
    perflab's own cells do not."""
    from support.matrix_runs import Spec, imported_device, write_imported_run

    from perflab.report.dashboard import build_dashboard, regression_text, render_dashboard_html
    from perflab.store.runfolder import load_run

    px8 = imported_device("pixel8-farm", "Pixel 8", "GS301", "Google")
    db = tmp_path / "perflab.sqlite"
    with SqlStore(db) as st:
        for i in range(6):
            run, path = _night(tmp_path / "reports", i, step_night=99)
            st.index_run(run, path)
            folder = write_imported_run(tmp_path / "imports", f"import-{i}", px8,
                                        [Spec("espcn_x2", "fp32", "cpu", 30.0 if i >= 3 else 20.0)],
                                        started=f"2026-11-{i + 1:02d}T05:00:00+00:00")
            st.index_run(load_run(folder), folder)
        history, cells = st.history(["latency.mean"]), st.cells_frame()
    d = build_dashboard(history, cells, tmp_path / "d", metrics=["latency.mean"])
    by = {(c.device_serial, c.cell_id): c for c in d.cells}
    imp = by[("pixel8-farm", "import:espcn_x2.fp32.cpu")]
    assert imp.imported and imp.device_kind == "imported" and all(p.imported for p in imp.series[0].points)
    assert not by[("emu-1", "light:espcn_x2.fp32.cpu")].imported
    assert [s for s in d.regressions if s.imported] == [imp.series[0]]
    line = regression_text(imp.series[0])
    assert line.startswith("pixel8-farm/import:espcn_x2.fp32.cpu: latency.mean 20 → 30") and "since import-3" in line
    assert line.endswith("[IMPORTED]")
    page = render_dashboard_html(d)
    assert '<span class="imp">IMPORTED</span></h2>' in page and page.count('<circle class="imp"') == 6
    assert "IMPORTED (read from a capture measured outside perflab)</title>" in page
