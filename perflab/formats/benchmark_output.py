"""What TFLite's ``benchmark_model`` prints, parsed (pure: text in, values out).

:func:`parse_output` reads everything the tool prints, across TFLite versions (see
docs/android.md and the fixtures in tests/fixtures/benchmark_model/): parameter echo, init /
first / warm-up / steady timings, ``count=`` statistics (all forms), memory footprint (both
wordings), peak memory, the VmRSS block, delegate application lines, errors, and op-profiling
tables (text with and without the ``[start]`` column, and CSV). It never raises on odd text.

The output of a real phone's tool and of the emulated one (perflab.emulator.benchmark_model)
go through these same parsers. The command line that produces the output is built in
perflab.workloads.benchmark_model, which also turns a parsed run into perflab's result types;
perflab.tracing reads the same output to cross-check traces. Both import it from here, below
them (see docs/design_decisions.md).

Timings in the tool's output are microseconds; the parsed values say their unit in their name
(``*_us`` as printed in a ``count=`` line, ``*_ms`` everywhere else).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from perflab.core.types import SummaryStats

# --------------------------------------------------------------------------------------
# Parsed values
# --------------------------------------------------------------------------------------

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"


def _f(text: str) -> float:
    return float(text)


@dataclass(frozen=True)
class StatLine:
    """One ``count=`` line (``Stat::OutputToStream``). Values in microseconds, as printed."""

    count: int
    first_us: float | None = None
    curr_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None
    all_same: bool = False
    p5_us: float | None = None  # newest builds add p5=, median=, p95= to the line
    median_us: float | None = None
    p95_us: float | None = None

    def summary(self) -> SummaryStats | None:
        """As milliseconds; None for ``count=0``."""
        if self.count == 0:
            return None
        if self.avg_us is not None:
            mean = self.avg_us
        elif self.curr_us is not None and (self.count == 1 or self.all_same):
            mean = self.curr_us
        else:
            return None
        lo = self.min_us if self.min_us is not None else (mean if self.all_same or self.count == 1 else None)
        hi = self.max_us if self.max_us is not None else (mean if self.all_same or self.count == 1 else None)
        std = self.std_us if self.std_us is not None else (0.0 if self.all_same or self.count == 1 else None)
        first = self.first_us if self.first_us is not None else (self.curr_us if self.count == 1 else None)
        return SummaryStats(
            count=self.count,
            first_ms=None if first is None else first / 1000.0,
            mean_ms=mean / 1000.0,
            std_ms=None if std is None else std / 1000.0,
            min_ms=None if lo is None else lo / 1000.0,
            max_ms=None if hi is None else hi / 1000.0,
        )


_STAT_KV = re.compile(r"(count|first|curr|min|max|avg|std|p5|median|p95)=(" + _NUM + r")(\(all same\))?")


def parse_stat_line(line: str) -> StatLine | None:
    """Parse any form of a ``count=`` line; None if the line is not one."""
    text = line.strip()
    if "count=" not in text:
        return None
    values: dict[str, float] = {}
    all_same = False
    for m in _STAT_KV.finditer(text):
        values[m.group(1)] = _f(m.group(2))
        all_same = all_same or m.group(3) is not None
    if "count" not in values:
        return None
    count = int(values["count"])
    return StatLine(
        count=count,
        first_us=values.get("first"),
        curr_us=values.get("curr"),
        min_us=values.get("min"),
        max_us=values.get("max"),
        avg_us=values.get("avg"),
        std_us=values.get("std"),
        all_same=all_same,
        p5_us=values.get("p5"),
        median_us=values.get("median"),
        p95_us=values.get("p95"),
    )


class Coverage(StrEnum):
    FULL = "full"
    PARTIAL = "partial"
    NONE = "none"


@dataclass(frozen=True)
class DelegateApplication:
    """What the tool said about one explicitly applied delegate."""

    delegate: str  # as printed: GPU, NNAPI, Hexagon, XNNPACK, ...
    coverage: Coverage
    delegate_kernels: int | None = None
    line: str = ""


@dataclass(frozen=True)
class NodeReplacement:
    """``Replacing N out of M node(s) with delegate (NAME) node, yielding K partitions``."""

    replaced: int
    total: int
    delegate_node: str
    partitions: int | None
    line: str = ""


@dataclass(frozen=True)
class ProfileRow:
    """One row of a Run Order / Top by ... table. Times in ms, as printed."""

    node_type: str
    name: str
    avg_ms: float
    first_ms: float | None
    start_ms: float | None
    pct: float | None
    cdf_pct: float | None
    mem_kb: float | None
    times_called: int | None


@dataclass(frozen=True)
class NodeTypeRow:
    """One row of the ``Summary by node type`` table."""

    node_type: str
    count: int
    avg_ms: float
    pct: float | None
    cdf_pct: float | None
    mem_kb: float | None
    times_called: int | None


class ProfilePhase(StrEnum):
    INIT = "init"  # "Profiling Info for Benchmark Initialization:"
    RUNS = "runs"  # "Operator-wise Profiling Info for Regular Benchmark Runs:"
    DELEGATE = "delegate"  # "Delegate internal:" (events the delegate reported itself)


@dataclass
class ProfileSection:
    phase: ProfilePhase
    graph: str = "primary"  # "primary" or "subgraph N"
    run_order: list[ProfileRow] = field(default_factory=list)
    top: list[ProfileRow] = field(default_factory=list)
    by_type: list[NodeTypeRow] = field(default_factory=list)
    nodes_executed: int | None = None
    nodes_observed: int | None = None
    timings: StatLine | None = None  # "Timings (microseconds): count=..."
    unparsed_rows: int = 0


@dataclass
class BenchmarkOutput:
    """Everything parsed from one run of the tool. Times in ms."""

    params: dict[str, str] = field(default_factory=dict)
    model_size_mb: float | None = None
    init_session_ms: float | None = None  # "Initialized session in X ms"
    init_ms: float | None = None  # "Inference timings in us: Init: X"
    first_ms: float | None = None
    warmup_avg_ms: float | None = None
    inference_avg_ms: float | None = None
    warmup: StatLine | None = None
    inference: StatLine | None = None
    mem_init_mb: float | None = None
    mem_overall_mb: float | None = None
    mem_wording: str | None = None  # "delta" (newer) or "peak" (TF ~2.2-2.4)
    peak_mem_mb: float | None = None  # --report_peak_memory_footprint
    vmrss_mb: float | None = None
    rss_anon_mb: float | None = None
    rss_file_shmem_mb: float | None = None
    delegates: list[DelegateApplication] = field(default_factory=list)
    replacements: list[NodeReplacement] = field(default_factory=list)
    delegate_lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unconsumed_flags: list[str] = field(default_factory=list)
    profile: list[ProfileSection] = field(default_factory=list)
    tool_version: str | None = None  # where the capture prints one (most builds do not)
    cmdline_flags: dict[str, str] = field(default_factory=dict)  # --flag=value echoed in the log
    text: str = ""

    @property
    def runs_profile(self) -> ProfileSection | None:
        """The primary graph's section for the regular runs (what per-layer tables use)."""
        for sec in self.profile:
            if sec.phase is ProfilePhase.RUNS and sec.graph == "primary":
                return sec
        return None

    @property
    def mem_overall_source(self) -> str | None:
        """Where ``mem_overall_mb`` comes from, in words with the line's own wording (None
        without one)."""
        if self.mem_overall_mb is None:
            return None
        wording = "'Peak memory footprint'" if self.mem_wording == "peak" else "'Memory footprint delta'"
        return f"benchmark_model overall delta of max RSS since tool start ({wording}, MB)"


# --------------------------------------------------------------------------------------
# Line normalisation
# --------------------------------------------------------------------------------------

# logcat framings: threadtime (the default; with -v year a year; with -v uid a uid column), time, brief
_STAMP = r"(?P<stamp>(?:\d{4}-)?\d\d-\d\d\s+\d\d:\d\d:\d\d(?:\.\d+)?)"
_LOGCAT = re.compile(
    rf"^{_STAMP}\s+(?:\S+\s+)?\d+\s+\d+\s+(?P<lvl>[VDIWEF])\s+(?P<tag>[^:]*?)\s*:\s?(?P<msg>.*)$"
)
_LOGCAT_TIME = re.compile(rf"^{_STAMP}\s+(?P<lvl>[VDIWEF])/(?P<tag>[^(]*?)\s*\(\s*\d+\):\s?(?P<msg>.*)$")
_LOGCAT_BRIEF = re.compile(r"^(?P<lvl>[VDIWEF])/(?P<tag>[^(]*?)\s*\(\s*\d+\):\s?(?P<msg>.*)$")
# "I tflite  : msg" with the time stamp and ids cut off (a line pasted from a capture): the tool's tags only
_LOGCAT_BARE = re.compile(
    r"^(?P<lvl>[VDIWEF])\s+(?P<tag>tflite\S*|\S*[Bb]enchmark\S*)\s*:\s(?P<msg>.*)$", re.IGNORECASE)
_LOGCAT_FORMS = (_LOGCAT, _LOGCAT_TIME, _LOGCAT_BRIEF, _LOGCAT_BARE)
# logcat -v long: a "[ stamp pid:tid L/tag ]" header, then the message's lines, then a blank line
LOGCAT_LONG = re.compile(
    rf"^\[ {_STAMP}\s+(?P<pid>\d+):\s*(?P<tid>\d+)\s+(?P<lvl>[VDIWEF])/(?P<tag>.*?)\s*\]$")
_LEVEL_PREFIX = re.compile(r"^(?P<lvl>INFO|WARN|WARNING|ERROR|FATAL|VERBOSE|DEBUG): ?(?P<msg>.*)$")
_LOGCAT_LEVEL = {"V": "VERBOSE", "D": "DEBUG", "I": "INFO", "W": "WARN", "E": "ERROR", "F": "FATAL"}


@dataclass(frozen=True)
class _Line:
    level: str | None  # INFO / WARN / ERROR / FATAL / VERBOSE / None (no prefix)
    msg: str  # without the level or logcat prefix, right-stripped
    raw: str


def logcat_match(line: str) -> re.Match[str] | None:
    for form in _LOGCAT_FORMS:
        if (m := form.match(line)) is not None:
            return m
    return None


def normalise_line(raw: str) -> _Line:
    line = raw.rstrip("\r\n").rstrip()
    level: str | None = None
    m = logcat_match(line)
    if m:
        level = _LOGCAT_LEVEL[m.group("lvl")]
        line = m.group("msg")
    m2 = _LEVEL_PREFIX.match(line)
    if m2:
        lvl = m2.group("lvl")
        level = "WARN" if lvl == "WARNING" else lvl
        line = m2.group("msg")
    return _Line(level, line, raw)


# --------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------

PARAM_LINE = re.compile(r"^(?P<label>[A-Za-z#][^\[\]:]*?)\s*:\s*\[(?P<value>.*)\]$")
_TIMINGS_NEW = re.compile(
    rf"Inference timings in us: Init: (?P<init>{_NUM}), First inference: (?P<first>{_NUM}), "
    rf"Warmup \(avg\): (?P<warm>{_NUM}), Inference \(avg\): (?P<inf>{_NUM})"
)
_TIMINGS_OLD = re.compile(
    rf"Average inference timings in us: Warmup: (?P<warm>{_NUM}), Init: (?P<init>{_NUM}), "
    rf"(?:Inference|no stats): (?P<inf>{_NUM})"
)
_MEM = re.compile(
    rf"(?P<which>Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
    rf"init=(?P<init>{_NUM}) overall=(?P<overall>{_NUM})"
)
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: (?P<v>{_NUM})")
_RSS = re.compile(rf"^(?P<sign>[-+]) (?P<key>VmRSS|RssAnnon|RssAnon|RssFile \+ RssShmem)\s*:\s*(?P<v>{_NUM}) MB")
_SESSION = re.compile(rf"Initialized session in (?P<v>{_NUM}) ?ms\.?")
_SIZE = re.compile(rf"The input model file size \(MB\): (?P<v>{_NUM})")
_RUNNING = re.compile(r"^Running benchmark for at least (?P<n>\d+) iterations")
_APPLIED = re.compile(
    r"^(?:Explicitly applied|Applied) (?P<d>.+?) delegate, and the model graph will be "
    r"(?P<cov>completely|partially) executed (?:by|w/) the delegate"
    r"(?: w/ (?P<k>\d+) delegate kernels)?"
)
_NOT_APPLIED = re.compile(
    r"^Though (?P<d>.+?) delegate is explicitly applied, the model graph will not be executed by the delegate"
)
_REPLACING = re.compile(
    r"Replacing (?P<n>\d+) out of (?P<m>\d+) node\(s\) with delegate \((?P<d>[^)]*)\) node"
    r"(?:, yielding (?P<p>\d+) partitions)?"
)
_VERSION = re.compile(
    r"(?:TensorFlow ?Lite|TF ?Lite|LiteRT)[ _]?(?:runtime )?version(?: is)?\s*[:=]?\s*\[?v?"
    r"(?P<v>\d+\.\d+(?:\.\d+)?(?:[-.+][0-9A-Za-z.]+)?)", re.IGNORECASE)
_CMD_FLAG = re.compile(r"--(?P<k>[A-Za-z_][A-Za-z0-9_]*)=(?P<v>'[^']*'|\"[^\"]*\"|\S*)")
_CREATED_KERNELS = re.compile(r"^Created (?P<k>\d+) (?P<d>\S+) delegate kernels\.?$")
_UNCONSUMED = re.compile(r"Unconsumed cmdline flags:\s*(?P<flags>.*)$")
_ERROR_MARKERS = (
    "Disallowed CPU fallback detected",
    "Failed to apply",
    "Failed to invoke",
    "Failed to allocate tensors",
    "Failed to initialize the interpreter",
    "Failed to mmap model",
    "Failed to load model",
    "Benchmarking failed",
    "CANNOT LINK EXECUTABLE",
    "Segmentation fault",
    "Aborted",
)

_SEC_INIT = "Profiling Info for Benchmark Initialization:"
_SEC_RUNS = "Operator-wise Profiling Info for Regular Benchmark Runs:"
_SEC_DELEGATE = "Delegate internal:"
_TABLE_RUN_ORDER = "Run Order"
_TABLE_TOP = "Top by Computation Time"
_TABLE_TOP_MEM = "Top by Memory Use"
_TABLE_BY_TYPE = "Summary by node type"
_BANNER = re.compile(r"^=+ (?P<title>.+?) =+$")
_SUBGRAPH = re.compile(r"^(?:Primary graph profile:|Subgraph \(index: (?P<i>\d+)\) profile:)$")


def parse_output(text: str) -> BenchmarkOutput:
    """Parse one benchmark_model run's stdout+stderr (any version). Never raises on odd text;
    use :func:`check_output` to turn errors in it into exceptions."""
    parser = _OutputParser(BenchmarkOutput(text=text))
    for raw in text.splitlines():
        parser.feed(normalise_line(raw))
    return parser.finish()


def _is_error(ln: _Line, msg: str) -> bool:
    return ln.level in ("ERROR", "FATAL") or msg.startswith("FATAL") or any(m in msg for m in _ERROR_MARKERS)


class _OutputParser:
    """One pass over the tool's lines. Each ``_*`` handler consumes a family of lines and
    returns True when it did; they are tried in a fixed order (see ``_HANDLERS``)."""

    def __init__(self, out: BenchmarkOutput) -> None:
        self.out = out
        self.stat_lines: list[StatLine] = []
        self.pending_running = False  # a "Running benchmark..." line waits for its count= line
        self.saw_running = False
        self.orphan_stats: list[StatLine] = []  # count= lines with no "Running benchmark" line before them
        self.profile = _ProfileParser(out)

    def feed(self, ln: _Line) -> None:
        msg = ln.msg.strip()
        if self.profile.feed(msg) or not msg:
            return
        if _is_error(ln, msg):
            self.out.errors.append(msg)
        for handler in _HANDLERS:
            if handler(self, msg, ln):
                return

    def finish(self) -> BenchmarkOutput:
        out = self.out
        self.profile.finish()
        if not self.saw_running and self.orphan_stats:  # a capture filtered to its count= lines (grep)
            self.stat_lines = self.orphan_stats
        if len(self.stat_lines) >= 2:  # the tool prints the warm-up series first, then the timed one
            out.warmup, out.inference = self.stat_lines[0], self.stat_lines[1]
        elif self.stat_lines:
            out.inference = self.stat_lines[0]
        if out.first_ms is None and out.warmup is not None:
            warm = out.warmup.summary()
            if warm is not None and warm.first_ms is not None:
                out.first_ms = warm.first_ms
        return out

    def _echo(self, msg: str, ln: _Line) -> bool:
        """A command line echoed in the log (``--graph=…``; the benchmark app's ``Running TensorFlow
        Lite benchmark with args: …``) and a printed tool version."""
        if self.out.tool_version is None and (v := _VERSION.search(msg)) is not None:
            self.out.tool_version = v.group("v")
        if "--graph=" not in msg or "Unconsumed" in msg:
            return False
        for m in _CMD_FLAG.finditer(msg):
            self.out.cmdline_flags.setdefault(m.group("k"), m.group("v").strip("'\"\\"))
        return True

    def _flags(self, msg: str, ln: _Line) -> bool:
        m = _UNCONSUMED.search(msg)
        if m:
            self.out.unconsumed_flags.extend(f for f in m.group("flags").split() if f)
        if m or msg.startswith("Duplicate flags"):
            self.out.warnings.append(msg)
            return True
        return False

    def _series(self, msg: str, ln: _Line) -> bool:
        if _RUNNING.match(msg):
            self.pending_running = self.saw_running = True
            return True
        stat = parse_stat_line(msg) if msg.startswith(("count=", "curr=")) else None
        if stat is None:
            return False
        if self.pending_running:
            self.stat_lines.append(stat)
            self.pending_running = False
        else:
            self.orphan_stats.append(stat)
        return True

    def _timings(self, msg: str, ln: _Line) -> bool:
        out = self.out
        if (m := _TIMINGS_NEW.search(msg)) is not None:
            out.first_ms = _f(m.group("first")) / 1000.0
        elif (m := _TIMINGS_OLD.search(msg)) is None:
            return False
        out.init_ms = _f(m.group("init")) / 1000.0
        out.warmup_avg_ms = _f(m.group("warm")) / 1000.0
        out.inference_avg_ms = _f(m.group("inf")) / 1000.0
        return True

    def _memory(self, msg: str, ln: _Line) -> bool:
        out = self.out
        if (m := _MEM.search(msg)) is not None:
            out.mem_init_mb = _f(m.group("init"))
            out.mem_overall_mb = _f(m.group("overall"))
            out.mem_wording = "peak" if m.group("which").startswith("Peak") else "delta"
        elif (m := _PEAK.search(msg)) is not None:
            out.peak_mem_mb = _f(m.group("v"))
        elif (m := _RSS.match(msg)) is not None:
            key, val = m.group("key"), _f(m.group("v"))
            if key == "VmRSS":
                out.vmrss_mb = val
            elif key.startswith("RssAn"):
                out.rss_anon_mb = val
            else:
                out.rss_file_shmem_mb = val
        else:
            return False
        return True

    def _session(self, msg: str, ln: _Line) -> bool:
        if (m := _SESSION.search(msg)) is not None and msg.startswith("Initialized session"):
            self.out.init_session_ms = _f(m.group("v"))
        elif (m := _SIZE.search(msg)) is not None:
            self.out.model_size_mb = _f(m.group("v"))
        else:
            return False
        return True

    def _delegates(self, msg: str, ln: _Line) -> bool:
        out = self.out
        if (m := _APPLIED.match(msg)) is not None:
            cov = Coverage.FULL if m.group("cov") == "completely" else Coverage.PARTIAL
            k = m.group("k")
            out.delegates.append(DelegateApplication(m.group("d"), cov, int(k) if k else None, msg))
        elif (m := _NOT_APPLIED.match(msg)) is not None:
            out.delegates.append(DelegateApplication(m.group("d"), Coverage.NONE, 0, msg))
            out.warnings.append(msg)
        elif (m := _REPLACING.search(msg)) is not None:
            p = m.group("p")
            out.replacements.append(
                NodeReplacement(int(m.group("n")), int(m.group("m")), m.group("d"), int(p) if p else None, msg)
            )
        elif not (_CREATED_KERNELS.match(msg) or msg.startswith(("Created TensorFlow Lite", "Going to apply"))):
            return False
        out.delegate_lines.append(msg)
        return True

    def _param(self, msg: str, ln: _Line) -> bool:
        if (m := PARAM_LINE.match(msg)) is None or ln.level not in (None, "INFO"):
            return False
        label = re.sub(r"\s+", " ", m.group("label")).strip()
        self.out.params.setdefault(label, m.group("value"))
        return True


_HANDLERS: tuple[Callable[[_OutputParser, str, _Line], bool], ...] = (
    _OutputParser._echo,
    _OutputParser._flags,
    _OutputParser._series,
    _OutputParser._timings,
    _OutputParser._memory,
    _OutputParser._session,
    _OutputParser._delegates,
    _OutputParser._param,
)


# ---- op-profile tables -----------------------------------------------------------------

_PCT = re.compile(rf"^({_NUM})%$")


def _num(cell: str) -> float | None:
    cell = cell.strip()
    m = _PCT.match(cell)
    if m:
        return _f(m.group(1))
    try:
        return float(cell)
    except ValueError:
        return None


def _header_key(cell: str) -> str:
    key = cell.strip().strip("[]").strip().lower()
    return {"avg_ms": "avg ms", "avg %": "avg %", "cdf %": "cdf%", "cdf%": "cdf%", "%": "%",
            "mem kb": "mem kb", "times called": "times called", "node type": "node type"}.get(key, key)


class _ProfileParser:
    """State machine over the op-profiling block (text or CSV; tables selected by header)."""

    def __init__(self, out: BenchmarkOutput) -> None:
        self.out = out
        self.section: ProfileSection | None = None
        self.phase: ProfilePhase | None = None
        self.graph = "primary"
        self.table: str | None = None
        self.columns: list[str] | None = None
        self.csv = False

    def _new_section(self) -> ProfileSection:
        assert self.phase is not None  # internal invariant, not input checking
        sec = ProfileSection(self.phase, self.graph)
        self.out.profile.append(sec)
        self.section = sec
        return sec

    def feed(self, msg: str) -> bool:
        """Consume ``msg`` if it belongs to a profile block; return True if consumed."""
        heading = self._heading(msg)
        if heading is not None:
            return heading
        sec = self.section
        if sec is None:
            return False
        return self._section_line(msg, sec) or self._table_line(msg, sec)

    def _enter(self, phase: ProfilePhase, graph: str | None = None) -> None:
        self.phase, self.section, self.table = phase, None, None
        if graph is not None:
            self.graph = graph

    def _heading(self, msg: str) -> bool | None:
        """Section, subgraph and table headings: True when ``msg`` is one, False when it is not
        profile text at all, None when the caller should look further."""
        if msg.startswith(_SEC_INIT):
            self._enter(ProfilePhase.INIT, "primary")
            return True
        if msg.startswith(_SEC_RUNS):
            self._enter(ProfilePhase.RUNS, "primary")
            return True
        if self.phase is None:
            # Old builds (TF <= 2.1) print the tables with no section heading.
            bm0 = _BANNER.match(msg)
            if not (bm0 and bm0.group("title").strip() in (_TABLE_RUN_ORDER, _TABLE_TOP, _TABLE_BY_TYPE)):
                return False
            self._enter(ProfilePhase.RUNS, "primary")
        if msg.startswith(_SEC_DELEGATE):
            self._enter(ProfilePhase.DELEGATE)
            return True
        if (sm := _SUBGRAPH.match(msg)) is not None:
            self.graph = "primary" if sm.group("i") is None else f"subgraph {sm.group('i')}"
            self.section, self.table = None, None
            return True
        if (bm := _BANNER.match(msg)) is not None:
            title = bm.group("title").strip()
            if self.section is None or (title == _TABLE_RUN_ORDER and self.section.run_order):
                self._new_section()
            self.table = title
            self.columns = None
            return True
        return None

    def _section_line(self, msg: str, sec: ProfileSection) -> bool:
        """The summary lines under a section's tables."""
        if msg.startswith("Memory (bytes):"):
            return True
        if msg.startswith("Number of nodes executed:"):
            sec.nodes_executed = int(msg.split(":", 1)[1].strip() or 0)
        elif msg.startswith("Timings (microseconds):"):
            sec.timings = parse_stat_line(msg.split(":", 1)[1])
        elif (m := re.match(r"^(\d+) nodes observed$", msg)) is not None:
            sec.nodes_observed = int(m.group(1))
        else:
            return False
        self.table = None
        return True

    def _table_line(self, msg: str, sec: ProfileSection) -> bool:
        """A header or a row of the current table."""
        if self.table is None:
            return False
        if not msg:
            return True
        if self.columns is None:
            self.columns = self._header(msg)
            return self.columns is not None
        if self.table == _TABLE_BY_TYPE:
            row_t = self._type_row(msg)
            if row_t is None:
                sec.unparsed_rows += 1
            else:
                sec.by_type.append(row_t)
            return True
        row = self._row(msg)
        if row is None:
            sec.unparsed_rows += 1
        elif self.table == _TABLE_RUN_ORDER:
            sec.run_order.append(row)
        elif self.table == _TABLE_TOP:
            sec.top.append(row)
        return True

    def finish(self) -> None:
        self.phase = None

    def _header(self, msg: str) -> list[str] | None:
        if msg.startswith("[") or "\t[" in msg or msg.lstrip().startswith("["):
            cells = [c for c in re.split(r"\t|\s{2,}", msg.strip()) if c.strip()]
            if all(c.strip().startswith("[") for c in cells):
                self.csv = False
                return [_header_key(c) for c in cells]
        if msg.lower().startswith("node type,"):
            self.csv = True
            return [_header_key(c) for c in msg.split(", ")]
        return None

    def _cells(self, msg: str) -> list[str] | None:
        assert self.columns is not None
        ncols = len(self.columns)
        if self.csv:
            return _split_anchored(msg, ncols, sep=r",\s*")
        if "\t" in msg:
            cells = [c.strip() for c in msg.strip("\n").split("\t")]
            if cells and cells[0] == "":
                cells = cells[1:]
            if len(cells) > ncols:  # a tab inside the name: keep it in the last column
                cells = [*cells[: ncols - 1], "\t".join(cells[ncols - 1:])]
            return cells if len(cells) == ncols else None
        return _split_anchored(msg, ncols, sep=r"\s+")

    def _row(self, msg: str) -> ProfileRow | None:
        cells = self._cells(msg)
        if cells is None or self.columns is None:
            return None
        c = dict(zip(self.columns, cells, strict=True))
        avg = _num(c.get("avg ms", ""))
        if avg is None:
            return None
        times = _num(c.get("times called", ""))
        return ProfileRow(
            node_type=c.get("node type", "").strip(),
            name=_strip_name(c.get("name", "")),
            avg_ms=avg,
            first_ms=_num(c["first"]) if "first" in c else None,
            start_ms=_num(c["start"]) if "start" in c else None,
            pct=_num(c.get("%", "")),
            cdf_pct=_num(c.get("cdf%", "")),
            mem_kb=_num(c.get("mem kb", "")),
            times_called=None if times is None else int(times),
        )

    def _type_row(self, msg: str) -> NodeTypeRow | None:
        cells = self._cells(msg)
        if cells is None or self.columns is None:
            return None
        c = dict(zip(self.columns, cells, strict=True))
        avg, count = _num(c.get("avg ms", "")), _num(c.get("count", ""))
        if avg is None or count is None:
            return None
        times = _num(c.get("times called", ""))
        return NodeTypeRow(
            node_type=c.get("node type", "").strip(),
            count=int(count),
            avg_ms=avg,
            pct=_num(c.get("avg %", "")),
            cdf_pct=_num(c.get("cdf%", "")),
            mem_kb=_num(c.get("mem kb", "")),
            times_called=None if times is None else int(times),
        )


def _strip_name(name: str) -> str:
    return name.strip()


_CELL_NUM = rf"(?:{_NUM})%?"


def _split_anchored(msg: str, ncols: int, sep: str) -> list[str] | None:
    """Split a row whose first column (node type) and, for 8/9-column tables, last column
    (name) may contain the separator: anchor on the run of numeric cells in the middle."""
    text = msg.strip()
    if ncols in (8, 9):  # node type, [start], first, avg, %, cdf%, mem, times, name
        nums = ncols - 2
        pat = rf"^(?P<head>.+?){sep}" + sep.join([f"({_CELL_NUM})"] * nums) + rf"{sep}(?P<tail>.*)$"
        m = re.match(pat, text)
        if not m:
            return None
        return [m.group("head")] + [m.group(i) for i in range(2, 2 + nums)] + [m.group("tail")]
    if ncols == 7:  # node type, count, avg, avg %, cdf %, mem, times
        pat = rf"^(?P<head>.+?){sep}" + sep.join([f"({_CELL_NUM})"] * 6) + r"\s*$"
        m = re.match(pat, text)
        if not m:
            return None
        return [m.group("head")] + [m.group(i) for i in range(2, 8)]
    return None


def parse_profile_csv(text: str) -> list[ProfileSection]:
    """Parse a file written by ``--profiling_output_csv_file`` (same sections as stdout,
    tables comma-separated)."""
    return parse_output(text).profile
