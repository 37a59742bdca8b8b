"""What the emulated benchmark_model prints, in the real tool's formats: log lines (INFO:/WARN:
on stdout, ERROR:/FATAL: and the runtime's lines on stderr), the parameter echo, ``count=``
statistics, the memory footprint block, and op-profile tables. Formatting only: what the
numbers are is measured elsewhere (run, opprofile)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from perflab.emulator.benchmark_model.flags import Flag

EMULATOR_VERSION = "1"


def _out(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def info(msg: str) -> None:
    _out("INFO: " + msg)


def warn(msg: str) -> None:
    _out("WARN: " + msg)


def blank() -> None:
    _out("")


def error(msg: str) -> None:
    sys.stderr.write("ERROR: " + msg + "\n")
    sys.stderr.flush()


def runtime_log(msg: str, level: str = "INFO") -> None:
    """Messages from the TFLite runtime's minimal logger go to stderr."""
    sys.stderr.write(f"{level}: {msg}\n")
    sys.stderr.flush()


class Abort(Exception):
    """The tool stops here; its messages are already printed."""

    def __init__(self, code: int = 1) -> None:
        self.code = code


def fail(*lines: str) -> Abort:
    """Print the tool's ERROR lines and its closing line; the exception to raise (exit 1)."""
    for line in lines:
        error(line)
    error("Benchmarking failed.")
    return Abort(1)


def fatal(message: str) -> Abort:
    """A TFLITE_LOG(FATAL): the tool aborts (exit 134)."""
    sys.stderr.write(f"FATAL: {message}\n")
    sys.stderr.flush()
    return Abort(134)


def fmt_g(value: float) -> str:
    """C++ ``std::ostream << double`` with default precision (6 significant digits)."""
    if value == 0:
        return "0"
    text = f"{value:.6g}"
    if "e" in text:
        mant, exp = text.split("e")
        sign = exp[0]
        digits = exp[1:].lstrip("0")
        text = f"{mant}e{sign}{digits.zfill(2)}"
    return text


# ============================================================================ parameters


def _label_value(fl: Flag) -> str:
    if fl.kind == "bool":
        return "1" if fl.value else "0"
    if fl.kind == "float":
        return fmt_g(float(fl.value))
    return str(fl.value)


def banner(profile: str, v: dict[str, Flag], unconsumed: list[str]) -> None:
    """The emulator's own first line, unconsumed flags, and the parameter echo."""
    from importlib.metadata import version as _pkg_version

    try:
        litert_version = _pkg_version("ai-edge-litert")
    except Exception:  # noqa: BLE001
        litert_version = "unknown"
    info(f"perflab emulated benchmark_model v{EMULATOR_VERSION} (profile {profile or 'none'}; "
         f"LiteRT {litert_version} on the host CPU): timings are host timings, delegates and op profiles are "
         "emulated")
    if unconsumed:
        warn("Unconsumed cmdline flags: " + " ".join(unconsumed))
    verbose = bool(v["verbose"].value)
    info(f"Log parameter values verbosely: [{1 if verbose else 0}]")
    for fl in v.values():
        if fl.name != "verbose" and (verbose or fl.set_):
            info(f"{fl.label}: [{_label_value(fl)}]")


# ============================================================================ statistics


@dataclass
class Stat:
    """A series of times as the tool's ``Stat`` keeps them (µs) and prints them."""

    values_us: list[int] = field(default_factory=list)

    def add(self, v: int) -> None:
        self.values_us.append(v)

    @property
    def count(self) -> int:
        return len(self.values_us)

    def avg(self) -> float:
        return sum(self.values_us) / len(self.values_us) if self.values_us else 0.0

    def std(self) -> int:
        if not self.values_us:
            return 0
        a = self.avg()
        var = sum(v * v for v in self.values_us) / len(self.values_us) - a * a
        return int(math.sqrt(max(0.0, var)))

    def line(self) -> str:
        v = self.values_us
        if not v:
            return "count=0"
        if len(v) > 1 and all(x == v[0] for x in v):
            return f"count={len(v)} curr={v[-1]}(all same)"
        if len(v) == 1:
            return f"count=1 curr={v[0]}"
        return (f"count={len(v)} first={v[0]} curr={v[-1]} min={min(v)} max={max(v)} "
                f"avg={fmt_g(self.avg())} std={self.std()}")


def phase_start(min_runs: int, min_secs: float, max_secs: float) -> None:
    info(f"Running benchmark for at least {min_runs} iterations and at least {fmt_g(min_secs)} seconds but "
         f"terminate if exceeding {fmt_g(max_secs)} seconds.")


def phase_end(stat: Stat) -> None:
    info(stat.line())
    blank()


def timings_line(init_ms: float, warm: Stat, runs: Stat) -> None:
    first = warm.values_us[0] if warm.values_us else 0
    info(f"Inference timings in us: Init: {int(init_ms * 1000)}, First inference: {first}, Warmup (avg): "
         f"{fmt_g(warm.avg())}, Inference (avg): {fmt_g(runs.avg())}")


# ============================================================================ memory


@dataclass(frozen=True)
class MemoryStatus:
    """With --report_peak_memory_footprint: the monitored peak and /proc/self/status at the end."""

    peak_mb: float
    vmrss_mb: float
    rss_anon_mb: float
    rss_file_shmem_mb: float


def memory_lines(start_rss_kb: int, init_rss_kb: int, end_rss_kb: int, status: MemoryStatus | None) -> None:
    info("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the "
         "actual memory footprint of the model at runtime. Take the information at your discretion.")
    info(f"Memory footprint delta from the start of the tool (MB): init={fmt_g((init_rss_kb - start_rss_kb) / 1024.0)}"
         f" overall={fmt_g((end_rss_kb - start_rss_kb) / 1024.0)}")
    if status is not None:
        info(f"Overall peak memory footprint (MB) via periodic monitoring: {fmt_g(status.peak_mb)}")
        info("Memory status at the end of exeution:")
        info(f"- VmRSS              : {int(status.vmrss_mb)} MB")
        info(f"+ RssAnnon           : {int(status.rss_anon_mb)} MB")
        info(f"+ RssFile + RssShmem : {int(status.rss_file_shmem_mb)} MB")


# ============================================================================ profile tables

_W_TYPE, _W_START, _W_FIRST, _W_AVG, _W_PCT, _W_CDF, _W_MEM, _W_TIMES = 24, 17, 9, 9, 8, 8, 10, 9


@dataclass
class ProfRow:
    node_type: str
    name: str
    first_ms: float
    avg_ms: float
    times_called: int = 1
    mem_kb: float = 0.0


def _row_text(r: ProfRow, pct: float, cdf: float) -> str:
    return (f"\t{r.node_type:>{_W_TYPE}}\t{r.first_ms:>{_W_FIRST}.3f}\t{r.avg_ms:>{_W_AVG}.3f}\t"
            f"{f'{pct:.3f}%':>{_W_PCT}}\t{f'{cdf:.3f}%':>{_W_CDF}}\t{r.mem_kb:>{_W_MEM}.3f}\t"
            f"{r.times_called:>{_W_TIMES}d}\t{r.name}")


_HEADER = (f"\t{'[node type]':>{_W_TYPE}}\t{'[first]':>{_W_FIRST}}\t{'[avg ms]':>{_W_AVG}}\t{'[%]':>{_W_PCT}}\t"
           f"{'[cdf%]':>{_W_CDF}}\t{'[mem KB]':>{_W_MEM}}\t[times called]\t[Name]")


def profile_block(title: str, rows: list[ProfRow], timings: Stat) -> str:
    total = sum(r.avg_ms for r in rows) or 1.0
    lines = [title, "=" * 30 + " Run Order " + "=" * 30, _HEADER]
    cdf = 0.0
    for r in rows:
        pct = 100.0 * r.avg_ms / total
        cdf += pct
        lines.append(_row_text(r, pct, cdf))
    lines += ["", "=" * 30 + " Top by Computation Time " + "=" * 30, _HEADER]
    cdf = 0.0
    for r in sorted(rows, key=lambda x: -x.avg_ms)[:10]:
        pct = 100.0 * r.avg_ms / total
        cdf += pct
        lines.append(_row_text(r, pct, cdf))
    lines += ["", f"Number of nodes executed: {len(rows)}",
              "=" * 30 + " Summary by node type " + "=" * 30,
              (f"\t{'[Node type]':>{_W_TYPE}}\t{'[count]':>9}\t{'[avg ms]':>10}\t{'[avg %]':>11}\t{'[cdf %]':>11}\t"
              f"{'[mem KB]':>10}\t[times called]")]
    by_type: dict[str, list[ProfRow]] = {}
    for r in rows:
        by_type.setdefault(r.node_type, []).append(r)
    cdf = 0.0
    for node_type, group in sorted(by_type.items(), key=lambda kv: -sum(r.avg_ms for r in kv[1])):
        avg = sum(r.avg_ms for r in group)
        pct = 100.0 * avg / total
        cdf += pct
        lines.append(f"\t{node_type:>{_W_TYPE}}\t{len(group):>9d}\t{avg:>10.3f}\t{f'{pct:.3f}%':>11}\t"
                     f"{f'{cdf:.3f}%':>11}\t{0.0:>10.3f}\t{sum(r.times_called for r in group):>9d}")
    lines += ["", "Timings (microseconds): " + timings.line(), "Memory (bytes): count=0",
              f"{len(rows)} nodes observed", ""]
    return "\n".join(lines)


def print_profile(init_rows: list[ProfRow], init_stat: Stat, rows: list[ProfRow], runs: Stat,
                  measured: bool = False) -> None:
    """The two profile sections (initialisation, regular runs), after the emulator's note."""
    if measured:
        info("perflab emulated op profile: per-node times are measured, each op run and timed as its own segment "
             "on the host CPU.")
    else:
        info("perflab emulated op profile: per-node times are the measured whole-graph time apportioned by an "
             "estimate of each op's cost; they were not measured per op.")
    info(profile_block("Profiling Info for Benchmark Initialization:", init_rows, init_stat))
    info(profile_block("Operator-wise Profiling Info for Regular Benchmark Runs:", rows, runs))
