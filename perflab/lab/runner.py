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
import logging
import platform
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perflab import __version__
from perflab.core.types import ModelArtifact
from perflab.devices.base import Device, DeviceInfo
from perflab.errors import (
    DeviceGoneError,
    DeviceNotReadyError,
    PerflabError,
    RunInterrupted,
    UnsupportedError,
)
from perflab.lab.cell import CellContext, measure_cell
from perflab.lab.costs import (
    idle_baseline,
    sustained_warnings,
)
from perflab.lab.inputs import Inputs
from perflab.lab.lifecycle import EXIT_SIGINT, EXIT_SIGTERM, StopController
from perflab.lab.meters import meter_plan, unmatched_meter_warnings
from perflab.lab.models import resolve_artifact
from perflab.lab.progress import Phase, Progress, QuietProgress
from perflab.quality.frames import Frame
from perflab.rules.derive import finalize_cells
from perflab.rules.device import EMULATED_NOTE, is_emulated
from perflab.scenario.loader import LoadedScenario
from perflab.scenario.plan import CellSpec, plan_cells
from perflab.store.results import (
    CellRecord,
    CellStatus,
    DeviceRecord,
    IdleRecord,
    ModelRecord,
    PlannedCell,
    RunRecord,
    ScenarioRecord,
    StopRecord,
    TelemetryRecord,
    WarningRecord,
    artifact_key,
)
from perflab.store.runfolder import RunFolder, new_run_id, utc_now_iso
from perflab.workloads import Workload, workload_for

log = logging.getLogger("perflab.run")

RESTORE_WAIT_S = 60.0
RECONNECT_WAIT_S = 60.0  # how long a dropped phone is waited for before its cells fail


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
        self.inputs = Inputs(frame_source, self.s.geometry, self.s.outputs, self.s.pacing.fps,
                             downscale=self.s.inputs.downscale)
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
        self.inputs.prepass(self.folder, self.loaded.file)
        self.header["reference_video"] = self.inputs.reference_video
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
        self.progress.plan(device.serial, f"{info.model} ({device.serial})", total, emulated=is_emulated(info))
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

    def _measure(self, device: Device, workload: Workload, info: DeviceRecord, cell: CellSpec,
                 art: ModelArtifact, index: int, timing: dict[str, str]) -> CellRecord:
        """The cell's passes (perflab.lab.cell), their merged part built into its record once."""
        tel = self.s.telemetry
        ctx = CellContext(
            scenario=self.s, device=device, workload=workload, info=info, cell=cell, art=art,
            key=artifact_key(info.serial, cell.cell_id, self.n_devices), folder=self.folder, inputs=self.inputs,
            stop=self.stop, meter=meter_plan(device, tel.meter_specs(), len(self.devices)),
            phase=lambda phase: self.progress.phase(device.serial, index, cell.cell_id, phase))
        m = measure_cell(ctx)
        p = m.part
        return self._skeleton(
            cell, info, art, CellStatus.OK, None,
            model_fields={"compat": m.compat, "missing": {"compat": m.compat_why} if m.compat_why else {}},
            telemetry=TelemetryRecord(**p.telemetry, missing=dict(p.missing)), warnings=list(p.warnings),
            **p.fields, **timing)


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
