"""PSNR-Y / SSIM-Y / PSNR-RGB against scikit-image on real photographs with real degradations."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import pytest
import skimage.metrics
from PIL import Image

from perflab.analysis.derive import mai2021_score
from perflab.errors import MeasurementError
from perflab.quality import frames
from perflab.quality.metrics import (
    psnr_rgb_db,
    psnr_ssim_y,
    psnr_y_db,
    score_frame,
    set_quality,
    ssim_y,
)

# scikit-image's functions carry no annotations: typed handles for mypy --strict.
peak_signal_noise_ratio: Callable[..., float] = skimage.metrics.peak_signal_noise_ratio
structural_similarity: Callable[..., float] = skimage.metrics.structural_similarity


def _ref_y(sr: np.ndarray, hr: np.ndarray, border: int) -> tuple[float, float]:
    ys = frames.rgb_to_y(sr)
    yh = frames.rgb_to_y(hr)
    if border:
        ys = ys[border:-border, border:-border]
        yh = yh[border:-border, border:-border]
    psnr = peak_signal_noise_ratio(yh, ys, data_range=255)
    ssim = structural_similarity(
        yh, ys, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    return float(psnr), float(ssim)


def _bicubic_up(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    hr = frames.crop_to_multiple(hr, scale)
    lr = frames.hr_to_lr(hr, scale)
    up = frames.quantize_8bit(np.clip(frames.resize_bicubic(lr, hr.shape[1], hr.shape[0]), 0.0, 1.0))
    return up, hr


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return frames.to_float_rgb(np.asarray(Image.open(buf).convert("RGB")))


def _noisy(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0.0, sigma, img.shape), 0.0, 1.0).astype(np.float32)


def _cases() -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    out: list[tuple[str, np.ndarray, np.ndarray, int]] = []
    coffee = frames.load_skimage_photo("coffee")
    astronaut = frames.load_skimage_photo("astronaut")
    chelsea = frames.load_skimage_photo("chelsea")
    for name, img in (("coffee", coffee), ("astronaut", astronaut), ("chelsea", chelsea)):
        for scale in (2, 3):
            sr, hr = _bicubic_up(img, scale)
            out.append((f"{name}-bicubic-x{scale}", sr, hr, scale))
    out.append(("coffee-noise", _noisy(coffee, 0.02, 1), coffee, 2))
    out.append(("chelsea-noise-strong", _noisy(chelsea, 0.2, 2), chelsea, 2))
    out.append(("astronaut-jpeg30", _jpeg(astronaut, 30), astronaut, 2))
    out.append(("coffee-jpeg90", _jpeg(coffee, 90), coffee, 4))
    out.append(("coffee-tiny-noise", _noisy(coffee, 0.0005, 3), coffee, 2))  # ~70 dB
    return out


CASES = _cases()


@pytest.mark.parametrize("name,sr,hr,border", CASES, ids=[c[0] for c in CASES])
def test_y_metrics_equal_skimage(name: str, sr: np.ndarray, hr: np.ndarray, border: int) -> None:
    ref_psnr, ref_ssim = _ref_y(sr, hr, border)
    q = psnr_ssim_y(sr, hr, border)
    assert abs(q.psnr_y_db - ref_psnr) < 1e-6
    assert abs(q.ssim_y - ref_ssim) < 1e-4
    assert psnr_y_db(sr, hr, border) == pytest.approx(q.psnr_y_db, abs=1e-9)
    assert ssim_y(sr, hr, border) == pytest.approx(q.ssim_y, abs=1e-12)


def test_degradations_order_as_expected() -> None:
    coffee = frames.load_skimage_photo("coffee")
    mild = psnr_ssim_y(_jpeg(coffee, 90), coffee, 2)
    harsh = psnr_ssim_y(_jpeg(coffee, 10), coffee, 2)
    assert mild.psnr_y_db > harsh.psnr_y_db + 3
    assert 0.0 < harsh.ssim_y < mild.ssim_y < 1.0


def test_float64_inputs_and_odd_sizes() -> None:
    img = frames.load_skimage_photo("rocket")[:201, :333].astype(np.float64)
    sr = np.clip(img + np.random.default_rng(5).normal(0.0, 0.03, img.shape), 0.0, 1.0)
    ref_psnr, ref_ssim = _ref_y(sr, img, 3)
    q = psnr_ssim_y(sr, img, 3)
    assert abs(q.psnr_y_db - ref_psnr) < 1e-6
    assert abs(q.ssim_y - ref_ssim) < 1e-4


def test_small_image_and_thread_counts_agree() -> None:
    img = frames.load_skimage_photo("chelsea")
    sr, hr = _bicubic_up(img, 2)
    one = psnr_ssim_y(sr, hr, 2, threads=1)
    four = psnr_ssim_y(sr, hr, 2, threads=4)
    assert one.ssim_y == pytest.approx(four.ssim_y, abs=1e-12)
    small_sr, small_hr = sr[:15, :17], hr[:15, :17]
    ref_psnr, ref_ssim = _ref_y(small_sr, small_hr, 2)  # 11×13 after the crop
    q = psnr_ssim_y(small_sr, small_hr, 2)
    assert abs(q.psnr_y_db - ref_psnr) < 1e-6
    assert abs(q.ssim_y - ref_ssim) < 1e-4


def test_identical_images() -> None:
    img = frames.load_skimage_photo("coffee")
    q = psnr_ssim_y(img, img.copy(), 2)
    assert q.psnr_y_db == math.inf
    assert q.ssim_y == pytest.approx(1.0, abs=1e-6)
    assert psnr_rgb_db(img, img, 0) == math.inf


def test_psnr_rgb_equals_skimage() -> None:
    for name, sr, hr, border in CASES[:4]:
        ref = peak_signal_noise_ratio(
            hr[border:-border, border:-border].astype(np.float64),
            sr[border:-border, border:-border].astype(np.float64),
            data_range=1.0,
        )
        assert abs(psnr_rgb_db(sr, hr, border) - ref) < 1e-6, name


def test_bad_inputs_raise_measurement_error() -> None:
    img = frames.load_skimage_photo("coffee")
    with pytest.raises(MeasurementError, match="sizes differ"):
        psnr_y_db(img[:-2], img, 2)
    with pytest.raises(MeasurementError, match="RGB"):
        psnr_y_db(img[..., 0], img[..., 0], 2)
    with pytest.raises(MeasurementError, match="float"):
        psnr_y_db((img * 255).astype(np.uint8), (img * 255).astype(np.uint8), 2)
    bad = img.copy()
    bad[3, 3, 1] = np.nan
    with pytest.raises(MeasurementError, match="NaN"):
        ssim_y(bad, img, 2)
    with pytest.raises(MeasurementError, match="11×11"):
        ssim_y(img[:14, :14], img[:14, :14], 2)
    with pytest.raises(MeasurementError, match="nothing left"):
        psnr_y_db(img[:4, :4], img[:4, :4], 2)


def test_mai2021_score() -> None:
    base = mai2021_score(30.0, 20.0)
    assert base == pytest.approx(2.0**60 / 20.0)
    assert mai2021_score(30.5, 20.0) == pytest.approx(2 * base)  # +0.5 dB doubles it
    assert mai2021_score(30.0, 10.0) == pytest.approx(2 * base)  # half the runtime doubles it
    assert mai2021_score(30.0, 20.0, c=4.0) == pytest.approx(base / 4)
    with pytest.raises(MeasurementError):
        mai2021_score(30.0, 0.0)
    with pytest.raises(MeasurementError):
        mai2021_score(math.inf, 10.0)


def test_set_quality_per_frame_and_mean() -> None:
    names, srs, bics, hrs = [], [], [], []
    for photo in ("coffee", "chelsea"):
        hr = frames.crop_to_multiple(frames.load_skimage_photo(photo), 2)
        bic, _ = _bicubic_up(hr, 2)
        # a stand-in "SR" that is closer to HR than bicubic: halfway between the two
        sr = ((bic + hr) / 2).astype(np.float32)
        names.append(photo)
        srs.append(sr)
        bics.append(bic)
        hrs.append(hr)
    q = set_quality(names, srs, bics, hrs, 2)
    assert q.n == 2
    for i, f in enumerate(q.frames):
        ref_sr = _ref_y(srs[i], hrs[i], 2)
        ref_bic = _ref_y(bics[i], hrs[i], 2)
        assert abs(f.psnr_y_db - ref_sr[0]) < 1e-6
        assert abs(f.bicubic_psnr_y_db - ref_bic[0]) < 1e-6
        assert f.delta_psnr_y_db == pytest.approx(f.psnr_y_db - f.bicubic_psnr_y_db)
        assert f.delta_psnr_y_db > 5.0  # halving the error gains ~6 dB
        assert f.delta_ssim_y > 0.0
    assert q.mean_psnr_y_db == pytest.approx(np.mean([f.psnr_y_db for f in q.frames]))
    assert q.mean_delta_psnr_y_db == pytest.approx(q.mean_psnr_y_db - q.mean_bicubic_psnr_y_db)
    d = q.to_dict()
    assert d["n"] == 2 and len(d["frames"]) == 2  # type: ignore[arg-type]
    single = score_frame("coffee", srs[0], bics[0], hrs[0], 2)
    assert single == q.frames[0]
    with pytest.raises(MeasurementError, match="counts differ"):
        set_quality(names, srs[:1], bics, hrs, 2)
