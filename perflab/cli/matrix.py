"""``perflab matrix``: the compatibility matrix from stored runs (run folders or the results index)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from perflab.cli.errors import EXIT_BAD_INPUT, STORED_INPUT_ERRORS, fail
from perflab.cli.options import number_option
from perflab.errors import UserInputError


class QualityMetric(StrEnum):
    """The matrix's quality column choice (perflab.report.matrix.QUALITY_METRICS)."""

    PSNR_Y = "psnr_y"
    VMAF = "vmaf"


class FrameFormat(StrEnum):
    HTML = "html"
    PARQUET = "parquet"
    CSV = "csv"


def expand_run_paths(paths: list[Path]) -> list[Path]:
    """Run folders as given; a folder without results.json stands for the run folders under it
    (e.g. ``reports/540p30/``), newest layout first by name."""
    from perflab.store.runfolder import find_run_folders, is_run_folder

    out: list[Path] = []
    for p in paths:
        if p.is_file() or is_run_folder(p):
            out.append(p)
            continue
        if not p.is_dir():
            raise UserInputError(f"{p}: no such run folder")
        found = find_run_folders(p, 2)
        if not found:
            raise UserInputError(f"{p}: neither a run folder (no results.json) nor a folder of run folders")
        out.extend(found)
    return out


def matrix_cmd(
    out: Annotated[Path, typer.Option("--out", help="folder for index.html, matrix.json, matrix.csv")],
    run_dirs: Annotated[list[Path] | None, typer.Argument(
        help="run folders (or folders of run folders, e.g. reports/540p30)")] = None,
    db: Annotated[str | None, typer.Option("--db", help="a results store instead of run folders: a SQLite file "
                                           "path (or sqlite:///path) or a postgresql:// URL", envvar="PERFLAB_DB")] = None,
    catalog: Annotated[str | None, typer.Option("--catalog", help="device catalog: perflab CSV, Play Console "
                                                "export with a share column, or a plain list; 'example' for the "
                                                "shipped EXAMPLE catalog (invented shares)")] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="the scenario to show when runs of several "
                                                 "are given")] = None,
    quality_floor_db: Annotated[float, number_option("--quality-floor-db", min=-100, max=100, help="quality floor: Δ PSNR-Y vs "
                                                    "bicubic on the same device and delegate, in dB")] = 0.0,
    quality: Annotated[QualityMetric, typer.Option("--quality", help="the quality column the floor applies to: "
                                                   "psnr_y (Δ PSNR-Y, dB) or vmaf (Δ VMAF, points)")
                       ] = QualityMetric.PSNR_Y,
    quality_floor_vmaf: Annotated[float, number_option("--quality-floor-vmaf", min=-100, max=100, help="quality "
                                                      "floor with --quality vmaf: Δ VMAF vs bicubic on the same "
                                                      "device and delegate, in VMAF points")] = 0.0,
    include_emulated: Annotated[bool, typer.Option("--include-emulated", help="count emulated phones in the "
                                                   "coverage (left out by default)")] = False,
    fmt: Annotated[FrameFormat, typer.Option("--format", help="also write the runs' DataFrame: parquet or csv "
                                             "(html: the page and its JSON/CSV twins only)")] = FrameFormat.HTML,
) -> None:
    """The compatibility matrix: devices × models, catalog coverage against a 90% line, gaps."""
    from perflab.report.matrix import build_matrix
    from perflab.report.matrix_catalog import example_catalog_path, load_catalog
    from perflab.report.matrix_html import write_matrix
    from perflab.store.frame import load_from_db, runs_frame

    try:
        if db is not None and run_dirs:
            raise UserInputError("give run folders or --db, not both")
        if db is not None:
            stored, orphans, notes = load_from_db(db)
            import pandas as pd

            parts = [f for f in (runs_frame(stored), orphans) if len(f)]
            frame = pd.concat(parts, ignore_index=True) if parts else runs_frame([])
            for n in notes:
                typer.echo(f"perflab: warning: {n}", err=True)
        elif run_dirs:
            from perflab.store.frame import load_runs

            frame = runs_frame(load_runs(expand_run_paths(run_dirs)))
        else:
            raise UserInputError("give run folders (perflab matrix reports/540p30 …) or --db FILE")
        cat = None
        if catalog is not None:
            cat = load_catalog(example_catalog_path() if catalog == "example" else Path(catalog))
        m = build_matrix(frame, cat, scenario=scenario, quality_floor_db=quality_floor_db,
                         include_emulated=include_emulated, out_dir=out, quality_metric=quality.value,
                         quality_floor_vmaf=quality_floor_vmaf)
        files = write_matrix(m, out, frame, None if fmt is FrameFormat.HTML else fmt.value)
    except STORED_INPUT_ERRORS as exc:
        fail(exc, EXIT_BAD_INPUT)
    for n in m.notes:
        typer.echo(f"perflab: warning: {n}", err=True)
    label = " [EXAMPLE catalog: invented shares]" if cat is not None and cat.example else ""
    typer.echo(f"matrix: {files.html}  ({len(m.devices)} devices × {len(m.columns)} columns, scenario {m.scenario})")
    if cat is not None:
        who = "incl. emulated phones" if include_emulated else "real phones only"
        typer.echo(f"coverage{label} ({who}; measured / + IMPORTED / + inferred = total; line 90%):")
        for c in m.coverage:
            typer.echo(f"  {c.model_name} {c.variant}: {c.measured_pct:.1f}% / +{c.imported_pct:.1f}% / "
                       f"+{c.inferred_pct:.1f}% = {c.total_pct:.1f}%")
        typer.echo(f"  cheapest over the line: measured: {m.cheapest_measured or 'none'}; "
                   f"measured + imported + inferred: {m.cheapest_total or 'none'}")
        if m.gaps:
            typer.echo("  next SoCs to measure: " + ", ".join(f"{g.soc} ({g.share_pct:.1f}%)" for g in m.gaps[:5]))
    if files.frame is not None:
        typer.echo(f"frame: {files.frame}")
