"""The matrix page and its twins: ``index.html`` (self-contained: inline CSS and JS, no external
URL, jinja2 autoescape), ``matrix.json``, ``matrix.csv`` (one row per device × column) and, when
asked, the runs' DataFrame as Parquet or CSV (``frame.parquet`` / ``frame.csv``).

Imports only the store and the report's own parts (never devices, workloads or the emulator).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from perflab import __version__
from perflab.core.display import MISSING, fmt_missing, fmt_num
from perflab.errors import UserInputError
from perflab.report.matrix import COVERAGE_LINE_PCT, VERDICTS, Cell, Matrix
from perflab.report.pages import render, write_files
from perflab.store.frame import write_frame

MATRIX_FILE = "index.html"
_SWATCH = {"rt_q": "rtq", "rt": "rt", "base_rt": "base", "slow": "slow", "unsupported": "uns", "failed": "fail", "nobudget": "nob",
           "notrun": "nr"}


def _ms(x: float | None) -> str:
    return fmt_num(x, ".2f", "ms")


def cell_tip(c: Cell, power_reason: str) -> str:
    """The hover text of a cell: status, reason, numbers against the budget, rule, power."""
    parts = [f"{VERDICTS[c.verdict]} — status {c.status}"]
    if c.imported:
        parts.insert(0, f"IMPORTED: read from {c.provenance or 'a capture'} measured outside perflab, not by this run")
    if c.reason:
        parts.append(f"reason: {c.reason}")
    head = f"latency {_ms(c.latency_ms)} {c.latency_statistic}" if c.latency_statistic else f"latency {_ms(None)}"
    parts.append(f"{head} (median {_ms(c.median_ms)}, p90 {_ms(c.p90_ms)})"
                 + (f", budget {_ms(c.budget_ms)}" if c.budget_ms else ""))
    if c.rt_rule:
        parts.append(f"real time: {c.rt_statistic or MISSING} {_ms(c.rt_value_ms)} — rule: {c.rt_rule}")
    elif "realtime" in c.missing:
        parts.append(f"real time: {fmt_missing(c.missing['realtime'])}")
    if c.delta_psnr_y_db is not None:
        parts.append(f"Δ PSNR-Y vs bicubic {c.delta_psnr_y_db:+.3f} dB"
                     + (f" — from {c.quality_from}" if c.quality_from else ""))
    else:
        why = c.missing.get("deltas.psnr_y_db") or c.missing.get("deltas.all") or c.missing.get("deltas")
        parts.append(f"Δ PSNR-Y: {fmt_missing(why)}")
    if c.delta_vmaf is not None:
        parts.append(f"Δ VMAF vs bicubic {c.delta_vmaf:+.2f}")
    elif c.status == "ok":
        why = c.missing.get("quality.vmaf") or c.missing.get("deltas.vmaf") or c.missing.get("deltas.all") or c.missing.get("deltas")
        parts.append(f"Δ VMAF: {fmt_missing(why)}")
    pr_ma = c.missing.get("vs_idle.current_ma", power_reason)
    pr_mj = c.missing.get("telemetry.mj_per_frame", power_reason)
    parts.append("ΔmA vs idle: " + (f"{c.delta_current_ma:+.1f}" if c.delta_current_ma is not None else fmt_missing(pr_ma))
                 + "; mJ/frame: " + (f"{c.energy_mj_per_frame:.3g}" if c.energy_mj_per_frame is not None
                                     else fmt_missing(pr_mj)))
    if c.run_id:
        parts.append(f"run {c.run_id}")
    return "\n".join(parts)


def matrix_csv(m: Matrix) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["scenario", "device_serial", "device_kind", "emulated", "device_model", "catalog_name", "soc", "gpu",
                "share_pct", "model_name", "variant", "delegate", "scale", "baseline", "verdict", "status", "reason",
                "median_ms", "p90_ms", "budget_ms", "delta_psnr_y_db", "delta_current_ma", "energy_mj_per_frame",
                "run_id", "report", "catalog_example", "latency_ms", "latency_statistic", "delta_vmaf", "imported",
                "provenance"])
    for d in m.devices:
        for col in m.columns:
            c = d.cells.get(col.key)
            if c is None:
                continue
            w.writerow([m.scenario, d.serial, d.kind, d.emulated, d.model, d.catalog_name or "", d.soc or "",
                        d.gpu or "", "" if d.share_pct is None else f"{d.share_pct:.6g}", col.model_name,
                        col.variant, col.delegate, col.scale or "", col.baseline, c.verdict, c.status, c.reason or "",
                        *("" if v is None else f"{v:.6g}" for v in (c.median_ms, c.p90_ms, c.budget_ms,
                                                                    c.delta_psnr_y_db, c.delta_current_ma,
                                                                    c.energy_mj_per_frame)),
                        c.run_id or "", c.report or "", bool(m.catalog and m.catalog.example),
                        "" if c.latency_ms is None else f"{c.latency_ms:.6g}", c.latency_statistic or "",
                        "" if c.delta_vmaf is None else f"{c.delta_vmaf:.6g}", c.imported, c.provenance or ""])
    return buf.getvalue()


def render_matrix_html(m: Matrix) -> str:
    from perflab.report.matrix import cheapest_model

    power_reason = "no power source recorded"
    tips = {(d.serial, k): cell_tip(c, power_reason) for d in m.devices for k, c in d.cells.items()}
    return render("matrix.html.j2", None,
        m=m, version=__version__, example=bool(m.catalog and m.catalog.example), line_pct=COVERAGE_LINE_PCT,
        verdicts=VERDICTS, swatch=_SWATCH, tips=tips, power_reason=power_reason,
        n_emulated=sum(1 for d in m.devices if d.emulated),
        n_imported=sum(1 for d in m.devices for c in d.cells.values() if c.imported),
        socs=sorted({d.soc for d in m.devices if d.soc}), vendors=sorted({d.manufacturer for d in m.devices if d.manufacturer}),
        kinds=sorted({d.kind for d in m.devices}),
        other_cheapest_m=cheapest_model(m.coverage_other, "crosses_measured"),
        other_cheapest_t=cheapest_model(m.coverage_other, "crosses_total"),
    )


@dataclass(frozen=True)
class MatrixFiles:
    html: Path
    json: Path
    csv: Path
    catalog: Path | None
    frame: Path | None


def write_matrix(m: Matrix, out_dir: Path, frame: pd.DataFrame | None = None, frame_format: str | None = None) -> MatrixFiles:
    texts = {MATRIX_FILE: render_matrix_html(m), "matrix.json": m.to_json() + "\n", "matrix.csv": matrix_csv(m)}
    if m.catalog is not None:
        texts["catalog.csv"] = m.catalog.to_csv()
    files = write_files(out_dir, texts, what="the matrix (--out)", error=UserInputError)
    fr = None
    if frame is not None and frame_format is not None:
        fr = write_frame(frame, out_dir / f"frame.{frame_format}", frame_format)
    return MatrixFiles(files[MATRIX_FILE], files["matrix.json"], files["matrix.csv"], files.get("catalog.csv"), fr)
