"""Property: whatever text a scenario file holds, ``perflab scenario check`` exits 0 or 2, and
2 comes with exactly one line on stderr and never a traceback.

Scenario texts are mutations of the shipped scenarios (bytes and YAML tokens inserted,
deleted, swapped, values replaced with hostile ones) and random YAML documents; each goes
through the CLI's own command function (typer's runner, in process).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from perflab.cli import app

REPO = Path(__file__).resolve().parent.parent
SEEDS = [p.read_bytes() for p in sorted((REPO / "scenarios").glob("*.yaml"))]

HOSTILE_TOKENS = [
    b"&a ", b"*a", b"[", b"]", b"{", b"}", b": ", b"- ", b"\n", b"\t", b"\x00", b"\xff", b"\xe9", b"'", b'"',
    b".inf", b"-.inf", b".nan", b"1e10", b"1e999", b"true", b"~", b"null", b"0x1F", b"!!python/object:os.system ",
    b"!!binary ", b"<<: *a", b"? ", b"#", b"%YAML 1.1\n---\n", b"---\n", b"...\n", b"|\n", b">\n", b"9" * 5000,
    b"a,b.tflite", b"2001-13-45", b"\xef\xbb\xbf", "ü".encode(), b"\r\n",
]
HOSTILE_VALUES = [
    ".inf", "-.inf", ".nan", "1e10", "-1", "0", "true", "false", "null", "~", "[]", "{}", "''", "'a\\nb'",
    '"a,b.tflite"', '"x\\u0000y"', "99999999999999999999", "1.5", "[1, [2, [3]]]", "&x [*x]", "*nope",
    "!!float 1", "!!str 3", "2001-12-14", "'" + "x" * 300 + "'",
]
VALUE_LINE = st.sampled_from(HOSTILE_VALUES)


@st.composite
def mutated_scenario(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace_value", "swap_lines", "byte"]))
        if op == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.sampled_from(HOSTILE_TOKENS))
        elif op == "delete" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at : at + draw(st.integers(1, 40))] = b""
        elif op == "replace_value":
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            key, sep, _ = lines[i].partition(b": ")
            if sep:
                lines[i] = key + b": " + draw(VALUE_LINE).encode()
            data = bytearray(b"\n".join(lines))
        elif op == "swap_lines":
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
        elif data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
SCENARIO_KEYS = ["schema", "name", "description", "geometry", "pacing", "baseline", "models", "delegates", "threads",
                 "runs", "cooldown", "stability", "inputs", "tuning", "telemetry", "profiling"]


@st.composite
def random_yaml(draw: st.DrawFn) -> bytes:
    doc = draw(st.dictionaries(st.sampled_from(SCENARIO_KEYS) | st.text(max_size=8), json_like, max_size=8))
    return yaml.safe_dump(doc, allow_unicode=draw(st.booleans())).encode()


def check_cli(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.yaml"
        path.write_bytes(content)
        result = CliRunner().invoke(app, ["scenario", "check", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"perflab: error: {path}"), lines[0]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_scenario())
def test_mutated_shipped_scenarios(content: bytes) -> None:
    check_cli(content)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_yaml() | st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_random_documents(content: bytes) -> None:
    check_cli(content)


def test_shipped_scenarios_pass() -> None:
    for seed in SEEDS:
        check_cli(seed)
