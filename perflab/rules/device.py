"""Is it emulated: one predicate on the stored device record, and the words that say so."""

from __future__ import annotations

from perflab.store.results import CellRecord, DeviceRecord

#: DeviceRecord.kind of perflab's emulated phones (the value of perflab.devices.base.DeviceKind.EMULATED)
EMULATED_KIND = "emulated"
EMULATED_NOTE = ("emulated phone: numbers come from perflab's emulator running the model on the host, "
                 "not from a real device")


def is_emulated(dev: DeviceRecord) -> bool:
    """The device is one of perflab's emulated phones."""
    return dev.kind == EMULATED_KIND


def cell_is_emulated(cell: CellRecord) -> bool:
    """The cell was measured on an emulated phone (its own flag, or its device record's kind)."""
    return cell.emulated or is_emulated(cell.device)


def emulated_label(label: str, *, emulated: bool) -> str:
    """A source's label, prefixed "emulated " when the numbers come from the emulator."""
    return f"emulated {label}" if emulated else label
