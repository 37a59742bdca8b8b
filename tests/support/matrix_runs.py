"""Run folders for the matrix and frame tests: RunRecords from the emulated phone profiles'
identities (model, SoC as their props give them), as real and as emulated phones, and `local`,
derived by the lab's own finalize_cells (real deltas and real-time verdicts) and written with the
store's RunFolder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from perflab.rules.derive import finalize_cells
from perflab.store.results import (
    CellRecord,
    CellStatus,
    DeviceRecord,
    LatencyRecord,
    QualityRecord,
    RunRecord,
    ScenarioRecord,
    TelemetryRecord,
)
from support import records

PROFILES = Path(__file__).resolve().parents[2] / "perflab" / "data" / "emulator_profiles"


def profile_device(profile: str, serial: str, kind: str) -> DeviceRecord:
    """A device record with the identity the emulated profile's props give (as android.py reads them)."""
    props = yaml.safe_load((PROFILES / f"{profile}.yaml").read_text())["props"]
    extra = {"manufacturer": props["ro.product.manufacturer"], "android_release": str(props["ro.build.version.release"])}
    if kind == "emulated":
        extra["emulated"] = "perflab emulated phone: timings come from the host running the model"
    return DeviceRecord(serial=serial, kind=kind, model=props["ro.product.model"],
                        soc=props.get("ro.soc.model") or props.get("ro.board.platform"),
                        sdk=int(props["ro.build.version.sdk"]), extra=extra)


LOCAL = DeviceRecord(serial="local", kind="local", model="ci-host (Linux x86_64, 2 CPUs)", soc="Intel Xeon")


@dataclass(frozen=True)
class Spec:
    """One cell: model, variant, delegate, and either (median ms, p90 ms, PSNR-Y dB) or a status."""

    model: str
    variant: str
    delegate: str
    median_ms: float = 0.0
    p90_ms: float = 0.0
    psnr_y_db: float = 0.0
    status: CellStatus = CellStatus.OK
    reason: str | None = None
    summary_only: bool = False  # a phone's benchmark_model without a trace: mean (= median_ms) and std only
    vmaf: float | None = None  # mean VMAF of the cell's kept outputs


def make_cell(dev: DeviceRecord, s: Spec, n_devices: int) -> CellRecord:
    cid = f"{s.model}.{s.variant}.{s.delegate}"
    ok = s.status == CellStatus.OK
    return records.cell(
        cid, artifact_key=cid if n_devices <= 1 else f"{dev.serial}/{cid}", device=dev, family=s.model.split("_")[0],
        status=s.status, reason=s.reason, emulated=dev.kind == "emulated",
        latency_ms=None if not ok else (
            LatencyRecord(mode="paced", fps_target=30.0, source="tool summary", mean=s.median_ms, std=1.0, n=30,
                          missing={"p90": "not rooted"}) if s.summary_only
            else records.latency(s.median_ms, n=30, p90_ms=s.p90_ms, fps_target=30.0)),
        quality=QualityRecord(psnr_y_db=s.psnr_y_db, ssim_y=0.9, frames=2, vmaf=s.vmaf,
                              missing={} if s.vmaf is not None else {"vmaf": "no ffmpeg with libvmaf on this host"})
        if ok else QualityRecord(),
        telemetry=TelemetryRecord(cpu_load_pct=90.0, mem_peak_mb=120.0,
                                  missing={"power_source": "no power meter and no fuel gauge on this device"}),
    )


def write_run(root: Path, run_id: str, devices: dict[str, tuple[DeviceRecord, list[Spec]]],
              scenario: str = "540p30", fps: float = 30.0, started: str = "2026-11-20T10:00:00+00:00") -> Path:
    cells: list[CellRecord] = []
    devs = [d for d, _ in devices.values()]
    for dev, specs in devices.values():
        cells.extend(make_cell(dev, s, len(devs)) for s in specs)
    run = RunRecord(
        perflab_version="test", run_id=run_id,
        scenario=ScenarioRecord(name=scenario, file=f"{scenario}.yaml", sha256="0" * 64, text="name: x",
                                lr_width=960, lr_height=540, scale=2, fps=fps),
        started_utc=started, finished_utc=started, devices=devs, cells=finalize_cells(cells, fps), exit_code=0)
    return records.write_run_folder(root / run_id, run, report_html="<!DOCTYPE html><title>run report</title>")


BASE = [Spec("bicubic_x2", "fp32", "xnnpack", 2.0, 2.5, 30.0), Spec("bicubic_x2", "fp32", "gpu", 1.5, 2.0, 30.0)]


def standard_runs(root: Path) -> list[Path]:
    """Two runs: real Pixel 7 + Galaxy S23 (as android phones), an emulated Redmi Note 12 Pro and
    an emulated Pixel 7, and `local`. Budget 33.33 ms (30 fps), quality floor Δ PSNR-Y ≥ 0 dB."""
    pixel = profile_device("pixel7", "PX7REAL01", "android")
    s23 = profile_device("galaxy_s23", "R5CW12345", "android")
    redmi_emu = profile_device("redmi_note12pro", "127.0.0.1:7401", "emulated")
    pixel_emu = profile_device("pixel7", "127.0.0.1:7402", "emulated")
    r1 = write_run(root, "20261120T100000Z-aaaa", {
        "px": (pixel, [*BASE,
                       Spec("espcn_x2", "int8", "xnnpack", 20.0, 25.0, 31.0),       # rt_q
                       Spec("espcn_x2", "int8", "gpu", 12.0, 14.0, 31.0),           # rt_q (best)
                       Spec("fsrcnn_x2", "fp32", "xnnpack", 50.0, 60.0, 31.5),      # slow
                       Spec("fsrcnn_x2", "fp32", "gpu", status=CellStatus.UNSUPPORTED,
                            reason="TRANSPOSE_CONV is not supported by the GPU delegate"),
                       Spec("edsr_x2", "fp16", "xnnpack", 28.0, 31.0, 32.0)]),     # rt_q
        "s23": (s23, [*BASE,
                      Spec("espcn_x2", "int8", "xnnpack", 10.0, 12.0, 30.9),        # rt_q
                      Spec("fsrcnn_x2", "fp32", "xnnpack", 25.0, 30.0, 31.5),       # rt_q
                      Spec("fsrcnn_x2", "fp32", "gpu", 8.0, 9.0, 29.8),             # rt only (Δ -0.2 dB)
                      Spec("edsr_x2", "fp16", "xnnpack", 20.0, 22.0, 32.0)]),      # rt_q
    })
    r2 = write_run(root, "20261121T100000Z-bbbb", {
        "redmi": (redmi_emu, [*BASE,
                              Spec("espcn_x2", "int8", "xnnpack", 22.0, 26.0, 31.0),    # rt_q (emulated)
                              Spec("fsrcnn_x2", "fp32", "xnnpack", 70.0, 80.0, 31.5),   # slow
                              Spec("fsrcnn_x2", "fp32", "gpu", status=CellStatus.FAILED,
                                   reason="GPU delegate: clCreateContext failed <script>alert(1)</script>")]),
        "pxemu": (pixel_emu, [*BASE, Spec("espcn_x2", "int8", "xnnpack", 21.0, 24.0, 31.0)]),
        "local": (LOCAL, [BASE[0], Spec("espcn_x2", "int8", "xnnpack", 5.0, 6.0, 31.0),
                          Spec("fsrcnn_x2", "fp32", "xnnpack", 15.0, 17.0, 31.5)]),
    }, started="2026-11-21T10:00:00+00:00")
    return [r1, r2]


def imported_device(serial: str, model: str, soc: str, manufacturer: str) -> DeviceRecord:
    """A phone perflab did not measure, as `perflab import` names it from a getprop dump."""
    return DeviceRecord(serial=serial, kind="imported", model=model, soc=soc,
                        extra={"manufacturer": manufacturer, "android_release": "14"})


def write_imported_run(root: Path, run_id: str, dev: DeviceRecord, specs: list[Spec], *,
                       lr: tuple[int, int] = (960, 540), started: str = "2026-11-22T10:00:00+00:00") -> Path:
    """A run folder shaped like `perflab import`'s: scenario "import" (no fps: no verdicts of its own),
    the capture's input size, cells with the tool's mean/std/n only and their provenance."""
    cells = [records.cell(
        f"{s.model}.{s.variant}.{s.delegate}", device=dev, family=s.model.split("_")[0], status=s.status,
        reason=s.reason, artifact_key=f"{dev.serial}/{s.model}.{s.variant}.{s.delegate}",
        latency_ms=LatencyRecord(mode="paced", source="tool summary (imported capture)", mean=s.median_ms, std=0.8,
                                 n=50, missing={"p90": "an imported capture gives only the tool's mean, std and count"})
        if s.status == CellStatus.OK else None,
        provenance=records.provenance(f"{dev.serial}_{s.model}.log", sha256=f"{len(s.model):02x}" * 32))
        for s in specs]
    run = RunRecord(
        perflab_version="test", run_id=run_id,
        scenario=ScenarioRecord(name="import", file=cells[0].provenance.source_file if cells[0].provenance else "",
                                sha256="1" * 64, text="perflab import", lr_width=lr[0], lr_height=lr[1], scale=2),
        started_utc=started, finished_utc=started, devices=[dev], cells=cells, exit_code=0)
    return records.write_run_folder(root / run_id, run)
