"""``perflab import``: captures measured elsewhere (benchmark_model of several versions, the
benchmark app's logcat, a device farm's getprop dump) become IMPORTED cells with their exact
numbers, what they lack and their provenance; hostile captures are one line and exit 2.

The fixtures are written from the public formats (/work/shared/reference/formats.md, and the
tool's source): tests/fixtures/benchmark_model/ (one per tool version) and tests/fixtures/import/.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perflab.errors import UserInputError
from perflab.formats.benchmark_output import parse_output
from perflab.formats.captures import split_capture
from perflab.lab.importer import (
    MAX_CAPTURE_BYTES,
    CaptureFile,
    ImportOptions,
    ZooEntry,
    build_run,
    decode_capture,
    read_capture,
)
from perflab.report.cell_lines import cell_line
from perflab.rules.device import cell_is_imported
from perflab.store.results import CellRecord, CellStatus, RunRecord
from perflab.tracing.opprofile import TableState, op_profile

BM = Path(__file__).parent / "fixtures" / "benchmark_model"
IMP = Path(__file__).parent / "fixtures" / "import"
NOW = datetime(2026, 12, 7, 1, 0, 0, tzinfo=UTC)
ZOO = (ZooEntry("espcn_x2", "espcn", 2, "fp32", "espcn_x2_fp32.tflite", "a" * 64),
       ZooEntry("espcn_x2", "espcn", 2, "fp16", "espcn_x2_fp16.tflite", "b" * 64),
       ZooEntry("fsrcnn_x3", "fsrcnn", 3, "int8", "fsrcnn_x3_int8.tflite", "c" * 64))


def _capture(path: Path, text: str | None = None) -> CaptureFile:
    data = path.read_bytes() if text is None else text.encode()
    return CaptureFile(path.name, hashlib.sha256(data).hexdigest(), len(data), decode_capture(path.name, data))


def _run(*paths: Path, **kw: object) -> RunRecord:
    opts = ImportOptions(device=str(kw.pop("device", "farm-phone")), zoo=ZOO, **kw)  # type: ignore[arg-type]
    return build_run([_capture(p) for p in paths], opts, now_utc=NOW)


def _one(run: RunRecord) -> CellRecord:
    assert len(run.cells) == 1, [c.cell_id for c in run.cells]
    return run.cells[0]


# fixture → (init, first, warm-up mean, mean, std, n) in ms, as the capture prints them
VERSIONS = {
    "tf113_cpu_very_old.txt": (5.412, None, 405.228, 402.113, 4.211, 50),
    "tf21_cpu_sr_slow.txt": (253.8, 1610.04, 1610.04, 1532.25, 7.06, 50),
    "tf23_gpu_noprefix.txt": (871.204, 130.112, 122.241, 118.961, None, 50),
    "tf24_cpu_espcn_profile.txt": (0.911, 42.859, 34.8251, 33.4094, None, 50),
    "tf215_xnnpack_newest.txt": (11.409, 23.112, 19.8437, 18.3125, 0.233, 30),
    "tf216_gpu_opencl_slow_init.txt": (1530.25, 212.345, 188.0, 40.9532, None, 20),
    "tf29_nnapi_partial_logcat.txt": (120.871, 14.522, 9.72133, 9.51271, None, 105),
}


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_each_tool_version_imports_with_its_exact_numbers_and_provenance(name: str) -> None:
    path = BM / name
    c = _one(_run(path))
    init, first, warm, mean, std, n = VERSIONS[name]
    lat = c.latency_ms
    assert c.status is CellStatus.OK and lat is not None and cell_is_imported(c)
    assert lat.init == pytest.approx(init) and lat.warmup_mean == pytest.approx(warm)
    assert lat.mean == pytest.approx(mean) and lat.n == n
    assert (lat.first is None) == (first is None) and (first is None or lat.first == pytest.approx(first))
    if std is not None:
        assert lat.std == pytest.approx(std)
    assert lat.median is None and "median" in lat.missing and "p90" in lat.missing  # never invented
    p = c.provenance
    assert p is not None and p.kind == "imported" and p.source_file == name
    assert p.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and p.size_bytes == path.stat().st_size
    assert p.format == ("logcat" if "logcat" in name else "benchmark_model")
    assert "tool_version" in p.missing and p.imported_utc == "2026-12-07T01:00:00Z"
    assert c.device.kind == "imported" and c.telemetry.missing["power_mw"].startswith("an imported capture")
    assert "IMPORTED" in cell_line(c)


def test_a_benchmark_app_logcat_with_two_runs_is_two_cells_named_from_the_log() -> None:
    run = _run(IMP / "app_logcat_two_runs.txt", props=_props(), props_name="getprop_farm_phone.txt")
    cpu, gpu = run.cells
    # identity from the log: graph path (linked to the zoo by file name), XNNPACK lines, --use_gpu=true
    assert (cpu.cell_id, gpu.cell_id) == ("espcn_x2.fp32.xnnpack", "espcn_x2.fp16.gpu")
    assert (cpu.model.sha256, gpu.model.sha256) == ("a" * 64, "b" * 64) and cpu.threads == 4
    # the newest count= line's median and p95 are kept; other apps' logcat lines are left out
    lat = gpu.latency_ms
    assert lat is not None and (lat.init, lat.first, lat.mean, lat.std, lat.n) == pytest.approx(
        (1711.25, 9.412, 6.98931, 0.152, 143))
    assert (lat.median, lat.p95, lat.min, lat.max) == pytest.approx((6.96, 7.301, 6.79, 7.714))
    assert cpu.latency_ms is not None and cpu.latency_ms.median == pytest.approx(18.472)
    assert cpu.telemetry.tool_mem_mb == pytest.approx(31.0156) and "mem_peak_mb" in cpu.telemetry.missing
    assert gpu.provenance is not None and gpu.provenance.notes[0] == "run at line 24 of app_logcat_two_runs.txt"
    assert "without a year" in gpu.provenance.missing["captured_utc"]
    assert any(d.kind == "applied" and d.coverage == "full" for d in gpu.delegates)
    dev = run.devices[0]
    assert (dev.serial, dev.model, dev.soc, dev.sdk, dev.extra["android_release"]) == (
        "farm-phone", "SM-S918B", "SM8550", 34, "14")


def test_a_summary_line_alone_in_scientific_notation_imports_with_n_missing() -> None:
    c = _one(_run(IMP / "farm_summary_year.txt", soc="Snapdragon 8 Gen 2"))
    lat = c.latency_ms
    assert c.cell_id == "fsrcnn_x3.int8.nnapi" and c.model.scale == 3  # Use NNAPI: [1]; the zoo by name
    assert lat is not None and (lat.init, lat.first, lat.mean) == pytest.approx((2405.18, 1187.3, 1022.91))
    assert lat.n == 0 and "count=" in lat.missing["n"] and "std" in lat.missing
    assert c.provenance is not None and c.provenance.captured_local == "2026-11-30T22:14:07"
    assert c.device.soc == "Snapdragon 8 Gen 2"


def test_options_fill_what_the_log_does_not_say_and_win_with_a_note() -> None:
    c = _one(_run(BM / "tf24_cpu_espcn_profile.txt", variant="fp32"))
    assert c.cell_id == "espcn_x2.fp32.cpu" and c.model.sha256 == "a" * 64  # now a zoo artefact
    d = _one(_run(BM / "tf215_xnnpack_newest.txt", variant="fp32", delegate="cpu"))
    assert d.delegate == "cpu" and d.provenance is not None
    assert any("--delegate cpu was given" in n for n in d.provenance.notes)
    e = _one(_run(BM / "tf23_gpu_noprefix.txt", model="/tmp/x/espcn_x2_fp32.tflite", model_sha256="a" * 64))
    assert e.cell_id == "espcn_x2.fp32.gpu" and any("by sha256" in n for n in e.provenance.notes)  # type: ignore[union-attr]


def test_op_tables_whole_cut_short_and_missing() -> None:
    text = (BM / "tf24_cpu_espcn_profile.txt").read_text()
    whole = _one(_run(BM / "tf24_cpu_espcn_profile.txt"))
    assert whole.layers is not None and len(whole.layers.rows) == 6 and whole.layers.missing is None
    cut_at = text.index("Top by Computation Time", text.index("Regular Benchmark Runs"))  # logcat cut the message after the Run Order rows
    rows = text[:cut_at].rstrip().splitlines()
    cut = "\n".join(rows[:-3]) + "\n"
    state = op_profile(parse_output(cut))
    assert state.table is TableState.TRUNCATED and "before its Timings line" in state.table_note
    c = build_run([CaptureFile("cut.log", "0" * 64, len(cut), cut)], ImportOptions(device="p"), now_utc=NOW).cells[0]
    assert c.status is CellStatus.OK and c.layers is not None and 0 < len(c.layers.rows) < 6
    assert c.provenance is not None and any("truncated" in n for n in c.provenance.notes)
    none = _one(_run(BM / "nnapi_not_applied.txt"))
    assert none.layers is not None and none.layers.rows == [] and "no op-profiling table" in (none.layers.missing or "")


def test_a_capture_whose_run_failed_is_a_failed_cell_with_the_tools_reason() -> None:
    c = _one(_run(BM / "err_gpu_failed.txt"))
    assert c.status is CellStatus.FAILED and c.latency_ms is None and "Failed to apply" in (c.reason or "")


def test_a_printed_version_a_model_outside_the_zoo_and_a_flat_props_dump(tmp_path: Path) -> None:
    text = ("INFO: TfLite version: 2.15.0\nINFO: Graph: [/data/local/tmp/mynet_x4_int8.tflite]\n"
            "INFO: Inference timings in us: Init: 900, First inference: 2000, Warmup (avg): 1500, Inference (avg): 1400.5\n")
    c = build_run([CaptureFile("v.log", "0" * 64, len(text), text)], ImportOptions(device="p"), now_utc=NOW).cells[0]
    assert (c.cell_id, c.model.family, c.model.scale, c.model.sha256) == ("mynet_x4.int8.cpu", "mynet", 4, None)
    assert c.provenance is not None and c.provenance.tool_version == "2.15.0" and "tool_version" not in c.provenance.missing
    from perflab.lab.importer import read_props

    flat = tmp_path / "props.txt"
    flat.write_text("ro.product.model=Pixel 8 Pro\nro.soc.model = Tensor G3\nro.build.version.release=14\n")
    assert read_props(flat)[2]["ro.soc.model"] == "Tensor G3"
    flat.write_text("no properties here\n")
    with pytest.raises(UserInputError, match="not a getprop dump"):
        read_props(flat)


def test_a_coloured_logcat_with_quoted_app_args_and_two_imports_of_the_same_work() -> None:
    text = ("\x1b[32m12-05 09:41:02.301 25289 25289 I BenchmarkModelActivity: Running TensorFlow Lite benchmark with "
            "args: '\\\"--graph=/data/local/tmp/espcn_x2_fp16.tflite --use_gpu=true\\\"'\x1b[0m\n"
            "\x1b[32m12-05 09:41:03.842 25289 25289 I tflite  : Inference timings in us: Init: 1.2e+06, First "
            "inference: 9000, Warmup (avg): 8000, Inference (avg): 7000\x1b[0m\n")
    a = build_run([CaptureFile("a.log", "1" * 64, 10, decode_capture("a.log", text.encode()))],
                  ImportOptions(device="p", zoo=ZOO), now_utc=NOW)
    c = _one(a)
    assert c.cell_id == "espcn_x2.fp16.gpu" and c.latency_ms is not None and c.latency_ms.init == pytest.approx(1200.0)
    assert c.provenance is not None and c.provenance.format == "logcat"
    b = build_run([CaptureFile("b.log", "2" * 64, 10, decode_capture("b.log", text.encode()))],
                  ImportOptions(device="p", zoo=ZOO), now_utc=NOW)
    assert a.scenario.sha256 == b.scenario.sha256 and a.run_id != b.run_id  # the same work, other captures


def test_logcat_long_format_filtered_to_its_count_lines_and_a_bare_pasted_line() -> None:
    c = _one(_run(IMP / "logcat_long_grep.txt"))  # no "Running benchmark" lines: the count= lines in order
    lat = c.latency_ms
    assert c.cell_id == "espcn_x2.int8.cpu" and lat is not None
    assert (lat.n, lat.mean, lat.std, lat.init, lat.warmup_mean) == pytest.approx((35, 28.9997, 0.302, 48.117, 29.5502))
    assert c.provenance is not None and c.provenance.format == "logcat" and c.provenance.notes[0].startswith(
        "run at line 2 ")
    line = "I tflite  : Inference timings in us: Init: 5685, First inference: 18535, Warmup (avg): 14462.3, Inference (avg): 14575.2\n"
    d = build_run([CaptureFile("line.txt", "0" * 64, len(line), line)], ImportOptions(device="p", model="espcn_x2",
                  variant="fp32"), now_utc=NOW).cells[0]
    assert d.latency_ms is not None and (d.latency_ms.init, d.latency_ms.first, d.latency_ms.mean) == pytest.approx(
        (5.685, 18.535, 14.5752)) and d.provenance is not None and d.provenance.format == "logcat"


def test_an_imported_bicubic_is_the_baseline_of_the_models_imported_beside_it() -> None:
    text = ("INFO: Graph: [/data/local/tmp/bicubic_x2_fp32.tflite]\nINFO: Use xnnpack: [0]\n"
            "INFO: Inference timings in us: Init: 400, First inference: 2100, Warmup (avg): 2000, Inference (avg): 1900\n")
    files = [CaptureFile("b.log", "0" * 64, len(text), text), _capture(BM / "tf113_cpu_very_old.txt")]
    base, sr = build_run(files, ImportOptions(device="p"), now_utc=NOW).cells
    assert base.baseline and base.cell_id == "bicubic_x2.fp32.cpu" and sr.delegate == "cpu"
    assert sr.deltas is not None and sr.deltas.baseline_cell_id == "bicubic_x2.fp32.cpu"
    assert sr.deltas.latency_mean_ms == pytest.approx(402.113 - 1.9)


def test_nan_from_an_empty_warm_up_and_an_fd_graph_are_missing_never_stored() -> None:
    text = ("INFO: Graph: [fd:12:0:3456]\n"
            "INFO: Running benchmark for at least 0 iterations and at least 0 seconds but terminate if exceeding 150 seconds.\n"
            "INFO: count=0\n"
            "INFO: Running benchmark for at least 10 iterations and at least 0 seconds but terminate if exceeding 150 seconds.\n"
            "INFO: count=10 first=1000 curr=1000 min=900 max=1100 avg=1000 std=50\n"
            "INFO: Inference timings in us: Init: 1000, First inference: 0, Warmup (avg): -nan, Inference (avg): 1000\n")
    run = build_run([CaptureFile("n.log", "0" * 64, len(text), text)], ImportOptions(device="p", model="my.net v2"),
                    now_utc=NOW)
    c = _one(run)
    lat = c.latency_ms
    assert c.cell_id == "my_net_v2.unknown.cpu" and lat is not None and (lat.mean, lat.n) == (1.0, 10)
    assert lat.first is None and lat.warmup_mean is None and "no warm-up runs" in lat.missing["first"]
    assert "NaN" not in run.to_json()


def test_negative_times_are_missing_never_stored() -> None:
    text = ("INFO: count=10 first=1000 curr=1000 min=900 max=1100 avg=1000 std=-50\n"
            "INFO: Inference timings in us: Init: -5, First inference: -2, Warmup (avg): 1000, Inference (avg): 1000\n")
    lat = _one(build_run([CaptureFile("neg.log", "0" * 64, len(text), text)], ImportOptions(device="p"),
                         now_utc=NOW)).latency_ms
    assert lat is not None and (lat.mean, lat.n, lat.min) == (1.0, 10, 0.9)
    assert (lat.init, lat.first, lat.std, lat.cv_pct) == (None, None, None, None)
    assert "not a time" in lat.missing["init"] and "not a time" in lat.missing["std"]


@pytest.mark.parametrize("line", [
    "INFO: count=10 first=1000 curr=1000 min=1100 max=900 avg=1000 std=50\n",  # min above max
    "INFO: count=10 first=1000 curr=1000 min=900 max=1100 avg=5000 std=50\n",  # mean outside [min, max]
])
def test_an_impossible_count_line_keeps_nothing_of_it(line: str) -> None:
    text = line + "INFO: Inference timings in us: Init: 5, First inference: 2000, Warmup (avg): 1000, Inference (avg): 1000\n"
    lat = _one(build_run([CaptureFile("bad.log", "0" * 64, len(text), text)], ImportOptions(device="p"),
                         now_utc=NOW)).latency_ms
    assert lat is not None and lat.mean == 1.0  # the summary line's average
    assert (lat.min, lat.max, lat.std) == (None, None, None)
    assert "impossible" in lat.missing["min"] and "impossible" in lat.missing["std"]


def test_the_same_cell_twice_is_refused_naming_the_second_run() -> None:
    with pytest.raises(UserInputError, match=r"tf215_xnnpack_newest.txt:\d+: a second run of"):
        build_run([_capture(BM / "tf215_xnnpack_newest.txt")] * 2, ImportOptions(device="p"), now_utc=NOW)


def test_split_capture_keeps_the_memory_and_profile_lines_with_their_run() -> None:
    cap = split_capture((IMP / "app_logcat_two_runs.txt").read_text())
    assert cap.logcat and [r.first_line for r in cap.runs] == [2, 24]
    assert "Choreographer" not in cap.runs[0].text and "overall=31.0156" in cap.runs[0].text


@pytest.mark.parametrize(("content", "words"), [
    (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, "binary"),
    (b"\x89PNG\r\n\x1a\n" + b"\x01\x02\x03\x04" * 300, "binary"),
    ("Inference timings in us: Init: 1, First inference: 2 µs".encode("latin-1", "replace") + b"\xe9\xff\n", "not UTF-8"),
    (b"   \n\n", "empty"),
    ("INFO: Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, Inference (avg): 4\n"
     .encode("utf-16"), "UTF-16"),
    (b"hello, this is a shopping list\nmilk\n", "no benchmark_model"),
])
def test_hostile_captures_are_one_line_exit_2(tmp_path: Path, content: bytes, words: str) -> None:
    from perflab.cli.main import app

    f = tmp_path / "capture.log"
    f.write_bytes(content)
    res = CliRunner().invoke(app, ["import", str(f), "--device", "p", "--out", str(tmp_path / "out")])
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(err) == 1 and err[0].startswith("perflab: error: ") and words in err[0], res.stderr
    assert "capture.log" in err[0] and not (tmp_path / "out").exists()


def test_a_huge_capture_is_refused_unread(tmp_path: Path) -> None:
    f = tmp_path / "huge.log"
    with f.open("wb") as fh:
        fh.truncate(MAX_CAPTURE_BYTES + 1)  # sparse: no disk, and never read past the cap
    with pytest.raises(UserInputError, match=r"huge\.log.*larger than"):
        read_capture(f)


def _props() -> dict[str, str]:
    from perflab.devices.android import parse_getprop

    return parse_getprop((IMP / "getprop_farm_phone.txt").read_text())


def test_import_then_store_index_end_to_end(tmp_path: Path) -> None:
    """The command as a user runs it: a run folder with results.json and logs/, then indexed."""
    out, db = tmp_path / "run", tmp_path / "store.sqlite"
    res = subprocess.run([sys.executable, "-m", "perflab", "import", str(IMP / "app_logcat_two_runs.txt"),
                          str(BM / "tf113_cpu_very_old.txt"), "--device", "s23", "--props",
                          str(IMP / "getprop_farm_phone.txt"), "--out", str(out)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert "s23 (IMPORTED) espcn_x2 fp16 gpu: ok" in res.stdout
    raw = json.loads((out / "results.json").read_text())
    assert raw["schema"] == "perflab.results/7" and len(raw["cells"]) == 3
    assert all(c["provenance"]["props_file"] == "getprop_farm_phone.txt" for c in raw["cells"])
    assert sorted(p.name for p in (out / "logs").iterdir()) == [
        "espcn_x2.fp16.gpu.log", "espcn_x2.fp32.xnnpack.log", "fsrcnn_x2.unknown.cpu.log"]
    res2 = subprocess.run([sys.executable, "-m", "perflab", "store", "index", str(out), "--db", str(db)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert res2.returncode == 0 and "3 cells" in res2.stdout, res2.stderr


def test_the_run_report_labels_every_imported_cell_and_shows_the_provenance(tmp_path: Path) -> None:
    from perflab.lab.importer import import_captures
    from perflab.report.html import render_run_report

    out = tmp_path / "run"
    opts = ImportOptions(device="s23", zoo=ZOO, props=_props(), props_name="getprop_farm_phone.txt")
    run = import_captures([IMP / "app_logcat_two_runs.txt", BM / "tf24_cpu_espcn_profile.txt"], opts, out)
    page = render_run_report(out).read_text()
    banner = page[page.index('id="imported-banner"'):]
    banner = banner[:banner.index("</div>")]
    for f in ("app_logcat_two_runs.txt", "tf24_cpu_espcn_profile.txt"):
        assert f"<code>{f}</code>" in banner
    assert "tool version not printed" in banner and "getprop_farm_phone.txt" in banner
    answer = page[page.index('id="answer"'):page.index("</section>", page.index('id="answer"'))]
    for c in run.cells:  # each cell's row in the answer carries the badge
        row = next(r for r in answer.split("<tr") if f"{c.model.name} {c.model.variant}" in r and c.delegate in r)
        assert ">IMPORTED</span>" in row, row
