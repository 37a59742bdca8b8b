"""The emulated benchmark_model, run on an emulated phone through the real adb server."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import adbutils
import numpy as np
import pytest
from support.phones import PhoneFactory
from support.timing import measure_until_within

from perflab.emulator import EmulatedPhone
from perflab.emulator.benchmark_model.flags import FlagError, parse_flags
from perflab.emulator.benchmark_model.output import Stat, fmt_g

REPO = Path(__file__).resolve().parent.parent
ZOO_MODEL = REPO / "perflab" / "zoo" / "weights" / "bicubic_x2_fp32.tflite"
TMP = "/data/local/tmp"


def _tiny_model(path: Path) -> None:
    """A 3-op SR-shaped model (conv, conv, depth_to_space), built with TensorFlow."""
    code = r"""
import sys, tensorflow as tf
inp = tf.keras.Input((None, None, 3), batch_size=1, name="lr")
x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
x = tf.keras.layers.Conv2D(12, 3, padding="same")(x)
class D2S(tf.keras.layers.Layer):
    def call(self, t):
        return tf.nn.depth_to_space(t, 2)
m = tf.keras.Model(inp, D2S()(x))
open(sys.argv[1], "wb").write(tf.lite.TFLiteConverter.from_keras_model(m).convert())
"""
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if ZOO_MODEL.is_file():
        return ZOO_MODEL
    path = tmp_path_factory.mktemp("model") / "tiny.tflite"
    _tiny_model(path)
    return path


@pytest.fixture(scope="module")
def device(module_phones: PhoneFactory, adb_server: adbutils.AdbClient, model: Path,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[EmulatedPhone, adbutils.AdbDevice]:
    phone = module_phones.start("galaxy_s23")
    d = adb_server.device(phone.serial)
    fake = tmp_path_factory.mktemp("bin") / "benchmark_model"
    fake.write_bytes(b"\x7fELF placeholder: the emulated phone runs its own benchmark_model\n")
    fake.chmod(0o755)
    d.sync.push(str(fake), f"{TMP}/benchmark_model", mode=0o755)
    d.sync.push(str(model), f"{TMP}/model.tflite")
    return phone, d


def _input_name(model: Path) -> str:
    from ai_edge_litert.interpreter import Interpreter

    return str(Interpreter(str(model)).get_input_details()[0]["name"])


def _run(d: adbutils.AdbDevice, flags: list[str]) -> adbutils.ShellReturn:
    cmd = " ".join(shlex.quote(x) for x in [f"{TMP}/benchmark_model", *flags])
    return d.shell2(cmd + " 2>&1", v2=True, timeout=120)


def test_fmt_g_matches_cpp_ostream() -> None:
    assert fmt_g(33209.4) == "33209.4"
    assert fmt_g(1530250.0) == "1.53025e+06"
    assert fmt_g(0.5) == "0.5"
    assert fmt_g(1.0) == "1"


def test_stat_line_forms() -> None:
    assert Stat().line() == "count=0"
    assert Stat([5]).line() == "count=1 curr=5"
    assert Stat([7, 7]).line() == "count=2 curr=7(all same)"
    assert Stat([10, 20]).line() == "count=2 first=10 curr=20 min=10 max=20 avg=15 std=5"


def test_flags_booleans_only_true_false() -> None:
    flags, unconsumed, order = parse_flags(["--use_gpu=true", "--num_runs=3", "--bogus=1", "--use_nnapi=true"])
    assert flags["use_gpu"].value is True and flags["num_runs"].value == 3
    assert unconsumed == ["--bogus=1"] and order == ["gpu", "nnapi"]
    with pytest.raises(FlagError):
        parse_flags(["--use_gpu=1"])


def test_cpu_run_with_inputs_profile_and_outputs(device: tuple[EmulatedPhone, adbutils.AdbDevice],
                                                 model: Path) -> None:
    _phone, d = device
    name = _input_name(model)
    lr = np.random.default_rng(0).random((1, 24, 32, 3), dtype=np.float32)
    d.sync.push(lr.tobytes(), f"{TMP}/lr.raw")
    r = _run(d, [f"--graph={TMP}/model.tflite", "--num_threads=2", "--num_runs=5", "--warmup_runs=2",
                 "--min_secs=0", "--warmup_min_secs=0", f"--input_layer={name}", "--input_layer_shape=1,24,32,3",
                 f"--input_layer_value_files={name.replace(':', '::')}:{TMP}/lr.raw", "--enable_op_profiling=true",
                 f"--output_filepath={TMP}/out.bin", "--unknown_flag=3"])
    assert r.returncode == 0, r.output
    text = r.output
    assert "perflab emulated benchmark_model" in text.splitlines()[1]
    assert "WARN: Unconsumed cmdline flags: --unknown_flag=3" in text
    assert "INFO: count=5 first=" in text
    assert "INFO: Inference timings in us: Init: " in text
    assert "\t[times called]\t[Name]" in text and "[start]" not in text
    assert "per-node times are measured, each op run and timed as its own segment" in text
    out = d.sync.read_bytes(f"{TMP}/out.bin")
    # the output is what the interpreter computes for this very input
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(model))
    it.resize_tensor_input(0, [1, 24, 32, 3])
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], lr)
    it.invoke()
    want = it.get_tensor(it.get_output_details()[0]["index"])
    assert len(out) == want.nbytes
    np.testing.assert_allclose(np.frombuffer(out, np.float32).reshape(want.shape), want, atol=1e-5)
    try:
        from perflab.formats.benchmark_output import parse_output
    except ImportError:
        return
    parsed = parse_output(text)
    assert parsed.inference is not None and parsed.inference_avg_ms is not None
    assert parsed.unconsumed_flags == ["--unknown_flag=3"]
    runs = parsed.runs_profile
    assert runs is not None and len(runs.run_order) >= 1


def test_gpu_run_is_one_delegate_node(device: tuple[EmulatedPhone, adbutils.AdbDevice]) -> None:
    _, d = device
    r = _run(d, [f"--graph={TMP}/model.tflite", "--use_gpu=true", "--num_runs=3", "--min_secs=0",
                 "--warmup_min_secs=0", "--enable_op_profiling=true"])
    assert r.returncode == 0, r.output
    assert "Explicitly applied GPU delegate, and the model graph will be completely executed by the delegate." \
        in r.output
    runs = r.output.split("Operator-wise Profiling Info for Regular Benchmark Runs:")[1]
    run_order = runs.split("Top by Computation Time")[0]
    rows = [ln for ln in run_order.splitlines() if ln.startswith("\t") and "[node type]" not in ln]
    assert len(rows) == 1 and rows[0].split("\t")[1].strip() == "TfLiteGpuDelegateV2"


ESPCN = REPO / "perflab" / "zoo" / "weights" / "espcn_x2_fp32.tflite"
LAYER_DELAYS_MS = {"c1": 15.0, "c2": 5.0, "c3": 5.0}


def _op_profile_by_layer(d: adbutils.AdbDevice, flags: list[str]) -> dict[str, float]:
    """The op profile's average times (ms) summed per Keras layer (by the ops' tensor names)."""
    import re

    from ai_edge_litert.interpreter import Interpreter

    from perflab.formats.benchmark_output import parse_output
    from perflab.zoo.tflite_graph import op_tensor_names

    r = _run(d, [f"--graph={TMP}/espcn.tflite", "--num_threads=1", "--num_runs=8", "--warmup_runs=1",
                 "--min_secs=0", "--warmup_min_secs=0", f"--input_layer={_input_name(ESPCN)}",
                 "--input_layer_shape=1,16,24,3",
                 "--enable_op_profiling=true", *flags])
    assert r.returncode == 0, r.output
    it = Interpreter(str(ESPCN))
    names = op_tensor_names(it)
    prof = parse_output(r.output).runs_profile
    assert prof is not None
    out: dict[str, float] = {}
    for row in prof.run_order:
        idx = int(row.name.rsplit(":", 1)[1])
        m = re.search(r"/(c\d)_\d+/", names.get(idx, ""))  # a fused op names its conv's layer first or alone
        key = "node" if row.node_type.startswith("TfLite") else m.group(1) if m else "other"
        out[key] = out.get(key, 0.0) + row.avg_ms
    return out


@pytest.mark.parametrize("flags", [["--use_xnnpack=false"], ["--use_gpu=true"]], ids=["cpu", "gpu"])
def test_injected_delays_are_measured_inside_their_layers(device: tuple[EmulatedPhone, adbutils.AdbDevice],
                                                          flags: list[str]) -> None:
    """An injected layer delay is time spent inside that layer's ops, which the tool measures:
    on the CPU each layer's ops in the op profile grow by the layer's delay (delayed run minus
    undelayed run, within 10%), the layers without a delay do not; on the GPU delegate the one
    opaque node grows by the sum. Nothing in the profile is told the delay. The input is small
    (16×24) so the layers' own work, which a busy host's shared caches slow by varying amounts (not
    a wait for a CPU, which the phone's clock leaves out), is small beside the delays."""
    _, d = device
    d.sync.push(str(ESPCN), f"{TMP}/espcn.tflite")

    def with_and_without() -> tuple[dict[str, float], dict[str, float]]:
        base = _op_profile_by_layer(d, flags)
        spec = ",".join(f"{k}={v:g}" for k, v in LAYER_DELAYS_MS.items())
        d.shell(f"setprop debug.perflab.layer_delays_ms {spec}")
        try:
            return base, _op_profile_by_layer(d, flags)
        finally:
            d.shell("setprop debug.perflab.layer_delays_ms ''")

    def misses(measured: tuple[dict[str, float], dict[str, float]]) -> list[str]:
        base, delayed = measured
        if "--use_gpu=true" in flags:
            assert len(base) == 1, base  # one opaque node
            want = sum(LAYER_DELAYS_MS.values())
            got = sum(delayed.values()) - sum(base.values())
            return [] if abs(got - want) <= 0.1 * want else [f"node: {got:.2f} ms for {want} ms"]
        out = [f"{k}: {delayed[k] - base[k]:.2f} ms for {want} ms" for k, want in LAYER_DELAYS_MS.items()
               if abs(delayed[k] - base[k] - want) > 0.1 * want]
        if abs(delayed.get("other", 0.0) - base.get("other", 0.0)) > 0.5:
            out.append(f"ops of no delayed layer moved {delayed.get('other', 0.0) - base.get('other', 0.0):+.2f} ms")
        return out

    measure_until_within(with_and_without, misses)


def test_wrong_input_size_is_fatal(device: tuple[EmulatedPhone, adbutils.AdbDevice], model: Path) -> None:
    _, d = device
    name = _input_name(model)
    d.sync.push(b"\0" * 100, f"{TMP}/bad.raw")
    r = _run(d, [f"--graph={TMP}/model.tflite", f"--input_layer={name}", "--input_layer_shape=1,8,8,3",
                 f"--input_layer_value_files={name.replace(':', '::')}:{TMP}/bad.raw"])
    assert r.returncode == 134
    assert f"FATAL: The size of {TMP}/bad.raw is 100 bytes. It should be 768 bytes." in r.output


def test_missing_model_and_permissions(device: tuple[EmulatedPhone, adbutils.AdbDevice]) -> None:
    _, d = device
    r = _run(d, [f"--graph={TMP}/nope.tflite"])
    assert r.returncode == 1 and "Failed to mmap model" in r.output
    d.sync.push(b"x", f"{TMP}/benchmark_model_noexec", mode=0o644)
    r = d.shell2(f"{TMP}/benchmark_model_noexec --graph=x", v2=True)
    assert r.returncode == 126 and "Permission denied" in r.stderr


def test_work_drives_physics(device: tuple[EmulatedPhone, adbutils.AdbDevice], model: Path) -> None:
    phone, d = device
    before = phone.rt.snapshot()
    r = _run(d, [f"--graph={TMP}/model.tflite", "--num_threads=1", "--input_layer_shape=1,256,256,3",
                 f"--input_layer={_input_name(model)}", "--min_secs=1", "--warmup_min_secs=0"])
    assert r.returncode == 0, r.output
    after = phone.rt.snapshot()
    busy_ticks = after.cpu_busy_ticks - before.cpu_busy_ticks
    assert busy_ticks > 50  # > 0.5 CPU-seconds of real work was fed into the model
    assert after.soc_temp_c > before.soc_temp_c


def test_memory_footprint_follows_the_models_tensors(device: tuple[EmulatedPhone, adbutils.AdbDevice]) -> None:
    """The footprint deltas are the bytes of the model's tensors at the run's input size (its
    weights and activations), so four times the pixels is more than twice the footprint."""
    import re

    from ai_edge_litert.interpreter import Interpreter

    from perflab.emulator.benchmark_model.model import tensor_bytes

    _, d = device
    d.sync.push(str(ESPCN), f"{TMP}/espcn.tflite")
    got: dict[tuple[int, int], float] = {}
    for h, w in ((32, 48), (64, 96)):
        r = _run(d, [f"--graph={TMP}/espcn.tflite", "--num_runs=1", "--warmup_runs=1", "--min_secs=0",
                     "--warmup_min_secs=0", f"--input_layer={_input_name(ESPCN)}", f"--input_layer_shape=1,{h},{w},3",
                     "--report_peak_memory_footprint=true"])
        assert r.returncode == 0, r.output
        m = re.search(r"footprint delta from the start of the tool \(MB\): init=([\d.e+-]+) overall=([\d.e+-]+)",
                      r.output)
        assert m is not None, r.output
        it = Interpreter(str(ESPCN))
        it.resize_tensor_input(0, [1, h, w, 3])
        it.allocate_tensors()
        want_mb = tensor_bytes(it) // 1024 / 1024.0
        assert float(m.group(1)) == pytest.approx(want_mb, rel=1e-3) and float(m.group(2)) == float(m.group(1))
        assert "Overall peak memory footprint (MB) via periodic monitoring:" in r.output
        got[(h, w)] = float(m.group(1))
    assert got[(64, 96)] > 2 * got[(32, 48)], got  # the activations grow with the pixels, the weights do not
