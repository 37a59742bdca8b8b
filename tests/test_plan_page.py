"""The split planner's page (issue 23) from a plan.json: the second Pareto plot (latency vs PIQE,
lower is better), PIQE beside PSNR-Y/SSIM-Y, and the 10% check per executed plan with why not.
Rendered from a hand-built document (no TensorFlow) and checked as text and in headless Chromium."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from test_report import _chromium, needs_chromium

from perflab.analysis.plan_check import LatencyCheck, LatencyFigures, Seam, judge_latency, summary
from perflab.report.plan_page import piqe_front, piqe_png, plan_page_html

UNITS = ["c1", "c2", "c3", "tail"]
NOISE = {"fp32": 2.0, "int8": -3.0}


def _plan(label: str, roles: list[str], pred_ms: float, meas_ms: float, psnr: float, piqe: float | None,
          seams: tuple[Seam, ...] = (), variant: str | None = None) -> tuple[dict[str, Any], LatencyCheck]:
    check = judge_latency(LatencyFigures(pred_ms, 0.01, meas_ms, 0.01, 0.01, 3, NOISE, seams, variant))
    procs = ["fp32" if c == "F" else "int8" for c in label]
    return {
        "label": label, "roles": roles, "plan": [0 if c == "F" else 1 for c in label], "processors": procs,
        "segments": [], "on_front": "exact front" in roles, "on_hull": False,
        "predicted": {"latency_ms": pred_ms, "latency_se_ms": 0.01, "first_pass_latency_ms": pred_ms,
                      "psnr_y_db": psnr + 0.001, "loss_db": 0.0, "loss_se_db": 0.0},
        "measured": {"latency_ms": meas_ms, "latency_mad_ms": 0.01, "latency_se_ms": 0.01,
                     "latency_samples_ms": [meas_ms] * 3, "psnr_y_db": psnr, "ssim_y": 0.9, "loss_db": 0.0,
                     "piqe": piqe, "piqe_missing": None if piqe is not None else "PIQE needs at least 16×16 pixels",
                     "piqe_change": None},
        "error": {"latency_pct": 100 * (meas_ms - pred_ms) / pred_ms, "first_pass_latency_pct": None,
                  "psnr_y_db": -0.001, "why_missing": None},
        "latency_check": check.to_json(),
    }, check


def _doc() -> dict[str, Any]:
    made = [
        _plan("FFFF", ["all-fp32", "exact (chosen)"], 1.00, 1.05, 31.38, 22.6, variant="P0:4"),
        _plan("IIII", ["all-int8"], 2.00, 1.60, 31.19, 16.7, variant="P1:4"),
        _plan("FIFI", ["check"], 1.50, 2.10, 31.30, 19.0,
              seams=(Seam("c2", "fp32", "int8", 0.1, 0.1), Seam("c3", "int8", "fp32", 0.1, 0.1),
                     Seam("tail", "fp32", "int8", 0.1, 0.1))),
        _plan("IFFF", ["relaxed baseline"], 1.20, 1.25, 31.30, 25.0, variant="C10:1"),
    ]
    plans, checks = [p for p, _ in made], [c for _, c in made]
    model = {
        "model": "espcn_x2", "family": "espcn", "scale": 2, "units": UNITS, "processors": ["fp32", "int8"],
        "geometry": {"lr_width": 48, "lr_height": 32}, "settings": {}, "frames": ["coffee"],
        "inputs": {"cost_ms": [[0.4, 0.9]] * 4, "cost_se_ms": [[0.01, 0.01]] * 4,
                   "switch_ms": [[[0, 0.1], [0.1, 0]]] * 3, "switch_se_ms": [[[0, 0.01], [0.01, 0]]] * 3,
                   "loss_db": [[0, 0.05]] * 4, "loss_se_db": [[0, 0]] * 4,
                   "sensitivity": [{"unit": u, "psnr_y_loss_db": 0.05, "piqe_change": -1.0} for u in UNITS],
                   "method": {}},
        "noise_floor_pct": NOISE, "reference_psnr_y_db": 31.38, "reference_piqe": 22.6, "hr_piqe": 27.7,
        "quality_floor_db": 31.28, "loss_budget_db": 0.1,
        "front": [{"label": "FFFF", "plan": [0] * 4, "latency_ms": 1.0, "psnr_y_db": 31.38, "on_hull": True}],
        "chosen": "FFFF", "baseline": {"label": "IFFF", "alpha": [], "steps": 10, "meets_floor": True},
        "plans": plans, "latency_check": summary(checks),
    }
    return {"schema": "perflab.plan/1", "scenario": "tinyplan", "device": "local", "emulated": False,
            "started": "2026-12-07T04:00:00+00:00", "models": [model], "skipped": []}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("planpage") / "index.html"
    path.write_text(plan_page_html(_doc()), encoding="utf-8")
    return path


def test_the_piqe_front_keeps_the_plans_nothing_beats_on_latency_and_piqe() -> None:
    plans = _doc()["models"][0]["plans"]
    # FFFF 1.05 ms / 22.6; IIII 1.60 / 16.7; FIFI 2.10 / 19.0 (IIII is faster and better); IFFF 1.25 / 25.0 (FFFF)
    assert [p["label"] for p in piqe_front(plans)] == ["FFFF", "IIII"]
    assert piqe_png(_doc()["models"][0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_page_has_the_piqe_plot_and_each_plans_check(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert 'alt="Latency vs PIQE of espcn_x2"' in text and "PIQE (lower is better)" in text
    assert "All-fp32 22.6, the HR frames themselves 27.7" in text
    assert "2 of 4 executed plans measured within 10%" in text and "2 not (1 unexplained" in text


def test_without_piqe_the_page_says_why_and_draws_no_piqe_plot() -> None:
    doc = copy.deepcopy(_doc())
    for p in doc["models"][0]["plans"]:
        p["measured"]["piqe"], p["measured"]["piqe_missing"] = None, "PIQE needs at least 16×16 pixels, got 12×8"
    text = plan_page_html(doc)
    assert "Latency vs PIQE" not in text
    assert "No latency vs PIQE plot: PIQE not measured (PIQE needs at least 16×16 pixels, got 12×8)" in text


@needs_chromium
def test_chromium_shows_both_plots_and_why_a_plan_misses_10pct(page: Path) -> None:
    r = _chromium("--dump-dom", page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    alts = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', dom)
    assert alts == ["Pareto plot of espcn_x2", "Latency vs PIQE of espcn_x2"]
    table = dom[dom.index('<table class="plans">'):]
    table = table[:table.index("</table>")]
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr><td class="l">(\w+)</td>.*?</tr>', table)}
    assert set(rows) == {"FFFF", "IIII", "FIFI", "IFFF"}
    assert '<span class="ok">yes</span>' in rows["FFFF"] and '<span class="warn">no</span>' in rows["FIFI"]
    assert ">22.6</td>" in rows["FFFF"] and ">19.0</td>" in rows["FIFI"]  # PIQE beside PSNR-Y and SSIM-Y
    reasons = dict(re.findall(r'<li data-plan="(\w+)"><b>\w+</b> \([^)]*\): (.*?)</li>', dom))
    assert set(reasons) == {"IIII", "FIFI"}  # only the plans not within 10%
    assert "input variant P1:4 itself" in reasons["IIII"]
    assert reasons["FIFI"].startswith("unexplained: predicted 1.500 ± 0.010 ms, measured 2.100 ms")
    assert "its 3 seams, 0.300 ms in all, were each measured alone" in reasons["FIFI"]
