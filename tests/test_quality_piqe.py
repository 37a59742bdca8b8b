"""PIQE against the independent pypiqe package, on real photographs with real degradations."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from perflab.errors import MeasurementError
from perflab.quality import frames
from perflab.quality.piqe import piqe, piqe_score, round_half_away, stretch_to_255, to_gray8


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return frames.to_float_rgb(np.asarray(Image.open(buf).convert("RGB")))


def _degraded(name: str) -> dict[str, np.ndarray]:
    img = frames.load_skimage_photo(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    cropped = frames.crop_to_multiple(img, 4)
    bic = np.clip(frames.resize_bicubic(frames.hr_to_lr(img, 4), cropped.shape[1], cropped.shape[0]), 0, 1)
    return {
        "orig": img,
        "jpeg10": _jpeg(img, 10),
        "noise": np.clip(img + rng.normal(0.0, 0.05, img.shape), 0.0, 1.0).astype(np.float32),
        "bicubic-x4": bic.astype(np.float32),
    }


# coffee 400×600 and chelsea 300×451 are not multiples of 16: the padding path is exercised.
PHOTOS = ("coffee", "chelsea", "astronaut")
CASES = [(p, tag, img) for p in PHOTOS for tag, img in _degraded(p).items()]


@pytest.mark.parametrize("photo,tag,img", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_piqe_equals_pypiqe(photo: str, tag: str, img: np.ndarray) -> None:
    pypiqe = pytest.importorskip("pypiqe", reason="pypiqe (+ opencv-python-headless) is a dev dependency")
    gray = to_gray8(img)
    ref_score, ref_artifacts, ref_noise, ref_activity = pypiqe.piqe(gray)
    ours = piqe(gray)
    assert ours.score == pytest.approx(float(ref_score), abs=1e-9)
    assert np.array_equal(ours.pixel_mask(ours.active_blocks), np.asarray(ref_activity, dtype=bool))
    assert np.array_equal(ours.pixel_mask(ours.artifact_blocks), np.asarray(ref_artifacts, dtype=bool))
    assert np.array_equal(ours.pixel_mask(ours.noise_blocks), np.asarray(ref_noise, dtype=bool))
    # float RGB in goes through the same 8-bit gray
    assert piqe_score(img) == ours.score


def test_piqe_ranks_degradations() -> None:
    for photo in PHOTOS:
        d = {tag: piqe_score(img) for tag, img in _degraded(photo).items()}
        assert d["orig"] < d["jpeg10"], (photo, d)
        assert d["orig"] < d["bicubic-x4"], (photo, d)
        assert 0.0 <= d["orig"] <= 100.0


def test_noise_blocks_found_on_noisy_image() -> None:
    img = frames.load_skimage_photo("coffee")
    noisy = np.clip(img + np.random.default_rng(0).normal(0.0, 0.08, img.shape), 0, 1)
    r_clean = piqe(img)
    r_noisy = piqe(noisy)
    assert r_noisy.noise_blocks.sum() > r_clean.noise_blocks.sum()
    assert r_noisy.n_active >= r_clean.n_active
    assert r_noisy.pixel_mask(r_noisy.noise_blocks).shape == img.shape[:2]


def test_flat_image_and_bad_input() -> None:
    flat = np.full((64, 64, 3), 0.5, dtype=np.float32)
    r = piqe(flat)
    assert r.n_active == 0 and r.score == pytest.approx(100.0)  # as MATLAB: nothing active → 100
    with pytest.raises(MeasurementError, match="16×16"):
        piqe(flat[:10])
    with pytest.raises(MeasurementError, match="shape"):
        piqe(np.zeros((32, 32, 2), dtype=np.float32))


# Dim frames: the brightest grey is below 255, so PIQE's stretch to 255 decides the result.
# These maxima are ones where ``255 * (I / max)`` never lands exactly on .5, so pypiqe (numpy's
# half-to-even ``round``) and MATLAB (half away from zero) agree; the old ``I * (255 / max)``
# with ``rint`` differed from both by up to 0.56.
DIM_MAXIMA = (58, 182, 242)
DIM_CASES = [(p, m) for p in PHOTOS for m in DIM_MAXIMA]


def _dim(photo: str, max_grey: int) -> np.ndarray:
    g = to_gray8(frames.load_skimage_photo(photo)).astype(np.int64)
    out = (g * max_grey // 255).astype(np.uint8)
    out[0, 0] = max_grey  # the brightest grey is exactly max_grey
    return out


@pytest.mark.parametrize("photo,max_grey", DIM_CASES, ids=[f"{p}-max{m}" for p, m in DIM_CASES])
def test_piqe_equals_pypiqe_on_dim_frames(photo: str, max_grey: int) -> None:
    pypiqe = pytest.importorskip("pypiqe", reason="pypiqe (+ opencv-python-headless) is a dev dependency")
    gray = _dim(photo, max_grey)
    assert int(gray.max()) == max_grey
    ref_score, ref_artifacts, ref_noise, ref_activity = pypiqe.piqe(gray)
    ours = piqe(gray)
    assert ours.score == pytest.approx(float(ref_score), abs=1e-9)
    assert np.array_equal(ours.pixel_mask(ours.active_blocks), np.asarray(ref_activity, dtype=bool))
    assert np.array_equal(ours.pixel_mask(ours.artifact_blocks), np.asarray(ref_artifacts, dtype=bool))
    assert np.array_equal(ours.pixel_mask(ours.noise_blocks), np.asarray(ref_noise, dtype=bool))


def test_stretch_rounds_half_away_from_zero_as_matlab() -> None:
    # max 6: 255 * (I / 6) is 42.5, 127.5, 212.5 for I = 1, 3, 5; MATLAB's round gives
    # 43, 128, 213 (numpy's half-to-even rint would give 42, 128, 212).
    ramp = np.arange(7, dtype=np.float64)
    assert stretch_to_255(ramp).tolist() == [0, 43, 85, 128, 170, 213, 255]
    assert round_half_away(np.array([0.5, 1.5, 2.5, -2.5, 2.4999])).tolist() == [1, 2, 3, -3, 2]
    # the order of operations is MATLAB's: 255 * (I / max), not I * (255 / max)
    # (100 * (255 / 200) is 127.49999999999999 in float64 and rounded to 127)
    assert stretch_to_255(np.array([0.0, 100.0, 200.0])).tolist() == [0, 128, 255]
    assert stretch_to_255(np.zeros(4)).tolist() == [0, 0, 0, 0]
