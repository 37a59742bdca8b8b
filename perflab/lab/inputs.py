"""Load a scenario's HR ground-truth frames (bounded by inputs.max_frames)."""

from __future__ import annotations

from perflab.errors import MeasurementError
from perflab.quality.frames import Frame, crop_to_multiple, image_files, load_image_file, load_skimage_photo
from perflab.scenario.loader import LoadedScenario


def load_frames(loaded: LoadedScenario) -> list[Frame]:
    s = loaded.scenario
    scale = s.geometry.scale
    frames: list[Frame] = []
    for src in s.inputs.images:
        if src.skimage is not None:
            frames.append(Frame(src.skimage, crop_to_multiple(load_skimage_photo(src.skimage), scale)))
        elif src.path is not None:
            for p in image_files(loaded.resolve(src.path)):
                frames.append(Frame(p.stem, crop_to_multiple(load_image_file(p), scale)))
        if len(frames) >= s.inputs.max_frames:
            break
    if not frames:
        raise MeasurementError("the scenario's inputs gave no frames")
    return frames[: s.inputs.max_frames]
