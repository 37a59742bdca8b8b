"""A cell is a list of passes (cooldown, timing, telemetry, sustained, outputs + quality,
per-layer); each pass returns one frozen :class:`Part`, and :func:`merge` is the one place they
are combined into what the cell's record is built from.

A part holds the cell-record fields it measured (``fields``: ``series``, ``quality``,
``layers``…), the telemetry fields (``telemetry``), the reason of every telemetry number it
could not measure (``missing``), its warnings, and the telemetry keys whose earlier missing
reasons its own values answer (``settles``: a meter's power settles the battery's "no
current").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from perflab.store.results import WarningRecord


def _frozen(m: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(m))


@dataclass(frozen=True)
class Part:
    """What one pass of a cell measured."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    telemetry: Mapping[str, Any] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[WarningRecord, ...] = ()
    settles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:  # a pass's dicts are copied: nobody edits a part after it is made
        object.__setattr__(self, "fields", _frozen(self.fields))
        object.__setattr__(self, "telemetry", _frozen(self.telemetry))
        object.__setattr__(self, "missing", _frozen(self.missing))
        object.__setattr__(self, "warnings", tuple(self.warnings))


def merge(parts: Iterable[Part]) -> Part:
    """Parts in pass order → one part. A later value replaces an earlier one; the first reason a
    number is missing is kept, unless a later part settles it; warnings keep their order."""
    fields: dict[str, Any] = {}
    telemetry: dict[str, Any] = {}
    missing: dict[str, str] = {}
    warnings: list[WarningRecord] = []
    for p in parts:
        for k in p.settles:
            missing.pop(k, None)
        fields.update(p.fields)
        telemetry.update(p.telemetry)
        for k, v in p.missing.items():
            missing.setdefault(k, v)
        warnings.extend(p.warnings)
    return Part(fields=fields, telemetry=telemetry, missing=missing, warnings=tuple(warnings))
