"""perflab compare: intervals that cover the truth, tests that flag a real change and not noise,
thresholds, metadata refusals and warnings, JUnit XML and the page, end to end through the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats as sps
from support import records

from perflab.analysis.compare import (
    MetaRules,
    Observation,
    Severity,
    Statistic,
    Threshold,
    Verdict,
    bootstrap_ci,
    compare_metric,
    metadata_diffs,
    parse_threshold,
    welch_interval,
)
from perflab.errors import UserInputError
from perflab.store.results import (
    CellStatus,
    FrameQuality,
    LatencyRecord,
    QualityRecord,
    ScenarioRecord,
    TelemetryRecord,
)

LAT5 = Threshold("latency.median", 5.0, relative=True)


def _lognormal(rng: np.random.Generator, median_ms: float, n: int, sigma: float = 0.08) -> npt.NDArray[np.float64]:
    return median_ms * np.exp(rng.normal(0.0, sigma, n))


# -- thresholds ------------------------------------------------------------------------------------


def test_thresholds_parse_and_bad_ones_are_one_line() -> None:
    assert parse_threshold("latency.median:5%") == Threshold("latency.median", 5.0, True)
    assert parse_threshold("quality.psnr_y_db: -0.1") == Threshold("quality.psnr_y_db", -0.1, False)
    assert parse_threshold("telemetry.power_mw:10%").relative
    for bad in ("latency.median", "latency.median:fast", "median:5%", "latency.median:0%", "latency.median:5%%"):
        with pytest.raises(UserInputError) as ei:
            parse_threshold(bad)
        assert "\n" not in str(ei.value) and "--threshold" in str(ei.value)
    with pytest.raises(UserInputError, match=r"unknown metric 'latency\.fastest'"):
        parse_threshold("latency.fastest:5%", ["latency.median"])


# -- intervals and tests on raw samples ------------------------------------------------------------------


@pytest.mark.parametrize("true_ratio", [1.0, 1.2])
def test_bootstrap_interval_covers_the_true_median_ratio(true_ratio: float) -> None:
    """Over 120 independent pairs of lognormal samples, the 95% interval of the median ratio
    holds the true ratio in about 95% of them (binomial: ≥ 88% is far below what a correct
    interval gives by chance, and far above what a broken one gives)."""
    rng = np.random.default_rng(12)
    trials, covered = 120, 0
    for i in range(trials):
        a = _lognormal(rng, 20.0, 80)
        b = _lognormal(rng, 20.0 * true_ratio, 80)
        (lo, hi), _ = bootstrap_ci(a, b, Statistic.MEDIAN, resamples=1000, seed=i)
        covered += lo <= (true_ratio - 1) * 100 <= hi
    assert covered / trials >= 0.88, covered


def test_injected_20pct_regression_is_flagged_with_its_interval() -> None:
    rng = np.random.default_rng(3)
    a = _lognormal(rng, 20.0, 60)
    b = _lognormal(rng, 24.0, 60)
    ch = compare_metric("latency.median", Observation(float(np.median(a)), tuple(a)),
                        Observation(float(np.median(b)), tuple(b)), Statistic.MEDIAN, LAT5)
    assert ch.verdict == Verdict.REGRESSION and ch.significant and ch.test == "Mann-Whitney U"
    assert ch.change_pct is not None and ch.change_pct_ci is not None
    assert ch.change_pct_ci[0] < 20.0 < ch.change_pct_ci[1]
    assert ch.change_pct_ci[0] > 5.0  # the whole interval is beyond the threshold
    assert ch.p_value is not None and ch.p_value < 1e-6
    assert "bootstrap of the median" in ch.method and "n=60, 60" in ch.method
    assert "latency.median" in ch.describe() and "regression" in ch.describe()
    # the same change the other way is an improvement, not a regression
    back = compare_metric("latency.median", Observation(float(np.median(b)), tuple(b)),
                          Observation(float(np.median(a)), tuple(a)), Statistic.MEDIAN, LAT5)
    assert back.verdict == Verdict.IMPROVEMENT


def test_null_change_is_never_a_regression() -> None:
    """Same distribution on both sides (5% noise, a steady phone), 100 times: never a regression,
    and the test alone calls a change about as often as alpha says (it would be 5 of 100)."""
    rng = np.random.default_rng(7)
    verdicts = []
    for i in range(100):
        a, b = _lognormal(rng, 20.0, 50, 0.05), _lognormal(rng, 20.0, 50, 0.05)
        verdicts.append(compare_metric("latency.median", Observation(float(np.median(a)), tuple(a)),
                                       Observation(float(np.median(b)), tuple(b)), Statistic.MEDIAN, LAT5,
                                       resamples=400, seed=i).verdict)
    assert Verdict.REGRESSION not in verdicts
    assert verdicts.count(Verdict.UNCHANGED) >= 88


def test_small_significant_change_within_threshold_is_changed_not_regression() -> None:
    rng = np.random.default_rng(5)
    a, b = _lognormal(rng, 20.0, 400, 0.02), _lognormal(rng, 20.4, 400, 0.02)  # +2%, very tight
    ch = compare_metric("latency.median", Observation(20.0, tuple(a)), Observation(20.4, tuple(b)),
                        Statistic.MEDIAN, LAT5)
    assert ch.significant and ch.verdict == Verdict.CHANGED


def test_psnr_drop_with_an_absolute_negative_threshold() -> None:
    rng = np.random.default_rng(9)
    a = 30.0 + rng.normal(0, 0.05, 24)
    b = a - 0.3 + rng.normal(0, 0.05, 24)
    thr = Threshold("quality.psnr_y_db", -0.1, relative=False)
    ch = compare_metric("quality.psnr_y_db", Observation(float(a.mean()), tuple(a)),
                        Observation(float(b.mean()), tuple(b)), Statistic.MEAN, thr)
    assert ch.verdict == Verdict.REGRESSION
    assert ch.diff is not None and ch.diff == pytest.approx(-0.3, abs=0.05)
    assert ch.diff_ci is not None and ch.diff_ci[0] < -0.3 < ch.diff_ci[1] + 0.05
    # a rise of PSNR is never a regression under a negative threshold
    up = compare_metric("quality.psnr_y_db", Observation(float(b.mean()), tuple(b)),
                        Observation(float(a.mean()), tuple(a)), Statistic.MEAN, thr)
    assert up.verdict == Verdict.IMPROVEMENT


def test_paired_frames_see_a_small_drop_that_frame_spread_hides() -> None:
    """30 frames whose PSNR spreads over ±3 dB, each 0.15 dB lower in B: paired by frame the drop
    is found with an interval around −0.15 dB; the same numbers unpaired are noise."""
    rng = np.random.default_rng(21)
    a = 30.0 + rng.normal(0, 3.0, 30)
    b = a - 0.15 + rng.normal(0, 0.03, 30)
    names = tuple(f"frame{i:03d}.png" for i in range(30))
    thr = Threshold("quality.psnr_y_db", -0.1, relative=False)
    paired = compare_metric("quality.psnr_y_db", Observation(float(a.mean()), tuple(a), names),
                            Observation(float(b.mean()), tuple(b), names), Statistic.MEAN, thr)
    assert paired.test == "Wilcoxon signed-rank" and paired.verdict == Verdict.REGRESSION
    assert paired.diff_ci is not None and paired.diff_ci[0] < -0.15 < paired.diff_ci[1] < -0.1
    assert "same 30 samples" in paired.method
    # B's frames listed in another order are still paired by name
    order = rng.permutation(30)
    shuffled = compare_metric("quality.psnr_y_db", Observation(float(a.mean()), tuple(a), names),
                              Observation(float(b.mean()), tuple(b[order]), tuple(names[i] for i in order)),
                              Statistic.MEAN, thr)
    assert shuffled.verdict == Verdict.REGRESSION and shuffled.diff == pytest.approx(paired.diff)
    unpaired = compare_metric("quality.psnr_y_db", Observation(float(a.mean()), tuple(a)),
                              Observation(float(b.mean()), tuple(b)), Statistic.MEAN, thr)
    assert unpaired.test == "Mann-Whitney U" and unpaired.verdict == Verdict.UNCHANGED
    # other frames on the two sides: not paired
    other = compare_metric("quality.psnr_y_db", Observation(float(a.mean()), tuple(a), names),
                           Observation(float(b.mean()), tuple(b), tuple(f"x{i}" for i in range(30))),
                           Statistic.MEAN, thr)
    assert other.test == "Mann-Whitney U"


# -- a tool summary only (phones), one value per run ----------------------------------------------------


def test_welch_interval_from_summary_matches_scipy() -> None:
    (lo, hi), p = welch_interval(20.0, 2.0, 50, 24.0, 2.5, 40)
    ref = sps.ttest_ind_from_stats(24.0, 2.5, 40, 20.0, 2.0, 50, equal_var=False)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)
    assert lo < 4.0 < hi and (lo + hi) / 2 == pytest.approx(4.0)


def test_summary_only_uses_welch_and_says_so() -> None:
    a = Observation(20.0, mean=20.0, std=1.0, n=50)
    b = Observation(24.0, mean=24.0, std=1.2, n=50)
    ch = compare_metric("latency.median", a, b, Statistic.MEDIAN, LAT5)
    assert ch.test == "Welch t" and "tool summary" in ch.method and "no raw samples" in ch.method
    assert ch.note is not None and "mean is tested" in ch.note
    assert ch.verdict == Verdict.REGRESSION and ch.change_pct == pytest.approx(20.0)
    assert ch.change_pct_ci is not None and ch.change_pct_ci[0] < 20.0 < ch.change_pct_ci[1]
    same = compare_metric("latency.mean", a, Observation(20.1, mean=20.1, std=1.0, n=50), Statistic.MEAN, LAT5)
    assert same.verdict == Verdict.UNCHANGED and same.note is None


def test_one_value_per_run_is_untested_even_beyond_the_threshold() -> None:
    thr = Threshold("telemetry.power_mw", 10.0, relative=True)
    ch = compare_metric("telemetry.power_mw", Observation(1000.0, n=1), Observation(1300.0, n=1),
                        Statistic.VALUE, thr)
    assert ch.verdict == Verdict.UNTESTED and ch.change_pct == pytest.approx(30.0)
    assert ch.note is not None and "cannot be tested" in ch.note
    gone = compare_metric("telemetry.power_mw", Observation(1000.0), Observation(None, missing="no meter"),
                          Statistic.VALUE, thr)
    assert gone.verdict == Verdict.MISSING and gone.note == "B: no meter"


# -- metadata --------------------------------------------------------------------------------------------


def test_metadata_differences_refuse_or_warn() -> None:
    a = {"scenario_sha256": "aa", "perflab_version": "0.1", "device_fingerprint": "fp1", "model_sha256": None}
    b = {"scenario_sha256": "bb", "perflab_version": "0.2", "device_fingerprint": "fp1", "model_sha256": "x"}
    diffs = {d.key: d for d in metadata_diffs(a, b, start_temp_a_c=30.0, start_temp_b_c=36.5)}
    assert diffs["scenario_sha256"].severity == Severity.REFUSE
    assert diffs["perflab_version"].severity == Severity.WARN
    assert "device_fingerprint" not in diffs and "model_sha256" not in diffs  # equal / unknown on one side
    assert "+6.5 °C" in diffs["start_temp_c"].message
    assert not metadata_diffs(a, a, MetaRules(temp_tolerance_c=10.0), start_temp_a_c=30.0, start_temp_b_c=36.5)


def test_metadata_difference_quotes_whole_values_or_marks_the_cut() -> None:
    # a device model with a closing parenthesis past 24 characters lost it, silently
    a = {"device_model": "vm (Linux x86_64, 2 CPUs)", "device_fingerprint": "samsung/" + "x" * 80}
    b = {"device_model": "SM-S918B", "device_fingerprint": "google/" + "y" * 80}
    diffs = {d.key: d for d in metadata_diffs(a, b)}
    assert diffs["device_model"].message == "device model differs: vm (Linux x86_64, 2 CPUs) vs SM-S918B"
    assert diffs["device_fingerprint"].message.count("…") == 2


# -- two run folders through the CLI --------------------------------------------------------------------


SCEN = records.LIGHT
CELLS = ("bicubic_x2.fp32.cpu", "espcn_x2.fp32.cpu")


def _write_run(path: Path, run_id: str, medians: dict[str, float], *, seed: int, serial: str = "emu-1",
               model: str = "Pixel 7", scenario: ScenarioRecord = SCEN, statuses: dict[str, CellStatus] | None = None,
               fingerprint: str = "google/panther:14", start_temp_c: float = 30.0, n: int = 60,
               summary_only: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    cells, samples = [], {}
    for cid in CELLS:
        status = (statuses or {}).get(cid, CellStatus.OK)
        lat = None
        per_frame: list[FrameQuality] = []
        if status == CellStatus.OK:
            xs = _lognormal(rng, medians[cid], n)
            if summary_only:  # a phone's benchmark_model: count, mean, std; no samples, no median
                why = "the device tool reports only count/avg/std/min/max, not raw per-run samples"
                lat = LatencyRecord(mode="paced", fps_target=30.0, source="tool summary", mean=float(xs.mean()),
                                    std=float(xs.std(ddof=1)), n=n, missing={"median": why, "p90": why})
            else:
                samples[cid] = xs.tolist()
                lat = records.latency_of(xs, fps_target=30.0)
            per_frame = [FrameQuality(frame=f"f{i}", psnr_y_db=30.0 + 0.01 * i) for i in range(8)]
        cells.append(records.cell(
            cid, device=records.emulated_device(serial, model, fingerprint=fingerprint), model_sha256="b" * 64,
            status=status, emulated=True, latency_ms=lat,
            quality=QualityRecord(psnr_y_db=30.035 if per_frame else None, frames=len(per_frame), per_frame=per_frame),
            telemetry=TelemetryRecord(start_temp_c=start_temp_c, power_mw=1000.0 if per_frame else None)))
    run = records.run(cells, run_id=run_id, scenario=scenario, perflab_version="0.9",
                      started_utc="2026-11-28T00:00:00+00:00", finished_utc="2026-11-28T00:10:00+00:00", exit_code=0)
    records.write_run_folder(path, run, samples, report_html="<html>run report</html>")
    return path


def _compare(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perflab", "compare", *map(str, args)], capture_output=True,
                          text=True, timeout=300, check=False)


BASE = {"bicubic_x2.fp32.cpu": 5.0, "espcn_x2.fp32.cpu": 20.0}


def test_cli_injected_regression_exit_1_junit_and_page(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", "night1", BASE, seed=1)
    b = _write_run(tmp_path / "b", "night2", {**BASE, "espcn_x2.fp32.cpu": 24.0}, seed=2, start_temp_c=36.0)
    junit, out = tmp_path / "ci" / "junit.xml", tmp_path / "cmp"
    r = _compare(a, b, "--threshold", "latency.median:5%", "--threshold", "quality.psnr_y_db:-0.1", "--junit", junit,
                 "--out", out)
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    reg = [ln for ln in lines if ln.lstrip().startswith("REGRESSION")]
    assert len(reg) == 1 and "emu-1/espcn_x2.fp32.cpu: latency.median" in reg[0] and "Mann-Whitney U" in reg[0]
    assert reg[0].endswith("[emulated phone]")  # emulated results are labelled wherever they appear
    assert "start temperature differs by +6.0 °C" in r.stdout
    assert lines[-1] == "1 regression(s) in 2 matched cell(s)"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    failed = [k for k, c in cases.items() if c.find("failure") is not None]
    assert failed == [("compare.emu-1", "espcn_x2.fp32.cpu:latency.median")]
    text = cases[failed[0]].find("failure").text or ""  # type: ignore[union-attr]
    m = re.search(r"latency.median: [0-9.]+ → [0-9.]+; \+[0-9.]+% \[\+([0-9.]+)%, \+([0-9.]+)%\]", text)
    assert m is not None and float(m.group(1)) < 20.0 < float(m.group(2)), text  # the interval holds the truth
    assert "bootstrap of the median" in text
    # one testcase per cell × metric: 2 cells × (5 default metrics) — psnr is among them
    assert len(cases) == 2 * 5
    page = (out / "index.html").read_text()
    assert "1 regression(s)" in page and 'data-metric="latency.median"' in page and "<script" not in page
    assert page.count('<span class="badge emu">EMULATED</span>') == 2  # once per cell
    assert 'href="../b/index.html"' in page  # the run report, relative to the page
    assert (out / "junit.xml").is_file()


def test_cli_null_change_exit_0(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", "night1", BASE, seed=11)
    b = _write_run(tmp_path / "b", "night2", BASE, seed=12)
    r = _compare(a, b, "--junit", tmp_path / "j.xml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "REGRESSION" not in r.stdout
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"


def test_cli_a_junit_path_that_cannot_be_written_is_the_users_error(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", "night1", BASE, seed=11)
    b = _write_run(tmp_path / "b", "night2", BASE, seed=12)
    (tmp_path / "file").write_text("not a folder")
    r = _compare(a, b, "--junit", tmp_path / "file" / "j.xml")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--junit: cannot write:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_refuses_other_scenario_unless_forced(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", "night1", BASE, seed=1)
    other = SCEN.model_copy(update={"sha256": "c" * 64})
    b = _write_run(tmp_path / "b", "night2", BASE, seed=2, scenario=other)
    r = _compare(a, b)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "refused: scenario (sha256) differs" in r.stderr and "--force" in r.stderr
    r = _compare(a, b, "--force")
    assert r.returncode == 0 and "warning: run: scenario (sha256) differs" in r.stdout


def test_cli_cell_that_broke_is_a_regression_and_swapped_phone_matches_by_model(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", "night1", BASE, seed=1)
    b = _write_run(tmp_path / "b", "night2", BASE, seed=2, serial="emu-9", fingerprint="google/panther:15",
                   statuses={"espcn_x2.fp32.cpu": CellStatus.FAILED})
    junit = tmp_path / "j.xml"
    r = _compare(a, b, "--junit", junit)
    assert r.returncode == 1
    assert "REGRESSION emu-1→emu-9/espcn_x2.fp32.cpu: no comparison: B: failed (it broke)" in r.stdout
    assert "device build fingerprint differs" in r.stdout
    assert "only in" not in r.stdout  # matched by device model + cell id
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    fails = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert fails == ["espcn_x2.fp32.cpu:status"]


@pytest.mark.slow
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", "night1", BASE, seed=1)
    for args in ((a, tmp_path / "nope"), (a, a, "--threshold", "latency.median=5"), (a, a, "--metric", "foo.bar")):
        r = _compare(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


@pytest.mark.slow
def test_cli_compares_runs_by_id_from_the_store_alone(tmp_path: Path) -> None:
    """Folders on another rack host (here: removed): the store's records and raw samples suffice,
    with the same bootstrap intervals."""
    import shutil

    from perflab.store.runfolder import load_run
    from perflab.store.sql import SqlStore

    a = _write_run(tmp_path / "a", "night1", BASE, seed=1)
    b = _write_run(tmp_path / "b", "night2", {**BASE, "espcn_x2.fp32.cpu": 24.0}, seed=2)
    db = tmp_path / "perflab.sqlite"
    with SqlStore(db) as st:
        for p in (a, b):
            st.index_run(load_run(p), p)
    with_folders = _compare("night1", "night2", "--db", db)
    shutil.rmtree(a)
    shutil.rmtree(b)
    r = _compare("night1", "night2", "--db", db)
    assert r.returncode == 1, r.stdout + r.stderr
    reg = [ln for ln in r.stdout.splitlines() if "REGRESSION" in ln]
    assert len(reg) == 1 and re.search(r"\+[0-9.]+% \[\+[0-9.]+%, \+[0-9.]+%\]", reg[0]) and "Mann-Whitney U" in reg[0]
    assert r.stdout == with_folders.stdout  # the same numbers, intervals and verdicts
    r = _compare("night1", "night9", "--db", db)
    assert r.returncode == 2 and "night9: no such run folder, and no run with that id" in r.stderr


def test_cli_compares_two_nights_of_run_folders(tmp_path: Path) -> None:
    """Two nights (``<night>/<scenario>/<serial>/``): runs paired by scenario and phone, one
    regression on one phone of one scenario, a run with no partner listed."""
    heavy = SCEN.model_copy(update={"name": "heavy", "sha256": "d" * 64})
    for night, slow in (("n1", 20.0), ("n2", 24.0)):
        _write_run(tmp_path / night / "light" / "emu-1", f"{night}-l1", BASE, seed=len(night) + 1, serial="emu-1")
        _write_run(tmp_path / night / "light" / "emu-2", f"{night}-l2", {**BASE, "espcn_x2.fp32.cpu": slow},
                   seed=3 if night == "n1" else 4, serial="emu-2")
        _write_run(tmp_path / night / "heavy" / "emu-1", f"{night}-h1", BASE, seed=5 if night == "n1" else 6,
                   serial="emu-1", scenario=heavy)
    _write_run(tmp_path / "n2" / "heavy" / "emu-3", "n2-h3", BASE, seed=7, serial="emu-3", model="Galaxy S24",
               scenario=heavy)
    junit = tmp_path / "j.xml"
    r = _compare(tmp_path / "n1", tmp_path / "n2", "--junit", junit)
    assert r.returncode == 1, r.stdout + r.stderr
    regs = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("REGRESSION")]
    assert len(regs) == 1 and regs[0].startswith("REGRESSION light:emu-2/espcn_x2.fp32.cpu: latency.median")
    assert "only in B: heavy:emu-3 (run n2-h3: no partner)" in r.stdout
    assert r.stdout.splitlines()[-1] == "1 regression(s) in 6 matched cell(s)"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    fails = [(c.get("classname"), c.get("name")) for c in suite.iter("testcase") if c.find("failure") is not None]
    assert fails == [("compare.light.emu-2", "espcn_x2.fp32.cpu:latency.median")]


@pytest.mark.slow
def test_cli_phone_summaries_only_regression_through_welch(tmp_path: Path) -> None:
    """Phones that cannot be traced give no raw samples, no median and no p90: the median threshold is judged on
    the mean with Welch's interval, shown as latency.mean (never the mean under median's or p90's name, and one row
    for both), and the line says so; the same phones unchanged are not flagged."""
    a = _write_run(tmp_path / "a", "night1", BASE, seed=1, summary_only=True, n=50)
    b = _write_run(tmp_path / "b", "night2", {**BASE, "espcn_x2.fp32.cpu": 24.0}, seed=2, summary_only=True, n=50)
    same = _write_run(tmp_path / "c", "night3", BASE, seed=3, summary_only=True, n=50)
    r = _compare(a, b, "--metric", "latency.median", "--metric", "latency.p90")
    assert r.returncode == 1, r.stdout + r.stderr
    reg = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("REGRESSION")]
    assert len(reg) == 1 and reg[0].startswith("REGRESSION emu-1/espcn_x2.fp32.cpu: latency.mean")
    assert "(Welch t)" in reg[0] and "stands in for latency.median, not measured" in reg[0]
    assert not re.search(r"cpu: latency\.(median|p90):", r.stdout), r.stdout
    m = re.search(r"\+([0-9.]+)% \[\+([0-9.]+)%, \+([0-9.]+)%\]", reg[0])
    assert m is not None and float(m.group(2)) < 20.0 < float(m.group(3))
    r = _compare(a, same, "--metric", "latency.median")
    assert r.returncode == 0 and "REGRESSION" not in r.stdout


def test_junit_classnames_are_one_name_per_part_for_ci_tools(tmp_path: Path) -> None:
    """CI tools split a JUnit classname at its dots into packages: a network serial's dots must not
    make four packages of one phone."""
    from perflab.report.junit import classname

    serial = "127.0.0.1:5042"
    assert classname("compare", "light.v2", serial) == "compare.light_v2.127_0_0_1:5042"
    assert classname("dashboard", "", serial) == "dashboard.127_0_0_1:5042"
    a = _write_run(tmp_path / "a", "night1", BASE, seed=1, serial=serial)
    b = _write_run(tmp_path / "b", "night2", {**BASE, "espcn_x2.fp32.cpu": 24.0}, seed=2, serial=serial)
    junit = tmp_path / "junit.xml"
    r = _compare(a, b, "--junit", junit)
    assert r.returncode == 1, r.stdout + r.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    names = {c.get("classname") for c in suite.iter("testcase")}
    assert names == {"compare.127_0_0_1:5042"}


CHROMIUM = Path("/usr/bin/chromium")
# appended to a copy of the page: Chromium lays it out, this measures it and writes the numbers into the DOM
_MEASURE = """<script>
const rows = [...document.querySelectorAll('#changes tbody tr')].map(r => r.getBoundingClientRect().height);
const verdicts = [...document.querySelectorAll('#changes td.verdict')].map(td => td.getBoundingClientRect());
const wrap = document.querySelector('.tablewrap');
document.body.setAttribute('data-layout', JSON.stringify({
  width: window.innerWidth, rows: rows, verdict_right: Math.max(...verdicts.map(r => r.right)),
  verdict_left: Math.min(...verdicts.map(r => r.left)), page_scroll: document.documentElement.scrollWidth,
  table_fits: wrap.scrollWidth <= wrap.clientWidth}));
</script>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (CI installs it)")
def test_compare_page_rows_are_one_line_and_the_verdict_is_in_view(tmp_path: Path) -> None:
    """Laid out by headless Chromium at 1400 and 1000 px: every row is one line (the method is a
    numbered note under the table), the verdict column is in view, the page never scrolls
    sideways (a narrow window scrolls the table in its box, as the run report's tables do)."""
    import json
    import os
    import shutil
    import tempfile

    serial = "127.0.0.1:5042"
    a = _write_run(tmp_path / "a", "night1", BASE, seed=1, serial=serial)
    b = _write_run(tmp_path / "b", "night2", {**BASE, "espcn_x2.fp32.cpu": 24.0}, seed=2, serial=serial,
                   start_temp_c=36.0)
    out = tmp_path / "cmp"
    r = _compare(a, b, "--threshold", "latency.median:5%", "--out", out)
    assert r.returncode == 1, r.stdout + r.stderr
    page = (out / "index.html").read_text()
    assert '<ol class="methods" id="methods">' in page and 'href="#method-1"' in page
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", _MEASURE + "</body>"))
    for width in (1400, 1000):
        profile = tempfile.mkdtemp(prefix="perflab-chromium-")
        try:
            res = subprocess.run(
                [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", f"--window-size={width},900", "--dump-dom", probe.as_uri()],
                capture_output=True, text=True, timeout=120, env={**os.environ, "LANG": "C.UTF-8"}, check=False)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        assert res.returncode == 0, res.stderr[-2000:]
        m = re.search(r'data-layout="([^"]*)"', res.stdout)
        assert m is not None, res.stdout[-2000:]
        lay = json.loads(m.group(1).replace("&quot;", '"'))
        assert lay["width"] == width, lay
        assert len(lay["rows"]) == 2 * 5 and max(lay["rows"]) < 1.5 * min(lay["rows"]), lay  # one line each
        assert lay["verdict_left"] >= 0 and lay["verdict_right"] <= width, lay  # the verdict in view
        assert lay["page_scroll"] <= width, lay  # the page itself never scrolls sideways
        if width == 1400:
            assert lay["table_fits"], lay  # every column in view, the method notes' links too


def test_imported_capture_compares_with_a_local_run_through_welch(tmp_path: Path) -> None:
    """A capture imported by `perflab import` from a phone perflab never measured (mean, std, n only)
    against a perflab run of the same model on `local` (raw samples): paired by cell_id, compared by
    Welch's t-test on the means, labelled IMPORTED; its input size stands in for the scenario (a
    capture of unknown size refuses, one line, exit 2)."""
    rng = np.random.default_rng(7)
    xs = _lognormal(rng, 20.0, 60)
    cell = records.cell("espcn_x2.fp32.cpu", latency_ms=records.latency_of(xs, fps_target=30.0))
    base = records.cell("bicubic_x2.fp32.cpu", latency_ms=records.latency_of(_lognormal(rng, 5.0, 60)))
    local = records.write_run_folder(tmp_path / "local", records.run([base, cell], run_id="local1", scenario=SCEN),
                                     {cell.artifact_key: xs.tolist()})
    log = Path(__file__).parent / "fixtures" / "benchmark_model" / "tf24_cpu_espcn_profile.txt"  # mean 33.4 ms
    imp, tiny = tmp_path / "imp", tmp_path / "tiny"
    for folder, extra in ((imp, ["--lr", f"{SCEN.lr_width}x{SCEN.lr_height}"]), (tiny, [])):
        r = subprocess.run([sys.executable, "-m", "perflab", "import", str(log), "--device", "px8-farm",
                            "--variant", "fp32", "--out", str(folder), *extra],
                           capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stderr
    out = tmp_path / "cmp"
    r = _compare(local, imp, "--threshold", "latency.median:5%", "--out", out)
    assert r.returncode == 1, r.stdout + r.stderr
    reg = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("REGRESSION")]
    assert len(reg) == 1 and reg[0].startswith("REGRESSION local→px8-farm/espcn_x2.fp32.cpu: latency.mean")
    assert "→ 33.41" in reg[0] and "(Welch t)" in reg[0] and reg[0].endswith("[IMPORTED]")
    assert "is IMPORTED from tf24_cpu_espcn_profile.txt" in r.stdout
    assert "device model differs: m vs px8-farm" in r.stdout and "only in A: local/bicubic_x2.fp32.cpu" in r.stdout
    assert 'badge imp">IMPORTED' in (out / "index.html").read_text()
    r = _compare(local, tiny)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "input size differs: 8×8 vs 1×1" in r.stderr and "--force" in r.stderr
