"""Checks of a loaded scenario that need more than the scenario file: the model zoo, the input
decoders, the zoo's training data. ``perflab scenario check`` and ``perflab run`` call
:func:`validate_scenario` after :func:`perflab.scenario.load_scenario` and before anything is
created on disk or on a device.

Every problem is a one-line :class:`~perflab.errors.UserInputError` naming the scenario's
file:line: field (``inputs.images[1].path``); things worth knowing that are not errors (quality
measured on images the zoo was trained on) come back as :class:`ScenarioWarning`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from perflab.errors import SourceLocation, UserInputError
from perflab.quality.clips import clip_missing
from perflab.quality.frames import SKIMAGE_PHOTOS, Frame, InputError, pair_size_problem
from perflab.quality.inputs import (
    InputSource,
    SourceKey,
    input_sources,
    iter_frames,
    iter_source,
)
from perflab.quality.synthetic import SYNTHETIC_PHOTOS
from perflab.scenario.loader import LoadedScenario

MIN_FRAME_SIDE_PX = 32
"""Smallest HR input side (after cropping to a multiple of the scale): PIQE needs 16×16 blocks
and SSIM an 11×11 window inside the cropped border."""


@dataclass(frozen=True)
class ScenarioWarning:
    """Something a scenario does that is allowed but skews what its numbers mean."""

    kind: str  # stable identifier, e.g. "training_images"
    location: SourceLocation
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def validate_scenario(
    loaded: LoadedScenario, *, decode_inputs: bool = True, decode_generated: bool = True
) -> list[ScenarioWarning]:
    """Everything about ``loaded`` that the scenario file alone cannot tell.

    Raises UserInputError (located) for an unknown zoo family or packaged photo and, when
    ``decode_inputs``, for any input image or video that cannot be decoded (every frame the run
    would use is decoded once, one at a time). ``decode_generated=False`` skips decoding
    perflab's own frames (packaged photos, the synthetic clip), which cannot be corrupt.
    Returns the warnings (see :func:`training_image_warnings`).
    """
    check_references(loaded)
    if decode_inputs:
        check_inputs(loaded, decode_generated=decode_generated)
    return [*input_cost_warnings(loaded), *training_image_warnings(loaded)]


COST_WARN_BYTES = 2**30
"""A frame (or the model's input and output at the scenario's geometry) this large, as float32,
is worth a warning: a few of them at once are gigabytes."""
COST_WARN_PIXELS = 10**10
"""HR pixels a cell decodes, upscales and compares beyond which the cost is worth a warning."""
_FLOAT_RGB_BYTES = 3 * 4


def input_cost_warnings(loaded: LoadedScenario) -> list[ScenarioWarning]:
    """What the scenario will cost before it measures anything, when that is a lot: the HR
    pixels every cell goes through (frames × size, for the synthetic clip, whose size is known
    without decoding) and the memory of one frame and of the model's input and output at the
    scenario's geometry (float32 RGB)."""
    s = loaded.scenario
    out: list[ScenarioWarning] = []
    syn = s.inputs.synthetic
    if syn is not None:
        frames = min(syn.frames, s.inputs.max_frames)
        pixels = frames * syn.width * syn.height
        frame_bytes = syn.width * syn.height * _FLOAT_RGB_BYTES
        if pixels > COST_WARN_PIXELS or frame_bytes * 2 > COST_WARN_BYTES:
            out.append(ScenarioWarning("input_cost", loaded.location(("inputs", "synthetic")), (
                f"{frames} frames of {syn.width}×{syn.height} per cell: {pixels / 1e9:.1f} gigapixels to render, "
                f"upscale and compare in every cell, {_size(frame_bytes)} per frame as float32; lower "
                "inputs.max_frames or the clip's size")))
    g = s.geometry
    hr_bytes = g.hr_width * g.hr_height * _FLOAT_RGB_BYTES
    if hr_bytes * 2 > COST_WARN_BYTES:
        out.append(ScenarioWarning("input_cost", loaded.location(("geometry",)), (
            f"LR {g.lr_width}×{g.lr_height} ×{g.scale} is {g.hr_width}×{g.hr_height} HR: {_size(hr_bytes)} per "
            "output as float32 (the timing frame and every output at least this much in memory)")))
    return out


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.0f} MiB"


def check_references(loaded: LoadedScenario) -> None:
    """Zoo families, scikit-image photos and packaged clips named by the scenario exist (a clip
    unpacked at set-up: the message says how to get one that is not)."""
    from perflab.zoo.registry import known_families

    s = loaded.scenario
    for i, src in enumerate(s.inputs.images):
        if src.skimage is not None and src.skimage not in SKIMAGE_PHOTOS:
            raise UserInputError(
                f"unknown scikit-image photo {src.skimage!r} (known: {', '.join(sorted(SKIMAGE_PHOTOS))})",
                loaded.location(("inputs", "images", i, "skimage")),
            )
    for i, vid in enumerate(s.inputs.video):
        why = clip_missing(vid.clip) if vid.clip is not None else None
        if why is not None:
            raise UserInputError(why, loaded.location(("inputs", "video", i, "clip")))
    families = known_families()
    for i, m in enumerate(s.models):
        if m.zoo is not None and m.zoo not in families:
            raise UserInputError(
                f"unknown zoo model {m.zoo!r} (known: {', '.join(sorted(families))})",
                loaded.location(("models", i, "zoo")),
            )


def iter_checked_frames(loaded: LoadedScenario) -> Iterator[Frame]:
    """The scenario's frames exactly as :func:`perflab.quality.inputs.iter_frames` streams them,
    with a bad input raised as a located UserInputError (for a runner's frame source)."""
    frames = iter_frames(loaded.scenario.inputs, loaded.base_dir)
    try:
        for f in frames:
            _check_frame(loaded, f, None)
            yield f
    except InputError as exc:
        raise _located(loaded, exc) from exc
    finally:
        frames.close()


def check_inputs(loaded: LoadedScenario, *, decode_generated: bool = True) -> int:
    """Decode every frame the run will use, once, one at a time (bounded memory); returns how
    many there are. A bad input is a UserInputError naming ``inputs.<kind>[i].path``."""
    inputs = loaded.scenario.inputs
    left = inputs.max_frames
    total = 0
    for src in input_sources(inputs, loaded.base_dir):
        if left <= 0:
            break
        if src.generated and not decode_generated and src.count is not None:
            n = min(src.count, left)
        else:
            n = _decode_source(loaded, src, left)
        left -= n
        total += n
    if total == 0:
        raise UserInputError("the scenario's inputs give no frames", loaded.location(("inputs",)))
    return total


def _decode_source(loaded: LoadedScenario, src: InputSource, limit: int) -> int:
    n = 0
    frames = iter_source(src, limit)
    try:
        for f in frames:
            _check_frame(loaded, f, src.key)
            n += 1
    except InputError as exc:
        raise _located(loaded, exc) from exc
    finally:
        frames.close()
    return n


def _check_frame(loaded: LoadedScenario, f: Frame, key: SourceKey | None) -> None:
    scale = loaded.scenario.geometry.scale
    where = loaded.location(key) if key is not None else loaded.location(("inputs",))
    if f.lr is not None and f.hr is not None:
        problem = pair_size_problem(f.lr.shape, f.hr.shape, scale)
        if problem is not None:
            raise UserInputError(f"frame {f.name}: {problem}", where)
    if f.hr is None:  # LR only: its output is scale× the LR
        assert f.lr is not None
        h, w = (n * scale for n in f.lr.shape[:2])
    else:
        h, w = f.hr.shape[:2]
    ch, cw = h - h % scale, w - w % scale
    if min(ch, cw) < MIN_FRAME_SIDE_PX:
        raise UserInputError(
            f"frame {f.name} is {w}×{h} pixels; quality needs at least {MIN_FRAME_SIDE_PX}×{MIN_FRAME_SIDE_PX} "
            f"after cropping to a multiple of the scale ({scale})",
            where,
        )


def _located(loaded: LoadedScenario, exc: InputError) -> UserInputError:
    key: SourceKey = exc.source if exc.source is not None else ("inputs",)
    return UserInputError(exc.detail, loaded.location(key))


# ---------------------------------------------------------------------------------------------
# evaluation on training images


def zoo_training_photos() -> frozenset[str]:
    """scikit-image photo names the zoo's models were trained on."""
    from perflab.zoo.data import TRAINING_SOURCES

    return frozenset(s.removeprefix("skimage:") for s in TRAINING_SOURCES if s.startswith("skimage:"))


def training_image_warnings(loaded: LoadedScenario) -> list[ScenarioWarning]:
    """Warn where the scenario measures quality of zoo models on images the zoo was trained on
    (their PSNR/SSIM flatter the models): a packaged training photo among ``inputs.images``,
    or the synthetic clip, whose product cards show training photos."""
    s = loaded.scenario
    if not any(m.zoo is not None for m in s.models):
        return []
    trained = zoo_training_photos()
    out: list[ScenarioWarning] = []
    for i, src in enumerate(s.inputs.images):
        if src.skimage is not None and src.skimage in trained:
            out.append(ScenarioWarning(
                "training_images", loaded.location(("inputs", "images", i, "skimage")),
                f"scikit-image photo {src.skimage!r} is in the zoo's training data: zoo models' quality on it "
                "is flattered (use a held-out photo: coffee, chelsea, rocket)",
            ))
    if s.inputs.synthetic is not None:
        shown = [p for p in SYNTHETIC_PHOTOS if p in trained]
        if shown:
            out.append(ScenarioWarning(
                "training_images", loaded.location(("inputs", "synthetic")),
                f"the synthetic clip's product photos include {len(shown)} zoo training image"
                f"{'s' if len(shown) > 1 else ''} ({', '.join(shown)}): zoo models' quality on it is flattered",
            ))
    return out
