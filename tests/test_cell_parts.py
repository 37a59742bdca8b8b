"""perflab.lab.parts: a cell's passes return frozen parts, merged in one place."""

from __future__ import annotations

import pytest

from perflab.lab.parts import Part, merge
from perflab.store.results import WarningRecord


def test_later_values_win_first_reasons_stay_and_warnings_keep_their_order() -> None:
    w1, w2 = WarningRecord(code="hot_start", message="a"), WarningRecord(code="tool", message="b")
    cooled = Part(telemetry={"start_temp_c": None}, missing={"start_temp_c": "no sensor"}, warnings=(w1,))
    timed = Part(fields={"series": {}}, telemetry={"cpu_load_pct": 40.0},
                 missing={"start_temp_c": "later reason", "mem_peak_mb": "not reported"}, warnings=(w2,))
    m = merge([cooled, timed])
    assert dict(m.telemetry) == {"start_temp_c": None, "cpu_load_pct": 40.0} and dict(m.fields) == {"series": {}}
    assert dict(m.missing) == {"start_temp_c": "no sensor", "mem_peak_mb": "not reported"}
    assert list(m.missing) == ["start_temp_c", "mem_peak_mb"]  # results.json keeps the passes' order
    assert m.warnings == (w1, w2)


def test_a_part_settles_the_missing_reasons_its_values_answer() -> None:
    battery = Part(telemetry={"power_mw": None}, missing={"power_mw": "no battery counters", "temp_c": "no sensor"})
    meter = Part(telemetry={"power_mw": 812.0}, missing={"battery_power_mw": "no battery counters"},
                 settles=frozenset({"power_mw"}))
    m = merge([battery, meter])
    assert m.telemetry["power_mw"] == 812.0
    assert dict(m.missing) == {"temp_c": "no sensor", "battery_power_mw": "no battery counters"}
    assert m.settles == frozenset()  # settled inside the merge, not again by a later one


def test_a_part_cannot_be_edited_after_its_pass_made_it() -> None:
    fields = {"quality": None}
    p = Part(fields=fields)
    fields["layers"] = None  # the pass's own dict changing later does not reach the part
    assert "layers" not in p.fields
    with pytest.raises(TypeError):
        p.telemetry["power_mw"] = 1.0  # type: ignore[index]
