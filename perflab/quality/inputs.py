"""Streaming frame sources: image files and folders, packaged photos, video files, real clips
unpacked at set-up (:mod:`perflab.quality.clips`), the synthetic clip, and LR/HR pairs.

A source gives HR ground truth (``Frame.hr``), except a source with ``role: lr`` (LR footage
with no reference: ``hr`` None, ``lr`` set) and a pair (both set; the LR is used as given).

Every source is a generator of :class:`~perflab.quality.frames.Frame` (name + HR float32 RGB in
[0, 1]) that holds at most one decoded frame (plus, for the synthetic clip, one pre-rendered
page): a one-minute 1080p video is never in memory whole. Video is decoded by the ffmpeg
binary that ships inside the ``imageio-ffmpeg`` wheel, read from its pipe one frame at a time;
closing the generator early (``max_frames``, ``break``) stops ffmpeg.

Bad input is an :class:`InputError` (a :class:`~perflab.errors.MeasurementError`) that names
the file: a corrupt or truncated image, a text file named ``.png``, an image too large to
decode safely (more than :data:`MAX_INPUT_PIXELS`), one with transparent pixels, a file ffmpeg
cannot open, a video that yields no frames or breaks mid-way. ``perflab.lab.validate`` adds
the scenario's file:line: field to it before any run folder exists.

Frame names are file-system safe and unique within one :func:`iter_frames` stream (they
become ``frames/<group>/<name>.png``): an image keeps its file stem (``coffee.png`` →
``coffee``), a video frame is ``<stem>-<decoded index>``, a synthetic frame
``synthetic-s<seed>-<index>``; characters other than letters, digits, ``.``, ``_`` and ``-``
become ``_``; a name already given (case-insensitively) gets ``-2``, ``-3``, … in stream order
(:class:`perflab.core.names.FrameNamer`).

``iter_frames`` takes the scenario's ``inputs`` block (any object with its attributes; this
module does not import the scenario package) and a base folder for relative paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from perflab.core.names import FrameNamer, frame_stem
from perflab.errors import MeasurementError
from perflab.quality.clips import clip_missing, clip_path
from perflab.quality.frames import (
    IMAGE_SUFFIXES,
    Frame,
    InputError,
    load_skimage_photo,
    to_float_rgb,
)
from perflab.quality.synthetic import iter_synthetic_frames

MAX_INPUT_PIXELS = 40_000_000
"""Largest input image or video frame (pixels): 40 MP, above 8K UHD. Larger files are refused
before they are decoded (a decompression bomb is a few kilobytes of PNG)."""


class ImageSpec(Protocol):
    @property
    def skimage(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def role(self) -> str: ...


class VideoSpec(Protocol):
    @property
    def path(self) -> str | None: ...
    @property
    def clip(self) -> str | None: ...
    @property
    def role(self) -> str: ...
    @property
    def max_frames(self) -> int | None: ...
    @property
    def every_nth(self) -> int: ...
    @property
    def start_frame(self) -> int: ...


class SyntheticSpec(Protocol):
    @property
    def frames(self) -> int: ...
    @property
    def fps(self) -> float: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def seed(self) -> int: ...


class PairSpec(Protocol):
    @property
    def lr(self) -> str: ...
    @property
    def hr(self) -> str: ...
    @property
    def max_frames(self) -> int | None: ...


class InputsSpec(Protocol):
    @property
    def images(self) -> Sequence[ImageSpec]: ...
    @property
    def video(self) -> Sequence[VideoSpec]: ...
    @property
    def synthetic(self) -> SyntheticSpec | None: ...
    @property
    def pairs(self) -> Sequence[PairSpec]: ...
    @property
    def max_frames(self) -> int: ...


SourceKey = tuple[str | int, ...]
"""Where a source is named in the scenario, e.g. ``("inputs", "images", 0, "path")``."""


@dataclass(frozen=True)
class InputSource:
    """One entry of a scenario's ``inputs``, not yet opened."""

    key: SourceKey
    generated: bool  # perflab's own frames (packaged photo, synthetic clip), not a user's file
    count: int | None  # frames it gives, where known without decoding
    open: Callable[[], Iterator[Frame]]


def input_sources(inputs: InputsSpec, base_dir: Path) -> list[InputSource]:
    """The sources of a scenario's inputs in stream order: images, video, synthetic clip, pairs.
    A source with ``role: lr`` gives LR frames with no reference (``Frame.hr`` None)."""
    out: list[InputSource] = []
    for i, img in enumerate(inputs.images):
        opener: Callable[[], Iterator[Frame]] | None = None
        if img.skimage is not None:
            key: SourceKey = ("inputs", "images", i, "skimage")
            opener = partial(iter_skimage_frames, [img.skimage])
        elif img.path is not None:
            key = ("inputs", "images", i, "path")
            opener = partial(iter_image_frames, _resolve(base_dir, img.path))
        if opener is not None:
            out.append(InputSource(key, img.skimage is not None, 1 if img.skimage is not None else None,
                                   _as_role(opener, img.role)))
    for i, vid in enumerate(inputs.video):
        if vid.clip is not None:
            out.append(InputSource(("inputs", "video", i, "clip"), True, None, _as_role(partial(
                iter_clip_frames, vid.clip, max_frames=vid.max_frames, every_nth=vid.every_nth,
                start_frame=vid.start_frame), vid.role)))
        elif vid.path is not None:
            out.append(InputSource(("inputs", "video", i, "path"), False, None, _as_role(partial(
                iter_video_frames, _resolve(base_dir, vid.path), max_frames=vid.max_frames,
                every_nth=vid.every_nth, start_frame=vid.start_frame), vid.role)))
    syn = inputs.synthetic
    if syn is not None:
        out.append(InputSource(
            ("inputs", "synthetic"), True, syn.frames,
            partial(iter_synthetic_frames, syn.frames, fps=syn.fps, width=syn.width, height=syn.height, seed=syn.seed),
        ))
    for i, pair in enumerate(inputs.pairs):
        out.append(InputSource(("inputs", "pairs", i), False, None, partial(
            iter_pair_frames, _resolve(base_dir, pair.lr), _resolve(base_dir, pair.hr), max_frames=pair.max_frames)))
    return out


def _as_role(opener: Callable[[], Iterator[Frame]], role: str) -> Callable[[], Iterator[Frame]]:
    """``opener`` as it is for HR ground truth; for ``role: lr`` its frames become LR frames
    with no reference."""
    return opener if role == "hr" else partial(_lr_only, opener)


def _lr_only(opener: Callable[[], Iterator[Frame]]) -> Generator[Frame, None, None]:
    frames = opener()
    try:
        for f in frames:
            yield Frame(name=f.name, hr=None, sequence=f.sequence, lr=f.hr)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def _side_frames(path: Path, max_frames: int | None) -> Iterator[Frame]:
    """One side of a pair: a video file, or an image file/folder."""
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return iter_image_frames(path)
    return iter_video_frames(path, max_frames=max_frames)


def iter_pair_frames(lr_path: Path, hr_path: Path, *, max_frames: int | None = None) -> Generator[Frame, None, None]:
    """LR/HR pairs frame for frame (images in name order, video in decoding order), at most
    ``max_frames``: ``Frame(name of the HR frame, hr, lr)``. The LR is as decoded. Sides that
    give different numbers of frames are an :class:`InputError`; their sizes are checked by the
    caller, who knows the scale (:func:`perflab.quality.frames.pair_size_problem`)."""
    lrs, hrs = _side_frames(lr_path, max_frames), _side_frames(hr_path, max_frames)
    n = 0
    try:
        while max_frames is None or n < max_frames:
            lr, hr = next(lrs, None), next(hrs, None)
            if lr is None and hr is None:
                break
            if lr is None or hr is None:
                short, other = (lr_path, hr_path) if lr is None else (hr_path, lr_path)
                raise InputError(f"LR/HR pair: {short.name} ends after {n} frames, {other.name} goes on "
                                 "(the two sides must give the same frames)")
            yield Frame(name=hr.name, hr=hr.hr, sequence=hr.sequence, lr=lr.hr)
            n += 1
    finally:
        for g in (lrs, hrs):
            close = getattr(g, "close", None)
            if close is not None:
                close()


def iter_frames(inputs: InputsSpec, base_dir: Path) -> Generator[Frame, None, None]:
    """All frames of a scenario's inputs in order (images, video, synthetic), capped at
    ``inputs.max_frames`` in total, with unique file-system-safe names. Relative paths resolve
    against ``base_dir``. A bad source raises :class:`InputError` with its ``source`` key."""
    namer = FrameNamer()
    left = inputs.max_frames
    for k, src in enumerate(input_sources(inputs, base_dir)):
        if left <= 0:
            return
        frames = iter_source(src, left)
        try:
            for f in frames:
                # a clip's frames stay one sequence; the same clip listed twice is two sequences
                seq = None if f.sequence is None else f"{k}:{f.sequence}"
                yield Frame(name=namer.name(f.name), hr=f.hr, sequence=seq, lr=f.lr)
                left -= 1
        finally:
            frames.close()  # stops a running ffmpeg when the cap is reached or the caller stops


def iter_source(src: InputSource, limit: int | None = None) -> Generator[Frame, None, None]:
    """The frames of one source (at most ``limit``); its errors carry ``src.key``. Closing
    this generator early stops a running ffmpeg."""
    gen = src.open()
    n = 0
    try:
        while limit is None or n < limit:
            try:
                f = next(gen)
            except StopIteration:
                return
            except InputError as exc:
                raise InputError(exc.detail, src.key) from exc
            except MeasurementError as exc:
                raise InputError(str(exc), src.key) from exc
            n += 1
            yield f
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()


def _resolve(base_dir: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


# ---------------------------------------------------------------------------------------------
# images


def image_files(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else the image files of the folder, sorted by name."""
    try:
        if not path.is_dir():
            if not path.is_file():
                raise InputError(f"image path not found: {path}")
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise InputError(
                    f"{path.name}: not an image file name (expected {', '.join(IMAGE_SUFFIXES)}; "
                    "a video goes under inputs.video)"
                )
            return [path]
        return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_image(path: Path) -> npt.NDArray[np.float32]:
    """One image file → float32 RGB in [0, 1]. 8- and 16-bit, grey, palette and RGB(A) images
    are read; a fully opaque alpha channel is dropped; transparency, an image larger than
    :data:`MAX_INPUT_PIXELS` and anything Pillow cannot decode are refused."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_INPUT_PIXELS:
                raise InputError(
                    f"image {path.name} is {w}×{h} pixels, more than the {MAX_INPUT_PIXELS} perflab decodes"
                )
            if w < 1 or h < 1:
                raise InputError(f"image {path.name} is empty ({w}×{h})")
            im.load()
            return _image_to_rgb(im, path)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"image {path.name} is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{path.name} is not an image Pillow can read (empty, text, or another format?)") from exc
    except OSError as exc:
        if exc.errno is not None:  # the file system's error (permission, I/O), not the decoder's
            raise InputError(f"cannot read image {path.name}: {exc.strerror or exc}") from exc
        raise InputError(f"cannot decode image {path.name}: {exc} (truncated or corrupt file?)") from exc
    except (ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise InputError(f"cannot decode image {path.name}: {exc} (truncated or corrupt file?)") from exc


def _image_to_rgb(im: Image.Image, path: Path) -> npt.NDArray[np.float32]:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grey (PNG)
        grey = np.asarray(im).astype(np.float32)
        return to_float_rgb(np.clip(grey / 65535.0, 0.0, 1.0))
    if mode == "F":
        raise InputError(f"image {path.name}: floating-point images are not read (save it as 8 or 16 bit)")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        if int(np.asarray(rgba.getchannel("A")).min()) < 255:
            raise InputError(
                f"image {path.name} has transparent pixels; quality needs opaque images (flatten it first)"
            )
        return to_float_rgb(np.asarray(rgba.convert("RGB")))
    return to_float_rgb(np.asarray(im.convert("RGB")))


def iter_image_frames(path: Path) -> Iterator[Frame]:
    """One PNG/JPEG/… file, or every image file of a folder (sorted by name), one at a time."""
    files = image_files(path)
    if not files:
        raise InputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
    for f in files:
        yield Frame(name=frame_stem(f.stem), hr=load_image(f))


def iter_skimage_frames(names: Sequence[str]) -> Iterator[Frame]:
    """Photographs packaged inside scikit-image."""
    for n in names:
        yield Frame(name=n, hr=load_skimage_photo(n))


# ---------------------------------------------------------------------------------------------
# video


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width_px: int
    height_px: int
    fps: float
    duration_s: float
    codec: str

    @property
    def approx_frames(self) -> int:
        return round(self.fps * self.duration_s)


def _ffmpeg_reason(exc: BaseException) -> str:
    """The telling part of an imageio-ffmpeg error: its first line and ffmpeg's last one."""
    text = str(exc).strip()
    head, _, rest = text.partition("\n")
    lines = [ln.strip() for ln in rest.splitlines() if ln.strip() and not ln.startswith("===")]
    tail = lines[-1] if lines else ""
    return f"{head} ({tail})" if tail and tail != head else head


def _open_video(path: Path) -> tuple[Any, dict[str, Any]]:
    import imageio_ffmpeg

    if path.is_dir():
        raise InputError(f"video path is a folder, not a video file: {path}")
    if not path.is_file():
        raise InputError(f"video file not found: {path}")
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta: dict[str, Any] = next(gen)
    except (OSError, RuntimeError, StopIteration, ValueError) as exc:
        gen.close()
        raise InputError(f"cannot decode video {path.name}: {_ffmpeg_reason(exc)}") from exc
    size = meta.get("size")
    if not (isinstance(size, tuple) and len(size) == 2 and size[0] > 0 and size[1] > 0):
        gen.close()
        raise InputError(f"cannot decode video {path.name}: ffmpeg reports no frame size")
    if int(size[0]) * int(size[1]) > MAX_INPUT_PIXELS:
        gen.close()
        raise InputError(
            f"video {path.name} is {size[0]}×{size[1]} pixels, more than the {MAX_INPUT_PIXELS} perflab decodes"
        )
    return gen, meta


def _expected_frames(meta: dict[str, Any]) -> int | None:
    try:
        fps = float(meta.get("fps") or 0.0)
        duration = float(meta.get("duration") or 0.0)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(fps) and math.isfinite(duration)) or fps <= 0 or duration <= 0:
        return None
    return round(fps * duration)


def video_info(path: Path) -> VideoInfo:
    """Size, frame rate, duration and codec of a video file, as ffmpeg reports them."""
    gen, meta = _open_video(path)
    gen.close()
    fps = float(meta.get("fps") or 0.0)
    duration = float(meta.get("duration") or 0.0)
    return VideoInfo(
        path=path,
        width_px=int(meta["size"][0]),
        height_px=int(meta["size"][1]),
        fps=fps if math.isfinite(fps) else 0.0,
        duration_s=duration if math.isfinite(duration) else 0.0,
        codec=str(meta.get("codec", "")),
    )


def iter_video_frames(
    path: Path, *, max_frames: int | None = None, every_nth: int = 1, start_frame: int = 0
) -> Iterator[Frame]:
    """Decoded frames of a video file, streamed: frame ``start_frame`` and every ``every_nth``
    after it, at most ``max_frames``. Names are ``<file stem>-<decoded index>``."""
    if every_nth < 1 or start_frame < 0 or (max_frames is not None and max_frames < 1):
        raise InputError(
            f"bad video selection for {path}: every_nth={every_nth}, start_frame={start_frame}, "
            f"max_frames={max_frames}"
        )
    gen, meta = _open_video(path)
    w, h = int(meta["size"][0]), int(meta["size"][1])
    stem = frame_stem(path.stem)
    kept = 0
    index = 0
    try:
        while True:
            try:
                buf = next(gen)
            except StopIteration:
                break
            except (OSError, RuntimeError, ValueError) as exc:
                raise InputError(
                    f"video {path.name} broke off at frame {index}: {_ffmpeg_reason(exc)}"
                ) from exc
            if index >= start_frame and (index - start_frame) % every_nth == 0:
                if len(buf) != w * h * 3:
                    raise InputError(
                        f"video {path.name}: frame {index} has {len(buf)} bytes, expected {w * h * 3}"
                    )
                rgb = np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
                yield Frame(name=f"{stem}-{index:06d}", hr=to_float_rgb(rgb), sequence=path.name)
                kept += 1
                if max_frames is not None and kept >= max_frames:
                    return
            index += 1
    finally:
        gen.close()
    expected = _expected_frames(meta)
    if expected is not None and index < 0.95 * expected - 1:
        raise InputError(
            f"video {path.name} ended after {index} frames of the ~{expected} its header announces "
            "(truncated or corrupt file?)"
        )
    if kept == 0:
        raise InputError(
            f"video {path.name} gave no frames (decoded {index}, start_frame={start_frame}, every_nth={every_nth})"
        )


def iter_clip_frames(
    name: str, *, max_frames: int | None = None, every_nth: int = 1, start_frame: int = 0
) -> Iterator[Frame]:
    """Frames of a real clip unpacked at set-up (:mod:`perflab.quality.clips`), as
    :func:`iter_video_frames` gives them; a clip not unpacked is an :class:`InputError` saying
    how to get it."""
    why = clip_missing(name)
    if why is not None:
        raise InputError(why)
    return iter_video_frames(clip_path(name), max_frames=max_frames, every_nth=every_nth, start_frame=start_frame)


def write_video(
    path: Path,
    frames: Iterator[npt.NDArray[np.floating]] | Sequence[npt.NDArray[np.floating]],
    *,
    fps: float,
    quality: float | None = 8.0,
    codec: str = "libx264",
    pix_fmt_out: str = "yuv420p",
    output_params: Sequence[str] = (),
) -> int:
    """Encode float RGB frames (all one size) to a video file with imageio-ffmpeg's ffmpeg.

    Streams: one frame at a time goes down ffmpeg's pipe. Returns the number of frames.
    ``quality`` 0–10 (10 best); ``pix_fmt_out='yuv444p'`` keeps chroma at full resolution.
    """
    import imageio_ffmpeg

    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise MeasurementError(f"no frames to write to {path}") from None
    h, w = first.shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        quality=quality,
        codec=codec,
        pix_fmt_out=pix_fmt_out,
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=list(output_params) or None,
    )
    writer.send(None)
    n = 0
    try:
        for frame in chain([first], it):
            if frame.shape[:2] != (h, w):
                raise MeasurementError(f"frame {n} is {frame.shape[1]}×{frame.shape[0]}, expected {w}×{h}")
            u8 = np.clip(np.rint(np.asarray(frame, dtype=np.float32)[..., :3] * 255.0), 0, 255).astype(
                np.uint8
            )
            writer.send(np.ascontiguousarray(u8).tobytes())
            n += 1
    finally:
        writer.close()
    return n
