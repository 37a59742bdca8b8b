"""VMAF and kept video: libvmaf's JSON log parsed (a real log), pooling, lossless segment files,
perflab's VMAF equal to a plain `ffmpeg -lavfi libvmaf` run on the same files, and a missing
ffmpeg or libvmaf making VMAF missing with its reason. Small frames, few frames."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from perflab.analysis.vmaf import pool_vmaf
from perflab.formats.vmaf_log import VmafLogError, parse_vmaf_log
from perflab.quality.frames import load_skimage_photo, resize_bicubic
from perflab.quality.video import (
    KeptVideo,
    VideoUnavailable,
    ffmpeg_exe,
    read_video_frames,
    run_vmaf,
    vmaf_ffmpeg,
)

LOG = Path(__file__).parent / "fixtures" / "vmaf" / "libvmaf_86da14d_testsrc2_5frames.json"


def test_a_real_libvmaf_log_is_parsed() -> None:
    log = parse_vmaf_log(LOG.read_bytes(), str(LOG))
    assert log.version == "86da14d"
    assert len(log.scores) == 5
    assert log.scores[0] == 82.106664 and log.scores[1] == 84.151269
    assert log.pooled_mean == 83.905815 and log.pooled_harmonic_mean == 83.895639
    # perflab's pooling is libvmaf's: its mean and harmonic mean equal the ones libvmaf logged
    pooled = pool_vmaf(log.scores)
    assert pooled is not None and pooled.n == 5
    assert pooled.mean == pytest.approx(log.pooled_mean, abs=1e-6)
    assert pooled.harmonic_mean == pytest.approx(log.pooled_harmonic_mean, abs=1e-6)
    assert pooled.min == min(log.scores) <= pooled.p5 <= pooled.mean
    assert pooled.p5 == pytest.approx(float(np.percentile(log.scores, 5)))


def test_frames_are_ordered_by_frame_number() -> None:
    raw = json.loads(LOG.read_text())
    raw["frames"].reverse()
    assert parse_vmaf_log(json.dumps(raw)).scores == parse_vmaf_log(LOG.read_text()).scores


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda raw: "not json {", "not valid JSON"),
    (lambda raw: json.dumps([1, 2]), "expected a JSON object"),
    (lambda raw: json.dumps({**raw, "frames": []}), "no 'frames' list"),
    (lambda raw: json.dumps({**raw, "frames": raw["frames"][:1] + raw["frames"][2:]}), "not consecutive"),
    (lambda raw: json.dumps({**raw, "frames": raw["frames"] + raw["frames"][:1]}), "appears twice"),
    (lambda raw: json.dumps({**raw, "frames": [{"frameNum": 0, "metrics": {"psnr_y": 30.0}}]}), "no 'vmaf' metric"),
    (lambda raw: json.dumps({**raw, "frames": [{"frameNum": 0, "metrics": {"vmaf": "high"}}]}), "finite number"),
])
def test_a_damaged_log_is_one_error_naming_the_file(mutate, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VmafLogError, match=f"^bad.json.*{message}"):
        parse_vmaf_log(mutate(json.loads(LOG.read_text())), "bad.json")


def test_pooling_of_nothing_is_none() -> None:
    assert pool_vmaf([]) is None and pool_vmaf([float("nan")]) is None


def _frames(n: int, w: int, h: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((h, w, 3), dtype=np.float32) for _ in range(n)]


def test_kept_video_is_lossless_and_split_by_clip_size_and_still(tmp_path: Path) -> None:
    """One segment per run of frames of one clip and one size; a still image is a segment of its own (so
    VMAF's motion feature never spans two unrelated pictures); at most max_frames; bit-exact 8-bit RGB."""
    a, b, c = _frames(3, 48, 32, 1), _frames(2, 40, 40, 2), _frames(3, 48, 32, 3)
    kv = KeptVideo(tmp_path / "v", fps=30.0, max_frames=8)
    added = [kv.add("a0", a[0], "clip1"), kv.add("a1", a[1], "clip1"), kv.add("a2", a[2], "clip1"),
             kv.add("b0", b[0], "clip1"),                                  # same clip, another size
             kv.add("c0", c[0], "clip2"), kv.add("c1", c[1], "clip2"),     # same size, another clip
             kv.add("s0", c[2], None), kv.add("s1", c[2], None),           # two stills: one each
             kv.add("x", b[1], None)]                                      # beyond max_frames
    segs = kv.close()
    assert added == [True] * 8 + [False]
    assert [(s.path.name, s.first_frame, s.frames, s.width, s.height) for s in segs] == [
        ("000.mkv", 0, ("a0", "a1", "a2"), 48, 32), ("001.mkv", 3, ("b0",), 40, 40),
        ("002.mkv", 4, ("c0", "c1"), 48, 32), ("003.mkv", 6, ("s0",), 48, 32), ("004.mkv", 7, ("s1",), 48, 32)]
    back = [x for s in segs for x in read_video_frames(s.path)]
    want = [np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8) for f in [*a, b[0], c[0], c[1], c[2], c[2]]]
    assert len(back) == 8 and all(np.array_equal(x, y) for x, y in zip(back, want, strict=True))


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    """A real photo (three shifted crops, 192×128) and its bicubic ×2 round trip, kept."""
    hr_full = load_skimage_photo("coffee")
    hrs = [hr_full[40 + 6 * i: 168 + 6 * i, 200 + 9 * i: 392 + 9 * i] for i in range(3)]
    sr = [np.clip(resize_bicubic(resize_bicubic(h, 96, 64), 192, 128), 0, 1) for h in hrs]
    paths = []
    for name, frames in (("hr", hrs), ("sr", sr)):
        kv = KeptVideo(tmp_path / name, fps=30.0, max_frames=10)
        for i, f in enumerate(frames):
            kv.add(str(i), f, "crops")
        paths.append(kv.close()[0].path)
    return paths[1], paths[0]


def test_vmaf_equals_a_plain_ffmpeg_libvmaf_run_on_the_kept_files(tmp_path: Path) -> None:
    dis, ref = _pair(tmp_path)
    log = run_vmaf(dis, ref, tmp_path / "out" / "000.vmaf.json", threads=2, expect_frames=3)
    assert (tmp_path / "out" / "000.vmaf.json").is_file() and log.version
    assert all(20.0 < s <= 100.0 for s in log.scores) and min(log.scores) < 95.0
    # the command a user would type, with no format conversion and no options of perflab's
    plain = tmp_path / "plain.json"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(dis), "-i", str(ref), "-lavfi",
                    "libvmaf=log_fmt=json:log_path=plain.json", "-f", "null", "-"], cwd=tmp_path, check=True,
                   timeout=300)
    other = parse_vmaf_log(plain.read_text())
    assert len(other.scores) == 3
    assert np.abs(np.subtract(log.scores, other.scores)).max() <= 0.05
    # the identical file scores (near) 100: the reference is what PSNR scored against
    same = run_vmaf(ref, ref, tmp_path / "same.json", threads=1)
    assert min(same.scores) > 97.0


def test_no_ffmpeg_makes_video_and_vmaf_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(VideoUnavailable, match="no ffmpeg binary"):
        KeptVideo(tmp_path / "v", fps=30.0, max_frames=2).add("a", np.zeros((8, 8, 3), np.float32), None)
    with pytest.raises(VideoUnavailable, match="no ffmpeg binary"):
        run_vmaf(tmp_path / "a.mkv", tmp_path / "b.mkv", tmp_path / "l.json", threads=1)


def test_an_ffmpeg_without_libvmaf_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ffmpeg"  # an ffmpeg built without libvmaf lists other filters only
    fake.write_text("#!/bin/sh\necho 'Filters:'\necho ' ... scale             V->V       Scale the input video size.'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))
    with pytest.raises(VideoUnavailable, match="without the libvmaf filter"):
        vmaf_ffmpeg()


def test_cell_vmaf_pairs_segments_by_frame_and_skips_frames_without_reference(tmp_path: Path) -> None:
    """A run mixing an LR-only clip with HR clips: the outputs of the LR-only frames are kept but get no VMAF
    (no reference, said per frame), the others are scored against their own reference segment; the pooled
    figures cover the scored frames only."""
    from perflab.lab.video import StreamKeeper, cell_vmaf
    from perflab.rules.quality import NO_REFERENCE, with_vmaf
    from perflab.store.results import FrameQuality, QualityRecord
    from perflab.store.runfolder import RunFolder

    folder = RunFolder.create(tmp_path / "run")
    hr_a, hr_b = _frames(2, 48, 32, 5), _frames(2, 40, 40, 6)
    ref = StreamKeeper(folder, "hr", max_frames=10, fps=None)
    for i, f in enumerate(hr_a):
        ref.add(f"a{i}", f, "clipA")
    for i, f in enumerate(hr_b):
        ref.add(f"b{i}", f, "clipB")
    reference = ref.finish()
    out = StreamKeeper(folder, "cell", max_frames=10, fps=None)
    for i, f in enumerate(hr_a):
        out.add(f"a{i}", np.clip(f + 0.02, 0, 1), "clipA")
    for i, f in enumerate(_frames(2, 40, 40, 7)):
        out.add(f"lr{i}", f, "lr-only clip")  # an LR-only input between them
    for i, f in enumerate(hr_b):
        out.add(f"b{i}", f, "clipB")
    kept = out.finish()
    assert [s.frames for s in kept.segments] == [["a0", "a1"], ["lr0", "lr1"], ["b0", "b1"]]
    v = cell_vmaf(folder, reference, kept, threads=1, timeout_s=120)
    assert v.why is None and set(v.scores) == {"a0", "a1", "b0", "b1"}, v
    assert min(v.scores["b0"], v.scores["b1"]) > 97.0 > v.scores["a0"]  # identical vs brightened (first frame: no motion)
    assert (folder.path / "videos" / "cell" / "002.vmaf.json").is_file()
    per = [FrameQuality(frame=n, psnr_y_db=30.0) for n in ("a0", "a1")] + \
        [FrameQuality(frame=n, reference=False) for n in ("lr0", "lr1")] + \
        [FrameQuality(frame=n, psnr_y_db=30.0) for n in ("b0", "b1", "b2")]
    q = with_vmaf(QualityRecord(per_frame=per, frames=7), v.scores, model=v.model, why=v.why, video=kept)
    assert q.vmaf_frames == 4 and q.vmaf == pytest.approx(np.mean(list(v.scores.values())))
    by = {f.frame: f for f in q.per_frame}
    assert by["lr0"].vmaf is None and by["lr0"].missing["vmaf"] == NO_REFERENCE
    assert by["b2"].missing["vmaf"].startswith("not among the 6 frame(s) kept as video")
    # VMAF that could not be computed is missing for the cell, with the reason
    gone = with_vmaf(QualityRecord(per_frame=per, frames=7), {}, model=None, why="no ffmpeg binary at /x",
                     video=kept)
    assert gone.vmaf is None and gone.missing["vmaf"] == "no ffmpeg binary at /x"
    assert with_vmaf(QualityRecord(per_frame=per[2:4], frames=2), {}, model=None, why="x",
                     video=None).missing["vmaf"] == NO_REFERENCE


def test_a_run_without_ffmpeg_keeps_going_with_vmaf_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ffmpeg: the stream keeper records why, keeps no file, and cell_vmaf passes the reason on."""
    from perflab.lab.video import StreamKeeper, cell_vmaf
    from perflab.store.runfolder import RunFolder

    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-such-ffmpeg"))
    folder = RunFolder.create(tmp_path / "run")
    keeper = StreamKeeper(folder, "hr", max_frames=4, fps=30.0)
    keeper.add("a", _frames(1, 16, 16, 1)[0], "c")
    rec = keeper.finish()
    assert rec.segments == [] and rec.missing is not None and "no ffmpeg binary" in rec.missing
    v = cell_vmaf(folder, rec, rec, threads=1, timeout_s=10)
    assert v.scores == {} and v.why is not None and "no ffmpeg binary" in v.why
