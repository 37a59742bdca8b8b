"""Per-layer accuracy against injected truth: op profile, ATrace and the differential profiler
on emulated phones (real adb server) with per-layer delays injected
(``debug.perflab.layer_delays_ms``), with and without busy processes beside it: the op profile
and ATrace on a pixel7 (rooted and debuggable: its tool writes ATrace sections), the
differential on a redmi_note12pro's GPU (no profile costs: its layers take the host's time, so
it faces the host's noise as the CPU methods do; the Pixel 7's GPU spends its profile's costs).

Usage: python benchmarks/bench_layers_accuracy.py [--delays c1=15,c2=5,c3=5] [--busy 0 2]
       [--methods op_profile atrace differential] [--trace-rounds 3] [--order interleaved]
       [--repeat 1] [--json]

For each load (``--busy N``: N processes ``while True: pass`` started beside the run) and each
method, the model (espcn ×2 fp32, 48×32 input) is measured without and with the delays; a
layer's recovered delay is the delayed run's layer time minus the undelayed run's
(``--order sequential``: one undelayed pass, then one delayed pass, per measurement;
``--order interleaved``, the default: the passes alternate undelayed, delayed, undelayed, … and
each delayed pass is taken against the mean of the undelayed passes either side of it, so both
see the same load and a drift of the host's load between the passes cancels to first order;
``--repeat N`` measurements share one chain of 2N+1 passes). The op
profile and ATrace run on the CPU (their rows are per op, summed per layer by the ops' tensor
names); the differential runs on the GPU delegate (the op profile is one opaque node there),
as in the issue that asked for this. Printed: per method and load, each layer's recovered
delay, its error against the truth, and for the differential its rounds, stop reason, sum
check and the host load it recorded.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.emulator.benchmark_model.delays import parse_layer_delays
from perflab.emulator.phone import EmulatedPhone, connect_to_adb_server
from perflab.emulator.testing import private_adb_server
from perflab.lab.layer_pass import PassContext, PassOptions
from perflab.lab.layers import TRACE_ROUNDS, TraceTarget, layer_passes, trace_passes
from perflab.store.layer_records import LayerPassRecord
from perflab.store.runfolder import Artefact
from perflab.workloads import workload_for
from perflab.zoo.registry import get_artifact

LR_W, LR_H = 48, 32


def _layer_of_ops() -> dict[int, str]:
    from ai_edge_litert.interpreter import Interpreter

    from perflab.zoo.tflite_graph import op_tensor_names

    art = get_artifact("espcn", 2, "fp32")
    out = {}
    for idx, names in op_tensor_names(Interpreter(model_path=str(art.path))).items():
        m = re.search(r"/(c\d)_\d+/", names)
        out[idx] = m.group(1) if m else "other"
    return out


def _by_layer(p: LayerPassRecord, layers: dict[int, str]) -> dict[str, float]:
    if p.method == "differential":
        return {r.name: r.avg_ms for r in p.rows}
    out: dict[str, float] = {}
    for r in p.rows:
        m = re.search(r"[:@](\d+)(?:/0)?$", r.name)
        key = layers.get(int(m.group(1)), "other") if m else "other"
        out[key] = out.get(key, 0.0) + r.avg_ms
    return out


def _se_by_layer(p: LayerPassRecord, layers: dict[int, str]) -> dict[str, float]:
    """Per layer, the root-sum-square of its rows' se (ATrace: their spread across the pass's runs)."""
    out: dict[str, float] = {}
    for r in p.rows:
        m = re.search(r"[:@](\d+)(?:/0)?$", r.name)
        key = layers.get(int(m.group(1)), "other") if m else "other"
        out[key] = out.get(key, 0.0) + (r.se_ms or 0.0) ** 2
    return {k: round(v**0.5, 3) for k, v in out.items()}


def _measure(d: AndroidDevice, work: Path, method: str,
             trace_rounds: int = TRACE_ROUNDS) -> tuple[dict[str, float], LayerPassRecord]:
    layers = _layer_of_ops()
    delegate = "gpu" if method == "differential" else "cpu"
    ctx = PassContext(workload=workload_for(d, work / "w"), art=get_artifact("espcn", 2, "fp32"), delegate=delegate,
                      threads=1, timeout_s=300, lr_width=LR_W, lr_height=LR_H)
    if method == "atrace":
        p, _ = trace_passes(ctx, TraceTarget(Artefact("t.trace", work / "t.trace"), local=False, device=d,
                                             iterations=20, rounds=trace_rounds))
    else:
        rec = layer_passes(ctx, PassOptions(op_profiling=method == "op_profile", differential=method == "differential",
                                            differential_rounds=3, differential_iterations=10, estimate=False,
                                            differential_max_rounds=6, differential_budget_s=60.0,
                                            cache_root=work / "variants"))
        p = next(x for x in rec.passes if x.method == method)
    if p.missing:
        raise SystemExit(f"{method}: {p.missing}")
    return _by_layer(p, layers), p


def _busy(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for pr in procs:
        pr.kill()
        pr.wait()


def _measure_with(d: AndroidDevice, work: Path, method: str, delays: dict[str, float] | None,
                  trace_rounds: int) -> tuple[dict[str, float], LayerPassRecord]:
    """One pass, with the delays injected (None: without), the property cleared after."""
    d.sh(["setprop", "debug.perflab.layer_delays_ms", ",".join(f"{k}={v:g}" for k, v in (delays or {}).items())])
    try:
        return _measure(d, work, method, trace_rounds)
    finally:
        d.sh(["setprop", "debug.perflab.layer_delays_ms", ""])


Measured = tuple[dict[str, float], LayerPassRecord]


def _result(method: str, busy: int, delays: dict[str, float], delayed: Measured,
            bases: list[Measured]) -> dict[str, Any]:
    """One measurement: each layer's delayed time less the mean of its undelayed times."""
    out: dict[str, Any] = {"method": method, "busy": busy, "layers": {}, "undelayed_passes": len(bases)}
    for layer, want in delays.items():
        got = delayed[0].get(layer, 0.0) - sum(b[0].get(layer, 0.0) for b in bases) / len(bases)
        out["layers"][layer] = {"truth_ms": want, "recovered_ms": round(got, 3),
                                "error_pct": round(100.0 * (got - want) / want, 1)}
    out["pass_ms"] = {"undelayed": [{k: round(v, 3) for k, v in b[0].items()} for b in bases],
                      "delayed": {k: round(v, 3) for k, v in delayed[0].items()}}
    p = delayed[1]
    if p.method == "atrace":  # how the pass's runs differed (its notes name each run's whole-inference median)
        def runs(x: LayerPassRecord) -> str | None:
            return next((n for n in x.notes if n.startswith("the runs' whole-inference medians")), None)

        layers = _layer_of_ops()
        out["runs"] = {"undelayed": [runs(b[1]) for b in bases], "delayed": runs(p)}
        out["layer_se_ms"] = {"undelayed": [_se_by_layer(b[1], layers) for b in bases],
                              "delayed": _se_by_layer(p, layers)}
    if p.method == "differential":
        sc = p.sum_check
        out.update(rounds=p.rounds, stop=p.stop, unreliable=p.unreliable,
                   sum_check_pct=None if sc is None else round(sc.diff_pct, 1),
                   host_load=None if p.load is None else p.load.model_dump())
    return out


def run(d: AndroidDevice, work: Path, method: str, delays: dict[str, float], busy: int,
        trace_rounds: int = TRACE_ROUNDS) -> dict[str, Any]:
    """One measurement in order: the undelayed pass, then the delayed pass."""
    procs = _busy(busy)
    try:
        base = _measure_with(d, work, method, None, trace_rounds)
        delayed = _measure_with(d, work, method, delays, trace_rounds)
    finally:
        _stop(procs)
    return _result(method, busy, delays, delayed, [base])


def run_interleaved(d: AndroidDevice, work: Path, method: str, delays: dict[str, float], busy: int,
                    trace_rounds: int = TRACE_ROUNDS, repeat: int = 1) -> list[dict[str, Any]]:
    """``repeat`` measurements from one chain of passes undelayed, delayed, undelayed, …,
    undelayed (2·repeat + 1): each delayed pass against the mean of the undelayed passes either
    side of it, which both ran beside the same busy processes within seconds of it."""
    procs = _busy(busy)
    try:
        chain = [_measure_with(d, work, method, delays if k % 2 else None, trace_rounds)
                 for k in range(2 * repeat + 1)]
    finally:
        _stop(procs)
    return [_result(method, busy, delays, chain[2 * i + 1], [chain[2 * i], chain[2 * i + 2]]) for i in range(repeat)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delays", default="c1=15,c2=5,c3=5")
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--methods", nargs="+", default=["op_profile", "atrace", "differential"])
    ap.add_argument("--trace-rounds", type=int, default=TRACE_ROUNDS,
                    help="tool runs in the ATrace pass (1: one run, as before the rounds)")
    ap.add_argument("--order", choices=["interleaved", "sequential"], default="interleaved",
                    help="interleaved: undelayed and delayed passes alternate, each delayed pass against the "
                         "undelayed ones either side; sequential: one undelayed pass, then one delayed")
    ap.add_argument("--repeat", type=int, default=1, help="measurements per method and load")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    delays = parse_layer_delays(args.delays)
    results = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="perflab-bench-layers-") as tmp:
        server = stack.enter_context(private_adb_server())
        binary = Path(tmp) / "benchmark_model"
        binary.write_text("#!/system/bin/sh\n# placeholder: the emulated phone runs its own tool\n")
        devices: dict[str, AndroidDevice] = {}
        for profile in ("pixel7", "redmi_note12pro"):
            phone = stack.enter_context(EmulatedPhone.start(profile=profile))
            connect_to_adb_server(phone, server)
            devices[profile] = AndroidDevice(Adb(port=server.port, timeout_s=20.0, backoff_s=0.2), phone.serial,
                                             benchmark_binary=binary, state_dir=Path(tmp) / f"state-{profile}")
        try:
            for busy in args.busy:
                for method in args.methods:
                    d = devices["redmi_note12pro" if method == "differential" else "pixel7"]
                    work = Path(tmp) / f"{method}-{busy}"
                    if args.order == "interleaved":
                        got = run_interleaved(d, work, method, delays, busy, args.trace_rounds, args.repeat)
                    else:
                        got = [run(d, work, method, delays, busy, args.trace_rounds) for _ in range(args.repeat)]
                    results.extend(got)
                    for r in got if not args.json else []:
                        cells = ", ".join(f"{k} {v['recovered_ms']:.2f} ms ({v['error_pct']:+.1f}%)"
                                          for k, v in r["layers"].items())
                        extra = (f"; {r['rounds']} rounds, sum check {r['sum_check_pct']:+.1f}%"
                                 + (f", UNRELIABLE: {r['unreliable']}" if r["unreliable"] else "")) \
                            if method == "differential" else ""
                        per_pass = "; per pass " + ", ".join(
                            f"{k} {' | '.join(f'{u.get(k, 0.0):.2f}' for u in r['pass_ms']['undelayed'])} -> "
                            f"{r['pass_ms']['delayed'].get(k, 0.0):.2f}" for k in r["layers"])
                        print(f"busy={busy} {method:12s} {cells}{extra}{per_pass}", flush=True)
        finally:
            for d in devices.values():
                d.close()
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
