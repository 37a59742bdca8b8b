"""The differential (virtual-layer) profiler on ``local``: real TensorFlow variants, real LiteRT.

Validity target of issue 10 on local: the per-layer times sum to within 10% of the whole
model's time, and agree in rank order with another method. ``local`` has no op profile (the
LiteRT binding has none) and the ATrace path needs a root trace pass, so the rank order is
compared with the per-layer MACs (a proxy: ESPCN's c2 does 18432 MACs per LR pixel, c1 4800,
c3 3456), conv rows only. The whole-model time is the *shipped* .tflite, timed in the same
interleaved rounds and left out of the fit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support.timing import busy_host, measure_until_within_or_busy, noisy_rounds, says_why_not_resolved

from perflab.devices.local import LocalDevice
from perflab.lab.layer_differential import differential_pass
from perflab.lab.layer_pass import PassContext, PassOptions
from perflab.lab.layers import layer_passes
from perflab.store.layer_records import LayersRecord
from perflab.workloads.local import LocalWorkload
from perflab.zoo.registry import get_artifact
from perflab.zoo.variants import variant_set

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("variants")
    variant_set(get_artifact("espcn", 2, "fp32"), max_layers=12, root=root)  # generated once, with TF
    return root


def _ctx(tmp: Path, family: str = "espcn") -> PassContext:
    return PassContext(workload=LocalWorkload(LocalDevice(), tmp / "work"), art=get_artifact(family, 2, "fp32"),
                       delegate="xnnpack", threads=1, timeout_s=300, lr_width=320, lr_height=180)


def test_variants_are_prefixes_of_the_shipped_model(cache: Path) -> None:
    vs = variant_set(get_artifact("espcn", 2, "fp32"), max_layers=12, root=cache)
    assert [u.name for u in vs.units] == ["c1", "c2", "c3", "tail"]
    assert [v.counts for v in vs.variants] == [(1, 0, 0, 0), (1, 1, 0, 0), (1, 1, 1, 0), (1, 1, 1, 1)]
    assert vs.ops_match is True  # the last prefix is the shipped model, op for op
    assert vs.weights.startswith("shipped fp32 weights (3 of 3")
    assert all(vs.path(v).stat().st_size > 0 for v in vs.variants)


@pytest.mark.timeout(1800)  # a timing check may measure again, up to 3 times, on a busy host
@pytest.mark.slow
def test_local_differential_sums_to_whole_model_and_ranks_like_macs(cache: Path, tmp_path: Path) -> None:
    def measure() -> LayersRecord:
        return layer_passes(_ctx(tmp_path), PassOptions(op_profiling=True, differential=True, differential_rounds=4,
                                                        differential_iterations=10, differential_max_rounds=8,
                                                        differential_budget_s=80.0, cache_root=cache))

    def misses(rec: LayersRecord) -> list[str]:
        """The timing checks below (sum within 10% of the whole model, ranks like MACs): a busy host can
        disturb one attempt, never all three; the bounds are not widened."""
        diff = next(p for p in rec.passes if p.method == "differential")
        check = diff.sum_check
        if diff.missing is not None or check is None:
            return []  # not a timing miss: asserted below
        out = [] if abs(check.diff_pct) <= 10.0 and check.ok else [f"sum check {check} ({diff.rounds} rounds, {diff.load})"]
        macs = next((c for c in diff.rank_checks if c.against == "macs"), None)
        if macs is None:
            return [*out, f"no rank check ({diff.unreliable})"]
        # two resolved rows: the same top is the whole order (no Spearman over two); three: Spearman ≥ 0.5
        if not (macs.same_top and (macs.n < 3 or (macs.spearman is not None and macs.spearman >= 0.5))):
            out.append(f"ranks unlike MACs ({macs.spearman}): {diff.rows}")
        return out

    def busy(rec: LayersRecord) -> bool:
        """A miss the host explains: rows left without numbers while its CPUs were saturated or
        the whole model's own rounds (timed beside the variants) scattered past the noise limit."""
        diff = next(p for p in rec.passes if p.method == "differential")
        # unanswered: unreliable, or too few rows resolved to rank — never resolved rows ranked wrong
        unanswered = diff.unreliable is not None or not any(c.against == "macs" for c in diff.rank_checks)
        return unanswered and (busy_host(diff.load) or noisy_rounds(diff))

    rec, reliable = measure_until_within_or_busy(measure, misses, busy)
    by = {p.method: p for p in rec.passes}
    assert list(by) == ["op_profile", "estimate", "differential"]
    op, diff = by["op_profile"], by["differential"]
    assert op.method == "op_profile" and op.missing and not op.rows  # local has no op profiler
    assert rec.missing == op.missing  # the legacy fields still say why
    assert diff.method == "differential" and diff.missing is None
    assert [r.name for r in diff.rows] == ["c1", "c2", "c3", "tail"]
    assert all(r.se_ms is not None and r.se_ms > 0 for r in diff.rows)
    if not reliable:
        # an attempt on a saturated or noisy host left rows without numbers: each says why with its
        # figures and nothing unresolved is ranked (a quiet host must give the numbers checked below)
        assert busy_host(diff.load) or noisy_rounds(diff), (diff.load, diff.variants)
        says_why_not_resolved(diff)
        return
    check = diff.sum_check
    assert check is not None
    assert abs(check.diff_pct) <= 10.0 and check.ok, check
    assert check.whole_model_ms > 0 and diff.total_ms == pytest.approx(check.layers_sum_ms)
    whole = next(v for v in diff.variants if v.name == "whole")
    assert diff.rounds is not None and 4 <= diff.rounds <= 8 and diff.stop, (diff.rounds, diff.stop)
    assert whole.residual_ms is None and whole.n == diff.rounds  # one value per round
    assert all(r.ci_lo_ms is not None and r.ci_hi_ms is not None and 0.0 <= r.ci_lo_ms <= r.avg_ms <= r.ci_hi_ms
               for r in diff.rows), diff.rows
    assert diff.unreliable is None
    assert diff.load is not None and diff.load.host_cpus and diff.load.host_loadavg_1m_start is not None
    assert diff.load.missing.get("phone_loadavg_1m") == "not a phone"
    # a row whose interval stayed too wide is marked alone, with its figures, and not ranked
    conv_resolved = [r for r in diff.rows if r.name != "tail" and r.unresolved is None]
    assert all(r.unresolved.startswith(f"not resolved: {r.name} ") and "95% " in r.unresolved
               for r in diff.rows if r.unresolved)
    macs = next(c for c in diff.rank_checks if c.against == "macs")
    assert macs.n == len(conv_resolved) >= 2 and macs.same_top, diff.rows  # c2 is the costliest layer
    assert macs.n < 3 or (macs.spearman is not None and macs.spearman >= 0.5), diff.rows


def test_without_tensorflow_the_numbers_are_missing_with_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              cache: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as on an install without the build extra
    rec = differential_pass(_ctx(tmp_path), PassOptions(differential=True, cache_root=tmp_path / "empty"))
    assert not rec.rows and rec.missing is not None
    assert "TensorFlow is not installed" in rec.missing
    # a complete cache needs no TensorFlow: the same pass measures
    rec = differential_pass(_ctx(tmp_path), PassOptions(differential=True, differential_rounds=1,
                                                        differential_iterations=3, cache_root=cache))
    assert rec.missing is None and len(rec.rows) == 4


def test_not_a_zoo_model_is_missing_not_a_crash(tmp_path: Path) -> None:
    art = get_artifact("espcn", 2, "fp32")
    user = type(art)(name="mine", family="user", variant="fp32", scale=2, path=art.path, sha256=art.sha256,
                     size_bytes=art.size_bytes)
    ctx = _ctx(tmp_path)
    ctx.art = user
    rec = differential_pass(ctx, PassOptions(differential=True, cache_root=tmp_path))
    assert rec.missing is not None and "not one of" in rec.missing


def test_a_stop_during_generation_leaves_no_partial_set(tmp_path: Path) -> None:
    from perflab.errors import RunInterrupted

    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RunInterrupted("stopped by SIGINT")

    with pytest.raises(RunInterrupted):
        variant_set(get_artifact("espcn", 2, "fp32"), root=tmp_path, check=check)
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


def test_pre_generating_the_cache_from_the_command_line(tmp_path: Path) -> None:
    import os
    import subprocess

    env = dict(os.environ, PERFLAB_CACHE_DIR=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    args = [sys.executable, "-m", "perflab.zoo.variants", "--family", "bicubic", "--scale", "2"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert "2 layers, 2 variants" in r.stdout  # the bicubic conv (with its edge pad), the tail
    (folder,) = (tmp_path / "variants").iterdir()
    assert (folder / "manifest.json").is_file() and str(folder) in r.stdout
    bad = subprocess.run([*args[:4], "nope"], capture_output=True, text=True, timeout=600, env=env, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown model family" in bad.stderr


@pytest.mark.parametrize("family", ["espcn", "fsrcnn", "abpn", "repvgg", "teacher", "bicubic"])
def test_every_zoo_model_maps_each_conv_to_its_own_group(family: str) -> None:
    """The aligned table's op → group mapping (tensor names, perflab.analysis.layer_align) on the
    zoo's real models and the generator's real groups: each conv group gets exactly its own
    CONV_2D (merged groups: one per conv), the tail none, in every precision shipped."""
    from perflab.analysis.layer_align import GroupDef, assign_ops
    from perflab.lab.layers import model_ops
    from perflab.zoo import variants as zv

    fine = zv._units(zv._keras_model(family, 2))
    conv_layers = {u.name for u in fine if u.kind == "conv"}  # a conv unit is named after its conv
    units = zv.merge_units(fine, 4)
    want = {u.name: sum(1 for la in u.layers if la in conv_layers) for u in units}
    groups = [GroupDef(u.name, u.layers) for u in units]
    for precision in ("fp32", "fp16", "int8"):
        m = assign_ops(model_ops(get_artifact(family, 2, precision).path), groups)
        convs = {g.name: sum(1 for a in m.ops if a.group == g.name and a.op == "CONV_2D") for g in m.groups}
        assert convs == want, (precision, convs, want)
        assert len({a.index for a in m.ops}) == len(m.ops)  # each op once
