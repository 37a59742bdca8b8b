"""Accelerator delegates traced end to end on emulated phones over the real adb server: the
NNAPI delegate's binder calls to the NN HAL (a Tensor phone: binder only, no NPU over RPC; a
Snapdragon phone: binder plus the HAL's fastrpc calls to the cDSP), the Hexagon delegate's own
fastrpc calls, and the GPU delegate's submissions and irqs, captured in perflab's ftrace
instance. The emulated phone *spends* its profile's costs (per-layer costs on the GPU and the
NPU, the switch costs each way: perflab/emulator/benchmark_model/handover.py) and its kernel
stamps the events as they happen; the switch latency perflab reads back from the RPC and irq
timestamps must come out near the profile's costs (loose bounds: the host is busy)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

if shutil.which("adb") is None:
    pytest.skip("adb is not installed", allow_module_level=True)

from support.phones import PhoneFactory, android_device

from perflab.core.paths import ConfigKind, config_file
from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.emulator.benchmark_model.handover import GPU_IRQ_HANDLER_US, RPC_TIMING, placement
from perflab.emulator.benchmark_model.model import builtin_ops, ops
from perflab.emulator.profiles import NpuProfile, load_profile
from perflab.lab.layer_pass import PassContext
from perflab.lab.layers import TraceTarget, trace_passes
from perflab.store.layer_records import TraceLatencyRecord
from perflab.store.runfolder import RunFolder
from perflab.tracing.attribution import Attribution, attribute
from perflab.tracing.ftrace import parse_trace
from perflab.tracing.kernel_events import round_trips_per_inference
from perflab.workloads import workload_for
from perflab.zoo.registry import get_artifact

pytestmark = pytest.mark.timeout(600)
T = "/sys/kernel/tracing"
ITERATIONS = 10
LR_W, LR_H = 48, 32


@pytest.fixture(scope="module")
def pixel(module_phones: PhoneFactory, adb: Adb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AndroidDevice]:
    with android_device(module_phones, adb, "pixel7", tmp_path_factory.mktemp("pixel")) as (_, d):
        yield d


@pytest.fixture(scope="module")
def snapdragon(module_phones: PhoneFactory, adb: Adb, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[AndroidDevice]:
    """The shipped Galaxy S23 profile (Snapdragon 8 Gen 2, the one with a Hexagon DSP), rooted and
    debuggable (a userdebug build)."""
    tmp = tmp_path_factory.mktemp("s23")
    shipped = config_file(ConfigKind.EMULATOR_PROFILES, "galaxy_s23")
    assert shipped is not None
    text = shipped.read_text(encoding="utf-8")
    assert "\nrooted: false\n" in text
    rooted = tmp / "galaxy_s23_rooted.yaml"
    assert 'ro.debuggable: "0"' in text
    # a rooted userdebug build: libcutils enables app ATrace only where ro.debuggable is 1
    rooted.write_text(text.replace("\nrooted: false\n", "\nrooted: true\n")
                      .replace('ro.debuggable: "0"', 'ro.debuggable: "1"'), encoding="utf-8")
    with android_device(module_phones, adb, str(rooted), tmp) as (_, d):
        yield d


def _npu() -> NpuProfile:
    npu = load_profile("galaxy_s23").npu
    assert npu is not None
    return npu


def _layers_us(applied: str, variant: str) -> float:
    """The profile's cost of the model's layers on the processor ``applied`` runs them on (µs)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(get_artifact("espcn", 2, variant).path))
    d = it.get_input_details()[0]
    shape = [int(x) for x in d["shape"]]
    it.resize_tensor_input(d["index"], [shape[0], LR_H, LR_W, *shape[3:]], strict=False)
    it.allocate_tensors()
    place = placement(load_profile("galaxy_s23"), applied, builtin_ops(ops(it)))
    assert place is not None
    return sum(place.layer_s) * 1e6


def _traced(device: AndroidDevice, tmp: Path, delegate: str, variant: str) -> tuple[Attribution, TraceLatencyRecord]:
    ctx = PassContext(workload=workload_for(device, tmp / "work"), art=get_artifact("espcn", 2, variant),
                      delegate=delegate, threads=1, timeout_s=300, lr_width=LR_W, lr_height=LR_H)
    op, lat = trace_passes(ctx, TraceTarget(RunFolder(tmp).trace(delegate), local=False, device=device,
                                            iterations=ITERATIONS))
    assert op.missing is None and set(lat.missing) <= {"npu_switch"}, (op.missing, lat.missing)
    assert lat.n == ITERATIONS and lat.ok is True, lat
    text = (tmp / "traces" / f"{delegate}.trace").read_text(encoding="utf-8")
    assert "# perflab: captured in the ftrace instance /sys/kernel/tracing/instances/perflab" in text
    # the instance is gone, and the journal says every change was undone
    assert device.sh(["ls", f"{T}/instances"], root=True).stdout.split() == []
    assert device.journal.pending() == []
    assert "trace_instance" in {ch.kind.value for ch, done in device.journal.entries() if done}
    a = attribute(parse_trace(text), us_per_tick=1.0)
    assert a.inferences_in_trace >= ITERATIONS
    return a, lat


def _median(values: list[float]) -> float:
    v = sorted(values)
    return v[len(v) // 2]


def _near(values: list[float], want_us: float) -> bool:
    """The median of a spent cost is that cost: a spin to the deadline on the phone's clock, each
    end stamped by the reading that passed it (tens of µs on a busy host either way)."""
    got = _median(values)
    return want_us * 0.85 - 40.0 <= got <= want_us * 1.3 + 80.0


def test_hexagon_on_a_snapdragon_phone_switch_latency_from_the_dsp_irqs(snapdragon: AndroidDevice,
                                                                          tmp_path: Path) -> None:
    """The tool's own fastrpc call to the cDSP: CPU→NPU from the send to the DSP's irq (it took
    the message), NPU→CPU from its answer's irq (the response printed in it) to the node's end;
    both near the profile's switch costs, and the DSP's time between the irqs its layers' NPU
    cost."""
    a, lat = _traced(snapdragon, tmp_path, "hexagon", "int8")
    npu = _npu()
    n = len(a.inferences)
    assert a.binder == [] and a.fastrpc_unanswered == 0
    assert round_trips_per_inference(a.inferences, a.fastrpc) == [1] * n
    assert {r.peer for r in a.fastrpc} == {f"cid {npu.cid}"}
    assert {s.op for s in a.switches} == {"TfLiteHexagonDelegate@0/0"}
    assert [s.via for s in a.switches] == ["fastrpc+irq"] * n
    assert {(s.irq_name, s.irqs, s.processor) for s in a.switches} == {(npu.irq_name, 2, "npu")}
    assert _near([s.cpu_to_accel_us for s in a.switches], npu.switch_to_us)
    assert _near([s.accel_to_cpu_us for s in a.switches], npu.switch_back_us + npu.irq_handler_us)
    layers_us = _layers_us("hexagon", "int8")
    # the DSP's time between its irqs: the ack's handler and the layers' NPU cost
    assert _near([s.accel_us or 0.0 for s in a.switches], layers_us + npu.irq_handler_us)
    # the facts the results keep (layers.trace.switches[]), no npu_switch missing
    assert lat.missing == {} and len(lat.switches) == 1
    rec = lat.switches[0]
    assert (rec.processor, rec.via, rec.n) == ("npu", "fastrpc+irq", lat.n)
    assert rec.accel_median_us is not None and _near([rec.accel_median_us], layers_us + npu.irq_handler_us)
    assert _near([rec.cpu_to_accel_median_us], npu.switch_to_us)
    assert _near([rec.accel_to_cpu_median_us], npu.switch_back_us + npu.irq_handler_us)


def test_nnapi_on_a_snapdragon_phone_binder_to_the_hal_and_fastrpc_to_the_dsp(snapdragon: AndroidDevice,
                                                                               tmp_path: Path) -> None:
    a, _ = _traced(snapdragon, tmp_path, "nnapi", "fp32")
    t, npu = RPC_TIMING, _npu()
    n = len(a.inferences)
    assert round_trips_per_inference(a.inferences, a.binder) == [1] * n
    assert round_trips_per_inference(a.inferences, a.fastrpc) == [1] * n
    assert {r.tid for r in a.fastrpc} == {1204}  # the HAL's binder thread calls the DSP
    # the hand-over measured at the DSP itself; back: the DSP's answer, the HAL's reply, the caller
    assert [s.via for s in a.switches] == ["fastrpc+irq"] * n
    assert _near([s.cpu_to_accel_us for s in a.switches], npu.switch_to_us)
    assert _near([s.accel_to_cpu_us for s in a.switches],
                 npu.irq_handler_us + npu.switch_back_us + t.dsp_to_hal_us + t.binder_wake_us + t.return_us)


def test_gpu_on_a_snapdragon_phone_submission_and_irq(snapdragon: AndroidDevice, tmp_path: Path) -> None:
    """The GPU delegate on Adreno: CPU→GPU from the node's begin to kgsl's submission, GPU→CPU from
    the GPU's irq to the node's end, near the profile's GPU switch costs; the GPU's time between
    (submission → irq) near its layers' GPU cost."""
    a, lat = _traced(snapdragon, tmp_path, "gpu", "fp32")
    costs = load_profile("galaxy_s23").gpu.costs
    assert costs is not None
    assert {(s.via, s.irq_name, s.processor) for s in a.switches} == {("submit", "kgsl-3d0", "gpu")}
    assert len(a.switches) == len(a.inferences)
    assert _near([s.cpu_to_accel_us for s in a.switches], costs.switch_to_us)
    assert _near([s.accel_to_cpu_us for s in a.switches], costs.switch_back_us + GPU_IRQ_HANDLER_US)
    assert _near([s.accel_us or 0.0 for s in a.switches], _layers_us("gpu", "fp32"))
    assert lat.missing == {}  # not an NPU delegate: nothing to say about an NPU


def test_nnapi_on_a_tensor_phone_binder_only_and_the_npu_switch_missing(pixel: AndroidDevice,
                                                                        tmp_path: Path) -> None:
    """No NPU over RPC on a Tensor phone (its kernel has no fastrpc events): binder to the NN HAL
    is as far as the kernel sees, and the NPU switch latency is missing with that reason."""
    a, lat = _traced(pixel, tmp_path, "nnapi", "fp32")
    assert a.fastrpc == [] and a.binder_unanswered == 0
    assert round_trips_per_inference(a.inferences, a.binder) == [1] * len(a.inferences)
    assert len(a.binder) == len(a.inferences) and {r.peer for r in a.binder} == {"proc 1190"}
    assert {(s.via, s.processor) for s in a.switches} == {("binder", "hal")}
    assert _near([s.cpu_to_accel_us for s in a.switches], RPC_TIMING.nnapi_prep_us)
    assert _near([s.accel_to_cpu_us for s in a.switches], RPC_TIMING.return_us)
    why = lat.missing.get("npu_switch", "")
    assert "no fastrpc events" in why, lat.missing
    text = (tmp_path / "traces" / "nnapi.trace").read_text(encoding="utf-8")
    lacks = next(ln for ln in text.splitlines() if ln.startswith("# perflab: this kernel has no events "))
    assert "fastrpc/fastrpc_transport_send" in lacks and "kgsl/kgsl_issueibcmds" in lacks


def test_only_the_enabled_events_are_recorded(snapdragon: AndroidDevice, tmp_path: Path) -> None:
    """The same NNAPI run on the Snapdragon phone with fastrpc's and the irq events left off:
    binder in the trace, no fastrpc line, and the switch latency then comes from binder."""
    from perflab.core.types import SeriesMode, TimingRequest
    from perflab.tracing.phone_capture import PhoneTraceCapture

    events = ("binder/binder_transaction", "binder/binder_transaction_received")
    req = TimingRequest(mode=SeriesMode.BACK_TO_BACK, fps=None, warmup=1, iterations=5, threads=1,
                        delegate="nnapi", timeout_s=300, lr_width=LR_W, lr_height=LR_H)
    out = tmp_path / "binder_only.trace"
    with PhoneTraceCapture(snapdragon, out, events=events):
        workload_for(snapdragon, tmp_path / "work").run_timing(get_artifact("espcn", 2, "fp32"), req)
    text = out.read_text(encoding="utf-8")
    assert "binder_transaction:" in text and "fastrpc" not in text and "irq_handler" not in text
    a = attribute(parse_trace(text), us_per_tick=1.0)
    assert len(a.inferences) >= 6 and round_trips_per_inference(a.inferences, a.binder) == [1] * len(a.inferences)
    assert {s.via for s in a.switches} == {"binder"}
    assert _near([s.cpu_to_accel_us for s in a.switches], RPC_TIMING.nnapi_prep_us)
