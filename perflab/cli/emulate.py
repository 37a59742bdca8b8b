"""``perflab emulate``: start N emulated phones behind the real adb server until Ctrl-C (mounted by
perflab/cli/main.py; the phones themselves are perflab.emulator)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from perflab.cli.options import number_option
from perflab.core.paths import ConfigKind, search_description
from perflab.errors import UserInputError


def emulate(
    devices: Annotated[int, number_option("--devices", integer=True, min=1, max=32, help="How many phones to start.")] = 1,
    profile: Annotated[str, typer.Option("--profile", help="Phone profile: a shipped one (pixel7, galaxy_s23, redmi_note12pro) or NAME from "
                                                      "emulator_profiles/NAME.yaml in the user config folder.")]
    = "pixel7",
    base_port: Annotated[int, number_option("--base-port", integer=True, min=0, max=65535, help="Port of the first phone; the next ones follow. "
                                                               "0 picks free ports.")] = 0,
    adb_port: Annotated[int | None, number_option("--adb-port", integer=True, min=1, max=65535, help="adb server port (default: "
                                                                    "$ANDROID_ADB_SERVER_PORT or 5037).")] = None,
    drop_after_commands: Annotated[int | None, number_option("--drop-after-commands", integer=True, min=1, help="Fault: drop the connection once after N "
                                                                 "commands.")] = None,
    drop_after_s: Annotated[float | None, number_option("--drop-after-s", min=0, help="Fault: drop the connection once after S seconds.")]
    = None,
    down_for_s: Annotated[float, number_option("--down-for-s", min=0, max=86400, help="Fault: stay unreachable this long after a drop.")] = 0.0,
) -> None:
    """Start emulated phones, connect them to the adb server, print their serials, run until Ctrl-C."""
    from perflab.emulator.adbd import Faults
    from perflab.emulator.phone import (
        ADB_EMULATOR_PORTS,
        EmulatedPhone,
        connect_to_adb_server,
        disconnect_from_adb_server,
        ensure_adb_server,
    )
    from perflab.emulator.profiles import available_profiles

    if profile not in available_profiles():
        raise UserInputError(f"unknown profile {profile!r}; available: {', '.join(available_profiles())} "
                             f"(looked in {search_description(ConfigKind.EMULATOR_PROFILES)})")
    ports: list[int | None] = [None] * devices if base_port == 0 else list(range(base_port, base_port + devices))
    for p in ports:
        if p is not None and p in ADB_EMULATOR_PORTS:
            raise UserInputError(f"port {p} is in 5554-5585, which the adb server scans for emulators")
    faults = Faults(drop_after_commands=drop_after_commands, drop_after_s=drop_after_s, down_for_s=down_for_s)
    client = ensure_adb_server(adb_port)
    phones: list[EmulatedPhone] = []
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for p in ports:
            phone = EmulatedPhone.start(profile, port=p, faults=faults)
            phones.append(phone)
            connect_to_adb_server(phone, client)
            typer.echo(f"{phone.serial}\temulated {phone.rt.profile.props.get('ro.product.model', profile)}")
        typer.echo(f"{len(phones)} emulated phone(s) attached to the adb server on port {client.port}; "
                   "Ctrl-C stops them.", err=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for phone in phones:
            disconnect_from_adb_server(phone, client)
            phone.stop()
        typer.echo("stopped", err=True)
