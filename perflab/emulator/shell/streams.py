"""Standard streams of an emulated command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Writer = Callable[[bytes], None]


@dataclass
class IO:
    out: Writer
    err: Writer
    stdin: Callable[[], bytes]
