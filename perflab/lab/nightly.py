"""A night on the rack: every phone × every scenario, each phone in its own thread.

The unit of work is one phone × one scenario (a *unit*); it is a normal run folder
(``reports/nightly/<night>/<scenario>/<serial>/``) measured by :func:`perflab.lab.runner.run_scenario`
with ``--resume`` semantics: a unit whose folder already holds results measures only the cells
that are not ok, and a unit whose cells are all ok is not run again. That is what makes a night
resumable after a crash, in-process or through the task queue (perflab.lab.queue), which runs
the very same :func:`run_unit`.

Before each phone's turn a health check asks its host's adb server for the phone and runs
``true`` on it. A phone that fails it, or drops and does not come back, raises a transport error
(:data:`RETRY_ON`): the caller retries the unit with exponential backoff (in-process here; the
queue's retry strategy in a worker). A phone whose health check fails
``quarantine.after_failed_health_checks`` times in a row, or whose cells fail
``limits.max_consecutive_failures`` times in a row, is quarantined for the rest of the night:
its remaining units are recorded ``quarantined`` with the reason, and the other phones go on.
Each phone's counters live in ``<night>/state/<serial>.json`` on the host that drives it (a
phone's units always run on its own host, one at a time).

Every unit ends as a record in ``<night>/units/`` (status, reason, cell counts, where its run
folder is, whether the results store took it); ``<night>/nightly.json`` sums them up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from perflab.core.names import serial_filename
from perflab.errors import (
    DeviceError,
    DeviceGoneError,
    DeviceTimeoutError,
    PerflabError,
    RunInterrupted,
    StoreError,
    UserInputError,
)
from perflab.lab.lifecycle import StopController
from perflab.lab.progress import QuietProgress
from perflab.lab.rack import EffectiveLimits, HostProblem, LoadedRack, RackDevice, Resolution
from perflab.store.results import CellRecord, CellStatus, RunRecord

log = logging.getLogger("perflab.nightly")

RETRY_ON: tuple[type[PerflabError], ...] = (DeviceGoneError, DeviceTimeoutError)
"""Transport errors: the unit is tried again later (backoff); finished cells are kept."""
NIGHTLY_SCHEMA = "perflab.nightly/1"


class UnitStatus(StrEnum):
    OK = "ok"  # every cell ok (or unsupported)
    FAILED = "failed"  # a cell failed, or the phone could not be reached
    QUARANTINED = "quarantined"  # the phone was taken out of the night; the rest of its work is not run
    UNREACHABLE = "unreachable"  # its host could not be asked (adb server down)
    INTERRUPTED = "interrupted"  # the night was stopped (signal); a rerun finishes it
    PENDING = "pending"  # queued, not finished (queue mode)


def today_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def check_night(night: str) -> str:
    """A night's name is a folder name: letters, digits, ``-``, ``_``, ``.`` (default: the UTC date)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", night):
        raise UserInputError(f"--night {night!r}: use letters, digits, '-', '_' or '.' (e.g. 2026-11-29)")
    return night


def night_dir(reports_dir: Path, night: str) -> Path:
    return reports_dir / "nightly" / night


def unit_folder(night: Path, scenario: str, serial: str) -> Path:
    return night / scenario / serial_filename(serial)


@dataclass(frozen=True)
class Unit:
    """One phone × one scenario."""

    serial: str
    host: str
    adb: str
    scenario_index: int
    scenario: str
    limits: EffectiveLimits

    @property
    def key(self) -> str:
        return f"{self.scenario}__{serial_filename(self.serial)}"


def plan_units(loaded: LoadedRack, devices: list[RackDevice]) -> list[Unit]:
    """Every device × every scenario, in the rack's order (a phone runs its scenarios in order)."""
    return [Unit(d.serial, d.host, d.adb, i, sc.scenario.name, d.limits)
            for d in devices for i, sc in enumerate(loaded.scenarios)]


@dataclass
class UnitOutcome:
    serial: str
    host: str
    scenario: str
    status: UnitStatus
    reason: str | None = None
    folder: str | None = None
    run_id: str | None = None
    cells: dict[str, int] = field(default_factory=dict)  # cell status → count
    attempt: int = 1
    store: str | None = None  # "indexed" or why not
    report: str | None = None  # "rendered" or why not (None: not asked); a report never fails a measured unit
    finished_utc: str = ""
    run_s: float | None = None  # time inside the runner (prepare, cells, restore); the rest is the night's own

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UnitOutcome:
        return cls(**{**data, "status": UnitStatus(data["status"])})


def _atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def write_outcome(night: Path, unit: Unit, outcome: UnitOutcome) -> None:
    outcome.finished_utc = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _atomic_write_json(night / "units" / f"{unit.key}.json", outcome.to_json())


def read_outcomes(night: Path) -> list[UnitOutcome]:
    out = []
    for p in sorted((night / "units").glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            out.append(UnitOutcome.from_json(json.loads(p.read_text())))
    return out


# ---------------------------------------------------------------------------------------------
# per-phone state: consecutive failures and quarantine


@dataclass
class PhoneState:
    consecutive_failures: int = 0
    failed_health_checks: int = 0
    quarantined: str | None = None  # why, when the phone was taken out of the night


_state_lock = threading.Lock()


def _state_path(night: Path, serial: str) -> Path:
    return night / "state" / f"{serial_filename(serial)}.json"


def load_state(night: Path, serial: str) -> PhoneState:
    try:
        return PhoneState(**json.loads(_state_path(night, serial).read_text()))
    except (OSError, ValueError, TypeError):
        return PhoneState()


def save_state(night: Path, serial: str, state: PhoneState) -> None:
    with _state_lock:
        _atomic_write_json(_state_path(night, serial), asdict(state))


# ---------------------------------------------------------------------------------------------
# one unit


@dataclass(frozen=True)
class UnitOptions:
    store_url: str | None = None  # results store (SQLite path or PostgreSQL URL); None: not indexed
    render: bool = False  # index.html per run folder
    quarantine: bool = True
    after_failed_health_checks: int = 2
    echo: Callable[[str], None] | None = None


def _device(unit: Unit, loaded: LoadedRack) -> Any:
    from perflab.devices.adb import Adb
    from perflab.devices.android import AndroidDevice, TuningOptions

    host, port = unit.adb.rsplit(":", 1)
    t = loaded.scenarios[unit.scenario_index].scenario.tuning
    adb = Adb(host=host.strip("[]"), port=int(port), retries=2, backoff_s=0.5)  # the health check passes its own
    tuning = TuningOptions(stay_awake=t.stay_awake, suspend_charging=t.suspend_charging, pin_governor=t.pin_governor,
                           screen_off=t.screen_off)
    return AndroidDevice(adb, unit.serial, tuning=tuning, timeout_s=max(30.0, unit.limits.health_check_timeout_s))


def health_check(device: Any, timeout_s: float) -> None:
    """The phone is listed as ``device`` by its host's adb server and runs ``true``. A network
    serial (``host:port``) that dropped is connected again first, as the runner does mid-run (the
    adb server does not do it by itself). Raises DeviceGoneError (or DeviceTimeoutError)
    otherwise; an adb server that does not answer makes the phone gone too, from where this
    machine stands."""
    serial = device.serial
    try:
        state = device.dev.adb.state(serial, timeout_s=timeout_s)
        if state != "device" and not (device.is_network_serial and device.wait_online(timeout_s)):
            raise DeviceGoneError(serial, "health check: the adb server " +
                                  ("does not list the phone" if state is None else f"lists the phone as {state!r}"))
        device.dev.shell(["true"], timeout_s=timeout_s)
    except RETRY_ON:
        raise
    except DeviceError as exc:
        raise DeviceGoneError(serial, f"health check: {exc.message}", command=exc.command) from exc


class _Watch(QuietProgress):
    """Counts failed cells in a row on the phone; quarantines it when the limit is reached."""

    def __init__(self, night: Path, unit: Unit, state: PhoneState, stop: StopController, options: UnitOptions) -> None:
        super().__init__(lambda rec: f"  [{rec.device.serial}] {unit.scenario}/{rec.cell_id}: {rec.status.value}"
                                     + (f" — {rec.reason}" if rec.reason else ""))
        self.night, self.unit, self.state, self.unit_stop, self.options = night, unit, state, stop, options

    def _emit(self, text: str) -> None:
        if self.options.echo is not None and text:
            self.options.echo(text)

    def cell_done(self, rec: CellRecord) -> None:
        super().cell_done(rec)
        if rec.status == CellStatus.OK:
            self.state.consecutive_failures = 0
        elif rec.status == CellStatus.FAILED:
            self.state.consecutive_failures += 1
        limit = self.unit.limits.max_consecutive_failures
        if self.options.quarantine and self.state.consecutive_failures >= limit and not self.state.quarantined:
            self.state.quarantined = (f"{self.state.consecutive_failures} failed cells in a row "
                                      f"(limits.max_consecutive_failures: {limit}); last: {rec.cell_id}: {rec.reason}")
            self.unit_stop.request(f"quarantined: {self.state.quarantined}")
        save_state(self.night, self.unit.serial, self.state)


def _counts(run: RunRecord | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in run.cells if run else []:
        out[c.status.value] = out.get(c.status.value, 0) + 1
    return out


def _done(run: RunRecord) -> bool:
    """Every planned cell has an ok (or unsupported) record: nothing left to measure."""
    status = {(c.device.serial, c.cell_id): c.status for c in run.cells}
    return bool(run.planned) and all(
        status.get((p.serial, p.cell_id)) in (CellStatus.OK, CellStatus.UNSUPPORTED) for p in run.planned)


def _previous(folder: Path) -> RunRecord | None:
    """The unit's earlier run, if its folder holds one; a folder a crash left without
    results.json is moved aside (its name says when), so the unit starts afresh."""
    from perflab.store.runfolder import is_run_folder, load_run

    if not folder.exists():
        return None
    if is_run_folder(folder):
        try:
            return load_run(folder)
        except StoreError as exc:
            log.warning("%s: unreadable results (%s); starting the unit again", folder, exc)
    aside = folder.with_name(f".{folder.name}.aside-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}")
    folder.rename(aside)
    return None


_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


def _store(url: str) -> Any:
    """One open store per URL in this process: opening one checks its migrations (a second or so)."""
    from perflab.store.sql import SqlStore

    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = SqlStore(url)
        return store


def warm_store(store_url: str) -> None:
    """Open the store now (a worker, before its first unit); a failure is the first unit's to report."""
    with contextlib.suppress(PerflabError):
        _store(store_url)


def index_run(store_url: str, run: RunRecord, folder: Path) -> str:
    """Index a finished unit's run in the results store; never raises (the run folder keeps it)."""
    try:
        _store(store_url).index_run(run, folder)
        return "indexed"
    except PerflabError as exc:
        why = f"not indexed: {exc}"
    except Exception as exc:  # noqa: BLE001 - a store driver error must not lose the measured unit
        why = f"not indexed: {type(exc).__name__}: {exc}"
    with _stores_lock:  # opened afresh next time (the database may have gone away)
        dropped = _stores.pop(store_url, None)
    if dropped is not None:
        with contextlib.suppress(Exception):
            dropped.close()
    return why


def _before(night: Path, unit: Unit, folder: Path, state: PhoneState, outcome: UnitOutcome,
            options: UnitOptions) -> tuple[bool, RunRecord | None]:
    """(the unit is decided without running it, its earlier run). Decided: the phone is
    quarantined, the folder cannot be used, or every cell was measured already."""
    if state.quarantined:
        outcome.status, outcome.reason = UnitStatus.QUARANTINED, f"phone quarantined earlier tonight: {state.quarantined}"
        return True, None
    try:
        previous = _previous(folder)
    except OSError as exc:
        outcome.reason = f"cannot use the run folder {folder}: {exc}"
        return True, None
    if previous is not None and _done(previous) and previous.finished_utc:
        outcome.status, outcome.reason = UnitStatus.OK, "already measured (not run again)"
        outcome.run_id, outcome.cells = previous.run_id, _counts(previous)
        if options.store_url:
            outcome.store = index_run(options.store_url, previous, folder)
        if options.render:  # a page that failed last time is rendered now
            outcome.report = REPORT_RENDERED if (folder / "index.html").is_file() else outcome_render(folder)
        return True, previous
    return False, previous


def _checked(device: Any, night: Path, unit: Unit, state: PhoneState, outcome: UnitOutcome,
             options: UnitOptions) -> bool:
    """Health check before the phone's turn. True when the phone is quarantined by it; raises
    the transport error (retry later) when it fails below the quarantine rule."""
    try:
        health_check(device, unit.limits.health_check_timeout_s)
    except RETRY_ON as exc:
        state.failed_health_checks += 1
        outcome.reason = f"health check failed ({state.failed_health_checks} in a row): {exc}"
        if options.quarantine and state.failed_health_checks >= options.after_failed_health_checks:
            state.quarantined = outcome.reason
            outcome.status = UnitStatus.QUARANTINED
            save_state(night, unit.serial, state)
            return True
        save_state(night, unit.serial, state)
        write_outcome(night, unit, outcome)
        raise
    state.failed_health_checks = 0
    save_state(night, unit.serial, state)
    return False


def run_unit(loaded: LoadedRack, unit: Unit, night: Path, *, options: UnitOptions = UnitOptions(),
             stop: StopController | None = None, attempt: int = 1) -> UnitOutcome:
    """Measure one phone × one scenario into its run folder, resuming what is there.

    Returns the outcome (also written to ``<night>/units/``). Raises a :data:`RETRY_ON` error when
    the phone is not reachable (health check) or dropped and cells are left, and RunInterrupted
    when ``stop`` was asked: the caller tries again later, and finished cells are kept."""
    from perflab.lab.runner import RunOptions, run_scenario
    from perflab.store.runfolder import load_run

    folder = unit_folder(night, unit.scenario, unit.serial)
    outcome = UnitOutcome(unit.serial, unit.host, unit.scenario, UnitStatus.FAILED, folder=str(folder),
                          attempt=attempt)
    state = load_state(night, unit.serial)
    early, previous = _before(night, unit, folder, state, outcome, options)
    if early:
        write_outcome(night, unit, outcome)
        return outcome
    device = _device(unit, loaded)
    if _checked(device, night, unit, state, outcome, options):
        write_outcome(night, unit, outcome)
        return outcome

    unit_stop = StopController()
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        unit_stop.request(f"job timed out after {unit.limits.job_timeout_s:g} s (limits.job_timeout_s)")

    timer = threading.Timer(unit.limits.job_timeout_s, on_timeout)
    timer.daemon = True
    watch = _Watch(night, unit, state, unit_stop, options)
    parent = stop or StopController()
    t0 = time.monotonic()
    try:
        timer.start()
        with parent.cancelling(lambda: unit_stop.request(parent.reason or "stopped", parent.signal_name)):
            result = run_scenario(loaded.scenarios[unit.scenario_index], [device], folder, progress=watch,
                                  stop=unit_stop, previous=previous,
                                  options=RunOptions(reconnect_wait_s=unit.limits.reconnect_wait_s))
        run = result.run
    except PerflabError as exc:  # the scenario changed since the unit started, inputs unreadable, …
        outcome.reason = f"{type(exc).__name__}: {exc}"
        write_outcome(night, unit, outcome)
        return outcome
    finally:
        timer.cancel()
        outcome.run_s = round(time.monotonic() - t0, 3)
    with contextlib.suppress(StoreError):
        run = load_run(folder)  # what is on disk
    outcome.run_id, outcome.cells = run.run_id, _counts(run)
    outcome.status, outcome.reason = _verdict(run, state, unit, timed_out.is_set(), parent)
    if options.store_url:
        outcome.store = index_run(options.store_url, run, folder)
    if options.render:
        outcome.report = outcome_render(folder)
    write_outcome(night, unit, outcome)
    if outcome.status == UnitStatus.INTERRUPTED:
        raise RunInterrupted(outcome.reason or "stopped")
    if outcome.status == UnitStatus.FAILED and not timed_out.is_set():
        health_check(device, unit.limits.health_check_timeout_s)  # gone now: raises, and the unit is retried
    return outcome


def _verdict(run: RunRecord, state: PhoneState, unit: Unit, timed_out: bool,
             parent: StopController) -> tuple[UnitStatus, str | None]:
    not_ok = [c for c in run.cells if c.status not in (CellStatus.OK, CellStatus.UNSUPPORTED)]
    if state.quarantined:
        return UnitStatus.QUARANTINED, state.quarantined
    if timed_out:
        return UnitStatus.FAILED, f"job timed out after {unit.limits.job_timeout_s:g} s (limits.job_timeout_s)"
    if parent.stopped:
        return UnitStatus.INTERRUPTED, parent.reason or "stopped"
    if not not_ok and _done(run):
        return UnitStatus.OK, None
    return UnitStatus.FAILED, ("; ".join(f"{c.cell_id}: {c.status.value}: {c.reason}" for c in not_ok[:3])
                               or "cells missing")


REPORT_RENDERED = "rendered"


def outcome_render(folder: Path) -> str:
    """Render the unit's index.html: "rendered", or why not. Never raises: the unit is measured
    and stored by now, and ``perflab report FOLDER`` rebuilds the page from the folder alone."""
    try:
        from perflab.report.html import render_run_report

        render_run_report(folder)
        return REPORT_RENDERED
    except PerflabError as exc:
        why = f"not rendered: {exc}"
    except Exception as exc:  # a figure library's failure must not fail a measured, stored unit
        log.exception("%s: report not rendered", folder)
        why = f"not rendered: {type(exc).__name__}: {exc}"
    log.warning("%s: report %s", folder, why)
    from perflab.core.names import one_line

    return one_line(why, 300)


def outcome_text(o: UnitOutcome) -> str:
    """A unit's outcome in one line: status (", report failed" when only its page failed), cell
    counts, why, and what the store or the page could not take."""
    cells = ", ".join(f"{n} {s}" for s, n in sorted(o.cells.items()))
    why = f" — {o.reason}" if o.reason else ""
    store = f" [store: {o.store}]" if o.store and o.store != "indexed" else ""
    status = o.status.value + (", report failed" if report_note(o) else "")
    return f"{status}{f' ({cells})' if cells else ''}{why}{store}{report_note(o)}"


def settle(outcomes: list[UnitOutcome], jobs_open: int) -> list[UnitOutcome]:
    """The units as they really stand: a unit still "pending" once no job of the night is open
    ran and ended without recording its outcome (a worker's bug, or its host lost): it is failed,
    never pending forever. Pure."""
    if jobs_open > 0:
        return outcomes
    return [replace(o, status=UnitStatus.FAILED, reason="its job ended without recording an outcome (see the "
                    f"worker's log on {o.host}){f'; last: {o.reason}' if o.reason else ''}")
            if o.status == UnitStatus.PENDING else o for o in outcomes]


def note_page_rebuilt(folder: Path) -> Path | None:
    """``perflab report FOLDER`` rebuilt the page of a nightly unit (``<night>/<scenario>/<serial>/``)
    whose record says it failed: the record (``<night>/units/``) says it is rendered now. Returns
    the record updated, or None when the folder is no unit's or its record needs nothing. The
    queue's table and ``nightly.json`` are brought up to date by the next ``nightly --wait`` or
    rerun of the night."""
    record = folder.parent.parent / "units" / f"{folder.parent.name}__{folder.name}.json"
    try:
        o = UnitOutcome.from_json(json.loads(record.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if o.report in (None, REPORT_RENDERED) or not o.folder or Path(o.folder).resolve() != folder.resolve():
        return None
    o.report = REPORT_RENDERED
    try:
        _atomic_write_json(record, o.to_json())
    except OSError as exc:  # the page is there; only its note could not be written
        log.warning("%s: not updated: %s", record, exc)
        return None
    return record


def report_note(o: UnitOutcome) -> str:
    """What a unit's line adds about its page: nothing when rendered (or not asked), else that
    only the page failed and how to rebuild it."""
    if o.report is None or o.report == REPORT_RENDERED:
        return ""
    where = f": perflab report {o.folder}" if o.folder else ""
    return f" [report {o.report}; the data is kept, rebuild the page{where}]"


# ---------------------------------------------------------------------------------------------
# the in-process night


def backoff_s(limits: EffectiveLimits, attempt: int) -> float:
    """Wait before try ``attempt + 1`` (exponential: backoff, 2×, 4×, …)."""
    return float(limits.retry_backoff_s * (2 ** (attempt - 1)))


def run_unit_with_retries(loaded: LoadedRack, unit: Unit, night: Path, options: UnitOptions,
                          stop: StopController) -> UnitOutcome:
    attempt = 1
    while True:
        try:
            return run_unit(loaded, unit, night, options=options, stop=stop, attempt=attempt)
        except RETRY_ON as exc:
            if attempt >= unit.limits.attempts or stop.stopped:
                log.warning("[%s] %s: giving up after %d tries: %s", unit.serial, unit.scenario, attempt, exc)
                return _last_outcome(night, unit, f"gave up after {attempt} tries: {exc}")
            wait = backoff_s(unit.limits, attempt)
            if options.echo:
                options.echo(f"  [{unit.serial}] {unit.scenario}: {type(exc).__name__}; try {attempt + 1}/"
                             f"{unit.limits.attempts} in {wait:g} s")
            attempt += 1
            try:
                stop.sleep(wait)
            except RunInterrupted:
                return _last_outcome(night, unit, stop.reason or "stopped", UnitStatus.INTERRUPTED)
        except RunInterrupted:
            return _last_outcome(night, unit, stop.reason or "stopped", UnitStatus.INTERRUPTED)


def _last_outcome(night: Path, unit: Unit, reason: str, status: UnitStatus = UnitStatus.FAILED) -> UnitOutcome:
    path = night / "units" / f"{unit.key}.json"
    try:
        outcome = UnitOutcome.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        outcome = UnitOutcome(unit.serial, unit.host, unit.scenario, status)
    if outcome.status not in (UnitStatus.QUARANTINED,):
        outcome.status = status
        outcome.reason = reason if status is UnitStatus.INTERRUPTED else f"{reason} (last: {outcome.reason})"
    write_outcome(night, unit, outcome)
    return outcome


@dataclass
class NightSummary:
    rack: str
    night: str
    folder: Path
    outcomes: list[UnitOutcome]
    problems: list[HostProblem]

    @property
    def exit_code(self) -> int:
        """0 when every unit is ok; 1 when any failed, was quarantined or could not be reached;
        130 when the night was stopped."""
        if any(o.status == UnitStatus.INTERRUPTED for o in self.outcomes):
            return 130
        if self.problems or any(o.status != UnitStatus.OK for o in self.outcomes):
            return 1
        return 0

    def to_json(self) -> dict[str, Any]:
        by: dict[str, int] = {}
        for o in self.outcomes:
            by[o.status.value] = by.get(o.status.value, 0) + 1
        return {"schema": NIGHTLY_SCHEMA, "rack": self.rack, "night": self.night, "units_by_status": by,
                "units": [o.to_json() for o in self.outcomes], "problems": [asdict(p) for p in self.problems],
                "exit_code": self.exit_code}

    def lines(self, runs: Mapping[str, RunRecord] | None = None) -> Iterator[str]:
        """The night's summary: a line per unit, and under it a line per cell of its run where
        ``runs`` (folder → run, :func:`unit_runs`) has it."""
        from perflab.report.cell_lines import cell_lines

        yield f"nightly {self.rack} {self.night}: {len(self.outcomes)} units → {self.folder}"
        for o in sorted(self.outcomes, key=lambda o: (o.host, o.serial, o.scenario)):
            yield f"  {o.host}/{o.serial} {o.scenario}: {outcome_text(o)}"
            run = (runs or {}).get(o.folder or "")
            if run is not None:
                yield from cell_lines(run, indent="    ")
        for p in self.problems:
            yield f"  {p.host}: {p.reason}"


def unit_runs(outcomes: list[UnitOutcome]) -> dict[str, RunRecord]:
    """Each unit's run as its folder on this machine holds it (folder → run). A queued night's
    folders stay on their workers' hosts: those not here are left out, and so are unreadable ones."""
    from perflab.store.runfolder import is_run_folder, load_run

    out: dict[str, RunRecord] = {}
    for o in outcomes:
        if o.folder and is_run_folder(Path(o.folder)):
            with contextlib.suppress(StoreError):
                out[o.folder] = load_run(Path(o.folder))
    return out


def host_down_outcomes(loaded: LoadedRack, resolution: Resolution) -> list[HostProblem]:
    return list(resolution.problems)


def write_summary(summary: NightSummary) -> Path:
    path = summary.folder / "nightly.json"
    _atomic_write_json(path, summary.to_json())
    return path


def run_night(loaded: LoadedRack, resolution: Resolution, night_name: str, reports_dir: Path, *,
              options: UnitOptions, stop: StopController | None = None) -> NightSummary:
    """The whole night in this process: one thread per phone (phones on different hosts' adb
    servers alike), each phone's units in order; a failing phone never stops the others."""
    night = night_dir(reports_dir, night_name)
    night.mkdir(parents=True, exist_ok=True)
    stop = stop or StopController()
    units = plan_units(loaded, resolution.devices)
    by_phone: dict[str, list[Unit]] = {}
    for u in units:
        by_phone.setdefault(u.serial, []).append(u)
    outcomes: list[UnitOutcome] = []
    lock = threading.Lock()

    def phone(units_of: list[Unit]) -> None:
        for u in units_of:
            try:
                o = run_unit_with_retries(loaded, u, night, options, stop)
            except Exception as exc:  # a bug on one phone must not stop the others
                log.exception("[%s] %s: internal error", u.serial, u.scenario)
                o = _last_outcome(night, u, f"internal error: {type(exc).__name__}: {exc}")
            with lock:
                outcomes.append(o)

    threads = [threading.Thread(target=phone, args=(us,), name=f"phone-{s}", daemon=True) for s, us in by_phone.items()]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # short joins keep the main thread free to take signals
            t.join(timeout=0.5)
    summary = NightSummary(loaded.rack.name, night_name, night, outcomes, list(resolution.problems))
    write_summary(summary)
    return summary


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.2) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes (for CLI waits, not tests' bounds)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True
