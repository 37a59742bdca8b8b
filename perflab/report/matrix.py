"""The compatibility matrix: devices × (model, variant, delegate, scale), coverage of a device
catalog, and the gaps — built from the runs' DataFrame (perflab.store.frame), pure.

Rules (also stated on the page and in docs/matrix.md):

* A cell's verdict: ``rt_q`` meets real time (the run's realtime record: p90 ≤ 1000/fps, or the
  mean where the tool gives only mean and std) and the quality floor (Δ PSNR-Y versus bicubic on
  the same device and delegate ≥ the floor in dB; or, with ``quality_metric="vmaf"``, Δ VMAF
  versus bicubic ≥ the floor in VMAF points); ``rt`` meets real time only; ``slow``; ``unsupported``;
  ``failed``; ``nobudget`` (ok, but no verdict: unpaced scenario); ``notrun``.
* A model (name × variant × scale) **covers** a device when ANY of its delegates is ``rt_q``
  there. Where one device was measured in several runs, the newest measurement of each cell counts.
* Coverage of a catalog row: **measured** when a phone matching the row (ro.product.model = the
  row's model, name or model code) was measured with the model and covers; **inferred** when no
  matching phone was measured with the model, and every measured phone with the same SoC (and the
  same GPU where both GPUs are known) that ran the model is covered — at least one. Measured and
  measured + inferred are reported side by side, never summed silently.
* **Imported** cells (numbers read from a capture perflab did not measure: ``perflab import``,
  CellRecord.imported) are a third kind beside measured and inferred. An imported run has no
  scenario of its own: its cells join the chosen scenario's matrix when their input size is the
  scenario's (else they are left out with a note), judged against its frame budget by the same
  real-time rule (perflab.analysis.derive.realtime_verdict; the tool's mean, marked); their
  quality is perflab's own measurement of the same model × variant × delegate (median Δ PSNR-Y
  over the measured phones; a capture holds no pictures), and without one they cannot cover.
  A catalog row matched by a phone whose perflab-measured cells ran the model is measured;
  else, matched by a phone whose imported cells ran it, **imported**; else inferred from every
  phone of its chip that ran it (measured or imported). Imported share has its own column and
  counts in the total (measured + imported + inferred).
* Emulated phones are left out of coverage unless asked (``include_emulated``); their rows stay in
  the matrix, badged.
* A cell's latency is the headline statistic (perflab.analysis.derive.headline_latency, a frame
  column): p90
  where per-run samples were measured, else the tool's mean, marked "mean".
* The 90% line: the cheapest model that crosses it — lowest headline latency (median over the
  catalog phones that cover it, best delegate each), then lowest energy per frame when measured.
* Gaps: catalog rows neither measured nor inferable (no measured phone with their SoC), grouped
  by SoC (+ GPU), biggest share first.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import pandas as pd

from perflab.analysis.derive import realtime_verdict
from perflab.errors import UserInputError
from perflab.report.matrix_catalog import Catalog, CatalogRow, gpu_key, soc_key
from perflab.report.view_common import html_id

COVERAGE_LINE_PCT = 90.0
VERDICTS = {
    "rt_q": "meets real time and the quality floor",
    "rt": "meets real time only (quality below the floor or not measured)",
    "base_rt": "bicubic baseline: meets real time",
    "slow": "too slow for the frame budget",
    "unsupported": "not supported (delegate or ops)",
    "failed": "failed",
    "nobudget": "measured, no real-time verdict (unpaced scenario, or a row from the index alone)",
    "notrun": "not run",
}


def _v(x: object) -> Any:
    """A frame value → plain Python (pd.NA / NaN → None)."""
    if x is None or x is pd.NA:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    if hasattr(x, "item"):
        return x.item()
    return x


@dataclass(frozen=True)
class Column:
    key: str
    model_name: str
    variant: str
    delegate: str
    scale: int | None
    baseline: bool

    @property
    def label(self) -> str:
        return f"{self.model_name} · {self.variant} · {self.delegate}"


@dataclass
class Cell:
    verdict: str
    status: str
    reason: str | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    latency_ms: float | None = None  # the headline: p90 where measured, else the mean
    latency_statistic: str | None = None  # "p90" or "mean"
    budget_ms: float | None = None
    rt_statistic: str | None = None
    rt_value_ms: float | None = None
    rt_rule: str | None = None
    delta_psnr_y_db: float | None = None
    delta_vmaf: float | None = None
    delta_current_ma: float | None = None
    energy_mj_per_frame: float | None = None
    missing: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    report: str | None = None  # path to the run report, relative to the matrix page when possible
    imported: bool = False  # read from a capture perflab did not measure: labelled IMPORTED
    provenance: str | None = None  # the capture: "file (sha256 …)"
    quality_from: str | None = None  # an imported cell's Δ PSNR-Y: whose measurement it is


@dataclass
class DeviceRow:
    key: str  # html-safe id
    serial: str
    kind: str
    emulated: bool
    model: str
    manufacturer: str | None
    soc: str | None
    gpu: str | None
    android: str | None
    catalog_line: int | None  # the catalog row this phone matches
    catalog_name: str | None
    share_pct: float | None
    cells: dict[str, Cell]
    reports: list[str]
    imported: bool = False  # every cell of this phone is imported (a phone perflab did not measure)


@dataclass
class CoverageRow:
    model_name: str
    variant: str
    scale: int | None
    measured_pct: float
    inferred_pct: float  # on top of measured
    total_pct: float  # measured + inferred
    measured_devices: list[str]
    inferred_devices: list[str]
    latency_ms: float | None  # headline latency, median over the catalog phones measured to cover it (best delegate)
    latency_statistic: str | None  # "p90", "mean", or "p90/mean" where the phones differ
    energy_mj_per_frame: float | None
    crosses_measured: bool
    crosses_total: bool  # measured + imported + inferred
    imported_pct: float = 0.0  # rows matched by a phone whose imported captures ran the model (on top of measured)
    imported_devices: list[str] = field(default_factory=list)


@dataclass
class Gap:
    soc: str
    gpu: str | None
    share_pct: float
    devices: list[str]


@dataclass
class Matrix:
    scenario: str
    fps: float | None
    budget_ms: float | None
    quality_floor_db: float
    include_emulated: bool
    columns: list[Column]
    devices: list[DeviceRow]
    catalog: Catalog | None
    coverage: list[CoverageRow]  # with the include_emulated setting
    coverage_other: list[CoverageRow]  # with the other setting (the page's switch)
    gaps: list[Gap]
    gaps_other: list[Gap]
    cheapest_measured: str | None
    cheapest_total: str | None
    notes: list[str]
    runs: list[str]
    quality_metric: str = "psnr_y"  # the quality column the verdict uses: "psnr_y" (dB) or "vmaf" (points)
    quality_floor_vmaf: float = 0.0

    @property
    def quality_rule(self) -> str:
        """The quality floor in words."""
        if self.quality_metric == "vmaf":
            return f"Δ VMAF vs bicubic ≥ {self.quality_floor_vmaf:g}"
        return f"Δ PSNR-Y vs bicubic ≥ {self.quality_floor_db:g} dB"

    def to_json(self) -> str:
        d = asdict(self)
        if self.catalog is not None:
            d["catalog"] = {"file": self.catalog.file, "format": self.catalog.fmt, "source": self.catalog.source,
                            "example": self.catalog.example, "share_sum_raw_pct": self.catalog.share_sum_raw_pct,
                            "warnings": list(self.catalog.warnings), "devices": len(self.catalog.rows)}
        d["schema"] = "perflab.matrix/3"
        d["rules"] = {"covered": f"ANY delegate meets real time and {self.quality_rule}",
                      "line_pct": COVERAGE_LINE_PCT, "verdicts": VERDICTS}
        return json.dumps(d, indent=2, ensure_ascii=False)


# ---------------------------------------------------------------- selecting runs


def _imported_mask(df: pd.DataFrame) -> pd.Series:
    if "imported" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["imported"].fillna(False).astype(bool)


def _join_imported(own: pd.DataFrame, imported: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Imported rows whose input size is the scenario's (``own``'s); the others are left out with a note."""
    if imported.empty or own.empty:
        return imported
    size = own[["lr_width", "lr_height"]].dropna().drop_duplicates()
    if size.empty:
        return imported
    w, h = _v(size.iloc[0]["lr_width"]), _v(size.iloc[0]["lr_height"])
    fits = (imported["lr_width"] == w) & (imported["lr_height"] == h)
    fits = fits.fillna(False).astype(bool)
    for (run_id, iw, ih), grp in imported[~fits].groupby(["run_id", "lr_width", "lr_height"], dropna=False):
        notes.append(f"IMPORTED run {run_id}: {len(grp)} cell(s) measured at {_v(iw)}×{_v(ih)} input, the "
                     f"scenario's is {w}×{h}: left out (import with --lr {w}x{h} where the capture does not "
                     "state its input size)")
    kept: pd.DataFrame = imported[fits]
    return kept


def select_scenario(df: pd.DataFrame, scenario: str | None) -> tuple[pd.DataFrame, list[str]]:
    """One scenario's rows, newest measurement of each device × cell; mixed scenarios are refused.
    Imported rows (no scenario of their own) join the chosen scenario when their input size is its."""
    notes: list[str] = []
    if df.empty:
        raise UserInputError("no cells in the given runs: nothing to put in a matrix")
    imp = _imported_mask(df)
    imported = df[imp]
    if not imported.empty and not imp.all():
        df = df[~imp]
    else:
        imported = df.iloc[0:0]
    names = sorted(str(x) for x in df["scenario"].dropna().unique())
    if scenario is not None:
        if scenario not in names:
            raise UserInputError(f"--scenario: {scenario!r} is not among the runs' scenarios ({', '.join(names)})")
        df = df[df["scenario"] == scenario]
    elif len(names) > 1:
        raise UserInputError(f"runs of {len(names)} different scenarios are mixed ({', '.join(names)}): "
                             "pick one with --scenario NAME")
    shapes = df[["fps", "lr_width", "lr_height"]].dropna(how="all").drop_duplicates()
    if len(shapes) > 1:
        desc = "; ".join(f"fps {_v(r.fps)}, {_v(r.lr_width)}×{_v(r.lr_height)}" for r in shapes.itertuples())
        raise UserInputError(f"scenario {names[0] if scenario is None else scenario!r}: runs disagree on fps or "
                             f"geometry ({desc}): their verdicts cannot share a matrix; pass runs of one version")
    joined = _join_imported(df, imported, notes)
    if not joined.empty:
        df = pd.concat([df, joined], ignore_index=True)
    df = df.sort_values("run_started_utc", kind="stable")
    latest = df.drop_duplicates(subset=["device_serial", "cell_id"], keep="last")
    if len(latest) < len(df):
        notes.append(f"{len(df) - len(latest)} older measurement(s) of the same device × cell superseded by "
                     "newer runs (the newest counts)")
    return latest, notes


# ---------------------------------------------------------------- cells


QUALITY_METRICS = {"psnr_y": "delta_psnr_y_db", "vmaf": "delta_vmaf"}  # the matrix's quality column choice


def _verdict(status: str, meets: bool | None, baseline: bool, delta: float | None, floor: float) -> str:
    if status == "unsupported":
        return "unsupported"
    if status == "failed":
        return "failed"
    if status != "ok":
        return "notrun"
    if meets is None:
        return "nobudget"
    if not meets:
        return "slow"
    if baseline:
        return "base_rt"
    return "rt_q" if delta is not None and delta >= floor else "rt"


_QualityKey = tuple[str, str, str]
_Measured = dict[_QualityKey, tuple[float, list[str]]]


def _measured_quality(sel: pd.DataFrame, column: str) -> _Measured:
    """(model, variant, delegate) → (median of a quality delta column over perflab's measured phones,
    those phones), for imported cells (a capture holds no pictures)."""
    by: dict[_QualityKey, list[tuple[float, str]]] = {}
    if column not in sel.columns:
        return {}
    for r in sel[~_imported_mask(sel)].itertuples():
        d = _v(getattr(r, column))
        if d is not None and str(r.status) == "ok":
            by.setdefault((str(r.model_name), str(r.model_variant), str(r.delegate)), []).append(
                (float(d), str(r.device_model)))
    return {k: (median(x for x, _ in v), sorted({m for _, m in v})) for k, v in by.items()}


@dataclass(frozen=True)
class _Judged:
    meets: bool | None
    statistic: str | None
    value_ms: float | None
    budget_ms: float | None
    rule: str | None
    delta_psnr_y_db: float | None
    delta_vmaf: float | None
    quality_from: str | None
    missing: dict[str, str]


def _judge(r: Any, fps: float | None, quality: Mapping[str, _Measured], missing: dict[str, str]) -> _Judged:
    """A row's real-time verdict and quality deltas: its run's own for a measured row; for an imported
    row, the scenario's budget by the same rule, and perflab's measured quality of the same model."""
    if not bool(_v(r.imported)):
        return _Judged(_v(r.realtime_meets), _v(r.realtime_statistic), _v(r.realtime_value_ms),
                       _v(r.realtime_budget_ms), _v(r.realtime_rule), _v(r.delta_psnr_y_db),
                       _v(getattr(r, "delta_vmaf", None)), None, missing)
    out = dict(missing)
    v = realtime_verdict(fps, _v(r.latency_p90_ms), _v(r.latency_mean_ms), missing.get("latency.p90"))
    if v.missing:
        out["realtime"] = v.missing
    else:
        out.pop("realtime", None)
    if bool(r.baseline):
        return _Judged(v.meets, v.statistic, v.value_ms, v.budget_ms, v.rule, None, None, None, out)
    key = (str(r.model_name), str(r.model_variant), str(r.delegate))
    psnr, vmaf = quality["psnr_y"].get(key), quality["vmaf"].get(key)
    for name, q in (("deltas.psnr_y_db", psnr), ("deltas.vmaf", vmaf)):
        if q is None:
            out[name] = ("an imported capture holds no pictures, and perflab has not measured this model, variant "
                         "and delegate's quality in these runs")
    phones = sorted({m for q in (psnr, vmaf) if q is not None for m in q[1]})
    src = (f"perflab's measurement of the same model, variant and delegate on {', '.join(phones)}"
           + (" (median)" if len(phones) > 1 else "")) if phones else None
    return _Judged(v.meets, v.statistic, v.value_ms, v.budget_ms, v.rule, psnr[0] if psnr else None,
                   vmaf[0] if vmaf else None, src, out)


def _rel(path: str | None, out_dir: Path | None) -> str | None:
    if path is None:
        return None
    if out_dir is None:
        return path
    try:
        return os.path.relpath(path, out_dir)
    except ValueError:
        return Path(path).as_uri()


def _device_row(r: Any, catalog: Catalog | None, notes: list[str]) -> DeviceRow:
    serial = str(r.device_serial)
    model = str(r.device_model)
    match = catalog.row_for(model) if catalog else None
    dev_soc = _v(r.device_soc)
    row = DeviceRow(
        key=html_id("dev", serial, fill="_"), serial=serial, kind=str(r.device_kind), emulated=bool(r.emulated),
        model=model, manufacturer=_v(r.device_manufacturer) or (match.manufacturer if match else None),
        soc=dev_soc or (match.soc if match else None),
        gpu=_v(r.device_gpu) or (match.gpu if match else None), android=_v(r.android_release),
        catalog_line=match.line if match else None, catalog_name=match.name if match else None,
        share_pct=match.share_pct if match else None, cells={}, reports=[])
    if match and dev_soc and soc_key(dev_soc) != match.soc_key:
        notes.append(f"{serial} ({model}) reports SoC {dev_soc!r}, the catalog (line {match.line}) says "
                     f"{match.soc!r}: the catalog's SoC is used for inference")
        row.soc = match.soc
    return row


def _mark_imported(devices: Iterable[DeviceRow], notes: list[str]) -> None:
    """A phone all of whose cells are imported is an imported phone; the notes count imported cells."""
    n_imp = 0
    for dev in devices:
        dev.imported = bool(dev.cells) and all(c.imported for c in dev.cells.values())
        n_imp += sum(1 for c in dev.cells.values() if c.imported)
    if n_imp:
        notes.append(f"{n_imp} IMPORTED cell(s): read from captures perflab did not measure (their provenance names "
                     "the file and its sha256); judged against this scenario's frame budget, quality from "
                     "perflab's own measurement of the same model, variant and delegate")


def build_matrix(df: pd.DataFrame, catalog: Catalog | None, *, scenario: str | None = None,
                 quality_floor_db: float = 0.0, include_emulated: bool = False,
                 out_dir: Path | None = None, quality_metric: str = "psnr_y",
                 quality_floor_vmaf: float = 0.0) -> Matrix:
    if not math.isfinite(quality_floor_db):
        raise UserInputError("--quality-floor-db: must be a finite number of dB")
    if not math.isfinite(quality_floor_vmaf):
        raise UserInputError("--quality-floor-vmaf: must be a finite number of VMAF points")
    if quality_metric not in QUALITY_METRICS:
        raise UserInputError(f"--quality: {quality_metric!r} is not one of {', '.join(QUALITY_METRICS)}")
    floor = quality_floor_vmaf if quality_metric == "vmaf" else quality_floor_db
    sel, notes = select_scenario(df, scenario)
    own = sel[~_imported_mask(sel)]
    first = (own if len(own) else sel).iloc[0]
    fps = _v(first["fps"])
    budget = _v(first["budget_ms"])
    quality = {m: _measured_quality(sel, col) for m, col in QUALITY_METRICS.items()}
    scales = {(str(r.model_name), str(r.model_variant), str(r.delegate)): _v(r.model_scale) for r in own.itertuples()}

    def scale_of(r: Any) -> Any:
        """A row's scale; an imported model that does not name one takes the measured column's."""
        sc = _v(r.model_scale)
        if not sc and bool(_v(r.imported)):
            return scales.get((str(r.model_name), str(r.model_variant), str(r.delegate)), sc)
        return sc

    cols: dict[str, Column] = {}
    for r in sel.itertuples():
        scale = scale_of(r)
        key = f"{r.model_name}|{r.model_variant}|{r.delegate}|{scale}"
        cols.setdefault(key, Column(key, str(r.model_name), str(r.model_variant), str(r.delegate), scale,
                                    bool(r.baseline)))
    columns = sorted(cols.values(), key=lambda c: (not c.baseline, c.model_name, c.variant, c.delegate))
    devices: dict[str, DeviceRow] = {}
    for r in sel.itertuples():
        serial = str(r.device_serial)
        if serial not in devices:
            devices[serial] = _device_row(r, catalog, notes)
        dev = devices[serial]
        key = f"{r.model_name}|{r.model_variant}|{r.delegate}|{scale_of(r)}"
        j = _judge(r, fps, quality, json.loads(str(r.missing)) if _v(r.missing) else {})
        report = _rel(_v(r.report_path), out_dir)
        imported = bool(_v(r.imported))
        prov = _v(r.provenance_file)
        sha = _v(r.provenance_sha256)
        dev.cells[key] = Cell(
            verdict=_verdict(str(r.status), j.meets, bool(r.baseline),
                             j.delta_vmaf if quality_metric == "vmaf" else j.delta_psnr_y_db, floor),
            status=str(r.status), reason=_v(r.reason),
            median_ms=_v(r.latency_median_ms), p90_ms=_v(r.latency_p90_ms), latency_ms=_v(r.latency_headline_ms),
            latency_statistic=_v(r.latency_statistic), budget_ms=j.budget_ms,
            rt_statistic=j.statistic, rt_value_ms=j.value_ms, rt_rule=j.rule, delta_psnr_y_db=j.delta_psnr_y_db,
            delta_vmaf=j.delta_vmaf,
            delta_current_ma=_v(r.delta_current_ma), energy_mj_per_frame=_v(r.energy_mj_per_frame),
            missing=j.missing, run_id=str(r.run_id), report=report, imported=imported,
            provenance=(f"{prov} (sha256 {str(sha)[:12]}…)" if sha else str(prov)) if imported and prov else None,
            quality_from=j.quality_from)
        if report and report not in dev.reports:
            dev.reports.append(report)
    _mark_imported(devices.values(), notes)
    rows = sorted(devices.values(), key=lambda d: (d.emulated, d.kind == "local", -(d.share_pct or 0.0), d.model))
    sr_models = sorted({(c.model_name, c.variant, c.scale) for c in columns if not c.baseline},
                       key=lambda m: (m[0], m[1], m[2] or 0))
    cov, gaps = ([], []) if catalog is None else _coverage(rows, columns, catalog, sr_models, include_emulated)
    cov2, gaps2 = ([], []) if catalog is None else _coverage(rows, columns, catalog, sr_models, not include_emulated)
    if catalog is not None:
        notes.extend(catalog.warnings)
        unmatched = [d for d in rows if d.catalog_line is None and d.kind != "local"]
        if unmatched:
            notes.append("measured phones not in the catalog (they still infer for rows with their SoC): "
                         + ", ".join(f"{d.model} ({d.serial})" for d in unmatched))
    runs = sorted({str(x) for x in sel["run_id"].unique()})
    return Matrix(
        scenario=str(first["scenario"]), fps=fps, budget_ms=budget, quality_floor_db=quality_floor_db,
        include_emulated=include_emulated, columns=columns, devices=rows, catalog=catalog, coverage=cov,
        coverage_other=cov2, gaps=gaps, gaps_other=gaps2, cheapest_measured=cheapest_model(cov, "crosses_measured"),
        cheapest_total=cheapest_model(cov, "crosses_total"), notes=notes, runs=runs, quality_metric=quality_metric,
        quality_floor_vmaf=quality_floor_vmaf)


# ---------------------------------------------------------------- coverage


_State = tuple[bool, bool, float | None, float | None, str | None]


def _model_state(dev: DeviceRow, columns: Sequence[Column], m: tuple[str, str, int | None], *,
                 imported: bool) -> _State:
    """Of the phone's measured cells (``imported`` False) or its imported ones (True): (ran: any cell
    of the model, covered: any delegate rt_q, best headline latency ms, its energy, its statistic)."""
    ran = covered = False
    best: tuple[float, float | None, str | None] | None = None
    for c in columns:
        if (c.model_name, c.variant, c.scale) != m or c.baseline:
            continue
        cell = dev.cells.get(c.key)
        if cell is None or cell.imported != imported:
            continue
        ran = True
        if cell.verdict == "rt_q":
            covered = True
            if cell.latency_ms is not None and (best is None or cell.latency_ms < best[0]):
                best = (cell.latency_ms, cell.energy_mj_per_frame, cell.latency_statistic)
    return ran, covered, best[0] if best else None, best[1] if best else None, best[2] if best else None


def _phone_state(measured: _State, imported: _State) -> _State:
    """What a phone says of a model: its perflab measurement where it ran the model, else its imported captures."""
    return measured if measured[0] else imported


@dataclass(frozen=True)
class _Chips:
    """Measured phones indexed for matching: by catalog line, and by SoC key with their GPU key
    (computed once: a catalog of thousands of rows against hundreds of phones stays fast)."""

    by_line: dict[int, list[DeviceRow]]
    by_soc: dict[str, list[tuple[DeviceRow, str | None]]]

    @classmethod
    def of(cls, used: Sequence[DeviceRow]) -> _Chips:
        by_line: dict[int, list[DeviceRow]] = {}
        by_soc: dict[str, list[tuple[DeviceRow, str | None]]] = {}
        for d in used:
            if d.catalog_line is not None:
                by_line.setdefault(d.catalog_line, []).append(d)
            k = soc_key(d.soc)
            if k is not None:
                by_soc.setdefault(k, []).append((d, gpu_key(d.gpu)))
        return cls(by_line, by_soc)

    def same_chip(self, row: CatalogRow, row_soc: str | None, row_gpu: str | None) -> list[DeviceRow]:
        """Measured phones with the row's SoC, and its GPU where both GPUs are known."""
        if row_soc is None:
            return []
        return [d for d, g in self.by_soc.get(row_soc, []) if row_gpu is None or g is None or g == row_gpu]


def _coverage(devices: Sequence[DeviceRow], columns: Sequence[Column], catalog: Catalog,
              models: Sequence[tuple[str, str, int | None]], include_emulated: bool) -> tuple[list[CoverageRow], list[Gap]]:
    used = [d for d in devices if include_emulated or not d.emulated]
    chips = _Chips.of(used)
    keys = [(row, row.soc_key, row.gpu_key) for row in catalog.rows]
    out: list[CoverageRow] = []
    for m in models:
        own = {d.serial: _model_state(d, columns, m, imported=False) for d in used}
        imp = {d.serial: _model_state(d, columns, m, imported=True) for d in used}
        states = {s: _phone_state(own[s], imp[s]) for s in own}
        measured_pct = imported_pct = inferred_pct = 0.0
        mdev: list[str] = []
        xdev: list[str] = []
        idev: list[str] = []
        lat: list[float] = []
        stats: set[str] = set()
        energy: list[float] = []
        for row, rsoc, rgpu in keys:
            matched = chips.by_line.get(row.line, [])
            direct = [d for d in matched if own[d.serial][0]]
            by = own
            if not direct:
                direct, by = [d for d in matched if imp[d.serial][0]], imp
            if direct:
                if any(by[d.serial][1] for d in direct):
                    if by is own:
                        measured_pct += row.share_pct
                        mdev.append(row.name)
                    else:
                        imported_pct += row.share_pct
                        xdev.append(row.name)
                    lats = [(x, st) for x, st in ((by[d.serial][2], by[d.serial][4]) for d in direct)
                            if x is not None]
                    if lats:
                        best = min(lats, key=lambda t: t[0])
                        lat.append(best[0])
                        stats.add(best[1] or "")
                    energy.extend(e for e in (by[d.serial][3] for d in direct) if e is not None)
                continue
            peers = [d for d in chips.same_chip(row, rsoc, rgpu) if states[d.serial][0]]
            if peers and all(states[d.serial][1] for d in peers):
                inferred_pct += row.share_pct
                idev.append(f"{row.name} ← " + ", ".join(sorted({
                    (p.catalog_name or p.model) + (" (IMPORTED)" if not own[p.serial][0] else "") for p in peers})))
        total = measured_pct + imported_pct + inferred_pct
        out.append(CoverageRow(
            model_name=m[0], variant=m[1], scale=m[2], measured_pct=measured_pct, inferred_pct=inferred_pct,
            imported_pct=imported_pct, imported_devices=xdev,
            total_pct=total, measured_devices=mdev, inferred_devices=idev,
            latency_ms=median(lat) if lat else None, latency_statistic="/".join(sorted(stats, reverse=True)) or None,
            energy_mj_per_frame=median(energy) if energy else None,
            crosses_measured=measured_pct >= COVERAGE_LINE_PCT - 1e-9,
            crosses_total=total >= COVERAGE_LINE_PCT - 1e-9))
    return out, _gaps(chips, keys)


def _gaps(chips: _Chips, keys: Sequence[tuple[CatalogRow, str | None, str | None]]) -> list[Gap]:
    groups: dict[tuple[str, str | None], Gap] = {}
    for row, rsoc, rgpu in keys:
        if row.line in chips.by_line or chips.same_chip(row, rsoc, rgpu):
            continue
        soc = rsoc or "unknown SoC (identify it first)"
        g = groups.setdefault((soc, rgpu), Gap(soc=row.soc if row.soc and rsoc else soc, gpu=row.gpu,
                                               share_pct=0.0, devices=[]))
        g.share_pct += row.share_pct
        g.devices.append(row.name)
    return sorted(groups.values(), key=lambda g: (-g.share_pct, g.soc))


def cheapest_model(cov: Sequence[CoverageRow], flag: str) -> str | None:
    cands = [c for c in cov if getattr(c, flag)]
    if not cands:
        return None
    inf = float("inf")
    best = min(cands, key=lambda c: (c.latency_ms if c.latency_ms is not None else inf,
                                     c.energy_mj_per_frame if c.energy_mj_per_frame is not None else inf,
                                     c.model_name, c.variant))
    return f"{best.model_name} {best.variant}" + (f" ×{best.scale}" if best.scale else "")
