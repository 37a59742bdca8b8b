"""Hostile scenario files: every one is a one-line ``file:line: field: message`` user error
(exit 2 from the CLI), never a traceback, a hang or a memory blow-up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perflab.core.names import (
    FrameNamer,
    check_command_text,
    check_device_path,
    command_text_problem,
    frame_stem,
    model_file_name_problem,
)
from perflab.core.yamlsrc import MAX_DEPTH, MAX_VALUES, load_yaml
from perflab.errors import UserInputError
from perflab.scenario import load_scenario

PERFLAB = str(Path(sys.executable).with_name("perflab"))
ESPCN = Path(__file__).resolve().parent.parent / "perflab" / "zoo" / "weights" / "espcn_x2_fp32.tflite"

GOOD = textwrap.dedent("""\
    name: t1
    geometry:
      lr_width: 64
      lr_height: 32
      scale: 2
    models:
      - zoo: espcn
    runs:
      timeout_s: 300
      iterations: 10
    cooldown:
      max_start_temp_c: 40
    threads: 2
    inputs:
      images:
        - skimage: coffee
    """)


def _write(tmp_path: Path, content: str | bytes, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


def _err(tmp_path: Path, content: str | bytes) -> UserInputError:
    p = _write(tmp_path, content)
    with pytest.raises(UserInputError) as ei:
        load_scenario(p)
    e = ei.value
    assert e.location is not None and e.location.file == str(p)
    assert "\n" not in str(e)
    return e


def _billion_laughs() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for c in "bcdefghi":
        text += f"{c}: &{c} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = c
    return text


def _small_alias_bomb() -> str:
    text = "x0: &x0 [a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a]\n"
    for i in range(1, 24):
        text += f"x{i}: &x{i} [*x{i - 1},*x{i - 1},*x{i - 1},*x{i - 1}]\n"
    assert len(text) < 800
    return text


def test_alias_expansion_is_capped(tmp_path: Path) -> None:
    for text in (_billion_laughs(), _small_alias_bomb()):
        e = _err(tmp_path, text)
        assert f"more than {MAX_VALUES} values" in e.message and e.location is not None
        assert e.location.line is not None


def test_reasonable_aliases_still_work(tmp_path: Path) -> None:
    text = GOOD.replace("models:\n  - zoo: espcn\n", "models:\n  - {zoo: espcn, variants: &v [fp32, int8]}\n"
                        "  - {zoo: fsrcnn, variants: *v}\n")
    loaded = load_scenario(_write(tmp_path, text))
    assert [list(m.variants) for m in loaded.scenario.models] == [["fp32", "int8"], ["fp32", "int8"]]


def test_nesting_depth_is_capped(tmp_path: Path) -> None:
    e = _err(tmp_path, "name: " + "[" * 5000 + "]" * 5000 + "\n")
    assert f"deeper than {MAX_DEPTH}" in e.message and e.location is not None and e.location.line == 1
    e = _err(tmp_path, "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)))
    assert f"deeper than {MAX_DEPTH}" in e.message


@pytest.mark.parametrize("text", ["a: &a [1, *a]\n", "a: &a {b: *a}\n", "a: &a\n  b: [x, {c: *a}]\n"])
def test_self_referencing_alias(tmp_path: Path, text: str) -> None:
    e = _err(tmp_path, text)
    assert "self-referencing alias" in e.message and e.location is not None and e.location.line is not None


def test_nul_and_non_utf8_bytes_name_their_line(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.encode().replace(b"threads: 2", b"threads: \x002"))
    assert e.message == "NUL byte in text" and e.location is not None and e.location.line == 13
    e = _err(tmp_path, GOOD.encode().replace(b"name: t1", b"name: t1\ndescription: caf\xe9"))
    assert "not UTF-8" in e.message and e.location is not None and e.location.line == 2
    e = _err(tmp_path, b"\xff\xfe" + GOOD.encode("utf-16-le"))
    assert "not UTF-8" in e.message and e.location is not None and e.location.line == 1


def test_unbuildable_scalars_name_their_line(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD.replace("threads: 2", "threads: " + "9" * 5000))
    assert e.location is not None and (e.location.line, e.location.field) == (13, "threads")
    e = _err(tmp_path, GOOD.replace("name: t1", "name: t1\ndescription: 2001-13-45"))
    assert e.location is not None and (e.location.line, e.location.field) == (2, "description")


def test_odd_keys_stay_on_one_line(tmp_path: Path) -> None:
    e = _err(tmp_path, GOOD + '"evil\\nkey": 1\n')
    assert e.message == "unknown field" and e.location is not None and e.location.field == '"evil\\nkey"'
    e = _err(tmp_path, "? [a, b]\n: 1\n")
    assert "mapping keys" in e.message


@pytest.mark.parametrize(("old", "new", "line", "field"), [
    ("timeout_s: 300", "timeout_s: .inf", 9, "runs.timeout_s"),
    ("timeout_s: 300", "timeout_s: 1e10", 9, "runs.timeout_s"),
    ("timeout_s: 300", "timeout_s: .nan", 9, "runs.timeout_s"),
    ("max_start_temp_c: 40", "max_start_temp_c: .nan", 12, "cooldown.max_start_temp_c"),
    ("max_start_temp_c: 40", "max_start_temp_c: -.inf", 12, "cooldown.max_start_temp_c"),
    ("iterations: 10", "iterations: 100000000000", 10, "runs.iterations"),
    ("iterations: 10", "iterations: 10.0", 10, "runs.iterations"),
    ("threads: 2", "threads: true", 13, "threads"),
    ("threads: 2", "threads: '2'", 13, "threads"),
    ("threads: 2", "threads: 1000", 13, "threads"),
    ("lr_width: 64", "lr_width: 1e400", 3, "geometry.lr_width"),
])
def test_numbers_are_strict_bounded_and_finite(tmp_path: Path, old: str, new: str, line: int, field: str) -> None:
    assert old in GOOD
    e = _err(tmp_path, GOOD.replace(old, new))
    assert e.location is not None and (e.location.line, e.location.field) == (line, field), e


def test_every_number_in_the_schema_has_an_upper_bound() -> None:
    from perflab.scenario.schema import Scenario

    def walk(schema: dict[str, object], defs: dict[str, dict[str, object]], path: str) -> list[str]:
        unbounded: list[str] = []
        if "$ref" in schema:
            return walk(defs[str(schema["$ref"]).rsplit("/", 1)[-1]], defs, path)
        for sub in schema.get("anyOf", []) or []:  # type: ignore[attr-defined]
            unbounded += walk(sub, defs, path)
        bounded = any(k in schema for k in ("maximum", "exclusiveMaximum", "enum", "const"))
        if schema.get("type") in ("integer", "number") and not bounded:
            unbounded.append(path)
        for name, sub in (schema.get("properties") or {}).items():  # type: ignore[attr-defined]
            unbounded += walk(sub, defs, f"{path}.{name}")
        if isinstance(schema.get("items"), dict):
            unbounded += walk(schema["items"], defs, f"{path}[]")  # type: ignore[arg-type]
        return unbounded

    js = Scenario.model_json_schema()
    assert walk(js, js.get("$defs", {}), "") == []


@pytest.mark.parametrize("name", ["a,b.tflite", "a\nb.tflite", "tab\there.tflite", "del\x7f.tflite"])
def test_model_file_names_the_phone_refuses(tmp_path: Path, name: str) -> None:
    model = tmp_path / name
    model.write_bytes(b"TFL3")
    quoted = name.encode("unicode_escape").decode()
    text = GOOD.replace("  - zoo: espcn\n", f'  - path: "{quoted}"\n    scale: 2\n')
    e = _err(tmp_path, text)
    assert e.location is not None and (e.location.line, e.location.field) == (7, "models[0].path")
    # the very words of the phone's command builder rule
    assert e.message.startswith(f"model file name {model_file_name_problem(name)}")


def test_phone_safe_model_file_names_pass(tmp_path: Path) -> None:
    name = "my model (v2) 'é'.tflite"
    (tmp_path / name).write_bytes(ESPCN.read_bytes())
    text = GOOD.replace("  - zoo: espcn\n", f'  - path: "{name}"\n    scale: 2\n')
    assert load_scenario(_write(tmp_path, text)).scenario.models[0].path == name


def test_command_text_rule() -> None:
    assert command_text_problem("ok name.tflite") is None
    assert command_text_problem("") == "is empty"
    assert command_text_problem("a,b", forbid=",") == "may not contain ',': 'a,b'"
    assert command_text_problem("a\nb") == "contains a control character: 'a\\nb'"
    assert command_text_problem("x" * 5000) is not None
    with pytest.raises(UserInputError, match="model path may not contain"):
        check_command_text("/d/a,b", "model path", forbid=",")
    with pytest.raises(UserInputError, match="absolute path on the device"):
        check_device_path("rel/x", "output file")
    assert model_file_name_problem("ok.tflite") is None
    assert model_file_name_problem("é" * 200 + ".tflite") is not None  # 400+ bytes: longer than NAME_MAX


def test_frame_names_are_safe_and_unique() -> None:
    assert frame_stem("coffee") == "coffee"
    assert frame_stem("../etc/pass wd") == "etc_pass_wd"
    assert frame_stem("ünïcødé") == "unicde"
    assert frame_stem("...") == "frame"
    namer = FrameNamer()
    assert [namer.name(n) for n in ["a", "a", "A", "a-2", "b", "a"]] == ["a", "a-2", "A-3", "a-2-2", "b", "a-4"]


def test_path_problems_are_located(tmp_path: Path) -> None:
    (tmp_path / "adir.tflite").mkdir()
    e = _err(tmp_path, GOOD.replace("  - zoo: espcn\n", "  - path: adir.tflite\n    scale: 2\n"))
    assert e.location is not None and e.location.field == "models[0].path" and "folder" in e.message
    e = _err(tmp_path, GOOD.replace("    - skimage: coffee\n", "    - path: " + "x" * 300 + ".png\n"))
    assert e.location is not None and e.location.field == "inputs.images[0].path"
    e = _err(tmp_path, GOOD.replace("  images:\n    - skimage: coffee\n", f"  video:\n    - path: {tmp_path}\n"))
    assert e.location is not None and e.location.field == "inputs.video[0].path" and "folder" in e.message


def test_device_configs_use_the_same_loader(tmp_path: Path) -> None:
    p = _write(tmp_path, _billion_laughs(), "phone.yaml")
    with pytest.raises(UserInputError, match="more than"):
        load_yaml(p)


@pytest.mark.parametrize("content", [
    _billion_laughs(), _small_alias_bomb(), "name: " + "[" * 5000 + "]" * 5000 + "\n", "a: &a [1, *a]\n",
    GOOD.replace("threads: 2", "threads: \x002"), GOOD.replace("timeout_s: 300", "timeout_s: .inf"),
    GOOD.replace("threads: 2", "threads: true"),
])
def test_cli_check_exit_2_one_line(tmp_path: Path, content: str) -> None:
    p = _write(tmp_path, content)
    r = subprocess.run([PERFLAB, "scenario", "check", str(p)], capture_output=True, text=True, check=False,
                       timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith(f"perflab: error: {p}:")
