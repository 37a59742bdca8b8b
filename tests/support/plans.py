"""The tiny split-planner scenario the plan tests share (espcn ×2 at 48×32, one photo)."""

from __future__ import annotations


def tiny_plan_scenario(name: str, extra_models: str = "") -> str:
    """Scenario YAML for ``perflab plan``; ``extra_models``: more ``models:`` entries, as YAML lines."""
    return f"""\
schema: perflab.scenario/1
name: {name}
geometry: {{lr_width: 48, lr_height: 32, scale: 2}}
models:
  - zoo: espcn
    variants: [fp32]
{extra_models}delegates: [cpu]
threads: 1
inputs:
  images:
    - skimage: coffee
  max_frames: 1
"""
