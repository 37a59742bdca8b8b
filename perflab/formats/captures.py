"""Captures: a saved log (the tool's stdout, or logcat) holding one or more runs of
benchmark_model or the benchmark app, split into runs (pure). Each run's text is then read by
:func:`perflab.formats.benchmark_output.parse_output`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from perflab.formats.benchmark_output import LOGCAT_LONG, PARAM_LINE, logcat_match, normalise_line

#: logcat tags of the tool and the benchmark app (``tflite``, ``tflite_BenchmarkModelActivity``, ...)
_TOOL_TAG = re.compile(r"tflite|benchmark|tensorflow|litert", re.IGNORECASE)
_RUN_START = ("STARTING!", "Log parameter values verbosely")
_RUN_END = ("Inference timings in us:", "Average inference timings in us:")


@dataclass(frozen=True)
class CaptureRun:
    """One run of the tool inside a capture: its lines (logcat lines of other tags left out)."""

    text: str
    first_line: int  # 1-based line of the capture where the run starts
    stamp: str | None = None  # the logcat time stamp of its first line, as printed (MM-DD or YYYY-MM-DD hh:mm:ss)


@dataclass(frozen=True)
class Capture:
    """A capture split into runs. ``logcat``: the lines carry a logcat prefix."""

    logcat: bool
    runs: list[CaptureRun]


def split_capture(text: str) -> Capture:
    """Split a saved log into the runs it holds (pure). A run starts at ``STARTING!`` or the
    parameter echo's first line, or at any tool line after a run's timings line; in a logcat
    capture only the tool's tags are kept (other apps' lines interleave)."""
    lines = _from_long_format(text.splitlines())
    framed = [(i, ln, logcat_match(ln.rstrip())) for i, ln in enumerate(lines, 1)]
    logcat = sum(1 for _, _, m in framed if m is not None) * 2 >= max(1, sum(1 for _, ln, _ in framed if ln.strip()))
    runs: list[CaptureRun] = []
    cur: list[str] = []
    start, stamp, ended = 1, None, False

    def close() -> None:
        if any(c.strip() for c in cur):
            runs.append(CaptureRun("\n".join(cur) + "\n", start, stamp))

    for i, ln, m in framed:
        if logcat and ((m is not None and not _TOOL_TAG.search(m.group("tag"))) or ln.startswith("--------- ")):
            continue  # another app's line, or logcat's "--------- beginning of main"
        msg = normalise_line(ln).msg.strip()
        if cur and ((_starts_run(msg) and _has_content(cur)) or (ended and _opens_run(msg))):
            close()
            cur, ended = [], False
        if not cur:
            start, stamp = i, None
        if stamp is None and m is not None and "stamp" in m.groupdict():
            stamp = m.group("stamp")
        cur.append(ln)
        if msg.startswith(_RUN_END):
            ended = True
    close()
    return Capture(logcat, runs)


def _from_long_format(lines: list[str]) -> list[str]:
    """``logcat -v long`` rewritten as threadtime lines, one per message line, on the line numbers
    of the capture (a header becomes an empty line, so the numbering stays)."""
    if not any(LOGCAT_LONG.match(ln.strip()) for ln in lines[:200]):
        return lines
    out: list[str] = []
    head: re.Match[str] | None = None
    for ln in lines:
        if (m := LOGCAT_LONG.match(ln.strip())) is not None:
            head = m
            out.append("")
        elif head is not None and ln.strip():
            out.append(f"{head.group('stamp')} {head.group('pid')} {head.group('tid')} {head.group('lvl')} "
                       f"{head.group('tag')}: {ln}")
        else:
            head = None if not ln.strip() else head
            out.append(ln)
    return out


def _has_content(lines: list[str]) -> bool:
    """The lines so far hold more than a run's opening (a parameter echo starting a new run)."""
    return any(normalise_line(c).msg.strip().startswith(("Loaded model", "Initialized session", "count=", "Inference timings",
                                                    "Average inference")) for c in lines)


def _starts_run(msg: str) -> bool:
    """The first line of a run: the tool's banner, its parameter echo, or a command line echoed."""
    return msg.startswith(_RUN_START) or ("--graph=" in msg and "Unconsumed" not in msg)


def _opens_run(msg: str) -> bool:
    """After a run's timings line: a line only a new run prints first (the memory lines and the
    op-profile block that follow the timings belong to the run before)."""
    return _starts_run(msg) or msg.startswith("Loaded model") or (
        PARAM_LINE.match(msg) is not None and not msg.startswith(("Memory", "[")))
