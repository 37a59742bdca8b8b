"""Kernel trace (ftrace text) parsing, attribution to inferences and operators, and export
to Chrome trace-event JSON (opens in the Perfetto UI). Pure functions; no device I/O here.

- :mod:`perflab.tracing.ftrace` — the fast parser (``parse_trace``), records, clock and
  lost-event detection.
- :mod:`perflab.tracing.reference` — a plain line-by-line regex parser kept for comparison.
- :mod:`perflab.tracing.attribution` — ATrace sections, inferences, per-op intervals,
  perflab segments, irqs, CPU busy time, binder round trips, processor switch latency.
- :mod:`perflab.tracing.export` — Chrome trace-event JSON.
- :mod:`perflab.tracing.synthetic` — seeded synthetic traces for benchmarks and tests.
"""
