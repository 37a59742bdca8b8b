"""Pure parts of the run report: Pareto front, samples.csv parsing, crop region, view model, plots."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from perflab.errors import StoreError
from perflab.report import crops, plots
from perflab.report.pareto import dominates, pareto_front
from perflab.report.runfolder import parse_results_json, parse_samples_csv
from perflab.report.view import Footnotes, fmt_ms, fmt_signed, fmt_size

# ------------------------------------------------------------------ Pareto


def test_pareto_front_basic() -> None:
    # (latency ms, PSNR dB): bicubic fast/poor, two good trade-offs, one dominated, one slow/best
    pts = [(2.0, 29.3), (11.0, 33.0), (18.5, 34.5), (20.0, 33.1), (40.0, 34.6)]
    assert pareto_front(pts) == [0, 1, 2, 4]
    assert dominates((11.0, 33.0), (20.0, 33.1)) is False
    assert dominates((18.5, 34.5), (20.0, 33.1)) is True


def test_pareto_front_ties_and_edges() -> None:
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0)]) == [0]
    # equal points: neither dominates, both stay
    assert pareto_front([(5.0, 30.0), (5.0, 30.0)]) == [0, 1]
    # same cost, lower quality is dominated; same quality, higher cost is dominated
    assert pareto_front([(5.0, 30.0), (5.0, 29.0), (6.0, 30.0)]) == [0]
    # returned in cost order regardless of input order
    assert pareto_front([(3.0, 3.0), (1.0, 1.0), (2.0, 2.0)]) == [1, 2, 0]


def test_pareto_front_matches_brute_force_on_random_points() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        pts = [(float(x), float(y)) for x, y in rng.integers(0, 8, size=(12, 2))]
        front = set(pareto_front(pts))
        for i, p in enumerate(pts):
            dominated = any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in pts)
            assert (i in front) == (not dominated)


def test_pareto_front_rejects_non_finite() -> None:
    with pytest.raises(ValueError, match="not finite"):
        pareto_front([(1.0, float("nan"))])


# ------------------------------------------------------------------ samples.csv / results.json


def test_parse_samples_orders_by_iteration() -> None:
    text = ("cell_id,series,iteration,latency_ms\n"
            "a,paced,1,2.5\na,paced,0,2.0\na,warmup,0,9.0\nb,back_to_back,0,1.25\n\n")
    s = parse_samples_csv(text)
    assert s == {"a": {"paced": [2.0, 2.5], "warmup": [9.0]}, "b": {"back_to_back": [1.25]}}
    assert parse_samples_csv("") == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("cell,series,iteration,latency\n", r":1: header"),
        ("cell_id,series,iteration,latency_ms\na,paced,0\n", r":2: expected 4 columns"),
        ("cell_id,series,iteration,latency_ms\na,paced,0,1\na,steady,1,1\n", r":3: series 'steady'"),
        ("cell_id,series,iteration,latency_ms\na,paced,x,1\n", r":2: iteration/latency_ms not numeric"),
        ("cell_id,series,iteration,latency_ms\na,paced,0,nan\n", r":2: latency_ms must be a finite"),
        ("cell_id,series,iteration,latency_ms\na,paced,0,-1\n", r":2: latency_ms must be a finite"),
    ],
)
def test_parse_samples_errors_name_the_line(text: str, match: str) -> None:
    with pytest.raises(StoreError, match=match):
        parse_samples_csv(text, "samples.csv")


def test_parse_results_errors() -> None:
    with pytest.raises(StoreError, match="not valid JSON"):
        parse_results_json("{")
    with pytest.raises(StoreError, match="schema is None"):
        parse_results_json("{}")
    with pytest.raises(StoreError, match="perflab_version"):
        parse_results_json('{"schema": "perflab.results/1", "run_id": "x"}')


# ------------------------------------------------------------------ formatting and footnotes


def test_formatting() -> None:
    assert fmt_ms(2.061) == "2.06" and fmt_ms(18.54) == "18.5" and fmt_ms(1234.5) == "1234"
    assert fmt_size(1872) == "1.8 KB" and fmt_size(98_304) == "96.0 KB" and fmt_size(2_000_000) == "1.91 MB"
    assert fmt_signed(-0.5, 2, " dB") == "−0.50 dB" and fmt_signed(0.0, 2) == "±0.00" and fmt_signed(1, 1) == "+1.0"


def test_footnotes_number_each_reason_once() -> None:
    n = Footnotes()
    a = n.missing("no meter")
    b = n.missing("benchmark_model summary only")
    c = n.missing("no meter")
    assert (a.text, a.note, b.note, c.note) == ("—", 1, 2, 1)
    assert a.title == "no meter" and n.items == [(1, "no meter"), (2, "benchmark_model summary only")]


# ------------------------------------------------------------------ crops


def test_detail_region_finds_the_textured_patch() -> None:
    img = np.full((120, 200, 3), 128, dtype=np.uint8)
    rng = np.random.default_rng(1)
    img[60:100, 130:170] = rng.integers(0, 255, size=(40, 40, 3), dtype=np.uint8)
    r = crops.detail_region(img, 40, margin=2)
    assert (r.height, r.width) == (40, 40)
    assert abs(r.top - 60) <= 1 and abs(r.left - 130) <= 1
    # larger than the frame → clipped to it
    small = crops.detail_region(img[:30, :30], 96)
    assert (small.top, small.left, small.height, small.width) == (0, 0, 30, 30)


def test_crop_zoom_and_encode() -> None:
    img = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    reg = crops.Region(2, 4, 2, 2)
    z = crops.zoom_nearest(crops.crop(img, reg), 3)
    assert z.shape == (6, 6, 3) and (z[0:3, 0:3] == img[2, 4]).all()
    assert reg.scaled_down(2) == crops.Region(1, 2, 1, 1)
    with pytest.raises(ValueError):
        crops.crop(img, crops.Region(5, 7, 4, 4))
    uri = crops.png_data_uri(z)
    assert uri.startswith("data:image/png;base64,")


# ------------------------------------------------------------------ plots


def _png_ok(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(io.BytesIO(data)).convert("RGB")
    arr = np.asarray(im, dtype=np.float64)
    assert arr.std() > 5  # something is drawn
    return im.size


def test_plots_render_png() -> None:
    rng = np.random.default_rng(3)
    groups = [plots.LatencyGroup("bicubic fp32", rng.normal(2, 0.1, 50).tolist(), rng.normal(1.9, 0.1, 50).tolist()),
              plots.LatencyGroup("espcn int8", rng.normal(11, 2, 50).tolist(), [], emulated=True)]
    w, h = _png_ok(plots.latency_distribution_png(groups, 33.3, 30.0, "host"))
    assert w > 400 and h > 150
    _png_ok(plots.latency_trace_png([plots.TracePoint("espcn", [20.0, 15.0], rng.normal(11, 1, 40).tolist())],
                                    33.3, "host"))
    pts = [plots.TradeoffPoint("bicubic", 2.0, 29.3, "host", baseline=True, on_front=True),
           plots.TradeoffPoint("espcn int8", 11.0, 33.0, "host", on_front=True),
           plots.TradeoffPoint("espcn int8", 9.6, 28.5, "phone", emulated=True, on_front=True)]
    _png_ok(plots.tradeoff_png(pts, x_label="ms", y_label="dB", title="q", budget_ms=33.3))
    _png_ok(plots.tradeoff_png(pts, x_label="KB", y_label="dB", title="q", x_log=True))
    with pytest.raises(ValueError):
        plots.latency_distribution_png([], None, None, "x")
