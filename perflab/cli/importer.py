"""``perflab import``: the command-line edge of perflab.lab.importer (captures measured elsewhere)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from perflab.cli.errors import EXIT_BAD_INPUT, EXIT_OK, fail
from perflab.errors import PerflabError, UserInputError


def _lr(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"(\d{1,5})[xX×](\d{1,5})", text.strip())
    if m is None or not (0 < int(m.group(1)) <= 8192 and 0 < int(m.group(2)) <= 8192):
        raise UserInputError(f"--lr: {text!r} is not WIDTHxHEIGHT (each 1..8192), e.g. 480x270")
    return int(m.group(1)), int(m.group(2))


def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="captures: benchmark_model output (any version) or a logcat "
                                                 "capture of the tool or the TFLite benchmark app")],
    device: Annotated[str, typer.Option("--device", help="the phone's name (its serial in the run)")],
    out: Annotated[Path, typer.Option("--out", help="the run folder to write (new)")],
    soc: Annotated[str | None, typer.Option("--soc", help="the phone's SoC (else the getprop dump's "
                                            "ro.soc.model or ro.board.platform)")] = None,
    props: Annotated[Path | None, typer.Option("--props", help="the phone's getprop dump ([key]: [value] lines): "
                                               "model, SoC, Android release")] = None,
    model: Annotated[str | None, typer.Option("--model", help="the model's name, or its .tflite file (then "
                                              "linked to the zoo by sha256); default: the log's graph")] = None,
    variant: Annotated[str | None, typer.Option("--variant", help="fp32|fp16|dynamic_int8|int8|uint8; default: "
                                                "from the model's file name")] = None,
    delegate: Annotated[str | None, typer.Option("--delegate", help="cpu|xnnpack|gpu|nnapi|hexagon; default: "
                                                 "what the log says (delegate lines, flags)")] = None,
    lr: Annotated[str | None, typer.Option("--lr", help="the LR input size WIDTHxHEIGHT when the capture does "
                                           "not echo its input shape")] = None,
) -> None:
    """Import captures measured elsewhere as IMPORTED cells of a new run folder (with provenance)."""
    from perflab.core.files import sha256_file
    from perflab.lab.importer import (
        DELEGATES,
        VARIANTS,
        ImportOptions,
        import_captures,
        read_props,
        zoo_entries,
    )

    try:
        if not device.strip() or any(c in device for c in "/\\:\n"):
            raise UserInputError(f"--device: {device!r} is not a usable name (no '/', '\\', ':' or newline)")
        if delegate is not None and delegate not in DELEGATES:
            raise UserInputError(f"--delegate: {delegate!r} is not one of {', '.join(DELEGATES)}")
        if variant is not None and variant not in VARIANTS:
            raise UserInputError(f"--variant: {variant!r} is not one of {', '.join(VARIANTS)}")
        props_name = props_sha = None
        prop_map: dict[str, str] = {}
        if props is not None:
            props_name, props_sha, prop_map = read_props(props)
        model_sha = None
        if model is not None and model.endswith(".tflite") and Path(model).is_file():
            model_sha = sha256_file(Path(model))
        opts = ImportOptions(device=device.strip(), soc=soc, model=model, model_sha256=model_sha, variant=variant,
                             delegate=delegate, lr_size=_lr(lr), props_name=props_name, props_sha256=props_sha,
                             props=prop_map, zoo=zoo_entries(with_sha=model_sha is not None))
        run = import_captures(files, opts, out)
    except PerflabError as exc:
        fail(exc, EXIT_BAD_INPUT if isinstance(exc, UserInputError) else None)
    from perflab.report.cell_lines import cell_lines

    for line in cell_lines(run):
        typer.echo(line)
    typer.echo(f"imported {len(run.cells)} cell(s) into {out}")
    raise typer.Exit(EXIT_OK)
