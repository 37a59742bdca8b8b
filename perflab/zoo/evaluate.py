"""Quality of zoo models on the held-out images (coffee, chelsea, rocket): PSNR-Y and SSIM-Y.

Y is BT.601 studio swing (16 + 65.481 R + 128.553 G + 24.966 B) on the output clipped to [0, 1]
and rounded to 8 bits (what a displayed frame holds), ``scale`` border pixels cropped,
``data_range=255``. LR = ``perflab.quality.frames.hr_to_lr(hr, scale)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perflab.quality.frames import crop_to_multiple, hr_to_lr, quantize_8bit


@dataclass(frozen=True)
class Quality:
    psnr_y_db: float
    ssim_y: float


def psnr_ssim_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> Quality:
    """Quality of an SR output as displayed: clipped, rounded to 8 bits, then scored by the
    same metrics ``perflab run`` uses (perflab.quality.metrics, equal to scikit-image)."""
    from perflab.quality.metrics import psnr_ssim_y as y_metrics

    y = y_metrics(quantize_8bit(np.clip(sr, 0.0, 1.0)), hr, scale)
    return Quality(y.psnr_y_db, y.ssim_y)


def evaluate(upscale: Callable[[np.ndarray], np.ndarray], scale: int,
             images: list[tuple[str, np.ndarray]] | None = None) -> dict[str, Quality]:
    """Per held-out image quality of ``upscale`` (LR float RGB → SR float RGB)."""
    from perflab.zoo.data import held_out_images

    out: dict[str, Quality] = {}
    for name, hr in (held_out_images() if images is None else images):
        hr_c = crop_to_multiple(hr, scale)
        out[name] = psnr_ssim_y(upscale(hr_to_lr(hr, scale)), hr_c, scale)
    return out


def evaluate_tflite(path: Path | bytes, scale: int,
                    images: list[tuple[str, np.ndarray]] | None = None) -> dict[str, Quality]:
    from perflab.zoo.infer import upscale

    return evaluate(lambda lr: upscale(path, lr), scale, images)


def mean_quality(q: dict[str, Quality]) -> Quality:
    return Quality(float(np.mean([v.psnr_y_db for v in q.values()])), float(np.mean([v.ssim_y for v in q.values()])))
