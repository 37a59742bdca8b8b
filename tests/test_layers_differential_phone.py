"""The differential profiler through a phone's benchmark_model (emulated phone, real adb server).

On the GPU delegate the op profile shows one opaque delegate node; the differential profiler
still gives per-layer rows, because it only times whole (variant) models with the same
``Workload.run_timing`` the cell uses — benchmark_model's summary (mean, std) per run here.
The emulated phone runs every model for real on the host's LiteRT (labelled emulated)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
if shutil.which("adb") is None:
    pytest.skip("adb is not installed", allow_module_level=True)

from support.phones import PhoneFactory, android_device
from support.timing import (
    busy_host,
    measure_until_within,
    measure_until_within_or_busy,
    noisy_rounds,
    says_why_not_resolved,
)

from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.lab.layer_pass import PassContext, PassOptions
from perflab.lab.layers import layer_passes
from perflab.store.layer_records import LayerPassRecord, LayerRow, LayersRecord
from perflab.workloads import workload_for
from perflab.zoo.registry import get_artifact

# end to end: each test times prefix models on an emulated phone over adb for minutes (a timing
# check may measure again, up to 3 times, on a busy host)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("variants")


@pytest.fixture(scope="module")
def device(module_phones: PhoneFactory, adb: Adb, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[AndroidDevice]:
    # the Redmi's GPU has no costs in its profile: its layers take the host's time, so the
    # differential faces the host's noise here (a phone whose profile sets GPU costs, the Pixel 7
    # or the Galaxy S23, spends them and would be a steady GPU)
    with android_device(module_phones, adb, "redmi_note12pro", tmp_path_factory.mktemp("phone")) as (_, d):
        yield d


def _unanswered_on_a_noisy_host(against: str, need: str | None = None) -> Callable[[LayersRecord], bool]:
    """A miss the host explains: the pass unreliable, or too few rows resolved for the rank check
    ``against`` (or the row ``need`` unresolved) — never resolved rows ranked wrong — while the
    host's CPUs were saturated or the whole model's own rounds scattered past the noise limit."""
    def explained(rec: LayersRecord) -> bool:
        diff = next(p for p in rec.passes if p.method == "differential")
        unanswered = (diff.unreliable is not None or not any(c.against == against for c in diff.rank_checks)
                      or any(r.name == need and r.unresolved for r in diff.rows))
        return unanswered and (busy_host(diff.load) or noisy_rounds(diff))
    return explained


def _assert_says_why(diff: LayerPassRecord) -> None:
    """Every attempt on a saturated or noisy host left rows without numbers: the reason with its
    figures (the pass's, or each unresolved row's), the rows kept with their intervals, nothing
    unresolved ranked."""
    assert busy_host(diff.load) or noisy_rounds(diff), (diff.load, diff.variants)
    assert all(r.ci_lo_ms is not None and r.ci_hi_ms is not None for r in diff.rows)
    if diff.unreliable is not None:
        assert "no rank checks: the rows are unreliable" in diff.notes
    says_why_not_resolved(diff)


def test_gpu_delegate_opaque_in_the_op_profile_but_not_to_the_differential_profiler(
        device: AndroidDevice, tmp_path: Path, cache: Path) -> None:
    ctx = PassContext(workload=workload_for(device, tmp_path / "work"), art=get_artifact("espcn", 2, "fp32"),
                      delegate="gpu", threads=1, timeout_s=300, lr_width=320, lr_height=180)

    def measure() -> LayersRecord:
        return layer_passes(ctx, PassOptions(op_profiling=True, differential=True, differential_rounds=3,
                                             differential_iterations=10, estimate=False,
                                            differential_max_rounds=5, differential_budget_s=45.0, cache_root=cache))

    def misses(rec: LayersRecord) -> list[str]:
        """The timing checks (the rows' sum within the product's tolerance of the whole model, the costliest
        row the costliest by MACs): a busy host can disturb one attempt, never all three."""
        diff = next(p for p in rec.passes if p.method == "differential")
        if diff.missing is not None or diff.sum_check is None:
            return []  # not a timing miss: asserted below
        out = [] if diff.sum_check.ok else [f"sum check {diff.sum_check}"]
        macs = next((c for c in diff.rank_checks if c.against == "macs"), None)
        if macs is None:
            return [*out, f"unreliable or too few rows resolved, no rank check: {diff.unreliable}"]
        return out if macs.same_top else [*out, f"costliest row not the costliest by MACs: {diff.rows}"]

    rec, reliable = measure_until_within_or_busy(measure, misses, _unanswered_on_a_noisy_host("macs"))
    by = {p.method: p for p in rec.passes}
    op, diff = by["op_profile"], by["differential"]
    assert op.missing is None and op.rows
    assert any(r.node_type.startswith("TfLiteGpuDelegate") for r in op.rows)  # one opaque node
    assert not any(r.node_type == "CONV_2D" for r in op.rows)
    assert diff.missing is None, diff.missing
    assert [r.name for r in diff.rows] == ["c1", "c2", "c3", "tail"]
    assert all(v.n > 0 for v in diff.variants)
    if not reliable:  # a saturated host on every attempt: an honest "unreliable", never ranked
        _assert_says_why(diff)
        return
    assert diff.sum_check is not None and diff.sum_check.ok, diff.sum_check


def test_cpu_op_profile_and_differential_rank_alike(device: AndroidDevice, tmp_path: Path, cache: Path) -> None:
    """Where both exist (the CPU delegate), the differential rows and the op profile's rows
    (summed into the same layers by tensor names) agree on the costliest layer. The emulated
    tool's op profile is measured op by op (on the host CPU), so this checks the matching and
    the record, not the emulator's realism for a phone."""
    ctx = PassContext(workload=workload_for(device, tmp_path / "work"), art=get_artifact("espcn", 2, "fp32"),
                      delegate="cpu", threads=1, timeout_s=300, lr_width=320, lr_height=180)

    def measure() -> LayersRecord:
        return layer_passes(ctx, PassOptions(op_profiling=True, differential=True, differential_rounds=2,
                                             differential_iterations=6, estimate=False, differential_max_rounds=7,
                                             differential_budget_s=60.0, cache_root=cache))

    def misses(r: LayersRecord) -> list[str]:
        """A busy host can fail one pass's sum check (its rows are then unreliable, never ranked), or
        leave fewer than two rows resolved (nothing to rank)."""
        d = next(p for p in r.passes if p.method == "differential")
        if d.unreliable:
            return [f"unreliable: {d.unreliable}"]
        if not any(c.against == "op_profile" for c in d.rank_checks):
            return [f"fewer than two rows resolved: {[x.unresolved for x in d.rows]}"]
        c2 = next(x for x in d.rows if x.name == "c2")
        if c2.unresolved:
            # the costliest layer unresolved: the rest (c1 and c3, close in cost) say little about the top
            return [c2.unresolved]
        vs_op = next(c for c in d.rank_checks if c.against == "op_profile")
        if not vs_op.same_top:
            # the op profile is one run's per-op means, with no spread to say a neighbour's burst
            # landed in one layer; a pass that says so is measured again, and three in a row still
            # fail. (A CI run of 2026-12-07 saw the tops differ: the op profile then ran at the
            # model's own 1x1 input, not the pass's size; it runs at the pass's size since.)
            return [f"tops differ: differential {_top(d.rows)}, op profile {_top_groups(r)}"]
        return []

    rec, reliable = measure_until_within_or_busy(measure, misses, _unanswered_on_a_noisy_host("op_profile", "c2"))
    diff = next(p for p in rec.passes if p.method == "differential")
    assert diff.missing is None, diff.missing
    if not reliable:
        _assert_says_why(diff)
    else:
        vs_op = next(c for c in diff.rank_checks if c.against == "op_profile")
        resolved = [r for r in diff.rows if r.unresolved is None]
        assert vs_op.n == len(resolved) >= 2 and "summed" in vs_op.note  # unresolved rows are not ranked
        assert all(r.unresolved.startswith(f"not resolved: {r.name} ") for r in diff.rows if r.unresolved)
        assert vs_op.same_top, ([(r.name, round(r.avg_ms, 2), r.ci_lo_ms, r.ci_hi_ms, r.unresolved) for r in diff.rows], [(r.name, round(r.avg_ms, 2)) for r in rec.rows], rec.aligned)
    # aligned: every op of the profile lands in exactly one group, and its group sums are its rows' sum
    op = next(p for p in rec.passes if p.method == "op_profile")
    al = rec.aligned
    assert al is not None and [g.name for g in al.groups] == ["c1", "c2", "c3", "tail"]
    m = next(x for x in al.methods if x.method == "op_profile")
    assert m.level == "op" and not m.unmatched, m
    col = [x.method for x in al.methods].index("op_profile")
    groups = [r for r in al.rows if r.kind == "group"]
    assert all(r.cells[col].ops_seen == r.cells[col].ops_total > 0 for r in groups), groups
    assert sum(r.cells[col].time_ms or 0.0 for r in groups) == pytest.approx(sum(r.avg_ms for r in op.rows))
    assert sorted(i for g in al.groups for i in g.ops) == sorted(r.index for r in op.rows)


def _top(rows: list[LayerRow]) -> str:
    r = max(rows, key=lambda x: x.avg_ms)
    return f"{r.name} {r.avg_ms:.2f} ms"


def _top_groups(rec: LayersRecord) -> str:
    """The op profile's costliest group of the aligned table (its ops summed into groups)."""
    al = rec.aligned
    if al is None:
        return "no aligned table"
    col = [m.method for m in al.methods].index("op_profile")
    groups = [(r.name, r.cells[col].time_ms or 0.0) for r in al.rows if r.kind == "group"]
    name, ms = max(groups, key=lambda g: g[1])
    return f"{name} {ms:.2f} ms"


def test_xnnpack_operators_line_up_with_the_model_ops(device: AndroidDevice, tmp_path: Path) -> None:
    """benchmark_model with XNNPACK names its rows by XNNPACK's own operators
    (``Delegate/Convolution (NHWC, F32) IGEMM:0``); without differential rows the aligned table
    has one row per model op, and the op profile's operators are matched to them by type in
    execution order, beside the estimate."""
    ctx = PassContext(workload=workload_for(device, tmp_path / "work"), art=get_artifact("espcn", 2, "fp32"),
                      delegate="xnnpack", threads=1, timeout_s=300, lr_width=96, lr_height=64, whole_ms=5.0,
                      whole_source="a stated 5 ms")
    rec = layer_passes(ctx, PassOptions(op_profiling=True, differential=False, estimate=True))
    op = next(p for p in rec.passes if p.method == "op_profile")
    assert op.missing is None and any(r.name.startswith("Delegate/") for r in op.rows), op.rows
    al = rec.aligned
    assert al is not None and all(a.how == "op" for a in al.ops)
    names = [r.name for r in al.rows if r.kind == "group"]
    assert names == ["CONV_2D@0", "TANH@1", "CONV_2D@2", "TANH@3", "CONV_2D@4", "DEPTH_TO_SPACE@5", "MINIMUM@6"]
    m = next(x for x in al.methods if x.method == "op_profile")
    assert not m.unmatched and any("XNNPACK" in n for n in m.notes), m
    col = [x.method for x in al.methods].index("op_profile")
    by = {r.name: r.cells[col] for r in al.rows}
    conv = [r for r in op.rows if r.node_type.startswith("Convolution")]
    assert [by[n].time_ms for n in ("CONV_2D@0", "CONV_2D@2", "CONV_2D@4")] == [r.avg_ms for r in conv]
    assert by["total"].time_ms == pytest.approx(sum(r.avg_ms for r in op.rows))


DELAYS_MS = {"c2": 40.0, "c3": 20.0}


def test_injected_layer_delays_come_back_within_ten_percent(device: AndroidDevice, tmp_path: Path,
                                                            cache: Path) -> None:
    """The emulated benchmark_model busy-waits after every invoke for the layers named in
    ``debug.perflab.layer_delays_ms`` that the model contains (by their tensor names, a copy of
    a layer included). The differential profiler, knowing nothing of it, must find each
    injected delay as the difference of that layer's cost with and without it, within 10% (on a
    host noisier than that, within three standard errors of the measured difference, never
    beyond half the delay)."""
    def run() -> dict[str, tuple[float, float]]:  # row → (cost ms, its standard error ms)
        ctx = PassContext(workload=workload_for(device, tmp_path / "work"), art=get_artifact("espcn", 2, "fp32"),
                          delegate="gpu", threads=1, timeout_s=300, lr_width=48, lr_height=32)
        rec = layer_passes(ctx, PassOptions(op_profiling=False, differential=True, differential_rounds=4,
                                            differential_iterations=15, estimate=False,
                                            differential_max_rounds=5, differential_budget_s=45.0, cache_root=cache))
        diff = next(p for p in rec.passes if p.method == "differential")
        assert diff.missing is None, diff.missing
        return {r.name: (r.avg_ms, r.se_ms or 0.0) for r in diff.rows}

    def with_and_without() -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
        base = run()
        spec = ",".join(f"{k}={v:g}" for k, v in DELAYS_MS.items())
        device.sh(["setprop", "debug.perflab.layer_delays_ms", spec])
        try:
            return base, run()
        finally:
            device.sh(["setprop", "debug.perflab.layer_delays_ms", ""])

    def misses(measured: tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]) -> list[str]:
        """Each layer's change against the injected delay: within 10%, or within three standard errors
        of the measured change where the host is noisier than that — never beyond half the delay, so a
        delay that is missing, doubled or on the wrong layer still fails."""
        base, delayed = measured
        out = []
        for layer in ("c1", "c2", "c3", "tail"):
            want = DELAYS_MS.get(layer, 0.0)
            got = delayed[layer][0] - base[layer][0]
            noise_ms = 3.0 * math.hypot(delayed[layer][1], base[layer][1])
            scale = want or min(DELAYS_MS.values())
            if abs(got - want) > min(max(0.1 * scale, noise_ms), 0.5 * scale):
                out.append(f"{layer}: {got:+.2f} ms for {want:g} ms (3 SE {noise_ms:.2f} ms)")
        return out

    # a busy host can disturb one attempt; a fault fails every one
    measure_until_within(with_and_without, misses)
