"""The `perflab models` sub-app (typer), exercised in-process."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from perflab.cli.models import app, parse_lr_size
from perflab.errors import UserInputError

runner = CliRunner()


def test_list_json_fields_and_macs_at_lr_size() -> None:
    res = runner.invoke(app, ["list", "--json", "--lr", "640x360"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    by_name = {r["name"]: r for r in rows}
    espcn = by_name["espcn_x2"]
    for key in ("name", "family", "scale", "params", "macs_per_frame", "size_bytes", "training_data"):
        assert key in espcn
    assert espcn["macs_per_frame"] == (25 * 3 * 64 + 9 * 64 * 32 + 9 * 32 * 12) * 640 * 360
    assert espcn["size_bytes"]["fp32"] > espcn["size_bytes"]["int8"] > 0
    assert "coffee" in espcn["training_data"]  # named as held out
    assert {"bicubic", "espcn"} <= {r["family"] for r in rows}


def test_list_table() -> None:
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 0 and "espcn_x2" in res.output


def test_bad_lr_size() -> None:
    with pytest.raises(UserInputError):
        parse_lr_size("960by540")
    res = runner.invoke(app, ["list", "--lr", "0x5"])
    assert isinstance(res.exception, UserInputError)


def test_analyze_unknown_family_is_user_error() -> None:
    res = runner.invoke(app, ["analyze", "nosuchnet"])
    assert isinstance(res.exception, UserInputError)
