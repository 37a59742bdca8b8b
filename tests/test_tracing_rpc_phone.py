"""Accelerator delegates traced end to end on emulated phones over the real adb server: the
NNAPI delegate's binder calls to the NN HAL (a Tensor phone: binder only; a Snapdragon phone:
binder plus the HAL's fastrpc calls to the cDSP) and the Hexagon delegate's own fastrpc calls,
captured in perflab's ftrace instance, give one round trip per inference, and the hand-over
times the emulated kernel wrote (perflab.emulator.benchmark_model.atrace.RPC_TIMING) come back
as the switch latency."""

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
from perflab.emulator.benchmark_model.atrace import RPC_TIMING
from perflab.lab.layers import PassContext, TraceTarget, trace_passes
from perflab.store.runfolder import RunFolder
from perflab.tracing.attribution import Attribution, attribute
from perflab.tracing.ftrace import parse_trace
from perflab.tracing.kernel_events import round_trips_per_inference
from perflab.workloads import workload_for
from perflab.zoo.registry import get_artifact

pytestmark = pytest.mark.timeout(600)
T = "/sys/kernel/tracing"
ITERATIONS = 15


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


def _traced(device: AndroidDevice, tmp: Path, delegate: str, variant: str) -> Attribution:
    ctx = PassContext(workload=workload_for(device, tmp / "work"), art=get_artifact("espcn", 2, variant),
                      delegate=delegate, threads=1, timeout_s=300, lr_width=48, lr_height=32)
    op, lat = trace_passes(ctx, TraceTarget(RunFolder(tmp).trace(delegate), local=False, device=device,
                                            iterations=ITERATIONS))
    assert op.missing is None and lat.missing == {}, (op.missing, lat.missing)
    assert lat.n == ITERATIONS and lat.ok is True, lat
    text = (tmp / "traces" / f"{delegate}.trace").read_text(encoding="utf-8")
    assert "# perflab: captured in the ftrace instance /sys/kernel/tracing/instances/perflab" in text
    # the instance is gone, and the journal says every change was undone
    assert device.sh(["ls", f"{T}/instances"], root=True).stdout.split() == []
    assert device.journal.pending() == []
    assert "trace_instance" in {ch.kind.value for ch, done in device.journal.entries() if done}
    a = attribute(parse_trace(text), us_per_tick=1.0)
    assert a.inferences_in_trace >= ITERATIONS
    return a


def _close(values: list[float], want_us: float) -> bool:
    return all(abs(v - want_us) <= 1.5 for v in values)  # stamps are whole µs: two roundings


def test_nnapi_on_a_tensor_phone_binder_round_trips_and_switch_latency(pixel: AndroidDevice, tmp_path: Path) -> None:
    a = _traced(pixel, tmp_path, "nnapi", "fp32")
    t = RPC_TIMING
    assert a.fastrpc == [] and a.binder_unanswered == 0  # no fastrpc in a Tensor kernel
    assert round_trips_per_inference(a.inferences, a.binder) == [1] * len(a.inferences)
    assert len(a.binder) == len(a.inferences) and {r.peer for r in a.binder} == {"proc 1190"}
    assert [s.via for s in a.switches] == ["binder"] * len(a.inferences)
    assert _close([s.cpu_to_accel_us for s in a.switches], t.nnapi_prep_us)
    assert _close([s.accel_to_cpu_us for s in a.switches], t.return_us)


def test_hexagon_on_a_snapdragon_phone_fastrpc_round_trips_and_switch_latency(snapdragon: AndroidDevice,
                                                                              tmp_path: Path) -> None:
    a = _traced(snapdragon, tmp_path, "hexagon", "int8")
    t = RPC_TIMING
    assert a.binder == [] and a.fastrpc_unanswered == 0
    assert round_trips_per_inference(a.inferences, a.fastrpc) == [1] * len(a.inferences)
    assert {r.peer for r in a.fastrpc} == {"cid 3"}
    assert {s.op for s in a.switches} == {"TfLiteHexagonDelegate@0/0"}
    assert [s.via for s in a.switches] == ["fastrpc"] * len(a.inferences)
    assert _close([s.cpu_to_accel_us for s in a.switches], t.hexagon_prep_us)
    assert _close([s.accel_to_cpu_us for s in a.switches], t.hexagon_return_us)


def test_nnapi_on_a_snapdragon_phone_binder_to_the_hal_and_fastrpc_to_the_dsp(snapdragon: AndroidDevice,
                                                                               tmp_path: Path) -> None:
    a = _traced(snapdragon, tmp_path, "nnapi", "fp32")
    t = RPC_TIMING
    n = len(a.inferences)
    assert round_trips_per_inference(a.inferences, a.binder) == [1] * n
    assert round_trips_per_inference(a.inferences, a.fastrpc) == [1] * n
    assert {r.tid for r in a.fastrpc} == {1204}  # the HAL's binder thread calls the DSP
    # the hand-over measured to the DSP itself: the call, the HAL's wake-up and its own work
    assert [s.via for s in a.switches] == ["fastrpc"] * n
    assert _close([s.cpu_to_accel_us for s in a.switches], t.nnapi_prep_us + t.binder_wake_us + t.hal_to_dsp_us)
    assert _close([s.accel_to_cpu_us for s in a.switches], t.dsp_to_hal_us + t.binder_wake_us + t.return_us)


def test_only_the_enabled_events_are_recorded(snapdragon: AndroidDevice, tmp_path: Path) -> None:
    """The same NNAPI run on the Snapdragon phone with fastrpc's events left off: binder in the
    trace, no fastrpc line, and the switch latency then comes from binder."""
    from perflab.core.types import SeriesMode, TimingRequest
    from perflab.tracing.phone_capture import PhoneTraceCapture

    events = ("binder/binder_transaction", "binder/binder_transaction_received")
    req = TimingRequest(mode=SeriesMode.BACK_TO_BACK, fps=None, warmup=1, iterations=5, threads=1,
                        delegate="nnapi", timeout_s=300, lr_width=48, lr_height=32)
    out = tmp_path / "binder_only.trace"
    with PhoneTraceCapture(snapdragon, out, events=events):
        workload_for(snapdragon, tmp_path / "work").run_timing(get_artifact("espcn", 2, "fp32"), req)
    text = out.read_text(encoding="utf-8")
    assert "binder_transaction:" in text and "fastrpc" not in text
    a = attribute(parse_trace(text), us_per_tick=1.0)
    assert len(a.inferences) >= 6 and round_trips_per_inference(a.inferences, a.binder) == [1] * len(a.inferences)
    assert {s.via for s in a.switches} == {"binder"}
    assert _close([s.cpu_to_accel_us for s in a.switches], RPC_TIMING.nnapi_prep_us)
