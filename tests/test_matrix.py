"""perflab matrix: catalogs, coverage recomputed by hand, bad input, the page in real Chromium."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support.matrix_runs import (
    BASE,
    LOCAL,
    Spec,
    profile_device,
    standard_runs,
    write_run,
)

from perflab.errors import UserInputError
from perflab.report.matrix import build_matrix
from perflab.report.matrix_catalog import example_catalog_path, load_catalog, parse_catalog, soc_key
from perflab.report.matrix_html import render_matrix_html
from perflab.report.pages import device_link
from perflab.store.db import ResultsDB
from perflab.store.frame import load_frame
from perflab.store.runfolder import load_run

PERFLAB = [sys.executable, "-m", "perflab"]
CHROMIUM = Path("/usr/bin/chromium")
EXAMPLE = example_catalog_path()
BM = Path(__file__).parent / "fixtures" / "benchmark_model"


def perflab(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PERFLAB, *map(str, args)], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return standard_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def page(runs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("matrix")
    r = perflab("matrix", *runs, "--catalog", "example", "--out", out)
    assert r.returncode == 0, r.stderr
    return out


# ------------------------------------------------------------------ catalogs


def test_example_catalog_is_labelled_example() -> None:
    cat = load_catalog(EXAMPLE)
    assert cat.example and cat.source.startswith("EXAMPLE") and cat.fmt == "perflab catalog"
    assert abs(sum(r.share_pct for r in cat.rows) - 100.0) < 1e-9
    assert any("unknown SoC" in w and "Tablet X1" in w for w in cat.warnings)


def test_soc_names_from_props_catalogs_and_marketing_meet() -> None:
    assert soc_key("MT6877V/TTZA") == soc_key("MT6877V") == soc_key("MediaTek Dimensity 1080") == "MT6877V"
    assert soc_key("kalama") == soc_key("Qualcomm SM8550") == soc_key("Snapdragon 8 Gen 2") == "SM8550"
    assert soc_key("GS201") == soc_key("Google Tensor G2")
    assert soc_key("unknown") is None and soc_key("") is None and soc_key("SM6225") != soc_key("SM8550")


def test_play_console_export_with_installs(tmp_path: Path) -> None:
    f = tmp_path / "devices.csv"
    f.write_text(
        '"Manufacturer","Model Name","Model Code","RAM (TotalMem)","Form Factor","System on Chip","GPU",'
        '"Android SDK Versions","Installs"\n'
        '"Google","Pixel 7","panther","8192MB","Phone","Google Tensor G2","Mali-G710","33,34","3,000"\n'
        '"samsung","Galaxy S23","dm1q","8192MB","Phone","Qualcomm SM8550","Adreno 740","33,34","1000"\n', encoding="utf-8")
    cat = load_catalog(f)
    assert cat.fmt == "Play Console export" and not cat.example
    assert "'Installs'" in cat.source  # the share's origin is stated
    px, s23 = cat.rows
    assert px.share_pct == pytest.approx(75.0) and s23.share_pct == pytest.approx(25.0)
    assert px.soc_key == "GS201" and s23.model_code == "dm1q" and s23.matches("dm1q") and px.matches("pixel 7")
    assert cat.to_csv().startswith("# source: Play Console device-catalog export devices.csv")
    # the export alone lists devices, not users: refused in one line naming the header line
    f.write_text('"Manufacturer","Model Name","RAM (TotalMem)","System on Chip","GPU"\n"Google","Pixel 7","8192MB","GS201",""\n')
    with pytest.raises(UserInputError, match=r"devices.csv:1: no share column"):
        load_catalog(f)


def test_plain_list() -> None:
    cat = parse_catalog("# source: our analytics, Oct 2026\n60% Pixel 7 (GS201)\nSM-S911B (SM8550): 30 %\n"
                        "Nokia 3 10%\n", "list.txt")
    assert cat.fmt == "plain list" and cat.source == "our analytics, Oct 2026"
    assert [(r.model, r.soc, round(r.share_pct)) for r in cat.rows] == [
        ("Pixel 7", "GS201", 60), ("SM-S911B", "SM8550", 30), ("Nokia 3", None, 10)]


def test_bad_catalogs_are_one_line_errors_or_warnings() -> None:
    head = "# source: test\nmanufacturer,model,soc,gpu,share_pct\n"
    with pytest.raises(UserInputError, match=r"^c.csv:4: model: duplicate device google pixel 7 \(first on line 3\)"):
        parse_catalog(head + "Google,Pixel 7,GS201,,50\ngoogle,pixel 7,GS201,,50\n", "c.csv")
    with pytest.raises(UserInputError, match=r"^c.csv:3: share_pct: 'lots' is not a number"):
        parse_catalog(head + "Google,Pixel 7,GS201,,lots\n", "c.csv")
    with pytest.raises(UserInputError, match=r"^c.csv:2: no share column"):
        parse_catalog("# source: x\nmanufacturer,model,soc\nGoogle,Pixel 7,GS201\n", "c.csv")
    with pytest.raises(UserInputError, match=r"^c.csv:1: source: say where the shares come from"):
        parse_catalog("manufacturer,model,soc,share_pct\nGoogle,Pixel 7,GS201,100\n", "c.csv")
    with pytest.raises(UserInputError, match="sum to 0%"):
        parse_catalog(head + "Google,Pixel 7,GS201,,0\n", "c.csv")
    cat = parse_catalog(head + "Google,Pixel 7,GS201,,30\nsamsung,SM-S911B,SM8550,,50\n", "c.csv")
    assert [round(r.share_pct, 3) for r in cat.rows] == [37.5, 62.5]
    assert any("shares sum to 80%" in w and "normalised to 100%" in w for w in cat.warnings)


# ------------------------------------------------------------------ coverage, recomputed by hand


def _hand_coverage(catalog_csv: Path, run_dirs: list[Path], include_emulated: bool) -> dict[str, tuple[float, float]]:
    """The rule written out plainly over the raw files: {model variant: (measured %, measured + inferred %)}."""
    rows = [r for r in csv.DictReader(line for line in catalog_csv.read_text().splitlines() if not line.startswith("#"))]
    total = sum(float(r["share_pct"]) for r in rows)
    newest: dict[tuple[str, str], Any] = {}
    for d in sorted(run_dirs, key=lambda p: json.loads((p / "results.json").read_text())["started_utc"]):
        for c in json.loads((d / "results.json").read_text())["cells"]:
            newest[(c["device"]["serial"], c["cell_id"])] = c
    cells = [c for c in newest.values() if include_emulated or c["device"]["kind"] != "emulated"]
    phones: dict[str, Any] = {str(c["device"]["serial"]): c["device"] for c in cells}
    alias = {"MT6877V/TTZA": "MT6877V"}

    def row_of(model: str) -> dict[str, str] | None:
        return next((r for r in rows if model.lower() in (r["model"].lower(), r["name"].lower())), None)

    def chip(serial: str) -> str:
        r = row_of(str(phones[serial]["model"]))
        return r["soc"] if r else alias.get(str(phones[serial]["soc"]), str(phones[serial]["soc"]))

    out: dict[str, tuple[float, float]] = {}
    for name, variant in sorted({(c["model"]["name"], c["model"]["variant"]) for c in cells if not c["baseline"]}):
        ran: dict[str, bool] = {}
        for c in cells:
            if (c["model"]["name"], c["model"]["variant"]) != (name, variant):
                continue
            serial = str(c["device"]["serial"])
            rt, d = c.get("realtime"), c.get("deltas")
            good = (c["status"] == "ok" and isinstance(rt, dict) and rt["meets"] is True and isinstance(d, dict)
                    and d["psnr_y_db"] is not None and d["psnr_y_db"] >= 0.0)
            ran[serial] = ran.get(serial, False) or good
        measured = inferred = 0.0
        for r in rows:
            direct = [s for s in ran if str(phones[s]["model"]).lower() in (r["model"].lower(), r["name"].lower())]
            if direct:
                measured += float(r["share_pct"]) if any(ran[s] for s in direct) else 0.0
                continue
            peers = [s for s in ran if r["soc"] not in ("", "unknown") and chip(s) == r["soc"]]
            if peers and all(ran[s] for s in peers):
                inferred += float(r["share_pct"])
        out[f"{name} {variant}"] = (100 * measured / total, 100 * (measured + inferred) / total)
    return out


def test_coverage_matches_a_hand_computation(runs: list[Path], page: Path) -> None:
    data = json.loads((page / "matrix.json").read_text())
    assert data["catalog"]["example"] is True and data["include_emulated"] is False
    hand = _hand_coverage(EXAMPLE, runs, include_emulated=False)
    got = {f"{c['model_name']} {c['variant']}": (c["measured_pct"], c["total_pct"]) for c in data["coverage"]}
    assert got.keys() == hand.keys()
    for k, (m, t) in hand.items():
        assert got[k] == pytest.approx((m, t)), k
    # and the figures the hand computation gives are the ones this data was built to show
    assert hand["espcn_x2 int8"] == pytest.approx((21.0, 36.0))  # Pixel 7 + S23 measured; 7 Pro, S23+, 13 inferred
    assert hand["fsrcnn_x2 fp32"] == pytest.approx((12.0, 21.0))  # Pixel 7 too slow → Pixel 7 Pro not inferred
    other = {f"{c['model_name']} {c['variant']}": c["total_pct"] for c in data["coverage_other"]}
    hand_emu = _hand_coverage(EXAMPLE, runs, include_emulated=True)
    assert other == pytest.approx({k: v[1] for k, v in hand_emu.items()})
    assert other["espcn_x2 int8"] == pytest.approx(56.0)  # + emulated Redmi (14) measured, Redmi Pro+ (6) inferred
    gaps = [(g["soc"], round(g["share_pct"], 6)) for g in data["gaps"]]
    assert gaps[:3] == [("MT6877V", 20.0), ("S5E8835", 15.0), ("MT6769", 10.0)]
    assert gaps[-1][0].startswith("unknown SoC")
    assert data["cheapest_measured"] is None and data["cheapest_total"] is None  # nothing reaches 90% here


def test_the_90_percent_line_names_the_cheapest_model(runs: list[Path], tmp_path: Path) -> None:
    cat = tmp_path / "ours.txt"
    cat.write_text("# source: test shares\n50% Pixel 7 (GS201)\n45% SM-S911B (SM8550)\n5% Redmi Note 11 (SM6225)\n")
    out = tmp_path / "m"
    r = perflab("matrix", *runs, "--catalog", cat, "--out", out)
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "matrix.json").read_text())
    cov = {c["model_name"]: c for c in data["coverage"]}
    assert cov["espcn_x2"]["measured_pct"] == pytest.approx(95.0) and cov["edsr_x2"]["measured_pct"] == pytest.approx(95.0)
    # the headline latency (p90 here: raw samples) of each phone's best delegate: p90 14 (gpu) and 12
    assert cov["espcn_x2"]["latency_ms"] == pytest.approx(13.0) and cov["espcn_x2"]["latency_statistic"] == "p90"
    assert cov["edsr_x2"]["latency_ms"] == pytest.approx(26.5)
    assert data["cheapest_measured"] == "espcn_x2 int8 ×2" == data["cheapest_total"]
    assert "cheapest over the line: measured: espcn_x2 int8 ×2" in r.stdout
    assert "EXAMPLE" not in r.stdout
    # a floor above espcn's gain (+1.0 dB) leaves only edsr (+2.0 dB) over the line
    r = perflab("matrix", *runs, "--catalog", cat, "--out", out, "--quality-floor-db", "1.5")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "matrix.json").read_text())["cheapest_measured"] == "edsr_x2 fp16 ×2"


def test_cells_verdicts_and_links(runs: list[Path], page: Path) -> None:
    data = json.loads((page / "matrix.json").read_text())
    devs = {d["serial"]: d for d in data["devices"]}
    px = devs["PX7REAL01"]["cells"]
    assert px["espcn_x2|int8|gpu|2"]["verdict"] == "rt_q"
    assert px["fsrcnn_x2|fp32|xnnpack|2"]["verdict"] == "slow"
    assert px["fsrcnn_x2|fp32|gpu|2"]["verdict"] == "unsupported" and "TRANSPOSE_CONV" in px["fsrcnn_x2|fp32|gpu|2"]["reason"]
    assert devs["R5CW12345"]["cells"]["fsrcnn_x2|fp32|gpu|2"]["verdict"] == "rt"  # fast, but 0.2 dB worse than bicubic
    assert devs["127.0.0.1:7401"]["emulated"] is True and devs["local"]["kind"] == "local"
    report = px["espcn_x2|int8|gpu|2"]["report"]
    assert (page / report).resolve() == (runs[0] / "index.html").resolve()  # each cell links the run that measured it
    assert devs["PX7REAL01"]["catalog_name"] == "Pixel 7" and devs["R5CW12345"]["catalog_name"] == "Galaxy S23"
    with (page / "matrix.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(d["cells"]) for d in data["devices"])
    assert {r["catalog_example"] for r in rows} == {"True"}
    assert (page / "catalog.csv").read_text().startswith("# source: EXAMPLE")


# ------------------------------------------------------------------ bad input and other sources


@pytest.mark.slow
def test_mixed_scenarios_are_refused_in_one_line(runs: list[Path], tmp_path: Path) -> None:
    other = write_run(tmp_path, "20261122T000000Z-cccc", {"local": (LOCAL, [BASE[0]])}, scenario="720p60", fps=60.0)
    r = perflab("matrix", *runs, other, "--out", tmp_path / "m")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "perflab: error: runs of 2 different scenarios are mixed (540p30, 720p60): pick one with --scenario NAME"]
    r = perflab("matrix", *runs, other, "--scenario", "540p30", "--out", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    # same name, another frame rate: verdicts cannot share a matrix
    odd = write_run(tmp_path, "20261123T000000Z-dddd", {"local": (LOCAL, [BASE[0]])}, fps=24.0)
    r = perflab("matrix", *runs, odd, "--out", tmp_path / "m2")
    assert r.returncode == 2 and "runs disagree on fps or geometry" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_bad_inputs_exit_2_with_one_line(runs: list[Path], tmp_path: Path) -> None:
    dup = tmp_path / "dup.csv"
    dup.write_text("# source: t\nmanufacturer,model,soc,share_pct\nGoogle,Pixel 7,GS201,50\nGoogle,Pixel 7,GS201,50\n")
    nosrc = tmp_path / "noshare.csv"
    nosrc.write_text("# source: t\nmanufacturer,model,soc\nGoogle,Pixel 7,GS201\n")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "results.json").write_text("{not json")
    cases: list[tuple[list[str | Path], str]] = [
        (["--catalog", dup], "dup.csv:4: model: duplicate device"),
        (["--catalog", nosrc], "noshare.csv:2: no share column"),
        (["--db", "mysql://lab/perflab"], "--db: mysql:// is not supported"),
        (["--quality-floor-db", "nan"], "--quality-floor-db"),
    ]
    for args, needle in cases:
        r = perflab("matrix", *runs, *args, "--out", tmp_path / "m") if args[0] != "--db" else \
            perflab("matrix", *args, "--out", tmp_path / "m")
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, r.stderr)
    r = perflab("matrix", junk, "--out", tmp_path / "m")
    assert r.returncode == 2 and "results.json:1: not valid JSON" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = perflab("matrix", "--out", tmp_path / "m")
    assert r.returncode == 2 and "give run folders" in r.stderr


def test_uneven_shares_warn_normalise_and_say_so(runs: list[Path], tmp_path: Path) -> None:
    cat = tmp_path / "c.csv"
    cat.write_text("# source: top devices only\nmanufacturer,model,soc,share_pct\nGoogle,Pixel 7,GS201,30\n"
                   "samsung,SM-S911B,SM8550,30\n")
    out = tmp_path / "m"
    r = perflab("matrix", *runs, "--catalog", cat, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "shares sum to 60%, not 100%: normalised to 100%" in r.stderr
    html = (out / "index.html").read_text()
    assert "shares summed to 60% and were normalised to 100%" in html


def test_from_the_results_index(runs: list[Path], tmp_path: Path) -> None:
    copies = [Path(shutil.copytree(r, tmp_path / r.name)) for r in runs]
    db = tmp_path / "perflab.sqlite"
    with ResultsDB(db) as idx:
        for c in copies:
            idx.index_run(load_run(c), c)
    out = tmp_path / "m"
    r = perflab("matrix", "--db", db, "--catalog", "example", "--out", out, "--format", "parquet")
    assert r.returncode == 0, r.stderr
    from_db = json.loads((out / "matrix.json").read_text())
    assert {f"{c['model_name']}": c["total_pct"] for c in from_db["coverage"]}["espcn_x2"] == pytest.approx(36.0)
    assert (out / "frame.parquet").is_file()
    before = {d["serial"]: d for d in from_db["devices"]}["127.0.0.1:7401"]["cells"]["espcn_x2|int8|xnnpack|2"]
    # a run folder that is gone: its cells come from the record the store keeps, and stderr says so
    shutil.rmtree(copies[1])
    r = perflab("matrix", "--db", f"sqlite:///{db}", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "is gone; read from the store's record" in r.stderr
    data = json.loads((out / "matrix.json").read_text())
    redmi = {d["serial"]: d for d in data["devices"]}["127.0.0.1:7401"]["cells"]["espcn_x2|int8|xnnpack|2"]
    assert redmi["verdict"] == before["verdict"] and redmi["median_ms"] == pytest.approx(22.0)


def test_a_large_matrix_renders(tmp_path: Path) -> None:
    """200 devices × 30 columns: one page, every cell present, sticky header and first column."""
    models = [(f"m{i:02d}_x2", v, d) for i in range(5) for v in ("fp32", "int8", "fp16") for d in ("xnnpack", "gpu")]
    devices = {}
    for k in range(200):
        dev = profile_device(("pixel7", "galaxy_s23", "redmi_note12pro")[k % 3], f"SER{k:04d}", "android")
        dev = dev.model_copy(update={"model": f"{dev.model} #{k}"})
        devices[dev.serial] = (dev, [*BASE, *(Spec(m, v, d, 10.0 + k % 40, 12.0 + k % 40, 31.0) for m, v, d in models)])
    run = write_run(tmp_path, "20261124T000000Z-eeee", devices)
    m = build_matrix(load_frame([run]), load_catalog(EXAMPLE))
    assert len(m.devices) == 200 and len(m.columns) == 32
    html = render_matrix_html(m)
    assert html.count('<td class="c ') == 200 * 32
    assert "position: sticky" in html


# ------------------------------------------------------------------ the page in headless Chromium

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (CI installs it)")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="perflab-chromium-")
    try:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, env={**os.environ, "LANG": "C.UTF-8"}, check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _dom(url: str) -> str:
    r = _chromium("--dump-dom", url)
    assert r.returncode == 0, r.stderr[-2000:]
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], console  # no console errors (or any console output)
    body = re.search(r"<body[^>]*>", r.stdout)
    assert body is not None and 'data-ready="1"' in body.group(0), "the page's script did not finish"
    assert "data-js-error" not in body.group(0), body.group(0)
    return r.stdout


def _row_order(dom: str) -> list[str]:
    return re.findall(r'<tr id="dev-[^"]*"[^>]*data-serial="([^"]+)"', dom)


def _hidden(dom: str) -> set[str]:
    return {m.group(2) for m in re.finditer(r'<tr id="dev-[^"]*"( class="[^"]*")? data-serial="([^"]+)"[^>]*\shidden', dom)}


def test_page_is_self_contained_and_escaped(page: Path) -> None:
    html = (page / "index.html").read_text()
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "an external URL made it into the page"
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # ours, inline
    assert html.count("EXAMPLE") >= 3  # title badge, banner, coverage heading
    assert "any</strong> of its delegates meets real time" in html  # the rule is stated


@needs_chromium
@pytest.mark.slow
def test_chromium_loads_sorts_and_filters(page: Path) -> None:
    url = (page / "index.html").as_uri()
    dom = _dom(url)
    order = _row_order(dom)
    assert set(order) == {"PX7REAL01", "R5CW12345", "127.0.0.1:7401", "127.0.0.1:7402", "local"}
    assert _hidden(dom) == set()
    assert "5 of 5 devices shown" in dom
    assert "TRANSPOSE_CONV is not supported by the GPU delegate" in dom  # reason on hover (title)
    # sort by espcn int8 xnnpack headline latency (p90), slowest first: emulated Redmi 26, Pixel 7 25, emulated
    # Pixel 24, S23 12 … local 6
    dom = _dom(url + "#sort=" + "espcn_x2|int8|xnnpack|2".replace("|", "%7C") + ":desc")
    assert _row_order(dom) == ["127.0.0.1:7401", "PX7REAL01", "127.0.0.1:7402", "R5CW12345", "local"]
    assert 'data-sort="espcn_x2|int8|xnnpack|2:desc"' in dom and "sorted-desc" in dom
    dom = _dom(url + "#sort=device:asc")
    models = {"PX7REAL01": "Pixel 7", "R5CW12345": "SM-S911B", "127.0.0.1:7401": "22101316G",
              "127.0.0.1:7402": "Pixel 7", "local": "ci-host"}
    keys = [models[s].lower() for s in _row_order(dom)]
    assert keys == sorted(keys)
    # filter by SoC, by vendor, and the one emulated switch
    dom = _dom(url + "#soc=GS201")
    assert _hidden(dom) == {"R5CW12345", "127.0.0.1:7401", "local"} and 'data-shown="2"' in dom
    dom = _dom(url + "#vendor=samsung")
    assert set(_row_order(dom)) - _hidden(dom) == {"R5CW12345"}
    dom = _dom(url + "#emulated=0")
    assert _hidden(dom) == {"127.0.0.1:7401", "127.0.0.1:7402"}
    # coverage: emulated excluded by default; the switch shows the other, labelled table
    dom = _dom(url)
    assert 'data-coverage-emulated="excluded"' in dom
    dom = _dom(url + "#cov_emulated=1")
    assert 'data-coverage-emulated="included"' in dom
    block = re.search(r'<div id="cov-other"[^>]*>', dom)
    assert block is not None and "hidden" not in block.group(0) and 'data-emulated="included"' in block.group(0)
    # a run report links a device's row
    dom = _dom(url + "#device=PX7REAL01")
    assert re.search(r'<tr id="dev-PX7REAL01" class="target"', dom)
    dom = _dom(device_link(url, "127.0.0.1:7401"))
    assert re.search(r'<tr id="dev-127_0_0_1_7401" class="emulated target"', dom)


@needs_chromium
@pytest.mark.slow
def test_chromium_screenshot(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "matrix.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1500,1900", "--hide-scrollbars", (page / "index.html").as_uri())
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert img.std() > 20.0 and len(np.unique(img.reshape(-1, 3), axis=0)) > 200
    green = np.all(np.abs(img - np.array([0xBB, 0xF7, 0xD0])) < 3, axis=-1).sum()  # "meets real time and floor"
    assert green > 500, "no green (real time + quality) cells visible"
    keep = os.environ.get("PERFLAB_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_inference_needs_the_same_gpu_where_both_are_known(runs: list[Path]) -> None:
    cat = parse_catalog(
        "# source: test\nmanufacturer,model,soc,gpu,share_pct\n"
        "Google,Pixel 7,GS201,Mali-G710 MP7,40\n"
        "Google,Pixel 7 Pro,Google Tensor G2,Mali-G710 MP7,30\n"  # same chip, same GPU → inferred
        "Other,Odd GS201 build,GS201,Mali-G610,20\n"  # same SoC name, other GPU → not inferred
        "Other,No GPU listed,gs201,,10\n", "c.csv")  # GPU unknown → the SoC decides
    m = build_matrix(load_frame(runs), cat)
    cov = {c.model_name: c for c in m.coverage}["espcn_x2"]
    assert (cov.measured_pct, cov.inferred_pct) == pytest.approx((40.0, 40.0))
    assert [d.split(" ←")[0] for d in cov.inferred_devices] == ["Pixel 7 Pro", "No GPU listed"]
    assert [(g.soc, g.gpu) for g in m.gaps] == [("GS201", "Mali-G610")]


def test_the_newest_measurement_counts(runs: list[Path], tmp_path: Path) -> None:
    pixel = profile_device("pixel7", "PX7REAL01", "android")
    later = write_run(tmp_path, "20261201T000000Z-ffff", {"px": (pixel, [
        *BASE, Spec("espcn_x2", "int8", "xnnpack", 40.0, 45.0, 31.0), Spec("espcn_x2", "int8", "gpu", 38.0, 44.0, 31.0)])},
        started="2026-12-01T00:00:00+00:00")
    m = build_matrix(load_frame([*runs, later]), load_catalog(EXAMPLE))
    cov = {c.model_name: c for c in m.coverage}["espcn_x2"]
    # Pixel 7 now too slow: its 9% leaves the measured share and Pixel 7 Pro (6%) is no longer inferred
    assert (cov.measured_pct, cov.total_pct) == pytest.approx((12.0, 21.0))
    assert any("superseded by newer runs" in n for n in m.notes)


def test_play_console_export_in_utf16(tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    f.write_text('Manufacturer,Model Name,System on Chip,GPU,Share %\nGoogle,Pixel 7,GS201,Mali-G710,100\n',
                 encoding="utf-16")
    cat = load_catalog(f)
    assert cat.fmt == "Play Console export" and cat.rows[0].soc_key == "GS201" and cat.rows[0].share_pct == 100.0


def test_every_cell_shows_one_headline_latency_p90_or_mean_marked(tmp_path: Path) -> None:
    """The issue's phone rack: a phone whose tool gives only a mean shows the mean marked "mean" in the cell, the
    CSV and the coverage (never a bare "ok", never under "median"), and is ranked by it; a cell with raw samples
    shows its p90."""
    from perflab.report.matrix_html import matrix_csv

    pixel = profile_device("pixel7", "PX7REAL01", "android")
    galaxy = profile_device("galaxy_s23", "R5CW12345", "android")
    run = write_run(tmp_path, "20261124T000000Z-eeee", {
        "PX7REAL01": (pixel, [*BASE, Spec("espcn_x2", "int8", "xnnpack", 20.0, 25.0, 31.0)]),
        "R5CW12345": (galaxy, [*BASE, Spec("espcn_x2", "int8", "xnnpack", 18.0, 0.0, 31.0, summary_only=True)]),
    })
    cat = parse_catalog("# source: test shares\n50% Pixel 7 (GS201)\n50% SM-S911B (SM8550)\n", "c.txt")
    m = build_matrix(load_frame([run]), cat)
    px = {d.serial: d for d in m.devices}["PX7REAL01"].cells["espcn_x2|int8|xnnpack|2"]
    gx = {d.serial: d for d in m.devices}["R5CW12345"].cells["espcn_x2|int8|xnnpack|2"]
    assert (px.latency_ms, px.latency_statistic) == (25.0, "p90")
    assert (gx.latency_ms, gx.latency_statistic, gx.median_ms, gx.p90_ms) == (18.0, "mean", None, None)
    assert gx.rt_statistic == "mean" and gx.verdict == "rt_q"
    rows = {r["device_serial"]: r for r in csv.DictReader(matrix_csv(m).splitlines())
            if r["model_name"] == "espcn_x2"}
    assert (rows["R5CW12345"]["latency_ms"], rows["R5CW12345"]["latency_statistic"]) == ("18", "mean")
    assert rows["R5CW12345"]["median_ms"] == rows["R5CW12345"]["p90_ms"] == ""
    assert (rows["PX7REAL01"]["latency_ms"], rows["PX7REAL01"]["latency_statistic"]) == ("25", "p90")
    cov = {c.model_name: c for c in m.coverage}["espcn_x2"]
    assert cov.latency_ms == pytest.approx(21.5) and cov.latency_statistic == "p90/mean"
    html = render_matrix_html(m)
    cells = re.findall(r'<td class="c v-rt_q"[^>]*>(.*?)</td>', html)
    assert any(re.sub(r"<[^>]+>", "", c).startswith("18.0 mean") for c in cells), cells
    assert any(re.sub(r"<[^>]+>", "", c).startswith("25.0 p90 med 20.0") for c in cells), cells
    assert not any(re.sub(r"<[^>]+>", "", c).startswith("ok") for c in cells)


def test_vmaf_is_the_quality_column_on_request(tmp_path: Path) -> None:
    """`--quality vmaf`: the floor is Δ VMAF vs bicubic; a model better than bicubic by PSNR-Y but worse by
    VMAF covers the phone by PSNR-Y only, and a cell without VMAF says why in its tooltip."""
    from perflab.report.matrix_html import matrix_csv

    pixel = profile_device("pixel7", "PX7REAL01", "android")
    base = [Spec("bicubic_x2", "fp32", "xnnpack", 2.0, 2.5, 30.0, vmaf=80.0)]
    run = write_run(tmp_path, "20261125T000000Z-ffff", {"PX7REAL01": (pixel, [
        *base, Spec("espcn_x2", "int8", "xnnpack", 20.0, 25.0, 31.0, vmaf=78.5),   # +1 dB, −1.5 VMAF
        Spec("edsr_x2", "fp16", "xnnpack", 21.0, 26.0, 31.5, vmaf=86.0),           # +1.5 dB, +6 VMAF
        Spec("fsrcnn_x2", "fp32", "xnnpack", 21.0, 26.0, 31.5)])})                 # no VMAF measured
    frame = load_frame([run])
    by_psnr = build_matrix(frame, None)
    by_vmaf = build_matrix(frame, None, quality_metric="vmaf")
    cells_p, cells_v = by_psnr.devices[0].cells, by_vmaf.devices[0].cells
    assert [cells_p[k].verdict for k in ("espcn_x2|int8|xnnpack|2", "edsr_x2|fp16|xnnpack|2",
                                         "fsrcnn_x2|fp32|xnnpack|2")] == ["rt_q", "rt_q", "rt_q"]
    assert [cells_v[k].verdict for k in ("espcn_x2|int8|xnnpack|2", "edsr_x2|fp16|xnnpack|2",
                                         "fsrcnn_x2|fp32|xnnpack|2")] == ["rt", "rt_q", "rt"]
    assert cells_v["espcn_x2|int8|xnnpack|2"].delta_vmaf == pytest.approx(-1.5)
    assert build_matrix(frame, None, quality_metric="vmaf", quality_floor_vmaf=7.0).devices[0].cells[
        "edsr_x2|fp16|xnnpack|2"].verdict == "rt"
    assert json.loads(by_vmaf.to_json())["rules"]["covered"].endswith("Δ VMAF vs bicubic ≥ 0")
    html = render_matrix_html(by_vmaf)
    assert "quality floor Δ VMAF vs bicubic ≥ 0" in html and "Δ+6.0 VMAF" in html
    assert re.search(r"Δ VMAF: [^\n]*no ffmpeg with libvmaf on this host", html)
    rows = {r["model_name"]: r for r in csv.DictReader(matrix_csv(by_vmaf).splitlines())}
    assert rows["edsr_x2"]["delta_vmaf"] == "6" and rows["fsrcnn_x2"]["delta_vmaf"] == ""
    with pytest.raises(UserInputError, match="--quality"):
        build_matrix(frame, None, quality_metric="lpips")
    r = perflab("matrix", run, "--quality", "vmaf", "--quality-floor-vmaf", "1", "--out", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "m" / "index.html").read_text()
    assert "quality floor Δ VMAF vs bicubic ≥ 1" in page


def test_imported_cells_are_a_third_coverage_kind(runs: list[Path], tmp_path: Path) -> None:
    """A device farm's capture of a phone perflab never measured (Galaxy A54, a 15% gap of the EXAMPLE
    catalog), written by `perflab import`, joins the 540p30 matrix: judged against its budget by the
    mean, quality from perflab's own espcn int8 xnnpack cells, counted as imported (own column, in the
    total), labelled IMPORTED; a capture whose input size is not known is left out with a note."""
    props = tmp_path / "a54.getprop"
    props.write_text("[ro.product.model]: [SM-A546B]\n[ro.product.manufacturer]: [samsung]\n"
                     "[ro.soc.model]: [S5E8835]\n[ro.build.version.release]: [14]\n")
    imp, tiny = tmp_path / "import-a54", tmp_path / "import-a14"
    r = perflab("import", BM / "tf215_xnnpack_newest.txt", "--device", "a54-farm", "--props", props,
                "--model", "espcn_x2", "--variant", "int8", "--lr", "960x540", "--out", imp)
    assert r.returncode == 0, r.stderr
    r = perflab("import", BM / "tf113_cpu_very_old.txt", "--device", "a14-farm", "--soc", "MT6769",
                "--variant", "fp32", "--out", tiny)  # no --lr: the capture does not say its input size
    assert r.returncode == 0, r.stderr
    out = tmp_path / "m"
    r = perflab("matrix", *runs, imp, tiny, "--catalog", "example", "--out", out)
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "matrix.json").read_text())
    assert data["schema"] == "perflab.matrix/3"
    cov = {f"{c['model_name']} {c['variant']}": c for c in data["coverage"]}
    esp = cov["espcn_x2 int8"]
    assert (esp["measured_pct"], esp["imported_pct"], esp["inferred_pct"], esp["total_pct"]) == pytest.approx(
        (21.0, 15.0, 15.0, 51.0))  # the hand computation's 21 / 36, plus the A54's 15
    assert esp["imported_devices"] == ["Galaxy A54 5G"]
    dev = {d["serial"]: d for d in data["devices"]}
    cell = dev["a54-farm"]["cells"]["espcn_x2|int8|xnnpack|2"]
    assert dev["a54-farm"]["imported"] and cell["imported"] and cell["verdict"] == "rt_q"
    assert (cell["rt_statistic"], cell["rt_value_ms"], cell["latency_statistic"]) == ("mean", 18.3125, "mean")
    assert cell["provenance"].startswith("tf215_xnnpack_newest.txt (sha256 ")
    assert cell["delta_psnr_y_db"] == pytest.approx(1.0) and "Pixel 7" in cell["quality_from"]
    assert not dev["PX7REAL01"]["imported"] and "a14-farm" not in dev
    assert "S5E8835" not in [g["soc"] for g in data["gaps"]]
    assert any("IMPORTED run import-" in n and "1×1 input" in n and "--lr 960x540" in n for n in data["notes"])
    assert "espcn_x2 int8: 21.0% / +15.0% / +15.0% = 51.0%" in r.stdout
    html = (out / "index.html").read_text()
    assert 'id="imported-banner"' in html and 'class="c v-rt_q imp"' in html and '<span class="tag imp">IMPORTED</span>' in html
    assert 'data-imported="15.000000"' in html
    with (out / "matrix.csv").open() as f:
        rows = [x for x in csv.DictReader(f) if x["device_serial"] == "a54-farm"]
    assert {x["imported"] for x in rows} == {"True"} and all(x["provenance"] for x in rows)
