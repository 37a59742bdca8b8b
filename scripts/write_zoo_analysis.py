"""Write TFLite's analyzer report beside every shipped zoo model (<file>.analysis.json).

`perflab run` needs only LiteRT, but the analyzer (op list, GPU-delegate compatibility) needs
TensorFlow, so the zoo ships its reports. Re-run after (re)building any zoo model:

    .venv/bin/python scripts/write_zoo_analysis.py

tests/test_zoo_analysis_files.py fails when a report is missing or stale (sha256 mismatch).
"""

from __future__ import annotations

import json
import sys

from perflab.lab.compat import analysis_path
from perflab.lab.models import sha256_file
from perflab.zoo.analyze import analyze_model
from perflab.zoo.registry import WEIGHTS_DIR


def main() -> int:
    for model in sorted(WEIGHTS_DIR.glob("*.tflite")):
        out = analysis_path(model)
        sha = sha256_file(model)
        if out.is_file() and json.loads(out.read_text()).get("sha256") == sha:
            continue
        report = analyze_model(model, gpu_compatibility=True)
        out.write_text(json.dumps({"model": model.name, "sha256": sha, **report.to_json()}, indent=1) + "\n")
        print(f"{out.name}: {len(report.ops)} ops, GPU compatible: {report.gpu_compatible}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
