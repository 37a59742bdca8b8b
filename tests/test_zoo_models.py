"""Every shipped zoo model loads and runs in LiteRT (no TensorFlow) and the SR models beat bicubic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from perflab.quality.frames import crop_to_multiple, hr_to_lr, load_skimage_photo
from perflab.zoo import bicubic, evaluate, infer
from perflab.zoo.convert import VARIANTS
from perflab.zoo.registry import WEIGHTS_DIR, get_artifact, list_models

SHIPPED = sorted(WEIGHTS_DIR.glob("*.tflite"))
SR_X2 = [i for i in list_models() if i.family != "bicubic" and i.scale == 2]


def _scale_of(path: Path) -> int:
    return int(path.stem.split("_x")[1].split("_")[0])


def _variant_of(path: Path) -> str:
    return next(v for v in sorted(VARIANTS, key=len, reverse=True) if path.stem.endswith("_" + v))


def test_every_listed_model_has_fp32_and_int8() -> None:
    assert SR_X2, "no SR model shipped"
    for info in list_models():
        sizes = info.variant_sizes()
        assert sizes["fp32"], info.name
        if info.family != "bicubic":
            assert all(sizes[v] for v in VARIANTS if v in ("fp32", "int8")), info.name


def test_shipped_file_names_follow_the_convention() -> None:
    names = {i.name for i in list_models()}
    for p in SHIPPED:
        assert p.stem[: -len(_variant_of(p)) - 1] in names, p.name


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_loads_in_litert_with_dynamic_shape(path: Path) -> None:
    s = _scale_of(path)
    it = Interpreter(model_path=str(path), num_threads=2)
    inp, out = it.get_input_details(), it.get_output_details()
    assert len(inp) == 1 and len(out) == 1
    assert list(inp[0]["shape_signature"]) == [1, -1, -1, 3]
    expected = {"int8": np.int8, "uint8": np.uint8}.get(_variant_of(path), np.float32)
    assert inp[0]["dtype"] == expected and out[0]["dtype"] == expected
    # the fixed scenario size: 960×540 LR → shapes propagate through every op
    it.resize_tensor_input(inp[0]["index"], [1, 540, 960, 3], strict=True)
    it.allocate_tensors()
    assert list(it.get_output_details()[0]["shape"]) == [1, 540 * s, 960 * s, 3]
    # and it runs at a small odd size
    lr = np.random.default_rng(0).random((13, 17, 3)).astype(np.float32)
    y = infer.upscale(path, lr)
    assert y.shape == (13 * s, 17 * s, 3)
    assert np.isfinite(y).all()
    assert float(y.min()) >= -0.01 and float(y.max()) <= 1.01


@pytest.mark.parametrize("variant", VARIANTS)
def test_espcn_x2_runs_at_540p(variant: str) -> None:
    art = get_artifact("espcn", 2, variant)
    lr = np.tile(hr_to_lr(load_skimage_photo("coffee"), 2), (3, 4, 1))[:540, :960]
    y = infer.upscale(art.path, lr)
    assert y.shape == (1080, 1920, 3)
    ref = bicubic.reference_bicubic_upscale(lr, 2)
    assert float(np.abs(np.clip(y, 0, 1) - ref).mean()) < 0.02  # an upscale of the same picture


@pytest.mark.parametrize("info", SR_X2, ids=[i.name for i in SR_X2])
def test_sr_x2_beats_bicubic_on_held_out_image(info: object) -> None:
    from perflab.zoo.registry import ModelInfo

    assert isinstance(info, ModelInfo)
    hr = load_skimage_photo("chelsea")
    hr_c = crop_to_multiple(hr, 2)
    lr = hr_to_lr(hr, 2)
    sr = evaluate.psnr_ssim_y(infer.upscale(get_artifact(info.family, 2, "fp32").path, lr), hr_c, 2)
    bic = evaluate.psnr_ssim_y(infer.upscale(get_artifact("bicubic", 2, "fp32").path, lr), hr_c, 2)
    assert sr.psnr_y_db > bic.psnr_y_db + 0.1, (sr, bic)
    assert sr.ssim_y > bic.ssim_y
