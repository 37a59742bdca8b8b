"""ftrace text parsing: perflab.tracing.ftrace.parse_trace versus the plain line-by-line
regular-expression parser (perflab.tracing.reference), on a seeded synthetic trace shaped
like a phone running benchmark_model with ATrace (perflab.tracing.synthetic).

Usage: python benchmarks/bench_ftrace.py [--mb 200] [--repeats 3] [--seed 0] [--json]

Timed, each on the whole text, one after the other (memory is freed between them), the
four interleaved and repeated; the minimum of each is reported (the least disturbed by other
load on the machine), with the ratio of the medians beside it:
- reference: split into lines, match each, build every record, parse every record's fields;
- fast: one regex over the whole buffer, rows kept as strings (what ``parse_trace`` returns);
- fast + attribution events: ``parse_trace`` then records and fields of the events the
  attribution reads (tracing_mark_write, sched_switch, irq_handler_entry/exit, binder_*):
  the cost of a real ``perflab trace parse``. Parsed fields are cached by payload text (the
  cache is cleared before each run); the share of distinct payloads is printed, since a
  synthetic trace repeats payloads more than a phone's does;
- fast, all records: ``parse_trace`` then every record built (no fields).
Identity: both parsers' TraceInfo compared on the whole text; records and fields compared
chunk by chunk (8 MB of whole lines at a time, so a 200 MB run does not need both parsers'
records in memory at once). Memory: about 12× the trace size at the peak (the reference's
records and dicts).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from perflab.tracing import ftrace as ftrace_mod
from perflab.tracing.ftrace import parse_trace
from perflab.tracing.reference import parse_trace_reference
from perflab.tracing.synthetic import synthetic_trace

ATTRIBUTION_EVENTS = ("tracing_mark_write", "sched_switch", "irq_handler_entry", "irq_handler_exit",
                      "binder_transaction", "binder_transaction_received")
CHUNK_BYTES = 8_000_000

T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _chunks(text: str, size: int) -> list[str]:
    out, start = [], 0
    while start < len(text):
        end = text.find("\n", min(start + size, len(text) - 1))
        end = len(text) if end < 0 else end + 1
        out.append(text[start:end])
        start = end
    return out


def _identical(text: str) -> bool:
    header_end = text.find("\n", text.find("FUNCTION")) + 1  # keep the header with every chunk
    header, body = text[:header_end], text[header_end:]
    for chunk in _chunks(body, CHUNK_BYTES):
        fast = parse_trace(header + chunk)
        ref = parse_trace_reference(header + chunk)
        recs = fast.records()
        if fast.info != ref.info or recs != ref.records or [r.fields for r in recs] != ref.fields:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=200.0, help="trace size in MB (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved runs; the best of each is reported")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    gen_s, st = _timed(lambda: synthetic_trace(int(args.mb * 1_000_000), seed=args.seed, lost_every=500))
    text = st.text
    del st
    times: dict[str, list[float]] = {"reference": [], "fast": [], "attribution": [], "all": []}
    ref_info = fast_info = None
    n_ref = attr_n = all_n = 0
    for _ in range(args.repeats):  # interleaved, so a burst of load on the machine hits both sides
        ref_s, ref = _timed(lambda: parse_trace_reference(text))
        ref_info, n_ref = ref.info, len(ref.records)
        del ref
        fast_s, fast = _timed(lambda: parse_trace(text))
        fast_info = fast.info
        del fast
        attr_s, attr_n = _timed(lambda: _attribution_records(text))
        all_s, all_n = _timed(lambda: len(parse_trace(text).records()))
        for key, value in (("reference", ref_s), ("fast", fast_s), ("attribution", attr_s), ("all", all_s)):
            times[key].append(value)
    same = fast_info == ref_info and all_n == n_ref and _identical(text)
    best = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "trace_mb": round(len(text) / 1e6, 1),
        "records": n_ref,
        "repeats": args.repeats,
        "generate_s": round(gen_s, 2),
        "reference_s": round(best["reference"], 3),
        "fast_s": round(best["fast"], 3),
        "ratio": round(best["reference"] / best["fast"], 2),
        "ratio_median": round(med["reference"] / med["fast"], 2),
        "fast_plus_attribution_events_s": round(best["attribution"], 3),
        "attribution_records": attr_n,
        "attribution_distinct_payload_pct": round(_distinct_payload_pct(text), 2),
        "ratio_with_attribution_events": round(best["reference"] / best["attribution"], 2),
        "fast_all_records_s": round(best["all"], 3),
        "ratio_all_records": round(best["reference"] / best["all"], 2),
        "identical": same,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_implementation()} "
                   f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}",
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"trace: {result['trace_mb']} MB, {n_ref} records (generated in {gen_s:.1f} s); "
          f"best of {args.repeats} interleaved runs")
    print(f"reference (line by line, fields parsed): {best['reference']:.3f} s")
    print(f"fast parse_trace:                        {best['fast']:.3f} s   ratio {result['ratio']}x "
          f"(medians: {result['ratio_median']}x)")
    print(f"fast + attribution events' records+fields: {best['attribution']:.3f} s ({attr_n} records, "
          f"{result['attribution_distinct_payload_pct']}% distinct payloads)   "
          f"ratio {result['ratio_with_attribution_events']}x")
    print(f"fast + every record built:               {best['all']:.3f} s   ratio {result['ratio_all_records']}x")
    print(f"identical records, fields and info: {same}")
    print(f"machine: {result['machine']}")


def _attribution_records(text: str) -> int:
    ftrace_mod._fields_cached.cache_clear()  # every run starts cold
    recs = parse_trace(text).records(ATTRIBUTION_EVENTS)
    return sum(1 for r in recs if r.fields is not None)


def _distinct_payload_pct(text: str) -> float:
    recs = parse_trace(text).records(ATTRIBUTION_EVENTS)
    return 100.0 * len({(r.event, r.payload) for r in recs}) / max(1, len(recs))


if __name__ == "__main__":
    main()
