"""Kernel trace (ftrace text) parsing, attribution to inferences and operators, export to
Chrome trace-event JSON (opens in the Perfetto UI), and TFLite op profiles. Pure functions
over text; no device I/O here (capture belongs beside the devices). See docs/tracing.md.

- :mod:`perflab.tracing.ftrace` — the fast parser: ``scan_trace`` over a trace in chunks
  (``file_chunks``), block by block, never the whole text; ``parse_trace`` keeping every
  row; records, clock and lost-event detection.
- :mod:`perflab.tracing.reference` — a plain line-by-line regex parser and the per-record
  attribution over it, kept for comparison.
- :mod:`perflab.tracing.sections` — ATrace sections, inferences, per-op intervals, perflab
  segments (per-record functions).
- :mod:`perflab.tracing.kernel_events` — irqs, CPU busy time, binder/fastrpc round trips,
  processor switch latency (per-record functions).
- :mod:`perflab.tracing.facts` — ``TraceFacts``: what these need of a trace, kept block by
  block in compact form.
- :mod:`perflab.tracing.attribution` — all of them at once as one ``Attribution``;
  ``stream_facts`` parses and keeps only what attribution needs, in one pass.
- :mod:`perflab.tracing.summary` — what ``perflab trace parse`` prints (text and JSON).
- :mod:`perflab.tracing.crosscheck` — trace inferences against benchmark_model's counts and average.
- :mod:`perflab.tracing.export` — Chrome trace-event JSON.
- :mod:`perflab.tracing.opprofile` — ``perflab profile parse`` (benchmark_model op profiles).
- :mod:`perflab.tracing.synthetic` — seeded synthetic traces for benchmarks and tests.
(The ``profile`` and ``trace`` commands are :mod:`perflab.cli.trace`.)
"""
