"""PSNR-Y + SSIM-Y of a 1080p frame pair: perflab.quality.metrics versus scikit-image.

Usage: python benchmarks/bench_quality.py [--repeats N] [--threads T] [--json]

Both sides start from the same float32 RGB frames (SR = bicubic ×2 of the documented HR→LR
degradation of a packaged photograph scaled to 1920×1080, and the HR frame). The scikit-image
side is what a user would write: Y with perflab.quality.frames.rgb_to_y (float64), crop the
border, ``peak_signal_noise_ratio(data_range=255)`` and ``structural_similarity(
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``. The two are
timed interleaved; the minimum and median over the repeats are printed (the minimum is the
least disturbed by other load on the machine), with the differences of the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import skimage.metrics

from perflab.quality import frames
from perflab.quality.metrics import default_threads, psnr_ssim_y

BORDER_PX = 2

# scikit-image's functions carry no annotations: typed handles for mypy --strict.
peak_signal_noise_ratio: Callable[..., float] = skimage.metrics.peak_signal_noise_ratio
structural_similarity: Callable[..., float] = skimage.metrics.structural_similarity


def _frames_1080p() -> tuple[np.ndarray, np.ndarray]:
    photo = frames.load_skimage_photo("astronaut")
    hr = np.clip(frames.resize_bicubic(photo, 1920, 1080), 0.0, 1.0)
    hr = frames.quantize_8bit(hr)
    lr = frames.hr_to_lr(hr, 2)
    sr = frames.quantize_8bit(np.clip(frames.resize_bicubic(lr, 1920, 1080), 0.0, 1.0))
    return sr, hr


def _skimage_pair(sr: np.ndarray, hr: np.ndarray) -> tuple[float, float]:
    b = BORDER_PX
    ys = frames.rgb_to_y(sr)[b:-b, b:-b]
    yh = frames.rgb_to_y(hr)[b:-b, b:-b]
    psnr = float(peak_signal_noise_ratio(yh, ys, data_range=255))
    ssim = float(
        structural_similarity(
            yh, ys, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
    )
    return psnr, ssim


def _time_ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="0 = perflab's default")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()
    threads = args.threads or default_threads()

    sr, hr = _frames_1080p()
    ref_psnr, ref_ssim = _skimage_pair(sr, hr)
    ours = psnr_ssim_y(sr, hr, BORDER_PX, threads=threads)
    ours1 = psnr_ssim_y(sr, hr, BORDER_PX, threads=1)

    ref_ms: list[float] = []
    ours_ms: list[float] = []
    ours1_ms: list[float] = []
    for _ in range(args.repeats):
        ref_ms.append(_time_ms(lambda: _skimage_pair(sr, hr)))
        ours_ms.append(_time_ms(lambda: psnr_ssim_y(sr, hr, BORDER_PX, threads=threads)))
        ours1_ms.append(_time_ms(lambda: psnr_ssim_y(sr, hr, BORDER_PX, threads=1)))

    result = {
        "frame": f"{hr.shape[1]}x{hr.shape[0]}",
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "threads": threads,
        "repeats": args.repeats,
        "skimage_ms": {"min": min(ref_ms), "median": statistics.median(ref_ms)},
        "perflab_ms": {"min": min(ours_ms), "median": statistics.median(ours_ms)},
        "perflab_1thread_ms": {"min": min(ours1_ms), "median": statistics.median(ours1_ms)},
        "speedup_min": min(ref_ms) / min(ours_ms),
        "speedup_1thread_min": min(ref_ms) / min(ours1_ms),
        "psnr_y_db": {"skimage": ref_psnr, "perflab": ours.psnr_y_db, "diff": ours.psnr_y_db - ref_psnr},
        "ssim_y": {"skimage": ref_ssim, "perflab": ours.ssim_y, "diff": ours.ssim_y - ref_ssim},
        "ssim_y_1thread_diff": ours1.ssim_y - ref_ssim,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"PSNR-Y + SSIM-Y, {result['frame']} frame pair, border {BORDER_PX} px, {args.repeats} repeats")
    print(f"  scikit-image          min {min(ref_ms):7.1f} ms   median {statistics.median(ref_ms):7.1f} ms")
    print(
        f"  perflab ({threads} thread{'s' if threads != 1 else ''})   min {min(ours_ms):7.1f} ms   median {statistics.median(ours_ms):7.1f} ms"
        f"   speed-up {result['speedup_min']:.2f}x"
    )
    print(
        f"  perflab (1 thread)    min {min(ours1_ms):7.1f} ms   median {statistics.median(ours1_ms):7.1f} ms"
        f"   speed-up {result['speedup_1thread_min']:.2f}x"
    )
    print(
        f"  PSNR-Y  skimage {ref_psnr:.9f} dB  perflab {ours.psnr_y_db:.9f} dB  diff {ours.psnr_y_db - ref_psnr:+.2e}"
    )
    print(
        f"  SSIM-Y  skimage {ref_ssim:.9f}     perflab {ours.ssim_y:.9f}     diff {ours.ssim_y - ref_ssim:+.2e}"
    )
    ok = abs(ours.psnr_y_db - ref_psnr) <= 1e-6 and abs(ours.ssim_y - ref_ssim) <= 1e-4
    print(f"  equal within 1e-6 dB / 1e-4: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
