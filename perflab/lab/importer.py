"""``perflab import``: captures measured elsewhere become IMPORTED cells of a run folder.

A capture is a saved log of TFLite's ``benchmark_model`` (any version: with or without op
tables, tables cut short, old and new wordings) or a logcat capture of the tool or the TFLite
benchmark app, possibly holding several runs; a ``getprop`` dump names the phone. Each run in a
capture becomes one cell carrying what the capture holds (init, first, warm-up and inference
means, std, count, the tool's memory figures, the op profile), what it does not (each missing
with its reason) and its provenance (docs/import.md, docs/result_format.md /7).

:func:`build_run` is pure (texts and options in, a RunRecord out); :func:`read_capture` and
:func:`import_captures` are the I/O edges. The log is parsed by perflab.formats.benchmark_output,
the one parser of the tool's output.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from perflab import __version__
from perflab.core.files import read_regular_bytes
from perflab.devices.android import parse_getprop, props_extra
from perflab.errors import SourceLocation, UserInputError
from perflab.formats.benchmark_output import BenchmarkOutput, StatLine, parse_output
from perflab.formats.captures import CaptureRun, split_capture
from perflab.lab.cell import delegate_records
from perflab.rules.derive import finalize_cells
from perflab.rules.device import IMPORTED_KIND, IMPORTED_NOTE
from perflab.scenario.schema import Delegate, Variant
from perflab.store.layer_records import LayerPassRecord, LayerRow, LayersRecord
from perflab.store.results import (
    CellRecord,
    CellStatus,
    DeviceRecord,
    LatencyRecord,
    ModelRecord,
    PlannedCell,
    ProvenanceRecord,
    RunRecord,
    ScenarioRecord,
    TelemetryRecord,
    WarningRecord,
    artifact_key,
)
from perflab.store.runfolder import RunFolder
from perflab.tracing.opprofile import TableState, op_profile

#: A capture larger than this is refused unread (a real benchmark log is kilobytes; a logcat dump megabytes)
MAX_CAPTURE_BYTES = 64 * 1024 * 1024
MAX_PROPS_BYTES = 4 * 1024 * 1024
#: what an imported cell's delegate and variant may be: what a scenario may name (its cell ids alike)
DELEGATES: tuple[str, ...] = tuple(d.value for d in Delegate)
VARIANTS: tuple[str, ...] = tuple(v.value for v in Variant)
_SERIES = "back_to_back"  # a capture's timed runs are back to back (the tool does not pace)


@dataclass(frozen=True)
class CaptureFile:
    """One capture as read: its name (as given), bytes' hash and size, and its text."""

    name: str
    sha256: str
    size_bytes: int
    text: str


@dataclass(frozen=True)
class ZooEntry:
    """A zoo artefact an imported model may be linked to (perflab.zoo's shipped files)."""

    name: str  # espcn_x2
    family: str
    scale: int
    variant: str
    file_name: str  # espcn_x2_fp32.tflite
    sha256: str | None = None


@dataclass(frozen=True)
class ImportOptions:
    device: str
    soc: str | None = None
    model: str | None = None  # a name, or the model's file (then matched to the zoo by sha256)
    model_sha256: str | None = None  # of --model's file, when it is one
    variant: str | None = None
    delegate: str | None = None
    lr_size: tuple[int, int] | None = None  # (width, height) of the LR input, when the capture does not say
    props_name: str | None = None
    props_sha256: str | None = None
    props: dict[str, str] = field(default_factory=dict)
    zoo: tuple[ZooEntry, ...] = ()


# --------------------------------------------------------------------------------------------- I/O


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def decode_capture(name: str, data: bytes) -> str:
    """A capture's bytes as text, or a UserInputError naming the file (and line) when it is not a
    text log: binary (NUL bytes or mostly control bytes) or not UTF-8 (pure)."""
    where = SourceLocation(name, None, None)
    if not data.strip():
        raise UserInputError("the capture is empty", where)
    head = data[:65536]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserInputError("UTF-16 text (a PowerShell redirect?), not UTF-8; save the capture as UTF-8", where)
    if b"\x00" in head:
        raise UserInputError("a binary file (NUL bytes), not a benchmark_model or logcat text capture", where)
    ctrl = sum(1 for b in head if b < 32 and b not in (9, 10, 13, 27))
    if ctrl * 20 > len(head):
        raise UserInputError("a binary file (control bytes), not a benchmark_model or logcat text capture", where)
    try:
        return _ANSI.sub("", data.decode("utf-8-sig"))  # logcat -v color
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserInputError(f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the capture as UTF-8",
                             SourceLocation(name, line, None)) from None


def read_capture(path: Path) -> CaptureFile:
    """Read one capture the user named, never more than MAX_CAPTURE_BYTES + 1 bytes."""
    data = read_regular_bytes(path, max_bytes=MAX_CAPTURE_BYTES)
    return CaptureFile(path.name, hashlib.sha256(data).hexdigest(), len(data), decode_capture(str(path), data))


def read_props(path: Path) -> tuple[str, str, dict[str, str]]:
    """A getprop dump: (file name, sha256, properties); one that holds no ``[key]: [value]`` line
    is refused."""
    data = read_regular_bytes(path, max_bytes=MAX_PROPS_BYTES, field="--props")
    text = decode_capture(str(path), data)
    props = parse_getprop(text) or _build_props(text)
    if not props:
        raise UserInputError("no '[key]: [value]' line: not a getprop dump", SourceLocation(str(path), None, "--props"))
    return path.name, hashlib.sha256(data).hexdigest(), props


_BUILD_PROP = re.compile(r"^(?P<k>(?:ro|persist|sys|vendor)\.[\w.\-]+)\s*[=:]\s*(?P<v>.*?)\s*$")


def _build_props(text: str) -> dict[str, str]:
    """``key=value`` lines (a build.prop, or a farm's flattened dump): the fallback when a dump has
    no ``[key]: [value]`` line."""
    return {m.group("k"): m.group("v") for ln in text.splitlines() if (m := _BUILD_PROP.match(ln.strip()))}


def zoo_entries(with_sha: bool) -> tuple[ZooEntry, ...]:
    """The zoo's shipped artefacts (their sha256 only when asked: it reads every file)."""
    from perflab.core.files import sha256_file
    from perflab.zoo.registry import list_models

    out: list[ZooEntry] = []
    for info in list_models():
        for v in VARIANTS:
            p = info.variant_path(v)
            if p.is_file():
                out.append(ZooEntry(info.name, info.family, info.scale, v, p.name, sha256_file(p) if with_sha else None))
    return tuple(out)


def import_captures(paths: Sequence[Path], opts: ImportOptions, out_dir: Path) -> RunRecord:
    """Read every capture (all are checked before the folder is made), build the run and write
    its folder: results.json, and each cell's run of the capture in logs/."""
    files = [read_capture(p) for p in paths]
    runs = _runs(files)
    run = _build(files, runs, opts, datetime.now(UTC))
    folder = RunFolder.create(out_dir)
    for cell, r in zip(run.cells, runs, strict=True):
        folder.write_log(folder.cell_log(cell.artifact_key), r.run.text)
    folder.write_results(run)
    return run


# -------------------------------------------------------------------------------------------- pure


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Run:
    file: CaptureFile
    run: CaptureRun
    logcat: bool
    out: BenchmarkOutput


def _runs(files: Sequence[CaptureFile]) -> list[_Run]:
    """Every run of the tool in the captures, parsed once; a capture with none is refused."""
    out: list[_Run] = []
    for f in files:
        cap = split_capture(f.text)
        found = [_Run(f, r, cap.logcat, _finite(o)) for r in cap.runs if _is_run(o := parse_output(r.text))]
        if not found:
            raise UserInputError("no benchmark_model or benchmark app output in it (no parameter echo, timings "
                                 "or tool lines)", SourceLocation(f.name, None, None))
        out.extend(found)
    return out


def _is_run(out: BenchmarkOutput) -> bool:
    """The lines hold a run of the tool (not only stray lines around it)."""
    return bool(out.params or out.cmdline_flags or out.inference_avg_ms is not None or out.inference is not None
                or out.init_session_ms is not None or out.errors or out.profile)


def _graph(out: BenchmarkOutput) -> str | None:
    """The model's path as the log names it; None for none, or a file descriptor (``fd:…``)."""
    g = out.params.get("Graph") or out.cmdline_flags.get("graph")
    if not g:
        m = re.search(r"Loaded model (\S+)", out.text)
        g = m.group(1) if m else None
    return None if not g or re.match(r"fd:\d", g) else g


_TIMES = frozenset({"init_session_ms", "init_ms", "first_ms", "warmup_avg_ms", "inference_avg_ms"})


def _finite(out: BenchmarkOutput) -> BenchmarkOutput:
    """The parsed run with every number the tool printed as nan or inf (an empty series' average:
    ``Warmup (avg): -nan`` with no warm-up runs), and every negative time or spread, made None, so
    it is missing, never stored (a memory delta may be negative: only its nan/inf go)."""
    def fin(v: float | None) -> float | None:
        return v if v is None or math.isfinite(v) else None

    def time(v: float | None) -> float | None:
        return v if v is None or (math.isfinite(v) and v >= 0) else None

    def stat(st: StatLine | None) -> StatLine | None:
        if st is None:
            return None
        return replace(st, first_us=time(st.first_us), curr_us=time(st.curr_us), min_us=time(st.min_us),
                       max_us=time(st.max_us), avg_us=time(st.avg_us), std_us=time(st.std_us), p5_us=time(st.p5_us),
                       median_us=time(st.median_us), p95_us=time(st.p95_us))

    clean = copy.copy(out)
    for f in fields(out):
        v = getattr(out, f.name)
        if isinstance(v, float):
            setattr(clean, f.name, time(v) if f.name in _TIMES else fin(v))
    clean.warmup, clean.inference = stat(out.warmup), stat(out.inference)
    return clean


def _on(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("1", "true")


_DELEGATE_NODES = {"tflitegpudelegatev2": "gpu", "tflitennapidelegate": "nnapi", "tflitehexagondelegate": "hexagon",
                   "tflitexnnpackdelegate": "xnnpack"}
_DELEGATE_WORDS = {"gpu": "gpu", "nnapi": "nnapi", "hexagon": "hexagon", "xnnpack": "xnnpack"}


def log_delegate(out: BenchmarkOutput) -> tuple[str | None, str]:
    """The delegate the log says the run used, and how it says so (pure). ``cpu`` where XNNPACK
    was turned off and nothing else applied; None where the log does not say."""
    for d in out.delegates:  # "Explicitly applied GPU delegate, ..."
        key = _DELEGATE_WORDS.get(d.delegate.strip().lower())
        if key and d.coverage.value != "none":
            return key, f"the log: {d.line}"
    for name, key in (("use_gpu", "gpu"), ("use_nnapi", "nnapi"), ("use_hexagon", "hexagon")):
        if _on(out.cmdline_flags.get(name)):
            return key, f"the command line in the log: --{name}={out.cmdline_flags[name]}"
    for label, key in (("Use gpu", "gpu"), ("Use NNAPI", "nnapi"), ("Use Hexagon", "hexagon")):
        val = next((v for k, v in out.params.items() if k.lower() == label.lower()), None)
        if _on(val):
            return key, f"the parameter echo: {label}: [{val}]"
    for r in out.replacements:
        key = _DELEGATE_NODES.get(r.delegate_node.strip().lower())
        if key:
            return key, f"the log: {r.line}"
    xnn_flag = out.cmdline_flags.get("use_xnnpack")
    xnn_param = next((v for k, v in out.params.items() if k.lower() == "use xnnpack"), None)
    if _on(xnn_flag) is False or _on(xnn_param) is False:
        return "cpu", "the log turns XNNPACK off and applies no delegate"
    if _on(xnn_flag) or _on(xnn_param):
        return "xnnpack", "the log turns XNNPACK on"
    return None, ""


def _threads(out: BenchmarkOutput) -> int | None:
    raw = out.cmdline_flags.get("num_threads") or out.params.get("Num threads") or out.params.get(
        "#threads used for CPU inference")
    try:
        n = int(raw) if raw is not None else None
    except ValueError:
        return None
    return n if n is not None and n > 0 else None


def _lr_size(out: BenchmarkOutput) -> tuple[int, int] | None:
    """(width, height) of an NHWC input shape echoed in the log (``--input_layer_shape=1,270,480,3``)."""
    raw = out.cmdline_flags.get("input_layer_shape") or out.params.get("Input shapes") or ""
    dims = [int(x) for x in re.findall(r"\d+", raw.split(":")[0])]
    if len(dims) == 4 and dims[1] > 0 and dims[2] > 0:
        return dims[2], dims[1]
    return None


_ZOO_NAME = re.compile(rf"^(?P<family>[a-z][a-z0-9]*)_x(?P<scale>[2-4])(?:_(?P<variant>{'|'.join(VARIANTS)}))?$")


@dataclass(frozen=True)
class Identity:
    model: str
    family: str
    variant: str
    delegate: str
    scale: int | None
    sha256: str | None
    zoo: ZooEntry | None
    notes: list[str]
    missing: dict[str, str]


def _safe_name(name: str | None) -> str | None:
    """A model name fit for a cell id (``<model>.<variant>.<delegate>``): letters, digits, ``_``, ``-``."""
    return re.sub(r"[^A-Za-z0-9_\-]+", "_", name).strip("_") or None if name else None


def _zoo_link(name: str | None, opts: ImportOptions, notes: list[str]) -> ZooEntry | None:
    """The zoo artefact the model is: by --model's sha256, by file name, or by perflab's pushed
    name ``<family>_x<scale>`` and the variant."""
    if opts.model_sha256 and (z := next((z for z in opts.zoo if z.sha256 == opts.model_sha256), None)):
        notes.append(f"model linked to the zoo's {z.file_name} by sha256")
        return z
    if name and (z := next((z for z in opts.zoo if z.file_name.removesuffix(".tflite") == name), None)):
        notes.append(f"model linked to the zoo's {z.file_name} by file name")
        return z
    m = _ZOO_NAME.match(name or "")
    if m is not None and m.group("variant") is None and opts.variant:
        fam, sc = m.group("family"), int(m.group("scale"))
        if z := next((z for z in opts.zoo if (z.family, z.scale, z.variant) == (fam, sc, opts.variant)), None):
            notes.append(f"model linked to the zoo's {z.file_name} by file name and --variant")
            return z
    return None


def _delegate(out: BenchmarkOutput, opts: ImportOptions, notes: list[str]) -> str:
    log_del, how = log_delegate(out)
    if opts.delegate and log_del and opts.delegate != log_del:
        notes.append(f"{how} says {log_del}; --delegate {opts.delegate} was given and is used")
    elif log_del and not opts.delegate:
        notes.append(f"delegate {log_del} from {how}")
    delegate = opts.delegate or log_del
    if delegate is None:
        notes.append("the log names no delegate and none was given: taken as the CPU (the tool's default)")
    return delegate or "cpu"


def identify(out: BenchmarkOutput, opts: ImportOptions) -> Identity:
    """Model, variant and delegate of one run (pure): an option given wins, else what the log says
    (graph path, delegate lines, flags); a model matching a zoo artefact by file name or sha256 is
    linked to it. Where an option and the log disagree the note says so."""
    notes: list[str] = []
    missing: dict[str, str] = {}
    graph = _graph(out)
    stem = PurePosixPath(graph).name.removesuffix(".tflite") if graph else None
    opt_stem = PurePosixPath(opts.model).name.removesuffix(".tflite") if opts.model else None
    name = _safe_name(opt_stem or stem)
    if opt_stem and stem and opt_stem != stem:
        notes.append(f"the log's graph is {graph}; --model {opts.model} was given and is used")
    zoo = _zoo_link(name, opts, notes)
    m = _ZOO_NAME.match(name or "")
    scale: int | None
    file_variant: str | None
    if zoo is not None:
        model, family, scale, file_variant = zoo.name, zoo.family, zoo.scale, zoo.variant
    else:
        model, family = name or "unknown", m.group("family") if m else "user"
        scale, file_variant = (int(m.group("scale")), m.group("variant")) if m else (None, None)
        if m is not None:  # <family>_x<scale>[_<variant>]: the variant is not part of the model's name
            model = f"{family}_x{scale}"
    if not name:
        missing["model"] = "the capture names no graph and no --model was given"
    if opts.variant and file_variant and opts.variant != file_variant:
        notes.append(f"the model file is the {file_variant} variant; --variant {opts.variant} was given and is used")
    variant = opts.variant or file_variant
    if variant is None:
        missing["variant"] = "neither the capture's file name nor --variant says which variant"
    if scale is None:
        missing["scale"] = "the model's upscaling factor is not in its name (…_x2…) nor in the zoo"
    sha = zoo.sha256 if zoo is not None and zoo.sha256 else opts.model_sha256
    return Identity(model, family, variant or "unknown", _delegate(out, opts, notes), scale, sha, zoo, notes, missing)


def _ms(value_us: float | None) -> float | None:
    return None if value_us is None else value_us / 1000.0


def _stat_ms(stat: StatLine | None, avg_ms: float | None) -> tuple[float | None, ...]:
    """(mean, std, min, max, median, p95) in ms from the timed series' count= line; the summary
    line's average where there is none."""
    if stat is None:
        return avg_ms, None, None, None, None, None
    one = stat.count == 1 or stat.all_same  # "count=1 curr=X", "(all same)"
    mean = _ms(stat.avg_us) or (_ms(stat.curr_us) if one else None) or avg_ms
    std = _ms(stat.std_us) if stat.std_us is not None else (0.0 if one else None)
    return mean, std, _ms(stat.min_us), _ms(stat.max_us), _ms(stat.median_us), _ms(stat.p95_us)


def impossible_stat(mean_ms: float | None, min_ms: float | None, max_ms: float | None, median_ms: float | None,
                    p95_ms: float | None) -> str | None:
    """Why a count= line's figures cannot all be true (pure): min above max, or a mean, median or
    p95 outside [min, max] (beyond the printed rounding); None when they fit."""
    if min_ms is None or max_ms is None:
        return None
    if min_ms > max_ms:
        return f"min {min_ms:g} ms > max {max_ms:g} ms"
    slack_ms = 1e-3  # the tool prints whole microseconds
    for name, v in (("avg", mean_ms), ("median", median_ms), ("p95", p95_ms)):
        if v is not None and not min_ms - slack_ms <= v <= max_ms + slack_ms:
            return f"{name} {v:g} ms outside [min {min_ms:g}, max {max_ms:g}] ms"
    return None


def _latency(out: BenchmarkOutput) -> LatencyRecord:
    """The timed series as the capture states it: the ``count=`` line where printed, else the
    summary line's average (n unknown)."""
    missing: dict[str, str] = {}
    stat = out.inference
    mean, std, lo, hi, median, p95 = _stat_ms(stat, out.inference_avg_ms)
    no_line = "the capture has no count= line for the timed runs (only the summary line's averages)"
    not_time = "(or not a time: nan, inf, negative)"
    if (why_not := impossible_stat(mean, lo, hi, median, p95)) is not None:
        # a line no tool prints (edited, or two runs' lines spliced): nothing of it is kept
        mean, std, lo, hi, median, p95 = out.inference_avg_ms, None, None, None, None, None
        missing.update(dict.fromkeys(("std", "min", "max", "median", "p95"),
                                     f"the capture's count= line is impossible ({why_not}): not a measurement"))
    summary_only = "the tool prints summary statistics, not per-run samples"
    for key, val, words in (("std", std, no_line if stat is None else f"the count= line prints no std {not_time}"),
                            ("min", lo, no_line if stat is None else f"the count= line prints no min {not_time}"),
                            ("max", hi, no_line if stat is None else f"the count= line prints no max {not_time}"),
                            ("median", median, summary_only + " (newest builds add median=; this one does not)"),
                            ("p95", p95, summary_only)):
        if val is None:
            missing.setdefault(key, words)
    if stat is None:
        missing["n"] = no_line
    for key in ("p10", "p90", "p99", "mad"):
        missing[key] = summary_only
    no_warmup = out.warmup is not None and out.warmup.count == 0  # --warmup_runs=0: "First inference: 0"
    first = None if no_warmup and not out.first_ms else out.first_ms
    for key, val, words in (("mean", mean, "holds no inference timings (the run failed or the log was cut short)"),
                            ("init", out.init_ms, f"prints no Init time {not_time}"),
                            ("first", first, f"prints no first-inference time {not_time}"),
                            ("warmup_mean", out.warmup_avg_ms, f"prints no warm-up average {not_time}")):
        if val is None:
            missing[key] = f"the capture {words}"
    if no_warmup:
        for key in ("first", "warmup_mean"):
            missing[key] = "the run had no warm-up runs (count=0): the tool's figure for it is not a measurement"
    cv = std / mean * 100.0 if std is not None and mean else None
    if cv is None:
        missing["cv_pct"] = "needs the mean and std"
    return LatencyRecord(mode=_SERIES, source="tool summary", init=out.init_ms, first=first,
                         warmup_mean=None if no_warmup else out.warmup_avg_ms, median=median, mean=mean, p95=p95, min=lo, max=hi, std=std,
                         cv_pct=cv, n=stat.count if stat is not None else 0, missing=missing)


def _telemetry(out: BenchmarkOutput) -> TelemetryRecord:
    missing: dict[str, str] = {}
    mem, mem_src = None, None
    if out.peak_mem_mb is not None:
        mem, mem_src = out.peak_mem_mb, "imported: benchmark_model overall peak footprint (periodic monitoring, MB)"
    else:
        missing["mem_peak_mb"] = ("the capture prints no peak memory footprint (--report_peak_memory_footprint "
                                  "was off); no sampler ran")
    tool_mem, tool_src = None, None
    if out.mem_overall_mb is not None:
        tool_mem = out.mem_overall_mb
        tool_src = f"imported: {out.mem_overall_source}"
    else:
        missing["tool_mem_mb"] = "the capture prints no memory footprint line"
    why = "an imported capture: perflab's sampler did not run"
    for key in ("cpu_load_pct", "device_cpu_busy_pct", "gpu_busy_pct", "start_temp_c", "temp_max_c",
                "current_ma", "power_mw", "energy_mj"):
        missing[key] = why
    return TelemetryRecord(mem_peak_mb=mem, mem_source=mem_src, tool_mem_mb=tool_mem, tool_mem_source=tool_src,
                           missing=missing)


def _layers(out: BenchmarkOutput) -> LayersRecord:
    prof = op_profile(out)  # the one rule for a table whole, cut short or missing (also profile parse's)
    sec = out.runs_profile
    rows = [LayerRow(index=i, node_type=r.node_type, name=r.name, avg_ms=r.avg_ms, first_ms=r.first_ms, pct=r.pct,
                     times_called=r.times_called, method="op_profile")
            for i, r in enumerate(sec.run_order if sec is not None else [])]
    total: float | None = None
    if sec is not None and sec.timings is not None:
        t = sec.timings
        total = (t.avg_us if t.avg_us is not None else t.curr_us)
        total = None if total is None else total / 1000.0
    source = "op profile (imported capture)" if rows else "none"
    why = None if prof.table is TableState.COMPLETE else prof.table_note
    note = [] if why is None or not rows else [why]
    op = LayerPassRecord(method="op_profile", source=source, rows=rows, total_ms=total, notes=note,
                         missing=None if rows else why)
    return LayersRecord(source=source, total_ms=total, rows=rows, missing=None if rows else why, passes=[op])


def _device(opts: ImportOptions) -> DeviceRecord:
    p = opts.props
    sdk = p.get("ro.build.version.sdk", "")
    extra = props_extra(p, {"imported": "a phone perflab did not measure: its cells come from imported captures"})
    return DeviceRecord(serial=opts.device, kind=IMPORTED_KIND, model=p.get("ro.product.model") or opts.device,
                        soc=opts.soc or p.get("ro.soc.model") or p.get("ro.board.platform") or None,
                        abi=p.get("ro.product.cpu.abi") or None, sdk=int(sdk) if sdk.isdigit() else None,
                        fingerprint=p.get("ro.build.fingerprint") or None, rooted=None, extra=extra)


_STAMP_YEAR = re.compile(r"^(\d{4})-(\d\d)-(\d\d)\s+(\d\d):(\d\d):(\d\d)")


def _captured(stamp: str | None, logcat: bool) -> tuple[str | None, str | None]:
    """(the phone's local date and time, None) where the capture dates itself with a year (logcat
    prints no zone, so never UTC); else (None, why)."""
    if stamp is not None and (m := _STAMP_YEAR.match(stamp)) is not None:
        y, mo, d, h, mi, s = (int(x) for x in m.groups())
        try:
            return datetime(y, mo, d, h, mi, s).strftime("%Y-%m-%dT%H:%M:%S"), None
        except ValueError:
            return None, f"the logcat time stamp {stamp!r} is not a date"
    if stamp is not None:
        return None, (f"logcat stamps its lines {stamp!r} without a year (capture with 'logcat -v year' to keep "
                      "the date)")
    return None, "the capture prints no date" + (" (no logcat time stamps)" if logcat else "")


def _failure(out: BenchmarkOutput) -> str | None:
    if out.inference_avg_ms is not None or (out.inference is not None and out.inference.count > 0):
        return None
    if out.errors:
        return "the captured run failed: " + out.errors[0]
    return "the capture holds no inference timings (the run did not finish, or the log was cut short)"


def build_run(files: Sequence[CaptureFile], opts: ImportOptions, *, now_utc: datetime) -> RunRecord:
    """The run record of the captures (pure). Each run of the tool in them is one cell; a capture
    with none is refused, naming the file."""
    return _build(files, _runs(files), opts, now_utc)


def _build(files: Sequence[CaptureFile], runs: Sequence[_Run], opts: ImportOptions, now_utc: datetime) -> RunRecord:
    device = _device(opts)
    cells: list[CellRecord] = []
    seen: dict[str, str] = {}
    sizes: list[tuple[int, int]] = []
    scales: list[int] = []
    for one in runs:
        f, r, logcat, out = one.file, one.run, one.logcat, one.out
        ident = identify(out, opts)
        cell_id = f"{ident.model}.{ident.variant}.{ident.delegate}"
        where = f"{f.name}:{r.first_line}"
        if cell_id in seen:
            raise UserInputError(f"a second run of {cell_id} on {opts.device} (the first is at {seen[cell_id]}); "
                                 "import it into another --out folder, or tell them apart with --variant",
                                 SourceLocation(f.name, r.first_line, None))
        seen[cell_id] = where
        size = _lr_size(out) or opts.lr_size
        if size is not None:
            sizes.append(size)
        if ident.scale is not None:
            scales.append(ident.scale)
        captured, date_why = _captured(r.stamp, logcat)
        table = op_profile(out)
        prov_missing = {k: v for k, v in {
            "tool_version": None if out.tool_version else "the capture does not print the tool's version",
            "captured_utc": date_why or "logcat prints the phone's local time with no zone (captured_local)",
            "props_file": None if opts.props_name else "no --props getprop dump was given",
        }.items() if v}
        prov = ProvenanceRecord(
            source_file=f.name, sha256=f.sha256, size_bytes=f.size_bytes,
            format="logcat" if logcat else "benchmark_model",
            tool="TFLite benchmark app or benchmark_model" if logcat else "benchmark_model",
            tool_version=out.tool_version, captured_local=captured, imported_utc=_iso(now_utc),
            props_file=opts.props_name, props_sha256=opts.props_sha256,
            notes=[f"run at line {r.first_line} of {f.name}", table.table_note or f"op table {table.table.value}",
                   *ident.notes],
            missing=prov_missing)
        lat = _latency(out)
        fail = _failure(out)
        warnings = [WarningRecord(code="imported", message=IMPORTED_NOTE)]
        warnings += [WarningRecord(code="tool", message=w) for w in out.warnings]
        model_missing = dict(ident.missing)
        if ident.sha256 is None:
            model_missing["sha256"] = "the model file was not given (--model FILE) nor matched to the zoo"
        cells.append(CellRecord(
            cell_id=cell_id, artifact_key=artifact_key(opts.device, cell_id, 1), device=device,
            model=ModelRecord(name=ident.model, family=ident.family, variant=ident.variant, scale=ident.scale or 0,
                              sha256=ident.sha256, missing=model_missing),
            delegate=ident.delegate, threads=_threads(out) or 0,
            status=CellStatus.OK if fail is None else CellStatus.FAILED, reason=fail,
            baseline=ident.family == "bicubic", latency_ms=lat if fail is None else None,
            series={_SERIES: lat} if fail is None else {}, telemetry=_telemetry(out), layers=_layers(out),
            delegates=delegate_records(out.delegate_lines), warnings=warnings, provenance=prov))
    run_warn: list[WarningRecord] = []
    lr = sizes[0] if sizes else None
    if lr is None:
        lr = (1, 1)
        run_warn.append(WarningRecord(code="imported_lr_size", message=(
            "the captures do not state the model's input size and no --lr WxH was given: the scenario's "
            "1×1 frame size is a placeholder, not a measurement")))
    scale = scales[0] if scales and 2 <= scales[0] <= 4 else 2
    if not scales:
        run_warn.append(WarningRecord(code="imported_scale", message=(
            "no imported model names its upscaling factor: the scenario's scale 2 is a placeholder")))
    # The scenario is the work the captures measured (so two imports of the same work compare
    # as one scenario); which captures they were is each cell's provenance.
    text = "\n".join(["# perflab import: the work the imported captures measured", f"lr: {lr[0]}x{lr[1]}",
                      f"scale: {scale}", "cells:", *sorted(f"  - {c.cell_id}" for c in cells)]) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    captures = hashlib.sha256("".join(f.sha256 for f in files).encode()).hexdigest()
    dev_cells = [c for c in cells if c.device.serial == opts.device]
    return RunRecord(
        perflab_version=__version__, run_id=f"import-{_iso(now_utc).replace(':', '')}-{captures[:8]}",
        scenario=ScenarioRecord(name="import", file="(perflab import)", sha256=digest, text=text,
                                lr_width=lr[0], lr_height=lr[1], scale=scale),
        started_utc=_iso(now_utc), finished_utc=_iso(now_utc), host={}, devices=[device],
        planned=[PlannedCell(serial=opts.device, cell_id=c.cell_id) for c in dev_cells],
        cells=finalize_cells(cells, fps=None),  # deltas vs an imported bicubic on the same phone and delegate
        warnings=[WarningRecord(code="imported", message=IMPORTED_NOTE), *run_warn], exit_code=0)


__all__ = ["MAX_CAPTURE_BYTES", "CaptureFile", "ImportOptions", "ZooEntry", "build_run",
           "decode_capture", "identify", "import_captures", "log_delegate", "read_capture", "read_props",
           "zoo_entries"]
