"""Every shipped zoo model carries a current analyzer report, and a run uses it."""

from __future__ import annotations

import json

from perflab.lab.compat import analysis_path, model_compat
from perflab.lab.models import sha256_file
from perflab.zoo.analyze import analyze_model
from perflab.zoo.registry import WEIGHTS_DIR, get_artifact


def test_every_shipped_model_has_a_current_report() -> None:
    models = sorted(WEIGHTS_DIR.glob("*.tflite"))
    assert models
    stale = []
    for m in models:
        p = analysis_path(m)
        if not p.is_file() or json.loads(p.read_text()).get("sha256") != sha256_file(m):
            stale.append(m.name)
    assert not stale, f"run scripts/write_zoo_analysis.py: missing or stale reports for {stale}"


def test_shipped_report_equals_a_fresh_analysis() -> None:
    art = get_artifact("espcn", 2, "int8")
    shipped = json.loads(analysis_path(art.path).read_text())
    fresh = analyze_model(art.path).to_json()
    assert shipped["ops"] == fresh["ops"] and shipped["gpu_compatible"] == fresh["gpu_compatible"]
    rec, why = model_compat(art)
    assert why is None and rec is not None
    assert rec.ops == fresh["ops"] and "DEPTH_TO_SPACE" in rec.op_counts
    assert "zoo" in rec.source
