"""The emulated benchmark_model's flags: the real tool's table (name, type, default, the label
its parameter echo prints) and its parsing rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Flag:
    name: str
    kind: str  # int | float | bool | str
    default: Any
    label: str
    value: Any = None
    set_: bool = False


def _flag_table() -> list[Flag]:
    f = Flag
    return [
        f("num_runs", "int", 50, "Min num runs"),
        f("min_secs", "float", 1.0, "Min runs duration (seconds)"),
        f("max_secs", "float", 150.0, "Max runs duration (seconds)"),
        f("run_delay", "float", -1.0, "Inter-run delay (seconds)"),
        f("run_frequency", "float", -1.0, "Number of prorated runs per second"),
        f("num_threads", "int", -1, "Num threads"),
        f("use_caching", "bool", False, "Use caching"),
        f("benchmark_name", "str", "", "Benchmark name"),
        f("output_prefix", "str", "", "Output prefix"),
        f("warmup_runs", "int", 1, "Min warmup runs"),
        f("warmup_min_secs", "float", 0.5, "Min warmup runs duration (seconds)"),
        f("verbose", "bool", False, "Log parameter values verbosely"),
        f("dry_run", "bool", False, "Run w/o invoking kernels"),
        f("report_peak_memory_footprint", "bool", False, "Report the peak memory footprint"),
        f("memory_footprint_check_interval_ms", "int", 50, "Memory footprint check interval (ms)"),
        f("graph", "str", "", "Graph"),
        f("input_layer", "str", "", "Input layers"),
        f("input_layer_shape", "str", "", "Input shapes"),
        f("input_layer_value_range", "str", "", "Input value ranges"),
        f("input_layer_value_files", "str", "", "Input value files"),
        f("allow_fp16", "bool", False, "Allow fp16"),
        f("require_full_delegation", "bool", False, "Require full delegation"),
        f("enable_op_profiling", "bool", False, "Enable op profiling"),
        f("max_profiling_buffer_entries", "int", 1024, "Max initial profiling buffer entries"),
        f("profiling_output_csv_file", "str", "", "CSV File to export profiling data to"),
        f("output_filepath", "str", "", "File path to export outputs layer as binary data"),
        f("use_gpu", "bool", False, "Use gpu"),
        f("gpu_precision_loss_allowed", "bool", True, "Allow lower precision in gpu"),
        f("gpu_experimental_enable_quant", "bool", True, "Enable running quant models in gpu"),
        f("gpu_backend", "str", "", "GPU backend"),
        f("use_nnapi", "bool", False, "Use NNAPI"),
        f("nnapi_execution_preference", "str", "", "NNAPI execution preference"),
        f("nnapi_accelerator_name", "str", "", "NNAPI accelerator name"),
        f("disable_nnapi_cpu", "bool", True, "Disable NNAPI cpu"),
        f("nnapi_allow_fp16", "bool", False, "Allow fp16 in NNAPI"),
        f("use_hexagon", "bool", False, "Use Hexagon"),
        f("hexagon_profiling", "bool", False, "Hexagon profiling"),
        f("hexagon_lib_path", "str", "/data/local/tmp", "Hexagon lib path"),
        f("use_xnnpack", "bool", False, "Use xnnpack"),
        f("xnnpack_force_fp16", "bool", False, "xnnpack force fp16"),
        f("max_delegated_partitions", "int", 0, "Max number of delegated partitions"),
        f("min_nodes_per_partition", "int", 0, "Min nodes per partition"),
    ]


class FlagError(Exception):
    pass


def parse_flags(argv: Sequence[str]) -> tuple[dict[str, Flag], list[str], list[str]]:
    """(flags by name, unconsumed args, delegate order). Booleans accept only true/false."""
    table = {fl.name: fl for fl in _flag_table()}
    unconsumed: list[str] = []
    order: list[str] = []
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            unconsumed.append(arg)
            continue
        name, value = arg[2:].split("=", 1)
        fl = table.get(name)
        if fl is None:
            unconsumed.append(arg)
            continue
        try:
            if fl.kind == "bool":
                if value not in ("true", "false"):
                    raise ValueError(value)
                fl.value = value == "true"
            elif fl.kind == "int":
                fl.value = int(value)
            elif fl.kind == "float":
                fl.value = float(value)
            else:
                fl.value = value
        except ValueError:
            raise FlagError(arg) from None
        fl.set_ = True
        if name in ("use_gpu", "use_nnapi", "use_hexagon", "use_xnnpack") and fl.value:
            order.append(name[4:])
    for fl in table.values():
        if not fl.set_:
            fl.value = fl.default
    return table, unconsumed, order
