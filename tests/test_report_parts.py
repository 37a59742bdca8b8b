"""Pure parts of the run report: Pareto front, samples.csv parsing, crop region, view model, plots."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from perflab.analysis.timeline import cpu_busy_per_tick, parse_sampler_output, rapl_package_mw_per_tick
from perflab.core.display import fmt_mai, fmt_ms, fmt_ratio, fmt_signed, fmt_size
from perflab.errors import StoreError
from perflab.report import crops, plots, timelines
from perflab.report.pareto import dominates, pareto_front
from perflab.report.view import WarningView, group_warnings
from perflab.report.view_common import Footnotes
from perflab.report.view_compat import build_compat, is_trap, read_delegate_record
from perflab.report.view_frames import build_frame_tables
from perflab.report.view_layers import build_layers, build_layers_missing
from perflab.rules.memory import mem_kind
from perflab.store.layer_records import LayerRow, LayersRecord
from perflab.store.results import (
    CellRecord,
    CellStatus,
    CompatRecord,
    CurrentConventionRecord,
    DelegateRecord,
    DeltaRecord,
    DeviceRecord,
    FrameQuality,
    GpuIssueRecord,
    ModelRecord,
    QualityRecord,
    RunRecord,
    ScenarioRecord,
)
from perflab.store.runfolder import parse_results_json, parse_samples_csv, samples_by_cell

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
    s = samples_by_cell(parse_samples_csv(text))
    assert s == {"a": {"paced": [2.0, 2.5], "warmup": [9.0]}, "b": {"back_to_back": [1.25]}}
    assert parse_samples_csv("") == []


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


def test_fmt_ratio_and_mai() -> None:
    assert fmt_ratio(0.2134) == "0.21" and fmt_ratio(1.44) == "1.4" and fmt_ratio(139.6) == "140"
    # the MAI score spans ~18 decades: log10 with two decimals (2.12e18 → 18.33; twice the score → +0.30)
    assert fmt_mai(2.12e18) == "18.33" and fmt_mai(4.24e18) == "18.63" and fmt_mai(1.0) == "0.00"


def test_memory_kind_by_recorded_source() -> None:
    assert mem_kind("/proc/<worker>/status VmHWM (peak RSS of the worker process, incl. Python + LiteRT)") == "peak"
    assert mem_kind("benchmark_model overall peak footprint (periodic monitoring, MB)") == "peak"
    assert mem_kind("benchmark_model overall delta of max RSS since tool start (MB)") == "delta"
    assert mem_kind(None) == "peak"


def test_warnings_grouped_by_kind_identical_texts_once() -> None:
    def w(cell: str, code: str, msg: str) -> WarningView:
        return WarningView(cell, "a-" + cell, "Pixel 7", cell, "cpu", code, msg, True)

    views = [w(f"c{i}", "emulated", "emulated phone") for i in range(12)]
    views += [w(f"c{i}", "high_cv", f"unstable: CV {10 + i}%") for i in range(3)] + [w("c0", "drift", "slower")]
    groups = group_warnings(views)
    assert [(g.code, g.count, g.n_cells, len(g.items)) for g in groups] == [
        ("emulated", 12, 12, 1), ("high_cv", 3, 3, 3), ("drift", 1, 1, 1)]
    assert [c.cell_id for c in groups[0].items[0].cells] == [f"c{i}" for i in range(12)]
    assert groups[2].title == "Latency drifted during the series"


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


def test_log_axis_ticks_are_plain_numbers() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1.5, 40.0, 900.0], [1, 2, 3])
    ax.set_xscale("log")
    plots.plain_log_axis(ax.xaxis)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert {"2", "5", "10", "20", "50", "100", "200", "500"} <= set(labels)
    assert not any("10^" in x or "times" in x or "×" in x or "$" in x for x in labels), labels


def test_point_labels_do_not_overlap_in_a_cluster() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    anchors = [(2.0, 29.3), (11.0, 33.0), (11.2, 33.05), (11.4, 32.95), (11.1, 33.1), (11.3, 33.0), (3.4, 29.2)]
    ax.scatter([a[0] for a in anchors], [a[1] for a in anchors])
    texts = plots.place_labels(ax, anchors, [str(i + 1) for i in range(len(anchors))])
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in texts]
    plt.close(fig)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)


def test_frame_quality_png() -> None:
    rng = np.random.default_rng(4)
    series = [plots.FrameSeries("bicubic", [], rng.normal(45, 5, 30).tolist(), baseline=True),
              plots.FrameSeries("espcn fp32", rng.normal(0.4, 0.3, 30).tolist(), rng.normal(30, 4, 30).tolist()),
              plots.FrameSeries("espcn int8", [0.1, -0.2], [], emulated=True)]
    w, h = _png_ok(plots.frame_quality_png(series, "host · cpu"))
    assert w > 800 and h > 150
    assert plots.frame_quality_png(series, "t") == plots.frame_quality_png(series, "t")  # deterministic jitter
    _png_ok(plots.frame_quality_png([series[1]], "one cell"))
    with pytest.raises(ValueError):
        plots.frame_quality_png([plots.FrameSeries("x", [], [])], "empty")


# ------------------------------------------------------------------ delegate compatibility


@pytest.mark.parametrize(
    ("rec", "verdict", "cls"),
    [
        (DelegateRecord(kind="replaced", line="INFO: Replacing 7 out of 7 node(s) …", delegate="TfLiteGpuDelegateV2",
                        replaced=7, total=7, partitions=1), "all 7 nodes on TfLiteGpuDelegateV2 in 1 partition(s)",
         "good"),
        (DelegateRecord(kind="replaced", line="Replacing 5 out of 7 …", delegate="TfLiteGpuDelegateV2", replaced=5,
                        total=7, partitions=2),
         "5 of 7 nodes on TfLiteGpuDelegateV2 in 2 partition(s); 2 node(s) fell back to CPU", "bad"),
        (DelegateRecord(kind="applied", line="Explicitly applied GPU delegate …", delegate="GPU", coverage="full"),
         "whole graph on GPU", "good"),
        (DelegateRecord(kind="applied", line="… partially executed …", delegate="NNAPI", coverage="partial",
                        delegate_kernels=2), "graph only partly on NNAPI: the rest runs on CPU", "bad"),
        (DelegateRecord(kind="not_applied", line="Though Hexagon …", delegate="Hexagon", coverage="none"),
         "Hexagon delegate not used: the whole graph runs on CPU", "bad"),
        (DelegateRecord(kind="ops", line="ops: CONV_2D DEPTH_TO_SPACE DELEGATE", ops=["CONV_2D", "DEPTH_TO_SPACE",
                                                                                     "DELEGATE"]),
         "host LiteRT: 1 delegate node(s) in the graph (this line does not say which ops each took)", "muted"),
        (DelegateRecord(kind="ops", line="ops: CONV_2D", ops=["CONV_2D"]),
         "host LiteRT: no delegate node, every op on the built-in CPU kernels", "muted"),
        # kept verbatim by the run (or any line of a perflab.results/1 file): shown, not interpreted
        (DelegateRecord(kind="line", line="Replacing 5 out of 7 node(s) with delegate (X) node"), None, ""),
    ],
)
def test_read_delegate_record(rec: DelegateRecord, verdict: str | None, cls: str) -> None:
    r = read_delegate_record(rec)
    assert (r.text, r.verdict, r.cls) == (rec.line, verdict, cls)


def test_is_trap() -> None:
    assert is_trap("DEPTH_TO_SPACE") and is_trap("depth_to_space")
    assert is_trap("CUSTOM", "pixel shuffle is not supported")
    assert not is_trap("CONV_2D", "not supported") and not is_trap("TRANSPOSE_CONV")


def _cell(cell_id: str, model: ModelRecord, delegate: str, status: CellStatus = CellStatus.OK,
          log: list[DelegateRecord] | None = None, reason: str | None = None) -> CellRecord:
    dev = DeviceRecord(serial="p1", kind="android", model="Pixel 8")
    return CellRecord(cell_id=cell_id, artifact_key=cell_id, device=dev, model=model, delegate=delegate, threads=4,
                      status=status, reason=reason, delegates=log or [])


def _run(cells: list[CellRecord]) -> RunRecord:
    scen = ScenarioRecord(name="s", file="s.yaml", sha256="0" * 64, text="", lr_width=8, lr_height=8, scale=2,
                          fps=None)
    return RunRecord(perflab_version="0", run_id="r", scenario=scen, started_utc="t", cells=cells)


def test_build_compat_dedupes_by_sha256_and_says_why_missing() -> None:
    compat = CompatRecord(source="tflite analyzer", ops=["CONV_2D", "CONV_2D", "DEPTH_TO_SPACE"], gpu_checked=True,
                          gpu_compatible=False, gpu_issues=[GpuIssueRecord(op_index=2, op_name="DEPTH_TO_SPACE",
                                                                           reason="not supported", source="tflite analyzer")])
    espcn = ModelRecord(name="espcn", family="ESPCN", variant="int8", scale=2, sha256="ab" * 32, compat=compat)
    unknown = ModelRecord(name="mine", family="user", variant="fp32", scale=2, missing={"compat": "analyzer timed out"})
    broken = ModelRecord(name="broken", family="user", variant="fp32", scale=2)
    unchecked = ModelRecord(name="u", family="user", variant="fp32", scale=2, sha256="cd" * 32,
                            compat=CompatRecord(source="tflite analyzer", ops=["ADD"]))
    views = build_compat(_run([
        _cell("cpu-espcn", espcn, "cpu"),
        _cell("gpu-espcn", espcn, "gpu", log=[DelegateRecord(kind="replaced", line="Replacing 2 out of 3 …",
                                                             delegate="TfLiteGpuDelegateV2", replaced=2, total=3)]),
        _cell("cpu-mine", unknown, "cpu"),
        _cell("cpu-broken", broken, "cpu", CellStatus.FAILED, reason="ModelError: cannot read the file"),
        _cell("cpu-u", unchecked, "cpu"),
    ]))
    assert [v.title for v in views] == ["espcn int8", "mine fp32", "broken fp32", "u fp32"]
    e = views[0]
    # op counts from the op list when the record has none; the rejected trap op marked
    assert [(o.name, o.count, o.trap, o.rejected) for o in e.ops] == [("CONV_2D", 2, False, False),
                                                                       ("DEPTH_TO_SPACE", 1, True, True)]
    assert e.trap_rejected and e.verdict_cls == "bad" and e.n_ops == 3
    assert [(r.delegate, [ln.cls for ln in r.lines]) for r in e.runs] == [("cpu", []), ("gpu", ["bad"])]
    assert views[1].missing_reason == "analyzer timed out" and views[1].verdict_cls == "muted"
    assert views[2].missing_reason is not None and "ModelError: cannot read the file" in views[2].missing_reason
    assert views[3].verdict == "GPU check not run by the analyzer" and views[3].missing_reason is None


def test_frame_tables_render_stored_deltas_and_bound_rows() -> None:
    """The per-frame view shows the differences the run stored; it never recomputes one from the baseline."""
    bic = ModelRecord(name="bicubic", family="bicubic", variant="fp32", scale=2)
    sr = ModelRecord(name="sr", family="x", variant="fp32", scale=2)
    base_rows = [FrameQuality(frame=f"f{i}", psnr_y_db=30.0, ssim_y=0.9, piqe=40.0) for i in range(5)]
    sr_rows = [FrameQuality(frame=f"f{i}", psnr_y_db=31.0, ssim_y=0.91, piqe=35.0, d_psnr_y_db=1.0, d_ssim_y=0.01)
               for i in range(5)]
    sr_rows[0] = sr_rows[0].model_copy(update={"d_psnr_y_db": -0.25})  # whatever the run stored is shown
    sr_rows[1] = sr_rows[1].model_copy(update={"piqe": float("nan")})
    sr_rows[4] = sr_rows[4].model_copy(update={"d_psnr_y_db": None, "d_ssim_y": None})  # not stored: no Δ
    cells = [_cell("b", bic, "cpu").model_copy(update={"baseline": True, "quality": QualityRecord(
                psnr_y_db=30.0, per_frame=base_rows, frames=5)}),
             _cell("s", sr, "cpu").model_copy(update={
                 "quality": QualityRecord(psnr_y_db=31.0, per_frame=sr_rows, frames=5),
                 "deltas": DeltaRecord(baseline_cell_id="b", psnr_y_db=1.0)})]
    notes = Footnotes()
    (t,) = build_frame_tables(_run(cells), notes, max_rows=3)
    assert (t.total_frames, t.shown_frames, len(t.rows)) == (5, 3, 3)
    assert len(t.rows[0][1]) == 8  # PSNR-Y, SSIM-Y, VMAF, PIQE per cell
    assert t.rows[0][1][4].sub == "−0.25 dB" and t.rows[1][1][4].sub == "+1.00 dB"
    assert t.rows[1][1][7].missing  # a non-finite PIQE is missing, not a number
    assert t.rows[0][1][7].sub is None  # PIQE has no stored per-frame difference: none is made up
    assert t.rows[0][1][6].missing  # no VMAF stored: missing, with a reason
    assert t.dist[1].d_psnr_y_db == [-0.25, 1.0, 1.0, 1.0] and t.dist[0].d_psnr_y_db == []
    stats = t.stats[1]
    assert stats.worse.text == "1 of 4" and stats.d_psnr_min.text == "−0.25 dB" and stats.d_psnr_min.sub == "f0"
    assert stats.psnr_rgb.missing  # not recorded: shown as missing with a reason


# ------------------------------------------------------------------ timelines

PHONE_LINES = """E rapl no powercap on this phone
T 100.0
cpu cpu 1000 0 0 3000 0 0 0 0
bat -200000 3900000 3000000 300 Discharging
gpu pct 10
tz cpu-therm 35000
T 100.5
cpu cpu 1200 0 0 3200 0 0 0 0
bat -400000 3900000 2999900 301 Discharging
gpu pct 80
tz cpu-therm 36000
rss 51200
T 101.0
cpu cpu 1500 0 0 3300 0 0 0 0
bat -400000 3800000 2999800 302 Discharging
gpu pct 82
tz cpu-therm 37000
rss 52224
T 101.5
cpu cpu 1550 0 0 3750 0 0 0 0
bat -210000 3900000 2999700 302 Discharging
gpu pct 5
""".splitlines()


UA_NEG = CurrentConventionRecord(ua_per_unit=1.0, discharge_sign=-1, uv_per_unit=1.0, unit_source="config",
                                 sign_source="config")


def test_timeline_streams_windows_and_scaled_current() -> None:
    """Raw current_now (µA, negative while discharging, as on most phones) is scaled by the convention the run
    stored for the file; power = current × voltage; the window is where the process ran."""
    tl = parse_sampler_output(PHONE_LINES)
    assert cpu_busy_per_tick(tl) == [(100.5, 50.0), (101.0, 75.0), (101.5, 10.0)]
    seg = timelines.Segment("espcn fp32 · gpu", "c1", tl, UA_NEG, temp_zone="cpu-therm")
    dt = timelines.build_device_timeline([seg])
    assert dt is not None and dt.t0_s == 100.0
    by = {s.unit: s for s in dt.streams}
    assert by["mA"].segments == [[(0.0, 200.0), (0.5, 400.0), (1.0, 400.0), (1.5, 210.0)]]
    t_mw, mw = by["mW"].segments[0][1]
    assert t_mw == 0.5 and mw == pytest.approx(400.0 * 3.9)
    soc = next(s for s in dt.streams if s.unit == "°C")
    assert soc.name == "SoC temperature (cpu-therm)" and soc.segments[0][-1] == (1.0, 37.0)
    assert by["MB"].segments == [[(0.5, 50.0), (1.0, 51.0)]]
    assert [(w.start_s, w.end_s, w.number, w.whole_span) for w in dt.windows] == [(0.5, 1.0, 1, False)]
    assert any("current_now in µA (from config), -1 while discharging" in n for n in dt.notes)
    # mA nodes with positive discharge and mV: the stored numbers say so, and they are what is applied
    ma_lines = [ln.replace("-400000", "400").replace("-200000", "200").replace("-210000", "210")
                .replace(" 3900000 ", " 3900 ").replace(" 3800000 ", " 3800 ") for ln in PHONE_LINES]
    ma_pos = UA_NEG.model_copy(update={"ua_per_unit": 1000.0, "discharge_sign": 1, "uv_per_unit": 1000.0})
    dt2 = timelines.build_device_timeline([timelines.Segment("x", "c1", parse_sampler_output(ma_lines), ma_pos)])
    assert dt2 is not None and next(s for s in dt2.streams if s.unit == "mA").segments[0][1] == (0.5, 400.0)
    assert next(s for s in dt2.streams if s.unit == "mW").segments[0][1][1] == pytest.approx(400.0 * 3.9)


def test_timeline_plots_one_sensor_per_line() -> None:
    """Idle and cell files list their zones in different orders, and the cell's gate zone is the skin: the SoC
    line is the CPU zone in both, the skin line quiet_therm in both; a line never switches sensor (the phone
    no longer seems to cool under load), and a file without the zone leaves a gap, not another sensor."""
    idle = parse_sampler_output(["T 1.0", "tz cpu-big=40000 quiet_therm=30000", "T 1.5",
                                 "tz cpu-big=40500 quiet_therm=30000"])
    cell = parse_sampler_output(["T 2.0", "tz quiet_therm=30100 cpu-big=45000", "rss 100", "T 2.5",
                                 "tz quiet_therm=30200 cpu-big=46000", "rss 100"])
    bare = parse_sampler_output(["T 3.0", "tz quiet_therm=30300", "T 3.5", "tz quiet_therm=30300"])
    dt = timelines.build_device_timeline([timelines.Segment("idle", None, idle),
                                          timelines.Segment("x", "c1", cell, UA_NEG, temp_zone="quiet_therm"),
                                          timelines.Segment("y", "c2", bare, UA_NEG, temp_zone="quiet_therm")])
    assert dt is not None
    soc, skin = (s for s in dt.streams if s.unit == "°C")
    assert soc.name == "SoC temperature (cpu-big)" and skin.name == "skin temperature (quiet_therm)"
    assert [v for seg in soc.segments for _, v in seg] == [40.0, 40.5, 45.0, 46.0]
    assert [v for seg in skin.segments for _, v in seg] == [30.0, 30.0, 30.1, 30.2, 30.3, 30.3]
    only_skin = timelines.build_device_timeline([timelines.Segment("y", "c2", bare)])
    assert only_skin is not None and next(s for s in only_skin.streams if s.unit == "°C").missing == \
        "no CPU/SoC thermal zone among quiet_therm"


def test_timeline_missing_streams_say_why() -> None:
    """No battery, or no stored convention: each stream is missing with its reason, never an empty axis."""
    local = ["E bat this machine has no battery", "E gpu no GPU load source", "T 5.0", "cpu cpu 10 0 0 10 0 0 0 0",
             "T 5.1", "cpu cpu 15 0 0 15 0 0 0 0"]
    dt = timelines.build_device_timeline([timelines.Segment("idle", None, parse_sampler_output(local))])
    assert dt is not None
    missing = {s.unit: s.missing for s in dt.streams if s.empty}
    assert missing["mA"] == "this machine has no battery" and missing["mW"] == "this machine has no battery"
    assert missing["%"] == "no GPU load source"  # the GPU stream; CPU has data
    assert missing["MB"] == "the measured process was not seen by the sampler"
    assert dt.windows[0].number is None  # at rest: shaded, not numbered
    # raw current sampled but no stored convention (an older results.json): said so, not guessed
    dt3 = timelines.build_device_timeline([timelines.Segment("c", "c", parse_sampler_output(PHONE_LINES))])
    assert dt3 is not None
    cur = next(s for s in dt3.streams if s.unit == "mA")
    assert cur.empty and cur.missing is not None and "cannot be plotted in mA" in cur.missing
    assert timelines.build_device_timeline([]) is None


def test_timeline_png_labels_do_not_pile_up() -> None:
    """Many short windows: their tags are staggered over rows so that no two on a row are closer than the gap."""
    xs = [float(i) for i in range(12)]
    rows = plots._stagger_rows(xs, min_gap=2.5)
    for r in set(rows):
        on_row = [x for x, rr in zip(xs, rows, strict=True) if rr == r]
        assert all(b - a >= 2.5 for a, b in itertools.pairwise(on_row))
    panels = [plots.TimelinePanel("battery current", "mA", [[(0.0, 200.0), (1.0, 400.0)], [(2.0, 300.0)]]),
              plots.TimelinePanel("device CPU busy", "%", [[(0.0, 10.0), (1.0, 90.0)]])]
    wins = [plots.TimelineWindow(0.0, 0.8, "idle", idle=True), plots.TimelineWindow(1.0, 2.0, "1")]
    w, h = _png_ok(plots.timeline_png(panels, wins, "Timeline — phone", emulated=True))
    assert w > 600 and h > 200
    with pytest.raises(ValueError):
        plots.timeline_png([], wins, "empty")


def test_rapl_package_power_where_there_is_no_battery() -> None:
    """A host with RAPL and no battery: package power drawn from the energy counters (sub-zones not added twice,
    a wrapped counter left out); current stays missing with the battery's reason."""
    lines = ["E bat this machine has no battery", "T 10.0", "rapl intel-rapl:0 1000000", "rapl intel-rapl:0:0 500000",
             "T 10.5", "rapl intel-rapl:0 6000000", "rapl intel-rapl:0:0 3000000",
             "T 11.0", "rapl intel-rapl:0 100", "T 11.5", "rapl intel-rapl:0 2500100"]
    tl = parse_sampler_output(lines)
    assert rapl_package_mw_per_tick(tl) == [(10.5, 10_000.0), (11.5, 5_000.0)]
    dt = timelines.build_device_timeline([timelines.Segment("c", "c", tl)])
    assert dt is not None
    by = {s.unit: s for s in dt.streams}
    assert by["mW"].name == "host package power (RAPL)" and by["mW"].segments == [[(0.5, 10_000.0), (1.5, 5_000.0)]]
    assert by["mA"].missing == "this machine has no battery"


# A cell's ``layers`` record as ``perflab run --device local`` stored it (espcn ×2 int8 on the CPU, op profiling,
# differential with at most 4 rows; numbers copied from that run, the estimate and partition cut short) plus a trace
# record, which a local run without root does not produce.
_LAYERS_FIXTURE = {
    "source": "none", "rows": [],
    "missing": "LiteRT's Python interpreter exposes no per-op profiler (benchmark_model is not available here)",
    "passes": [
        {"method": "op_profile", "source": "none", "rows": [],
         "missing": "LiteRT's Python interpreter exposes no per-op profiler (benchmark_model is not available here)"},
        {"method": "estimate", "source": "estimate: the cell's paced median (4.976 ms) shared by MACs",
         "total_ms": 4.9756625,
         "rows": [{"index": 0, "node_type": "CONV_2D", "name": "CONV_2D@0", "avg_ms": 0.8908974932855864,
                   "method": "estimate"},
                  {"index": 2, "node_type": "CONV_2D", "name": "CONV_2D@2", "avg_ms": 3.421046374216652,
                   "method": "estimate"},
                  {"index": 3, "node_type": "TANH", "name": "TANH@3", "avg_ms": 0.0059393166219039095,
                   "method": "estimate"}],
         "notes": [("an estimate: memory traffic, activations fused into convs and delegate scheduling are not "
                    "modelled")]},
        {"method": "differential", "source": "differential: 4 prefix + 0 duplicate variants of espcn_x2 int8",
         "rows": [{"index": 0, "node_type": "conv", "name": "c1", "avg_ms": 1.0989637999999982,
                   "se_ms": 0.16831130000000002, "method": "differential"},
                  {"index": 1, "node_type": "conv", "name": "c2", "avg_ms": 2.5924087999999994,
                   "se_ms": 0.19671352202807516, "method": "differential"}],
         "sum_check": {"layers_sum_ms": 5.327408399999998, "layers_sum_se_ms": 1.2119640000000003,
                       "whole_model_ms": 4.587996700000001,
                       "whole_model_source": "the shipped espcn_x2_int8.tflite, timed in the same rounds",
                       "diff_pct": 16.116221269295966, "tolerance_pct": 10.0, "ok": False},
         "rank_checks": [{"against": "macs", "spearman": 1.0, "n": 3, "same_top": True, "note": "conv rows only"}]},
    ],
    "trace": {"trace_file": "traces/espcn.trace", "n": 40, "median_ms": 4.61, "p90_ms": 5.02, "mean_ms": 4.70,
              "tool_mean_ms": 4.65, "diff_pct": 1.075, "ok": True,
              "irqs": [{"name": "arch_timer", "count": 12, "total_us": 120.0, "max_us": 15.0}],
              "timeline": {"index": 17, "duration_us": 4610.0, "spans": [
                  {"name": "CONV_2D", "kind": "op", "begin_us": 0.0, "end_us": 900.0, "track": "tflite"},
                  {"name": "CONV_2D", "kind": "op", "begin_us": 900.0, "end_us": 4300.0, "track": "tflite"},
                  {"name": "arch_timer", "kind": "irq", "begin_us": 1200.0, "end_us": 1210.0, "track": "CPU 0"}]}},
    "partition": {"delegate": "cpu", "on_delegate": 0, "on_cpu": 7, "unknown": 0, "sources": ["analyzer"],
                  "rows": [{"index": 0, "op": "CONV_2D", "placement": "cpu",
                            "reason": "no delegate asked for: TFLite's builtin CPU kernels", "source": "analyzer"}]},
}


def test_layers_methods_side_by_side_with_the_stored_numbers() -> None:
    espcn = ModelRecord(name="espcn", family="ESPCN", variant="int8", scale=2)
    cell = _cell("espcn_x2.int8.cpu", espcn, "cpu").model_copy(
        update={"layers": LayersRecord.model_validate(_LAYERS_FIXTURE)})
    notes = Footnotes()
    run = _run([cell])
    (view,) = build_layers(run, notes)
    assert build_layers_missing(run) == []  # a cell with passes is not listed as having no per-layer table
    c = view.compare
    assert c is not None and not view.rows  # no /1 table: the record has only passes
    assert [m.text for m in c.methods] == ["op_profile", "estimate", "differential"]
    op = c.methods[0]
    assert op.missing and op.title is not None and "no per-op profiler" in op.title
    assert (op.note, f"op_profile: {op.title}") in notes.items
    cells = {r.name: [x.text for x in r.cells] for r in c.rows}
    assert cells["CONV_2D@2"] == ["", "3.421", ""]
    assert cells["TANH@3"] == ["", "0.0059", ""]  # a tiny time keeps its digits instead of reading 0.000
    assert "estimate: an estimate: memory traffic, activations fused into convs and delegate scheduling are not " \
        "modelled" in c.checks
    assert cells["c1"] == ["", "", "1.099 ± 0.168"] and cells["c2"] == ["", "", "2.592 ± 0.197"]
    assert any("5.327 ms vs whole model 4.588 ms" in t and "+16.1%" in t and "outside ±10%" in t for t in c.checks)
    assert any(t.startswith("differential vs macs: Spearman 1.00 over 3 layers, same top layer") for t in c.checks)
    assert c.trace[0].startswith("trace of 40 inferences: median 4.610 ms, p90 5.020 ms")
    assert "the tool's mean 4.650 ms: +1.1% (agrees within ±2%)" in c.trace[0]
    assert "costliest irqs: arch_timer ×12 (120 µs, max 15 µs)" in c.trace
    assert c.partition == [("CONV_2D", "cpu", "no delegate asked for: TFLite's builtin CPU kernels", "analyzer")]
    assert c.partition_summary.startswith("cpu: 0 ops on the delegate, 7 on the CPU, 0 unknown")


def test_layers_old_record_without_passes_renders_as_before() -> None:
    m = ModelRecord(name="sr", family="x", variant="fp32", scale=2)
    old = LayersRecord(source="benchmark_model op profile", total_ms=2.0,
                       rows=[LayerRow(index=0, node_type="CONV_2D", name="c", avg_ms=1.5)])
    cell = _cell("sr.cpu", m, "cpu").model_copy(update={"layers": old})
    (view,) = build_layers(_run([cell]), Footnotes())
    assert view.compare is None and [(r.name, r.avg, r.pct_text) for r in view.rows] == [("c", "1.500", "75.0%")]


def test_inference_timeline_png() -> None:
    spans = [plots.SpanBar("CONV_2D", "op", 0.0, 900.0, "tflite"), plots.SpanBar("t", "irq", 10.0, 12.0, "CPU 0")]
    w, h = _png_ok(plots.inference_timeline_png(spans, "espcn · cpu: inference 17"))
    assert w > h > 0
    with pytest.raises(ValueError):
        plots.inference_timeline_png([], "nothing")


def test_answer_table_has_delta_vmaf_beside_bicubic_and_says_why_it_is_missing() -> None:
    """The answer shows the stored Δ VMAF vs bicubic (the cell's own VMAF under it, the model named), bicubic's
    own VMAF on its row, and a missing VMAF with its reason — never a made-up number."""
    from perflab.report.view_answer import build_answer
    from perflab.report.view_rows import RowBuilder
    from perflab.rules.derive import finalize_cells

    def q(vmaf: float | None, why: str | None = None) -> QualityRecord:
        return QualityRecord(psnr_y_db=30.0, vmaf=vmaf, vmaf_harmonic_mean=vmaf, vmaf_p5=vmaf, vmaf_frames=3,
                             vmaf_model="vmaf_v0.6.1 (libvmaf 86da14d)" if vmaf is not None else None,
                             missing={"vmaf": why} if why else {})

    bic = ModelRecord(name="bicubic", family="bicubic", variant="fp32", scale=2)
    sr = ModelRecord(name="sr", family="x", variant="fp32", scale=2)
    cells = finalize_cells([
        _cell("b", bic, "cpu").model_copy(update={"baseline": True, "quality": q(80.0)}),
        _cell("s", sr, "cpu").model_copy(update={"quality": q(83.5)}),
        _cell("t", sr, "gpu").model_copy(update={"quality": q(None, "ffmpeg was built without the libvmaf filter")}),
        _cell("u", bic, "gpu").model_copy(update={"baseline": True, "quality": q(79.0)}),
    ], None)
    notes = Footnotes()
    (dev,) = build_answer(_run(cells), RowBuilder(_run(cells), notes))
    rows = {r.cell_id: r for r in dev.rows}
    assert rows["b"].d_vmaf.text == "80.0" and "bicubic's own VMAF" in (rows["b"].d_vmaf.title or "")
    assert rows["s"].d_vmaf.text == "+3.50" and rows["s"].d_vmaf.sub == "VMAF 83.5" and rows["s"].d_vmaf.cls == "good"
    assert "vmaf_v0.6.1 (libvmaf 86da14d)" in (rows["s"].d_vmaf.title or "")
    assert rows["t"].d_vmaf.missing and rows["t"].d_vmaf.title == "ffmpeg was built without the libvmaf filter"
    # per frame and over all frames: the stored VMAF with its Δ; the pools under the mean
    per = [FrameQuality(frame="f0", psnr_y_db=31.0, vmaf=84.0, d_vmaf=3.5)]
    cells2 = [c.model_copy(update={"quality": c.quality.model_copy(update={"per_frame": per})}) for c in cells]
    (ft, _) = build_frame_tables(_run(cells2), Footnotes())
    assert ft.rows[0][1][4 + 2].text == "84.00" and ft.rows[0][1][4 + 2].sub == "+3.50"
    s_stats = {r.cell_id: r for r in ft.stats}["s"].vmaf
    assert s_stats.text == "83.50" and s_stats.sub == "harmonic mean 83.50 · p5 83.50"
    assert "Δ vs bicubic +3.5000" in (s_stats.title or "")


def test_an_unresolved_differential_row_is_greyed_with_its_reason_and_the_others_stay_numbers() -> None:
    """A differential pass with one row not resolved (its interval too wide): that row is shown as
    "≈ …", greyed, its reason in the title; the resolved rows are plain numbers; the pass itself is
    not called unreliable."""
    from perflab.report.view_layers import build_layer_compare
    from perflab.store.layer_records import LayerPassRecord

    why = ("not resolved: tail 0.58 ms, 95% 0.00–2.95 ms (±253.5%) (a cost is a number when its 95% interval is "
           "within ±10% of it or ±2% of the whole model, 42.24 ms)")
    rows = [LayerRow(index=0, node_type="conv", name="c1", avg_ms=9.8, ci_lo_ms=9.6, ci_hi_ms=10.1),
            LayerRow(index=1, node_type="other", name="tail", avg_ms=0.58, ci_lo_ms=0.0, ci_hi_ms=2.95, unresolved=why)]
    lay = LayersRecord(source="none", passes=[LayerPassRecord(method="differential", source="differential", rows=rows)])
    view = build_layer_compare(lay, Footnotes())
    cells = {r.name: r.cells[0] for r in view.rows}
    assert "unreliable" not in cells["c1"].cls and not cells["c1"].text.startswith("≈")
    assert cells["tail"].text.startswith("≈ ") and "unreliable" in cells["tail"].cls
    assert cells["tail"].title is not None and cells["tail"].title.startswith(why)
    assert "unreliable" not in view.methods[0].cls
