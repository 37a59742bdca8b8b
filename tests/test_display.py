"""How numbers, units and missing values are written (perflab.core.display), and what every report
page shares (perflab.report.pages): one formatter, one missing glyph."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from perflab.core.display import (
    MISSING,
    fmt_fine_ms,
    fmt_missing,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_signed,
    fmt_size,
)
from perflab.errors import StoreError, UserInputError
from perflab.report.pages import environment, write_files
from perflab.report.view_common import anchor_for, html_id


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_a_missing_number_is_written_one_way(value: float | None) -> None:
    assert MISSING == "—"
    for text in (fmt_num(value), fmt_num(value, ".2f", "ms"), fmt_ms(value), fmt_fine_ms(value, "ms"),
                 fmt_pct(value), fmt_signed(value, 1)):
        assert text == MISSING
    assert fmt_size(None) == MISSING


def test_missing_carries_its_reason_where_there_is_room() -> None:
    assert fmt_missing("no battery on this host") == "— (no battery on this host)"
    assert fmt_missing(None) == "—"
    assert fmt_missing("") == "—"


def test_numbers_with_their_units() -> None:
    assert fmt_num(12.345, ".2f", "ms") == "12.35 ms"
    assert fmt_num(0.000123) == "0.000123"
    assert [fmt_ms(v) for v in (123.4, 12.34, 1.234)] == ["123", "12.3", "1.23"]
    assert fmt_ms(12.34, "ms") == "12.3 ms"
    assert fmt_fine_ms(0.004) == "0.004" and fmt_fine_ms(0.0004) == "0.0004" and fmt_fine_ms(1.23456) == "1.235"
    assert fmt_size(3 * 1024 * 1024) == "3.00 MB" and fmt_size(2048) == "2.0 KB" and fmt_size(200 * 1024) == "200 KB"
    assert fmt_pct(12.34) == "12.3%" and fmt_pct(-1.25, signed=True) == "-1.2%"


def test_signed_deltas_use_a_real_minus_and_plus_minus_for_zero() -> None:
    assert fmt_signed(-0.5, 2) == "−0.50"
    assert fmt_signed(1.2, 1, " ms") == "+1.2 ms"
    assert fmt_signed(0.0, 1) == "±0.0"


def test_templates_get_the_formatter_as_filters() -> None:
    env = environment()
    t = env.from_string("{{ a|num('.1f', 'mA') }} {{ b|num }} {{ c|ms }} {{ 'why'|missing }}")
    assert t.render(a=12.34, b=None, c=math.nan) == "12.3 mA — — — (why)"


def test_html_ids_keep_letters_digits_dash_and_underscore() -> None:
    assert anchor_for("espcn@fp16/gpu") == "cell-espcn-fp16-gpu"
    assert html_id("dev", "127.0.0.1:7401", fill="_") == "dev-127_0_0_1_7401"


def test_a_page_that_cannot_be_written_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StoreError, match=r"out: cannot write the comparison: "):
        write_files(blocker, {"index.html": "<p>"}, what="the comparison")
    with pytest.raises(UserInputError, match=r"cannot write the matrix"):
        write_files(blocker / "sub", {"index.html": "<p>"}, what="the matrix", error=UserInputError)
    files = write_files(tmp_path / "ok", {"index.html": "<p>x</p>", "data.json": "{}"}, what="a page")
    assert files["index.html"].read_text() == "<p>x</p>" and files["data.json"].read_text() == "{}"
    assert sorted(p.name for p in (tmp_path / "ok").iterdir()) == ["data.json", "index.html"]  # no temp files left


def test_a_change_that_shows_as_zero_is_no_change() -> None:
    """Issue 22: "+0 MB" in red and "−0 pts" in green: zero as shown has no sign and no colour."""
    from perflab.report.view_common import delta_cls

    assert fmt_signed(0.3, 0, " MB") == "±0 MB" and fmt_signed(-0.2, 0, " pts") == "±0 pts"
    assert fmt_signed(-0.04, 1) == "±0.0" and fmt_signed(0.6, 0) == "+1"
    assert delta_cls(0.3, higher_better=False, digits=0) == "muted"
    assert delta_cls(-0.2, higher_better=False, digits=0) == "muted"
    assert delta_cls(0.6, higher_better=False, digits=0) == "bad" and delta_cls(-0.6, False, 0) == "good"
