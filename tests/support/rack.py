"""The rack, nightly and queue tests' light scenario (one small cell: a night stays short)."""

from __future__ import annotations

from pathlib import Path

LIGHT_SCENARIO = """\
name: {name}
geometry: {{lr_width: 120, lr_height: 68, scale: 2}}
pacing: {{fps: 30, also_back_to_back: false}}
models:
  - zoo: espcn
    variants: [int8]
delegates: [cpu]
threads: 1
runs: {{warmup: 1, iterations: 2, timeout_s: 120}}
cooldown: {{max_start_temp_c: 90, wait_timeout_s: 5}}
tuning: {{suspend_charging: true}}
telemetry: {{enabled: false}}
profiling: {{op_profiling: false}}
inputs:
  images:
    - skimage: coffee
  max_frames: 1
"""


def write_scenario(folder: Path, name: str = "light") -> Path:
    p = folder / f"{name}.yaml"
    p.write_text(LIGHT_SCENARIO.format(name=name))
    return p
