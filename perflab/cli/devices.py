"""``perflab devices``: list phones, draft a config for one, undo what a crashed run left.

Mounted by perflab/cli/main.py as ``app.add_typer(devices_app, name="devices")``. ``perflab devices``
with no subcommand lists, like ``perflab devices list``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perflab.cli.errors import EXIT_FAILED, error_line, fail
from perflab.errors import DeviceGoneError, PerflabError

if TYPE_CHECKING:
    from perflab.devices.adb import Adb

app = typer.Typer(no_args_is_help=False, invoke_without_command=True, add_completion=False,
                  help="Phones over adb: list, probe, restore.")


@app.callback()
def main(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Phones over adb. With no subcommand: list them."""
    if ctx.invoked_subcommand is None:
        list_cmd(as_json)


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Serial, state, model, SoC, SDK, fingerprint, rooted, kind (android/emulated)."""
    from perflab.devices.listing import device_rows, running_adb

    try:
        rows = device_rows(running_adb())
    except PerflabError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no devices attached")
        return
    for r in rows:
        if r["state"] != "device":
            typer.echo(f"{r['serial']}\t{r['state']}")
            continue
        rooted = {True: "rooted", False: "not rooted", None: "root ?"}[r["rooted"]]  # type: ignore[index]
        typer.echo(f"{r['serial']}\t{r['state']}\t{r['kind']}\t{r['model']}\t{r['soc']}\tSDK {r['sdk']}\t"
                   f"{rooted}\t{r['fingerprint']}" + (f"\terror: {r['error']}" if "error" in r else ""))


@app.command("probe")
def probe_cmd(
    serial: Annotated[str, typer.Argument(help="device serial (see `perflab devices`)")],
    output: Annotated[Path | None, typer.Option(
        help="where to write (default: <user config folder>/device_configs/<name>.yaml)")] = None,
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Read what can be read on the phone and write a device config for review."""
    from perflab.core.paths import ConfigKind, user_dir
    from perflab.devices.android import open_device
    from perflab.devices.listing import running_adb
    from perflab.devices.probe import probe, write_probe

    try:
        adb = running_adb()
        dev = open_device(serial, adb)
        result = probe(dev)
        target = output or user_dir(ConfigKind.DEVICE_CONFIGS) / f"{result.config.name}.yaml"
        path = write_probe(result, target, force=force)
    except PerflabError as exc:
        fail(exc)
    typer.echo(f"wrote {path.resolve()} — review it (a config there replaces a shipped one of the same name):")
    for n in result.notes:
        typer.echo(f"  - {n}")


@app.command("restore")
def restore_cmd(
    serial: Annotated[str | None, typer.Argument(help="device serial; default: every journaled device")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Undo the device changes a crashed or interrupted run left (from the host journal)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    from perflab.devices.android import AndroidDevice
    from perflab.devices.journal import Journal, journaled_serials
    from perflab.devices.listing import running_adb

    serials = [serial] if serial else journaled_serials()
    if not serials:
        typer.echo("nothing to restore")
        return
    failed = False
    adb: Adb | None = None
    for s in serials:
        pending = Journal(s).pending()
        if not pending:
            typer.echo(f"{s}: nothing to restore")
            continue
        try:
            if adb is None:
                adb = running_adb()
            state = adb.state(s)
            if state != "device":
                raise DeviceGoneError(s, f"not reachable (state: {state or 'not attached'}); {len(pending)} "
                                         "change(s) stay journaled")
            dev = AndroidDevice(adb, s)
            with dev.lock:
                dev.restore()
            typer.echo(f"{s}: restored {len(pending)} change(s)")
        except PerflabError as exc:
            failed = True
            error_line(exc)  # the next device is still restored
    if failed:
        raise typer.Exit(EXIT_FAILED)
