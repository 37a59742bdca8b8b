"""Temporal stability versus VMAF on the same 1080p clip: time per frame of each.

Usage: python benchmarks/bench_temporal.py [--frames N] [--repeats R] [--threads T] [--json]

The clip: N frames of perflab's synthetic clip rendered at 1920×1080 (scrolling page, crawling
ticker, pulsing badge: real motion), and its "SR" = bicubic ×2 of the documented HR→LR, rounded
to 8 bits as a run scores it. VMAF: ffmpeg's libvmaf (vmaf_v0.6.1, ``n_threads=T``, T = the
machine's CPUs by default) on the two clips kept as lossless FFV1, as a run does (the decode is
part of VMAF's time). Temporal: perflab.quality.temporal.TemporalTracker over the same frames in
memory (the luma conversion, block motion on HR and the error change), one thread. Timed
interleaved, R repeats; per-frame medians and minimums are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from perflab.quality import frames
from perflab.quality.synthetic import iter_synthetic_frames
from perflab.quality.temporal import TemporalTracker
from perflab.quality.video import KeptVideo, run_vmaf

SCALE = 2


def _clip(n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    hrs, outs = [], []
    for f in iter_synthetic_frames(n, fps=30.0, width=1920, height=1080):
        assert f.hr is not None  # the synthetic clip is rendered at HR
        hr = frames.quantize_8bit(f.hr)
        lr = frames.hr_to_lr(hr, SCALE)
        outs.append(frames.quantize_8bit(np.clip(frames.resize_bicubic(lr, 1920, 1080), 0.0, 1.0)))
        hrs.append(hr)
    return hrs, outs


def _keep(directory: Path, imgs: list[np.ndarray]) -> Path:
    """The frames as one lossless FFV1 file, written by the run's own writer."""
    kept = KeptVideo(directory, fps=30.0, max_frames=len(imgs))
    for i, img in enumerate(imgs):
        kept.add(f"f{i}", img)
    (segment,) = kept.close()
    return segment.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    hrs, outs = _clip(a.frames)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ref, dis = _keep(d / "hr", hrs), _keep(d / "sr", outs)
        vmaf_s: list[float] = []
        temporal_s: list[float] = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            log = run_vmaf(dis, ref, d / "vmaf.json", threads=a.threads, expect_frames=a.frames)
            vmaf_s.append((time.perf_counter() - t0) / a.frames)
            t0 = time.perf_counter()
            tracker = TemporalTracker(border_px=SCALE)
            values = [tracker.step("clip", h, o).value for h, o in zip(hrs, outs, strict=True)]
            temporal_s.append((time.perf_counter() - t0) / a.frames)
    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        "frames": a.frames, "repeats": a.repeats, "vmaf_threads": a.threads,
        "vmaf_ms_per_frame_median": 1000 * statistics.median(vmaf_s), "vmaf_ms_per_frame_min": 1000 * min(vmaf_s),
        "temporal_ms_per_frame_median": 1000 * statistics.median(temporal_s),
        "temporal_ms_per_frame_min": 1000 * min(temporal_s),
        "vmaf_mean": float(np.mean(log.scores)),
        "temporal_err_y_mean": float(np.mean([v for v in values if v is not None])),
    }
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{res['machine']}; {a.frames} frames 1920×1080, {a.repeats} repeats")
    print(f"VMAF (libvmaf, {a.threads} threads, from FFV1 files): {res['vmaf_ms_per_frame_median']:.0f} ms/frame "
          f"median ({res['vmaf_ms_per_frame_min']:.0f} min); mean VMAF {res['vmaf_mean']:.2f}")
    print(f"temporal (1 thread, in memory):                   {res['temporal_ms_per_frame_median']:.0f} ms/frame "
          f"median ({res['temporal_ms_per_frame_min']:.0f} min); mean {res['temporal_err_y_mean']:.3f} Y levels")


if __name__ == "__main__":
    main()
