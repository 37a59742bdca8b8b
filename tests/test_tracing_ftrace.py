"""ftrace text parsing: the fast parser on fixtures written from the kernel's formats
(tests/fixtures/ftrace/README.md), and identical records from the plain reference parser."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perflab.errors import UserInputError
from perflab.tracing.ftrace import (
    ParsedTrace,
    Row,
    TsUnit,
    clock_from_trace_clock,
    fields_of,
    file_chunks,
    parse_fields,
    parse_trace,
    scan_trace,
    typed_field_columns,
)
from perflab.tracing.reference import parse_trace_reference
from perflab.tracing.synthetic import synthetic_trace

FX = Path(__file__).parent / "fixtures" / "ftrace"
FIXTURES = sorted(FX.glob("*.txt"))


def text(name: str) -> str:
    return (FX / name).read_text(encoding="utf-8")


def assert_same(t: str, trace_clock: str | None = None) -> None:
    fast = parse_trace(t, trace_clock=trace_clock)
    ref = parse_trace_reference(t, trace_clock=trace_clock)
    assert fast.info == ref.info
    recs = fast.records()
    assert recs == ref.records
    assert [r.fields for r in recs] == ref.fields


def test_fixtures_exist() -> None:
    assert len(FIXTURES) >= 4


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fast_and_reference_identical_on_fixtures(path: Path) -> None:
    assert_same(path.read_text(encoding="utf-8"))
    assert_same(path.read_text(encoding="utf-8"), trace_clock="local global [counter] uptime")


def test_identical_on_a_synthetic_trace_with_lost_events() -> None:
    st = synthetic_trace(400_000, seed=3, lost_every=7)
    assert_same(st.text)
    old = synthetic_trace(200_000, seed=4, tgid=False, flags_width=4)
    assert_same(old.text)


def test_identical_on_odd_input() -> None:
    base = text("kernel49_notgid_lost_events.txt")
    body = base.split("\n")
    junk = ["", "   ", "garbage that is not an event",
            "          bash-1234  [000] ....  100.000001: do_sys_open <-sys_open"]
    odd = "\n".join([*body[:14], *junk, *body[14:]])
    assert_same(odd)
    assert_same(base.replace("\n", "\r\n"))
    fast = parse_trace(odd)
    assert fast.info.unparsed_lines == 2
    assert fast.info.unparsed_examples == ("garbage that is not an event",
                                          "          bash-1234  [000] ....  100.000001: do_sys_open <-sys_open")
    crlf = parse_trace(base.replace("\n", "\r\n"))
    assert crlf.info.unparsed_lines == 0 and crlf.records() == parse_trace(base).records()


def test_android13_atrace_dump() -> None:
    tr = parse_trace(text("android13_atrace_tgid_gpu.txt"))
    info = tr.info
    assert (info.tracer, info.cpus, info.has_tgid, info.flags_width) == ("nop", 8, True, 5)
    assert info.complete and info.lost_total == 0 and info.overwritten_events == 0
    assert info.unparsed_lines == 0  # the atrace preamble is not an unparsed line
    assert info.ts_unit is TsUnit.US and info.clock is None and info.clock_source == "timestamps"
    assert info.records == 44 == info.entries_in_buffer
    first = tr.records()[0]
    assert (first.comm, first.pid, first.tgid, first.cpu, first.flags, first.ts) == (
        "atrace", 5090, 5090, 2, "....1", 5123_050000)
    assert first.payload == "trace_event_clock_sync: parent_ts=5123.050000"
    idle = tr.records(["irq_handler_entry"])[1]
    assert (idle.comm, idle.pid, idle.tgid, idle.fields) == ("<idle>", 0, None, {"irq": "301", "name": "kgsl-3d0"})
    sig = [r for r in tr.records(["sched_switch"]) if r.comm == "Signal Catcher"]
    assert len(sig) == 1 and sig[0].pid == 2215 and sig[0].tgid == 2210
    assert sig[0].fields["prev_comm"] == "Signal Catcher" and sig[0].fields["prev_state"] == "D|K"
    assert tr.event_counts["tracing_mark_write"] == 20 and tr.count("binder_transaction") == 2


def test_old_kernel_lost_overwritten_and_buffer_started() -> None:
    tr = parse_trace(text("kernel49_notgid_lost_events.txt"))
    info = tr.info
    assert (info.has_tgid, info.flags_width, info.cpus) == (False, 4, 4)
    assert info.lost_events == {1: 1183} and info.lost_total == 1183
    assert info.overwritten_events == 2210 and info.buffer_started_cpus == (3,)
    assert not info.complete and info.lost_uncounted_cpus == ()
    recs = tr.records()
    assert all(r.tgid is None for r in recs)
    unknown = [r for r in recs if r.comm == "<...>"]
    assert len(unknown) == 1 and unknown[0].pid == 1893
    assert unknown[0].fields["next_comm"] == "Binder Thread #"
    soft = tr.records(["softirq_entry"])[0]
    assert soft.fields == {"vec": "9", "action": "RCU"} and soft.flags == "d.s2"


def test_lost_events_without_a_count() -> None:
    """Newer kernels print ``CPU:N [LOST EVENTS]`` when they cannot tell how many."""
    t = text("android13_atrace_tgid_gpu.txt").replace(
        "          atrace-5090", "CPU:2 [LOST EVENTS]\n          atrace-5090", 1)
    assert_same(t)
    info = parse_trace(t).info
    assert info.lost_uncounted_cpus == (2,) and info.lost_events == {} and not info.complete
    assert info.unparsed_lines == 0


def test_comment_and_lost_lines_at_the_edges() -> None:
    """The fast parser reads the header's '#' lines, and looks further only when its line
    counts say there is more: '#' and LOST lines first, last, between events, with blank
    lines in the header, give what the reference gives."""
    base = text("kernel49_notgid_lost_events.txt")
    head, _, body = base.partition("#              | |       |   ||||       |         |\n")
    head += "#              | |       |   ||||       |         |\n"
    events = body.rstrip("\n").split("\n")
    cases = {
        "lost first": "CPU:0 [LOST 7 EVENTS]\n" + base,
        "lost last, no newline": base + "CPU:2 [LOST 9 EVENTS]",
        "lost after a blank line": base + "\nCPU:3 [LOST 1 EVENTS]\n",
        "comment first line is a started CPU": "##### CPU 1 buffer started ####\n" + base,
        "comment last": base + "##### CPU 2 buffer started ####\n",
        "comment that looks like an event": head + "\n".join(
            [events[0], "# benchmark_model-1875  [002] ...1 81234.001000: tracing_mark_write: B|1|x", *events[1:]]) + "\n",
        "blank lines in the header": head.replace("#\n", "#\n\n", 1) + body,
        "no header at all": body,
        "crlf": base.replace("\n", "\r\n") + "CPU:2 [LOST 3 EVENTS]\r\n##### CPU 0 buffer started ####\r\n",
    }
    for name, t in cases.items():
        fast, ref = parse_trace(t), parse_trace_reference(t)
        assert fast.info == ref.info, name
        assert fast.records() == ref.records, name
    infos = {name: parse_trace(t).info for name, t in cases.items()}
    assert infos["lost first"].lost_events == {0: 7, 1: 1183}
    assert infos["lost last, no newline"].lost_events == {1: 1183, 2: 9}
    assert infos["comment first line is a started CPU"].buffer_started_cpus == (1, 3)
    assert infos["comment last"].buffer_started_cpus == (3, 2)
    assert infos["comment that looks like an event"].records == sum(1 for e in events if e[0] not in "#C")
    assert infos["crlf"].lost_events == {1: 1183, 2: 3} and infos["crlf"].buffer_started_cpus == (3, 0)
    assert all(i.unparsed_lines == 0 for i in infos.values())


def test_counter_clock_ticks_and_legacy_marker_name() -> None:
    t = text("counter_clock_tgid_mali.txt")
    guessed = parse_trace(t)
    assert guessed.info.ts_unit is TsUnit.TICKS and guessed.info.us_per_tick() is None
    tr = parse_trace(t, trace_clock="local global [counter] uptime perf mono mono_raw boot x86-tsc\n")
    assert tr.info.clock == "counter" and tr.info.clock_source == "trace_clock"
    assert tr.info.us_per_tick(19.2e6) == pytest.approx(1 / 19.2)
    marks = tr.records(["0"])
    assert marks[0].payload == "B|3301|Invoke" and marks[0].ts == 2371236487890
    idle = tr.records(["irq_handler_entry"])[0]
    assert idle.tgid is None and idle.fields["name"] == "13000000.mali"
    trunc = [r for r in tr.records() if r.pid == 420]
    assert trunc and trunc[0].comm == "mali-cmar-backe" and trunc[0].tgid == 420


def test_clock_from_header_line_and_trace_clock_file() -> None:
    t = text("android_s_dsp_marker_variants.txt").replace("# tracer: nop\n", "# tracer: nop\n# trace_clock: [boot]\n", 1)
    tr = parse_trace(t)
    assert (tr.info.clock, tr.info.clock_source, tr.info.ts_unit) == ("boot", "header", TsUnit.US)
    assert parse_trace(t, trace_clock="mono").info.clock_source == "trace_clock"
    assert clock_from_trace_clock("[local] global counter") == "local"
    assert clock_from_trace_clock("x86-tsc\n") == "x86-tsc"
    with pytest.raises(UserInputError):
        clock_from_trace_clock("local global counter")


def test_comm_with_dashes_takes_the_last_number() -> None:
    line = "    gpu-worker-7-2230    (   2200) [001] d.h1.  1200.886063: irq_handler_entry: irq=11 name=arch_timer\n"
    rec = parse_trace(line).records()[0]
    assert (rec.comm, rec.pid, rec.tgid, rec.ts) == ("gpu-worker-7", 2230, 2200, 1200_886063)


def test_no_flags_column() -> None:
    line = "            bash-1977  [000]  1430.404321: sched_wakeup: comm=kworker/0:1 pid=17 prio=120 target_cpu=000\n"
    rec = parse_trace(line).records()[0]
    assert rec.flags == "" and rec.fields["comm"] == "kworker/0:1"
    assert_same(line)


def test_fields() -> None:
    assert parse_fields("prev_comm=Binder Thread # prev_pid=12 prev_prio=120 prev_state=R+ ==> "
                        "next_comm=a=b next_pid=3 next_prio=120") == {
        "prev_comm": "Binder Thread #", "prev_pid": "12", "prev_prio": "120", "prev_state": "R+",
        "next_comm": "a=b", "next_pid": "3", "next_prio": "120"}
    assert parse_fields("B|123|Invoke") == {}
    assert parse_fields("irq=27 name=arm-smmu global fault") == {"irq": "27", "name": "arm-smmu global fault"}


def test_not_a_trace_is_one_user_error() -> None:
    with pytest.raises(UserInputError, match=r"^run\.log: not an ftrace text trace"):
        parse_trace("INFO: STARTING!\nINFO: Graph: [x]\n", source="run.log")
    with pytest.raises(UserInputError, match="empty trace"):
        parse_trace("", source="e")
    with pytest.raises(UserInputError):
        parse_trace_reference("INFO: STARTING!\n", source="run.log")
    header_only = "# tracer: nop\n#\n# entries-in-buffer/entries-written: 0/0   #P:2\n"
    assert len(parse_trace(header_only)) == 0


@pytest.mark.parametrize(("event", "payload"), [
    ("sched_switch", ("prev_comm=Binder Thread # prev_pid=12 prev_prio=120 prev_state=D|K ==> "
                     "next_comm=swapper/3 next_pid=0 next_prio=120")),
    ("sched_switch", "prev_comm=a=b prev_pid=12 prev_prio=120 prev_state=S ==> next_comm=x y next_pid=3 next_prio=-2"),
    ("sched_switch", "prev_comm=k prev_pid=1 prev_prio=120 prev_state=R+ ==> next_comm=m next_pid=2 next_prio=120"),
    ("sched_wakeup", "comm=Jit thread pool pid=2211 prio=120 target_cpu=003"),
    ("sched_wakeup", "comm=kworker/u16:3 pid=155 prio=120 success=1 target_cpu=003"),  # older kernels
    ("irq_handler_entry", "irq=27 name=arm-smmu global fault"),
    ("irq_handler_exit", "irq=27 ret=unhandled"),
    ("binder_transaction", ("transaction=489053 dest_node=489048 dest_proc=10670 dest_thread=0 reply=0 "
                           "flags=0x10 code=0xd")),
    ("binder_transaction_received", "transaction=489053"),
])
def test_typed_field_patterns_agree_with_the_generic_rules(event: str, payload: str) -> None:
    assert fields_of(event, payload) == parse_fields(payload)


_TYPED_PAYLOADS = {
    "sched_switch": ("prev_comm=k prev_pid=1 prev_prio=120 prev_state=R+ ==> next_comm=m next_pid=2 next_prio=120",
                     "prev_comm=a=b prev_pid=12 prev_prio=120 prev_state=S ==> next_comm=x y next_pid=3 next_prio=-2",
                     "prev_comm=x prev_pid=7 prev_prio=120 ==> next_comm=y next_pid=8 next_prio=120"),
    "binder_transaction": ("transaction=4 dest_node=3 dest_proc=10 dest_thread=0 reply=0 flags=0x10 code=0xd",
                           "transaction=5 dest_node=3 dest_proc=10 dest_thread=9 reply=1 flags=0x0 code=0x0 x=1"),
    "irq_handler_entry": ("irq=27 name=arm-smmu global fault", "irq=3 name=a=b"),
}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_typed_columns_of_some_keys_are_the_fields_of_each_payload(data: st.DataObject) -> None:
    # typed_field_columns captures only the keys asked for: the same values as fields_of, for
    # any subset and order of keys, whether every payload has the typed form or not
    event = data.draw(st.sampled_from(sorted(_TYPED_PAYLOADS)))
    names = list(fields_of(event, _TYPED_PAYLOADS[event][0]))
    keys = tuple(data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=4)))
    payloads = data.draw(st.lists(st.sampled_from(_TYPED_PAYLOADS[event]), min_size=1, max_size=6))
    expected = [tuple(fields_of(event, p).get(k) for k in keys) for p in payloads]
    assert typed_field_columns(event, payloads, keys) == expected


# ---- streaming: chunks that end anywhere --------------------------------------------------

_STREAM_LINES = [
    "# tracer: nop", "#", "# entries-in-buffer/entries-written: 9/12   #P:4", "",
    "#           TASK-PID     TGID  CPU#  |||||  TIMESTAMP  FUNCTION",
    ("   café-ü wörker-1201  ( 1200) [001] d..2.  1200.000100: sched_switch: prev_comm=café-ü wörker "
     "prev_pid=1201 prev_prio=120 prev_state=S ==> next_comm=日本語スレッド next_pid=1202 next_prio=120"),
    "  日本語スレッド-1202  ( 1200) [001] ...1.  1200.000200: tracing_mark_write: B|1200|Invoke 🚀",
    "          <idle>-0     (-----) [002] d.h1.  1200.000300: irq_handler_entry: irq=11 name=arch_timer",
    "          <idle>-0     (-----) [002] d.h1.  1200.000310: irq_handler_exit: irq=11 ret=handled",
    "CPU:3 [LOST 12 EVENTS]", "CPU:1 [LOST EVENTS]", "##### CPU 2 buffer started ####",
    "garbage that is not an event ✗", "   ", "",
    "  日本語スレッド-1202  ( 1200) [001] ...1.  1200.000900: tracing_mark_write: E|1200",
    "    gpu-worker-7-2230  ( 2200) [003] d.h1.  1200.001000: binder_transaction_received: transaction=7",
]


@st.composite
def _trace_and_cuts(draw: st.DrawFn) -> tuple[bytes, list[int], int]:
    lines = draw(st.lists(st.sampled_from(_STREAM_LINES), min_size=1, max_size=40))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + draw(st.sampled_from(["", eol]))
    if draw(st.booleans()):
        text = "capturing trace... done\nTRACE:\n" + text
    data = text.encode("utf-8")
    if draw(st.booleans()) and data:  # an undecodable byte, replaced as a whole-file decode would
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + b"\xff" + data[at:]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    return data, cuts, draw(st.integers(1, 300))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trace_and_cuts())
def test_chunks_that_end_anywhere_give_what_the_whole_text_gives(case: tuple[bytes, list[int], int]) -> None:
    """Byte chunks cut anywhere (inside a line, a \\r\\n, a UTF-8 character), small blocks:
    the same rows and TraceInfo as the whole text at once, and as the reference parser."""
    data, cuts, block_chars = case
    whole_text = data.decode("utf-8", errors="replace")
    bounds = [0, *cuts, len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    rows: list[Row] = []
    try:
        whole = parse_trace(whole_text)
    except UserInputError:
        with pytest.raises(UserInputError):
            scan_trace(chunks, rows.extend, block_chars=block_chars)
        return
    info = scan_trace(chunks, rows.extend, block_chars=block_chars)
    assert info == whole.info
    assert ParsedTrace(info, rows).records() == whole.records() == parse_trace_reference(whole_text).records
    assert parse_trace(whole_text, block_chars=block_chars).info == whole.info


def test_file_chunks_stream_a_file(tmp_path: Path) -> None:
    t = synthetic_trace(300_000, seed=9, lost_every=5).text
    path = tmp_path / "t.trace"
    path.write_text(t, encoding="utf-8")
    rows: list[Row] = []
    info = scan_trace(file_chunks(path, 4099), rows.extend, block_chars=10_000)
    whole = parse_trace(t)
    assert info == whole.info and ParsedTrace(info, rows).records() == whole.records()


_PIECE = st.text(alphabet="ab -01239()[]:.#\t=>", max_size=14)


@st.composite
def _ascii_line(draw: st.DrawFn) -> str:
    """A line near the grammar: each column present, missing or garbled, comms and payloads
    with dashes, digits, blanks and brackets."""
    def part(good: str) -> str:
        return draw(st.sampled_from([good, good, good, "", draw(_PIECE)]))
    comm = draw(_PIECE)
    tgid = draw(st.sampled_from(["", "(  12) ", "(-----) ", "( 1-2) "]))
    return (f"{part('  ')}{comm}-{part(str(draw(st.integers(0, 99999))))}{part(' ')}{tgid}"
            f"{part('[003]')} {part('d..2.')} {part('86400.885557')}{part(': ')}{part('sched_switch')}"
            f"{part(': ')}{draw(_PIECE)}")


@settings(max_examples=300, deadline=None)
@given(st.lists(_ascii_line(), max_size=12))
def test_the_ascii_line_grammar_matches_as_the_plain_one(lines: list[str]) -> None:
    # blocks of ASCII text are parsed with [0-9] for \d and the comm tried dash by dash:
    # the same rows as LINE_PATTERN on any ASCII text
    from perflab.tracing.ftrace import _LINE_RE_ASCII, _LINE_RE_M
    text = "\n".join(lines)
    assert _LINE_RE_ASCII.findall(text) == _LINE_RE_M.findall(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_PIECE, st.sampled_from(["", "1", "12", "x"]), _PIECE, st.sampled_from(["3", "", "-4"])),
                min_size=1, max_size=6), st.sampled_from([("prev_pid", "next_pid"), ("next_comm", "prev_comm")]))
def test_typed_switch_columns_with_comms_of_blanks_and_digits(parts: list[tuple[str, str, str, str]],
                                                              keys: tuple[str, str]) -> None:
    payloads = [f"prev_comm={a} prev_pid={p} prev_prio=120 prev_state=S ==> next_comm={b} next_pid={n} next_prio=120"
                .replace("\n", " ").strip() for a, p, b, n in parts]
    assert typed_field_columns("sched_switch", payloads, keys) == [
        tuple(fields_of("sched_switch", p).get(k) for k in keys) for p in payloads]


# Comms as the kernel prints them, and the nasty ones: blanks, dashes, digits, "<...>", an irq
# thread, a comm holding "-<digits> " (the grammar backtracks past it), tabs, non-ASCII.
_COMMS = st.one_of(
    st.sampled_from(["<idle>", "<...>", "irq/293-kgsl-3d", "kworker/u16:3", "HwBinder:395_1", "binder:5485_2",
                     "Signal Catcher", "a-12 b", "x-1\tq", "-7 ", "0-", "tflite-1", "#x", "日本語スレッド", ""]),
    st.text(alphabet="ab -019<>./:\t", max_size=18))


@st.composite
def _kernel_layout_line(draw: st.DrawFn) -> str:
    """A line as trace_output.c prints it with the tgid column and 5-character flags, mostly
    well formed, a column now and then garbled; sometimes a LOST, '#', blank or junk line."""
    def one(good: str, *bad: str) -> str:
        return draw(st.sampled_from([good] * 6 + list(bad)))
    other = one("", "CPU:3 [LOST 12 EVENTS]", "CPU:1 [LOST EVENTS]", "##### CPU 2 buffer started ####", "junk", "  ", "")
    if other:
        return other
    comm, tid = draw(_COMMS), draw(st.integers(0, 99_999_999))
    tgid = one(f"({draw(st.integers(0, 9_999_999)):7d})", "(-------)", "(  1-2 )", "(       )")
    flags = one("d..2.", "d.h1.", "dnh2", "d .2.", "d..2..", "d..2.\t")
    seconds, us = draw(st.integers(0, 999_999)), draw(st.integers(0, 999_999))
    ts = one(f"{seconds:5d}.{us:06d}", f"{seconds}", f"{seconds}.{us:07d}", f"{seconds}.{us}")
    event = one("sched_switch", "irq_handler_entry", "0", "ev t", "")
    sep = one(": ", ":", ":  ", ":\t")
    payload = one("prev_comm=a-1 b prev_pid=3 ==> next_comm=c next_pid=4", "B|12|Invoke", "", " x: y: z", "\t\r")
    return f"{comm:>16}-{tid:<7} {tgid} [{draw(st.integers(0, 1999)):03d}] {flags} {ts}{sep}{event}{sep}{payload}"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_kernel_layout_line(), min_size=1, max_size=30), st.integers(1, 400), st.sampled_from(["\n", "\r\n"]))
def test_blocks_of_the_kernel_layout_give_the_reference_records(lines: list[str], block_chars: int, eol: str) -> None:
    # lines of the kernel's layout, nasty comms and garbled columns included: the same records and
    # TraceInfo as the reference parser, in any block size
    t = eol.join(lines) + eol
    try:
        ref = parse_trace_reference(t)
    except UserInputError:
        with pytest.raises(UserInputError):
            parse_trace(t, block_chars=block_chars)
        return
    fast = parse_trace(t, block_chars=block_chars)
    assert fast.info == ref.info
    assert fast.records() == ref.records
