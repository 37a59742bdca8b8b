"""benchmark_model: command builder quoting and the output parsers, on fixtures from several
TFLite versions (tests/fixtures/benchmark_model/, each with its provenance in the header)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from perflab.core.types import SeriesMode
from perflab.errors import ModelError, UserInputError
from perflab.formats.benchmark_output import (
    Coverage,
    ProfilePhase,
    parse_output,
    parse_profile_csv,
    parse_stat_line,
)
from perflab.workloads.benchmark_model import (
    BenchmarkCommand,
    InputLayer,
    check_output,
    profile_result,
    timing_result,
)

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


def fixture(name: str) -> str:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    header, sep, body = text.partition("# ---\n")
    assert sep and "Provenance" in header, f"{name} needs a provenance header"
    return body


def test_every_fixture_has_provenance_and_parses() -> None:
    files = sorted(FIXTURES.glob("*.txt"))
    assert len(files) >= 10
    for f in files:
        parse_output(fixture(f.name))


# ---- command line ---------------------------------------------------------------------


def _cmd(**kw: object) -> BenchmarkCommand:
    base: dict[str, object] = {
        "binary": "/data/local/tmp/perflab/benchmark_model",
        "graph": "/data/local/tmp/perflab/m/abc/espcn.tflite",
        "threads": 2,
        "delegate": "cpu",
        "num_runs": 30,
        "warmup_runs": 3,
    }
    base.update(kw)
    return BenchmarkCommand(**base)  # type: ignore[arg-type]


def test_command_exact_counts_and_delegate_flags() -> None:
    argv = _cmd().argv()
    assert argv[0] == "/data/local/tmp/perflab/benchmark_model"
    for flag in ("--num_runs=30", "--min_secs=0", "--warmup_runs=3", "--warmup_min_secs=0",
                 "--num_threads=2", "--use_xnnpack=false"):
        assert flag in argv
    gpu = _cmd(delegate="gpu").argv()
    assert "--use_gpu=true" in gpu and "--gpu_precision_loss_allowed=false" in gpu
    assert "--use_xnnpack=true" in _cmd(delegate="xnnpack").argv()
    assert "--use_nnapi=true" in _cmd(delegate="nnapi").argv()
    assert "--use_hexagon=true" in _cmd(delegate="hexagon").argv()
    assert not any("report_peak_memory" in a for a in _cmd().argv())


def test_command_pacing_inputs_outputs_profiling() -> None:
    c = _cmd(
        run_frequency_hz=30.0,
        inputs=(InputLayer("serving:0", (1, 540, 960, 3), "/data/local/tmp/perflab/in/f0.raw"),),
        output_filepath="/data/local/tmp/perflab/out/f0.bin",
        op_profiling=True,
        profiling_csv_file="/data/local/tmp/perflab/prof.csv",
    )
    argv = c.argv()
    assert "--run_frequency=30.0" in argv
    assert "--input_layer=serving:0" in argv
    assert "--input_layer_shape=1,540,960,3" in argv
    # ':' inside the tensor name is escaped as '::' in the value-files flag
    assert "--input_layer_value_files=serving::0:/data/local/tmp/perflab/in/f0.raw" in argv
    assert "--output_filepath=/data/local/tmp/perflab/out/f0.bin" in argv
    assert "--enable_op_profiling=true" in argv
    assert "--profiling_output_csv_file=/data/local/tmp/perflab/prof.csv" in argv
    assert "--run_delay=0.5" in _cmd(run_delay_s=0.5).argv()


@pytest.mark.parametrize("name", ["a;reboot.tflite", "$(id).tflite", "`id`.tflite", "it's here.tflite",
                                  "x && rm -rf y.tflite", "a|b>c.tflite"])
def test_hostile_names_are_quoted(name: str) -> None:
    graph = f"/data/local/tmp/perflab/m/abc/{name}"
    cmd = _cmd(graph=graph).shell_command()
    assert cmd.endswith(" 2>&1")
    words = shlex.split(cmd[: -len(" 2>&1")])
    # a POSIX shell splits it back into exactly the argv we built: nothing is interpreted
    assert words == _cmd(graph=graph).argv()
    assert f"--graph={graph}" in words


@pytest.mark.parametrize(
    "kw",
    [
        {"graph": "relative/model.tflite"},
        {"graph": "/data/x\nreboot"},
        {"graph": "/data/a,b.tflite"},
        {"delegate": "gpu; reboot"},
        {"threads": 0},
        {"num_runs": 0},
        {"warmup_runs": -1},
        {"run_frequency_hz": -3.0},
        {"run_frequency_hz": float("nan")},
        {"run_frequency_hz": 30.0, "run_delay_s": 0.1},
        {"inputs": (InputLayer("in,put", (1, 2, 2, 3)),)},
        {"inputs": (InputLayer("input", (1, 0, 2, 3)),)},
        {"inputs": (InputLayer("input", (1, 2, 2, 3), "/data/f:0.raw"),)},
        {"profiling_csv_file": "/data/p.csv"},
    ],
)
def test_command_rejects_bad_values(kw: dict[str, object]) -> None:
    with pytest.raises(UserInputError):
        _cmd(**kw)


# ---- count= lines -------------------------------------------------------------------------


def test_stat_line_forms() -> None:
    zero = parse_stat_line("count=0")
    assert zero is not None and zero.count == 0 and zero.summary() is None
    one = parse_stat_line("count=1 curr=1289876")
    assert one is not None and one.summary() is not None
    s1 = one.summary()
    assert s1 is not None and s1.mean_ms == pytest.approx(1289.876) and s1.std_ms == 0.0
    same = parse_stat_line("count=3 curr=1500(all same)")
    assert same is not None and same.all_same and same.count == 3
    full = parse_stat_line("count=50 first=1548543 curr=1529078 min=1520078 max=1555061 avg=1.53225e+06 std=7060")
    assert full is not None and full.avg_us == pytest.approx(1532250.0) and full.first_us == 1548543
    old = parse_stat_line("curr=401876 count=50 min=396002 max=420551 avg=402113 std=4211")
    assert old is not None and old.count == 50 and old.first_us is None and old.avg_us == 402113
    assert parse_stat_line("nothing here") is None


# ---- whole outputs across versions -----------------------------------------------------------


def test_tf113_very_old() -> None:
    out = parse_output(fixture("tf113_cpu_very_old.txt"))
    assert out.init_ms == pytest.approx(5.412)
    assert out.init_session_ms == pytest.approx(5.412)  # "5.412ms" with no period
    assert out.warmup_avg_ms == pytest.approx(405.228)
    assert out.inference_avg_ms == pytest.approx(402.113)  # from "no stats:"
    assert out.first_ms is None
    assert out.inference is not None and out.inference.count == 50 and out.inference.min_us == 396002
    assert out.params["Use nnapi"] == "0"  # old "Use nnapi : [0]"
    assert out.params["Graph"] == "/data/local/tmp/fsrcnn_x2.tflite"
    r = timing_result(out, SeriesMode.BACK_TO_BACK)
    assert r.summary is not None and r.summary.count == 50 and r.summary.mean_ms == pytest.approx(402.113)
    assert r.first_ms is None and "first_ms" in r.missing
    check_output(out)


def test_tf21_slow_sr_e_notation_and_headless_table() -> None:
    out = parse_output(fixture("tf21_cpu_sr_slow.txt"))
    assert out.inference_avg_ms == pytest.approx(1532.25)
    assert out.warmup_avg_ms == pytest.approx(1610.04)
    assert out.init_ms == pytest.approx(253.8)
    assert out.first_ms == pytest.approx(1610.04)  # warm-up "count=1 curr=" is the first run
    assert out.params["Use gpu"] == "0" and out.params["Enable op profiling"] == "1"
    sec = out.runs_profile
    assert sec is not None and sec.phase is ProfilePhase.RUNS
    assert [r.node_type for r in sec.run_order] == ["CONV_2D"] * 4 + ["DEPTH_TO_SPACE"]
    assert sec.run_order[0].start_ms == 0.0 and sec.run_order[0].avg_ms == pytest.approx(536.83)
    assert sec.run_order[4].name == "[srnet/pixel_shuffle]"
    assert sec.by_type[0].node_type == "CONV_2D" and sec.by_type[0].count == 4
    assert sec.timings is not None and sec.timings.avg_us == pytest.approx(1532220.0)
    prof = profile_result(out)
    assert prof is not None and prof.total_ms == pytest.approx(1532.22)
    assert len(prof.layers) == 5 and prof.layers[1].first_ms == pytest.approx(420.081)


def test_tf23_gpu_no_prefix() -> None:
    out = parse_output(fixture("tf23_gpu_noprefix.txt"))
    assert out.init_ms == pytest.approx(871.204)
    assert out.first_ms == pytest.approx(130.112)
    assert out.inference_avg_ms == pytest.approx(118.961)
    assert out.mem_wording == "peak" and out.mem_init_mb == pytest.approx(54.2031)
    assert out.mem_overall_mb == pytest.approx(61.7422)
    assert out.model_size_mb == pytest.approx(7.07479)
    assert out.params["Allow lower precision in gpu"] == "0"
    assert [(d.delegate, d.coverage) for d in out.delegates] == [("GPU", Coverage.FULL)]
    assert "Created 1 GPU delegate kernels." in out.delegate_lines
    init = [s for s in out.profile if s.phase is ProfilePhase.INIT]
    assert len(init) == 1 and init[0].run_order[0].node_type == "ModifyGraphWithDelegate"
    assert init[0].run_order[0].mem_kb == pytest.approx(51236.0)
    assert init[0].timings is not None and init[0].timings.curr_us == 861616
    prof = profile_result(out)
    assert prof is not None and len(prof.layers) == 1
    assert prof.layers[0].node_type == "TfLiteGpuDelegateV2" and prof.layers[0].pct == pytest.approx(100.0)
    check_output(out, delegate="gpu")
    r = timing_result(out, SeriesMode.BACK_TO_BACK)
    assert r.mem_peak_mb == pytest.approx(61.7422) and r.mem_source is not None and "Peak memory" in r.mem_source
    assert r.delegate_info and r.samples_ms is None and "samples_ms" in r.missing


def test_tf24_cpu_profile() -> None:
    out = parse_output(fixture("tf24_cpu_espcn_profile.txt"))
    assert "Duplicate flags: num_threads" in out.warnings
    assert out.warmup is not None and out.warmup.count == 15
    assert out.inference is not None and out.inference.std_us == 450
    assert out.mem_init_mb == 0.0 and out.mem_overall_mb == pytest.approx(12.8672)
    prof = profile_result(out)
    assert prof is not None
    assert [layer.name for layer in prof.layers][-1] == "[Identity]:5"
    assert prof.layers[3].node_type == "DEPTH_TO_SPACE" and prof.layers[3].avg_ms == pytest.approx(1.186)
    assert sum(layer.avg_ms for layer in prof.layers) == pytest.approx(33.408, abs=1e-3)
    sec = out.runs_profile
    assert sec is not None and sec.nodes_executed == 6 and sec.nodes_observed == 6
    assert [t.node_type for t in sec.by_type] == ["CONV_2D", "DEPTH_TO_SPACE", "MINIMUM", "MAXIMUM"]
    assert sec.top[0].name == "[espcn/conv1/Relu]:0"


def test_tf29_nnapi_partial_logcat() -> None:
    out = parse_output(fixture("tf29_nnapi_partial_logcat.txt"))
    assert out.params["Use NNAPI"] == "1" and out.params["Use xnnpack"] == "0"
    assert out.params["NNAPI accelerators available"] == "qti-dsp,qti-gpu,nnapi-reference"
    assert out.delegates[0].coverage is Coverage.PARTIAL and out.delegates[0].delegate_kernels == 2
    rep = out.replacements[0]
    assert (rep.replaced, rep.total, rep.delegate_node, rep.partitions) == (50, 53, "TfLiteNnapiDelegate", 2)
    assert out.inference is not None and out.inference.count == 105  # min_secs outran num_runs=50
    assert out.mem_wording == "delta" and out.mem_overall_mb == pytest.approx(14.2305)
    prof = profile_result(out)
    assert prof is not None and len(prof.layers) == 3
    assert prof.layers[2].name == "[model/tail/conv, with comma]:54"
    assert prof.layers[0].name.startswith("[model/conv_a/Relu;")
    check_output(out, delegate="nnapi")


def test_tf215_xnnpack_newest() -> None:
    out = parse_output(fixture("tf215_xnnpack_newest.txt"))
    assert out.init_ms == pytest.approx(11.409) and out.first_ms == pytest.approx(23.112)
    assert out.inference_avg_ms == pytest.approx(18.3125)
    assert out.mem_wording == "delta" and out.mem_init_mb == pytest.approx(22.0273)
    assert out.peak_mem_mb == pytest.approx(93.2383)
    assert (out.vmrss_mb, out.rss_anon_mb, out.rss_file_shmem_mb) == (48.0, 37.0, 11.0)
    assert out.replacements[0].delegate_node == "TfLiteXNNPackDelegate"
    assert out.delegates[0].delegate == "XNNPACK" and out.delegates[0].coverage is Coverage.FULL
    init = next(s for s in out.profile if s.phase is ProfilePhase.INIT)
    assert init.run_order[0].start_ms is None and init.run_order[0].mem_kb == pytest.approx(7148.0)
    sec = out.runs_profile
    assert sec is not None
    assert sec.run_order[0].node_type == "Convolution (NHWC, F32) IGEMM"
    assert sec.run_order[0].name == "Delegate/Convolution (NHWC, F32) IGEMM:0"
    assert sec.run_order[3].node_type == "Depth To Space (NHWC, X32)"
    assert sec.by_type[0].count == 3 and sec.by_type[0].avg_ms == pytest.approx(17.331)
    r = timing_result(out, SeriesMode.PACED)
    assert r.mem_peak_mb == pytest.approx(93.2383) and r.mem_source is not None and "peak" in r.mem_source
    assert r.summary is not None and r.summary.std_ms == pytest.approx(0.233)
    assert r.summary.min_ms == pytest.approx(17.985) and r.summary.max_ms == pytest.approx(19.12)


def test_tf216_gpu_slow_init_all_same() -> None:
    out = parse_output(fixture("tf216_gpu_opencl_slow_init.txt"))
    assert out.init_ms == pytest.approx(1530.25)
    assert out.first_ms == pytest.approx(212.345)
    assert out.warmup is not None and out.warmup.all_same and out.warmup.count == 2
    ws = out.warmup.summary()
    assert ws is not None and ws.mean_ms == pytest.approx(188.0) and ws.std_ms == 0.0
    assert out.params["Output file path"] == "/data/local/tmp/perflab/out/o.bin"
    assert out.replacements[0].replaced == 58
    check_output(out, delegate="gpu", required_flags=("--output_filepath",))


def test_unconsumed_output_filepath_fails_clearly() -> None:
    out = parse_output(fixture("err_unconsumed_output_filepath.txt"))
    assert out.unconsumed_flags == ["--output_filepath=/data/local/tmp/perflab/out/f0.bin"]
    check_output(out)  # the timing itself is fine...
    with pytest.raises(ModelError, match="does not know --output_filepath"):
        check_output(out, required_flags=("--output_filepath",))  # ...but outputs were never written
    assert out.params["Input value files"] == "input_1:/data/local/tmp/perflab/in/f0.raw"
    assert out.inference is not None and out.inference.count == 1


def test_errors() -> None:
    gpu = parse_output(fixture("err_gpu_failed.txt"))
    assert "Disallowed CPU fallback detected." in gpu.errors
    assert "Failed to apply GPU delegate." in gpu.errors
    with pytest.raises(ModelError, match=r"gpu delegate is not supported.*Failed to apply GPU delegate"):
        check_output(gpu, delegate="gpu")
    fatal = parse_output(fixture("err_input_size_fatal.txt"))
    assert fatal.errors[0].startswith("The size of /data/local/tmp/perflab/in/f0.raw is 1555200 bytes")
    with pytest.raises(ModelError, match="6220800"):
        check_output(fatal)
    with pytest.raises(ModelError, match="no inference timings"):
        check_output(parse_output("INFO: STARTING!\nINFO: Loaded model /x.tflite\n"))


def test_delegate_not_applied() -> None:
    out = parse_output(fixture("nnapi_not_applied.txt"))
    assert out.delegates[0].coverage is Coverage.NONE
    with pytest.raises(ModelError, match="NNAPI delegate was not applied"):
        check_output(out, delegate="nnapi")
    check_output(out, delegate="cpu")


def test_csv_profiles_new_and_old() -> None:
    new = parse_profile_csv(fixture("profile_csv_new.txt"))
    assert len(new) == 1 and new[0].phase is ProfilePhase.RUNS
    rows = new[0].run_order
    assert rows[0].avg_ms == pytest.approx(0.0930388) and rows[0].start_ms is None
    assert rows[1].node_type == "Convolution (NHWC, QC8) GEMM"
    assert rows[1].name == "Delegate/Convolution (NHWC, QC8) GEMM:1"
    assert new[0].by_type[1].node_type == "Convolution (NHWC, QC8) GEMM"
    old = parse_profile_csv(fixture("profile_csv_old.txt"))
    r0 = old[0].run_order[0]
    assert (r0.node_type, r0.start_ms, r0.first_ms) == ("CONV_2D", 0.0, 0.11)
    assert r0.avg_ms == pytest.approx(0.0930388)
    assert r0.pct == pytest.approx(44.8994) and r0.cdf_pct == pytest.approx(44.8994)
    assert r0.name == "[sequential_11/conv2d_33/Conv2D]:0"
    assert old[0].by_type[0].count == 2
    assert old[0].timings is not None and old[0].timings.avg_us == pytest.approx(207.218)


def test_space_separated_table_copy() -> None:
    """Tables whose tabs became spaces (markdown copies) still parse, anchored on the numbers."""
    text = (
        "INFO: Operator-wise Profiling Info for Regular Benchmark Runs:\n"
        "============================== Run Order ==============================\n"
        "                     [node type]          [first]        [avg ms]            [%]          [cdf%]"
        "          [mem KB]        [times called]  [Name]\n"
        "                        QUANTIZE            0.199           0.203         1.328%          1.328%"
        "             0.000                1       [tfl.quantize]:0\n"
        "   Convolution (NHWC, QC8) IGEMM            0.398           0.407         2.658%          3.986%"
        "             0.000                1       Delegate/Convolution (NHWC, QC8) IGEMM:0\n"
    )
    out = parse_output(text)
    sec = out.runs_profile
    assert sec is not None and len(sec.run_order) == 2
    assert sec.run_order[1].node_type == "Convolution (NHWC, QC8) IGEMM"
    assert sec.run_order[1].name == "Delegate/Convolution (NHWC, QC8) IGEMM:0"
    assert sec.run_order[1].avg_ms == pytest.approx(0.407)
