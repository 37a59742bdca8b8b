"""Per-layer records built from traces and delegate evidence (pure parts of perflab.lab.layers)."""

from __future__ import annotations

import statistics

from perflab.core.types import SeriesMode, TimingResult
from perflab.lab.layers import round_iterations, trace_records, trace_round_segment
from perflab.rules.layers import partition_table, rank_between
from perflab.store.layer_records import LayerPassRecord, LayerRow
from perflab.store.results import CompatRecord, DelegateRecord, GpuIssueRecord

PID = 4321
OPS = ("CONV_2D@0/0", "TfLiteGpuDelegateV2@1/0", "DEPTH_TO_SPACE@2/0")
OP_US = (1500, 6000, 500)


def _line(ts_us: int, text: str) -> str:
    return f"  benchmark_model-{PID}  [001] ...1. {ts_us // 1_000_000}.{ts_us % 1_000_000:06d}: tracing_mark_write: {text}"


def _invokes(lines: list[str], t: int, n: int, skip: int, gap_us: int = 2000, slow: float = 1.0) -> tuple[int, list[float]]:
    """``skip + n`` Invoke sections from ``t`` (each op ``slow`` times its usual time); the
    time after them and the durations of the last ``n``."""
    durations = []
    for i in range(skip + n):
        t += gap_us
        begin = t
        lines.append(_line(t, f"B|{PID}|Invoke"))
        for op, us in zip(OPS, OP_US, strict=True):
            lines.append(_line(t, f"B|{PID}|{op}"))
            t += round(us * slow) + (i % 3) * 10
            lines.append(_line(t, f"E|{PID}"))
        t += 20
        lines.append(_line(t, f"E|{PID}"))
        if i >= skip:
            durations.append((t - begin) / 1000.0)
    return t, durations


def _trace(n: int, skip: int, gap_us: int = 2000) -> tuple[str, list[float]]:
    lines = ["# trace_clock: local global counter [mono] boot", "# tracer: nop", "#"]
    t = 1_000_000
    lines.append(_line(t, "perflab:segment:timing:begin"))
    t, durations = _invokes(lines, t, n, skip, gap_us)
    lines.append(_line(t + 10, "perflab:segment:timing:end"))
    return "\n".join(lines) + "\n", durations


def _rounds_trace(ns: list[int], skip: int, slow: dict[int, float]) -> tuple[str, list[list[float]]]:
    """A phone trace pass's trace: one segment per tool run inside ``timing``; run k's ops
    ``slow[k]`` times their usual time (a run shifted by a busy neighbour)."""
    lines = ["# trace_clock: local global counter [mono] boot", "# tracer: nop", "#"]
    t = 1_000_000
    lines.append(_line(t, "perflab:segment:timing:begin"))
    per_run = []
    for k, n in enumerate(ns):
        t += 50_000  # the next tool's start
        lines.append(_line(t, f"perflab:segment:{trace_round_segment(k)}:begin"))
        t, durations = _invokes(lines, t, n, skip, slow=slow.get(k, 1.0))
        lines.append(_line(t + 10, f"perflab:segment:{trace_round_segment(k)}:end"))
        per_run.append(durations)
        t += 10
    lines.append(_line(t + 10, "perflab:segment:timing:end"))
    return "\n".join(lines) + "\n", per_run


def _timing(samples: list[float]) -> TimingResult:
    return TimingResult(mode=SeriesMode.BACK_TO_BACK, init_ms=1.0, first_ms=9.0, samples_ms=samples)


def test_trace_gives_median_p90_and_per_operator_rows() -> None:
    text, durs = _trace(n=20, skip=3)
    op, lat = trace_records(text, "traces/c.trace", _timing(durs), skip_first=3)
    assert lat.n == 20 and lat.median_ms is not None and lat.p90_ms is not None
    assert lat.median_ms == statistics.median(durs) and lat.p90_ms >= lat.median_ms
    assert lat.diff_pct is not None and abs(lat.diff_pct) < 0.01 and lat.ok is True
    assert op.missing is None and [r.name for r in op.rows] == list(OPS)  # in node order
    gpu = op.rows[1]
    assert gpu.node_type == "TfLiteGpuDelegateV2" and gpu.avg_ms == 6.01 and gpu.method == "atrace"
    assert op.total_ms is not None and abs(op.total_ms - sum(r.avg_ms for r in op.rows)) < 1e-9
    tl = lat.timeline
    assert tl is not None and abs(tl.duration_us / 1000.0 - lat.median_ms) < 0.02
    assert [(x.name, x.kind) for x in tl.spans] == [(OPS[0], "op"), (OPS[1], "delegate"), (OPS[2], "op")]
    assert tl.spans[0].begin_us == 0 and tl.spans[1].end_us - tl.spans[1].begin_us >= 6000


def test_trace_mean_off_by_more_than_two_percent_is_flagged() -> None:
    text, durs = _trace(n=10, skip=0)
    _, lat = trace_records(text, "t", _timing([d * 1.05 for d in durs]), skip_first=0)
    assert lat.ok is False and lat.diff_pct is not None and -5.0 < lat.diff_pct < -4.0


def test_trace_without_segment_is_missing_with_why() -> None:
    op, lat = trace_records("# tracer: nop\n" + _line(1, f"B|{PID}|Invoke") + "\n", "t", _timing([1.0]), skip_first=0)
    assert op.missing and "timing" in op.missing and lat.missing["trace"] == op.missing


def test_phone_trace_rows_are_the_lower_quartile_of_the_runs_medians() -> None:
    """Three tool runs, the second shifted 30% slower as a whole (a busy neighbour): each
    operator's row is the lower quartile of its per-run medians, so the shifted run does not
    become the answer; the latency statistics cover every run's inferences against the runs'
    combined tool mean."""
    text, per_run = _rounds_trace([7, 7, 6], skip=3, slow={1: 1.3})
    op, lat = trace_records(text, "t", [_timing(d) for d in per_run], skip_first=3)
    assert op.missing is None and [r.name for r in op.rows] == list(OPS)
    assert [r.avg_ms for r in op.rows] == [1.51, 6.01, 0.51]  # the undisturbed runs' medians
    assert all(r.se_ms is not None and r.se_ms > 0 for r in op.rows)  # the runs disagree: said as a spread
    assert [r.times_called for r in op.rows] == [20, 20, 20]
    assert op.rows[1].pct is not None and abs(sum(r.pct or 0 for r in op.rows) - 100.0) < 1e-9
    assert "lower quartile across 3 tool runs" in op.source and any("never faster" in n for n in op.notes)
    every = [d for run in per_run for d in run]
    assert lat.n == 20 and lat.median_ms == statistics.median(every)
    assert lat.tool_mean_ms is not None and abs(lat.tool_mean_ms - sum(every) / 20) < 1e-9
    assert lat.ok is True and lat.diff_pct is not None and abs(lat.diff_pct) < 1e-9
    assert "3 tool runs" in lat.notes[0] and "the first 3/3/3" in lat.notes[0]
    # one run's timing alone against the same trace: only its own segment is read
    one, _ = trace_records(text, "t", [_timing(per_run[0])], skip_first=3)
    assert one.missing is None and one.rows[1].avg_ms == 6.01


def test_round_iterations_keep_the_total() -> None:
    assert round_iterations(20, 3) == [7, 7, 6] and round_iterations(30, 3) == [10, 10, 10]
    assert round_iterations(2, 3) == [1, 1] and round_iterations(10, 1) == [10] and round_iterations(0, 3) == [1]


OPS_LIST = ["CONV_2D", "CONV_2D", "CUMSUM", "DEPTH_TO_SPACE"]
COMPAT = CompatRecord(source="analyzer", ops=OPS_LIST, gpu_checked=True, gpu_compatible=False,
                      gpu_issues=[GpuIssueRecord(op_index=2, op_name="CUMSUM", reason="Not supported op CUMSUM",
                                                 source="tflite analyzer")])


def test_partition_partial_gpu_uses_the_analyzer_reasons() -> None:
    logs = [DelegateRecord(kind="replaced", line="Replacing 3 out of 4 node(s) with delegate (TfLiteGpuDelegateV2) "
                           "node, yielding 2 partitions.", delegate="TfLiteGpuDelegateV2", replaced=3, total=4,
                           partitions=2)]
    p = partition_table("gpu", logs, COMPAT)
    assert [r.placement for r in p.rows] == ["delegate", "delegate", "cpu", "delegate"]
    assert p.rows[2].reason == "Not supported op CUMSUM" and p.rows[2].source == "analyzer"
    assert (p.on_delegate, p.on_cpu, p.unknown, p.partitions) == (3, 1, 0, 2)
    assert p.sources == ["analyzer", "log"]


def test_partition_full_not_applied_cpu_and_trace() -> None:
    full = [DelegateRecord(kind="replaced", line="Replacing 4 out of 4 node(s)", replaced=4, total=4, partitions=1)]
    assert partition_table("gpu", full, COMPAT).on_delegate == 4
    none = [DelegateRecord(kind="not_applied", line="NNAPI delegate: not applied", coverage="none")]
    p = partition_table("nnapi", none, COMPAT)
    assert p.on_cpu == 4 and p.rows[0].reason is not None and "took nothing" in p.rows[0].reason
    assert partition_table("cpu", [], COMPAT).on_cpu == 4
    # nnapi took part, the log says how much but not which; the trace names the CPU ops
    part = [DelegateRecord(kind="replaced", line="Replacing 2 out of 4 node(s)", replaced=2, total=4, partitions=1)]
    traced = LayerPassRecord(method="atrace", source="t", rows=[
        LayerRow(index=0, node_type="TfLiteNnapiDelegate", name="TfLiteNnapiDelegate@0/0", avg_ms=3.0),
        LayerRow(index=1, node_type="CUMSUM", name="CUMSUM@2/0", avg_ms=1.0),
        LayerRow(index=2, node_type="DEPTH_TO_SPACE", name="DEPTH_TO_SPACE@3/0", avg_ms=0.2)])
    p = partition_table("nnapi", part, COMPAT, traced)
    assert [r.placement for r in p.rows] == ["unknown", "unknown", "cpu", "cpu"]
    assert p.rows[3].source == "trace" and "trace" in p.sources


def test_partition_without_any_op_list_is_missing() -> None:
    p = partition_table("gpu", [], None)
    assert p.missing and not p.rows


def test_partition_from_the_host_op_list() -> None:
    host = [DelegateRecord(kind="ops", line="ops: CONV_2D ADD DELEGATE", ops=["CONV_2D", "ADD", "DELEGATE"])]
    p = partition_table("xnnpack", host, None)
    assert [r.op for r in p.rows] == ["CONV_2D", "ADD"] and p.unknown == 2 and p.sources == ["host"]
    assert p.rows[0].reason is not None and "does not say which" in p.rows[0].reason


def test_switch_summary_of_a_gpu_trace() -> None:
    from perflab.lab.layers import switch_summary
    from perflab.tracing.attribution import attribute
    from perflab.tracing.ftrace import parse_trace
    from perflab.tracing.synthetic import GPU_OP, synthetic_trace

    syn = synthetic_trace(200_000, seed=3)
    a = attribute(parse_trace(syn.text), us_per_tick=1.0)
    assert a.switches
    (s,) = switch_summary(a.switches)
    assert s.op == GPU_OP and s.n == len(a.switches)
    assert 0 <= s.cpu_to_accel_median_us <= s.cpu_to_accel_p90_us
    assert 0 <= s.accel_to_cpu_median_us <= s.accel_to_cpu_p90_us
    ups = sorted(x.cpu_to_accel_us for x in a.switches)
    assert s.cpu_to_accel_median_us == statistics.median(ups)


def test_estimate_shares_the_whole_time_by_macs() -> None:
    from pathlib import Path

    from perflab.lab.layers import estimate_pass, model_op_shapes
    from perflab.rules.layers import op_cost_units
    from perflab.zoo.registry import get_artifact

    art = get_artifact("espcn", 2, "fp32")
    ops = model_op_shapes(art.path, 240, 136)
    assert [o.op for o in ops] == ["CONV_2D", "TANH", "CONV_2D", "TANH", "CONV_2D", "DEPTH_TO_SPACE", "MINIMUM"]
    assert op_cost_units(ops[2]) == 240 * 136 * 32 * 3 * 3 * 64  # c2: 64 → 32 channels, 3×3
    assert op_cost_units(ops[1]) == 240 * 136 * 64  # tanh: one unit per output element
    rec = estimate_pass(art, 240, 136, 20.0, "the cell's back_to_back median")
    assert rec.method == "estimate" and rec.missing is None and rec.total_ms == 20.0
    assert abs(sum(r.avg_ms for r in rec.rows) - 20.0) < 1e-9
    assert max(rec.rows, key=lambda r: r.avg_ms).name == "CONV_2D@2"
    assert "estimate" in rec.source and rec.notes
    assert estimate_pass(art, 240, 136, None, "").missing
    bad = type(art)(name="x", family="user", variant="fp32", scale=2, path=Path("/nonexistent.tflite"), sha256="0",
                    size_bytes=0)
    assert estimate_pass(bad, 240, 136, 5.0, "").missing


def test_trace_keeps_the_last_timed_count_when_the_tool_added_warm_ups() -> None:
    from perflab.core.types import SummaryStats

    text, durs = _trace(n=20, skip=5)  # benchmark_model ran 5 warm-ups (its minimum time), not 3
    summ = SummaryStats(count=20, first_ms=None, mean_ms=sum(durs) / 20, std_ms=None, min_ms=None, max_ms=None)
    timing = TimingResult(mode=SeriesMode.BACK_TO_BACK, init_ms=None, first_ms=None, summary=summ)
    _, lat = trace_records(text, "t", timing, skip_first=3)
    assert lat.n == 20 and lat.ok is True and lat.diff_pct is not None and abs(lat.diff_pct) < 1e-9
    assert "the first 5" in lat.notes[0]


def _espcn_passes(drop_op: int | None = None) -> tuple[list[LayerPassRecord], str]:
    """The real espcn x2 model's path and three hand-timed passes over it: the op profile's rows
    named as benchmark_model names them (by node index), ATrace's by ``OP@index/0``, the
    differential's by group with the Keras layers each covers."""
    from perflab.zoo.registry import get_artifact

    path = str(get_artifact("espcn", 2, "fp32").path)
    ops = [("CONV_2D", 1.5), ("TANH", 0.6), ("CONV_2D", 5.0), ("TANH", 0.4), ("CONV_2D", 0.9),
           ("DEPTH_TO_SPACE", 0.2), ("MINIMUM", 0.1)]
    prof = LayerPassRecord(method="op_profile", source="benchmark_model", rows=[
        LayerRow(index=i, node_type=op, name=f"[node]:{i}", avg_ms=ms) for i, (op, ms) in enumerate(ops) if i != drop_op])
    traced = LayerPassRecord(method="atrace", source="t", rows=[
        LayerRow(index=i, node_type=op, name=f"{op}@{i}/0", avg_ms=ms * 0.9) for i, (op, ms) in enumerate(ops)])
    diff = LayerPassRecord(method="differential", source="d", rows=[
        LayerRow(index=0, node_type="conv", name="c1", avg_ms=2.0, layers=["c1"]),
        LayerRow(index=1, node_type="conv", name="c2", avg_ms=6.0, layers=["c2"]),
        LayerRow(index=2, node_type="conv", name="c3", avg_ms=1.0, layers=["c3"]),
        LayerRow(index=3, node_type="tail", name="tail", avg_ms=0.3, layers=["pixel_shuffle", "clip"])])
    return [prof, traced, diff], path


def test_rank_checks_read_the_aligned_groups_by_the_one_stored_mapping() -> None:
    from pathlib import Path

    from perflab.lab.layers import model_ops
    from perflab.rules.layers import aligned_record

    passes, path = _espcn_passes()
    aligned = aligned_record(passes, model_ops(Path(path)), "espcn_x2_fp32.tflite")
    for other in ("op_profile", "atrace"):  # index-named rows, summed into groups by the stored mapping
        r = rank_between(aligned, "differential", other)
        assert r is not None and r.n == 4 and r.spearman == 1.0 and r.same_top and r.against == other
        assert "op → group mapping" in r.note
    assert rank_between(aligned, "differential", "estimate") is None  # a method the table does not have


def test_rank_checks_leave_out_a_group_a_method_saw_only_in_part() -> None:
    from pathlib import Path

    from perflab.lab.layers import model_ops
    from perflab.rules.layers import aligned_record

    passes, path = _espcn_passes(drop_op=1)  # the op profile lost c1's TANH
    aligned = aligned_record(passes, model_ops(Path(path)), "espcn_x2_fp32.tflite")
    r = rank_between(aligned, "differential", "op_profile")
    assert r is not None and r.n == 3  # c2, c3, tail: c1 is not compared on half its ops


def test_a_disturbed_round_does_not_move_a_summary_only_variant() -> None:
    from perflab.core.types import SummaryStats
    from perflab.lab.layer_differential import _rounds_of
    from perflab.tracing.differential import robust_timing

    def run(mean_ms: float) -> TimingResult:
        return TimingResult(mode=SeriesMode.BACK_TO_BACK, init_ms=None, first_ms=None,
                            summary=SummaryStats(count=10, first_ms=None, mean_ms=mean_ms, std_ms=1.0, min_ms=None,
                                                 max_ms=None))

    steady = robust_timing(_rounds_of("v", (1,), [run(10.0), run(10.2), run(9.9), run(10.1)]))
    # two of four rounds the phone was busy: the lower quartile stays on the quiet rounds
    disturbed = robust_timing(_rounds_of("v", (1,), [run(10.0), run(14.0), run(9.9), run(15.0)]))
    assert abs(steady.time_ms - 9.975) < 1e-9 and abs(disturbed.time_ms - 9.975) < 1e-9
    assert disturbed.n == steady.n == 4  # one value per round
    two = robust_timing(_rounds_of("v", (1,), [run(10.0), run(12.0)]))
    assert two.time_ms == 10.5 and two.n == 2  # two rounds: a quarter of the way up


def test_a_summary_only_round_is_its_least_disturbed_run() -> None:
    """benchmark_model prints count/avg/std/min/max: a round's value is the run's min (the order
    statistic nearest the 10th percentile the differential takes of samples), so one run of
    ten disturbed by 8 ms moves the round's mean by 0.8 ms and its value not at all."""
    from perflab.core.types import SummaryStats
    from perflab.lab.layer_differential import _round_statistic, _round_value

    def run(mean_ms: float, min_ms: float | None) -> TimingResult:
        return TimingResult(mode=SeriesMode.BACK_TO_BACK, init_ms=None, first_ms=None,
                            summary=SummaryStats(count=10, first_ms=None, mean_ms=mean_ms, std_ms=1.0,
                                                 min_ms=min_ms, max_ms=None))

    quiet, disturbed = run(10.0, 9.8), run(10.8, 9.8)
    assert _round_value(quiet) == _round_value(disturbed) == 9.8
    assert _round_statistic([quiet, disturbed]) == "min"
    assert _round_value(run(10.0, None)) == 10.0 and _round_statistic([run(10.0, None)]) == "mean"
