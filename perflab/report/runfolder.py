"""A run folder as the report reads it: the results, the raw samples and the saved frames.

Every path and every file reader is the store's (perflab.store.runfolder.RunFolder and its
readers); this module gathers what they read into one value for the renderers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from perflab.errors import StoreError
from perflab.store.results import RunRecord
from perflab.store.runfolder import HR, LR, RunFolder, Samples, samples_by_cell


@dataclass(frozen=True)
class FrameIndex:
    """PNG files under ``frames/``: HR, LR and per-cell outputs, by frame name (file stem)."""

    hr: dict[str, Path] = field(default_factory=dict)
    lr: dict[str, Path] = field(default_factory=dict)
    outputs: dict[str, dict[str, Path]] = field(default_factory=dict)  # cell dir → frame → path

    @property
    def empty(self) -> bool:
        return not self.hr


@dataclass(frozen=True)
class LoadedRun:
    """What the report renders from: a run folder's contents, read once."""

    path: Path
    run: RunRecord
    samples: Samples
    samples_present: bool
    frames: FrameIndex


def index_frames(frames_dir: Path) -> FrameIndex:
    if not frames_dir.is_dir():
        return FrameIndex()

    def pngs(d: Path) -> dict[str, Path]:
        return {p.stem: p for p in sorted(d.glob("*.png")) if p.is_file()} if d.is_dir() else {}

    outputs = {d.name: pngs(d) for d in sorted(frames_dir.iterdir()) if d.is_dir() and d.name not in (HR, LR)}
    return FrameIndex(hr=pngs(frames_dir / HR), lr=pngs(frames_dir / LR), outputs=outputs)


def load_run_folder(run_dir: Path) -> LoadedRun:
    folder = RunFolder(run_dir)
    if not folder.results_path.is_file():
        raise StoreError(f"{run_dir}: no results.json in this folder; is it a perflab run folder?")
    return LoadedRun(path=run_dir, run=folder.read_results(), samples=samples_by_cell(folder.read_samples()),
                     samples_present=folder.samples_path.is_file(), frames=index_frames(folder.frames_dir))
