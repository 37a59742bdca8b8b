"""The split planner's prediction against measurement on ``local`` (issue 23's "within 10%").

Usage: python benchmarks/bench_planner.py [--family espcn] [--lr 240x136] [--rounds 7]
       [--iterations 5] [--threads 1] [--floor-db DB] [--check FIFI,IFIF] [--json]

Runs perflab.lab.planner.plan_model for one chain model: inputs measured (prefix segments per
precision, two-segment seam variants, per-unit sensitivity on a held-out photograph), the exact
front and FYE-SR's relaxed baseline solved, and all-fp32, all-int8, the baseline's plan and the
exact front executed as segment chains. Prints, per executed plan, the prediction (from the input
variants timed in the same rounds, and from the first pass), the measured median, both errors,
and whether it is within 10%; the proxy PSNR-Y beside the measured one. Exit 1 when a plan is
off by more than 10% (so a run says plainly whether it held). Segments are cached
($PERFLAB_CACHE_DIR), so a second run measures only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from perflab.lab.planner import PlanSettings, plan_model, planner_frames
from perflab.quality.frames import load_skimage_photo
from perflab.zoo.registry import get_artifact


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="espcn")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--lr", default="240x136", help="timing geometry WxH")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--floor-db", type=float, default=None)
    ap.add_argument("--check", default="FIFI,IFIF",
                    help="more plans to run (comma-separated labels): many seams test the additive model; a "
                         "plan with one seam is a two-segment input variant and predicted exactly by construction")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    w, h = (int(v) for v in a.lr.split("x"))
    frames = planner_frames([("coffee", load_skimage_photo("coffee"))], a.scale)
    t0 = time.monotonic()
    m = plan_model(get_artifact(a.family, a.scale, "fp32"), frames,
                   PlanSettings(lr_width=w, lr_height=h, threads=a.threads, rounds=a.rounds, iterations=a.iterations,
                                quality_floor_db=a.floor_db,
                                check_plans=tuple(x for x in a.check.split(",") if x)),
                   progress=lambda msg: print(msg, file=sys.stderr))
    if a.json:
        print(json.dumps(m, indent=1))
    print(f"{m['model']} at {w}x{h}, {a.threads} thread(s), {a.rounds}x{a.iterations}: chosen {m['chosen']}, "
          f"relaxed baseline {m['baseline']['label']}, front {[f['label'] for f in m['front']]} "
          f"({time.monotonic() - t0:.0f} s)")
    print("noise floor (the whole model twice in the same rounds): "
          + ", ".join(f"{k} {v:+.1f}%" for k, v in m["noise_floor_pct"].items()))
    print(f"{'plan':8} {'pred ms':>8} {'1st ms':>8} {'meas ms':>8} {'err %':>7} {'1st %':>7} "
          f"{'proxy dB':>9} {'meas dB':>8}  within 10%")
    def pct(x: float | None) -> str:  # None where the prediction was at or below 0 ms (no error % to give)
        return f"{'—':>7}" if x is None else f"{x:+7.1f}"

    off = 0
    for p in m["plans"]:
        err = p["error"]["latency_pct"]
        ok = bool(p["latency_check"]["within_10pct"])
        off += not ok
        print(f"{p['label']:8} {p['predicted']['latency_ms']:8.2f} {p['predicted']['first_pass_latency_ms']:8.2f} "
              f"{p['measured']['latency_ms']:8.2f} {pct(err)} {pct(p['error']['first_pass_latency_pct'])} "
              f"{p['predicted']['psnr_y_db']:9.2f} {p['measured']['psnr_y_db']:8.2f}  {'yes' if ok else 'NO'}"
              f"  ({', '.join(p['roles'])})")
    for p in m["plans"]:
        if p["latency_check"]["reason"]:
            print(f"  {p['label']}: {p['latency_check']['reason']}")
    return 1 if off else 0


if __name__ == "__main__":
    raise SystemExit(main())
