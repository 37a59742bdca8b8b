"""The nightly dashboard: trends per phone, model and metric from the results store, offline.

One self-contained HTML page (inline CSS and SVG, no script, nothing fetched): for every
device × cell × metric a trend of its nightly values, each point a link to that night's run
report (a path relative to the page, ``<run folder>/index.html``), the change points found in
the history (perflab.analysis.changepoint) drawn as steps, those in the metric's bad direction
marked as regressions, a strip of each night's status, and a table of flaky cells (status
flipping between ok and not ok). Where the store shares the task queue's database, each night's
units too (ok green, ok with its page failed amber, pending grey only while its job is open,
anything else red). ``dashboard.json`` beside it holds the same data.

Bad directions: latency, power, energy, memory, temperature, CPU/GPU load and PIQE up; PSNR,
SSIM and the MAI score down. A threshold (``latency.median:5%``) also requires a change point
to be at least that large to count as a regression.

An IMPORTED night (a cell read from a capture perflab did not measure: the store's ``imported``
column) is labelled wherever it appears: its point is drawn apart and titled IMPORTED, its cell
and series say so, and a regression line names it.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from perflab.analysis.changepoint import ChangePoint, FlakyCell, detect_change_points, flaky_cells
from perflab.analysis.compare import DEFAULT_METRICS, Threshold
from perflab.analysis.derive import ORDER_STATISTICS, latency_stand_in
from perflab.core.display import fmt_num, fmt_pct
from perflab.report.pages import render, write_files

# where a cell has no value of a latency order statistic (a phone that could not be traced: benchmark_model gives no
# median or p90), the mean stands in, shown as latency.mean (one rule: perflab.analysis.derive.latency_stand_in)
STAND_INS = {f"latency.{s}": f"latency.{latency_stand_in(s)}" for s in ORDER_STATISTICS if latency_stand_in(s)}
_LOWER_IS_WORSE = ("quality.psnr_y_db", "quality.ssim_y", "quality.psnr_rgb_db", "quality.mai2021_score")


def bad_direction(metric: str) -> int:
    """+1 when an increase is bad, −1 when a decrease is."""
    return -1 if metric in _LOWER_IS_WORSE else 1


@dataclass(frozen=True)
class Point:
    run_id: str
    started_utc: str
    value: float
    href: str  # the run report, relative to the dashboard page
    imported: bool = False  # this night's value was read from an imported capture


@dataclass(frozen=True)
class Step:
    run_id: str  # the first night at the new level
    index: int
    before: float
    after: float
    change_pct: float | None
    p_value: float
    regression: bool


@dataclass(frozen=True)
class Series:
    device_serial: str
    device_model: str
    cell_id: str
    metric: str
    points: tuple[Point, ...]
    steps: tuple[Step, ...]
    stands_in_for: str | None = None  # the metric asked for, where this one replaces it

    @property
    def imported(self) -> bool:
        """Any of its points was read from an imported capture."""
        return any(p.imported for p in self.points)

    @property
    def regressed(self) -> bool:
        """The newest level is a regression: the last step is one."""
        return bool(self.steps) and self.steps[-1].regression


@dataclass(frozen=True)
class NightStatus:
    run_id: str
    status: str
    reason: str | None
    href: str


@dataclass(frozen=True)
class CellTrends:
    device_serial: str
    device_model: str
    device_kind: str
    cell_id: str
    statuses: tuple[NightStatus, ...]
    series: tuple[Series, ...]
    imported: bool = False  # any of its nights was read from an imported capture


@dataclass(frozen=True)
class NightUnit:
    """One phone × scenario of a night as the task queue recorded it (a PostgreSQL store shares
    the queue's database); ``status`` is already settled: "pending" only while its job is open."""

    night: str
    host: str
    serial: str
    scenario: str
    status: str  # ok / failed / quarantined / unreachable / interrupted / pending
    reason: str | None = None
    report_failed: bool = False  # measured and stored, only its page failed (perflab report rebuilds it)

    @property
    def shown(self) -> str:
        return "ok, report failed" if self.status == "ok" and self.report_failed else self.status

    @property
    def css(self) -> str:
        """ok green; ok with its page failed amber; pending grey; anything else red — never green."""
        if self.status == "ok":
            return "n-report" if self.report_failed else "n-ok"
        return "n-pending" if self.status == "pending" else "n-bad"


def nights_of(units: Sequence[NightUnit]) -> list[tuple[str, list[NightUnit]]]:
    """The units grouped by night, newest night first, ok units last within a night (pure)."""
    by: dict[str, list[NightUnit]] = {}
    for u in units:
        by.setdefault(u.night, []).append(u)
    order = {"n-bad": 0, "n-report": 1, "n-pending": 2, "n-ok": 3}
    return [(n, sorted(us, key=lambda u: (order[u.css], u.host, u.serial, u.scenario)))
            for n, us in sorted(by.items(), reverse=True)]


@dataclass(frozen=True)
class Dashboard:
    scenario: str | None
    runs: int
    metrics: tuple[str, ...]
    cells: tuple[CellTrends, ...]
    flaky: tuple[FlakyCell[tuple[str, str]], ...]
    thresholds: tuple[Threshold, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    units: tuple[NightUnit, ...] = ()  # the nights' units from the task queue, where the store shares its database

    @property
    def regressions(self) -> list[Series]:
        return [s for c in self.cells for s in c.series if s.regressed]


def report_href(folder: str | None, out_dir: Path) -> str:
    if not folder:
        return ""
    return Path(os.path.relpath(Path(folder) / "index.html", out_dir.resolve())).as_posix()


def _is_regression(metric: str, cp: ChangePoint, thresholds: dict[str, Threshold]) -> bool:
    up = cp.after > cp.before
    if (bad_direction(metric) > 0) != up:
        return False
    thr = thresholds.get(metric)
    if thr is None:
        return True
    size = cp.change_pct if thr.relative else cp.after - cp.before
    return size is not None and abs(size) >= abs(thr.value)


def build_dashboard(history: pd.DataFrame, cells: pd.DataFrame, out_dir: Path, *,
                    metrics: Sequence[str] = DEFAULT_METRICS, thresholds: Sequence[Threshold] = (),
                    scenario: str | None = None, min_flips: int = 2, units: Sequence[NightUnit] = ()) -> Dashboard:
    """From the store's frames (SqlStore.history, SqlStore.cells_frame) to the dashboard (pure
    apart from reading nothing: paths are only computed)."""
    thr = {t.metric: t for t in thresholds}
    hist = history[history["metric"].isin([*metrics, *(STAND_INS[m] for m in metrics if m in STAND_INS)])]
    if scenario is not None:
        hist = hist[hist["scenario"] == scenario]
        cells = cells[cells["scenario"] == scenario]
    notes: list[str] = []
    scenarios = sorted(set(cells["scenario"])) if len(cells) else []
    out: list[CellTrends] = []
    keys = (cells[["scenario", "device_serial", "cell_id"]].drop_duplicates().itertuples(index=False)
            if len(cells) else [])
    for scen, serial, cell_id in keys:
        # a cell's trend never mixes scenarios: with several, cells are named scenario:cell_id
        label = str(cell_id) if len(scenarios) == 1 else f"{scen}:{cell_id}"
        crow = cells[(cells["scenario"] == scen) & (cells["device_serial"] == serial) & (cells["cell_id"] == cell_id)]
        statuses = tuple(NightStatus(str(r.run_id), str(r.status), None if pd.isna(r.reason) else str(r.reason),
                                     report_href(str(r.folder), out_dir)) for r in crow.itertuples(index=False))
        last = crow.iloc[-1]
        h = hist[(hist["scenario"] == scen) & (hist["device_serial"] == serial) & (hist["cell_id"] == cell_id)]
        series: list[Series] = []
        shown = {str(x) for x in h["metric"]}
        drawn: set[str] = set()
        for asked in metrics:
            metric, stand_in_for = asked, None
            if asked not in shown and STAND_INS.get(asked) in shown and STAND_INS[asked] not in metrics:
                metric, stand_in_for = STAND_INS[asked], asked
            if metric in drawn:  # the mean already stands in for another order statistic: one series
                continue
            drawn.add(metric)
            m = h[h["metric"] == metric]
            if not len(m):
                continue
            points = tuple(Point(str(r.run_id), str(r.started_utc), float(r.value), report_href(str(r.folder), out_dir),
                                 bool(getattr(r, "imported", False)))
                           for r in m.itertuples(index=False))
            cps = detect_change_points([p.value for p in points])
            t = thr  # a stand-in is judged by the asked metric's threshold unless it has its own
            if stand_in_for is not None and metric not in thr and stand_in_for in thr:
                t = {**thr, metric: thr[stand_in_for]}
            steps = tuple(Step(points[c.index].run_id, c.index, c.before, c.after, c.change_pct, c.p_value,
                               _is_regression(metric, c, t)) for c in cps)
            series.append(Series(str(serial), str(last.device_model), label, metric, points, steps, stand_in_for))
        imported = "imported" in crow.columns and bool(crow["imported"].fillna(False).astype(bool).any())
        out.append(CellTrends(str(serial), str(last.device_model), str(last.device_kind), label, statuses,
                              tuple(series), imported))
    flaky = flaky_cells({(c.device_serial, c.cell_id): [s.status for s in c.statuses] for c in out},
                        min_flips=min_flips)
    runs = int(cells["run_id"].nunique()) if len(cells) else 0
    shown_units = tuple(u for u in units if scenario is None or u.scenario == scenario)
    return Dashboard(scenario, runs, tuple(metrics), tuple(out), tuple(flaky), tuple(thresholds), tuple(notes),
                     shown_units)


# -- rendering --------------------------------------------------------------------------------------------

_W, _H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 360, 120, 46, 10, 10, 18


def trend_svg(s: Series) -> Markup:
    """The trend of one series: points linked to their run reports, the segment levels found by
    change-point detection, regression steps in red."""
    vals = [p.value for p in s.points]
    lo, hi = min(vals), max(vals)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.05 or 1.0), hi + (abs(hi) * 0.05 or 1.0)
    span = hi - lo
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    n = len(vals)

    def x(i: float) -> float:
        return round(_PAD_L + (i / max(n - 1, 1)) * (_W - _PAD_L - _PAD_R), 1) if n > 1 else _W / 2

    def y(v: float) -> float:
        return round(_PAD_T + (hi - v) / (hi - lo) * (_H - _PAD_T - _PAD_B), 1)

    e = html.escape
    parts = [(f'<svg class="trend" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img" '
             f'aria-label="{e(s.metric)} of {e(s.cell_id)} on {e(s.device_serial)}">'),
             f'<line class="axis" x1="{_PAD_L}" x2="{_PAD_L}" y1="{_PAD_T}" y2="{_H - _PAD_B}"/>',
             f'<text class="tick" x="{_PAD_L - 4}" y="{y(hi) + 8}" text-anchor="end">{hi:.4g}</text>',
             f'<text class="tick" x="{_PAD_L - 4}" y="{y(lo)}" text-anchor="end">{lo:.4g}</text>']
    bounds = [0, *[st.index for st in s.steps], n]
    for i in range(len(bounds) - 1):
        a, b = bounds[i], bounds[i + 1]
        level = sum(vals[a:b]) / (b - a)
        parts.append(f'<line class="level" x1="{x(a)}" x2="{x(b - 1)}" y1="{y(level)}" y2="{y(level)}"/>')
    for st in s.steps:
        cls = "step regression" if st.regression else "step"
        xm = round((x(st.index - 1) + x(st.index)) / 2, 1)
        pct = f"{st.change_pct:+.1f}%" if st.change_pct is not None else ""
        parts.append(f'<line class="{cls}" x1="{xm}" x2="{xm}" y1="{_PAD_T}" y2="{_H - _PAD_B}">'
                     f'<title>{"regression" if st.regression else "change"} from {e(st.run_id)}: '
                     f'{st.before:.4g} → {st.after:.4g} {pct} (p={st.p_value:.2g})</title></line>')
    coords = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(vals))
    parts.append(f'<polyline class="line" points="{coords}"/>')
    for i, p in enumerate(s.points):
        imp = ' class="imp"' if p.imported else ""
        tag = " IMPORTED (read from a capture measured outside perflab)" if p.imported else ""
        parts.append(f'<a href="{e(p.href)}" class="pt"><circle{imp} cx="{x(i)}" cy="{y(p.value)}" r="3.2">'
                     f'<title>{e(p.run_id)} ({e(p.started_utc)}): {p.value:.4g}{tag}</title></circle></a>')
    parts.append(f'<text class="tick" x="{_PAD_L}" y="{_H - 4}">{e(s.points[0].run_id)}</text>')
    if n > 1:
        parts.append(f'<text class="tick" x="{_W - _PAD_R}" y="{_H - 4}" text-anchor="end">{e(s.points[-1].run_id)}'
                     "</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def render_dashboard_html(d: Dashboard) -> str:
    by_device: dict[tuple[str, str, str], list[CellTrends]] = {}
    for c in d.cells:
        by_device.setdefault((c.device_serial, c.device_model, c.device_kind), []).append(c)
    return render("dashboard.html.j2", {"trend_svg": trend_svg}, d=d, by_device=by_device, nights=nights_of(d.units))


def dashboard_json(d: Dashboard) -> str:
    return json.dumps({"schema": "perflab.dashboard/1", **asdict(d)}, indent=1, default=str)


def write_dashboard(d: Dashboard, out_dir: Path) -> Path:
    files = write_files(out_dir, {"index.html": render_dashboard_html(d), "dashboard.json": dashboard_json(d)},
                        what="the dashboard")
    return files["index.html"]


def regression_text(s: Series) -> str:
    """A series' newest step in one line, as the terminal and JUnit say it:
    ``<serial>/<cell>: <metric> 12.3 → 15.6 (+26.8%) since <run>, p=0.001``."""
    st = s.steps[-1]
    pct = f" ({fmt_pct(st.change_pct, signed=True)})" if st.change_pct is not None else ""
    return (f"{s.device_serial}/{s.cell_id}: {s.metric} {fmt_num(st.before)} → {fmt_num(st.after)}{pct} since "
            f"{st.run_id}, p={fmt_num(st.p_value, '.2g')}" + (" [IMPORTED]" if s.imported else ""))


def dashboard_junit(d: Dashboard) -> str:
    """One testcase per device × cell × metric (classname ``dashboard.<serial>``, its dots made
    ``_``: :func:`perflab.report.junit.classname`): failing when
    its newest level is a regression, with the step's numbers."""
    from perflab.report.junit import JUnitCase, classname, junit_xml

    cases: list[JUnitCase] = []
    for c in d.cells:
        for s in c.series:
            name = f"{s.cell_id}:{s.metric}"
            if s.regressed:
                msg = regression_text(s)
                cases.append(JUnitCase(classname("dashboard", s.device_serial), name, failure=msg,
                                       failure_text=msg + f"\nnights: {len(s.points)}; change points: "
                                       + ", ".join(x.run_id for x in s.steps)))
            else:
                cases.append(JUnitCase(classname("dashboard", s.device_serial), name))
    return junit_xml(f"perflab dashboard {d.scenario or ''}".strip(), cases)
