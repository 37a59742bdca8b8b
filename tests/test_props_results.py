"""Property: whatever bytes a run folder's results.json (and samples.csv) hold, ``perflab
report``'s loading path either reads the run or raises one StoreError whose message is one
line naming the file — no other exception, no traceback. A few examples also go through the
CLI command itself (exit 0 or 2, one line on stderr for 2)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import records
from typer.testing import CliRunner

from perflab.cli import app
from perflab.errors import StoreError
from perflab.report.runfolder import load_run_folder
from perflab.store.results import (
    QualityRecord,
)


def _seed() -> dict[str, Any]:
    cell = records.cell("bicubic_x2.fp32.cpu", family="bicubic", latency_ms=records.latency(10.0, p90_ms=11.0),
                        quality=QualityRecord(psnr_y_db=30.0, ssim_y=0.9, frames=1))
    raw: dict[str, Any] = json.loads(records.run([cell]).to_json())
    return raw


SEED = _seed()
SEED_V1 = {**SEED, "schema": "perflab.results/1"}
SAMPLES = b"cell_id,series,iteration,latency_ms\nbicubic_x2.fp32.cpu,paced,0,10.0\nbicubic_x2.fp32.cpu,paced,1,10.5\n"

json_leaf = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
             | st.sampled_from([10**400, -1, 0, "perflab.results/99", "perflab.results/1", ""]))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    obj[path[0]] = _set(obj[path[0]], path[1:], value)
    return obj


@st.composite
def structural(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(draw(st.sampled_from([SEED, SEED_V1]))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        doc = _set(doc, path, draw(json_value))
    text = json.dumps(doc, allow_nan=True)  # NaN / Infinity / -Infinity tokens where floats are not finite
    return text.encode()


@st.composite
def textual(draw: st.DrawFn) -> bytes:
    data = bytearray(json.dumps(draw(st.sampled_from([SEED, SEED_V1])), indent=2).encode())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "byte", "truncate", "nest"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"\xff", b"\x00", b",",
                                                b"{", b"[", b"]", b"}", b'"', b"\\", b"9" * 5000, b"\xef\xbb\xbf"]))
        elif op == "delete":
            data[at : at + draw(st.integers(1, 50))] = b""
        elif op == "byte" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            data = data[:at]
        elif op == "nest":
            depth = draw(st.sampled_from([10, 1000, 100_000]))
            data[at:at] = b"[" * depth + b"]" * depth
    return bytes(data)


def check_loading(results: bytes, samples: bytes = SAMPLES) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / "results.json").write_bytes(results)
        (folder / "samples.csv").write_bytes(samples)
        try:
            run = load_run_folder(folder)
        except StoreError as exc:
            msg = str(exc)
            assert "\n" not in msg and "\r" not in msg, msg
            assert str(folder) in msg, msg
            return
    # read: every number in it is finite or missing
    for c in run.run.cells:
        lat = c.latency_ms
        for v in (lat.median, lat.mean, lat.p90) if lat else ():
            assert v is None or math.isfinite(v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structural() | textual() | st.binary(max_size=300))
def test_report_loading_never_crashes(results: bytes) -> None:
    check_loading(results)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
       | st.lists(st.lists(st.text(max_size=6), max_size=5), max_size=5).map(
           lambda rows: ("cell_id,series,iteration,latency_ms\n" + "\n".join(",".join(r) for r in rows)).encode()))
def test_samples_csv_never_crashes(samples: bytes) -> None:
    check_loading(json.dumps(SEED).encode(), samples)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(textual())
def test_report_cli_exit_0_or_2_one_line(results: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "results.json").write_bytes(results)
        result = CliRunner().invoke(app, ["report", d])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2) and "Traceback" not in result.output
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
