"""Expand a scenario into cells: model × variant × delegate (per device at run time)."""

from __future__ import annotations

from dataclasses import dataclass

from perflab.errors import UserInputError
from perflab.scenario.schema import Delegate, Scenario, Variant


class DuplicateCellError(UserInputError):
    """Two models of a scenario expand to the same cell; ``model_index`` is the second one."""

    def __init__(self, message: str, model_index: int) -> None:
        self.model_index = model_index
        super().__init__(message)


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
    model_of: list[int | None] = []  # index in scenario.models of each cell (None: the baseline)
    for delegate in scenario.delegates:
        cells.append(
            CellSpec(
                model_name=f"bicubic_x{scale}", variant=Variant.FP32, delegate=delegate,
                baseline=True, zoo="bicubic", path=None, scale=scale,
            )
        )
        model_of.append(None)
        for index, m in enumerate(scenario.models):
            variants: list[Variant | None] = list(m.variants) if m.zoo else [None]
            for variant in variants:
                cells.append(
                    CellSpec(
                        model_name=m.display_name if m.path else f"{m.display_name}_x{scale}",
                        variant=variant, delegate=delegate, baseline=False,
                        zoo=m.zoo, path=m.path, scale=m.scale or scale,
                    )
                )
                model_of.append(index)
    seen: set[str] = set()
    for c, model_index in zip(cells, model_of, strict=True):
        if c.cell_id in seen:
            message = f"two models give the same cell {c.cell_id}; give one of them a different 'name'"
            if model_index is None:
                raise UserInputError(message)
            raise DuplicateCellError(message, model_index)
        seen.add(c.cell_id)
    return cells
