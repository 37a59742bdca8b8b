"""perflab.rules: the one predicate "is emulated" and the power rules, on records and values alone."""

from __future__ import annotations

from perflab.devices.base import DeviceKind
from perflab.rules.device import EMULATED_KIND, cell_is_emulated, emulated_label, is_emulated
from perflab.rules.power import battery_source, meter_source, mj_per_frame, rapl_source
from perflab.store.results import CellRecord, CellStatus, DeviceRecord, ModelRecord


def _cell(kind: str, emulated: bool = False) -> CellRecord:
    return CellRecord(cell_id="c", artifact_key="c", device=DeviceRecord(serial="s", kind=kind, model="m"),
                      model=ModelRecord(name="m", family="f", variant="v", scale=2), delegate="cpu", threads=1,
                      status=CellStatus.OK, emulated=emulated)


def test_emulated_is_the_device_kind_the_devices_write() -> None:
    assert DeviceKind.EMULATED.value == EMULATED_KIND
    assert is_emulated(DeviceRecord(serial="s", kind=DeviceKind.EMULATED.value, model="m"))
    assert not is_emulated(DeviceRecord(serial="s", kind=DeviceKind.ANDROID.value, model="m"))
    assert cell_is_emulated(_cell("emulated")) and cell_is_emulated(_cell("android", emulated=True))
    assert not cell_is_emulated(_cell("local"))
    assert emulated_label("battery counters", emulated=True) == "emulated battery counters"


def test_power_source_confidence_follows_the_ranking() -> None:
    assert battery_source(emulated=False, charging=True).confidence == "low"
    assert battery_source(emulated=True, charging=False).source == "emulated battery counters (not charging)"
    assert meter_source("external meter", "bypass", emulated=False).confidence == "high"
    assert meter_source("external meter", "usb", emulated=False).confidence == "medium"
    assert rapl_source().confidence == "medium"


def test_energy_per_frame_paced_and_back_to_back() -> None:
    assert mj_per_frame(600.0, fps=30.0, latency_mean_ms=5.0) == 20.0  # one frame period
    assert mj_per_frame(600.0, fps=None, latency_mean_ms=5.0) == 3.0  # one inference
    assert mj_per_frame(600.0, fps=None, latency_mean_ms=None) is None
    assert mj_per_frame(None, fps=30.0, latency_mean_ms=5.0) is None
