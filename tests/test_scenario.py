"""Scenario loading: good files validate; bad ones give one line naming file:line: field, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perflab.errors import UserInputError
from perflab.scenario import Delegate, Variant, load_scenario, plan_cells

REPO = Path(__file__).resolve().parent.parent
PERFLAB = str(Path(sys.executable).with_name("perflab"))

GOOD = """\
name: t1
geometry:
  lr_width: 64
  lr_height: 32
  scale: 2
pacing:
  fps: 30
models:
  - zoo: bicubic
    variants: [int8, uint8]
delegates: [cpu, xnnpack]
inputs:
  images:
    - skimage: coffee
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_shipped_scenario_is_valid() -> None:
    loaded = load_scenario(REPO / "scenarios" / "540p30.yaml")
    s = loaded.scenario
    assert (s.geometry.lr_width, s.geometry.lr_height, s.geometry.scale) == (960, 540, 2)
    assert (s.geometry.hr_width, s.geometry.hr_height) == (1920, 1080)
    assert s.pacing.fps == 30
    variants = {v for m in s.models for v in m.variants}
    assert {Variant.FP32, Variant.INT8} <= variants


def test_plan_puts_baseline_first_per_delegate(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, GOOD)).scenario
    cells = plan_cells(s)
    ids = [c.cell_id for c in cells]
    assert ids == [
        "bicubic_x2.fp32.cpu", "bicubic_x2.int8.cpu", "bicubic_x2.uint8.cpu",
        "bicubic_x2.fp32.xnnpack", "bicubic_x2.int8.xnnpack", "bicubic_x2.uint8.xnnpack",
    ]
    assert [c.baseline for c in cells].count(True) == 2
    assert {c.delegate for c in cells} == {Delegate.CPU, Delegate.XNNPACK}


def test_duplicate_cells_are_refused(tmp_path: Path) -> None:
    # the zoo model 'bicubic' in fp32 collides with the baseline cell
    e = _err(tmp_path, GOOD.replace("[int8, uint8]", "[fp32]"))
    assert "same cell" in e.message
    assert e.location is not None and (e.location.line, e.location.field) == (9, "models[0]")
    two = GOOD.replace("  - zoo: bicubic\n    variants: [int8, uint8]\n",
                       "  - zoo: espcn\n  - zoo: espcn\n    variants: [fp32]\n")
    e = _err(tmp_path, two)
    assert e.location is not None and (e.location.line, e.location.field) == (10, "models[1]")


def _err(tmp_path: Path, text: str) -> UserInputError:
    p = write(tmp_path, text)
    with pytest.raises(UserInputError) as ei:
        load_scenario(p)
    return ei.value


def test_unknown_key_names_line_and_field(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.replace("  fps: 30\n", "  fps: 30\n  fsp: 25\n"))
    assert e.location is not None
    assert (e.location.line, e.location.field) == (8, "pacing.fsp")
    assert "unknown field" in e.message


def test_missing_key(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.replace("  scale: 2\n", ""))
    assert e.location is not None and e.location.field == "geometry.scale"
    assert e.location.line == 2  # the key of the mapping that lacks it
    assert "missing" in e.message


def test_wrong_type(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.replace("lr_width: 64", "lr_width: wide"))
    assert e.location is not None and (e.location.line, e.location.field) == (3, "geometry.lr_width")
    assert '"wide"' in e.message


def test_bad_enum_in_list(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.replace("[int8, uint8]", "[int8, int4]"))
    assert e.location is not None and e.location.field == "models[0].variants[1]"
    assert e.location.line == 10


def test_missing_model_path(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.replace("  - zoo: bicubic\n    variants: [int8, uint8]\n", "  - path: nope.tflite\n    scale: 2\n"))
    assert e.location is not None and (e.location.line, e.location.field) == (9, "models[0].path")
    assert "not found" in e.message


def test_missing_image_path(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.replace("- skimage: coffee", "- path: pics/"))
    assert e.location is not None and (e.location.line, e.location.field) == (14, "inputs.images[0].path")


def test_unknown_zoo_model(tmp_path: Path) -> None:
    # the scenario package does not know the zoo: lab.validate checks the family exists
    from perflab.lab.validate import validate_scenario

    loaded = load_scenario(write(tmp_path, GOOD.replace("zoo: bicubic", "zoo: notamodel")))
    with pytest.raises(UserInputError) as ei:
        validate_scenario(loaded, decode_inputs=False)
    e = ei.value
    assert e.location is not None and e.location.field == "models[0].zoo" and e.location.line == 9


def test_yaml_syntax_and_duplicate_keys(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.replace("  lr_height: 32\n", "  lr_height: [32\n"))
    assert e.location is not None and e.location.line is not None and "YAML syntax" in e.message
    e = _err(tmp_path, GOOD.replace("  lr_height: 32\n", "  lr_height: 32\n  lr_height: 33\n"))
    assert e.location is not None and e.location.line == 5 and "duplicate" in e.message


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.replace("name: t1", "name: a;reboot"))
    assert e.location is not None and (e.location.line, e.location.field) == (1, "name")


def test_cli_check_one_line_exit_2(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("lr_width: 64", "lr_width: -3"))
    r = subprocess.run([PERFLAB, "scenario", "check", str(p)], capture_output=True, text=True, check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith(f"perflab: error: {p}:3: geometry.lr_width:")


def test_cli_run_bad_scenario_exit_2(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("name: t1\n", ""))
    r = subprocess.run([PERFLAB, "run", str(p), "--out", str(tmp_path / "o")], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and ": name:" in r.stderr
    assert not (tmp_path / "o").exists()


def test_cli_schema_is_json_schema() -> None:
    r = subprocess.run([PERFLAB, "scenario", "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(r.stdout)
    assert "geometry" in schema["properties"] and "name" in schema["required"]
