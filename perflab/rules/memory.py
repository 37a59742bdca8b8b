"""What a cell's memory number is (pure; docs/methodology.md "What SR costs").

One definition: ``mem_peak_mb`` is the peak RSS of the benchmark process seen by the device
sampler (the same quantity on every device, so an SR cell's delta against bicubic is the
sampler's RSS difference). The tool's own footprint (benchmark_model's "overall" delta of max
RSS since it started, its periodic peak footprint, or the local worker's VmHWM) is a second,
labelled figure: ``tool_mem_mb`` with ``tool_mem_source``. Only where the sampler saw no RSS
does ``mem_peak_mb`` fall back to the tool's figure, and only when that is an absolute peak.
"""

from __future__ import annotations

SAMPLER_MEM_SOURCE = "device sampler: peak RSS of the benchmark process (VmRSS / statm resident pages, per tick)"


def mem_kind(source: str | None) -> str:
    """Which quantity a memory number is, from the source recorded with it: ``delta`` for a tool's
    growth of max RSS since it started (benchmark_model's "overall delta"), ``peak`` for an
    absolute peak (sampled RSS, VmHWM, a peak footprint) or an unstated source."""
    return "delta" if source is not None and "delta" in source.lower() else "peak"


def memory_fields(*, sampler_rss_peak_mb: float | None, tool_mem_mb: float | None, tool_mem_source: str | None,
                  sampler_why: str | None) -> tuple[dict[str, float | str | None], dict[str, str]]:
    """The cell's memory fields and missing reasons from the sampler's RSS peak and the tool's
    own figure (see the module doc)."""
    fields: dict[str, float | str | None] = {"tool_mem_mb": tool_mem_mb, "tool_mem_source": tool_mem_source}
    missing: dict[str, str] = {}
    if sampler_rss_peak_mb is not None:
        fields.update(mem_peak_mb=sampler_rss_peak_mb, mem_source=SAMPLER_MEM_SOURCE)
    elif tool_mem_mb is not None and mem_kind(tool_mem_source) == "peak":
        fields.update(mem_peak_mb=tool_mem_mb, mem_source=tool_mem_source)
    else:
        missing["mem_peak_mb"] = (
            f"the sampler saw no RSS of the benchmark process ({sampler_why or 'not sampled'})"
            + (f"; the tool reports only its own delta ({tool_mem_mb:.1f} MB, tool_mem_mb)"
               if tool_mem_mb is not None else ""))
    return fields, missing
