"""Frames kept as lossless video, and VMAF computed from those files (docs/quality.md).

Kept video is **FFV1 (level 3, intra-only) in Matroska, pixel format gbrp**: the 8-bit RGB
frames that PSNR/SSIM scored, bit for bit (FFV1 is lossless; gbrp is planar RGB, so no
RGB→YUV rounding happens when the file is written). Intra-only (GOP 1) lets a viewer seek to
any frame. x264 ``-qp 0`` would also be lossless but only in YUV (or RGB through libx264rgb,
which few players open); its files are 2–3× smaller (inter-frame coding), which is the price
paid here for exact RGB and seeking (docs/quality.md "VMAF").

A stream's frames need not be one clip (an album of photographs, two clips): consecutive
frames of one clip (``Frame.sequence``) and one size go into one *segment* file; a new clip, a
change of size or a still image starts the next (:class:`KeptVideo`). So VMAF's motion feature
never spans two unrelated pictures.

VMAF: the ffmpeg binary shipped by ``imageio-ffmpeg`` has the ``libvmaf`` filter with its
built-in models. :func:`vmaf_command` is the one command line perflab runs (and the one a user
can rerun on the kept files); the JSON log it writes is parsed by perflab.formats.vmaf_log.
Both inputs are converted to yuv420p (BT.601 limited range, ffmpeg's default) before libvmaf,
as ffmpeg does on its own for these RGB files — VMAF reads luma only, so the chroma format
does not change the score.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from perflab.errors import MeasurementError
from perflab.formats.vmaf_log import VmafLog, parse_vmaf_log

VIDEO_SUFFIX = ".mkv"
VIDEO_CODEC = "ffv1"
VIDEO_PIX_FMT = "gbrp"
VIDEO_FORMAT = "FFV1 level 3 (intra-only), gbrp (lossless 8-bit RGB), Matroska"
VMAF_MODEL = "vmaf_v0.6.1"  # libvmaf's built-in default model (1080p viewing at 3 H)
VMAF_PIX_FMT = "yuv420p"


class VideoUnavailable(MeasurementError):
    """ffmpeg (or its libvmaf filter) is not available: the video or VMAF is missing, with this reason."""


def ffmpeg_exe() -> str:
    """The ffmpeg binary of imageio-ffmpeg (or ``IMAGEIO_FFMPEG_EXE``); VideoUnavailable when there is none."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VideoUnavailable("imageio-ffmpeg is not installed (pip install imageio-ffmpeg)") from None
    try:
        exe = str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise VideoUnavailable(f"no ffmpeg binary: {exc}") from None
    if not Path(exe).is_file() and shutil.which(exe) is None:
        raise VideoUnavailable(f"no ffmpeg binary at {exe}")
    return exe


@functools.cache
def _filters(exe: str) -> str:
    try:
        r = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VideoUnavailable(f"{exe} could not be run: {exc}") from None
    return r.stdout


def vmaf_ffmpeg() -> str:
    """The ffmpeg binary, checked to have the ``libvmaf`` filter (VideoUnavailable otherwise)."""
    exe = ffmpeg_exe()
    if not any(line.split()[1:2] == ["libvmaf"] for line in _filters(exe).splitlines()):
        raise VideoUnavailable(f"{exe} was built without the libvmaf filter")
    return exe


# --------------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Segment:
    """One file of a kept stream: consecutive frames of one size."""

    path: Path
    first_frame: int  # index of its first frame in the stream
    frames: tuple[str, ...]  # frame names, in order
    width: int
    height: int


def _to_u8(rgb01: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] → 8-bit RGB, rounded as the PNGs and the scored outputs are."""
    return np.ascontiguousarray(np.clip(np.rint(np.asarray(rgb01)[..., :3] * 255.0), 0, 255).astype(np.uint8))


class _Encoder:
    """One ffmpeg process encoding raw RGB frames from its stdin into one lossless file."""

    def __init__(self, exe: str, path: Path, width: int, height: int, fps: float) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-", "-an", "-c:v", VIDEO_CODEC, "-level", "3",
               "-g", "1", "-slicecrc", "1", "-pix_fmt", VIDEO_PIX_FMT, str(path)]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            raise VideoUnavailable(f"{exe} could not be started: {exc}") from None

    @property
    def _stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    def write(self, u8: np.ndarray) -> None:
        try:
            self._stdin.write(u8.tobytes())
        except (BrokenPipeError, OSError):
            raise MeasurementError(f"{self.path}: ffmpeg stopped while encoding: {self._error()}") from None

    def _error(self) -> str:
        try:
            _, err = self.proc.communicate(timeout=60)
        except (subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            return "did not finish"
        lines = [x for x in (err or b"").decode("utf-8", "replace").splitlines() if x.strip()]
        return lines[-1].strip() if lines else f"exit status {self.proc.returncode}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            rc = self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise MeasurementError(f"{self.path}: ffmpeg did not finish encoding") from None
        if rc != 0:
            err = (self.proc.stderr.read() if self.proc.stderr else b"").decode("utf-8", "replace").strip()
            raise MeasurementError(f"{self.path}: ffmpeg failed (exit {rc}): {err.splitlines()[-1] if err else ''}")

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class KeptVideo:
    """Frames of one stream (the HR reference, or one cell's outputs) written as lossless
    segment files ``<index:03d>.mkv`` under ``directory``: frames are added in stream order,
    at most ``max_frames``; a change of clip (``sequence``) or of frame size, or a still image
    (``sequence`` None), starts a new segment. Holds one frame at a
    time. :meth:`close` returns the segments; on an error the files written are removed by
    :meth:`abort`."""

    def __init__(self, directory: Path, *, fps: float, max_frames: int,
                 name_of: Callable[[int], str] = lambda i: f"{i:03d}{VIDEO_SUFFIX}") -> None:
        self.directory = directory
        self.fps = fps
        self.max_frames = max_frames
        self._name_of = name_of
        self._exe: str | None = None
        self._enc: _Encoder | None = None
        self._segments: list[Segment] = []
        self._names: list[str] = []
        self._first = 0
        self._size: tuple[int, int] | None = None
        self._sequence: str | None = None
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count >= self.max_frames

    def add(self, name: str, rgb01: np.ndarray, sequence: str | None = None) -> bool:
        """Append one frame of clip ``sequence`` (None: a still image); False (nothing written)
        once ``max_frames`` are kept."""
        if self.full:
            return False
        u8 = _to_u8(rgb01)
        h, w = u8.shape[:2]
        if self._enc is None or self._size != (w, h) or sequence is None or sequence != self._sequence:
            self._finish_segment()
            if self._exe is None:
                self._exe = ffmpeg_exe()
            self._enc = _Encoder(self._exe, self.directory / self._name_of(len(self._segments)), w, h, self.fps)
            self._size, self._first, self._names, self._sequence = (w, h), self.count, [], sequence
        self._enc.write(u8)
        self._names.append(name)
        self.count += 1
        return True

    def _finish_segment(self) -> None:
        if self._enc is None or self._size is None:
            return
        enc, self._enc = self._enc, None
        enc.close()
        self._segments.append(Segment(enc.path, self._first, tuple(self._names), *self._size))

    def close(self) -> list[Segment]:
        self._finish_segment()
        return list(self._segments)

    def abort(self) -> None:
        """Stop any encoder and remove this stream's files."""
        if self._enc is not None:
            self._enc.abort()
            self._enc = None
        for p in [*(s.path for s in self._segments), self.directory / self._name_of(len(self._segments))]:
            p.unlink(missing_ok=True)
        self._segments = []


def read_video_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a kept file as 8-bit RGB (H×W×3 uint8) — for tests and viewers."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(gen)
    w, h = meta["size"]
    try:
        return [np.frombuffer(b, dtype=np.uint8).reshape(h, w, 3).copy() for b in gen]
    finally:
        gen.close()


# --------------------------------------------------------------------------------------------- VMAF


def vmaf_filter(log_name: str, *, threads: int, model: str = VMAF_MODEL) -> str:
    """The filter graph: both inputs to yuv420p, then libvmaf with the built-in ``model``,
    ``threads`` libvmaf threads and a JSON per-frame log written to ``log_name`` (a plain file
    name in ffmpeg's working folder, so no filter-graph escaping is needed)."""
    return (f"[0:v]format={VMAF_PIX_FMT}[dis];[1:v]format={VMAF_PIX_FMT}[ref];"
            f"[dis][ref]libvmaf=model=version={model}:n_threads={threads}:log_fmt=json:log_path={log_name}")


def vmaf_command(exe: str, distorted: Path, reference: Path, log_name: str, *, threads: int,
                 model: str = VMAF_MODEL) -> list[str]:
    """The ffmpeg command line computing VMAF of ``distorted`` against ``reference`` (run in the
    folder that is to hold ``log_name``)."""
    return [exe, "-hide_banner", "-nostats", "-loglevel", "error", "-i", str(distorted), "-i", str(reference),
            "-lavfi", vmaf_filter(log_name, threads=threads, model=model), "-f", "null", "-"]


def run_vmaf(distorted: Path, reference: Path, log_path: Path, *, threads: int, timeout_s: float = 3600.0,
             model: str = VMAF_MODEL, expect_frames: int | None = None) -> VmafLog:
    """VMAF of ``distorted`` against ``reference`` (two kept files of one size); the per-frame
    JSON log is left at ``log_path``. VideoUnavailable when ffmpeg or libvmaf is missing;
    MeasurementError when ffmpeg fails, or the log's frame count is not ``expect_frames``."""
    exe = vmaf_ffmpeg()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)
    cmd = vmaf_command(exe, distorted.resolve(), reference.resolve(), log_path.name, threads=threads, model=model)
    try:
        r = subprocess.run(cmd, cwd=log_path.parent, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise MeasurementError(f"VMAF of {distorted.name} took longer than {timeout_s:g} s") from None
    except OSError as exc:
        raise VideoUnavailable(f"{exe} could not be run: {exc}") from None
    if r.returncode != 0 or not log_path.is_file():
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        raise MeasurementError(f"ffmpeg libvmaf failed on {distorted.name} (exit {r.returncode}): "
                               f"{lines[-1].strip() if lines else 'no log written'}")
    log = parse_vmaf_log(log_path.read_bytes(), str(log_path))
    if expect_frames is not None and len(log.scores) != expect_frames:
        raise MeasurementError(f"{log_path}: {len(log.scores)} frames scored, expected {expect_frames}")
    return log
