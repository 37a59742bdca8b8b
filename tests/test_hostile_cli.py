"""A hostile user at the command line: every bad number, file, URL or name is one line on
stderr and exit 2 — never a traceback, a usage box, a hang or an internal error.

The mechanisms are checked as classes, so that the next hostile case is caught here: every
numeric option of every command goes through one finite-and-in-range type
(:mod:`perflab.core.numbers`), every file a user names is opened without blocking and refused
unless regular (:mod:`perflab.core.files`), every results-store URL is parsed by SQLAlchemy's
own parser first (:func:`perflab.store.sql.normalize_url`).
"""

from __future__ import annotations

import math
import os
import pty
import subprocess
import sys
import textwrap
import time
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.cli import cli_commands

from perflab.core.files import open_regular, read_regular_bytes, regular_file_problem
from perflab.core.numbers import Number, NumberSpec, number_problem, parse_number
from perflab.core.tflite_file import tflite_problem
from perflab.errors import UserInputError
from perflab.store.sql import normalize_url
from perflab.tracing.ftrace import clock_from_trace_clock

PERFLAB = [sys.executable, "-m", "perflab"]
REPO = Path(__file__).resolve().parent.parent


def _perflab(*args: str | Path, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PERFLAB, *map(str, args)], capture_output=True, text=True, timeout=timeout_s, check=False,
                          stdin=subprocess.DEVNULL)


def _one_line_exit_2(res: subprocess.CompletedProcess[str]) -> str:
    """The run refused the input as a user error: exit 2, one ``perflab: error:`` line, no box."""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not _tf_noise(ln)]
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("perflab: error: "), res.stderr
    assert "Traceback" not in res.stderr and "╭" not in res.stderr and "internal error" not in res.stderr
    return lines[0]


def _tf_noise(line: str) -> bool:
    """TensorFlow's own start-up lines on stderr (not perflab's)."""
    return line.startswith(("I0000", "W0000", "E0000", "To enable the following", "WARNING: All log messages"))


# ---- the numeric option type -------------------------------------------------------------------

SPECS = [NumberSpec(), NumberSpec(min=0, max=3600), NumberSpec(integer=True, min=1, max=32),
         NumberSpec(min=0, min_open=True), NumberSpec(min=0, max=1, min_open=True, max_open=True)]


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=30), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                      st.integers().map(str), st.sampled_from(["nan", "-nan", "inf", "-inf", "Infinity", "1e309",
                                                               "0x10", "1_000", " 5 ", "", "-0", "1e-400"])),
       spec=st.sampled_from(SPECS))
def test_a_number_is_finite_and_in_range_or_refused_in_words(text: str, spec: NumberSpec) -> None:
    try:
        value = parse_number(text, spec)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        assert number_problem(text, spec) == str(exc)
        return
    assert math.isfinite(value)
    assert not spec.integer or isinstance(value, int)
    assert spec.min is None or (value >= spec.min and not (spec.min_open and value == spec.min))
    assert spec.max is None or (value <= spec.max and not (spec.max_open and value == spec.max))


def test_nan_and_infinity_are_never_numbers() -> None:
    for text in ("nan", "NaN", "-nan", "inf", "-inf", "infinity", "1e999"):
        assert number_problem(text, NumberSpec()) is not None, text
    assert parse_number("1e3", NumberSpec(integer=True)) == 1000
    assert number_problem("2.5", NumberSpec(integer=True)) is not None


def _is_numeric(annotation: Any) -> bool:
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return any(a in (int, float) for a in (typing.get_args(annotation) if union else (annotation,)))


def test_every_numeric_option_of_every_command_goes_through_the_one_number_type() -> None:
    unchecked = []
    seen = 0
    for path, callback in cli_commands():
        for name, hint in typing.get_type_hints(callback, include_extras=True).items():
            if name == "return":
                continue
            base, *meta = typing.get_args(hint) if typing.get_origin(hint) is typing.Annotated else (hint,)
            if _is_numeric(base):
                seen += 1
                if not any(isinstance(getattr(m, "parser", None), Number) for m in meta):
                    unchecked.append(f"perflab {' '.join(path)} {name}")
    assert seen >= 30  # the walk found the commands
    assert not unchecked, "numeric options without perflab.cli.options.number_option: " + ", ".join(unchecked)


def _number_parsers() -> list[tuple[str, Number]]:
    found = []
    for path, callback in cli_commands():
        for hint in typing.get_type_hints(callback, include_extras=True).values():
            if typing.get_origin(hint) is typing.Annotated:
                found += [(f"perflab {' '.join(path)} {m.parser.option}", m.parser)
                          for m in typing.get_args(hint)[1:] if isinstance(getattr(m, "parser", None), Number)]
    return found


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=20), st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e999", "-0.0", "65536",
                                                             "4294967296", "1e-320", "0x1p3", "٣"])),
       pick=st.integers(min_value=0))
def test_every_numeric_option_takes_any_text_as_a_number_in_range_or_one_user_error(text: str, pick: int) -> None:
    parsers = _number_parsers()
    where, parser = parsers[pick % len(parsers)]
    try:
        value = parser(text)
    except UserInputError as exc:
        assert "\n" not in str(exc) and parser.option in str(exc), where
        return
    assert number_problem(value, parser.spec) is None, (where, text, value)


@pytest.mark.parametrize("args", [
    ["run", "s.yaml", "--reconnect-wait-s", "-1"],
    ["run", "s.yaml", "--reconnect-wait-s", "nan"],
    ["run", "s.yaml", "--reconnect-wait-s", "abc"],
    ["emulate", "--devices", "0"],
    ["emulate", "--devices", "2.5"],
    ["compare", "a", "b", "--alpha", "inf"],
    ["trace", "parse", "x.txt", "--counter-hz", "nan"],
    ["meter", "read", "/dev/null", "--type", "scpi", "--interval-s", "-inf"],
])
def test_a_bad_number_on_the_command_line_is_one_line_exit_2(args: list[str]) -> None:
    line = _one_line_exit_2(_perflab(*args))
    assert "command line: --" in line


def test_an_unknown_emulator_profile_says_where_profiles_are_looked_for(tmp_path: Path) -> None:
    res = subprocess.run([*PERFLAB, "--config-dir", str(tmp_path), "emulate", "--profile", "nosuch"], capture_output=True,
                         text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    line = _one_line_exit_2(res)
    assert "'nosuch'" in line and "pixel7" in line and str(tmp_path / "emulator_profiles") in line


def test_meter_read_with_a_nan_timeout_on_a_silent_port_does_not_hang() -> None:
    leader, follower = pty.openpty()  # a port that never answers
    try:
        line = _one_line_exit_2(_perflab("meter", "read", os.ttyname(follower), "--type", "scpi", "--once",
                                         "--timeout-s", "nan", timeout_s=60))
    finally:
        os.close(leader)
        os.close(follower)
    assert "--timeout-s" in line


# ---- files that block, or are not files -------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "some.fifo"
    os.mkfifo(p)
    return p


def test_open_regular_refuses_what_is_not_a_regular_file_without_blocking(tmp_path: Path, fifo: Path) -> None:
    regular = tmp_path / "f.txt"
    regular.write_bytes(b"hello")
    with open_regular(regular) as f:
        assert f.read() == b"hello"
    assert read_regular_bytes(regular) == b"hello"
    cases = {fifo: "named pipe", tmp_path: "folder", Path("/dev/null"): "character device",
             tmp_path / "missing": "not found"}
    for path, words in cases.items():
        problem = regular_file_problem(path)
        assert problem is not None and words in problem, (path, problem)
    with pytest.raises(UserInputError, match="larger than 3 bytes"):
        read_regular_bytes(regular, max_bytes=3)


@pytest.mark.parametrize("command", [
    ["scenario", "check", "{fifo}"],
    ["trace", "parse", "{fifo}"],
    ["profile", "parse", "{fifo}"],
    ["run", "{fifo}"],
    ["rack", "check", "{fifo}"],
    ["trace", "parse", "{regular}", "--trace-clock", "{fifo}"],
])
def test_a_named_pipe_as_a_file_argument_is_refused_at_once(command: list[str], fifo: Path, tmp_path: Path) -> None:
    regular = tmp_path / "t.txt"
    regular.write_text("# tracer: nop\n")
    res = _perflab(*(a.format(fifo=fifo, regular=regular) for a in command), timeout_s=60)
    assert res.returncode == 2, (res.stdout, res.stderr)
    _one_line_exit_2(res)


@pytest.mark.parametrize("target", ["/dev/null", "{regular}"])
def test_run_out_that_is_not_a_folder_says_so(target: str, tmp_path: Path) -> None:
    regular = tmp_path / "file.txt"
    regular.write_text("x")
    line = _one_line_exit_2(_perflab("run", REPO / "scenarios" / "light.yaml", "--out", target.format(regular=regular)))
    assert "not a folder" in line and "--resume" not in line


# ---- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["postgresql://[::1", "postgresql://u:secret@h:x/db", "postgres://u:secret@h:99999/d",
                                 "postgresql://u:secret@[::1/db"])
def test_a_store_url_sqlalchemy_cannot_parse_is_a_user_error_without_the_password(url: str) -> None:
    with pytest.raises(UserInputError) as ei:
        normalize_url(url)
    assert "secret" not in str(ei.value) and "\n" not in str(ei.value)


@settings(max_examples=300, deadline=None)
@given(rest=st.text(max_size=40), scheme=st.sampled_from(["postgresql", "postgres", "sqlite", "mysql", "x"]))
def test_any_store_url_is_normalized_or_refused_as_bad_input(rest: str, scheme: str) -> None:
    try:
        out = normalize_url(f"{scheme}://{rest}")
    except UserInputError as exc:
        assert "\n" not in str(exc)
        return
    from sqlalchemy.engine import make_url

    make_url(out)  # what perflab hands on, SQLAlchemy can read


def test_store_info_with_an_unparseable_url_is_one_line() -> None:
    line = _one_line_exit_2(_perflab("store", "info", "--db", "postgresql://[::1"))
    assert "--db" in line


# ---- names that are not names --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["';id'", "$(reboot)", "local;id", "LOCAL", "a" * 40, "[';id'] local"])
def test_a_trace_clock_that_is_not_a_clock_name_is_refused(text: str) -> None:
    with pytest.raises(UserInputError):
        clock_from_trace_clock(text)


def test_trace_clock_names_and_files_still_read() -> None:
    assert clock_from_trace_clock("[local] global counter uptime perf mono mono_raw boot x86-tsc\n") == "local"
    assert clock_from_trace_clock("x86-tsc") == "x86-tsc"
    assert clock_from_trace_clock("mono_raw") == "mono_raw"


def test_trace_parse_with_a_shell_word_as_clock_is_one_line(tmp_path: Path) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text("# tracer: nop\n")
    line = _one_line_exit_2(_perflab("trace", "parse", trace, "--trace-clock", "';id'"))
    assert "trace_clock" in line


# ---- model files that are not TFLite models ----------------------------------------------------

ZOO_MODELS = sorted((REPO / "perflab" / "zoo" / "weights").glob("*.tflite"))


def test_every_zoo_model_is_a_tflite_flatbuffer() -> None:
    assert ZOO_MODELS
    for path in ZOO_MODELS:
        assert tflite_problem(path.read_bytes()) is None, path


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda b: b[:4] + b"TFL3" + b[4:])),
       cut=st.integers(min_value=0, max_value=200_000), flips=st.lists(st.tuples(st.integers(0, 200_000),
                                                                                  st.integers(0, 255)), max_size=8))
def test_the_tflite_check_never_raises_on_any_bytes(data: bytes, cut: int, flips: list[tuple[int, int]]) -> None:
    assert tflite_problem(data) is None or "\n" not in (tflite_problem(data) or "")
    model = bytearray(ZOO_MODELS[0].read_bytes())
    for at, value in flips:
        model[at % len(model)] = value
    problem = tflite_problem(bytes(model[:cut]))  # damaged or cut anywhere: a reason or None, never an exception
    assert problem is None or isinstance(problem, str)


def _scenario_with_model(tmp_path: Path, model: str) -> Path:
    s = tmp_path / "s.yaml"
    s.write_text("name: t\ngeometry: {lr_width: 64, lr_height: 32, scale: 2}\n"
                 f"models:\n  - path: {model}\n    scale: 2\n"
                 "runs: {timeout_s: 300, iterations: 10}\ninputs:\n  images:\n    - skimage: coffee\n")
    return s


@pytest.mark.parametrize("content", ["passwd", b"", b"\x8f" * 3000, b"1234TFL3" + b"\xff" * 64])
def test_scenario_check_refuses_a_model_that_is_not_tflite(tmp_path: Path, content: str | bytes) -> None:
    if content == "passwd":
        model = "/etc/passwd"
    else:
        assert isinstance(content, bytes)
        (tmp_path / "m.tflite").write_bytes(content)
        model = "m.tflite"
    line = _one_line_exit_2(_perflab("scenario", "check", _scenario_with_model(tmp_path, model)))
    assert "models[0].path" in line and ("not a TFLite model" in line or "empty" in line), line


def test_scenario_check_takes_a_real_model(tmp_path: Path) -> None:
    (tmp_path / "m.tflite").write_bytes(ZOO_MODELS[0].read_bytes())
    res = _perflab("scenario", "check", _scenario_with_model(tmp_path, "m.tflite"))
    assert res.returncode == 0, res.stderr


def test_models_analyze_of_garbage_is_one_line_not_an_internal_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(bytes(range(256)) * 12)
    line = _one_line_exit_2(_perflab("models", "analyze", "--model", garbage, "--json"))
    assert "--model" in line and "not a TFLite model" in line


# ---- a double Ctrl-C still leaves the INCOMPLETE page ----------------------------------------------


@pytest.mark.parametrize("gap_s", [0.2, 1.5])
def test_a_second_ctrl_c_still_leaves_the_incomplete_page(tmp_path: Path, gap_s: float) -> None:
    """The second signal lands while the run is stopping (cancelling, restoring) or while its
    page is written: either way the process exits at once with 130 and the page is there."""
    import signal
    import textwrap

    sc = tmp_path / "three.yaml"
    sc.write_text(textwrap.dedent("""\
        name: three
        geometry: {lr_width: 320, lr_height: 180, scale: 2}
        pacing: {fps: 100, also_back_to_back: true}
        models:
          - {zoo: espcn, variants: [fp32, int8]}
        delegates: [xnnpack]
        threads: 1
        runs: {warmup: 1, iterations: 400}
        inputs:
          images:
            - skimage: coffee
        """))
    out = tmp_path / "run"
    proc = subprocess.Popen([*PERFLAB, "run", str(sc), "--device", "local", "--out", str(out), "--reports-dir",
                             str(tmp_path / "reports")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for line in proc.stdout:
        if "bicubic_x2.fp32.xnnpack: ok" in line:
            proc.send_signal(signal.SIGINT)
            time.sleep(gap_s)
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    from perflab.store.runfolder import load_run

    run = load_run(out)  # results.json intact
    assert any(c.status == "ok" for c in run.cells)
    page = out / "index.html"
    assert page.is_file(), err
    assert "INCOMPLETE" in page.read_text()
    assert f"perflab run --resume {out}" in err


def test_a_second_ctrl_c_inside_an_import_the_page_needs_still_leaves_the_page(tmp_path: Path) -> None:
    """The handler runs between two bytecodes of the main thread; when that thread was inside an
    import the page needs (CI, 2026-12-08: ``perflab.report.matrix_html``; since then the page
    writer imports its own modules whole, but matplotlib loads its Agg backend on the first figure
    drawn), the module stays half-initialised in the process. The page then comes from a fresh
    ``perflab report``."""
    from support.records import cell, latency_of, run, write_run_folder

    folder = tmp_path / "run"
    c = cell("bicubic_x2.fp32.cpu", latency_ms=latency_of([2.0, 2.5, 2.1, 2.2, 2.4]))
    write_run_folder(folder, run([c]), {c.artifact_key: [2.0, 2.5, 2.1, 2.2, 2.4]})
    # in a fresh interpreter: this one may have drawn figures already, and matplotlib keeps the
    # backend it loaded then
    probe = textwrap.dedent(f"""\
        import sys, types
        from pathlib import Path
        from perflab.report import html  # imported whole, as `perflab run` does before measuring
        from perflab.cli.run import _page_after_second_signal
        folder = Path({str(folder)!r})
        # its imports done, its definitions not yet
        sys.modules["matplotlib.backends.backend_agg"] = types.ModuleType("matplotlib.backends.backend_agg")
        try:
            html.render_run_report(folder)
            print("in-process: drawn")
        except AttributeError:
            print("in-process: AttributeError")
        print(_page_after_second_signal(folder, report=True), end="")
        """)
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "in-process: AttributeError",  # what the handler meets in-process
        f"perflab: report (INCOMPLETE): {folder / 'index.html'}; finish the run with: perflab run --resume {folder}"]
    assert "bicubic_x2" in (folder / "index.html").read_text()


# ---- a scenario that would cost hours and gigabytes -----------------------------------------------

BIG = """\
name: big
geometry: {lr_width: 4096, lr_height: 4096, scale: 2}
models:
  - zoo: espcn
inputs:
  max_frames: 100000
  synthetic: {frames: 100000, width: 8192, height: 8192}
"""


def test_scenario_check_warns_what_a_huge_clip_will_cost(tmp_path: Path) -> None:
    sc = tmp_path / "big.yaml"
    sc.write_text(BIG)
    res = _perflab("scenario", "check", sc, timeout_s=120)
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "perflab: warning:" in ln]
    assert any("inputs.synthetic" in w and "100000 frames of 8192×8192" in w and "gigapixels" in w and "MiB per frame"
               in w for w in warnings), res.stderr
    assert any("geometry" in w and "8192×8192 HR" in w for w in warnings), res.stderr


def _items(n: int, side: int) -> Iterator[tuple[int, Any, Any]]:
    import numpy as np

    for i in range(n):
        yield i, None, np.zeros((side, side, 3), dtype=np.float32)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 30), side=st.sampled_from([4, 64, 512, 1024]), budget_mib=st.sampled_from([1, 16, 512]))
def test_quality_frames_go_to_the_device_in_chunks_bounded_by_count_and_bytes(n: int, side: int,
                                                                             budget_mib: int) -> None:
    from perflab.lab.inputs import CHUNK_MAX_FRAMES, frame_chunks

    pulled = 0

    def counted() -> Iterator[tuple[int, Any, Any]]:
        nonlocal pulled
        for item in _items(n, side):
            pulled += 1
            yield item

    seen: list[int] = []
    budget = budget_mib * 2**20
    for chunk in frame_chunks(counted(), 2, budget_bytes=budget):
        assert pulled <= len(seen) + len(chunk) + 1  # nothing read ahead beyond the next frame
        assert 1 <= len(chunk) <= CHUNK_MAX_FRAMES
        assert len(chunk) == 1 or sum(lr.nbytes * 5 for _, _, lr in chunk) <= budget
        seen += [i for i, _, _ in chunk]
    assert seen == list(range(n))


def test_the_run_prepass_reads_only_the_frames_it_keeps(tmp_path: Path) -> None:
    """A 100,000-frame clip is not rendered once before the first cell just to be counted."""
    from perflab.lab.inputs import Inputs
    from perflab.quality.synthetic import iter_synthetic_frames
    from perflab.scenario.schema import Geometry, Outputs
    from perflab.store.runfolder import RunFolder

    pulled = 0

    def source() -> Iterator[Any]:
        nonlocal pulled
        for f in iter_synthetic_frames(100_000, fps=30.0, width=64, height=64, seed=0):
            pulled += 1
            yield f

    outputs = Outputs(png_frames=4, video_frames=6)
    inputs = Inputs(source, Geometry(lr_width=32, lr_height=32, scale=2), outputs)
    inputs.prepass(RunFolder.create(tmp_path / "run"), tmp_path / "s.yaml")
    assert inputs.timing_frame is not None
    assert pulled <= 6 + 1  # the frames kept as PNG or as video, no more
    assert inputs.reference_video is not None and inputs.reference_video.frames == 6
