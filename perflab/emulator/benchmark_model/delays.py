"""Per-layer delays a test injects into the emulated benchmark_model (``setprop
debug.perflab.layer_delays_ms "c2=12,c3=6"``, passed on by the emulated shell in
``PERFLAB_EMU_LAYER_DELAYS_MS``): the ground truth a per-layer profiler should recover.

A layer is found in its ops' tensor names (perflab.zoo.tflite_graph.op_tensor_names):
``<model>_1/<layer>_1/…``; a copy ``<layer>_dup`` (a differential variant duplicating the
layer) is another instance of it, and each instance adds the layer's delay once."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

LAYER_DELAYS_ENV = "PERFLAB_EMU_LAYER_DELAYS_MS"


def parse_layer_delays(spec: str) -> dict[str, float]:
    """``"c2=12,c3=6"`` (ms per layer; ``;`` also separates) → {layer: ms}; junk is ignored."""
    out: dict[str, float] = {}
    for part in spec.replace(";", ",").split(","):
        name, sep, value = part.strip().partition("=")
        try:
            ms = float(value)
        except ValueError:
            continue
        if sep and name.strip() and math.isfinite(ms) and ms > 0:
            out[name.strip()] = ms
    return out


def delays_from_env() -> dict[str, float]:
    return parse_layer_delays(os.environ.get(LAYER_DELAYS_ENV, ""))


def _instance_pattern(layer: str) -> re.Pattern[str]:
    """A tensor name of ``layer`` (group 1: its ``_dup`` suffixes, which instance it is)."""
    return re.compile(rf"(?:^|[/;\[]){re.escape(layer)}((?:_dup)*)(?:_\d+)?/")


def layer_delay_s(tensor_names: Sequence[str], delays_ms: dict[str, float]) -> float:
    """The injected delay of one invoke (s): every instance of a named layer that the model
    contains — found in its ops' output tensor names ``<model>_1/<layer>_1/…``; a copy
    ``<layer>_dup`` is another instance — adds that layer's delay once."""
    total_ms = 0.0
    for layer, ms in delays_ms.items():
        pat = _instance_pattern(layer)
        instances = {m.group(1) for n in tensor_names for m in pat.finditer(n)}
        total_ms += ms * len(instances)
    return total_ms / 1000.0


def op_delays_s(op_names: Sequence[str], delays_ms: dict[str, float]) -> list[float]:
    """Per op (its tensor names, in execution order), its part of the injected delay (s): an
    op belongs to the first named layer its names match, and a layer instance's delay is shared
    equally among its ops."""
    per_instance: dict[tuple[str, str], list[int]] = {}
    for k, names in enumerate(op_names):
        for layer in delays_ms:
            m = _instance_pattern(layer).search(names)
            if m:
                per_instance.setdefault((layer, m.group(1)), []).append(k)
                break
    extra = [0.0] * len(op_names)
    for (layer, _), ks in per_instance.items():
        for k in ks:
            extra[k] += delays_ms[layer] / 1000.0 / len(ks)
    return extra
