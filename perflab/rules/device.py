"""Is it emulated or imported: one predicate each on the stored records, and the words that say so."""

from __future__ import annotations

from perflab.store.results import IMPORTED_DEVICE_KIND, CellRecord, DeviceRecord

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


#: DeviceRecord.kind of a phone perflab did not measure: it appears only through imported captures
IMPORTED_KIND = IMPORTED_DEVICE_KIND
#: The label an imported cell carries wherever it appears (report, progress, compare, matrix)
IMPORTED_TAG = "IMPORTED"
IMPORTED_NOTE = ("imported capture: numbers read from a log measured outside perflab (its provenance names "
                 "the file, its sha256 and the tool), not measured by this run")


def is_imported(dev: DeviceRecord) -> bool:
    """The device appears only through imported captures."""
    return dev.kind == IMPORTED_KIND


def cell_is_imported(cell: CellRecord) -> bool:
    """The cell's numbers come from an imported capture (its provenance, or its device record's kind)."""
    return cell.imported  # the rule lives on the record, below the store's SQL and frames
