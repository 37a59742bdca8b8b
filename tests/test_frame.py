"""Stored runs as a pandas DataFrame: one typed row per cell × device, from run folders or the
results index, exported to Parquet and CSV."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support.matrix_runs import standard_runs

from perflab.errors import StoreError, UserInputError
from perflab.store.db import ResultsDB
from perflab.store.frame import COLUMNS, load_frame, load_frame_from_db, write_frame
from perflab.store.runfolder import load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return standard_runs(tmp_path_factory.mktemp("runs"))


def test_one_typed_row_per_cell_and_device(runs: list[Path]) -> None:
    df = load_frame(runs)
    n_cells = sum(len(load_run(r).cells) for r in runs)
    assert len(df) == n_cells and list(df.columns) == list(COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == COLUMNS
    assert not df.duplicated(["run_id", "device_serial", "cell_id"]).any()
    px = df[(df.device_serial == "PX7REAL01") & (df.cell_id == "espcn_x2.int8.gpu")].iloc[0]
    assert px.latency_median_ms == 12.0 and px.latency_p90_ms == 14.0 and bool(px.realtime_meets) is True
    assert px.delta_psnr_y_db == pytest.approx(1.0) and px.baseline_cell_id == "bicubic_x2.fp32.gpu"
    assert px.budget_ms == pytest.approx(1000 / 30) and px.device_soc == "GS201" and px.android_release == "14"
    assert px.report_path.endswith("index.html") and px.source == "run folder"
    # not measured → missing with its reason, never 0
    unsupported = df[(df.device_serial == "PX7REAL01") & (df.cell_id == "fsrcnn_x2.fp32.gpu")].iloc[0]
    assert unsupported.status == "unsupported" and pd.isna(unsupported.latency_median_ms)
    assert pd.isna(unsupported.realtime_meets)
    assert pd.isna(px.energy_mj_per_frame) and pd.isna(px.delta_current_ma)
    why = json.loads(px.missing)
    assert why["telemetry.mj_per_frame"] == "no power meter and no fuel gauge on this device"
    assert json.loads(unsupported.missing)["realtime"] == "cell unsupported"
    emu = df[df.device_serial == "127.0.0.1:7401"]
    assert emu.emulated.all() and (emu.device_kind == "emulated").all()
    assert not df[df.device_serial == "local"].emulated.any()


def test_parquet_and_csv_round_trip(runs: list[Path], tmp_path: Path) -> None:
    df = load_frame(runs)
    pq = write_frame(df, tmp_path / "f.parquet", "parquet")
    back = pd.read_parquet(pq)
    assert {c: str(t) for c, t in back.dtypes.items()} == COLUMNS  # types survive Parquet
    pd.testing.assert_frame_equal(back, df)
    cs = write_frame(df, tmp_path / "f.csv", "csv")
    again = pd.read_csv(cs)
    assert len(again) == len(df) and list(again.columns) == list(COLUMNS)
    assert again.latency_median_ms.sum() == pytest.approx(float(df.latency_median_ms.sum()))
    with pytest.raises(UserInputError, match="--format"):
        write_frame(df, tmp_path / "f.xlsx", "xlsx")


def test_from_the_results_index(runs: list[Path], tmp_path: Path) -> None:
    copies = [Path(shutil.copytree(r, tmp_path / r.name)) for r in runs]
    db = tmp_path / "idx.sqlite"
    with ResultsDB(db) as idx:
        for folder in copies:
            idx.index_run(load_run(folder), folder)
    a = load_frame(copies).sort_values(["run_id", "device_serial", "cell_id"], ignore_index=True)
    b = load_frame_from_db(db).sort_values(["run_id", "device_serial", "cell_id"], ignore_index=True)
    pd.testing.assert_frame_equal(a, b)
    shutil.rmtree(copies[0])
    c = load_frame_from_db(db)
    gone = c[c.run_id == copies[0].name].sort_values(["device_serial", "cell_id"], ignore_index=True)
    # the folder is gone: the rows come from the record the store keeps, verdicts and all
    assert len(gone) == len(a[a.run_id == copies[0].name]) and (gone.source == "results store").all()
    kept = a[a.run_id == copies[0].name]
    assert list(gone.latency_median_ms) == list(kept.latency_median_ms)
    assert list(gone.realtime_meets) == list(kept.realtime_meets) and gone.report_path.isna().all()
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(StoreError, match=r"bad\.sqlite"):
        load_frame_from_db(bad)


def test_v1_run_folders_load_upgraded(runs: list[Path], tmp_path: Path) -> None:
    raw = json.loads((runs[0] / "results.json").read_text())
    raw["schema"] = "perflab.results/1"
    for c in raw["cells"]:
        del c["artifact_key"], c["delegates"]
        c["realtime"] = c["realtime"]["meets"] if c["realtime"] else None
    old = tmp_path / "old"
    old.mkdir()
    (old / "results.json").write_text(json.dumps(raw))
    df = load_frame([old])
    row = df[(df.device_serial == "PX7REAL01") & (df.cell_id == "espcn_x2.int8.gpu")].iloc[0]
    assert bool(row.realtime_meets) is True and "perflab.results/1" in row.realtime_rule


def test_power_where_measured(tmp_path: Path) -> None:
    """Energy per frame and ΔmA versus idle come from the stored telemetry when a cell has them."""
    from support.matrix_runs import LOCAL, Spec, make_cell

    from perflab.store.frame import StoredRun, runs_frame
    from perflab.store.results import IdleDeltaRecord, RunRecord, ScenarioRecord

    c = make_cell(LOCAL, Spec("espcn_x2", "int8", "xnnpack", 5.0, 6.0, 31.0), 1)
    c = c.model_copy(update={
        "telemetry": c.telemetry.model_copy(update={"mj_per_frame": 12.5, "power_mw": 375.0, "missing": {}}),
        "vs_idle": IdleDeltaRecord(current_ma=80.0)})
    run = RunRecord(perflab_version="t", run_id="r", started_utc="2026-11-20T00:00:00+00:00", cells=[c],
                    scenario=ScenarioRecord(name="s", file="s.yaml", sha256="0" * 64, text="", lr_width=8,
                                            lr_height=8, scale=2, fps=30.0))
    row = runs_frame([StoredRun(run, None)]).iloc[0]
    assert row.energy_mj_per_frame == 12.5 and row.power_mw == 375.0 and row.delta_current_ma == 80.0
    assert "telemetry.mj_per_frame" not in json.loads(row.missing)
