"""``perflab plan``: the split planner (issue 23) — which layer runs where, measured, solved, run.

Writes a folder like a run folder: ``plan.json`` (schema ``perflab.plan/1``) and ``index.html``.
On ``local`` the processors are the CPU's fp32 and int8 paths (perflab.lab.planner).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from perflab.cli.errors import EXIT_BAD_INPUT, EXIT_SIGINT, fail
from perflab.cli.options import number_option
from perflab.errors import ModelError, PerflabError, RunInterrupted, UserInputError

REPORTS_ROOT = Path("reports")


def _frames(loaded: Any, scale: int, max_frames: int | None) -> list[Any]:
    from perflab.lab.planner import planner_frames
    from perflab.quality.inputs import iter_frames

    frames = []
    for f in iter_frames(loaded.scenario.inputs, loaded.base_dir):
        if f.hr is None:  # an LR-only input (role: lr): no HR to score a plan's PSNR against
            continue
        frames.append((f.name, f.hr))
        if max_frames is not None and len(frames) >= max_frames:
            break
    return planner_frames(frames, scale)


def _read_inputs(scenario: Path, out: Path | None, reports_dir: Path,
                 max_frames: int | None) -> tuple[Any, list[Any], list[dict[str, str]], Path, list[Any]]:
    """(the scenario, its chain models' artifacts, the models skipped with why, the folder, the frames)."""
    from perflab.scenario import load_scenario
    from perflab.store.runfolder import check_new_run_folder, new_run_id
    from perflab.zoo.registry import get_artifact
    from perflab.zoo.segments import CHAIN_FAMILIES

    loaded = load_scenario(scenario)
    sc = loaded.scenario
    scale = int(sc.geometry.scale)
    arts, skipped = [], []
    for ref in sc.models:
        if ref.zoo in CHAIN_FAMILIES:
            arts.append(get_artifact(ref.zoo, scale, "fp32"))
        else:
            skipped.append({"model": ref.display_name, "reason": "not a chain zoo model the planner can cut "
                            f"({', '.join(CHAIN_FAMILIES)})"})
    if not arts:
        raise UserInputError(f"{scenario}: models: no chain zoo model ({', '.join(CHAIN_FAMILIES)}) to plan")
    folder = out if out is not None else reports_dir / sc.name / f"plan-{new_run_id()}"
    check_new_run_folder(folder)
    return sc, arts, skipped, folder, _frames(loaded, scale, max_frames)


def _open_phone(serial: str) -> Any:
    """The phone named by its serial (UserInputError when it is not attached or offers no shell)."""
    from perflab.devices.capabilities import ShellDevice
    from perflab.lab.select import select_devices

    if serial == "all":
        raise UserInputError("--device all: the planner measures on one device; give a phone's serial "
                             "(`perflab devices` lists them)")
    dev = select_devices(serial)[0]
    if not isinstance(dev, ShellDevice):
        raise UserInputError(f"--device {serial}: not a phone perflab can run benchmark_model on")
    dev.info()  # the phone's props, read once here: a phone that does not answer fails before any work
    return dev


def _check_labels(labels: tuple[str, ...]) -> None:
    for label in labels:
        if not label or set(label) - {"F", "I"}:
            raise UserInputError(f"--check-plan {label!r}: give one letter per unit, F (fp32) or I (int8), e.g. FIIF")


def _jobs(arts: list[Any], settings: Any, labels: tuple[str, ...], skipped: list[dict[str, str]],
          check: Any) -> list[tuple[Any, Any]]:
    """(model, its settings) for every model whose units can be had (from the segment cache, or
    its rebuild, which must compute what the shipped file does: else it is skipped with why),
    before any device time; each --check-plan label goes to the models it fits. UserInputError
    for a label that fits none."""
    import dataclasses

    from perflab.errors import ModelError
    from perflab.zoo.segments import SegmentMaker

    jobs, sizes = [], {}
    for art in arts:
        try:
            n = len(SegmentMaker(art, check=check).units())
        except ModelError as exc:
            skipped.append({"model": art.name, "reason": str(exc)})
            continue
        sizes[art.name] = n
        fits = tuple(label for label in labels if len(label) == n)
        skipped.extend({"model": art.name, "reason": f"--check-plan {label}: {len(label)} letters, the model has "
                        f"{n} units"} for label in labels if len(label) != n)
        jobs.append((art, dataclasses.replace(settings, check_plans=fits)))
    for label in labels:
        if sizes and all(len(label) != n for n in sizes.values()):
            raise UserInputError(f"--check-plan {label}: {len(label)} letters, but the models have "
                                 f"{', '.join(f'{k}: {v}' for k, v in sizes.items())} units")
    return jobs


def _emulated(phone: Any) -> bool:
    from perflab.devices.base import DeviceKind

    return bool(phone.info().kind is DeviceKind.EMULATED)


def _inputs_and_phone(scenario: Path, out: Path | None, reports_dir: Path, max_frames: int | None,
                      labels: tuple[str, ...], device: str) -> tuple[Any, list[Any], list[dict[str, str]], Path,
                                                                     list[Any], Any]:
    """The command's inputs and the phone (None on local); one line and exit 2 for bad input,
    exit 1 for a phone that does not answer."""
    try:
        _check_labels(labels)
        sc, arts, skipped, folder, frames = _read_inputs(scenario, out, reports_dir, max_frames)
    except PerflabError as exc:  # reading the command's inputs: whatever fails here is bad input
        fail(exc, EXIT_BAD_INPUT)
    try:
        phone = None if device == "local" else _open_phone(device)
    except PerflabError as exc:  # by its type: an unknown serial 2, a phone that does not answer 1
        fail(exc)
    return sc, arts, skipped, folder, frames, phone


def _plan_local(jobs: list[tuple[Any, Any]], frames: list[Any], stop: Any, progress: Any, note: Any,
                skipped: list[dict[str, str]]) -> list[dict[str, Any]]:
    from perflab.lab.planner import plan_model

    models = []
    for art, s in jobs:
        try:
            models.append(plan_model(art, frames, s, check=stop.check, progress=progress))
        except ModelError as exc:  # this model cannot be planned here; the others still are
            note(f"perflab: {art.name}: not planned: {exc}")
            skipped.append({"model": art.name, "reason": str(exc)})
    return models


def _summary(m: dict[str, Any]) -> str:
    chosen = next(p for p in m["plans"] if p["label"] == m["chosen"])
    err = chosen["error"]["latency_pct"]
    return (f"  {m['model']}: chosen {m['chosen']} ({', '.join(chosen['processors'])}): predicted "
            f"{chosen['predicted']['latency_ms']:.2f} ms, measured {chosen['measured']['latency_ms']:.2f} ms"
            f"{'' if err is None else f' ({err:+.1f}%)'}; PSNR-Y {chosen['measured']['psnr_y_db']:.2f} dB "
            f"(proxy {chosen['predicted']['psnr_y_db']:.2f}); relaxed baseline {m['baseline']['label']}")


def plan_cmd(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML: its learned zoo models (espcn, fsrcnn, abpn, "
                                             "repvgg, teacher, student), geometry, threads and input frames are "
                                             "used")],
    device: Annotated[str, typer.Option(help="where to measure: 'local' (the CPU's fp32 and int8 paths) or a "
                                        "phone's serial (its GPU for fp32, its NPU through NNAPI for int8)")] = "local",
    quality_floor: Annotated[float | None, number_option("--quality-floor", min=0, max=100, help="lowest PSNR-Y "
                                                         "(dB) the chosen plan may reach; default: all-fp32's "
                                                         "PSNR-Y − 0.1 dB")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="the plan folder (new or empty); default: "
                                             "<reports-dir>/<scenario>/plan-<id>")] = None,
    reports_dir: Annotated[Path, typer.Option(help="root of <scenario>/plan-<id>/ folders")] = REPORTS_ROOT,
    rounds: Annotated[int, number_option("--rounds", integer=True, min=1, max=1000,
                                         help="interleaved timing rounds per variant")] = 5,
    iterations: Annotated[int, number_option("--iterations", integer=True, min=1, max=100_000,
                                             help="timed inferences per round (its fastest is the round's sample)")] = 5,
    max_frames: Annotated[int | None, number_option("--max-frames", integer=True, min=1, max=100_000,
                                                    help="quality on at most this many of the scenario's frames")] = None,
    check_plan: Annotated[list[str] | None, typer.Option("--check-plan", help="also run this plan and check it "
                                                         "against its prediction: one letter per unit, F (fp32) or "
                                                         "I (int8), e.g. FIIF; repeatable")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the chosen plans and where they are")] = False,
) -> None:
    """Split a chain model between two processors exactly: measure per-layer costs, switch costs
    and quality sensitivity, solve the latency/quality Pareto front (and FYE-SR's relaxed
    baseline), run the plans as segment models and report measured beside predicted.

    Ctrl-C stops cleanly between measurements; nothing is written then (exit 130)."""
    from perflab.lab.lifecycle import StopController, signals_stop
    from perflab.lab.planner import PlanSettings, plan_document
    from perflab.report.plan_page import plan_page_html
    from perflab.store.runfolder import utc_now_iso

    labels = tuple(check_plan or ())
    sc, arts, skipped, folder, frames, phone = _inputs_and_phone(scenario, out, reports_dir, max_frames, labels,
                                                                 device)
    settings = PlanSettings(lr_width=sc.geometry.lr_width, lr_height=sc.geometry.lr_height, threads=sc.threads,
                            rounds=rounds, iterations=iterations, quality_floor_db=quality_floor)

    def progress(msg: str) -> None:
        if not quiet:
            typer.echo(msg, err=True)

    def note(msg: str) -> None:  # said even under -q
        typer.echo(msg, err=True)

    stop = StopController()
    try:
        jobs = _jobs(arts, settings, labels, skipped, stop.check)
    except PerflabError as exc:  # a label that fits no model: 2; no TensorFlow to make the segments: 1
        fail(exc)
    where = device if phone is None else f"{device} ({phone.info().model}{', emulated' if _emulated(phone) else ''})"
    if not quiet:
        typer.echo(f"perflab plan {sc.name} on {where} → {folder}: {', '.join(a.name for a in arts)}; "
                   f"{len(frames)} frame(s)", err=True)
    started = utc_now_iso()
    models = []
    try:
        with signals_stop(stop, on_first=lambda name: progress(f"perflab: {name}: stopping after this step "
                                                                "(press again to exit at once)")):
            if phone is None:
                models = _plan_local(jobs, frames, stop, progress, note, skipped)
            else:
                from perflab.lab.planner_phone import plan_on_phone

                models = plan_on_phone(phone, jobs, frames, stop, progress, note, folder.name, skipped)
    except RunInterrupted:
        typer.echo("perflab: interrupted: no plan written", err=True)
        raise typer.Exit(EXIT_SIGINT) from None
    except PerflabError as exc:  # by its type: bad input 2, else 1
        fail(exc)

    doc = plan_document(models, scenario=sc.name, device=device, skipped=skipped, started=started,
                        emulated=phone is not None and _emulated(phone),
                        device_model=None if phone is None else phone.info().model)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.json").write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    (folder / "index.html").write_text(plan_page_html(doc), encoding="utf-8")
    for m in models:
        typer.echo(_summary(m))
    typer.echo(f"plan: {folder / 'plan.json'}\nreport: {folder / 'index.html'}")
    sys.stdout.flush()
    if len(models) < len(jobs):  # a model failed: the others are written, the exit says so
        raise typer.Exit(1)
