"""Bicubic-as-a-model: the shipped TFLite graphs against the numpy reference and Pillow."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from perflab.errors import UserInputError
from perflab.quality.frames import hr_to_lr, load_skimage_photo
from perflab.zoo import bicubic, infer
from perflab.zoo.registry import get_artifact


def _pil_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    h, w = lr.shape[:2]
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(lr[..., c], dtype=np.float32), mode="F")
                        .resize((w * scale, h * scale), Image.Resampling.BICUBIC)) for c in range(3)]
    return np.stack(chans, axis=-1)


@pytest.fixture(scope="module")
def lr_random() -> np.ndarray:
    return np.random.default_rng(3).random((23, 31, 3)).astype(np.float32)


def test_phase_taps_sum_to_one_and_interpolate() -> None:
    for s in bicubic.SUPPORTED_SCALES:
        taps = bicubic.phase_taps(s)
        np.testing.assert_allclose(taps.sum(axis=1), 1.0, atol=1e-12)
    # ×3 phase 1 sits exactly on the LR pixel: weight 1 on offset 0
    np.testing.assert_allclose(bicubic.phase_taps(3)[1], [0, 0, 1, 0, 0], atol=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reference_matches_pillow_inside_border(lr_random: np.ndarray, scale: int) -> None:
    ref = bicubic.reference_bicubic_upscale(lr_random, scale, clip=False)
    pil = _pil_upscale(lr_random, scale)
    b = bicubic.border_px(scale)
    np.testing.assert_allclose(ref[b:-b, b:-b], pil[b:-b, b:-b], atol=2e-6)
    # At the edges the conventions differ (clamp vs renormalise), and only in the documented band.
    band = int(np.ceil(1.5 * scale - 0.5))
    diff = np.abs(ref - pil).max(axis=2)
    assert diff[band:-band, band:-band].max() < 2e-6
    assert diff[band - 1, band:-band].max() > 1e-5  # the band's inner edge still differs
    assert diff[band:-band, -band].max() > 1e-5


@pytest.mark.parametrize("scale", [2, 3])
def test_shipped_fp32_equals_reference(lr_random: np.ndarray, scale: int) -> None:
    art = get_artifact("bicubic", scale, "fp32")
    out = infer.upscale(art.path, lr_random)
    assert out.shape == (23 * scale, 31 * scale, 3)
    np.testing.assert_allclose(out, bicubic.reference_bicubic_upscale(lr_random, scale), atol=1e-5)


def test_shipped_fp32_on_a_photo_at_540p_size() -> None:
    hr = load_skimage_photo("coffee")  # 400×600
    lr = hr_to_lr(hr, 2)
    tile = np.tile(lr, (3, 4, 1))[:540, :960]  # fixed 540×960 input, as scenarios use
    art = get_artifact("bicubic", 2, "fp32")
    out = infer.upscale(art.path, tile)
    assert out.shape == (1080, 1920, 3)
    np.testing.assert_allclose(out, bicubic.reference_bicubic_upscale(tile, 2), atol=1e-5)


def test_bad_scale_is_user_error() -> None:
    with pytest.raises(UserInputError):
        bicubic.reference_bicubic_upscale(np.zeros((4, 4, 3)), 5)
