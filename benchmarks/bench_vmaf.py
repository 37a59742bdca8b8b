"""VMAF speed on 1080p frames, as a run computes it: libvmaf (imageio-ffmpeg's ffmpeg) on two kept
lossless FFV1 files, at several libvmaf thread counts (``n_threads``).

Usage: python benchmarks/bench_vmaf.py [--frames N] [--repeats R] [--threads 1,2,4] [--json]

The frames: perflab's synthetic e-commerce clip rendered natively at 1920×1080 (text, fabric
swatches up to Nyquist, a scrolling page: perflab.quality.inputs.iter_synthetic_frames) as HR,
and the documented HR→LR ×2 degradation upscaled bicubically (the SR side), both kept with
perflab.quality.video.KeptVideo exactly as a run keeps them. Timed: the whole ffmpeg command a
run executes (decode both files, convert to yuv420p, libvmaf with the vmaf_v0.6.1 model, the
JSON log written and parsed), per thread count, interleaved over the repeats; frames per second
from the median. Also timed once: writing the kept file (per frame), which a run pays per cell. ffmpeg's own CPU
time per frame is printed beside the wall time: on a loaded machine it is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from perflab.quality import frames
from perflab.quality.metrics import default_threads
from perflab.quality.synthetic import iter_synthetic_frames
from perflab.quality.video import VMAF_MODEL, KeptVideo, run_vmaf


def _pair(n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    hrs, srs = [], []
    for f in iter_synthetic_frames(n, fps=30.0, width=1920, height=1080, seed=0):
        hr = frames.quantize_8bit(f.hr)
        lr = frames.hr_to_lr(hr, 2)
        hrs.append(hr)
        srs.append(frames.quantize_8bit(np.clip(frames.resize_bicubic(lr, 1920, 1080), 0.0, 1.0)))
    return hrs, srs


def _keep(folder: Path, stream: list[np.ndarray]) -> tuple[Path, float]:
    kv = KeptVideo(folder, fps=30.0, max_frames=len(stream))
    t0 = time.perf_counter()
    for i, f in enumerate(stream):
        kv.add(str(i), f, "synthetic")
    (seg,) = kv.close()
    return seg.path, (time.perf_counter() - t0) * 1e3 / len(stream)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="", help="libvmaf thread counts, comma-separated (default 1 and "
                                                   "perflab's default)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()
    counts = sorted({int(x) for x in args.threads.split(",") if x.strip()} or {1, default_threads()})
    hrs, srs = _pair(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref, ref_ms = _keep(root / "hr", hrs)
        dis, dis_ms = _keep(root / "sr", srs)
        times: dict[int, list[float]] = {t: [] for t in counts}
        cpu: dict[int, list[float]] = {t: [] for t in counts}  # ffmpeg's CPU time (user + system), ms
        scores: dict[int, tuple[float, ...]] = {}
        for _ in range(args.repeats):
            for t in counts:
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                log = run_vmaf(dis, ref, root / f"log{t}.json", threads=t, expect_frames=args.frames)
                times[t].append((time.perf_counter() - t0) * 1e3)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[t].append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1e3)
                scores[t] = log.scores
        version = log.version
        sizes = {"hr_bytes_per_frame": ref.stat().st_size / args.frames,
                 "sr_bytes_per_frame": dis.stat().st_size / args.frames}
    result = {
        "frame": "1920x1080", "frames": args.frames, "repeats": args.repeats, "model": VMAF_MODEL,
        "libvmaf": version, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "loadavg_1m": os.getloadavg()[0],
        "keep_ms_per_frame": {"hr": ref_ms, "sr": dis_ms}, **sizes,
        "vmaf_ms": {str(t): {"min": min(v), "median": statistics.median(v)} for t, v in times.items()},
        "vmaf_fps": {str(t): 1e3 * args.frames / statistics.median(v) for t, v in times.items()},
        "vmaf_cpu_ms_per_frame": {str(t): statistics.median(v) / args.frames for t, v in cpu.items()},
        "vmaf_mean": float(np.mean(scores[counts[0]])),
        "same_scores_at_every_thread_count": all(scores[t] == scores[counts[0]] for t in counts),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"VMAF ({VMAF_MODEL}, libvmaf {version}) of {args.frames} frames 1920×1080, {args.repeats} repeats, "
          f"{result['cpus']} CPUs, load {result['loadavg_1m']:.1f}")
    for t in counts:
        med = statistics.median(times[t])
        print(f"  n_threads={t:<3} median {med:8.0f} ms  min {min(times[t]):8.0f} ms  "
              f"→ {1e3 * args.frames / med:6.1f} frames/s; ffmpeg CPU {statistics.median(cpu[t]) / args.frames:.0f} "
              "ms/frame")
    print(f"  keeping a frame as FFV1: HR {ref_ms:.0f} ms, SR {dis_ms:.0f} ms; "
          f"{sizes['hr_bytes_per_frame'] / 2**20:.2f} MiB/frame")
    print(f"  mean VMAF {result['vmaf_mean']:.3f}; same scores at every thread count: "
          f"{'yes' if result['same_scores_at_every_thread_count'] else 'NO'}")


if __name__ == "__main__":
    main()
