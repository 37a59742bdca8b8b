"""``perflab models ...``: list, build, train, convert, analyze and evaluate the zoo.

perflab/cli/main.py mounts ``app`` (``app.add_typer(models_app, name="models")``). Commands raise
``perflab.errors`` exceptions for bad input (UserInputError → exit 2 by perflab.cli.errors).
TensorFlow is imported only by build/train/convert/analyze.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from perflab.cli.options import number_option
from perflab.core.display import fmt_size
from perflab.core.tflite_file import check_tflite_file
from perflab.errors import ModelError, SourceLocation, UserInputError
from perflab.zoo.convert import VARIANTS
from perflab.zoo.registry import WEIGHTS_DIR, get_artifact, list_models, model_info

app = typer.Typer(help="The SR model zoo: list, build, train, convert, analyze, evaluate.", no_args_is_help=True)


def parse_lr_size(text: str) -> tuple[int, int]:
    """'960x540' → (960, 540)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise UserInputError(f"--lr must be WIDTHxHEIGHT like 960x540, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _variants(text: str) -> tuple[str, ...]:
    vs = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in vs if v not in VARIANTS]
    if bad or not vs:
        raise UserInputError(f"--variants must be a comma list of {', '.join(VARIANTS)}; got {text!r}")
    return vs


@app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    lr: Annotated[str, typer.Option("--lr", help="LR frame size WxH for MACs per frame")] = "960x540",
) -> None:
    """Every model: family, scale, params, MACs per frame at --lr, size per variant, training data."""
    w, h = parse_lr_size(lr)
    rows = [i.to_json(w, h) for i in list_models()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'name':<14} {'params':>8} {'GMAC/frame @' + lr:>18}  " + " ".join(f"{v:>12}" for v in VARIANTS))
    for r in rows:
        sizes = " ".join(f"{fmt_size(r['size_bytes'][v]):>12}" for v in VARIANTS)
        typer.echo(f"{r['name']:<14} {r['params']:>8} {r['gmacs_per_frame']:>18.3f}  {sizes}")


@app.command()
def build(
    family: str,
    scale: Annotated[int, number_option("--scale", integer=True, min=2, max=4, help="upscaling factor")] = 2,
    out: Annotated[Path | None, typer.Option(help="write an UNTRAINED fp32 .tflite here (for profiling)")] = None,
) -> None:
    """Build a family's graph: bicubic is written into the zoo (fixed weights); others print their size."""
    if family == "bicubic":
        from perflab.zoo.ship import ship_bicubic

        for p in ship_bicubic(scales=(scale,), variants=VARIANTS):
            typer.echo(str(p))
        return
    from perflab.zoo import models, ship

    m = models.inference_model(family, models.build(family, scale, batch_size=None), scale)
    typer.echo(f"{family}_x{scale}: {ship.count_params(m)} params, {ship.count_macs_per_lr_pixel(m)} MACs per LR pixel")
    if out is not None:
        from perflab.zoo.convert import convert_keras

        out.write_bytes(convert_keras(m, "fp32"))
        typer.echo(f"untrained fp32 model written to {out}")


@app.command()
def train(
    family: str,
    scale: Annotated[int, number_option("--scale", integer=True, min=2, max=4)] = 2,
    steps: Annotated[int, number_option("--steps", integer=True, min=1, max=10_000_000)] = 2500,
    seed: Annotated[int, number_option("--seed", integer=True, min=0, max=2**32 - 1)] = 0,
    lr_patch: Annotated[int, number_option("--lr-patch", integer=True, min=0, max=4096, help="LR patch side; 0 = 32/24/16 at x2/x3/x4")] = 0,
    kd_weight: Annotated[float, number_option("--kd-weight", min=0, max=1000, help="distillation weight (family 'student')")] = 0.0,
    teacher: Annotated[Path | None, typer.Option(help="teacher .keras checkpoint (family 'student')")] = None,
    variants: Annotated[str, typer.Option()] = ",".join(VARIANTS),
) -> None:
    """Train (seeded, progress bar, CPU minutes), convert to the variants and ship into the zoo."""
    from perflab.zoo.train import TrainConfig, train_and_ship

    cfg = TrainConfig(family, scale, steps=steps, seed=seed, lr_patch=lr_patch, kd_weight=kd_weight,
                      teacher_path=str(teacher) if teacher else "")
    res = train_and_ship(cfg, _variants(variants))
    typer.echo(f"{family}_x{scale}: L1 {res.final_loss:.5f}, {res.seconds:.0f} s, checkpoint {res.checkpoint}")


@app.command()
def convert(
    checkpoint: Path,
    variants: Annotated[str, typer.Option()] = ",".join(VARIANTS),
) -> None:
    """Convert a trained checkpoint ({family}_x{scale}.keras + .json) to TFLite variants in the zoo."""
    if not checkpoint.is_file() or not checkpoint.with_suffix(".json").is_file():
        raise UserInputError(f"{checkpoint}: need the .keras checkpoint and its .json next to it")
    from perflab.zoo.train import load_checkpoint, ship_trained

    model, res = load_checkpoint(checkpoint)
    ship_trained(model, res, _variants(variants))
    typer.echo(f"shipped {res.config.family}_x{res.config.scale} into {WEIGHTS_DIR}")


@app.command()
def analyze(
    family: Annotated[str | None, typer.Argument(help="zoo family (or use --model)")] = None,
    scale: Annotated[int, number_option("--scale", integer=True, min=2, max=4)] = 2,
    variant: Annotated[str, typer.Option()] = "fp32",
    model: Annotated[Path | None, typer.Option(help="any .tflite file instead of a zoo model")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Op list and GPU-delegate compatibility (TFLite analyzer + perflab's Flex-op rule)."""
    from perflab.zoo.analyze import analyze_model

    if model is None:
        if family is None:
            raise UserInputError("give a FAMILY or --model PATH")
        model = get_artifact(family, scale, variant).path
    else:
        check_tflite_file(model, location=SourceLocation("command line", None, "--model"))
    try:
        rep = analyze_model(model)
    except ModelError as exc:  # the user's file (a zoo model the analyzer cannot read is a bug: exit 1)
        if family is None:
            raise UserInputError(str(exc), SourceLocation("command line", None, "--model")) from exc
        raise
    if as_json:
        typer.echo(json.dumps({"model": str(model), **rep.to_json()}, indent=2))
        return
    typer.echo(f"{model.name}: {len(rep.ops)} ops " + ", ".join(f"{k}×{v}" for k, v in rep.op_counts().items()))
    verdict = {True: "compatible", False: "INCOMPATIBLE", None: "not checked"}[rep.gpu_compatible]
    typer.echo(f"GPU delegate (analyzer, TFLite {rep.runtime_version}): {verdict}")
    for i in rep.gpu_issues:
        typer.echo(f"  op #{i.op_index} {i.op_name}: {i.reason} [{i.source}]")


@app.command("evaluate")
def evaluate_cmd(
    family: Annotated[str | None, typer.Argument(help="one family; default all")] = None,
    scale: Annotated[int | None, number_option("--scale", integer=True, min=2, max=4)] = None,
    variants: Annotated[str, typer.Option()] = ",".join(VARIANTS),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """PSNR-Y/SSIM-Y on the held-out images (coffee, chelsea, rocket), per model and variant."""
    from perflab.zoo.quality_table import quality_rows

    infos = [i for i in list_models() if (family is None or i.family == family) and (scale is None or i.scale == scale)]
    if family is not None and not infos:
        model_info(family, scale or 2)  # raises UserInputError naming what exists
    rows = quality_rows(infos, _variants(variants))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['name']:<14} {r['variant']:<13} PSNR-Y {r['psnr_y_db']:.2f} dB  SSIM-Y {r['ssim_y']:.4f}  "
                   f"(bicubic {r['bicubic_psnr_y_db']:.2f} dB, Δ {r['delta_psnr_y_db']:+.2f})")
