"""Write a Keras model's TFLite variants into perflab/zoo/weights/ and record its metadata.

Imports TensorFlow lazily (through ``perflab.zoo.convert``); used by the CLI's build/convert
commands and by the training recipe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from perflab.zoo.convert import VARIANTS, convert_keras
from perflab.zoo.registry import METADATA_FILE, WEIGHTS_DIR


def count_macs_per_lr_pixel(model: Any) -> int:
    """Multiply-accumulates per LR pixel of a fully convolutional Keras model.

    Conv2D layers count k_h·k_w·C_in·C_out per output pixel, DepthwiseConv2D k_h·k_w·C; a layer
    whose output is s² times the LR area (after pixel shuffle) counts s² times. Element-wise ops
    are not counted (the literature's "MACs").
    """
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            kh, kw = layer.kernel_size
            cin = int(layer.input.shape[-1])
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                per_px = kh * kw * cin * layer.depth_multiplier
            else:
                per_px = kh * kw * cin * layer.filters
            total += int(per_px)  # every conv of the zoo runs at LR resolution
    return total


def count_params(model: Any) -> int:
    return int(model.count_params())


def update_metadata(entry: dict[str, Any], path: Path = METADATA_FILE) -> None:
    data: dict[str, Any] = {"models": []}
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
    models = [m for m in data["models"] if m["name"] != entry["name"]]
    models.append(entry)
    data["models"] = sorted(models, key=lambda m: (m["family"], m["scale"]))
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def ship(model: Any, family: str, scale: int, *, training_data: str, description: str, recipe: str = "",
         variants: tuple[str, ...] = VARIANTS, params: int | None = None, macs_per_lr_pixel: int | None = None,
         extra: dict[str, Any] | None = None, weights_dir: Path = WEIGHTS_DIR) -> list[Path]:
    """Convert ``model`` to each variant, write the files and the metadata entry."""
    from perflab.zoo.data import representative_lr

    name = f"{family}_x{scale}"
    rep = representative_lr(scale)
    written: list[Path] = []
    for v in variants:
        p = weights_dir / f"{name}_{v}.tflite"
        p.write_bytes(convert_keras(model, v, rep if v in ("int8", "uint8") else None))
        written.append(p)
    entry: dict[str, Any] = {
        "name": name, "family": family, "scale": scale,
        "params": count_params(model) if params is None else params,
        "macs_per_lr_pixel": count_macs_per_lr_pixel(model) if macs_per_lr_pixel is None else macs_per_lr_pixel,
        "training_data": training_data, "description": description, "recipe": recipe,
    }
    if extra:
        entry["extra"] = extra
    old = {}
    meta_path = weights_dir / METADATA_FILE.name
    if meta_path.is_file():
        old = {m["name"]: m for m in json.loads(meta_path.read_text(encoding="utf-8"))["models"]}
    if name in old and "extra" in old[name] and not extra:
        entry["extra"] = old[name]["extra"]
    update_metadata(entry, meta_path)
    return written


def ship_bicubic(scales: tuple[int, ...] = (2, 3, 4), variants: tuple[str, ...] = ("fp32", "fp16", "int8", "uint8"),
                 weights_dir: Path = WEIGHTS_DIR) -> list[Path]:
    from perflab.zoo import bicubic

    out: list[Path] = []
    for s in scales:
        out += ship(bicubic.build_keras(s), "bicubic", s, training_data="none (fixed weights)",
                    description=f"bicubic x{s} (Keys a=-0.5, edge clamp) as CONV_2D 5x5 + DEPTH_TO_SPACE",
                    variants=variants, params=int(bicubic.conv_kernel(s).size), weights_dir=weights_dir)
    return out
