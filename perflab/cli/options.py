"""Option types shared by the commands: ``number_option``, the one way a numeric option is declared."""

from __future__ import annotations

from typing import Any

import typer

from perflab.core.numbers import Number, NumberSpec


def number_option(*names: str, integer: bool = False, min: float | None = None, max: float | None = None,
                  min_open: bool = False, max_open: bool = False, **option: Any) -> Any:
    """``typer.Option(*names, **option)`` whose value must be a finite number (a whole one with
    ``integer``) within the bounds. The first name is the option's (``--timeout-s``)."""
    if not names or not names[0].startswith("--"):
        raise TypeError("number_option needs the option's --name first")
    spec = NumberSpec(integer=integer, min=min, max=max, min_open=min_open, max_open=max_open)
    return typer.Option(*names, parser=Number(names[0], spec), metavar="INTEGER" if integer else "NUMBER", **option)
