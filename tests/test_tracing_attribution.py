"""Attribution over parsed traces: inferences and operators from TFLite's ATrace sections,
perflab segments, irqs, CPU busy time, binder/fastrpc round trips, processor switch latency.
Expected values are the ground truth the fixtures were written with (fixtures/ftrace/README.md)
or that the synthetic generator returns beside its text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perflab.analysis.stats import summarize
from perflab.errors import UserInputError
from perflab.tracing.attribution import Attribution, attribute, stream_facts
from perflab.tracing.ftrace import ParsedTrace, parse_trace, text_chunks
from perflab.tracing.kernel_events import binder_round_trips, cpu_busy
from perflab.tracing.reference import attribute_reference, parse_trace_reference
from perflab.tracing.sections import inferences, parse_markers, segments
from perflab.tracing.synthetic import GPU_OP, OPS, synthetic_trace

FX = Path(__file__).parent / "fixtures" / "ftrace"


def load(name: str, trace_clock: str | None = None) -> ParsedTrace:
    return parse_trace((FX / name).read_text(encoding="utf-8"), trace_clock=trace_clock)


def test_gpu_inferences_ops_irqs_busy_binder_and_switches() -> None:
    a = attribute(load("android13_atrace_tgid_gpu.txt"), us_per_tick=1.0)
    assert [(i.begin_us, i.end_us) for i in a.inferences] == [(5123_100000, 5123_104640), (5123_110000, 5123_114830)]
    assert [[(o.op_type, o.node_index, o.duration_us, o.delegate) for o in i.ops] for i in a.inferences] == [
        [("CONV_2D", 0, 1500, False), ("TfLiteGpuDelegateV2", 1, 2600, True), ("DEPTH_TO_SPACE", 2, 500, False)],
        [("CONV_2D", 0, 1400, False), ("TfLiteGpuDelegateV2", 1, 2900, True), ("DEPTH_TO_SPACE", 2, 480, False)],
    ]
    assert a.latency_ms is not None
    assert a.latency_ms == summarize([4.64, 4.83])
    top = a.ops[0]
    assert top.name == "TfLiteGpuDelegateV2@1/0" and top.stats_ms.median_ms == pytest.approx(2.75)
    assert sum(o.share_pct for o in a.ops) == pytest.approx(100.0)
    irqs = {s.name: s for s in a.irq_summary}
    assert irqs["kgsl-3d0"].count == 2 and irqs["kgsl-3d0"].total_us == 24 and irqs["kgsl-3d0"].irqs == (301,)
    assert irqs["arch_timer"].count == 2 and a.unmatched_irq_events == 0
    # busy: the worker ran 1460 + 1360 µs; the main thread from its switch-in at .104070 to its
    # switch-out at .111480 (its run before the first switch-out has no switch-in in the trace)
    assert a.busy is not None and a.busy_tids == (5120, 5131)
    assert a.busy.per_thread_us == {5131: 2820, 5120: 7410}
    assert sum(r.end_us - r.begin_us for r in a.busy.intervals) == 2820 + 7410
    assert [(t.tid, t.peer, t.duration_us) for t in a.binder] == [(5120, "proc 601", 230)]
    assert [(s.via, s.cpu_to_accel_us, s.accel_to_cpu_us, s.resumed) for s in a.switches] == [
        ("irq", 2510, 110, "next op"), ("irq", 2810, 120, "next op")]
    assert [(s.name, s.begin_us, s.end_us) for s in a.segments] == [("cell0", 5123_090000, 5123_115830)]
    plain = [m.text for m in a.markers.plain]
    assert "trace_event_clock_sync: parent_ts=5123.050000" in plain


def test_old_kernel_bare_e_orphans_and_cut_inference() -> None:
    a = attribute(load("kernel49_notgid_lost_events.txt"), us_per_tick=1.0)
    assert [(i.begin_us, i.end_us) for i in a.inferences] == [(81234_010000, 81234_025726),
                                                              (81234_030726, 81234_046462)]
    assert a.markers.unmatched_ends == 2 and a.markers.unclosed == 2
    # no tgid column: the worker is found by its name
    assert a.busy is not None and a.busy_tids == (1875, 1890)
    assert a.busy.per_thread_us == {1890: (6000 - 25) + (9000 - 25) + (700 - 25) + (6200 - 25) + (8800 - 25) + (710 - 25)}
    assert a.switches == [] and a.binder == []


def test_counter_clock_converted_with_the_counter_frequency() -> None:
    tr = load("counter_clock_tgid_mali.txt", trace_clock="[counter]")
    upt = tr.info.us_per_tick(19.2e6)
    assert upt is not None
    a = attribute(tr, us_per_tick=upt)
    assert [round(i.duration_us, 4) for i in a.inferences] == [pytest.approx(154000 / 19.2), pytest.approx(173200 / 19.2)]
    assert {s.name: s.count for s in a.irq_summary} == {"13000000.mali": 4}
    assert [(s.irqs, s.resumed) for s in a.switches] == [(2, "node end"), (2, "node end")]
    assert a.switches[0].accel_to_cpu_us == pytest.approx(600 / 19.2)


def test_dsp_marker_variants_segments_counters_and_fastrpc() -> None:
    a = attribute(load("android_s_dsp_marker_variants.txt"), us_per_tick=1.0)
    assert [(i.begin_us, i.end_us) for i in a.inferences] == [(9001_002000, 9001_005448), (9001_006448, 9001_010196)]
    assert [o.name for o in a.inferences[0].ops] == ["TfLiteHexagonDelegate@0/0", "DEPTH_TO_SPACE@1/0"]
    assert [(s.name, s.duration_us) for s in a.segments] == [("warmup", 4498), ("measure", 4298)]
    assert a.unmatched_segment_markers == 0
    assert [(c.name, c.value) for c in a.markers.counters] == [("gpu_mem_kb", 10240), ("gpu_mem_kb", 20480)]
    assert [(s.name, s.cookie, s.end_us - s.begin_us) for s in a.markers.async_slices] == [("load_model", "42", 700)]
    assert [i.name for i in a.markers.instants] == ["output_ready", "output_ready"]
    chrome = [s for s in a.markers.sections if s.name == "DoWorkLoop"]
    assert len(chrome) == 1 and chrome[0].args == "arg1=1|cat1" and chrome[0].tgid == 2850 and chrome[0].tid == 2867
    assert [(t.kind, t.peer, t.duration_us) for t in a.fastrpc] == [("fastrpc", "cid 3", 2930), ("fastrpc", "cid 3", 3230)]
    # with a send event the hand-over is measured to it, not to the completion irq
    assert [(s.via, s.cpu_to_accel_us, s.accel_to_cpu_us) for s in a.switches] == [("submit", 40, 68), ("submit", 40, 68)]


def test_synthetic_ground_truth_recovered() -> None:
    st = synthetic_trace(300_000, seed=11, lost_every=5)
    a = attribute(parse_trace(st.text), us_per_tick=1.0)
    assert [(i.begin_us, i.end_us) for i in a.inferences] == [(float(b), float(e)) for b, e in st.inferences_us]
    for op in OPS:
        got = [o.duration_us for i in a.inferences for o in i.ops if o.name == op]
        assert got == st.op_durations_us[op]
    assert {s.name: s.count for s in a.irq_summary}["kgsl-3d0"] == st.gpu_irqs
    assert all(s.op == GPU_OP for s in a.switches) and len(a.switches) == len(st.inferences_us)


def test_sections_match_per_thread_not_per_pid() -> None:
    """Two threads of one process interleave their sections: each E closes its own thread's B."""
    lines = [
        " a-10 (10) [000] .... 1.000000: tracing_mark_write: B|10|Invoke",
        " b-11 (10) [001] .... 1.000100: tracing_mark_write: B|10|other",
        " a-10 (10) [000] .... 1.000200: tracing_mark_write: B|10|ADD@0/0",
        " b-11 (10) [001] .... 1.000300: tracing_mark_write: E|10",
        " a-10 (10) [000] .... 1.000400: tracing_mark_write: E|10",
        " a-10 (10) [000] .... 1.000500: tracing_mark_write: E|10",
    ]
    tr = parse_trace("\n".join(lines) + "\n")
    m = parse_markers(tr.records(), 1.0)
    got = {(s.name, s.tid, s.duration_us) for s in m.sections}
    assert got == {("Invoke", 10, 500), ("other", 11, 200), ("ADD@0/0", 10, 200)}
    infs = inferences(m.sections)
    assert len(infs) == 1 and [o.name for o in infs[0].ops] == ["ADD@0/0"]
    assert inferences(m.sections, tgid=99) == []


def test_unmatched_segment_markers_and_one_way_binder_and_busy_window() -> None:
    lines = [
        " sh-5 [000] .... 1.000000: tracing_mark_write: perflab:segment:a:begin",
        " sh-5 [000] .... 1.000100: tracing_mark_write: perflab:segment:b:end",
        (" x-20 [001] .... 1.000150: binder_transaction: transaction=1 dest_node=2 dest_proc=30 dest_thread=0 "
        "reply=0 flags=0x11 code=0x1"),
        (" <idle>-0 [001] d..2 1.000200: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 "
        "prev_state=R ==> next_comm=x next_pid=20 next_prio=120"),
        (" x-20 [001] d..2 1.001200: sched_switch: prev_comm=x prev_pid=20 prev_prio=120 prev_state=S ==> "
        "next_comm=swapper/1 next_pid=0 next_prio=120"),
    ]
    tr = parse_trace("\n".join(lines) + "\n")
    m = parse_markers(tr.records(), 1.0)
    segs, unmatched = segments(m.plain)
    assert segs == [] and unmatched == 2
    trips, unanswered = binder_round_trips(tr.records(), 1.0)
    assert trips == [] and unanswered == 0  # one-way (flags & 1): no reply expected
    assert cpu_busy(tr.records(), {20}, 1.0).per_thread_us == {20: 1000}
    assert cpu_busy(tr.records(), {20}, 1.0, window_us=(1_000_500, 1_000_900)).per_thread_us == {20: 400}


def test_selection_by_segment_and_warmup_skip() -> None:
    tr = load("android_s_dsp_marker_variants.txt")
    measure = attribute(tr, us_per_tick=1.0, segment="measure")
    assert measure.inferences_in_trace == 2
    assert [(i.index, i.duration_us) for i in measure.inferences] == [(1, 3748)]
    assert measure.latency_ms is not None and measure.latency_ms.median_ms == pytest.approx(3.748)
    skipped = attribute(tr, us_per_tick=1.0, skip_first=1)
    assert [i.index for i in skipped.inferences] == [1]
    assert attribute(tr, us_per_tick=1.0, skip_first=5).inferences == []
    with pytest.raises(UserInputError, match=r"no perflab segment named 'cell9'.*segments: measure, warmup"):
        attribute(tr, us_per_tick=1.0, segment="cell9")


def test_nested_invoke_sections_count_once_and_ops_stay_top_level() -> None:
    """The interpreter's and the subgraph's Invoke may both be sections: one inference, and
    its ops are top-level ops of it (share and switch latency use top-level ops)."""
    lines = [
        " bm-10 (10) [000] .... 1.000000: tracing_mark_write: B|10|invoke",
        " bm-10 (10) [000] .... 1.000010: tracing_mark_write: B|10|Invoke",
        " bm-10 (10) [000] .... 1.000020: tracing_mark_write: B|10|CONV_2D@0/0",
        " bm-10 (10) [000] .... 1.000420: tracing_mark_write: E|10",
        " bm-10 (10) [000] .... 1.000430: tracing_mark_write: B|10|ADD@1/0",
        " bm-10 (10) [000] .... 1.000530: tracing_mark_write: E|10",
        " bm-10 (10) [000] .... 1.000540: tracing_mark_write: E|10",
        " bm-10 (10) [000] .... 1.000550: tracing_mark_write: E|10",
    ]
    a = attribute(parse_trace("\n".join(lines) + "\n"), us_per_tick=1.0)
    assert len(a.inferences) == 1 and a.inferences[0].duration_us == 550
    assert [(o.name, o.depth) for o in a.inferences[0].ops] == [("CONV_2D@0/0", 1), ("ADD@1/0", 1)]
    assert [round(o.share_pct) for o in a.ops] == [80, 20]


# ---- streamed attribution: the same as the plain per-record one --------------------------

def _streamed(t: str, block_chars: int, **kw: object) -> Attribution:
    facts = stream_facts(text_chunks(t, 997), block_chars=block_chars)
    return attribute(facts, us_per_tick=1.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", sorted(FX.glob("*.txt")), ids=lambda p: p.name)
def test_streamed_attribution_equals_the_plain_one_on_fixtures(path: Path) -> None:
    t = path.read_text(encoding="utf-8")
    ref = parse_trace_reference(t)
    for block_chars in (1, 700, 1 << 22):
        assert _streamed(t, block_chars) == attribute_reference(ref, us_per_tick=1.0), block_chars
    assert attribute(parse_trace(t), us_per_tick=1.0) == attribute_reference(ref, us_per_tick=1.0)


def test_streamed_attribution_equals_the_plain_one_on_synthetic_traces() -> None:
    for syn in (synthetic_trace(400_000, seed=3, lost_every=7), synthetic_trace(300_000, seed=4, tgid=False)):
        ref = parse_trace_reference(syn.text)
        a = _streamed(syn.text, 50_000)
        assert a == attribute_reference(ref, us_per_tick=1.0)
        assert len(a.inferences) == len(syn.inferences_us) and a.busy is not None and a.busy.intervals
        chosen = _streamed(syn.text, 50_000, skip_first=3, busy_tids={4330})
        assert chosen == attribute_reference(ref, us_per_tick=1.0, skip_first=3, busy_tids={4330})


_PAYLOADS = [  # (event, payload): the usual forms and the odd ones that leave the typed patterns
    ("tracing_mark_write", "B|100|Invoke"), ("tracing_mark_write", "B|100|CONV_2D@0/0"),
    ("tracing_mark_write", "B|100|TfLiteGpuDelegateV2@1/0"), ("tracing_mark_write", "E|100"),
    ("tracing_mark_write", "E"), ("tracing_mark_write", "C|100|queue|3"), ("tracing_mark_write", "C|100|q|x"),
    ("tracing_mark_write", "S|100|load|7"), ("tracing_mark_write", "F|100|load|7"), ("tracing_mark_write", "I|100|tick"),
    ("tracing_mark_write", "perflab:segment:timing:begin"), ("tracing_mark_write", "perflab:segment:timing:end"),
    ("print", "tracing_mark_write: B|100|invoke"), ("0", "E|100"), ("tracing_mark_write", "B|"),
    ("sched_switch", "prev_comm=bm prev_pid=101 prev_prio=120 prev_state=S ==> next_comm=bm next_pid=102 next_prio=120"),
    ("sched_switch", "prev_comm=bm prev_pid=102 prev_prio=120 prev_state=R ==> next_comm=bm next_pid=101 next_prio=120"),
    ("sched_switch", "prev_comm=a=b prev_pid=101 prev_prio=120 prev_state=S ==> next_comm=x next_pid=0 next_prio=120"),
    ("sched_switch", "prev_comm=x y=z prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=bm next_pid=100 next_prio=1"),
    ("sched_switch", "prev_pid=100 next_pid=101"),
    ("sched_switch", ("prev_comm=a next_pid=5 prev_pid=101 prev_prio=120 prev_state=S ==> next_comm=b next_pid=102 "
                      "next_prio=120")),  # the generic rules keep the first next_pid
    ("irq_handler_entry", "irq=293 name=kgsl-3d0"), ("irq_handler_exit", "irq=293 ret=handled"),
    ("irq_handler_entry", "irq=11 name=arch timer"), ("irq_handler_exit", "irq=11 ret=handled"),
    ("irq_handler_entry", "irq=11 ret=handled"), ("irq_handler_exit", "irq=11 name=arch_timer"),
    ("irq_handler_entry", "irq=5 name="), ("irq_handler_entry", "irq=7 name=a=b"), ("irq_handler_exit", "irq=7 ret=x"),
    ("binder_transaction", "transaction=9 dest_node=1 dest_proc=900 dest_thread=0 reply=0 flags=0x10 code=0x3"),
    ("binder_transaction", "transaction=10 dest_node=0 dest_proc=100 dest_thread=101 reply=1 flags=0x0 code=0x0"),
    ("binder_transaction_received", "transaction=10"), ("binder_transaction_received", "transaction=9"),
    ("fastrpc_transport_send", "to cid 3: handle 0x1 sc 0x2 ctx 0xa0"),
    ("fastrpc_transport_response", "from cid 3: ctx 0xa0 retval 0x0"),
    ("kgsl_issueibcmds", "d_name=kgsl-3d0 ctx=9 ib=0x0 numibs=1 ts=1 flags=None result=0 type=cmdbatch"),
    ("cpu_frequency", "state=1800000 cpu_id=4"),
]


@st.composite
def _attribution_trace(draw: st.DrawFn) -> str:
    picks = draw(st.lists(st.tuples(st.integers(0, len(_PAYLOADS) - 1), st.integers(0, 3), st.sampled_from(
        [(100, "bm"), (101, "bm"), (102, "bm w"), (0, "<idle>"), (103, "old"), (103, "renamed")]),
        st.integers(0, 40)), min_size=1, max_size=80))
    tgid = draw(st.booleans())
    lines, ts = ["# tracer: nop"], 5_000_000_000
    for k, cpu, (tid, comm), step in picks:
        event, payload = _PAYLOADS[k]
        ts += step
        col = ("(  100) " if tid else "(-----) ") if tgid else ""
        lines.append(f"{comm:>16}-{tid:<5} {col}[{cpu:03d}] d..2. {ts // 1_000_000}.{ts % 1_000_000:06d}: "
                     f"{event}: {payload}")
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_attribution_trace(), st.integers(1, 400), st.integers(1, 500))
def test_streamed_attribution_property(t: str, chunk_chars: int, block_chars: int) -> None:
    """Generated traces, odd payloads among them, any chunk and block sizes: the streamed
    attribution is the plain per-record one."""
    facts = stream_facts(text_chunks(t, chunk_chars), block_chars=block_chars)
    ref = parse_trace_reference(t)
    assert attribute(facts, us_per_tick=0.25) == attribute_reference(ref, us_per_tick=0.25)
    assert attribute(facts, us_per_tick=1.0, busy_tids={101}) == attribute_reference(ref, us_per_tick=1.0,
                                                                                   busy_tids={101})
    assert facts.records(["cpu_frequency"]) == [r for r in ref.records if r.event == "cpu_frequency"]
    whole = parse_trace(t)  # names, counts and threads in the same order (a renamed thread's last name)
    assert list(facts.thread_names().items()) == list(whole.thread_names().items())
    assert list(facts.event_counts.items()) == list(whole.event_counts.items())
    assert [facts.tids_of(g) for g in (0, 100)] == [whole.tids_of(g) for g in (0, 100)]
    assert [facts.tids_named(c) for c in ("old", "renamed", "bm")] == [whole.tids_named(c) for c in ("old", "renamed", "bm")]


def test_streamed_switches_read_an_odd_payload_as_the_generic_rules_do() -> None:
    """A comm that holds ``next_pid=5`` leaves the typed pattern: the first next_pid counts
    (parse_fields keeps the first of a key), so thread 102 is not switched in."""
    odd = "prev_comm=a next_pid=5 prev_pid=101 prev_prio=120 prev_state=S ==> next_comm=b next_pid=102 next_prio=120"
    out = "prev_comm=b prev_pid=102 prev_prio=120 prev_state=S ==> next_comm=c next_pid=0 next_prio=120"
    t = (f"  a-101 [000] d..2. 10.000100: sched_switch: {odd}\n"
         f"  b-102 [000] d..2. 10.000300: sched_switch: {out}\n")
    a = attribute(stream_facts([t]), us_per_tick=1.0, busy_tids={102, 5})
    assert a == attribute_reference(parse_trace_reference(t), us_per_tick=1.0, busy_tids={102, 5})
    assert a.busy is not None and a.busy.per_thread_us == {}


def test_streamed_switches_without_a_pid_stop_the_run_as_the_reference_does() -> None:
    """A switch line without next_pid (no typed form, no number: the per-payload path) ends
    the run of the thread before it and puts none on the CPU, in the stream as in the
    reference."""
    sw = "sched_switch: prev_comm={p} prev_pid={pp} prev_prio=120 prev_state=S ==> next_comm={n} next_pid={np} next_prio=120"
    t = ("  a-5 [000] .... 1.000002: " + sw.format(p="a", pp=5, n="b", np=7) + "\n"
         "  b-7 [000] .... 1.000003: " + sw.format(p="b", pp=7, n="a", np=5) + "\n"
         "  a-5 [000] .... 1.000004: sched_switch: prev_comm=a prev_pid=5 prev_state=S ==> next_comm=b\n"
         "  a-5 [000] .... 1.000005: " + sw.format(p="a", pp=5, n="b", np=7) + "\n"
         "  b-7 [000] .... 1.000007: " + sw.format(p="b", pp=7, n="a", np=5) + "\n")
    a = attribute(stream_facts([t]), us_per_tick=1.0, busy_tids={5, 7})
    assert a == attribute_reference(parse_trace_reference(t), us_per_tick=1.0, busy_tids={5, 7})
    assert a.busy is not None and a.busy.per_thread_us == {7: 3.0, 5: 1.0}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(-20, 40), st.sampled_from(["binder", "fastrpc"])),
                max_size=30),
       st.integers(-5, 70), st.integers(-5, 70))
def test_round_trips_inside_an_interval_as_a_filter_over_all_finds_them(
        spans: list[tuple[int, int, str]], lo: int, hi: int) -> None:
    # switch_latencies bisects and stops early: the same trips, in the same order, as a pass
    # over every trip (ends before begins included: a trace's clock may do that)
    from perflab.tracing.kernel_events import RoundTrip, _Trips
    trips = [RoundTrip(kind, k, "p", float(b), float(b + d)) for k, (b, d, kind) in enumerate(spans)]
    ordered = sorted(trips, key=lambda t: t.begin_us)
    assert _Trips(trips).inside(lo, hi) == [t for t in ordered if lo <= t.begin_us and t.end_us <= hi]


def test_markers_with_timestamps_past_64_bits_attributed_as_the_plain_way() -> None:
    # timestamps are read by numpy when they fit an int64; longer ones (a raw counter, a garbled
    # line) stay Python ints, as the reference parser keeps them
    t = "# tracer: nop\n" + "".join(
        f"              bm-100   [000] d..2. {ts}: tracing_mark_write: {m}\n"
        for ts, m in [("123456789012345678901234", "B|100|Invoke"), ("123456789012345678901300", "E|100"),
                      ("99", "B|100|Invoke"), ("120", "E|100")])
    facts = stream_facts(text_chunks(t), block_chars=60)
    assert attribute(facts, us_per_tick=1.0) == attribute_reference(parse_trace_reference(t), us_per_tick=1.0)
    assert [s.begin_us for s in attribute(facts, us_per_tick=1.0).markers.sections] == [99.0, 1.2345678901234568e23]
