"""``perflab meter``: read a power meter on a serial port, or start an emulated one to try it
(mounted by perflab/cli/main.py; the drivers are perflab.telemetry.meters, the emulated meters
perflab.emulator.meters)."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Annotated

import typer

from perflab.cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, fail
from perflab.cli.options import number_option
from perflab.core.display import MISSING
from perflab.core.units import ma_to_a, ms_to_s
from perflab.telemetry.meters.errors import MeterError, MeterGoneError

app = typer.Typer(no_args_is_help=True, help="External power meters over serial: list, read, emulate.")

_TYPES = "scpi|ppk2|um34c|um25c|um24c"


def _line(reading: dict[str, object], t_s: float) -> str:
    parts = [f"t={t_s:8.3f}s", f"{reading['volts']:.4f} V", f"{reading['amps']:.6f} A", f"{reading['watts']:.5f} W"]
    if "current_ua" in reading:
        parts.append(f"[{reading['current_min_ua']:.1f}..{reading['current_max_ua']:.1f} µA, "
                     f"lost {reading['samples_lost']}]")
    if "model" in reading and reading.get("meter") == "scpi":
        parts.append(str(reading["model"]))
    return "  ".join(parts)


@app.command("read")
def read(
    port: Annotated[str, typer.Argument(help="device path, pty path, or socket://host:port")],
    meter_type: Annotated[str, typer.Option("--type", help=_TYPES)],
    once: Annotated[bool, typer.Option("--once", help="print one reading and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON (one object per line)")] = False,
    duration_s: Annotated[float | None, number_option("--duration-s", min=0, help="stop after this long")] = None,
    interval_s: Annotated[float, number_option("--interval-s", min=0, min_open=True, max=3600, help="time between readings")] = 0.2,
    timeout_s: Annotated[float, number_option("--timeout-s", min=0, min_open=True, max=3600, help="how long to wait for the meter")] = 1.0,
    vdd_mv: Annotated[int | None, number_option("--vdd-mv", integer=True, min=800, max=5000, help="PPK2: supply voltage for the DUT "
                                               "(default: the PPK2's current setting)")] = None,
) -> None:
    """Live readings (volts, amps, watts and the meter's own fields); Ctrl-C stops."""
    from perflab.telemetry.meters.drivers import MeterType, Ppk2Meter, open_meter

    try:
        kind = MeterType(meter_type.lower())
    except ValueError:
        fail(f"--type: {meter_type!r} is not one of {_TYPES}", EXIT_BAD_INPUT)
    if interval_s <= 0 or timeout_s <= 0 or (duration_s is not None and duration_s < 0):
        fail("--interval-s, --timeout-s and --duration-s must be positive", EXIT_BAD_INPUT)
    if vdd_mv is not None and (kind is not MeterType.PPK2 or not 800 <= vdd_mv <= 5000):
        fail("--vdd-mv: only for --type ppk2, between 800 and 5000", EXIT_BAD_INPUT)
    try:
        meter = open_meter(port, kind, timeout_s=timeout_s)
    except MeterError as exc:
        fail(exc, EXIT_BAD_INPUT)
    if isinstance(meter, Ppk2Meter) and vdd_mv is not None:
        meter.vdd_mv = vdd_mv
    t0 = time.monotonic()
    first = True
    try:
        while True:
            try:
                reading = meter.read_once()
            except MeterError as exc:
                # the first reading is part of finding the meter: a wrong port or type is bad input
                fail(exc, EXIT_BAD_INPUT if first and not isinstance(exc, MeterGoneError) else EXIT_FAILED)
            first = False
            now = time.monotonic() - t0
            typer.echo(json.dumps({"t_s": round(now, 6), **reading}) if as_json else _line(reading, now))
            if once or (duration_s is not None and now >= duration_s):
                break
            time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        meter.close()


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Serial ports that may be meters (a guess from USB IDs and names; nothing is sent)."""
    from perflab.telemetry.meters.discover import list_ports

    guesses = list_ports()
    if as_json:
        typer.echo(json.dumps([{"device": g.port.device, "meter": g.meter, "note": g.note,
                                "vid": g.port.vid, "pid": g.port.pid, "location": g.port.location}
                               for g in guesses]))
        return
    if not guesses:
        typer.echo("no serial ports (ptys and socket:// meters are not listed: pass their path)")
    for g in guesses:
        ids = f"{g.port.vid:04x}:{g.port.pid:04x}" if g.port.vid is not None and g.port.pid is not None else MISSING
        typer.echo(f"{g.port.device:20} {ids:10} {g.meter or MISSING:16} {g.note}")


@app.command("emulate")
def emulate(
    meter_type: Annotated[str, typer.Option("--type", help=_TYPES)],
    model: Annotated[str | None, typer.Option(help="SCPI model: n6705c, 66319d or dp832")] = None,
    volts: Annotated[float, number_option("--volts", min=0, min_open=True, max=60, help="supply voltage of the emulated load")] = 3.9,
    idle_ma: Annotated[float, number_option("--idle-ma", min=0, max=100_000, help="idle current")] = 180.0,
    burst_ma: Annotated[float, number_option("--burst-ma", min=0, max=100_000, help="extra current during each burst")] = 400.0,
    fps: Annotated[float, number_option("--fps", min=0, min_open=True, max=1000, help="bursts per second (paced inference)")] = 30.0,
    burst_ms: Annotated[float, number_option("--burst-ms", min=0, max=100_000, help="burst length")] = 12.0,
) -> None:
    """Start an EMULATED meter on a pseudo-terminal, print its path, run until Ctrl-C."""
    from perflab.emulator.meters import PeriodicLoad, Ppk2Emulator, ScpiEmulator, UmEmulator
    from perflab.emulator.meters.base import EmulatedMeter

    kind = meter_type.lower()
    if kind not in _TYPES.split("|"):
        fail(f"--type: {meter_type!r} is not one of {_TYPES}", EXIT_BAD_INPUT)
    if fps <= 0 or burst_ms <= 0 or ms_to_s(burst_ms) > 1 / fps:
        fail("--fps and --burst-ms must be positive and a burst must fit in a frame", EXIT_BAD_INPUT)
    load = PeriodicLoad(volts, ma_to_a(idle_ma), ma_to_a(burst_ma), 1 / fps, ms_to_s(burst_ms))
    em: EmulatedMeter
    if kind == "ppk2":
        em = Ppk2Emulator(load)
    elif kind == "scpi":
        scpi_model = (model or "n6705c").lower()
        try:
            em = ScpiEmulator(load, scpi_model)
        except ValueError:
            fail(f"--model: {model!r} is not one of n6705c, 66319d, dp832", EXIT_BAD_INPUT)
    else:
        em = UmEmulator(load, kind)
    stop = threading.Event()
    for signo in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored (a background job)
        signal.signal(signo, lambda *_: stop.set())
    with em:
        typer.echo(f"EMULATED {kind}{' ' + em.model if isinstance(em, ScpiEmulator) else ''} on {em.path} "
                   f"(try: perflab meter read {em.path} --type {kind}); Ctrl-C stops", err=False)
        try:
            while not stop.is_set() and not em.unplugged.is_set():
                stop.wait(0.5)
        except KeyboardInterrupt:
            pass
