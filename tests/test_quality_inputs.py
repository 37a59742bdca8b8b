"""Frame sources: image folders, video files via imageio-ffmpeg, the synthetic clip, iter_frames."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from perflab.errors import MeasurementError
from perflab.quality import frames
from perflab.quality.inputs import iter_frames, iter_image_frames, iter_video_frames, video_info, write_video
from perflab.quality.metrics import psnr_rgb_db
from perflab.quality.synthetic import _render_page, iter_synthetic_frames, synthetic_frame
from perflab.scenario.schema import Inputs

W, H = 320, 180


def _clip(n: int, w: int = W, h: int = H) -> list[np.ndarray]:
    return [synthetic_frame(i, fps=10.0, width=w, height=h, seed=3) for i in range(n)]


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    src = _clip(12)
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    n = write_video(path, src, fps=10.0, quality=10, pix_fmt_out="yuv444p")
    assert n == 12
    return path, src


def test_video_round_trip(clip_path: tuple[Path, list[np.ndarray]]) -> None:
    path, src = clip_path
    info = video_info(path)
    assert (info.width_px, info.height_px) == (W, H)
    assert info.fps == pytest.approx(10.0)
    assert info.codec == "h264"
    got = list(iter_video_frames(path))
    assert len(got) == 12
    for i, f in enumerate(got):
        assert f.name == f"clip-{i:06d}"
        assert f.hr.shape == (H, W, 3) and f.hr.dtype == np.float32
        assert float(f.hr.min()) >= 0.0 and float(f.hr.max()) <= 1.0
        # lossy but faithful: the decoded frame is the one that was encoded, not its neighbour
        own = psnr_rgb_db(f.hr, src[i], 0)
        assert own > 30.0, (i, own)
        if i + 1 < len(src):
            assert own > psnr_rgb_db(f.hr, src[i + 1], 0) + 3.0


def test_video_selection(clip_path: tuple[Path, list[np.ndarray]]) -> None:
    path, _ = clip_path
    names = [f.name for f in iter_video_frames(path, start_frame=1, every_nth=3, max_frames=3)]
    assert names == ["clip-000001", "clip-000004", "clip-000007"]
    assert len(list(iter_video_frames(path, every_nth=5))) == 3  # 0, 5, 10
    with pytest.raises(MeasurementError, match="no frames"):
        list(iter_video_frames(path, start_frame=50))
    with pytest.raises(MeasurementError, match="every_nth"):
        list(iter_video_frames(path, every_nth=0))


def test_corrupt_and_missing_video(tmp_path: Path, clip_path: tuple[Path, list[np.ndarray]]) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 500)
    with pytest.raises(MeasurementError, match=r"garbage\.mp4") as err:
        list(iter_video_frames(garbage))
    assert "cannot decode video" in str(err.value)
    assert "\n" not in str(err.value)  # one clear line, not ffmpeg's whole log

    data = clip_path[0].read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(MeasurementError, match=r"truncated\.mp4"):
        list(iter_video_frames(truncated))

    with pytest.raises(MeasurementError, match="not found"):
        video_info(tmp_path / "nope.mp4")


def test_truncated_streamable_video_is_an_error(tmp_path: Path) -> None:
    # moov atom first (+faststart): ffmpeg opens the cut file and decodes what is left
    path = tmp_path / "fast.mp4"
    write_video(path, _clip(30), fps=10.0, quality=8, output_params=["-movflags", "+faststart"])
    assert len(list(iter_video_frames(path))) == 30
    data = path.read_bytes()
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MeasurementError, match=r"fast_cut.mp4 ended after \d+ frames of the ~30"):
        list(iter_video_frames(cut))
    # stopping early on purpose is fine
    assert len(list(iter_video_frames(cut, max_frames=5))) == 5


def test_video_streams_in_bounded_memory(tmp_path: Path) -> None:
    w, h, n = 640, 360, 48
    path = tmp_path / "long.mp4"
    write_video(
        path, (synthetic_frame(i, fps=30.0, width=w, height=h) for i in range(n)), fps=30.0, quality=5
    )
    frame_bytes = w * h * 3 * 4  # one float32 frame
    gc.collect()
    tracemalloc.start()
    try:
        count = 0
        for f in iter_video_frames(path):
            count += 1
            del f
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 4 * frame_bytes, f"peak {peak / 1e6:.1f} MB for {n} frames of {frame_bytes / 1e6:.1f} MB"


def test_image_folder_and_corrupt_file(tmp_path: Path) -> None:
    coffee = frames.load_skimage_photo("coffee")
    chelsea = frames.load_skimage_photo("chelsea")
    Image.fromarray(np.rint(coffee * 255).astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.rint(chelsea * 255).astype(np.uint8)).save(tmp_path / "b.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("not an image")
    got = list(iter_image_frames(tmp_path))
    assert [f.name for f in got] == ["a", "b"]  # stems: saved as a.png, not a.png.png
    assert np.array_equal(got[0].hr, frames.quantize_8bit(coffee))  # PNG is lossless
    assert got[1].hr.shape == chelsea.shape

    bad = tmp_path / "c.png"
    bad.write_bytes((tmp_path / "a.png").read_bytes()[:200])  # truncated PNG
    with pytest.raises(MeasurementError, match=r"c\.png"):
        list(iter_image_frames(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MeasurementError, match="no image files"):
        list(iter_image_frames(empty))


def test_synthetic_clip_is_deterministic_and_moves() -> None:
    a = list(iter_synthetic_frames(3, fps=30.0))
    _render_page.cache_clear()
    b = list(iter_synthetic_frames(3, fps=30.0))
    for fa, fb in zip(a, b, strict=True):
        assert fa.hr.shape == (1080, 1920, 3) and fa.hr.dtype == np.float32
        assert np.array_equal(fa.hr, fb.hr)
    assert not np.array_equal(a[0].hr, a[1].hr)  # motion
    other_seed = synthetic_frame(0, seed=7)
    assert not np.array_equal(a[0].hr, other_seed)
    # motion is defined in time: frame 2 at 60 fps is frame 1 at 30 fps
    assert np.array_equal(synthetic_frame(2, fps=60.0), a[1].hr)
    # rich content: text edges and textures give plenty of high-frequency energy
    y = frames.rgb_to_y(a[0].hr)
    assert float(np.abs(np.diff(y, axis=1)).mean()) > 2.0
    assert len(np.unique(np.rint(y))) > 150


def test_iter_frames_from_scenario_inputs(tmp_path: Path, clip_path: tuple[Path, list[np.ndarray]]) -> None:
    vid = clip_path[0]
    inputs = Inputs.model_validate(
        {
            "images": [{"skimage": "coffee"}],
            "video": [{"path": str(vid), "max_frames": 2, "every_nth": 2}],
            "synthetic": {"frames": 5, "fps": 30, "width": 256, "height": 144},
            "max_frames": 6,
        }
    )
    names = [f.name for f in iter_frames(inputs, tmp_path)]
    assert names == [
        "coffee",
        "clip-000000",
        "clip-000002",
        "synthetic-s0-000000",
        "synthetic-s0-000001",
        "synthetic-s0-000002",
    ]
    # relative video paths resolve against the scenario's folder
    rel = Inputs.model_validate({"video": [{"path": vid.name, "max_frames": 1}]})
    assert [f.name for f in iter_frames(rel, vid.parent)] == ["clip-000000"]
    with pytest.raises(MeasurementError, match="not found"):
        list(iter_frames(rel, tmp_path / "elsewhere"))


def test_inputs_schema_needs_some_input() -> None:
    with pytest.raises(ValueError, match="at least one input"):
        Inputs.model_validate({})
    with pytest.raises(ValueError):
        Inputs.model_validate({"video": [{"path": "x.mp4", "every_nth": 0}]})
    with pytest.raises(ValueError):
        Inputs.model_validate({"synthetic": {"frames": 3, "bogus": 1}})
    assert Inputs.model_validate({"synthetic": {}}).synthetic is not None
