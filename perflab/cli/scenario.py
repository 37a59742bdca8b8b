"""``perflab scenario check`` and ``perflab scenario schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from perflab.cli.errors import fail
from perflab.errors import UserInputError

app = typer.Typer(no_args_is_help=True, help="Validate scenarios and print their schema.")


@app.command("check")
def scenario_check(file: Annotated[Path, typer.Argument(help="scenario YAML")]) -> None:
    """Validate a scenario file (and decode its input files); print its cells."""
    from perflab.lab.validate import validate_scenario
    from perflab.scenario import load_scenario, plan_cells

    try:
        loaded = load_scenario(file)
        cells = plan_cells(loaded.scenario)
        warnings = validate_scenario(loaded, decode_inputs=True, decode_generated=False)
    except UserInputError as exc:
        fail(exc)
    for w in warnings:
        typer.echo(f"perflab: warning: {w}", err=True)
    typer.echo(f"{file}: ok — {len(cells)} cells per device")
    for c in cells:
        typer.echo(f"  {c.cell_id}{'  (baseline)' if c.baseline else ''}")


@app.command("schema")
def scenario_schema() -> None:
    """Print the scenario JSON Schema (for editor completion)."""
    from perflab.scenario.schema import Scenario

    typer.echo(json.dumps(Scenario.model_json_schema(by_alias=True), indent=2))
