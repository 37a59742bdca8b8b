"""The shipped model zoo: which families/scales/variants exist, their files and metadata.

Pure file/JSON lookups — importing this module never imports TensorFlow. Metadata lives in
``perflab/zoo/weights/zoo.json`` (written by ``perflab.zoo.ship`` when models are built or
trained); file sizes and hashes are always read from the files themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perflab.core.files import sha256_file
from perflab.core.types import ModelArtifact
from perflab.errors import ModelError, UserInputError
from perflab.zoo.convert import VARIANTS

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
METADATA_FILE = WEIGHTS_DIR / "zoo.json"


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of one family × scale (all variants)."""

    name: str  # {family}_x{scale}
    family: str
    scale: int
    params: int
    macs_per_lr_pixel: int  # fully convolutional: MACs per frame = this × LR width × height
    training_data: str
    description: str = ""
    recipe: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def macs_per_frame(self, lr_width: int, lr_height: int) -> int:
        return self.macs_per_lr_pixel * lr_width * lr_height

    def variant_path(self, variant: str, weights_dir: Path = WEIGHTS_DIR) -> Path:
        return weights_dir / f"{self.name}_{variant}.tflite"

    def variant_sizes(self, weights_dir: Path = WEIGHTS_DIR) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for v in VARIANTS:
            p = self.variant_path(v, weights_dir)
            out[v] = p.stat().st_size if p.is_file() else None
        return out

    def to_json(self, lr_width: int, lr_height: int, weights_dir: Path = WEIGHTS_DIR) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "scale": self.scale,
            "params": self.params,
            "lr_size": f"{lr_width}x{lr_height}",
            "macs_per_frame": self.macs_per_frame(lr_width, lr_height),
            "gmacs_per_frame": round(self.macs_per_frame(lr_width, lr_height) / 1e9, 4),
            "size_bytes": self.variant_sizes(weights_dir),
            "training_data": self.training_data,
            "description": self.description,
            **({"extra": self.extra} if self.extra else {}),
        }


def _load_metadata(path: Path = METADATA_FILE) -> dict[str, Any]:
    if not path.is_file():
        return {"models": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"zoo metadata {path} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ModelError(f"zoo metadata {path} has no 'models' list")
    return data


def list_models(path: Path = METADATA_FILE) -> list[ModelInfo]:
    """Every family × scale in the zoo, sorted by family then scale."""
    infos: list[ModelInfo] = []
    for m in _load_metadata(path)["models"]:
        try:
            infos.append(ModelInfo(
                name=str(m["name"]), family=str(m["family"]), scale=int(m["scale"]), params=int(m["params"]),
                macs_per_lr_pixel=int(m["macs_per_lr_pixel"]), training_data=str(m["training_data"]),
                description=str(m.get("description", "")), recipe=str(m.get("recipe", "")),
                extra=dict(m.get("extra", {})),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"zoo metadata entry {m!r} is malformed: {exc}") from exc
    return sorted(infos, key=lambda i: (i.family, i.scale))


def known_families() -> set[str]:
    return {"bicubic"} | {i.family for i in list_models()}


def model_info(family: str, scale: int) -> ModelInfo:
    for i in list_models():
        if i.family == family and i.scale == scale:
            return i
    if family not in known_families():
        raise UserInputError(f"unknown model family {family!r}; known: {', '.join(sorted(known_families()))}")
    scales = sorted(i.scale for i in list_models() if i.family == family)
    raise UserInputError(f"model family {family!r} has no x{scale} model; scales: {scales}")


def get_artifact(family: str, scale: int, variant: str) -> ModelArtifact:
    """The shipped .tflite for family × scale × variant."""
    if variant not in VARIANTS:
        raise UserInputError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    info = model_info(family, scale)
    path = info.variant_path(variant)
    if not path.is_file():
        raise ModelError(f"{info.name} has no {variant} variant shipped (missing {path})")
    return ModelArtifact(name=info.name, family=family, variant=variant, scale=scale, path=path,
                         sha256=sha256_file(path), size_bytes=path.stat().st_size)
