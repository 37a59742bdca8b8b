"""A run's input frames: streamed per pass (never all in memory), the timing frame, and the
HR/LR frames kept in the run folder."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import numpy as np

from perflab.errors import MeasurementError, UserInputError
from perflab.lab.video import StreamKeeper
from perflab.quality.frames import (
    DEFAULT_DOWNSCALE,
    Downscale,
    Frame,
    crop_to_multiple,
    hr_to_lr,
    pair_size_problem,
    quantize_8bit,
    resize_bicubic,
)
from perflab.scenario.schema import Geometry, Outputs
from perflab.store.results import KeptVideoRecord
from perflab.store.runfolder import HR, LR, RunFolder

SAVED_FRAMES = Outputs().png_frames  # frames per cell kept as PNG by default (scenario outputs.png_frames)
CHUNK_MAX_FRAMES = 8  # frames per run_outputs call at most
CHUNK_BUDGET_BYTES = 512 * 2**20
"""A chunk of frames handed to the device at once holds at most this much: its LR frames and
the outputs they come back as (float32). An 8192×8192 HR clip goes one frame at a time."""


def frame_chunks(frames: Iterator[tuple[int, Frame, np.ndarray]], scale: int, *,
                 max_frames: int = CHUNK_MAX_FRAMES,
                 budget_bytes: int = CHUNK_BUDGET_BYTES) -> Iterator[list[tuple[int, Frame, np.ndarray]]]:
    """``frames`` (as :meth:`Inputs.frames` streams them) in chunks of at most ``max_frames``
    whose LR frames and their outputs (``scale``² as large) fit ``budget_bytes``; a frame
    larger than the budget alone is a chunk of one. Nothing is read ahead of the chunk."""
    chunk: list[tuple[int, Frame, np.ndarray]] = []
    used = 0
    for item in frames:
        cost = item[2].nbytes * (1 + scale * scale)
        if chunk and (len(chunk) >= max_frames or used + cost > budget_bytes):
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += cost
    if chunk:
        yield chunk


class Inputs:
    """The scenario's frames, asked for again on every pass over them."""

    def __init__(self, frame_source: Callable[[], Iterator[Frame]], geometry: Geometry,
                 outputs: Outputs | None = None, fps: float | None = None, *,
                 downscale: Downscale = DEFAULT_DOWNSCALE) -> None:
        self.frame_source = frame_source
        self.geometry = geometry
        self.outputs = outputs or Outputs()
        self.fps = fps  # the kept videos' frame rate (the scenario's pacing fps; 30 when unset)
        self.downscale = downscale
        self.timing_frame: np.ndarray | None = None
        self.reference_video: KeptVideoRecord | None = None  # the HR frames kept by the prepass

    def _timing_frame(self, first: Frame) -> np.ndarray:
        """A real LR frame at the scenario's geometry: the first input, resized to the HR size,
        then degraded by the scenario's HR→LR kernel (an LR-only first input: resized to the
        LR size)."""
        g = self.geometry
        if first.hr is None:
            assert first.lr is not None
            lr = first.lr
            if lr.shape[:2] != (g.lr_height, g.lr_width):
                lr = quantize_8bit(np.clip(resize_bicubic(lr, g.lr_width, g.lr_height), 0.0, 1.0))
            return lr
        hr = first.hr
        if hr.shape[:2] != (g.hr_height, g.hr_width):
            hr = np.clip(resize_bicubic(hr, g.hr_width, g.hr_height), 0.0, 1.0)
        return hr_to_lr(hr, g.scale, self.downscale)

    def lr_from(self, f: Frame) -> str:
        """How a frame's LR was had, as results record it (FrameQuality.lr_from): ``downscale:<kernel>``
        (perflab made it from the HR), ``pair`` (given with its HR) or ``lr_only`` (given, no reference)."""
        if f.hr is None:
            return "lr_only"
        return "pair" if f.lr is not None else f"downscale:{self.downscale}"

    def frames(self) -> Generator[tuple[int, Frame, np.ndarray], None, None]:
        """(index, frame, its LR frame), streamed. An HR-only frame comes cropped to a multiple of the
        scale, its LR made with the scenario's kernel; a pair's or an LR-only frame's LR is used as given."""
        scale = self.geometry.scale
        for i, f in enumerate(self.frame_source()):
            if f.lr is not None:
                if f.hr is not None:
                    problem = pair_size_problem(f.lr.shape, f.hr.shape, scale)
                    if problem is not None:
                        raise MeasurementError(f"frame {f.name}: {problem}")
                yield i, f, f.lr
                continue
            assert f.hr is not None
            hr = crop_to_multiple(f.hr, scale)
            yield i, Frame(f.name, hr, f.sequence), hr_to_lr(hr, scale, self.downscale)

    def prepass(self, folder: RunFolder, scenario_file: Path) -> None:
        """Before any cell: the timing frame, the first HR/LR frames saved as PNG
        (``outputs.png_frames``) and the first HR frames kept as video (``outputs.video_frames``,
        :attr:`reference_video`). Only those are read (the inputs were decoded by the scenario's
        validation; a long clip is not rendered once more just to be counted)."""
        n_frames = 0
        keep = max(1, self.outputs.png_frames, self.outputs.video_frames)
        video = StreamKeeper(folder, HR, max_frames=self.outputs.video_frames, fps=self.fps)
        frames = self.frames()
        try:
            for i, f, lr in frames:
                if i == 0:
                    self.timing_frame = self._timing_frame(f)
                if i < self.outputs.png_frames:
                    if f.hr is not None:  # an LR-only input has no reference to keep
                        folder.save_frame(HR, f.name, f.hr)
                    folder.save_frame(LR, f.name, lr)
                if f.hr is not None:
                    video.add(f.name, f.hr, f.sequence)
                n_frames += 1
                if n_frames >= keep:
                    break
        except MeasurementError as exc:
            video.abort()
            raise UserInputError(f"{scenario_file}: inputs: {exc}") from exc
        except BaseException:
            video.abort()
            raise
        finally:
            frames.close()
        if n_frames == 0:
            video.abort()
            raise UserInputError(f"{scenario_file}: inputs: the scenario's inputs gave no frames")
        self.reference_video = video.finish()
