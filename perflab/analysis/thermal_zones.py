"""What a thermal zone measures, from its ``thermal_zoneN/type`` name (pure).

One rule for the probe (which writes a device config's zone roles), the cost summary (which
picks the SoC/CPU zone for Δ°C and the skin zone for its own column) and the report's
timelines (one line per named sensor). The first pattern that matches decides, in this order:
battery, skin, gpu, npu, cpu, soc; a name none matches is ``other``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ROLE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("battery", r"batt"),
    ("skin", r"skin|quiet|mtktsap|back|case"),
    ("gpu", r"gpu|g3d|mali"),
    ("npu", r"npu|tpu|apu|hvx|dsp"),
    ("cpu", r"cpu|big|mid|little|cluster|apc"),
    ("soc", r"soc|aoss|pmic|tsens|ap$"),
)


def zone_role_name(zone_type: str) -> str:
    """``battery``/``skin``/``gpu``/``npu``/``cpu``/``soc``/``other`` for a zone type name."""
    low = zone_type.lower()
    for role, pat in ROLE_PATTERNS:
        if re.search(pat, low):
            return role
    return "other"


def soc_zone(names: Iterable[str]) -> str | None:
    """The zone Δ°C is read from: the first CPU zone in the order listed, else the first SoC zone
    (cpu/big/cluster…, then soc/tsens/aoss…); never a skin or battery sensor. None if there is none."""
    listed = list(names)
    for role in ("cpu", "soc"):
        for n in listed:
            if zone_role_name(n) == role:
                return n
    return None


def skin_zone(names: Iterable[str]) -> str | None:
    """The first skin zone (skin/quiet_therm/back/case…) in the order listed, or None."""
    return next((n for n in names if zone_role_name(n) == "skin"), None)
