"""Every number a user types on the command line: finite, in range, one line when not.

``float("nan")`` and ``float("inf")`` parse, compare false with every bound, and then hang a
wait loop or poison a statistic. Every numeric CLI option goes through :class:`Number` (the
option's parser, built by ``perflab.cli.options.number_option("--wait-s", min=0, max=3600,
help=…)``), which refuses NaN, ±inf, text, and values out of range with one :class:`~perflab.errors.UserInputError` line naming the
option (exit 2 from the CLI, no usage box). :func:`number_problem` is the pure rule behind it.

Imports nothing from perflab above it (only perflab.errors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from perflab.errors import SourceLocation, UserInputError

_MAX_TEXT = 40


@dataclass(frozen=True)
class NumberSpec:
    """What a number must be: an integer or not, and its bounds (``None``: unbounded;
    ``*_open``: the bound itself is not allowed)."""

    integer: bool = False
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a finite number"
        lo = None if self.min is None else f"{'>' if self.min_open else '>='} {self.min:g}"
        hi = None if self.max is None else f"{'<' if self.max_open else '<='} {self.max:g}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        return f"{kind} {bounds}" if bounds else kind


def _int_or_float(raw: str) -> int | float:
    try:
        return int(raw, 10)
    except ValueError:
        return float(raw)  # "1e3": a whole number written as a float; checked below


def parse_number(text: str | float, spec: NumberSpec) -> float | int:
    """``text`` as the number ``spec`` asks for; ValueError with the reason in words when it is
    not one (pure: no I/O)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value: float | int = text
    else:
        raw = str(text).strip()
        try:
            value = _int_or_float(raw) if spec.integer else float(raw)
        except ValueError:
            shown = raw if len(raw) <= _MAX_TEXT else raw[:_MAX_TEXT] + "…"
            raise ValueError(f"{shown!r} is not {spec.describe()}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not {spec.describe()}")
    if spec.integer and isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value:g} is not {spec.describe()}")
        value = int(value)
    if spec.min is not None and (value < spec.min or (spec.min_open and value == spec.min)):
        raise ValueError(f"{value:g} is out of range: must be {spec.describe()}")
    if spec.max is not None and (value > spec.max or (spec.max_open and value == spec.max)):
        raise ValueError(f"{value:g} is out of range: must be {spec.describe()}")
    return value


def number_problem(text: str | float, spec: NumberSpec) -> str | None:
    """None when ``text`` is a number ``spec`` allows, else why not (pure)."""
    try:
        parse_number(text, spec)
    except ValueError as exc:
        return str(exc)
    return None


class Number:
    """The parser of one numeric CLI option (``typer.Option(parser=Number("--timeout-s", …))``;
    perflab.cli.options.number_option builds both): finite, in range; a bad value raises UserInputError
    (one line naming the option: exit 2, no usage box)."""

    def __init__(self, option: str, spec: NumberSpec) -> None:
        self.option = option
        self.spec = spec

    def __call__(self, value: Any) -> float | int:
        try:
            return parse_number(value, self.spec)
        except ValueError as exc:
            raise UserInputError(str(exc), SourceLocation("command line", None, self.option)) from None

