"""Progress of a run, per device: cell i/N, phase, elapsed and ETA.

On a terminal a live table (one row per device, exactly 80 columns, emulated phones tagged
EMULATED: :func:`table_lines`); otherwise plain lines, one per phase
change, that a CI log or ``tee`` keeps readable; ``--quiet`` prints only cell results.
The runner calls these from several device threads: every method is thread-safe.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from rich.text import Text

from perflab.store.results import CellRecord


class Phase:
    PREPARE = "prepare"
    IDLE = "idle baseline"
    COOLDOWN = "cooldown"
    TIMING = "timing"
    OUTPUTS = "outputs + quality"
    PROFILE = "per-layer profile"
    RESTORE = "restore"
    WAIT_DEVICE = "waiting for the device to come back"
    DONE = "done"


def fmt_duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


@dataclass
class DeviceState:
    serial: str
    label: str
    total: int
    emulated: bool = False
    index: int = 0
    cell_id: str = ""
    phase: str = "waiting"
    started_s: float = field(default_factory=time.monotonic)
    cell_started_s: float = field(default_factory=time.monotonic)
    done_durations_s: list[float] = field(default_factory=list)
    last: str = ""

    def eta_s(self, now_s: float) -> float | None:
        if not self.done_durations_s:
            return None
        mean = sum(self.done_durations_s) / len(self.done_durations_s)
        remaining = self.total - len(self.done_durations_s)
        return max(0.0, mean * remaining - (now_s - self.cell_started_s))


CellLine = Callable[[CellRecord], str]

#: the live table fits an 80-column terminal whatever the names: (header, width) per column, one
#: space between columns; text longer than its column is cut with "…"
TABLE_COLUMNS = (("device", 24), ("cell", 26), ("phase", 12), ("elapsed", 7), ("ETA", 7))
TABLE_WIDTH = sum(w for _, w in TABLE_COLUMNS) + len(TABLE_COLUMNS) - 1
EMULATED_TAG = "EMULATED"


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def device_cell(st: DeviceState) -> str:
    """The device column: its label, with the EMULATED tag kept whole when the label is cut."""
    width = TABLE_COLUMNS[0][1]
    if not st.emulated:
        return _fit(st.label, width)
    room = width - len(EMULATED_TAG) - 1
    label = st.label if len(st.label) <= room else st.label[: room - 1] + "…"
    return f"{label} {EMULATED_TAG}".ljust(width)


def table_lines(states: list[DeviceState], now_s: float) -> list[str]:
    """The live progress table as fixed-width lines (pure): a header and one line per device, each
    exactly TABLE_WIDTH (80) columns, so the table does not jump as names and phases change."""
    def line(cells: list[str]) -> str:
        return " ".join(_fit(c, w) for c, (_, w) in zip(cells, TABLE_COLUMNS, strict=True))

    out = [line([h for h, _ in TABLE_COLUMNS])]
    for st in states:
        eta = st.eta_s(now_s)
        out.append(line([device_cell(st), f"{st.index}/{st.total} {st.cell_id}", st.phase,
                         fmt_duration(now_s - st.started_s), fmt_duration(eta) if eta is not None else "…"]))
    return out


class Progress:
    """Base: tracks state; subclasses decide how it is shown."""

    def __init__(self, cell_line: CellLine) -> None:
        self._lock = threading.Lock()
        self.devices: dict[str, DeviceState] = {}
        self._cell_line = cell_line

    def plan(self, serial: str, label: str, total: int, *, emulated: bool = False) -> None:
        with self._lock:
            self.devices[serial] = DeviceState(serial, label, total, emulated)
        self._changed(serial)

    def phase(self, serial: str, index: int, cell_id: str, phase: str) -> None:
        with self._lock:
            st = self.devices.get(serial)
            if st is None:
                return
            if index != st.index:
                st.cell_started_s = time.monotonic()
            st.index, st.cell_id, st.phase = index, cell_id, phase
        self._changed(serial)

    def cell_done(self, rec: CellRecord) -> None:
        with self._lock:
            st = self.devices.get(rec.device.serial)
            if st is not None:
                st.done_durations_s.append(time.monotonic() - st.cell_started_s)
                st.last = f"{rec.cell_id}: {rec.status.value}"
        self._emit(self._cell_line(rec))
        self._changed(rec.device.serial)

    def note(self, text: str) -> None:
        self._emit(text)

    def status_line(self, serial: str) -> str:
        st = self.devices[serial]
        now = time.monotonic()
        eta = st.eta_s(now)
        tag = f" {EMULATED_TAG}" if st.emulated else ""
        return (f"[{st.serial}]{tag} {st.index}/{st.total} {st.cell_id} · {st.phase} · "
                f"{fmt_duration(now - st.started_s)} elapsed" + (f", ETA {fmt_duration(eta)}" if eta is not None else ""))

    # -- display hooks -------------------------------------------------------------------
    def _changed(self, serial: str) -> None:
        pass

    def _emit(self, text: str) -> None:
        print(text, flush=True)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class PlainProgress(Progress):
    """One line per phase change: for logs and pipes."""

    def __init__(self, cell_line: CellLine, stream: TextIO | None = None) -> None:
        super().__init__(cell_line)
        self._stream = stream or sys.stdout
        self._last: dict[str, str] = {}

    def _emit(self, text: str) -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)

    def _changed(self, serial: str) -> None:
        with self._lock:
            if serial not in self.devices:
                return
            st = self.devices[serial]
            key = f"{st.index}:{st.phase}"
            if self._last.get(serial) == key or st.index == 0:
                return
            self._last[serial] = key
            line = "  " + self.status_line(serial)
        self._emit(line)


class QuietProgress(Progress):
    """Cell results only."""


class RichProgress(Progress):
    """A live table on a terminal, one row per device, results printed above it."""

    def __init__(self, cell_line: CellLine) -> None:
        super().__init__(cell_line)
        from rich.console import Console
        from rich.live import Live

        self._console = Console()
        self._live = Live(console=self._console, refresh_per_second=4, transient=True,
                          get_renderable=self._render)

    def _render(self) -> Text:
        with self._lock:
            states = list(self.devices.values())
        return Text("\n".join(table_lines(states, time.monotonic())), no_wrap=True, overflow="crop")

    def _emit(self, text: str) -> None:
        self._console.print(text, markup=False, highlight=False)

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._live.stop()


def make_progress(cell_line: CellLine, *, quiet: bool, stream: TextIO | None = None) -> Progress:
    if quiet:
        return QuietProgress(cell_line)
    out = stream or sys.stdout
    if out.isatty():
        return RichProgress(cell_line)
    return PlainProgress(cell_line, out)
