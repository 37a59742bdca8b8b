"""Run a scenario: plan → for each device (in parallel), each cell (in order) → store → report.

A failing cell never kills the run: every cell ends as a record with a status and a reason.
Results are written after each cell, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import platform
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perflab import __version__
from perflab.analysis.stats import StabilityThresholds, stability_warnings, summarize
from perflab.core.types import ModelArtifact, SeriesMode, TimingRequest, TimingResult
from perflab.devices.base import Device, DeviceInfo, DeviceKind
from perflab.errors import DeviceGoneError, MeasurementError, PerflabError, UnsupportedError, UserInputError
from perflab.lab.compat import model_compat
from perflab.lab.derive import finalize_cells
from perflab.lab.models import resolve_artifact
from perflab.quality.frames import Frame, crop_to_multiple, hr_to_lr, resize_bicubic
from perflab.scenario.loader import LoadedScenario
from perflab.scenario.plan import CellSpec, plan_cells
from perflab.store.results import (
    CellRecord,
    CellStatus,
    DeviceRecord,
    LatencyRecord,
    LayerRow,
    LayersRecord,
    ModelRecord,
    QualityRecord,
    RunRecord,
    ScenarioRecord,
    TelemetryRecord,
    WarningRecord,
)
from perflab.store.runfolder import RunFolder, new_run_id, utc_now_iso

log = logging.getLogger("perflab.run")

RESTORE_WAIT_S = 60.0
QUALITY_CHUNK_FRAMES = 8  # frames per run_outputs call: bounds memory for long clips
SAVED_FRAMES = 4  # frames per cell kept as PNG for visual comparison


@dataclass
class RunOutcome:
    run: RunRecord
    folder: RunFolder
    exit_code: int


def device_record(info: DeviceInfo) -> DeviceRecord:
    return DeviceRecord(
        serial=info.serial, kind=info.kind.value, model=info.model, soc=info.soc, abi=info.abi, sdk=info.sdk,
        fingerprint=info.fingerprint, rooted=info.rooted, tflite_version=info.tflite_version, extra=dict(info.extra),
    )


def latency_record(t: TimingResult, fps: float | None) -> LatencyRecord:
    """TimingResult → LatencyRecord; raw samples when present, else the tool's summary."""
    missing = dict(t.missing)
    warm = float(np.mean(t.warmup_ms)) if t.warmup_ms else t.warmup_mean_ms
    def rec(source: str, **kw: Any) -> LatencyRecord:
        return LatencyRecord(mode=t.mode.value, fps_target=fps, init=t.init_ms, first=t.first_ms,
                             warmup_mean=warm, source=source, **kw)

    if t.samples_ms:
        s = summarize(t.samples_ms)
        return rec(
            "raw samples", median=s.median_ms, mean=s.mean_ms, p90=s.p90_ms, p95=s.p95_ms,
            min=s.min_ms, max=s.max_ms, std=s.std_ms, mad=s.mad_ms, cv_pct=s.cv_pct, n=s.n,
            missing={k: v for k, v in missing.items() if k in ("init", "first", "warmup_mean")},
        )
    if t.summary is not None:
        sm = t.summary
        why = "the device tool reports only count/avg/std/min/max, not raw per-run samples"
        for k in ("median", "p90", "p95", "mad"):
            missing.setdefault(k, why)
        cv = (sm.std_ms / sm.mean_ms * 100.0) if sm.std_ms is not None and sm.mean_ms > 0 else None
        return rec(
            "tool summary", mean=sm.mean_ms, std=sm.std_ms, min=sm.min_ms, max=sm.max_ms,
            cv_pct=cv, n=sm.count, missing=missing,
        )
    missing.setdefault("median", "no timing samples were produced")
    return rec("none", n=0, missing=missing)


class ScenarioRunner:
    def __init__(
        self,
        loaded: LoadedScenario,
        devices: Sequence[Device],
        folder: RunFolder,
        run_id: str,
        frame_source: Callable[[], Iterator[Frame]],
        on_cell: Callable[[CellRecord], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.s = loaded.scenario
        self.devices = list(devices)
        self.folder = folder
        self.run_id = run_id
        self.frame_source = frame_source
        self.on_cell = on_cell
        self._lock = threading.Lock()
        text = loaded.source_text
        self.run = RunRecord(
            perflab_version=__version__,
            run_id=run_id,
            scenario=ScenarioRecord(
                name=self.s.name, file=str(loaded.file), sha256=hashlib.sha256(text.encode()).hexdigest(), text=text,
                lr_width=self.s.geometry.lr_width, lr_height=self.s.geometry.lr_height, scale=self.s.geometry.scale,
                fps=self.s.pacing.fps,
            ),
            started_utc=utc_now_iso(),
            host={"hostname": platform.node(), "python": platform.python_version(), "platform": platform.platform()},
        )
        self.timing_frame: np.ndarray | None = None

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

    # -- bookkeeping ---------------------------------------------------------------------

    def _save(self) -> None:
        with self._lock:
            self.folder.write_results(self.run)

    def _add_cell(self, rec: CellRecord) -> None:
        with self._lock:
            self.run.cells.append(rec)
            self.folder.write_results(self.run)
        if self.on_cell:
            self.on_cell(rec)

    # -- the run -------------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        cells = plan_cells(self.s)
        infos: dict[str, DeviceRecord] = {}
        for d in self.devices:
            try:
                infos[d.serial] = device_record(d.info())
            except PerflabError as exc:
                infos[d.serial] = DeviceRecord(serial=d.serial, kind="unknown", model=f"unreachable: {exc}")
        self.run.devices = list(infos.values())
        # One pass over the inputs before any cell: a corrupt image or video is bad input
        # (exit 2) found now, not after an hour of measurements.
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
        self._save()
        with ThreadPoolExecutor(max_workers=max(1, len(self.devices)), thread_name_prefix="dev") as pool:
            futures = [pool.submit(self._run_device, d, infos[d.serial], cells) for d in self.devices]
            for fut in futures:
                fut.result()
        self.run.cells = finalize_cells(self.run.cells, self.s.pacing.fps)
        failed = any(c.status == CellStatus.FAILED for c in self.run.cells)
        self.run.exit_code = 1 if failed else 0
        self.run.finished_utc = utc_now_iso()
        self._save()
        return RunOutcome(self.run, self.folder, self.run.exit_code)

    def _run_device(self, device: Device, info: DeviceRecord, cells: list[CellSpec]) -> None:
        prepared = False
        gone: str | None = None
        try:
            if info.kind != "unknown":
                try:
                    device.prepare(self.run_id)
                    prepared = True
                except PerflabError as exc:
                    gone = f"device could not be prepared: {exc}"
            for cell in cells:
                if gone is not None:
                    self._add_cell(self._skeleton(cell, info, None, CellStatus.FAILED, gone))
                    continue
                rec = self._run_cell(device, info, cell)
                if rec.status == CellStatus.FAILED and rec.reason and rec.reason.startswith("device gone"):
                    gone = rec.reason
                self._add_cell(rec)
                if self.s.cooldown.between_cells_s:
                    time.sleep(self.s.cooldown.between_cells_s)
        finally:
            if prepared:
                self._restore(device)

    def _restore(self, device: Device) -> None:
        """Undo the device's tuning. A phone that went away is waited for (it may be rebooting or
        re-plugged) up to RESTORE_WAIT_S; after that its journal stays on the host for
        `perflab devices restore SERIAL`."""
        deadline = time.monotonic() + RESTORE_WAIT_S
        while True:
            try:
                device.restore()
                return
            except DeviceGoneError as exc:
                if time.monotonic() >= deadline:
                    log.error("[%s] gone, not restored: %s (run `perflab devices restore %s` when it is back)",
                              device.serial, exc, device.serial)
                    return
                time.sleep(2.0)
            except PerflabError as exc:
                log.error("[%s] restore failed: %s (run `perflab devices restore %s`)", device.serial, exc,
                          device.serial)
                return

    def _skeleton(
        self, cell: CellSpec, info: DeviceRecord, art: ModelArtifact | None, status: CellStatus, reason: str | None
    ) -> CellRecord:
        model = ModelRecord(
            name=cell.model_name, family=art.family if art else (cell.zoo or "user"), variant=cell.variant_label,
            scale=cell.scale, sha256=art.sha256 if art else None, size_bytes=art.size_bytes if art else None,
        )
        warnings = []
        if info.kind == DeviceKind.EMULATED.value:
            warnings.append(WarningRecord(code="emulated", message="emulated phone: numbers come from perflab's "
                                          "emulator running the model on the host, not from a real device"))
        return CellRecord(
            cell_id=cell.cell_id, device=info, model=model, delegate=cell.delegate.value, threads=self.s.threads,
            status=status, reason=reason, baseline=cell.baseline, emulated=info.kind == DeviceKind.EMULATED.value,
            warnings=warnings,
        )

    def _run_cell(self, device: Device, info: DeviceRecord, cell: CellSpec) -> CellRecord:
        started, t0 = utc_now_iso(), time.monotonic()
        art: ModelArtifact | None = None
        try:
            art = resolve_artifact(cell, self.loaded)
            if art.scale != self.s.geometry.scale:
                rec = self._skeleton(cell, info, art, CellStatus.FAILED,
                                     f"model scale ×{art.scale} does not match the scenario's ×{self.s.geometry.scale}")
            else:
                rec = self._measure(device, info, cell, art)
        except DeviceGoneError as exc:
            rec = self._skeleton(cell, info, art, CellStatus.FAILED, f"device gone: {exc}")
        except UserInputError as exc:
            rec = self._skeleton(cell, info, art, CellStatus.FAILED, str(exc))
        except UnsupportedError as exc:
            rec = self._skeleton(cell, info, art, CellStatus.UNSUPPORTED, str(exc))
        except PerflabError as exc:
            rec = self._skeleton(cell, info, art, CellStatus.FAILED, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in one cell must not kill the run
            self.folder.write_log(f"{device.serial}.{cell.cell_id}.traceback.txt", traceback.format_exc())
            rec = self._skeleton(cell, info, art, CellStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}")
        rec.started_utc = started
        rec.duration_s = round(time.monotonic() - t0, 3)
        log.info("[%s] %s: %s%s", device.serial, cell.cell_id, rec.status.value, f" ({rec.reason})" if rec.reason else "")
        return rec

    def _wait_cool(self, device: Device, tel: TelemetryRecord) -> list[WarningRecord]:
        cd = self.s.cooldown
        deadline = time.monotonic() + cd.wait_timeout_s
        reading = device.temperature()
        while reading.temp_c is not None and reading.temp_c > cd.max_start_temp_c and time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
            reading = device.temperature()
        tel.start_temp_c = reading.temp_c
        tel.temp_source = reading.source
        if reading.temp_c is None:
            tel.missing["start_temp_c"] = reading.missing_reason or "no temperature source"
            return []
        if reading.temp_c > cd.max_start_temp_c:
            return [WarningRecord(code="hot_start", message=(
                f"started at {reading.temp_c:.1f} °C, above the {cd.max_start_temp_c:g} °C threshold, after waiting "
                f"{cd.wait_timeout_s:g} s; results may be throttled. Raise cooldown.wait_timeout_s."))]
        return []

    def _measure(self, device: Device, info: DeviceRecord, cell: CellSpec, art: ModelArtifact) -> CellRecord:
        s, g = self.s, self.s.geometry
        rec = self._skeleton(cell, info, art, CellStatus.OK, None)
        compat, why = model_compat(art)
        rec.model.compat = compat
        if why:
            rec.model.missing["compat"] = why
        tel = rec.telemetry
        rec.warnings.extend(self._wait_cool(device, tel))
        modes: list[tuple[SeriesMode, float | None]] = []
        if s.pacing.fps:
            modes.append((SeriesMode.PACED, s.pacing.fps))
        if not s.pacing.fps or s.pacing.also_back_to_back:
            modes.append((SeriesMode.BACK_TO_BACK, None))
        thresholds = StabilityThresholds(max_cv_pct=s.stability.max_cv_pct, max_drift_pct=s.stability.max_drift_pct)
        logs: list[str] = []
        for mode, fps in modes:
            req = TimingRequest(
                mode=mode, fps=fps, warmup=s.runs.warmup, iterations=s.runs.iterations, threads=s.threads,
                delegate=cell.delegate.value, timeout_s=s.runs.timeout_s, lr_width=g.lr_width, lr_height=g.lr_height,
                input_frame=self.timing_frame,
            )
            t = device.run_timing(art, req)
            lat = latency_record(t, fps)
            rec.series[mode.value] = lat
            if t.samples_ms:
                self.folder.append_samples(cell.cell_id if len(self.devices) == 1 else f"{info.serial}/{cell.cell_id}",
                                           mode.value, t.samples_ms)
                for w in stability_warnings(t.samples_ms, thresholds):
                    rec.warnings.append(WarningRecord(code=w.code, message=f"{mode.value}: {w.message}"))
            for w_text in t.warnings:
                rec.warnings.append(WarningRecord(code="tool", message=f"{mode.value}: {w_text}"))
            if mode == modes[0][0]:
                tel.cpu_load_pct = t.cpu_load_pct
                tel.mem_peak_mb = t.mem_peak_mb
                tel.mem_source = t.mem_source
            for k, v in t.missing.items():
                tel.missing.setdefault(k, v)
            logs.append(f"== {mode.value} ==\n" + "\n".join(t.delegate_info) + "\n" + t.tool_log)
            for line in t.delegate_info:
                if line not in rec.delegate_log:
                    rec.delegate_log.append(line)
        rec.latency_ms = rec.series[modes[0][0].value]
        if tel.cpu_load_pct is None:
            tel.missing.setdefault("cpu_load_pct", "the device did not report CPU time for the run")
        if tel.mem_peak_mb is None:
            tel.missing.setdefault("mem_peak_mb", "the device did not report memory for the run")
        tel.missing.setdefault("power_source", "no power source configured for this device (battery counters or a meter)")
        self.folder.write_log(f"{info.serial}.{cell.cell_id}.log".replace("/", "_").replace(":", "_"), "\n".join(logs))
        rec.quality = self._quality(device, info, cell, art)
        if s.profiling.op_profiling:
            prof = device.run_profile(art, s.threads, cell.delegate.value, s.runs.timeout_s)
            if prof is not None:
                rec.layers = LayersRecord(
                    source=prof.source, total_ms=prof.total_ms,
                    rows=[LayerRow(index=r.index, node_type=r.node_type, name=r.name, avg_ms=r.avg_ms,
                                   first_ms=r.first_ms, pct=r.pct, times_called=r.times_called) for r in prof.layers],
                )
        return rec

    def _quality(self, device: Device, info: DeviceRecord, cell: CellSpec, art: ModelArtifact) -> QualityRecord:
        """Run the model on every frame *on the device*, in chunks (bounded memory), and score
        the device's outputs against the HR frames."""
        from perflab.quality.metrics import psnr_rgb_db, psnr_ssim_y
        from perflab.quality.piqe import piqe_score

        scale = self.s.geometry.scale
        per: list[dict[str, Any]] = []
        group = cell.cell_id if len(self.devices) == 1 else f"{info.serial}_{cell.cell_id}".replace(":", "_")
        frames = self._frames()
        try:
            while True:
                chunk = list(itertools.islice(frames, QUALITY_CHUNK_FRAMES))
                if not chunk:
                    break
                try:
                    outs = device.run_outputs(art, [lr for _, _, lr in chunk], self.s.threads, cell.delegate.value,
                                              self.s.runs.timeout_s)
                except DeviceGoneError:
                    raise
                except PerflabError as exc:
                    why = f"outputs could not be computed on the device: {exc}"
                    return QualityRecord(missing={"psnr_y_db": why, "ssim_y": why})
                for (i, f, _), out in zip(chunk, outs):
                    if f.hr.shape != out.shape:
                        raise MeasurementError(
                            f"output {out.shape} does not match HR {f.hr.shape} for frame {f.name}")
                    y = psnr_ssim_y(out, f.hr, scale)
                    row: dict[str, Any] = {"frame": f.name, "psnr_y_db": y.psnr_y_db, "ssim_y": y.ssim_y,
                                           "psnr_rgb_db": psnr_rgb_db(out, f.hr, scale)}
                    try:
                        row["piqe"] = piqe_score(out)
                    except MeasurementError as exc:
                        row["piqe_missing"] = str(exc)
                    per.append(row)
                    if i < SAVED_FRAMES:
                        self.folder.save_frame(group, f.name, out)
        finally:
            frames.close()
        if not per:
            return QualityRecord(missing={"psnr_y_db": "no input frames"})

        def mean(key: str) -> float | None:
            vals = [float(r[key]) for r in per if key in r and np.isfinite(r[key])]
            return float(np.mean(vals)) if vals else None

        missing = {}
        if mean("piqe") is None:
            missing["piqe"] = next((str(r["piqe_missing"]) for r in per if "piqe_missing" in r), "not computed")
        return QualityRecord(
            psnr_y_db=mean("psnr_y_db"), ssim_y=mean("ssim_y"), psnr_rgb_db=mean("psnr_rgb_db"), piqe=mean("piqe"),
            psnr_y_db_min=min(float(r["psnr_y_db"]) for r in per), frames=len(per), per_frame=per,
            computed_on=f"{info.kind} device outputs ({info.serial})", missing=missing,
        )


def run_scenario(
    loaded: LoadedScenario,
    devices: Sequence[Device],
    out_dir: Path,
    run_id: str | None = None,
    on_cell: Callable[[CellRecord], None] | None = None,
) -> RunOutcome:
    from perflab.quality.inputs import iter_frames

    run_id = run_id or new_run_id()
    folder = RunFolder.create(out_dir)

    def frame_source() -> Iterator[Frame]:
        return iter_frames(loaded.scenario.inputs, loaded.base_dir)

    runner = ScenarioRunner(loaded, devices, folder, run_id, frame_source, on_cell=on_cell)
    return runner.execute()
