"""Temporal stability (perflab.quality.temporal): it sees injected flicker, sees nothing on a static
clip, and does not count the reference's own motion; still images have no temporal figure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from support.records import cell

from perflab.errors import MeasurementError
from perflab.quality.frames import Frame, hr_to_lr, load_skimage_photo, resize_bicubic
from perflab.quality.inputs import iter_frames
from perflab.quality.temporal import (
    FIRST_FRAME,
    NO_SEQUENCE,
    TemporalTracker,
    block_motion,
    luma_y,
    temporal_err_y,
)
from perflab.rules.derive import finalize_cells
from perflab.rules.quality import quality_record
from perflab.scenario.schema import Inputs as InputsSpec
from perflab.store.results import FrameQuality

SCALE = 2
H, W = 96, 128
_PHOTO = load_skimage_photo("astronaut")  # 512×512, real camera content


def pan(n: int, step: tuple[int, int]) -> list[np.ndarray]:
    """n frames of a window moving over the photograph by ``step`` (rows, cols) pixels per frame."""
    return [_PHOTO[100 + step[0] * i: 100 + step[0] * i + H, 100 + step[1] * i: 100 + step[1] * i + W]
            for i in range(n)]


def bicubic(hr: np.ndarray) -> np.ndarray:
    """A stable upscaler: the documented HR→LR, then bicubic back up, clipped."""
    lr = hr_to_lr(hr, SCALE)
    out: np.ndarray = np.clip(resize_bicubic(lr, hr.shape[1], hr.shape[0]), 0.0, 1.0)
    return out


def scores(hrs: list[np.ndarray], outs: list[np.ndarray], sequence: str | None = "clip") -> list[float | None]:
    t = TemporalTracker(border_px=SCALE)
    return [t.step(sequence, h, o).value for h, o in zip(hrs, outs, strict=True)]


def values(xs: list[float | None]) -> np.ndarray:
    assert xs[0] is None  # the first frame of a sequence has nothing to compare with
    assert all(x is not None for x in xs[1:])
    return np.asarray(xs[1:], dtype=float)


FLICKER: dict[str, Callable[[int, np.ndarray], np.ndarray]] = {
    # +3% brightness on every odd frame: 0.03 × 219 ≈ 6.6 Y levels of flicker
    "brightness": lambda i, o: np.clip(o + (0.03 if i % 2 else 0.0), 0.0, 1.0),
    # fresh noise on every odd frame (σ = 1% per channel, ≈ 1.5 Y levels)
    "noise": lambda i, o: np.clip(o + (np.random.default_rng(i).normal(0, 0.01, o.shape) if i % 2 else 0.0),
                                  0.0, 1.0).astype(np.float32),
}


def test_a_static_clip_scores_zero() -> None:
    hrs = pan(6, (0, 0))
    assert values(scores(hrs, [bicubic(h) for h in hrs])).tolist() == [0.0] * 5


@pytest.mark.parametrize("kind", sorted(FLICKER))
def test_injected_flicker_is_seen_on_a_moving_clip(kind: str) -> None:
    hrs = pan(7, (2, 4))
    clean = [bicubic(h) for h in hrs]
    flick = [FLICKER[kind](i, o) for i, o in enumerate(clean)]
    c, f = values(scores(hrs, clean)), values(scores(hrs, flick))
    assert f.min() > 3.0 * c.max(), (kind, c, f)
    if kind == "brightness":  # every frame pair changes by the injected 6.6 levels (less what clipping ate)
        assert f.min() > 5.5 and f.max() < 7.5, f


def test_the_references_own_motion_is_not_counted() -> None:
    for step in ((2, 4), (6, -10), (-4, 0)):  # multiples of the scale: a stable upscaler's errors move along
        hrs = pan(5, step)
        assert values(scores(hrs, hrs)).tolist() == [0.0] * 4  # a perfect output, whatever moves
        outs = [bicubic(h) for h in hrs]
        moving = values(scores(hrs, outs))
        # the same error images without following the motion: what a plain frame difference would count
        errs = [luma_y(o) - luma_y(h) for o, h in zip(outs, hrs, strict=True)]
        plain = np.asarray([np.abs(errs[i] - errs[i - 1])[SCALE:-SCALE, SCALE:-SCALE].mean() for i in range(1, 5)])
        assert moving.max() < 0.25 * plain.min(), (step, moving, plain)
        m = block_motion(luma_y(hrs[0]), luma_y(hrs[1]))
        right = (m.dy == step[0]) & (m.dx == step[1])
        assert right.mean() >= 0.75, (step, m.dy, m.dx)  # blocks of flat sky may go astray


def test_temporal_err_y_equals_the_tracker_and_follows_the_given_motion() -> None:
    hrs = pan(2, (2, 4))
    outs = [FLICKER["brightness"](i, bicubic(h)) for i, h in enumerate(hrs)]
    v = temporal_err_y(outs[0], outs[1], hrs[0], hrs[1], SCALE)
    assert v == scores(hrs, outs)[1]
    still = block_motion(luma_y(hrs[0]), luma_y(hrs[0]))
    assert not still.dy.any() and not still.dx.any()
    assert temporal_err_y(outs[0], outs[1], hrs[0], hrs[1], SCALE, motion=still) > v  # motion not followed


def test_still_images_have_no_temporal_figure() -> None:
    hrs = pan(3, (0, 0))
    t = TemporalTracker(border_px=SCALE)
    got = [t.step(None, h, bicubic(h)) for h in hrs]
    assert [(g.value, g.missing) for g in got] == [(None, NO_SEQUENCE)] * 3
    rec = quality_record([FrameQuality(frame=f"p{i}", psnr_y_db=30.0, missing={"temporal_err_y": g.missing or ""})
                          for i, g in enumerate(got)], "test")
    assert rec.temporal_err_y is None and rec.missing["temporal_err_y"] == "single frames, no sequence"


def test_each_sequence_starts_afresh_and_a_size_change_is_an_error() -> None:
    a, b = pan(3, (2, 4)), pan(2, (0, 2))
    t = TemporalTracker(border_px=SCALE)
    got = [t.step(s, h, h) for s, h in [("a", a[0]), ("a", a[1]), ("b", b[0]), ("b", b[1]), (None, a[2]),
                                        ("a", a[2])]]
    assert [g.missing for g in got] == [FIRST_FRAME, None, FIRST_FRAME, None, NO_SEQUENCE, FIRST_FRAME]
    with pytest.raises(MeasurementError, match="changes frame size"):
        t.step("a", a[0][:64, :64], a[0][:64, :64])
    with pytest.raises(MeasurementError, match="float RGB"):
        t.step("a", (a[0] * 255).astype(np.uint8), a[0])


def test_clips_are_sequences_and_photos_are_not(tmp_path: Path) -> None:
    spec = InputsSpec.model_validate({"images": [{"skimage": "coffee"}], "synthetic": {"frames": 3, "width": 64,
                                                                                        "height": 64}})
    frames: list[Frame] = list(iter_frames(spec, tmp_path))
    assert [f.sequence for f in frames] == [None, "1:synthetic-s0", "1:synthetic-s0", "1:synthetic-s0"]


def test_pooled_and_versus_bicubic() -> None:
    def per(vals: list[float | None]) -> list[FrameQuality]:
        return [FrameQuality(frame=f"f{i}", psnr_y_db=30.0, ssim_y=0.9, temporal_err_y=v,
                             missing={} if v is not None else {"temporal_err_y": FIRST_FRAME})
                for i, v in enumerate(vals)]

    sr = quality_record(per([None, 1.0, 3.0]), "test")
    base = quality_record(per([None, 0.5, 0.5]), "test")
    assert (sr.temporal_err_y, sr.temporal_err_y_max) == (2.0, 3.0)
    # LR-only frames (held against their input) do not mix into a cell whose other frames have an HR
    lr_only = FrameQuality(frame="lr-1", reference=False, temporal_err_y=50.0)
    assert quality_record([*per([None, 1.0, 3.0]), lr_only], "test").temporal_err_y == 2.0
    assert quality_record([lr_only], "test").temporal_err_y == 50.0
    _, s = finalize_cells([cell("bicubic.fp32.cpu", quality=base), cell("espcn.fp32.cpu", quality=sr)], fps=None)
    assert s.deltas is not None and s.deltas.temporal_err_y == pytest.approx(1.5)
    assert [f.d_temporal_err_y for f in s.quality.per_frame] == [None, 0.5, 2.5]
    one = quality_record(per([None]), "test")
    assert one.temporal_err_y is None and one.missing["temporal_err_y"] == FIRST_FRAME


def test_the_cell_scores_each_frame_against_the_previous_one_of_its_sequence() -> None:
    from perflab.lab.cell import frame_quality

    hrs = pan(3, (2, 4))
    frames = [Frame("photo", hrs[0]), *(Frame(f"clip-{i}", h, "0:clip.mp4") for i, h in enumerate(hrs))]
    outs = [bicubic(frames[0].hr), *(FLICKER["brightness"](i, bicubic(h)) for i, h in enumerate(hrs))]
    tracker = TemporalTracker(border_px=SCALE)
    per = [frame_quality(f, o, SCALE, tracker) for f, o in zip(frames, outs, strict=True)]
    assert [p.missing.get("temporal_err_y") for p in per] == [NO_SEQUENCE, FIRST_FRAME, None, None]
    assert all(p.temporal_err_y is not None and p.temporal_err_y > 5.5 for p in per[2:])
    rec = quality_record(per, "test")
    assert rec.temporal_err_y is not None and "temporal_err_y" not in rec.missing


def test_lr_only_footage_is_held_against_its_own_input() -> None:
    """No HR: the output's change is held against the LR input's, upscaled — flicker the model adds is seen, the
    input's motion and a model that only sharpens steadily are not."""
    from perflab.lab.cell import frame_quality

    hrs = pan(5, (2, 4))
    lrs = [hr_to_lr(h, SCALE) for h in hrs]
    clip = [Frame(f"lr-{i}", None, "0:lr.mp4", lr=lr) for i, lr in enumerate(lrs)]

    def run(outs: list[np.ndarray]) -> list[FrameQuality]:
        tracker = TemporalTracker(border_px=SCALE)
        return [frame_quality(f, o, SCALE, tracker, lr_from="lr_only") for f, o in zip(clip, outs, strict=True)]

    up = [bicubic(h) for h in hrs]  # bicubic of the same LR: what the input itself shows
    steady, flicker, sharp = run(up), run([FLICKER["brightness"](i, o) for i, o in enumerate(up)]), run(hrs)
    assert [f.missing.get("temporal_err_y") for f in steady] == [FIRST_FRAME] + [None] * 4
    assert all(not f.reference and f.psnr_y_db is None for f in steady)
    assert [f.temporal_err_y for f in steady[1:]] == [0.0] * 4
    assert min(f.temporal_err_y or 0.0 for f in flicker[1:]) > 5.5
    assert max(f.temporal_err_y or 0.0 for f in sharp[1:]) < 1.0  # sharper than the input, moving with it
    rec = quality_record(flicker, "test")
    assert rec.temporal_err_y is not None and rec.temporal_err_y > 5.5 and "temporal_err_y" not in rec.missing
