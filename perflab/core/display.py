"""How numbers, units and missing values are written for a person: one formatter for the run
report, the matrix, compare, the dashboard, the trace summaries and the CLI tables.

Rules kept here:
- A value that could not be measured is written one way, :data:`MISSING` ("—"), never a blank,
  a 0 or a "-"; where the view has room the reason follows (:func:`fmt_missing`).
- A negative number gets a real minus sign (U+2212) where a sign is the point (deltas).
- Units follow the number after a space (``12.3 ms``); sizes are binary (1 KB = 1024 bytes).

Pure functions on numbers; imports nothing from perflab but the unit conversions.
"""

from __future__ import annotations

import math

from perflab.core.units import BYTES_PER_KIB, bytes_to_kib, bytes_to_mib

MISSING = "—"
"""A value that could not be measured or was not recorded."""
MINUS = "−"


def fmt_missing(reason: str | None = None) -> str:
    """A missing value in words: "—", with its reason in parentheses where there is room."""
    return f"{MISSING} ({reason})" if reason else MISSING


def fmt_num(v: float | None, spec: str = ".4g", unit: str = "") -> str:
    """``v`` written with the format ``spec`` and its unit after a space; "—" when missing
    (None, NaN or infinite)."""
    if v is None or not math.isfinite(v):
        return MISSING
    return _with_unit(format(v, spec), unit)


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


def fmt_ms(v: float | None, unit: str = "") -> str:
    """A latency in ms with the digits that matter at its size: 123, 12.3, 1.23 (the unit only
    when asked: ``unit="ms"``)."""
    if v is None or not math.isfinite(v):
        return MISSING
    a = abs(v)
    if a >= 100:
        return _with_unit(f"{v:.0f}", unit)
    if a >= 10:
        return _with_unit(f"{v:.1f}", unit)
    return _with_unit(f"{v:.2f}", unit)


def fmt_fine_ms(v: float | None, unit: str = "") -> str:
    """A short time in ms to 3 decimals; a tiny value keeps two significant digits instead of
    reading 0.000 (per-layer and trace times; the unit only when asked)."""
    if v is None or not math.isfinite(v):
        return MISSING
    return _with_unit(f"{v:.3f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}", unit)


def fmt_size(size_bytes: float | None) -> str:
    """A file size: "1.23 MB" from 1 MiB up, else "12.3 KB" / "123 KB"."""
    if size_bytes is None:
        return MISSING
    if size_bytes >= BYTES_PER_KIB * BYTES_PER_KIB:
        return f"{bytes_to_mib(size_bytes):.2f} MB"
    kb = bytes_to_kib(size_bytes)
    return f"{kb:.1f} KB" if kb < 100 else f"{kb:.0f} KB"


def fmt_signed(v: float | None, digits: int, unit: str = "") -> str:
    """A difference with its sign: "+1.20", "−0.50", "±0.00" (the unit glued on: "+1.2%")."""
    if v is None or not math.isfinite(v):
        return MISSING
    if round(v, digits) == 0:  # zero as shown is no change: never "+0" or "−0"
        return f"±{0:.{digits}f}{unit}"
    return f"{v:+.{digits}f}{unit}".replace("-", MINUS)


def fmt_pct(v: float | None, digits: int = 1, *, signed: bool = False) -> str:
    """A percentage: "12.5%", or with ``signed`` a change "+12.5%"; "—" when missing."""
    if v is None or not math.isfinite(v):
        return MISSING
    return f"{v:+.{digits}f}%" if signed else f"{v:.{digits}f}%"


def fmt_ratio(r: float) -> str:
    """A ratio in two significant digits without exponent below 10, whole numbers above: 0.21, 1.4, 30, 140."""
    return f"{r:.0f}" if r >= 10 else f"{r:.2g}"


def fmt_mai(score: float) -> str:
    """The MAI 2021 score as log10 with two decimals: 2.12e18 → "18.33" (+0.30 = twice the score)."""
    if not score > 0 or not math.isfinite(score):
        return f"{score:g}"
    return f"{math.log10(score):.2f}"
