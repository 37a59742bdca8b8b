"""Kept video and VMAF in a run: the HR reference is kept by the prepass (perflab.lab.inputs),
each cell's outputs by its quality pass (perflab.lab.cell); VMAF of a cell is computed from
exactly these files (perflab.quality.video), so ``ffmpeg -lavfi libvmaf`` on them gives the
same numbers. Nothing here stops a cell: a missing ffmpeg or libvmaf, or a failed encode,
makes the video or VMAF missing with its reason."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perflab.errors import MeasurementError
from perflab.quality.video import VIDEO_FORMAT, VMAF_MODEL, KeptVideo, run_vmaf
from perflab.store.results import KeptVideoRecord, VideoSegmentRecord
from perflab.store.runfolder import RunFolder

DEFAULT_FPS = 30.0  # the kept files' frame rate when the scenario sets no pacing fps


class StreamKeeper:
    """One stream (the HR reference or a cell's outputs) kept under ``videos/<group>/``, failing
    soft: the first error stops keeping, removes the stream's files and becomes ``missing``."""

    def __init__(self, folder: RunFolder, group: str, *, max_frames: int, fps: float | None) -> None:
        self.folder = folder
        self.fps = fps or DEFAULT_FPS
        self.max_frames = max_frames
        self._video = KeptVideo(folder.video_group(group), fps=self.fps, max_frames=max_frames)
        self._why: str | None = None if max_frames > 0 else "outputs.video_frames is 0 in the scenario"
        self.seen = 0

    def add(self, name: str, rgb01: np.ndarray, sequence: str | None) -> None:
        """One frame of clip ``sequence`` (None: a still image; see perflab.quality.video.KeptVideo)."""
        self.seen += 1
        if self._why is not None or self._video.full:
            return
        try:
            self._video.add(name, rgb01, sequence)
        except MeasurementError as exc:
            self._fail(str(exc))

    def _fail(self, why: str) -> None:
        self._why = f"video not kept: {why}"
        self._video.abort()

    def abort(self) -> None:
        self._video.abort()

    def finish(self) -> KeptVideoRecord:
        segments = []
        if self._why is None:
            try:
                segments = self._video.close()
            except MeasurementError as exc:
                self._fail(str(exc))
        if self._why is not None:
            segments = []
        return KeptVideoRecord(
            format=VIDEO_FORMAT, fps=self.fps, frames=sum(len(s.frames) for s in segments),
            segments=[VideoSegmentRecord(file=self.folder.relative(s.path), first_frame=s.first_frame,
                                         frames=list(s.frames), width=s.width, height=s.height) for s in segments],
            missing=self._why)


@dataclass(frozen=True)
class VmafOutcome:
    scores: dict[str, float]  # frame name → VMAF
    model: str | None  # "vmaf_v0.6.1 (libvmaf <version>)"
    why: str | None  # why VMAF is missing (for every frame)


def cell_vmaf(folder: RunFolder, reference: KeptVideoRecord | None, kept: KeptVideoRecord, *,
              threads: int, timeout_s: float) -> VmafOutcome:
    """VMAF of each kept segment of a cell against the reference's segment of the same index;
    the logs stay beside the files (``<seg>.vmaf.json``)."""
    if kept.missing or not kept.segments:
        return VmafOutcome({}, None, kept.missing or "no output frames kept as video")
    if reference is None or reference.missing or not reference.segments:
        why = reference.missing if reference is not None and reference.missing else "no HR reference video kept"
        return VmafOutcome({}, None, why)
    scores: dict[str, float] = {}
    version: str | None = None
    ref_of = {name: r for r in reference.segments for name in r.frames}
    try:
        for seg in kept.segments:
            if not any(n in ref_of for n in seg.frames):
                continue  # frames of an LR-only input: no reference, no VMAF (rules.quality says so per frame)
            ref = ref_of.get(seg.frames[0])
            # the reference may hold more frames of the clip than the cell kept (libvmaf stops with the outputs)
            if ref is None or ref.frames[:len(seg.frames)] != seg.frames or \
                    (ref.width, ref.height) != (seg.width, seg.height):
                raise MeasurementError(f"{seg.file} does not match its reference segment (frames or size differ)")
            log = run_vmaf(folder.path / seg.file, folder.path / ref.file, folder.vmaf_log(seg.file).path,
                           threads=threads, timeout_s=timeout_s, expect_frames=len(seg.frames))
            version = version or log.version
            scores.update(zip(seg.frames, log.scores, strict=True))
    except MeasurementError as exc:
        return VmafOutcome({}, None, f"VMAF not computed: {exc}")
    return VmafOutcome(scores, f"{VMAF_MODEL} (libvmaf {version or 'version not logged'})", None)
