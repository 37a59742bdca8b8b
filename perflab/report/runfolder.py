"""Reading a run folder for the report: ``results.json``, ``samples.csv`` and optional ``frames/``.

Layout of a run folder (only ``results.json`` is required)::

    results.json                      perflab.results/1 (perflab.store.results.RunRecord)
    samples.csv                       cell_id,series,iteration,latency_ms — one row per raw inference
    frames/hr/<frame>.png             HR ground truth
    frames/lr/<frame>.png             LR input given to every model
    frames/<cell_id>/<frame>.png      the device's output for that cell

Parsing is pure (text in, values out); only :func:`load_run_folder` touches the file system.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from perflab.errors import StoreError
from perflab.store.results import RunRecord
from perflab.store.runfolder import SAMPLES_HEADER, parse_results_json

SAMPLE_SERIES = ("paced", "back_to_back", "warmup")

# cell_id → series → latency samples in ms, ordered by iteration
Samples = dict[str, dict[str, list[float]]]


@dataclass(frozen=True)
class FrameIndex:
    """PNG files under ``frames/``: HR, LR and per-cell outputs, by frame name (file stem)."""

    hr: dict[str, Path] = field(default_factory=dict)
    lr: dict[str, Path] = field(default_factory=dict)
    outputs: dict[str, dict[str, Path]] = field(default_factory=dict)  # cell_id → frame → path

    @property
    def empty(self) -> bool:
        return not self.hr


@dataclass(frozen=True)
class RunFolder:
    path: Path
    run: RunRecord
    samples: Samples
    samples_present: bool
    frames: FrameIndex


def parse_samples_csv(text: str | bytes, source: str = "samples.csv") -> Samples:
    """Rows ``cell_id,series,iteration,latency_ms`` → samples per cell and series, by iteration.
    A damaged file (not UTF-8, not CSV, wrong columns, values that are not finite numbers) is a
    one-line StoreError naming its line."""
    if isinstance(text, bytes):
        data = text
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise StoreError(f"{source}:{line}: not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    try:
        return _parse_samples_rows(reader, source)
    except csv.Error as e:
        raise StoreError(f"{source}:{reader.line_num}: not CSV: {e}") from None


def _parse_samples_rows(reader: Iterator[list[str]], source: str) -> Samples:
    header = next(reader, None)
    if header is None:
        return {}
    if tuple(h.strip() for h in header) != SAMPLES_HEADER:
        raise StoreError(f"{source}:1: header is {','.join(header)!r}; expected {','.join(SAMPLES_HEADER)!r}")
    rows: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for row in reader:
        lineno = getattr(reader, "line_num", 0)
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 4:
            raise StoreError(f"{source}:{lineno}: expected 4 columns, got {len(row)}")
        cell_id, series, it_text, lat_text = (c.strip() for c in row)
        if series not in SAMPLE_SERIES:
            raise StoreError(f"{source}:{lineno}: series {series!r} is not one of {', '.join(SAMPLE_SERIES)}")
        try:
            iteration = int(it_text)
            latency_ms = float(lat_text)
        except ValueError as e:
            raise StoreError(f"{source}:{lineno}: iteration/latency_ms not numeric: {it_text!r}, {lat_text!r}") from e
        if not math.isfinite(latency_ms) or latency_ms < 0:
            raise StoreError(f"{source}:{lineno}: latency_ms must be a finite number ≥ 0, got {lat_text!r}")
        rows.setdefault(cell_id, {}).setdefault(series, []).append((iteration, latency_ms))
    return {
        cell: {series: [v for _, v in sorted(pairs, key=lambda p: p[0])] for series, pairs in by_series.items()}
        for cell, by_series in rows.items()
    }


def index_frames(frames_dir: Path) -> FrameIndex:
    if not frames_dir.is_dir():
        return FrameIndex()

    def pngs(d: Path) -> dict[str, Path]:
        return {p.stem: p for p in sorted(d.glob("*.png")) if p.is_file()} if d.is_dir() else {}

    outputs = {
        d.name: pngs(d) for d in sorted(frames_dir.iterdir()) if d.is_dir() and d.name not in ("hr", "lr")
    }
    return FrameIndex(hr=pngs(frames_dir / "hr"), lr=pngs(frames_dir / "lr"), outputs=outputs)


def load_run_folder(run_dir: Path) -> RunFolder:
    results = run_dir / "results.json"
    if not results.is_file():
        raise StoreError(f"{run_dir}: no results.json in this folder; is it a perflab run folder?")
    try:
        run = parse_results_json(results.read_bytes(), str(results))
    except OSError as e:
        raise StoreError(f"{results}: cannot read: {e}") from e
    samples_path = run_dir / "samples.csv"
    samples: Samples = {}
    if samples_path.is_file():
        try:
            samples = parse_samples_csv(samples_path.read_bytes(), str(samples_path))
        except OSError as e:
            raise StoreError(f"{samples_path}: cannot read: {e}") from e
    return RunFolder(
        path=run_dir,
        run=run,
        samples=samples,
        samples_present=samples_path.is_file(),
        frames=index_frames(run_dir / "frames"),
    )
