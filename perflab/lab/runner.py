"""Run a scenario: plan → for each device (in parallel), each cell (in order) → store → report.

A failing cell never kills the run: every cell ends as a record with a status and a reason.
Results are written after each cell, so an interrupted run keeps what it measured. A stop
request (first Ctrl-C or SIGTERM, see perflab.lab.lifecycle) cancels the running cell, marks
the cells that did not finish ``interrupted``, restores every device and still writes the final
results. ``resume`` measures only the cells of an earlier run that are not ok.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import platform
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from perflab import __version__
from perflab.analysis.stats import (
    StabilityThresholds,
    SummaryOnly,
    stability_warnings,
    summarize,
    summary_stability_warnings,
)
from perflab.core.types import ModelArtifact, SeriesMode, TimingRequest, TimingResult
from perflab.devices.base import Device, DeviceInfo
from perflab.devices.capabilities import HostDevice
from perflab.errors import (
    DeviceGoneError,
    DeviceNotReadyError,
    MeasurementError,
    PerflabError,
    RunInterrupted,
    UnsupportedError,
    UserInputError,
)
from perflab.lab.compat import model_compat
from perflab.lab.costs import (
    idle_baseline,
    measure_during,
    sustained_applies,
    sustained_run,
    sustained_warnings,
    telemetry_fields,
)
from perflab.lab.lifecycle import EXIT_SIGINT, EXIT_SIGTERM, StopController
from perflab.lab.meters import MeterOutcome, meter_plan, unmatched_meter_warnings
from perflab.lab.models import resolve_artifact
from perflab.lab.phone_timing import TimingTrace, traced, with_trace_samples
from perflab.lab.progress import Phase, Progress, QuietProgress
from perflab.quality.frames import Frame, crop_to_multiple, hr_to_lr, quantize_8bit, resize_bicubic
from perflab.rules.derive import finalize_cells
from perflab.rules.device import EMULATED_NOTE, is_emulated
from perflab.scenario.loader import LoadedScenario
from perflab.scenario.plan import CellSpec, plan_cells
from perflab.scenario.schema import Sustained
from perflab.store.results import (
    CellRecord,
    CellStatus,
    DelegateRecord,
    DeviceRecord,
    FrameQuality,
    IdleRecord,
    LatencyRecord,
    ModelRecord,
    PlannedCell,
    QualityRecord,
    RunRecord,
    ScenarioRecord,
    StopRecord,
    SustainedRecord,
    TelemetryRecord,
    WarningRecord,
    artifact_key,
)
from perflab.store.runfolder import RunFolder, new_run_id, utc_now_iso
from perflab.telemetry.summary import Summary
from perflab.workloads import Workload, workload_for

log = logging.getLogger("perflab.run")
_T = TypeVar("_T")

RESTORE_WAIT_S = 60.0
RECONNECT_WAIT_S = 60.0  # how long a dropped phone is waited for before its cells fail
QUALITY_CHUNK_FRAMES = 8  # frames per run_outputs call: bounds memory for long clips
SAVED_FRAMES = 4  # frames per cell kept as PNG for visual comparison


@dataclass
class RunOutcome:
    run: RunRecord
    folder: RunFolder
    exit_code: int


@dataclass(frozen=True)
class RunOptions:
    reconnect_wait_s: float = RECONNECT_WAIT_S


def device_record(info: DeviceInfo) -> DeviceRecord:
    return DeviceRecord(
        serial=info.serial, kind=info.kind.value, model=info.model, soc=info.soc, abi=info.abi, sdk=info.sdk,
        fingerprint=info.fingerprint, rooted=info.rooted, tflite_version=info.tflite_version, extra=dict(info.extra),
    )


def latency_record(t: TimingResult, fps: float | None) -> LatencyRecord:
    """TimingResult → LatencyRecord; raw samples when present, else the tool's summary."""
    missing = dict(t.missing)
    warm = float(np.mean(t.warmup_ms)) if t.warmup_ms else t.warmup_mean_ms
    base: dict[str, Any] = {"mode": t.mode.value, "fps_target": fps, "init": t.init_ms, "first": t.first_ms,
                            "warmup_mean": warm}
    if t.samples_ms:
        s = summarize(t.samples_ms)
        return LatencyRecord(
            **base, source=f"raw samples: {t.samples_source}" if t.samples_source else "raw samples",
            median=s.median_ms, mean=s.mean_ms, p10=s.p10_ms, p90=s.p90_ms, p95=s.p95_ms, p99=s.p99_ms, min=s.min_ms,
            max=s.max_ms, std=s.std_ms, mad=s.mad_ms, cv_pct=s.cv_pct, n=s.n,
            missing={k: v for k, v in missing.items() if k in ("init", "first", "warmup_mean")},
        )
    if t.summary is not None:
        sm = t.summary
        why = "the device tool reports only count/avg/std/min/max, not raw per-run samples"
        for k in ("median", "p90", "p95", "p99", "mad"):
            missing.setdefault(k, why)
        cv = (sm.std_ms / sm.mean_ms * 100.0) if sm.std_ms is not None and sm.mean_ms > 0 else None
        return LatencyRecord(**base, source="tool summary", mean=sm.mean_ms, std=sm.std_ms, min=sm.min_ms,
                             max=sm.max_ms, cv_pct=cv, n=sm.count, missing=missing)
    missing.setdefault("median", "no timing samples were produced")
    return LatencyRecord(**base, source="none", n=0, missing=missing)


def delegate_records(lines: Sequence[str]) -> list[DelegateRecord]:
    """The device tool's delegate lines as structured records (parsed once, at run time)."""
    from perflab.formats.benchmark_output import Coverage, parse_output

    out: list[DelegateRecord] = []
    for line in lines:
        if line.startswith("ops: "):
            out.append(DelegateRecord(kind="ops", line=line, ops=line[5:].split()))
            continue
        parsed = parse_output(line)
        if parsed.replacements:
            r = parsed.replacements[0]
            out.append(DelegateRecord(kind="replaced", line=line, delegate=r.delegate_node, replaced=r.replaced,
                                      total=r.total, partitions=r.partitions))
        elif parsed.delegates:
            d = parsed.delegates[0]
            out.append(DelegateRecord(kind="not_applied" if d.coverage is Coverage.NONE else "applied", line=line,
                                      delegate=d.delegate, coverage=d.coverage.value,
                                      delegate_kernels=d.delegate_kernels))
        else:
            out.append(DelegateRecord(kind="line", line=line))
    return out


@dataclass
class _CellParts:
    """What one cell's measurement gathers before its record is built once."""

    series: dict[str, LatencyRecord] = field(default_factory=dict)
    warnings: list[WarningRecord] = field(default_factory=list)
    delegate_lines: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    tel: dict[str, Any] = field(default_factory=dict)
    tel_missing: dict[str, str] = field(default_factory=dict)
    cost: Summary | None = None
    cost_why: str | None = None
    meter: MeterOutcome | None = None


class ScenarioRunner:
    def __init__(
        self,
        loaded: LoadedScenario,
        devices: Sequence[Device],
        folder: RunFolder,
        run_id: str,
        frame_source: Callable[[], Iterator[Frame]],
        *,
        progress: Progress | None = None,
        stop: StopController | None = None,
        previous: RunRecord | None = None,
        options: RunOptions = RunOptions(),
        run_warnings: Sequence[WarningRecord] = (),
    ) -> None:
        self.loaded = loaded
        self.s = loaded.scenario
        self.devices = list(devices)
        self.folder = folder
        self.run_id = run_id
        self.frame_source = frame_source
        self.progress = progress or QuietProgress(lambda rec: "")
        self.stop = stop or StopController()
        self.previous = previous
        self.options = options
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        text = loaded.source_text
        self.cells: list[CellRecord] = list(previous.cells) if previous else []
        self.planned: list[PlannedCell] = []
        self.devices_rec: list[DeviceRecord] = list(previous.devices) if previous else []
        self.idle: list[IdleRecord] = list(previous.idle) if previous else []
        self.header: dict[str, Any] = {
            "perflab_version": __version__,
            "run_id": run_id,
            "scenario": ScenarioRecord(
                name=self.s.name, file=str(loaded.file), sha256=hashlib.sha256(text.encode()).hexdigest(), text=text,
                lr_width=self.s.geometry.lr_width, lr_height=self.s.geometry.lr_height, scale=self.s.geometry.scale,
                fps=self.s.pacing.fps,
            ),
            "started_utc": previous.started_utc if previous else utc_now_iso(),
            "host": {"hostname": platform.node(), "python": platform.python_version(), "platform": platform.platform()},
            "resumed_utc": [*previous.resumed_utc, utc_now_iso()] if previous else [],
        }
        merged = list(previous.warnings) if previous else []
        merged.extend(w for w in run_warnings if w not in merged)
        merged.extend(w for w in unmatched_meter_warnings(self.s.telemetry.meter_specs(),
                                                          [d.serial for d in self.devices]) if w not in merged)
        merged.extend(w for w in sustained_warnings(self.s.sustained, plan_cells(self.s)) if w not in merged)
        self.run_warnings = merged
        self.timing_frame: np.ndarray | None = None
        self.n_devices = len({*(d.serial for d in self.devices), *(p.serial for p in previous.planned)}
                             if previous else {d.serial for d in self.devices})

    # -- records ---------------------------------------------------------------------------

    def snapshot(self, *, finished: bool = False, exit_code: int | None = None) -> RunRecord:
        with self._lock:
            cells = list(self.cells)
        stop = None
        if self.stop.stopped:
            stop = StopRecord(signal=self.stop.signal_name, reason=self.stop.reason or "stopped", at_utc=utc_now_iso())
        return RunRecord(
            **self.header, devices=list(self.devices_rec), planned=list(self.planned), cells=cells,
            warnings=list(self.run_warnings), idle=list(self.idle), stop=stop,
            finished_utc=utc_now_iso() if finished else None, exit_code=exit_code,
        )

    def _save(self) -> None:
        with self._write_lock:  # device threads save in turn: the newest snapshot is written last
            self.folder.write_results(self.snapshot())

    def _add_cell(self, rec: CellRecord) -> None:
        with self._lock:
            self.cells = [c for c in self.cells if (c.device.serial, c.cell_id) != (rec.device.serial, rec.cell_id)]
            self.cells.append(rec)
        self._save()
        self.progress.cell_done(rec)

    # -- frames ----------------------------------------------------------------------------

    def _timing_frame(self, first: Frame) -> np.ndarray:
        """A real LR frame at the scenario's geometry: the first input, resized to the HR size,
        then degraded by the documented HR→LR kernel."""
        g = self.s.geometry
        hr = first.hr
        if hr.shape[:2] != (g.hr_height, g.hr_width):
            hr = np.clip(resize_bicubic(hr, g.hr_width, g.hr_height), 0.0, 1.0)
        return hr_to_lr(hr, g.scale)

    def _frames(self) -> Generator[tuple[int, Frame, np.ndarray], None, None]:
        """(index, HR frame cropped to a multiple of the scale, its LR frame), streamed."""
        scale = self.s.geometry.scale
        for i, f in enumerate(self.frame_source()):
            hr = crop_to_multiple(f.hr, scale)
            yield i, Frame(f.name, hr), hr_to_lr(hr, scale)

    def _prepass(self) -> None:
        """One pass over the inputs before any cell: the timing frame, and HR/LR frames saved."""
        n_frames = 0
        try:
            for i, f, lr in self._frames():
                if i == 0:
                    self.timing_frame = self._timing_frame(f)
                if i < SAVED_FRAMES:
                    self.folder.save_frame("hr", f.name, f.hr)
                    self.folder.save_frame("lr", f.name, lr)
                n_frames += 1
        except MeasurementError as exc:
            raise UserInputError(f"{self.loaded.file}: inputs: {exc}") from exc
        if n_frames == 0:
            raise UserInputError(f"{self.loaded.file}: inputs: the scenario's inputs gave no frames")

    # -- the run ---------------------------------------------------------------------------

    def _to_run(self, serial: str, cells: list[CellSpec]) -> list[CellSpec]:
        if self.previous is None:
            return cells
        ok = {c.cell_id for c in self.previous.cells if c.device.serial == serial and c.status == CellStatus.OK}
        return [c for c in cells if c.cell_id not in ok]

    def execute(self) -> RunOutcome:
        cells = plan_cells(self.s)
        infos: dict[str, DeviceRecord] = {}
        for d in self.devices:
            try:
                infos[d.serial] = device_record(d.info())
            except PerflabError as exc:
                infos[d.serial] = DeviceRecord(serial=d.serial, kind="unknown", model=f"unreachable: {exc}")
        known = {r.serial for r in infos.values()}
        self.devices_rec = [*(r for r in self.devices_rec if r.serial not in known), *infos.values()]
        previous_plan = list(self.previous.planned) if self.previous else []
        self.planned = previous_plan + [PlannedCell(serial=d.serial, cell_id=c.cell_id) for d in self.devices
                                        for c in cells if PlannedCell(serial=d.serial, cell_id=c.cell_id)
                                        not in previous_plan]
        self._prepass()
        work = {d.serial: self._to_run(d.serial, cells) for d in self.devices}
        self.folder.drop_samples({artifact_key(s, c.cell_id, self.n_devices) for s, cs in work.items() for c in cs})
        self._save()
        self.progress.start()
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(self.devices)), thread_name_prefix="dev") as pool:
                futures = [pool.submit(self._run_device, d, infos[d.serial], work[d.serial]) for d in self.devices]
                pending = set(futures)
                while pending:  # short waits keep the main thread free to take signals
                    _, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                for fut in futures:
                    fut.result()
        finally:
            self.progress.stop()
        with self._lock:
            self.cells = finalize_cells(self.cells, self.s.pacing.fps, self.idle)
        exit_code = self._exit_code()
        run = self.snapshot(finished=True, exit_code=exit_code)
        self.folder.write_results(run)
        self.folder.clean_work()
        return RunOutcome(run, self.folder, exit_code)

    def _exit_code(self) -> int:
        """128 + the signal when stopped by one (130 SIGINT, 143 SIGTERM); 1 when a cell failed."""
        if self.stop.stopped:
            return EXIT_SIGTERM if self.stop.signal_name == "SIGTERM" else EXIT_SIGINT
        return 1 if any(c.status == CellStatus.FAILED for c in self.cells) else 0

    def _interrupted(self, cell: CellSpec, info: DeviceRecord, why: str) -> CellRecord:
        return self._skeleton(cell, info, None, CellStatus.INTERRUPTED, why)

    def _run_device(self, device: Device, info: DeviceRecord, cells: list[CellSpec]) -> None:
        total = len(cells)
        self.progress.plan(device.serial, f"{info.model} ({device.serial})", total)
        if not cells:
            return
        workload = workload_for(device, self.folder.work_dir(device.serial))
        with self.stop.cancelling(workload.cancel), self.stop.restoring(device.restore):
            self._drive_device(device, info, workload, cells)

    def _prepare(self, device: Device, info: DeviceRecord, workload: Workload, first: CellSpec) -> tuple[bool, str | None]:
        """Tune the device and check its workload once. (prepared, why no cell can run)."""
        if info.kind == "unknown":
            return False, f"device unreachable: {info.model}"
        self.progress.phase(device.serial, 1, first.cell_id, Phase.PREPARE)
        prepared = False
        try:
            device.prepare(self.run_id)
            prepared = True
            workload.check_ready()
        except DeviceNotReadyError as exc:
            self.progress.note(f"perflab: [{device.serial}] cannot run any cell: {exc}")
            return prepared, str(exc)
        except RunInterrupted:
            return prepared, None
        except PerflabError as exc:
            return prepared, f"device could not be prepared: {exc}"
        tel = self.s.telemetry
        if tel.enabled and tel.idle_baseline_s > 0 and not any(r.serial == device.serial for r in self.idle):
            self.progress.phase(device.serial, 1, first.cell_id, Phase.IDLE)
            idle = self.folder.idle_timeline(device.serial)
            rec = idle_baseline(device, self.folder.work_dir(device.serial), idle.path, idle.rel,
                                tel.sample_interval_ms / 1000.0, tel.idle_baseline_s, self.stop, emulated=is_emulated(info),
                                meter=meter_plan(device, tel.meter_specs(), len(self.devices)))
            with self._lock:
                self.idle.append(rec)
        return prepared, None

    def _drive_device(self, device: Device, info: DeviceRecord, workload: Workload, cells: list[CellSpec]) -> None:
        prepared, fail_all = False, None
        try:
            prepared, fail_all = self._prepare(device, info, workload, cells[0])
            queue = list(enumerate(cells, start=1))
            retried: set[str] = set()
            while queue:
                index, cell = queue.pop(0)
                if self.stop.stopped:
                    self._add_cell(self._interrupted(cell, info, f"not started: {self.stop.reason}"))
                    continue
                if fail_all is not None:
                    self._add_cell(self._skeleton(cell, info, None, CellStatus.FAILED, fail_all))
                    continue
                rec, gone = self._run_cell(device, workload, info, cell, index)
                if gone is not None and not self.stop.stopped:
                    back = self._wait_back(device, info, index, cell)
                    if back:
                        workload.reconnected()  # it may be back empty: models are checked and pushed again
                    if back and cell.cell_id not in retried:
                        retried.add(cell.cell_id)
                        queue.insert(0, (index, cell))  # the dropped cell runs again once
                        continue
                    if not back:
                        fail_all = (f"device gone and not back within {self.options.reconnect_wait_s:g} s "
                                    f"(--reconnect-wait-s): {gone}")
                self._add_cell(rec)
                if self.s.cooldown.between_cells_s and queue:
                    with contextlib.suppress(RunInterrupted):
                        self.stop.sleep(self.s.cooldown.between_cells_s)
        finally:
            if prepared:
                self.progress.phase(device.serial, len(cells), cells[-1].cell_id, Phase.RESTORE)
                self._restore(device)

    def _wait_back(self, device: Device, info: DeviceRecord, index: int, cell: CellSpec) -> bool:
        """Wait for a dropped device (``adb connect`` again for network serials), then undo what
        the journal holds and prepare it again. True when it is back and ready."""
        self.progress.phase(device.serial, index, cell.cell_id, Phase.WAIT_DEVICE)
        self.progress.note(f"perflab: [{device.serial}] dropped; waiting up to {self.options.reconnect_wait_s:g} s "
                           "for it to come back")
        try:
            if not device.wait_online(self.options.reconnect_wait_s):
                return False
            device.restore()
            device.prepare(self.run_id)
        except PerflabError as exc:
            log.warning("[%s] came back but could not be prepared again: %s", device.serial, exc)
            return False
        self.progress.note(f"perflab: [{device.serial}] is back; going on with {cell.cell_id}")
        return True

    def _restore(self, device: Device) -> None:
        """Undo the device's tuning. A phone that went away is waited for (it may be rebooting or
        re-plugged) up to RESTORE_WAIT_S; after that its journal stays on the host for
        `perflab devices restore SERIAL`, and the user is told so."""
        deadline = time.monotonic() + RESTORE_WAIT_S
        while True:
            try:
                device.restore()
                return
            except DeviceGoneError as exc:
                left = deadline - time.monotonic()
                # wait for it to be listed again (adb connect for network serials) rather than
                # retrying commands at a phone that is not there: bounded by the deadline
                if self.stop.stopped or left <= 0 or not device.wait_online(left):
                    self.progress.note(f"perflab: [{device.serial}] gone, not restored: {exc}. Run `perflab devices "
                                       f"restore {device.serial}` when it is back.")
                    return
            except PerflabError as exc:
                self.progress.note(f"perflab: [{device.serial}] restore failed: {exc}. Run `perflab devices restore "
                                   f"{device.serial}`.")
                return

    def _skeleton(
        self, cell: CellSpec, info: DeviceRecord, art: ModelArtifact | None, status: CellStatus, reason: str | None,
        **fields: Any,
    ) -> CellRecord:
        model = ModelRecord(
            name=cell.model_name, family=art.family if art else (cell.zoo or "user"), variant=cell.variant_label,
            scale=cell.scale, sha256=art.sha256 if art else None, size_bytes=art.size_bytes if art else None,
            **fields.pop("model_fields", {}),
        )
        warnings = list(fields.pop("warnings", []))
        if is_emulated(info):
            warnings.insert(0, WarningRecord(code="emulated", message=EMULATED_NOTE))
        return CellRecord(
            cell_id=cell.cell_id, artifact_key=artifact_key(info.serial, cell.cell_id, self.n_devices), device=info,
            model=model, delegate=cell.delegate.value, threads=self.s.threads, status=status, reason=reason,
            baseline=cell.baseline, emulated=is_emulated(info), warnings=warnings, **fields,
        )

    def _run_cell(
        self, device: Device, workload: Workload, info: DeviceRecord, cell: CellSpec, index: int
    ) -> tuple[CellRecord, DeviceGoneError | None]:
        started, t0 = utc_now_iso(), time.monotonic()
        art: ModelArtifact | None = None
        gone: DeviceGoneError | None = None
        timing = {"started_utc": started}
        try:
            art = resolve_artifact(cell, self.loaded)
            if art.scale != self.s.geometry.scale:
                rec = self._skeleton(cell, info, art, CellStatus.FAILED,
                                     f"model scale ×{art.scale} does not match the scenario's ×{self.s.geometry.scale}",
                                     **timing)
            else:
                rec = self._measure(device, workload, info, cell, art, index, timing)
        except RunInterrupted as exc:
            rec = self._skeleton(cell, info, art, CellStatus.INTERRUPTED, f"interrupted while running: {exc}", **timing)
        except DeviceGoneError as exc:
            gone = exc
            rec = self._skeleton(cell, info, art, CellStatus.FAILED, f"device gone: {exc}", **timing)
        except UnsupportedError as exc:
            rec = self._skeleton(cell, info, art, CellStatus.UNSUPPORTED, str(exc), **timing)
        except PerflabError as exc:
            status = CellStatus.INTERRUPTED if self.stop.stopped else CellStatus.FAILED
            rec = self._skeleton(cell, info, art, status, str(exc), **timing)
        except Exception as exc:  # noqa: BLE001 - a bug in one cell must not kill the run
            self.folder.write_log(self.folder.traceback_log(artifact_key(info.serial, cell.cell_id, self.n_devices)),
                                  traceback.format_exc())
            rec = self._skeleton(cell, info, art, CellStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}",
                                 **timing)
        rec = rec.model_copy(update={"duration_s": round(time.monotonic() - t0, 3)})
        log.info("[%s] %s: %s%s", device.serial, cell.cell_id, rec.status.value, f" ({rec.reason})" if rec.reason else "")
        return rec, gone

    def _wait_cool(self, device: Device, parts: _CellParts) -> None:
        cd = self.s.cooldown
        deadline = time.monotonic() + cd.wait_timeout_s
        reading = device.temperature()
        while reading.temp_c is not None and reading.temp_c > cd.max_start_temp_c and time.monotonic() < deadline:
            self.stop.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
            reading = device.temperature()
        parts.tel["start_temp_c"] = reading.temp_c
        parts.tel["temp_source"] = reading.source
        if reading.temp_c is None:
            parts.tel_missing["start_temp_c"] = reading.missing_reason or "no temperature source"
        elif reading.temp_c > cd.max_start_temp_c:
            parts.warnings.append(WarningRecord(code="hot_start", message=(
                f"started at {reading.temp_c:.1f} °C, above the {cd.max_start_temp_c:g} °C threshold, after waiting "
                f"{cd.wait_timeout_s:g} s; results may be throttled. Raise cooldown.wait_timeout_s.")))

    def _modes(self) -> list[tuple[SeriesMode, float | None]]:
        modes: list[tuple[SeriesMode, float | None]] = []
        if self.s.pacing.fps:
            modes.append((SeriesMode.PACED, self.s.pacing.fps))
        if not self.s.pacing.fps or self.s.pacing.also_back_to_back:
            modes.append((SeriesMode.BACK_TO_BACK, None))
        return modes

    def _series(self, device: Device, workload: Workload, info: DeviceRecord, cell: CellSpec, art: ModelArtifact,
                mode: SeriesMode, fps: float | None, headline: bool, parts: _CellParts) -> None:
        s, g = self.s, self.s.geometry
        req = TimingRequest(
            mode=mode, fps=fps, warmup=s.runs.warmup, iterations=s.runs.iterations, threads=s.threads,
            delegate=cell.delegate.value, timeout_s=s.runs.timeout_s, lr_width=g.lr_width, lr_height=g.lr_height,
            input_frame=self.timing_frame,
        )
        key = artifact_key(info.serial, cell.cell_id, self.n_devices)
        timing_trace = self.folder.timing_trace(key, mode.value)

        def timed(fn: Callable[[], _T]) -> tuple[_T, TimingTrace | None]:
            # a phone's tool gives no per-run samples: its timed run is traced for them (perflab.lab.phone_timing)
            if isinstance(device, HostDevice):
                return fn(), None
            return traced(device, timing_trace.path, timing_trace.rel, fn)

        if headline and s.telemetry.enabled:
            timeline, raw = self.folder.timeline(key), self.folder.meter_raw(key)
            (t, parts.cost, parts.cost_why, parts.meter), tt = timed(lambda: measure_during(
                device, self.folder.work_dir(device.serial), timeline.path,
                s.telemetry.sample_interval_ms / 1000.0, lambda: workload.run_timing(art, req),
                meter=meter_plan(device, s.telemetry.meter_specs(), len(self.devices)), meter_raw=(raw.path, raw.rel)))
            parts.tel["timeline_file"] = timeline.rel
        else:
            t, tt = timed(lambda: workload.run_timing(art, req))
        if tt is not None:
            t = with_trace_samples(t, tt)
        parts.series[mode.value] = latency_record(t, fps)
        thresholds = StabilityThresholds(max_cv_pct=s.stability.max_cv_pct, max_drift_pct=s.stability.max_drift_pct)
        if t.samples_ms:
            self.folder.append_samples(artifact_key(info.serial, cell.cell_id, self.n_devices), mode.value, t.samples_ms)
            for w in stability_warnings(t.samples_ms, thresholds):
                parts.warnings.append(WarningRecord(code=w.code, message=f"{mode.value}: {w.message}"))
        elif t.summary is not None:
            sm = t.summary
            summary = SummaryOnly(n=sm.count, mean_ms=sm.mean_ms, std_ms=sm.std_ms, min_ms=sm.min_ms, max_ms=sm.max_ms,
                                  missing={"std": t.missing["std"]} if "std" in t.missing else {})
            for w in summary_stability_warnings(summary, thresholds):
                parts.warnings.append(WarningRecord(code=w.code, message=f"{mode.value}: {w.message}"))
        for w_text in t.warnings:
            parts.warnings.append(WarningRecord(code="tool", message=f"{mode.value}: {w_text}"))
        if headline:
            parts.tel.update(cpu_load_pct=t.cpu_load_pct, mem_peak_mb=t.mem_peak_mb, mem_source=t.mem_source)
        for k, v in t.missing.items():
            parts.tel_missing.setdefault(k, v)
        parts.logs.append(f"== {mode.value} ==\n" + "\n".join(t.delegate_info) + "\n" + t.tool_log)
        parts.delegate_lines.extend(x for x in t.delegate_info if x not in parts.delegate_lines)

    def _measure(self, device: Device, workload: Workload, info: DeviceRecord, cell: CellSpec,
                 art: ModelArtifact, index: int, timing: dict[str, str]) -> CellRecord:
        compat, why = model_compat(art)
        parts = _CellParts()
        self.stop.check()
        self.progress.phase(device.serial, index, cell.cell_id, Phase.COOLDOWN)
        self._wait_cool(device, parts)
        modes = self._modes()
        for mode, fps in modes:
            self.stop.check()
            self.progress.phase(device.serial, index, cell.cell_id, f"{Phase.TIMING} ({mode.value})")
            self._series(device, workload, info, cell, art, mode, fps, mode == modes[0][0], parts)
        tel = parts.tel
        missing = parts.tel_missing
        if tel.get("cpu_load_pct") is None:
            missing.setdefault("cpu_load_pct", "the device did not report CPU time for the run")
        if tel.get("mem_peak_mb") is None:
            missing.setdefault("mem_peak_mb", "the device did not report memory for the run")
        headline = parts.series[modes[0][0].value]
        if self.s.telemetry.enabled:
            fields, cost_missing, cost_warnings = telemetry_fields(
                parts.cost, parts.cost_why, emulated=is_emulated(info), fps=self.s.pacing.fps,
                latency_mean_ms=headline.mean, interval_ms=self.s.telemetry.sample_interval_ms,
                timeline_rel=str(tel.pop("timeline_file", "")), meter=parts.meter)
            tel.update(fields)
            for k, v in cost_missing.items():
                missing.setdefault(k, v)
            parts.warnings.extend(cost_warnings)
        else:
            missing.setdefault("power_source", "telemetry.enabled is off in the scenario")
        sustained = None
        if (cfg := self.s.sustained) is not None and sustained_applies(cfg, cell):
            self.stop.check()
            self.progress.phase(device.serial, index, cell.cell_id, "sustained run")
            sustained = self._sustained(cfg, device, workload, info, cell, art, headline.mean, tel.get("power_mw"),
                                        parts)
        key = artifact_key(info.serial, cell.cell_id, self.n_devices)
        self.folder.write_log(self.folder.cell_log(key), "\n".join(parts.logs))
        self.stop.check()
        self.progress.phase(device.serial, index, cell.cell_id, Phase.OUTPUTS)
        quality = self._quality(workload, info, cell, art)
        layers = None
        prof = self.s.profiling
        if prof.op_profiling or prof.trace or prof.differential:  # per-layer passes: perflab.lab.layers
            from perflab.lab.layers import cell_layers

            self.stop.check()
            self.progress.phase(device.serial, index, cell.cell_id, Phase.PROFILE)
            layers = cell_layers(
                workload, art, profiling=prof, delegate=cell.delegate.value, threads=self.s.threads,
                timeout_s=self.s.runs.timeout_s, lr_width=self.s.geometry.lr_width,
                lr_height=self.s.geometry.lr_height, input_frame=self.timing_frame, check_stop=self.stop.check,
                trace=self.folder.trace(key), local=isinstance(device, HostDevice),
                delegates=delegate_records(parts.delegate_lines), compat=compat, series=parts.series,
                device=device)
        return self._skeleton(
            cell, info, art, CellStatus.OK, None,
            model_fields={"compat": compat, "missing": {"compat": why} if why else {}},
            latency_ms=parts.series[modes[0][0].value], series=parts.series, quality=quality,
            telemetry=TelemetryRecord(**tel, missing=missing), layers=layers,
            delegates=delegate_records(parts.delegate_lines), warnings=parts.warnings, sustained=sustained, **timing,
        )

    def _sustained(self, cfg: Sustained, device: Device, workload: Workload, info: DeviceRecord, cell: CellSpec,
                   art: ModelArtifact, burst_mean_ms: float | None, burst_power_mw: float | None,
                   parts: _CellParts) -> SustainedRecord:
        """The scenario's sustained paced run for this cell (perflab.lab.costs.sustained_run)."""
        s, g = self.s, self.s.geometry
        fps = cfg.fps or s.pacing.fps
        key = artifact_key(info.serial, cell.cell_id, self.n_devices)

        def run_part(n: int) -> TimingResult:
            return workload.run_timing(art, TimingRequest(
                mode=SeriesMode.PACED if fps else SeriesMode.BACK_TO_BACK, fps=fps, warmup=0, iterations=n,
                threads=s.threads, delegate=cell.delegate.value, timeout_s=s.runs.timeout_s, lr_width=g.lr_width,
                lr_height=g.lr_height, input_frame=self.timing_frame))

        rec, warnings = sustained_run(
            device, cfg, run_part, fps=fps, burst_latency_mean_ms=burst_mean_ms, burst_power_mw=burst_power_mw,
            workdir=self.folder.work_dir(device.serial),
            timeline_path=lambda i: self.folder.sustained_timeline(key, i).path,
            interval_s=s.telemetry.sample_interval_ms / 1000.0,
            meter=meter_plan(device, s.telemetry.meter_specs(), len(self.devices)) if s.telemetry.enabled else None,
            stop=self.stop, emulated=is_emulated(info), sample=s.telemetry.enabled)
        parts.warnings.extend(warnings)
        return rec

    def _quality(self, workload: Workload, info: DeviceRecord, cell: CellSpec, art: ModelArtifact) -> QualityRecord:
        """Run the model on every frame *on the device*, in chunks (bounded memory), and score
        the device's outputs against the HR frames."""
        scale = self.s.geometry.scale
        per: list[FrameQuality] = []
        group = self.folder.frame_group(artifact_key(info.serial, cell.cell_id, self.n_devices))
        frames = self._frames()
        try:
            while True:
                self.stop.check()
                chunk = list(itertools.islice(frames, QUALITY_CHUNK_FRAMES))
                if not chunk:
                    break
                try:
                    outs = workload.run_outputs(art, [lr for _, _, lr in chunk], self.s.threads, cell.delegate.value,
                                                self.s.runs.timeout_s)
                except (DeviceGoneError, RunInterrupted):
                    raise
                except PerflabError as exc:
                    why = f"outputs could not be computed on the device: {exc}"
                    return QualityRecord(missing={"psnr_y_db": why, "ssim_y": why})
                if len(outs) != len(chunk):
                    raise MeasurementError(f"the device returned {len(outs)} outputs for {len(chunk)} frames")
                for (i, f, _), out in zip(chunk, outs, strict=True):
                    per.append(_frame_quality(f, out, scale))
                    if i < SAVED_FRAMES:
                        self.folder.save_frame(group, f.name, out)
        finally:
            frames.close()
        return _quality_record(per, f"{info.kind} device outputs ({info.serial})")


def _frame_quality(f: Frame, out: np.ndarray, scale: int) -> FrameQuality:
    from perflab.quality.metrics import psnr_rgb_db, psnr_ssim_y
    from perflab.quality.piqe import piqe_score

    if f.hr.shape != out.shape:
        raise MeasurementError(f"output {out.shape} does not match HR {f.hr.shape} for frame {f.name}")
    # one convention (docs/quality.md): outputs are scored as displayed and saved — clipped and
    # rounded to 8 bits — so the saved PNGs give the same numbers, as `perflab models evaluate` does
    out = quantize_8bit(np.clip(out, 0.0, 1.0))
    y = psnr_ssim_y(out, f.hr, scale)
    piqe: float | None = None
    missing: dict[str, str] = {}
    try:
        piqe = piqe_score(out)
    except MeasurementError as exc:
        missing["piqe"] = str(exc)
    return FrameQuality(frame=f.name, psnr_y_db=y.psnr_y_db, ssim_y=y.ssim_y, psnr_rgb_db=psnr_rgb_db(out, f.hr, scale),
                        piqe=piqe, missing=missing)


def _quality_record(per: list[FrameQuality], computed_on: str) -> QualityRecord:
    if not per:
        return QualityRecord(missing={"psnr_y_db": "no input frames"})

    def mean(values: list[float | None]) -> float | None:
        vals = [v for v in values if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else None

    missing = {}
    piqe = mean([r.piqe for r in per])
    if piqe is None:
        missing["piqe"] = next((r.missing["piqe"] for r in per if "piqe" in r.missing), "not computed")
    psnrs = [r.psnr_y_db for r in per if r.psnr_y_db is not None]
    return QualityRecord(
        psnr_y_db=mean([r.psnr_y_db for r in per]), ssim_y=mean([r.ssim_y for r in per]),
        psnr_rgb_db=mean([r.psnr_rgb_db for r in per]), piqe=piqe, psnr_y_db_min=min(psnrs) if psnrs else None,
        frames=len(per), per_frame=per, computed_on=computed_on, missing=missing,
    )


def run_scenario(
    loaded: LoadedScenario,
    devices: Sequence[Device],
    out_dir: Path,
    run_id: str | None = None,
    *,
    progress: Progress | None = None,
    stop: StopController | None = None,
    previous: RunRecord | None = None,
    options: RunOptions = RunOptions(),
    run_warnings: Sequence[WarningRecord] = (),
) -> RunOutcome:
    from perflab.quality.inputs import iter_frames

    run_id = previous.run_id if previous is not None else (run_id or new_run_id())
    folder = RunFolder.open_for_resume(out_dir) if previous is not None else RunFolder.create(out_dir)

    def frame_source() -> Iterator[Frame]:
        return iter_frames(loaded.scenario.inputs, loaded.base_dir)

    runner = ScenarioRunner(loaded, devices, folder, run_id, frame_source, progress=progress, stop=stop,
                            previous=previous, options=options, run_warnings=run_warnings)
    return runner.execute()
