"""One memory definition (perflab.rules.memory): the sampler's RSS peak of the benchmark process,
the tool's own figure beside it, labelled; never the tool's 0 when the sampler saw growth."""

from __future__ import annotations

from perflab.rules.memory import SAMPLER_MEM_SOURCE, mem_kind, memory_fields

DELTA = "benchmark_model overall delta of max RSS since tool start (MB)"


def test_the_sampler_rss_peak_is_the_memory_and_the_tools_zero_delta_is_kept_beside() -> None:
    fields, missing = memory_fields(sampler_rss_peak_mb=76.0, tool_mem_mb=0.0, tool_mem_source=DELTA, sampler_why=None)
    assert fields == {"mem_peak_mb": 76.0, "mem_source": SAMPLER_MEM_SOURCE, "tool_mem_mb": 0.0,
                      "tool_mem_source": DELTA}
    assert not missing and mem_kind(SAMPLER_MEM_SOURCE) == "peak"


def test_without_the_sampler_a_tools_peak_stands_and_a_delta_does_not() -> None:
    peak = "/proc/<worker>/status VmHWM (peak RSS of the worker process, incl. Python + LiteRT)"
    fields, missing = memory_fields(sampler_rss_peak_mb=None, tool_mem_mb=120.0, tool_mem_source=peak,
                                    sampler_why="off")
    assert fields["mem_peak_mb"] == 120.0 and fields["mem_source"] == peak and not missing
    fields, missing = memory_fields(sampler_rss_peak_mb=None, tool_mem_mb=0.0, tool_mem_source=DELTA,
                                    sampler_why="the measured process was not seen")
    assert "mem_peak_mb" not in fields and fields["tool_mem_mb"] == 0.0
    assert "the measured process was not seen" in missing["mem_peak_mb"] and "tool_mem_mb" in missing["mem_peak_mb"]
