"""Resolve a cell's model to a concrete .tflite artifact (zoo or user file)."""

from __future__ import annotations

from perflab.core.files import sha256_file
from perflab.core.types import ModelArtifact
from perflab.errors import ModelError
from perflab.scenario.loader import LoadedScenario
from perflab.scenario.plan import CellSpec

__all__ = ["resolve_artifact", "sha256_file"]


def resolve_artifact(cell: CellSpec, loaded: LoadedScenario) -> ModelArtifact:
    if cell.path is not None:
        p = loaded.resolve(cell.path)
        if not p.is_file():
            raise ModelError(f"model file not found: {p}")
        return ModelArtifact(
            name=cell.model_name, family="user", variant="file", scale=cell.scale, path=p,
            sha256=sha256_file(p), size_bytes=p.stat().st_size,
        )
    from perflab.zoo.registry import get_artifact

    assert cell.zoo is not None and cell.variant is not None
    return get_artifact(cell.zoo, cell.scale, cell.variant.value)
