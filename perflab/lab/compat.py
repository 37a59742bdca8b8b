"""Op list and GPU-delegate compatibility of a model file (TFLite's analyzer), per sha256.

Shipped zoo models carry the analyzer's report beside them (``<file>.analysis.json``, written
when the zoo is built), because the analyzer needs TensorFlow and `perflab run` needs only
LiteRT. For any other file the analyzer runs in a subprocess when TensorFlow is installed;
otherwise the report says why there is none.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from perflab.core.types import ModelArtifact
from perflab.store.results import CompatRecord, GpuIssueRecord

_cache: dict[str, tuple[CompatRecord | None, str | None]] = {}
_lock = threading.Lock()


def analysis_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".analysis.json")


def compat_from_json(data: dict[str, Any], source: str) -> CompatRecord:
    return CompatRecord(
        source=source,
        ops=[str(o) for o in data.get("ops", [])],
        op_counts={str(k): int(v) for k, v in data.get("op_counts", {}).items()},
        gpu_checked=bool(data.get("gpu_checked", False)),
        gpu_compatible=data.get("gpu_compatible"),
        gpu_issues=[
            GpuIssueRecord(op_index=int(i["op_index"]), op_name=str(i["op_name"]), reason=str(i["reason"]),
                           source=str(i.get("source", "tflite analyzer")))
            for i in data.get("gpu_issues", [])
        ],
        runtime_version=data.get("runtime_version"),
    )


def _compute(art: ModelArtifact) -> tuple[CompatRecord | None, str | None]:
    shipped = analysis_path(art.path)
    if shipped.is_file():
        data = json.loads(shipped.read_text())
        if data.get("sha256") == art.sha256:
            return compat_from_json(data, "tflite analyzer, run when the zoo model was built"), None
    if find_spec("tensorflow") is None:
        return None, "TensorFlow is not installed here (scripts/setup.sh --dev installs it); its analyzer is needed"
    cmd = [sys.executable, "-m", "perflab", "models", "analyze", "--model", str(art.path), "--json"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return None, "the TFLite analyzer timed out"
    if r.returncode != 0:
        said = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.startswith("perflab: ")]
        why = said[-1].removeprefix("perflab: ") if said else (r.stderr or r.stdout).strip()[-300:]
        return None, f"the TFLite analyzer failed: {why}"
    try:
        data = json.loads(r.stdout)
    except json.JSONDecodeError:
        return None, "the TFLite analyzer printed no JSON"
    return compat_from_json(data, "tflite analyzer, run on this host"), None


def model_compat(art: ModelArtifact) -> tuple[CompatRecord | None, str | None]:
    """(record, None) or (None, why there is none). Cached per sha256 for the process."""
    with _lock:
        hit = _cache.get(art.sha256)
        if hit is None:
            hit = _compute(art)
            _cache[art.sha256] = hit
        return hit
