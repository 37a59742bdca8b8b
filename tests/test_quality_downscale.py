"""HR→LR kernels (perflab.quality.frames.downscale): each equal to a reference implementation,
and the scenario's choice reaches the LR frames and results; LR-only inputs and LR/HR pairs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from perflab.errors import UserInputError
from perflab.lab.cell import frame_quality
from perflab.lab.inputs import Inputs
from perflab.lab.validate import iter_checked_frames, validate_scenario
from perflab.quality.frames import DOWNSCALE_KERNELS, Frame, downscale, hr_to_lr, load_skimage_photo
from perflab.quality.inputs import iter_video_frames, write_video
from perflab.rules.quality import NO_REFERENCE, quality_record
from perflab.scenario import load_scenario

PERFLAB = str(Path(sys.executable).with_name("perflab"))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_skimage_photo("coffee")[100:164, 200:296]  # 64×96, real texture and edges


def _cubic(x: np.ndarray) -> np.ndarray:  # Keys, a = -0.5
    a, x = -0.5, np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _lanczos3(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)


def _reference_reduce(img: np.ndarray, factor: int, kernel: Callable[[np.ndarray], np.ndarray],
                      radius: float) -> np.ndarray:
    """Antialiased separable reduction written from the definition (float64): each output pixel's
    centre in input coordinates, the kernel stretched by the factor, weights cut at the border
    and renormalised; rows first, then columns."""
    def along(a: np.ndarray, axis: int) -> np.ndarray:
        a = np.moveaxis(a, axis, 0)
        n = a.shape[0]
        rows = []
        for i in range(n // factor):
            centre = (i + 0.5) * factor
            j = np.arange(max(int(centre - radius * factor + 0.5), 0), min(int(centre + radius * factor + 0.5), n))
            w = kernel((j - centre + 0.5) / factor)
            rows.append(np.tensordot(w / w.sum(), a[j], axes=1))
        return np.moveaxis(np.stack(rows), 0, axis)

    return along(along(np.asarray(img, np.float64), 1), 0)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_kernels_equal_their_reference(photo: np.ndarray, scale: int) -> None:
    hr = photo[: 64 - 64 % scale, : 96 - 96 % scale]
    bic = _reference_reduce(hr, scale, _cubic, 2.0)
    lan = _reference_reduce(hr, scale, _lanczos3, 3.0)
    assert np.abs(downscale(hr, scale, "bicubic_aa") - bic).max() < 2e-5
    assert np.abs(downscale(hr, scale, "lanczos") - lan).max() < 2e-5
    import cv2

    h, w = hr.shape[:2]
    area_cv = cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
    assert np.abs(downscale(hr, scale, "area") - area_cv).max() < 2e-6
    # three different kernels: different LR frames
    assert np.abs(bic - lan).max() > 1e-3 and np.abs(bic - area_cv).max() > 1e-3
    assert sorted(DOWNSCALE_KERNELS) == ["area", "bicubic_aa", "lanczos"]


def test_hr_to_lr_crops_rounds_and_keeps_the_default(photo: np.ndarray) -> None:
    odd = photo[:63, :95]
    lr = hr_to_lr(odd, 2, "area")
    assert lr.shape == (31, 47, 3)
    assert np.array_equal(lr, np.rint(lr * 255) / np.float32(255))  # 8-bit levels, as a decoded frame
    assert np.array_equal(hr_to_lr(odd, 2), hr_to_lr(odd, 2, "bicubic_aa"))  # the default, as before
    with pytest.raises(ValueError, match="multiple"):
        downscale(odd, 2, "area")


def _scenario(tmp_path: Path, inputs: str, lr: str = "{lr_width: 32, lr_height: 24, scale: 2}") -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(f"name: k\ngeometry: {lr}\nmodels:\n  - zoo: espcn\n"
                 "inputs:\n" + textwrap.indent(textwrap.dedent(inputs), "  "))
    return p


def test_the_scenario_kernel_makes_the_lr(tmp_path: Path, photo: np.ndarray) -> None:
    loaded = load_scenario(_scenario(tmp_path, "images:\n  - skimage: coffee\ndownscale: area\n"))
    inp = Inputs(lambda: iter([Frame("p", photo)]), loaded.scenario.geometry,
                 downscale=loaded.scenario.inputs.downscale)
    ((_, f, lr),) = list(inp.frames())
    assert np.array_equal(lr, hr_to_lr(photo, 2, "area")) and inp.lr_from(f) == "downscale:area"
    with pytest.raises(UserInputError) as ei:
        load_scenario(_scenario(tmp_path, "images:\n  - skimage: coffee\ndownscale: nearest\n"))
    assert ei.value.location is not None and (ei.value.location.line, ei.value.location.field) == (
        8, "inputs.downscale")
    assert "'lanczos'" in ei.value.message


def _pngs(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(np.rint(f * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def test_lr_only_input_has_no_reference(tmp_path: Path, photo: np.ndarray) -> None:
    lr_frames = [hr_to_lr(photo, 2, "lanczos"), hr_to_lr(photo[:, ::-1], 2, "lanczos")]
    _pngs(tmp_path / "lr", lr_frames)
    loaded = load_scenario(_scenario(tmp_path, "images:\n  - path: lr\n    role: lr\n"))
    frames = list(iter_checked_frames(loaded))
    assert [(f.hr, f.lr.shape if f.lr is not None else None) for f in frames] == [(None, (32, 48, 3))] * 2
    inp = Inputs(lambda: iter(frames), loaded.scenario.geometry)
    rows = list(inp.frames())
    assert np.array_equal(rows[0][2], frames[0].lr) and inp.lr_from(rows[0][1]) == "lr_only"
    out = np.asarray(Image.fromarray(np.rint(lr_frames[0] * 255).astype(np.uint8)).resize((96, 64)),
                     np.float32) / 255
    q = frame_quality(rows[0][1], out, 2, lr_from=inp.lr_from(rows[0][1]))
    assert q.psnr_y_db is None and q.ssim_y is None and q.piqe is not None and not q.reference
    assert q.missing["psnr_y_db"] == NO_REFERENCE == q.missing["ssim_y"]
    rec = quality_record([q, q], "local")
    assert rec.psnr_y_db is None and rec.missing["psnr_y_db"] == NO_REFERENCE and rec.no_reference_frames == 2
    assert rec.piqe == q.piqe
    # the timing frame of an LR-only first input is that LR, resized to the scenario's LR size
    assert inp._timing_frame(frames[0]).shape == (24, 32, 3)


def test_pairs_are_used_as_given_and_a_size_mismatch_is_one_line(tmp_path: Path, photo: np.ndarray) -> None:
    hrs = [photo, photo[::-1]]
    lrs = [hr_to_lr(h, 2, "area") for h in hrs]
    _pngs(tmp_path / "hr", hrs)
    _pngs(tmp_path / "lr", lrs)
    write_video(tmp_path / "lr.mp4", lrs, fps=5, quality=None, output_params=["-crf", "0"])
    write_video(tmp_path / "hr.mp4", hrs, fps=5, quality=None, output_params=["-crf", "0"])
    for lr, hr in (("lr", "hr"), ("lr.mp4", "hr.mp4")):
        loaded = load_scenario(_scenario(tmp_path, f"pairs:\n  - {{lr: {lr}, hr: {hr}}}\n"))
        frames = list(iter_checked_frames(loaded))
        assert len(frames) == 2
        inp = Inputs(lambda fs=frames: iter(fs), loaded.scenario.geometry)  # type: ignore[misc]
        given = lrs if lr == "lr" else [f.hr for f in iter_video_frames(tmp_path / lr)]
        for (_, f, lr_in), want in zip(inp.frames(), given, strict=True):
            assert f.hr is not None and f.hr.shape == (64, 96, 3) and inp.lr_from(f) == "pair"
            assert np.abs(lr_in - want).max() < 1e-6  # the LR as decoded, not made again from the HR
    # an HR that is not exactly ×2 its LR: one located line, exit 2
    _pngs(tmp_path / "hr_bad", [h[:62] for h in hrs])
    p = _scenario(tmp_path, "pairs:\n  - lr: lr\n    hr: hr_bad\n")
    with pytest.raises(UserInputError) as ei:
        validate_scenario(load_scenario(p))
    assert ei.value.location is not None and ei.value.location.field == "inputs.pairs[0]"
    assert "LR is 48×32 and HR 96×62" in ei.value.message
    r = subprocess.run([PERFLAB, "scenario", "check", str(p)], capture_output=True, text=True, check=False,
                       env=dict(os.environ))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and f"{p}:7: inputs.pairs[0]:" in r.stderr
    # sides of different lengths, and a missing side
    (tmp_path / "lr" / "001.png").unlink()
    with pytest.raises(UserInputError, match="ends after 1 frames"):
        validate_scenario(load_scenario(_scenario(tmp_path, "pairs:\n  - {lr: lr, hr: hr}\n")))
    with pytest.raises(UserInputError) as ei:
        load_scenario(_scenario(tmp_path, "pairs:\n  - {lr: nope, hr: hr}\n"))
    assert ei.value.location is not None and ei.value.location.field == "inputs.pairs[0].lr"


def test_results_name_the_kernel_and_mark_frames_without_reference(tmp_path: Path, photo: np.ndarray) -> None:
    """A real local run: an HR photo (area kernel), an LR-only clip and a pair, bicubic and ESPCN."""
    lrs = [hr_to_lr(photo, 2, "lanczos")] * 2
    write_video(tmp_path / "lr.mp4", lrs, fps=5, quality=None, output_params=["-crf", "0"])
    _pngs(tmp_path / "hr", [photo])
    _pngs(tmp_path / "lr", [lrs[0]])
    p = _scenario(tmp_path, "downscale: area\nimages:\n  - skimage: coffee\nvideo:\n  - path: lr.mp4\n    role: lr\n"
                  "pairs:\n  - {lr: lr, hr: hr}\n")
    p.write_text(p.read_text() + "runs: {warmup: 0, iterations: 2}\ncooldown: {max_start_temp_c: 120, "
                 "wait_timeout_s: 0}\ntelemetry: {enabled: false, idle_baseline_s: 0}\n"
                 "profiling: {op_profiling: false, estimate: false}\n")
    r = subprocess.run([PERFLAB, "run", str(p), "--device", "local", "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, check=False, env=dict(os.environ), timeout=600)
    assert r.returncode == 0, r.stderr
    run = json.loads((tmp_path / "run" / "results.json").read_text())
    assert run["schema"] == "perflab.results/7"
    for c in run["cells"]:
        q = c["quality"]
        assert q["downscale"] == "area" and q["no_reference_frames"] == 2 and q["frames"] == 4
        by = {f["frame"]: f for f in q["per_frame"]}
        assert [by[n]["lr_from"] for n in ("coffee", "lr-000000", "lr-000001", "000")] == [
            "downscale:area", "lr_only", "lr_only", "pair"]
        for n in ("lr-000000", "lr-000001"):
            assert by[n]["reference"] is False and by[n]["psnr_y_db"] is None and by[n]["piqe"] is not None
            assert by[n]["missing"]["psnr_y_db"] == NO_REFERENCE
        # the LR-only clip (one frame twice: static) has a temporal figure held against its input: 0
        assert by["lr-000001"]["temporal_err_y"] == 0.0 and "temporal_err_y" in by["lr-000000"]["missing"]
        assert by["coffee"]["psnr_y_db"] is not None and by["000"]["psnr_y_db"] is not None
        # VMAF still runs on the frames with a reference (the kept video follows the reference's)
        assert by["coffee"]["vmaf"] is not None and by["000"]["vmaf"] is not None, q["missing"].get("vmaf")
        assert by["lr-000000"]["vmaf"] is None and by["lr-000000"]["missing"]["vmaf"] == NO_REFERENCE
        # the mean PSNR-Y is over the two frames that have a reference
        assert q["psnr_y_db"] == pytest.approx((by["coffee"]["psnr_y_db"] + by["000"]["psnr_y_db"]) / 2)
    # the report marks where the LR-only frames' PSNR/SSIM would be
    html = (tmp_path / "run" / "index.html").read_text()
    assert html.count(">no ref.<") >= 4 and NO_REFERENCE in html

