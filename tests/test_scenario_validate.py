"""lab.validate: zoo references, every input decoded once with file:line: field errors, and
warnings for quality measured on the zoo's training images."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from perflab.errors import UserInputError
from perflab.lab.validate import (
    MIN_FRAME_SIDE_PX,
    check_inputs,
    iter_checked_frames,
    training_image_warnings,
    validate_scenario,
    zoo_training_photos,
)
from perflab.quality.inputs import write_video
from perflab.quality.synthetic import SYNTHETIC_PHOTOS, synthetic_frame
from perflab.scenario import load_scenario

REPO = Path(__file__).resolve().parent.parent
PERFLAB = str(Path(sys.executable).with_name("perflab"))


def _scenario(tmp_path: Path, inputs: str, models: str = "  - zoo: espcn\n") -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(
        "name: v\ngeometry: {lr_width: 64, lr_height: 32, scale: 2}\nmodels:\n" + models
        + "inputs:\n" + textwrap.indent(textwrap.dedent(inputs), "  ")
    )
    return p


def _png(path: Path, mode: str = "RGB", size: tuple[int, int] = (96, 64), **info: object) -> Path:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (size[1], size[0]), dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), mode="RGB").convert(mode)
    img.save(path, **info)  # type: ignore[arg-type]
    return path


def _located_error(tmp_path: Path, inputs: str) -> UserInputError:
    loaded = load_scenario(_scenario(tmp_path, inputs))
    with pytest.raises(UserInputError) as ei:
        validate_scenario(loaded)
    assert "\n" not in str(ei.value)
    return ei.value


@pytest.mark.parametrize("kind", [
    "truncated_png", "truncated_jpeg", "zero_bytes", "text_as_png", "wrong_extension", "bomb", "transparent", "tiny",
])
def test_undecodable_images_name_line_and_field(tmp_path: Path, kind: str) -> None:
    good = _png(tmp_path / "good.png")
    name = {"truncated_jpeg": "bad.jpg", "wrong_extension": "bad.txt"}.get(kind, "bad.png")
    bad = tmp_path / name
    if kind == "truncated_png":
        bad.write_bytes(good.read_bytes()[:300])
    elif kind == "truncated_jpeg":
        _png(tmp_path / "full.jpg", quality=95)
        bad.write_bytes((tmp_path / "full.jpg").read_bytes()[:400])
    elif kind == "zero_bytes":
        bad.write_bytes(b"")
    elif kind == "text_as_png":
        bad.write_text("hello, I am not a picture\n")
    elif kind == "wrong_extension":
        bad.write_bytes(good.read_bytes())
    elif kind == "bomb":  # a few kB of PNG that would decode to 60 megapixels
        Image.new("1", (10_000, 6_000)).save(bad)
        assert bad.stat().st_size < 100_000
    elif kind == "transparent":
        _png(bad, "RGBA")
        im = Image.open(bad).convert("RGBA")
        im.putpixel((0, 0), (1, 2, 3, 0))
        im.save(bad)
    elif kind == "tiny":
        _png(bad, size=(20, 20))
    e = _located_error(tmp_path, f"images:\n  - path: good.png\n  - path: {name}\n")
    assert e.location is not None and (e.location.line, e.location.field) == (8, "inputs.images[1].path"), e
    if kind != "tiny":
        assert name in e.message


@pytest.mark.parametrize("mode", ["L", "P", "I;16", "LA", "RGBA", "1", "CMYK"])
def test_image_modes_are_read_as_rgb(tmp_path: Path, mode: str) -> None:
    ext = "jpg" if mode == "CMYK" else "png"
    _png(tmp_path / f"m.{ext}", mode)
    loaded = load_scenario(_scenario(tmp_path, f"images:\n  - path: m.{ext}\n"))
    (f,) = list(iter_checked_frames(loaded))
    assert f.hr.shape == (64, 96, 3) and f.hr.dtype == np.float32 and 0 <= f.hr.min() <= f.hr.max() <= 1
    if mode == "I;16":  # 16-bit grey keeps its range (not clipped to white)
        raw = np.asarray(Image.open(tmp_path / "m.png")).astype(np.float32) / 65535.0
        assert np.allclose(f.hr[..., 0], raw, atol=1e-6)


def test_image_folder_skips_folders_named_like_images(tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    _png(pics / "a.png")
    (pics / "b.png").mkdir()
    loaded = load_scenario(_scenario(tmp_path, "images:\n  - path: pics\n"))
    assert check_inputs(loaded) == 1


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    write_video(path, [synthetic_frame(i, fps=10.0, width=128, height=64) for i in range(10)], fps=10.0)
    return path


@pytest.mark.parametrize("kind", ["garbage", "truncated", "no_frames_selected", "text", "zero_frames"])
def test_undecodable_videos_name_line_and_field(tmp_path: Path, clip: Path, kind: str) -> None:
    bad = tmp_path / "bad.mp4"
    extra = ""
    if kind == "garbage":
        bad.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        data = clip.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "no_frames_selected":
        bad.write_bytes(clip.read_bytes())
        extra = "    start_frame: 1000\n"
    elif kind == "zero_frames":  # a container ffmpeg wrote with no frame in it
        import imageio_ffmpeg

        writer = imageio_ffmpeg.write_frames(str(bad), (64, 64), fps=10, macro_block_size=1, ffmpeg_log_level="quiet")
        writer.send(None)
        writer.close()
        assert bad.is_file()
    else:
        bad.write_text("not a video\n")
    e = _located_error(tmp_path, f"images:\n  - skimage: coffee\nvideo:\n  - path: {clip}\n  - path: bad.mp4\n{extra}")
    assert e.location is not None and (e.location.line, e.location.field) == (10, "inputs.video[1].path"), e


def test_check_inputs_counts_frames_within_the_cap(tmp_path: Path, clip: Path) -> None:
    _png(tmp_path / "a.png")
    loaded = load_scenario(_scenario(
        tmp_path, f"images:\n  - path: a.png\n  - skimage: coffee\nvideo:\n  - path: {clip}\n"
        "synthetic: {frames: 4, width: 128, height: 64}\nmax_frames: 13\n"))
    assert check_inputs(loaded) == 13
    assert check_inputs(loaded, decode_generated=False) == 13
    # a corrupt file beyond the cap is never read by the run, so it is not an error
    (tmp_path / "z.png").write_text("junk")
    capped = load_scenario(_scenario(tmp_path, "images:\n  - path: a.png\n  - path: z.png\nmax_frames: 1\n"))
    assert check_inputs(capped) == 1
    assert MIN_FRAME_SIDE_PX <= 64


def test_same_named_inputs_get_unique_names(tmp_path: Path) -> None:
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        _png(tmp_path / d / "coffee.png")
    _png(tmp_path / "one" / "my photo #1.png")
    loaded = load_scenario(_scenario(
        tmp_path, "images:\n  - path: one\n  - path: two\n  - skimage: coffee\n"))
    names = [f.name for f in iter_checked_frames(loaded)]
    assert names == ["coffee", "my_photo_1", "coffee-2", "coffee-3"]
    assert len({n.lower() for n in names}) == len(names)


def test_training_images_warn() -> None:
    trained = zoo_training_photos()
    shown = [p for p in SYNTHETIC_PHOTOS if p in trained]
    assert sorted(shown) == ["astronaut", "hubble_deep_field", "immunohistochemistry", "retina"]
    loaded = load_scenario(REPO / "scenarios" / "zoo_x2.yaml")
    (w,) = validate_scenario(loaded, decode_inputs=False)
    assert w.kind == "training_images" and w.location.field == "inputs.synthetic" and w.location.line == 25
    assert "4 zoo training images" in w.message
    assert training_image_warnings(load_scenario(REPO / "scenarios" / "540p30.yaml")) == []


def test_training_photo_in_images_warns_but_not_for_user_models(tmp_path: Path) -> None:
    loaded = load_scenario(_scenario(tmp_path, "images:\n  - skimage: coffee\n  - skimage: astronaut\n"))
    (w,) = training_image_warnings(loaded)
    assert w.location.field == "inputs.images[1].skimage" and "astronaut" in w.message
    (tmp_path / "m.tflite").write_bytes((REPO / "perflab" / "zoo" / "weights" / "espcn_x2_fp32.tflite").read_bytes())
    user = load_scenario(_scenario(tmp_path, "images:\n  - skimage: astronaut\n", "  - {path: m.tflite, scale: 2}\n"))
    assert training_image_warnings(user) == []


def test_cli_check_prints_the_warning_and_decode_errors(tmp_path: Path) -> None:
    r = subprocess.run([PERFLAB, "scenario", "check", str(REPO / "scenarios" / "zoo_x2.yaml")],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "perflab: warning:" in r.stderr and "training images" in r.stderr
    (tmp_path / "bad.png").write_bytes(b"")
    p = _scenario(tmp_path, "images:\n  - path: bad.png\n")
    r = subprocess.run([PERFLAB, "scenario", "check", str(p)], capture_output=True, text=True, check=False)
    expected = (f"perflab: error: {p}:7: inputs.images[0].path: bad.png is not an image Pillow can read "
                "(empty, text, or another format?)")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [expected]
