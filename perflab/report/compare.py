"""``perflab compare``: per-cell changes between two runs, with intervals, tests and verdicts.

Cells are matched by device serial and cell_id; a cell left over on both sides is matched by
device model and cell_id when that pair is unique (a rack phone swapped for another of the
same model). Each metric gets ``perflab.analysis.compare.compare_metric``: raw samples where
the run kept them (latency per iteration from samples.csv, quality per frame), else the
tool's summary (Welch), else one value. Metadata that must match are checked first: a
different scenario (sha256) refuses the comparison unless forced; a different perflab
version, device build fingerprint, model file, TFLite version or a start temperature further
apart than the tolerance are warnings printed beside the numbers. A cell that was ok in A and
is not ok in B is a regression too (its ``status``).

An IMPORTED run (``perflab import``: every cell read from a capture perflab did not measure) has
no scenario of its own: against it the input size (LR width × height) must match instead of the
scenario (refused unless forced), and a cell left over after the two matchings above is matched
by cell_id alone where unique on both sides (the same model measured elsewhere: the device
difference is a warning). Its cells carry only the tool's mean, std and count, so their latency
is compared by Welch's t-test (perflab.analysis.compare.welch_interval); every such cell is
labelled IMPORTED wherever it appears.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from markupsafe import Markup

from perflab.analysis.compare import (
    DEFAULT_ALPHA,
    DEFAULT_CONFIDENCE,
    DEFAULT_METRICS,
    DEFAULT_RESAMPLES,
    MetaDiff,
    MetaRules,
    MetricChange,
    Observation,
    Severity,
    Statistic,
    Threshold,
    Verdict,
    compare_metric,
    metadata_diffs,
)
from perflab.analysis.derive import latency_stand_in
from perflab.errors import UserInputError
from perflab.report.junit import JUnitCase, classname, junit_xml
from perflab.report.pages import render, write_files
from perflab.store.results import CellRecord, CellStatus, LatencyRecord, RunRecord
from perflab.store.runfolder import find_run_folders, is_run_folder, load_run, read_samples
from perflab.store.sql import METRICS, SqlStore

DEFAULT_THRESHOLDS = ("latency.median:5%",)

_LATENCY_STAT = {"median": Statistic.MEDIAN, "mean": Statistic.MEAN, "p90": Statistic.P90}
_QUALITY_FRAME_FIELDS = ("psnr_y_db", "ssim_y", "psnr_rgb_db", "piqe")


@dataclass(frozen=True)
class RunSide:
    run: RunRecord
    folder: Path | None
    samples: Mapping[tuple[str, str], tuple[float, ...]]  # (artifact_key, series) → latency_ms

    @property
    def label(self) -> str:
        return self.run.run_id


def load_side(path: Path) -> RunSide:
    """A run folder (or its results.json) with its raw samples; a StoreError when damaged."""
    folder = path if path.is_dir() else path.parent
    run = load_run(path)
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, series, _it, ms in read_samples(folder):
        acc[(key, series)].append(ms)
    return RunSide(run, folder, {k: tuple(v) for k, v in acc.items()})


def load_sides(path: Path) -> list[RunSide]:
    """A run folder → its run; a folder of run folders (a night: ``<night>/<scenario>/<serial>/``,
    or ``reports/<scenario>/``) → every run under it, up to three levels down."""
    if path.is_file() or is_run_folder(path):
        return [load_side(path)]
    if not path.is_dir():
        raise UserInputError(f"{path}: no such run folder")
    found = find_run_folders(path, 3)
    if not found:
        raise UserInputError(f"{path}: neither a run folder (no results.json) nor a folder of run folders")
    return [load_side(f) for f in found]


def _run_key(side: RunSide) -> tuple[str, tuple[str, ...]]:
    return side.run.scenario.name, tuple(sorted({c.device.serial for c in side.run.cells}))


def _run_model_key(side: RunSide) -> tuple[str, tuple[str, ...]]:
    return side.run.scenario.name, tuple(sorted({c.device.model for c in side.run.cells}))


def compare_nights(a: Sequence[RunSide], b: Sequence[RunSide], thresholds: Sequence[Threshold], *,
                   label_a: str, label_b: str, **kwargs: Any) -> Comparison:
    """Two sets of runs (two nights): runs paired by scenario and phones (then by scenario and
    phone models, where unique), each pair compared as by :func:`compare_runs`, one result.
    A single run on each side is a plain :func:`compare_runs`."""
    if len(a) == 1 and len(b) == 1:
        return compare_runs(a[0], b[0], thresholds, **kwargs)
    b_left = list(b)
    pairs: list[tuple[RunSide, RunSide]] = []
    a_left: list[RunSide] = []
    for side in a:
        match = [o for o in b_left if _run_key(o) == _run_key(side)]
        if len(match) == 1:
            pairs.append((side, match[0]))
            b_left.remove(match[0])
        else:
            a_left.append(side)
    for side in list(a_left):
        match = [o for o in b_left if _run_model_key(o) == _run_model_key(side)]
        if len(match) == 1 and sum(_run_model_key(x) == _run_model_key(side) for x in a_left) == 1:
            pairs.append((side, match[0]))
            b_left.remove(match[0])
            a_left.remove(side)
    parts = [compare_runs(x, y, thresholds, **kwargs) for x, y in pairs]
    cells: list[CellComparison] = []
    run_meta: dict[str, MetaDiff] = {}
    only_a: list[str] = []
    only_b: list[str] = []
    for (x, _y), part in zip(pairs, parts, strict=True):
        scen = x.run.scenario.name
        cells.extend(replace(c, group=scen) for c in part.cells)
        for m in part.run_meta:
            msg = f"{scen}: {m.message}"
            run_meta.setdefault(msg, replace(m, message=msg))
        only_a.extend(f"{scen}:{k}" for k in part.only_a)
        only_b.extend(f"{scen}:{k}" for k in part.only_b)
    only_a.extend(f"{s.run.scenario.name}:{'+'.join(_run_key(s)[1])} (run {s.label}: no partner)" for s in a_left)
    only_b.extend(f"{s.run.scenario.name}:{'+'.join(_run_key(s)[1])} (run {s.label}: no partner)" for s in b_left)
    return Comparison(
        run_a=label_a, run_b=label_b, scenario=", ".join(sorted({x.run.scenario.name for x, _ in pairs})) or "none",
        cells=tuple(cells), only_a=tuple(only_a), only_b=tuple(only_b), run_meta=tuple(run_meta.values()),
        thresholds=tuple(thresholds),
        alpha=float(kwargs.get("alpha", DEFAULT_ALPHA)), confidence=float(kwargs.get("confidence", DEFAULT_CONFIDENCE)),
        resamples=int(kwargs.get("resamples", DEFAULT_RESAMPLES)))


def side_from_store(store: SqlStore, run_id: str) -> RunSide | None:
    """A run by id from the results store: from its folder where that is here, else from the
    record and raw samples the store keeps (a folder on another rack host, or gone)."""
    folder = store.run_folder(run_id)
    if folder is not None and is_run_folder(folder):
        return load_side(folder)
    run = store.load_run(run_id)
    if run is None:
        return None
    return RunSide(run, None, store.samples_by_key(run))


@dataclass(frozen=True)
class CellComparison:
    device_serial: str  # A's serial
    device_serial_b: str
    device_model: str
    cell_id: str
    status_a: str
    status_b: str
    changes: tuple[MetricChange, ...]
    meta: tuple[MetaDiff, ...]
    note: str | None = None  # why there are no numbers (a side not ok)
    status_regression: bool = False  # ok in A, not ok in B
    report_a: str | None = None  # the run report, relative to the comparison's folder
    report_b: str | None = None
    group: str | None = None  # the scenario, when two nights of several runs are compared
    emulated: bool = False  # either side ran on an emulated phone: said wherever the cell appears
    imported: bool = False  # either side was read from an imported capture: said wherever the cell appears

    @property
    def label(self) -> str:
        dev = self.device_serial if self.device_serial == self.device_serial_b else \
            f"{self.device_serial}→{self.device_serial_b}"
        return f"{self.group + ':' if self.group else ''}{dev}/{self.cell_id}"

    @property
    def regressions(self) -> list[MetricChange]:
        return [c for c in self.changes if c.verdict == Verdict.REGRESSION]


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    scenario: str
    cells: tuple[CellComparison, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    run_meta: tuple[MetaDiff, ...]
    thresholds: tuple[Threshold, ...]
    alpha: float
    confidence: float
    resamples: int
    created_utc: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    @property
    def n_regressions(self) -> int:
        return sum(len(c.regressions) + int(c.status_regression) for c in self.cells)

    @property
    def warnings(self) -> list[str]:
        out = [f"run: {m.message}" for m in self.run_meta]
        out += [f"{c.label}: {m.message}" for c in self.cells for m in c.meta]
        return out


# -- observations -----------------------------------------------------------------------------------


def _latency_observation(side: RunSide, cell: CellRecord, field_name: str) -> Observation:
    lat: LatencyRecord | None = cell.latency_ms
    if lat is None:
        return Observation(None, missing="no latency series")
    value = getattr(lat, field_name, None)
    if value is None:  # the tool's summary (mean, std, n) may still stand in
        return Observation(None, mean=lat.mean, std=lat.std, n=lat.n,
                           missing=lat.missing.get(field_name, f"latency {field_name} not measured"))
    samples = side.samples.get((cell.artifact_key, lat.mode), ())
    return Observation(float(value), samples=samples, mean=lat.mean, std=lat.std, n=lat.n)


def _shown_metric(metric: str, a: Observation, b: Observation) -> tuple[str, str | None]:
    """The metric a row shows: an order statistic of latency (median, p90 …) not measured on a side
    (a tool summary) is shown as ``latency.mean``, said so, never as the mean under the order
    statistic's name (perflab.analysis.derive.latency_stand_in); else the metric itself."""
    part, _, stat = metric.partition(".")
    stand_in = latency_stand_in(stat) if part == "latency" else None
    if stand_in is None or (a.value is not None and b.value is not None):
        return metric, None
    whys = {side: o.missing for side, o in (("A", a), ("B", b)) if o.value is None and o.missing}
    why = (next(iter(whys.values())) if len(set(whys.values())) == 1 and len(whys) == 2
           else "; ".join(f"{side}: {w}" for side, w in whys.items()))
    return f"latency.{stand_in}", f"stands in for {metric}, not measured ({why}): the mean is compared"


def observation(side: RunSide, cell: CellRecord, metric: str) -> tuple[Observation, Statistic]:
    """What is known of one metric of one cell: its value and its samples or summary."""
    part, _, name = metric.partition(".")
    if part == "latency":
        return _latency_observation(side, cell, name), _LATENCY_STAT.get(name, Statistic.VALUE)
    if part == "quality":
        value = getattr(cell.quality, name, None)
        if value is None:
            return Observation(None, missing=cell.quality.missing.get(name, f"{name} not measured")), Statistic.VALUE
        frames: tuple[float, ...] = ()
        keys: tuple[str, ...] = ()
        if name in _QUALITY_FRAME_FIELDS:
            vals = [getattr(f, name) for f in cell.quality.per_frame]
            if vals and all(v is not None for v in vals):
                frames = tuple(float(v) for v in vals)
                keys = tuple(f.frame for f in cell.quality.per_frame)
        return Observation(float(value), samples=frames, sample_keys=keys, n=len(frames)), (
            Statistic.MEAN if frames else Statistic.VALUE)
    if part == "telemetry":
        value = getattr(cell.telemetry, name, None)
        if value is None:
            return Observation(None, missing=cell.telemetry.missing.get(name, f"{name} not measured")), \
                Statistic.VALUE
        return Observation(float(value), n=1), Statistic.VALUE
    raise UserInputError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")


# -- matching and comparing ---------------------------------------------------------------------------


def is_imported_run(run: RunRecord) -> bool:
    """Every cell of the run was read from an imported capture (``perflab import``)."""
    return bool(run.cells) and all(c.imported for c in run.cells)


def _by_cell_id(left_a: list[CellRecord], left_b: list[CellRecord]) -> tuple[
        list[tuple[CellRecord, CellRecord]], list[CellRecord], list[CellRecord]]:
    """Leftovers paired by cell_id alone where unique on both sides and one of them is imported."""
    count_a: dict[str, int] = defaultdict(int)
    count_b: dict[str, list[CellRecord]] = defaultdict(list)
    for c in left_a:
        count_a[c.cell_id] += 1
    for c in left_b:
        count_b[c.cell_id].append(c)
    pairs: list[tuple[CellRecord, CellRecord]] = []
    rest_a: list[CellRecord] = []
    taken: set[int] = set()
    for c in left_a:
        kb = count_b.get(c.cell_id, [])
        if count_a[c.cell_id] == 1 and len(kb) == 1 and (c.imported or kb[0].imported):
            pairs.append((c, kb[0]))
            taken.add(id(kb[0]))
        else:
            rest_a.append(c)
    return pairs, rest_a, [c for c in left_b if id(c) not in taken]


def match_cells(a: RunRecord, b: RunRecord) -> tuple[list[tuple[CellRecord, CellRecord]], list[CellRecord],
                                                     list[CellRecord]]:
    """Pairs by (serial, cell_id), then leftovers by (device model, cell_id) where unique, then,
    where one side is imported, by cell_id where unique."""
    b_by_serial = {(c.device.serial, c.cell_id): c for c in b.cells}
    pairs: list[tuple[CellRecord, CellRecord]] = []
    left_a: list[CellRecord] = []
    used: set[tuple[str, str]] = set()
    for c in a.cells:
        other = b_by_serial.get((c.device.serial, c.cell_id))
        if other is not None:
            pairs.append((c, other))
            used.add((other.device.serial, other.cell_id))
        else:
            left_a.append(c)
    left_b = [c for c in b.cells if (c.device.serial, c.cell_id) not in used]
    by_model_a: dict[tuple[str, str], list[CellRecord]] = defaultdict(list)
    by_model_b: dict[tuple[str, str], list[CellRecord]] = defaultdict(list)
    for c in left_a:
        by_model_a[(c.device.model, c.cell_id)].append(c)
    for c in left_b:
        by_model_b[(c.device.model, c.cell_id)].append(c)
    still_a: list[CellRecord] = []
    matched_b: set[int] = set()
    for c in left_a:
        ka, kb = by_model_a[(c.device.model, c.cell_id)], by_model_b.get((c.device.model, c.cell_id), [])
        if len(ka) == 1 and len(kb) == 1:
            pairs.append((c, kb[0]))
            matched_b.add(id(kb[0]))
        else:
            still_a.append(c)
    more, still_a, still_b = _by_cell_id(still_a, [c for c in left_b if id(c) not in matched_b])
    return pairs + more, still_a, still_b


def _run_diffs(a: RunSide, b: RunSide, rules: MetaRules) -> list[MetaDiff]:
    """What differs between the two runs. Against an IMPORTED run (no scenario of its own) the input
    size stands in for the scenario: a different size refuses where the scenario would."""
    imported = [side for side in (a, b) if is_imported_run(side.run)]
    if not imported:
        return metadata_diffs(
            {"scenario_sha256": a.run.scenario.sha256, "perflab_version": a.run.perflab_version},
            {"scenario_sha256": b.run.scenario.sha256, "perflab_version": b.run.perflab_version}, rules)
    out = metadata_diffs({"perflab_version": a.run.perflab_version}, {"perflab_version": b.run.perflab_version},
                         rules)
    sa, sb = a.run.scenario, b.run.scenario
    for side in imported:
        files = sorted({c.provenance.source_file for c in side.run.cells if c.provenance is not None})
        out.append(MetaDiff("imported", None, None, Severity.WARN,
                            f"{'A' if side is a else 'B'} ({side.label}) is IMPORTED from {', '.join(files) or 'captures'} "
                            "measured outside perflab: compared by its input size, not by a scenario"))
    if (sa.lr_width, sa.lr_height) != (sb.lr_width, sb.lr_height):
        sev = Severity.REFUSE if "scenario_sha256" in rules.refuse else Severity.WARN
        out.append(MetaDiff("input_size", f"{sa.lr_width}x{sa.lr_height}", f"{sb.lr_width}x{sb.lr_height}", sev,
                            f"input size differs: {sa.lr_width}×{sa.lr_height} vs {sb.lr_width}×{sb.lr_height} (an "
                            "imported capture that does not state its size: import it with --lr WxH)"))
    return out


def _cell_meta(run: RunRecord, cell: CellRecord) -> dict[str, str | None]:
    return {"device_fingerprint": cell.device.fingerprint, "model_sha256": cell.model.sha256,
            "device_model": cell.device.model, "tflite_version": cell.device.tflite_version,
            "threads": str(cell.threads)}


def _report_link(folder: Path | None, out_dir: Path | None) -> str | None:
    if folder is None or not (folder / "index.html").is_file():
        return None
    if out_dir is None:
        return str(folder / "index.html")
    return Path(os.path.relpath(folder / "index.html", out_dir)).as_posix()


def compare_runs(
    a: RunSide, b: RunSide, thresholds: Sequence[Threshold], *, metrics: Sequence[str] | None = None,
    force: bool = False, rules: MetaRules | None = None, alpha: float = DEFAULT_ALPHA,
    confidence: float = DEFAULT_CONFIDENCE, resamples: int = DEFAULT_RESAMPLES, out_dir: Path | None = None,
) -> Comparison:
    """Compare every matched cell of A and B. A scenario that differs refuses (UserInputError)
    unless ``force``; then it is a warning like the others."""
    rules = rules or MetaRules()
    if force:
        rules = MetaRules(refuse=frozenset(), warn=rules.warn | rules.refuse, temp_tolerance_c=rules.temp_tolerance_c)
    run_meta = _run_diffs(a, b, rules)
    refused = [m for m in run_meta if m.severity == Severity.REFUSE]
    if refused:
        raise UserInputError(f"compare {a.label} {b.label}: refused: {refused[0].message} (the runs measured "
                             "different work); pass --force to compare anyway")
    by_metric = {t.metric: t for t in thresholds}
    names = list(dict.fromkeys([*(metrics or DEFAULT_METRICS), *by_metric]))
    for n in names:
        if n not in METRICS:
            raise UserInputError(f"--metric {n!r}: unknown metric; known: {', '.join(METRICS)}")
    pairs, only_a, only_b = match_cells(a.run, b.run)
    cells: list[CellComparison] = []
    for ca, cb in pairs:
        meta = metadata_diffs(_cell_meta(a.run, ca), _cell_meta(b.run, cb), rules,
                              start_temp_a_c=ca.telemetry.start_temp_c, start_temp_b_c=cb.telemetry.start_temp_c)
        common = {"device_serial": ca.device.serial, "device_serial_b": cb.device.serial,
                  "device_model": ca.device.model, "cell_id": ca.cell_id, "status_a": ca.status.value,
                  "status_b": cb.status.value, "meta": tuple(meta), "report_a": _report_link(a.folder, out_dir),
                  "report_b": _report_link(b.folder, out_dir),
                  "emulated": ca.emulated or cb.emulated or "emulated" in (ca.device.kind, cb.device.kind),
                  "imported": ca.imported or cb.imported}
        if ca.status != CellStatus.OK or cb.status != CellStatus.OK:
            why = "; ".join(f"{side}: {c.status.value}" + (f" ({c.reason})" if c.reason else "")
                            for side, c in (("A", ca), ("B", cb)) if c.status != CellStatus.OK)
            cells.append(CellComparison(changes=(), note=why,
                                        status_regression=ca.status == CellStatus.OK, **common))  # type: ignore[arg-type]
            continue
        changes = []
        shown: set[str] = set()
        for i, metric in enumerate(names):
            oa, stat = observation(a, ca, metric)
            ob, _ = observation(b, cb, metric)
            name, note = _shown_metric(metric, oa, ob)
            if name in shown:  # the mean already stands in for another order statistic: one row
                continue
            shown.add(name)
            if name != metric:
                oa, stat = observation(a, ca, name)
                ob, _ = observation(b, cb, name)
            ch = compare_metric(name, oa, ob, stat, by_metric.get(name) or by_metric.get(metric), alpha=alpha,
                                resamples=resamples, confidence=confidence, seed=i)
            changes.append(ch if note is None else replace(ch, note=note))
        cells.append(CellComparison(changes=tuple(changes), **common))  # type: ignore[arg-type]
    return Comparison(
        run_a=a.label, run_b=b.label, scenario=b.run.scenario.name, cells=tuple(cells),
        only_a=tuple(f"{c.device.serial}/{c.cell_id}" for c in only_a),
        only_b=tuple(f"{c.device.serial}/{c.cell_id}" for c in only_b),
        run_meta=tuple(run_meta), thresholds=tuple(thresholds), alpha=alpha, confidence=confidence,
        resamples=resamples)


# -- outputs ------------------------------------------------------------------------------------------


def _tags(c: CellComparison) -> str:
    return (" [emulated phone]" if c.emulated else "") + (" [IMPORTED]" if c.imported else "")


def comparison_text(cmp: Comparison) -> list[str]:
    """The terminal lines: one per cell × metric, regressions first marked ``REGRESSION``."""
    lines = [(f"compare {cmp.run_a} → {cmp.run_b} (scenario {cmp.scenario}; {cmp.confidence:.0%} intervals; "
             f"thresholds: {', '.join(str(t) for t in cmp.thresholds) or 'none'})")]
    for w in cmp.warnings:
        lines.append(f"  warning: {w}")
    for c in cmp.cells:
        if c.note is not None:
            mark = "REGRESSION " if c.status_regression else ""
            lines.append(f"  {mark}{c.label}: no comparison: {c.note}{_tags(c)}")
            continue
        for ch in c.changes:
            mark = {Verdict.REGRESSION: "REGRESSION ", Verdict.IMPROVEMENT: "improved "}.get(ch.verdict, "")
            lines.append(f"  {mark}{c.label}: {ch.describe()}{_tags(c)}")
    for k in cmp.only_a:
        lines.append(f"  only in A: {k}")
    for k in cmp.only_b:
        lines.append(f"  only in B: {k}")
    lines.append(f"{cmp.n_regressions} regression(s) in {len(cmp.cells)} matched cell(s)")
    return lines


def comparison_junit(cmp: Comparison) -> str:
    """One testcase per cell × metric (classname ``compare[.<scenario>].<serial>``, each part one name
    to a CI tool; name ``<cell_id>:<metric>``);
    a regression fails with the numbers; a missing or untested metric is skipped."""
    cases: list[JUnitCase] = []
    for c in cmp.cells:
        cls = classname("compare", c.group or "", c.device_serial)
        if c.note is not None:
            if c.status_regression:
                cases.append(JUnitCase(cls, f"{c.cell_id}:status", failure=f"{c.label} was ok in {cmp.run_a}, "
                                       f"is {c.status_b} in {cmp.run_b}", failure_text=c.note))
            else:
                cases.append(JUnitCase(cls, f"{c.cell_id}:status", skipped=c.note))
            continue
        meta = "\n".join([*(m.message for m in c.meta), *(["emulated phone"] if c.emulated else []),
                          *(["IMPORTED: read from a capture measured outside perflab"] if c.imported else [])])
        for ch in c.changes:
            text = f"{ch.describe()}\nmethod: {ch.method}" + (f"\nmetadata: {meta}" if meta else "")
            if ch.verdict == Verdict.REGRESSION:
                cases.append(JUnitCase(cls, f"{c.cell_id}:{ch.metric}", failure=f"{c.label}: {ch.describe()}",
                                       failure_text=text))
            elif ch.verdict in (Verdict.MISSING, Verdict.UNTESTED):
                cases.append(JUnitCase(cls, f"{c.cell_id}:{ch.metric}", skipped=ch.describe()))
            else:
                cases.append(JUnitCase(cls, f"{c.cell_id}:{ch.metric}", system_out=text))
    return junit_xml(f"perflab compare {cmp.run_a} {cmp.run_b}", cases, properties=[
        ("run_a", cmp.run_a), ("run_b", cmp.run_b), ("scenario", cmp.scenario),
        ("thresholds", ", ".join(str(t) for t in cmp.thresholds))])


def method_text(ch: MetricChange) -> str:
    """How a change was judged, in words (with its note): one numbered note under the page's
    table, shared by every row judged the same way, so that each row stays one line."""
    return ch.method + (f"; p from {ch.test}" if ch.test else "") + (f"; {ch.note}" if ch.note else "")


def method_notes(cmp: Comparison) -> dict[str, int]:
    """Each distinct method text → its number on the page, in order of first use (pure)."""
    notes: dict[str, int] = {}
    for c in cmp.cells:
        if c.note is None:
            for ch in c.changes:
                notes.setdefault(method_text(ch), len(notes) + 1)
    return notes


def render_comparison_html(cmp: Comparison) -> str:
    return render("compare.html.j2", {"ci_svg": ci_svg}, cmp=cmp, methods=method_notes(cmp), method_text=method_text)


def ci_svg(ch: MetricChange, width: int = 140, height: int = 14) -> Markup:
    """A small bar: the change's interval (blue), its point, zero (grey) and the threshold
    (dashed red), on the threshold's scale (relative: %, absolute: the metric's unit)."""
    rel = ch.threshold is None or ch.threshold.relative
    point = ch.change_pct if rel else ch.diff
    ci = ch.change_pct_ci if rel else ch.diff_ci
    if point is None:
        return Markup("")
    thr = ch.threshold.value if ch.threshold is not None else None
    floor = 1.0 if rel else 0.0  # a relative bar spans at least ±1%
    span = max([abs(point), *(abs(v) for v in (ci or ()) if math.isfinite(v)), abs(thr) if thr is not None else 0.0,
                floor]) * 1.15 or 1.0

    def x(v: float) -> float:
        return round(width / 2 + v / span * (width / 2 - 3), 1)

    mid = height / 2
    parts = [f'<svg class="ci" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
             f'<line class="zero" x1="{x(0)}" x2="{x(0)}" y1="0" y2="{height}"/>']
    if thr is not None:
        parts.append(f'<line class="thr" x1="{x(thr)}" x2="{x(thr)}" y1="0" y2="{height}"/>')
    if ci is not None and all(math.isfinite(v) for v in ci):
        parts.append(f'<line class="bar" x1="{x(ci[0])}" x2="{x(ci[1])}" y1="{mid}" y2="{mid}"/>')
    parts.append(f'<circle cx="{x(point)}" cy="{mid}" r="3"/></svg>')
    return Markup("".join(parts))


def write_comparison(cmp: Comparison, out_dir: Path) -> Path:
    """``out_dir/index.html`` and ``out_dir/junit.xml``; returns the page."""
    files = write_files(out_dir, {"index.html": render_comparison_html(cmp), "junit.xml": comparison_junit(cmp)},
                        what="the comparison")
    return files["index.html"]
