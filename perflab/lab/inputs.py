"""A run's input frames: streamed per pass (never all in memory), the timing frame, and the
HR/LR frames kept in the run folder."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import numpy as np

from perflab.errors import MeasurementError, UserInputError
from perflab.quality.frames import Frame, crop_to_multiple, hr_to_lr, resize_bicubic
from perflab.scenario.schema import Geometry
from perflab.store.runfolder import HR, LR, RunFolder

SAVED_FRAMES = 4  # frames per cell kept as PNG for visual comparison


class Inputs:
    """The scenario's frames, asked for again on every pass over them."""

    def __init__(self, frame_source: Callable[[], Iterator[Frame]], geometry: Geometry) -> None:
        self.frame_source = frame_source
        self.geometry = geometry
        self.timing_frame: np.ndarray | None = None

    def _timing_frame(self, first: Frame) -> np.ndarray:
        """A real LR frame at the scenario's geometry: the first input, resized to the HR size,
        then degraded by the documented HR→LR kernel."""
        g = self.geometry
        hr = first.hr
        if hr.shape[:2] != (g.hr_height, g.hr_width):
            hr = np.clip(resize_bicubic(hr, g.hr_width, g.hr_height), 0.0, 1.0)
        return hr_to_lr(hr, g.scale)

    def frames(self) -> Generator[tuple[int, Frame, np.ndarray], None, None]:
        """(index, HR frame cropped to a multiple of the scale, its LR frame), streamed."""
        scale = self.geometry.scale
        for i, f in enumerate(self.frame_source()):
            hr = crop_to_multiple(f.hr, scale)
            yield i, Frame(f.name, hr), hr_to_lr(hr, scale)

    def prepass(self, folder: RunFolder, scenario_file: Path) -> None:
        """One pass over the inputs before any cell: the timing frame, and HR/LR frames saved."""
        n_frames = 0
        try:
            for i, f, lr in self.frames():
                if i == 0:
                    self.timing_frame = self._timing_frame(f)
                if i < SAVED_FRAMES:
                    folder.save_frame(HR, f.name, f.hr)
                    folder.save_frame(LR, f.name, lr)
                n_frames += 1
        except MeasurementError as exc:
            raise UserInputError(f"{scenario_file}: inputs: {exc}") from exc
        if n_frames == 0:
            raise UserInputError(f"{scenario_file}: inputs: the scenario's inputs gave no frames")
