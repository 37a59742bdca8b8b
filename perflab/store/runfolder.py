"""Run folders: ``reports/<scenario>/<run-id>/``. :class:`RunFolder` is the one owner of every
path in it, and this module holds the one reader of each file perflab writes there::

    results.json                      perflab.results/N (perflab.store.results.RunRecord)
    samples.csv                       cell_id,series,iteration,latency_ms — one row per raw inference
    frames/hr/<frame>.png             HR ground truth
    frames/lr/<frame>.png             LR input given to every model
    frames/<cell dir>/<frame>.png     the device's output for that cell
    videos/hr/<seg>.mkv               HR reference kept as lossless video (FFV1), segment <seg> (000, 001, …)
    videos/<cell dir>/<seg>.mkv       the cell's outputs for the same frames (bicubic is a cell)
    videos/<cell dir>/<seg>.vmaf.json libvmaf's per-frame log of that segment against videos/hr/<seg>.mkv
    logs/<cell dir>.log               the device tool's output (.traceback.txt: an internal error;
                                      .trace.log: the traced run's, the per-layer trace pass)
    telemetry/<cell dir>.txt          the sampler's raw timeline (.meter.txt: an external meter's
                                      samples, .sustained<i>.txt: a sustained run's parts)
    telemetry/<serial>.idle.txt       the device at rest
    traces/<cell dir>.trace           a kernel trace (the per-layer trace pass)
    traces/<cell dir>.<series>.timing.trace   a phone's traced timing series
    .work/<serial>/                   scratch space, removed at the end of the run

``<cell dir>`` is ``artifact_dir(artifact_key)`` (perflab.store.results). Results are written
after every cell (atomically: write a temp file, then rename), so a run that dies keeps
everything measured up to that point.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import re
import secrets
import shutil
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import ValidationError

from perflab.core.files import file_kind, open_regular
from perflab.core.names import one_line
from perflab.errors import StoreError, UserInputError
from perflab.store.results import (
    READABLE_SCHEMA_VERSIONS,
    RESULTS_SCHEMA,
    RESULTS_SCHEMA_VERSION,
    RunRecord,
    artifact_dir,
    upgrade_raw,
)

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.csv"
SAMPLES_HEADER = ("cell_id", "series", "iteration", "latency_ms")
SAMPLE_SERIES = ("paced", "back_to_back", "warmup")
HR, LR = "hr", "lr"  # the frames/ groups of the inputs; every other group is a cell's outputs

SampleRow = tuple[str, str, int, float]  # cell_id (the cell's artifact_key), series, iteration, latency_ms
# cell_id → series → latency samples in ms, ordered by iteration
Samples = dict[str, dict[str, list[float]]]


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _atomic_write(path: Path, text: str) -> None:
    """Write then rename; the temp name is unique per process *and thread*, so writers in two
    device threads never rename each other's file away."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def check_new_run_folder(path: Path) -> None:
    """``path`` can become a new run folder: it does not exist yet, or is an empty folder.
    Anything else (a file, a device such as /dev/null, a folder with files) is a one-line
    UserInputError that says which, and what to do."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserInputError(f"{path}: --out: cannot be used as the run folder: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(mode):
        raise UserInputError(f"{path}: --out: is {file_kind(mode)}, not a folder; name a new folder for the run")
    try:
        empty = not any(path.iterdir())
    except OSError as exc:
        raise UserInputError(f"{path}: --out: cannot read the folder: {exc.strerror or exc}") from None
    if not empty:
        raise UserInputError(f"{path}: --out: the folder is not empty; use `perflab run --resume {path}` to "
                             "finish the run in it, or choose a new folder")


def is_run_folder(path: Path) -> bool:
    """The folder holds a run's results.json."""
    return (path / RESULTS_FILE).is_file()


def find_run_folders(root: Path, max_depth: int) -> list[Path]:
    """The run folders 1 to ``max_depth`` levels under ``root`` (a night, a scenario's reports), sorted."""
    return sorted({f.parent for depth in range(1, max_depth + 1)
                   for f in root.glob("/".join(["*"] * depth) + "/" + RESULTS_FILE)})


@dataclass(frozen=True)
class Artefact:
    """A file of the run folder: its path relative to the folder (what results.json stores) and
    on disk."""

    rel: str
    path: Path


@dataclass
class RunFolder:
    """One run folder: every path in it comes from here, nowhere else."""

    path: Path
    #: samples.csv is appended to by several device threads: one writer at a time
    _samples_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def create(cls, path: Path) -> RunFolder:
        """A new run folder. A folder that already holds files is refused (two runs would mix
        their samples): finish that run with ``--resume`` or choose another folder."""
        check_new_run_folder(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / "logs").mkdir(exist_ok=True)
            with (path / "samples.csv").open("w", newline="") as f:
                csv.writer(f).writerow(SAMPLES_HEADER)
        except OSError as exc:
            raise UserInputError(f"{path}: --out: cannot create the run folder: {exc.strerror or exc}") from exc
        return cls(path)

    @classmethod
    def open_for_resume(cls, path: Path) -> RunFolder:
        """An existing run folder, to measure the cells that are not ok again."""
        folder = cls(path)
        if not folder.results_path.is_file():
            raise UserInputError(f"{path}: --resume: no results.json here; is it a perflab run folder?")
        try:
            (path / "logs").mkdir(exist_ok=True)
            if not folder.samples_path.exists():
                with folder.samples_path.open("w", newline="") as f:
                    csv.writer(f).writerow(SAMPLES_HEADER)
        except OSError as exc:
            raise UserInputError(f"{path}: --resume: cannot write to the run folder: {exc.strerror or exc}") from exc
        return folder

    def drop_samples(self, keys: set[str]) -> None:
        """Remove the sample rows of cells that are measured again (a resume), atomically."""
        if not keys or not self.samples_path.exists():
            return
        with self.samples_path.open(newline="") as f:
            rows = list(csv.reader(f))
        kept = [r for r in rows[1:] if r and r[0] not in keys]
        if len(kept) == len(rows) - 1:
            return
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(SAMPLES_HEADER)
        w.writerows(kept)
        _atomic_write(self.samples_path, buf.getvalue())

    def work_dir(self, serial: str) -> Path:
        """Scratch space of one device's workload, inside the run folder (removed at the end)."""
        d = self.path / ".work" / artifact_dir(serial)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def clean_work(self) -> None:
        shutil.rmtree(self.path / ".work", ignore_errors=True)

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_FILE

    @property
    def samples_path(self) -> Path:
        return self.path / SAMPLES_FILE

    @property
    def frames_dir(self) -> Path:
        return self.path / "frames"

    @property
    def videos_dir(self) -> Path:
        return self.path / "videos"

    def video_group(self, group: str) -> Path:
        """The folder of one kept video stream: ``videos/hr`` (:data:`HR`) or a cell's frame group."""
        return self.videos_dir / group

    def vmaf_log(self, video_file: str) -> Artefact:
        """libvmaf's JSON log of a kept segment (``video_file`` relative to the run folder)."""
        return self._file(str(Path(video_file).with_suffix(".vmaf.json")))

    def relative(self, path: Path) -> str:
        """A path inside the run folder as results.json stores it (POSIX, relative)."""
        return path.relative_to(self.path).as_posix()

    def _file(self, rel: str) -> Artefact:
        return Artefact(rel, self.path / rel)

    def timeline(self, key: str) -> Artefact:
        """The sampler's raw timeline of a cell's headline series (``key``: its artifact_key)."""
        return self._file(f"telemetry/{artifact_dir(key)}.txt")

    def meter_raw(self, key: str) -> Artefact:
        """An external meter's samples during a cell's headline series."""
        return self._file(f"telemetry/{artifact_dir(key)}.meter.txt")

    def sustained_timeline(self, key: str, part: int) -> Artefact:
        return self._file(f"telemetry/{artifact_dir(key)}.sustained{part}.txt")

    def idle_timeline(self, serial: str) -> Artefact:
        return self._file(f"telemetry/{artifact_dir(serial)}.idle.txt")

    def trace(self, key: str) -> Artefact:
        return self._file(f"traces/{artifact_dir(key)}.trace")

    def timing_trace(self, key: str, series: str) -> Artefact:
        """The kernel trace of a phone's timed series (its per-run samples: perflab.lab.phone_timing)."""
        return self._file(f"traces/{artifact_dir(key)}.{series}.timing.trace")

    def trace_log(self, key: str) -> Artefact:
        """The traced run's own tool output (the per-layer trace pass): its count and mean are
        what the trace's latency is checked against."""
        return self._file(f"logs/{artifact_dir(key)}.trace.log")

    def cell_log(self, key: str) -> Artefact:
        return self._file(f"logs/{artifact_dir(key)}.log")

    def traceback_log(self, key: str) -> Artefact:
        return self._file(f"logs/{artifact_dir(key)}.traceback.txt")

    def trace_files(self) -> list[Path]:
        """Every kernel trace the run saved (per-layer and timing traces), by name."""
        return sorted((self.path / "traces").glob("*.trace"))

    def timeline_files(self) -> list[Path]:
        """Every raw sampler or meter timeline the run saved, by name."""
        return sorted((self.path / "telemetry").glob("*.txt"))

    def frame_group(self, key: str) -> str:
        """The frames/ group of a cell's outputs."""
        return artifact_dir(key)

    def read_results(self) -> RunRecord:
        return load_run(self.path)

    def read_samples(self) -> list[SampleRow]:
        return read_samples(self.samples_path)

    def write_results(self, run: RunRecord) -> None:
        _atomic_write(self.results_path, run.to_json() + "\n")

    def append_samples(self, cell_id: str, series: str, samples_ms: Iterable[float]) -> None:
        with self._samples_lock, self.samples_path.open("a", newline="") as f:
            w = csv.writer(f)
            for i, v in enumerate(samples_ms):
                w.writerow((cell_id, series, i, f"{v:.6f}"))

    def write_log(self, log: Artefact, text: str) -> Path:
        log.path.parent.mkdir(parents=True, exist_ok=True)
        log.path.write_text(text, encoding="utf-8")
        return log.path

    def save_frame(self, group: str, name: str, rgb01: np.ndarray) -> Path:
        d = self.frames_dir / group
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{name}.png"
        Image.fromarray(np.clip(np.rint(rgb01 * 255.0), 0, 255).astype(np.uint8)).save(p)
        return p


MAX_RESULTS_BYTES = 1 << 30
"""Largest results.json read (1 GiB); a run of thousands of cells is a few megabytes."""


class _NotFinite(ValueError):
    def __init__(self, token: str) -> None:
        self.token = token
        super().__init__(token)


def _reject_constant(token: str) -> float:
    raise _NotFinite(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):  # 1e999 overflows to inf
        raise _NotFinite(token)
    return value


def _line_of_token(text: str, token: str) -> int | None:
    """Line of the first ``token`` in value position (after ``:``, ``[`` or ``,``), if any."""
    m = re.search(r"[:\[,]\s*" + re.escape(token) + r"(?![A-Za-z0-9_])", text)
    return text.count("\n", 0, m.end()) + 1 if m else None


def _decode_results(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise StoreError(f"{source}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x})") from None


def parse_results_json(text: str | bytes, source: str = "results.json") -> RunRecord:
    """results.json text (or its bytes) → RunRecord; every problem is a one-line StoreError
    naming the file, the JSON line where JSON gives one, or the field. Reads every schema
    version in ``READABLE_SCHEMA_VERSIONS`` (older ones upgraded); a newer one is refused
    with one line saying so."""
    if isinstance(text, bytes):
        text = _decode_results(text, source)
    try:
        raw = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise StoreError(f"{source}:{e.lineno}: not valid JSON: {e.msg}") from None
    except _NotFinite as e:
        line = _line_of_token(text, e.token)
        where = f"{source}:{line}" if line is not None else source
        raise StoreError(f"{where}: {e.token} is not a number JSON allows (results hold finite numbers or null)") from None
    except RecursionError:
        raise StoreError(f"{source}: JSON nested too deeply to be a perflab results file") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise StoreError(f"{source}: not a perflab results file ({one_line(str(e), 120)})") from None
    if not isinstance(raw, dict):
        raise StoreError(f"{source}: expected a JSON object at the top level, got {type(raw).__name__}")
    schema = raw.get("schema")
    prefix = "perflab.results/"
    version_text = schema[len(prefix):] if isinstance(schema, str) and schema.startswith(prefix) else ""
    if not (version_text.isascii() and version_text.isdigit() and len(version_text) <= 6):
        shown = one_line(repr(schema), 80)
        raise StoreError(f"{source}: schema is {shown}; not a perflab results file")
    version = int(version_text)
    if version > RESULTS_SCHEMA_VERSION:
        raise StoreError(f"{source}: written by a newer perflab (schema {schema}); this perflab reads up to "
                         f"{RESULTS_SCHEMA}: upgrade perflab")
    if version not in READABLE_SCHEMA_VERSIONS:
        raise StoreError(f"{source}: schema {schema} is no longer readable; this perflab reads "
                         + ", ".join(f"perflab.results/{v}" for v in READABLE_SCHEMA_VERSIONS))
    try:
        return RunRecord.model_validate(upgrade_raw(raw, version))
    except ValidationError as e:
        first = e.errors()[0]
        loc = one_line(".".join(str(p) for p in first["loc"]), 120)
        raise StoreError(
            f"{source}: {loc}: {one_line(str(first['msg']), 200)} ({e.error_count()} error(s))"
        ) from None
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as e:
        # upgrade_raw met a shape no perflab wrote
        raise StoreError(f"{source}: not a perflab.results/{version} file ({type(e).__name__}: "
                         f"{one_line(str(e), 120)})") from None


def load_run(path: Path) -> RunRecord:
    """Read results.json of a run folder (or the file itself) and check its schema."""
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        with open_regular(file) as f:  # never blocks on a named pipe
            data = f.read(MAX_RESULTS_BYTES + 1)
    except UserInputError as exc:
        raise StoreError(str(exc)) from None
    except OSError as exc:
        raise StoreError(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(data) > MAX_RESULTS_BYTES:
        raise StoreError(f"{file}: larger than {MAX_RESULTS_BYTES} bytes; not a perflab results file")
    return parse_results_json(data, str(file))


def read_samples(path: Path) -> list[SampleRow]:
    """Rows of samples.csv (a run folder or the file); none when the file is absent. A damaged
    file is a one-line StoreError naming its line (:func:`parse_samples_csv`)."""
    file = path / SAMPLES_FILE if path.is_dir() else path
    if not file.exists():
        return []
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read {file}: {exc.strerror or exc}") from None
    return parse_samples_csv(data, str(file))


def parse_samples_csv(text: str | bytes, source: str = "samples.csv") -> list[SampleRow]:
    """samples.csv text → its rows, in file order (pure; the one reader of the file). Rejected,
    each as a one-line StoreError naming the line: not UTF-8, not CSV, another header, a row
    without 4 columns, a series other than :data:`SAMPLE_SERIES`, an iteration or latency that
    is not a number, a latency that is not finite or is negative. An empty text has no rows."""
    if isinstance(text, bytes):
        text = _decode_results(text, source)
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    out: list[SampleRow] = []
    try:
        header = next(reader, None)
        if header is None:
            return []
        if tuple(h.strip() for h in header) != SAMPLES_HEADER:
            raise StoreError(f"{source}:1: header is {one_line(','.join(header), 120)!r}; expected "
                             f"{','.join(SAMPLES_HEADER)!r}")
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 4:
                raise StoreError(f"{source}:{line}: expected 4 columns, got {len(row)}")
            cell_id, series, it_text, lat_text = (c.strip() for c in row)
            if series not in SAMPLE_SERIES:
                raise StoreError(f"{source}:{line}: series {one_line(series, 40)!r} is not one of "
                                 f"{', '.join(SAMPLE_SERIES)}")
            try:
                iteration, latency_ms = int(it_text), float(lat_text)
            except ValueError:
                raise StoreError(f"{source}:{line}: iteration/latency_ms not numeric: "
                                 f"{one_line(it_text, 40)!r}, {one_line(lat_text, 40)!r}") from None
            if not math.isfinite(latency_ms) or latency_ms < 0:
                raise StoreError(f"{source}:{line}: latency_ms must be a finite number ≥ 0, got "
                                 f"{one_line(lat_text, 40)!r}")
            out.append((cell_id, series, iteration, latency_ms))
    except csv.Error as exc:
        raise StoreError(f"{source}:{reader.line_num}: not CSV: {one_line(str(exc), 120)}") from None
    return out


def samples_by_cell(rows: Iterable[SampleRow]) -> Samples:
    """Rows → latency samples per cell and series, ordered by iteration."""
    acc: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for cell_id, series, iteration, latency_ms in rows:
        acc.setdefault(cell_id, {}).setdefault(series, []).append((iteration, latency_ms))
    return {cell: {series: [v for _, v in sorted(pairs, key=lambda p: p[0])] for series, pairs in by_series.items()}
            for cell, by_series in acc.items()}
