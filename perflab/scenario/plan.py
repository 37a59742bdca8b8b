"""Expand a scenario into cells: model × variant × delegate (per device at run time)."""

from __future__ import annotations

from dataclasses import dataclass

from perflab.errors import UserInputError
from perflab.scenario.schema import Delegate, Scenario, Variant


@dataclass(frozen=True)
class CellSpec:
    """One thing to measure on one device. ``model_source`` is a zoo family or a file path."""

    model_name: str
    variant: Variant | None  # None: a user's .tflite, used as it is
    delegate: Delegate
    baseline: bool
    zoo: str | None
    path: str | None
    scale: int

    @property
    def cell_id(self) -> str:
        return f"{self.model_name}.{self.variant_label}.{self.delegate.value}"

    @property
    def variant_label(self) -> str:
        return self.variant.value if self.variant is not None else "file"


def plan_cells(scenario: Scenario) -> list[CellSpec]:
    """Baseline first for every delegate, then each model variant; order is the run order."""
    scale = scenario.geometry.scale
    cells: list[CellSpec] = []
    for delegate in scenario.delegates:
        cells.append(
            CellSpec(
                model_name=f"bicubic_x{scale}", variant=Variant.FP32, delegate=delegate,
                baseline=True, zoo="bicubic", path=None, scale=scale,
            )
        )
        for m in scenario.models:
            variants: list[Variant | None] = list(m.variants) if m.zoo else [None]
            for variant in variants:
                cells.append(
                    CellSpec(
                        model_name=m.display_name if m.path else f"{m.display_name}_x{scale}",
                        variant=variant, delegate=delegate, baseline=False,
                        zoo=m.zoo, path=m.path, scale=m.scale or scale,
                    )
                )
    seen: set[str] = set()
    for c in cells:
        if c.cell_id in seen:
            raise UserInputError(f"two models give the same cell {c.cell_id}; give one of them a different 'name'")
        seen.add(c.cell_id)
    return cells
