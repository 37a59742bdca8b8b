"""Emulated power meters on pseudo-terminals (EMULATED — never a measurement of hardware).

Each emulator owns a pty master, sets the slave raw at once (meters.md §7.3), speaks its meter's
wire protocol byte for byte and paces output like the hardware. Its readings come from a
``LoadSource`` (a known synthetic load, or the emulated phone's physics: ``PhysicsLoad``), so energy measured
through the real driver can be checked against the source's ground truth. Faults: garbage
bytes, dropped samples, unplug mid-run.
"""

from perflab.emulator.meters.base import EmulatedMeter
from perflab.emulator.meters.physics_load import PhysicsLoad, usb_load
from perflab.emulator.meters.ppk2 import Ppk2Emulator
from perflab.emulator.meters.scpi import ScpiEmulator
from perflab.emulator.meters.source import (
    LiveLoad,
    LoadSource,
    PeriodicLoad,
    SampledLoad,
    Step,
    StepLoad,
    constant_load,
    periodic_steps,
)
from perflab.emulator.meters.um import UmEmulator

__all__ = [
    "EmulatedMeter",
    "LiveLoad",
    "LoadSource",
    "PeriodicLoad",
    "PhysicsLoad",
    "Ppk2Emulator",
    "SampledLoad",
    "ScpiEmulator",
    "Step",
    "StepLoad",
    "UmEmulator",
    "constant_load",
    "periodic_steps",
    "usb_load",
]
