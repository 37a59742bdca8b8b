"""Every stored telemetry number of each cell, one table per device. Pure, no I/O; rules in
:mod:`perflab.report.view_common`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from perflab.core.display import fmt_num
from perflab.report import view_common as vc
from perflab.report.view_answer import achieved_text
from perflab.store.results import CellRecord, CellStatus, DeviceRecord, RunRecord


@dataclass
class TelemetryRowView:
    """Every stored telemetry number of one cell (its own values, not deltas)."""

    cell_id: str
    anchor: str
    label: str
    delegate: str
    baseline: bool
    emulated: bool
    values: list[vc.Val]


@dataclass
class TelemetryTableView:
    device: DeviceRecord
    emulated: bool
    columns: list[tuple[str, str]]  # (header, what it is)
    rows: list[TelemetryRowView]


TELEMETRY_COLUMNS: list[tuple[str, str]] = [
    ("CPU busy", "device CPU busy over all cores in the window (%); per core in the tooltip"),
    ("CPU MHz", "mean clock per core/policy in the window (range across them; each in the tooltip)"),
    ("GPU busy", "GPU busy in the window (%)"),
    ("GPU MHz", "mean GPU clock in the window"),
    ("RSS peak", "sampled VmRSS peak of the measured process (MB)"),
    ("Mem avail min", "lowest MemAvailable of the device in the window (MB)"),
    ("SoC °C", "the SoC/CPU thermal zone: end (max) in the window, with the zone"),
    ("Skin °C", "the skin sensor: end (max) in the window, with the zone"),
    ("Current", "mean battery current, positive when drawn from the battery (mA)"),
    ("Voltage", "mean battery voltage (V)"),
    ("Power", "mean power (mW)"),
    ("Energy", "energy over the window: mJ and mAh"),
    ("Host pkg", "host CPU package power from RAPL (mW), where the host has it"),
    ("Window", "the span the measured process was alive (s), sampling interval (achieved rate, longest gap in the "
               + "tooltip), the sampler's own CPU cost"),
]


def _spread(values: dict[str, float], fmt: str) -> tuple[str, str]:
    vs = list(values.values())
    text = fmt.format(vs[0]) if len(vs) == 1 or min(vs) == max(vs) else f"{fmt.format(min(vs))}–{fmt.format(max(vs))}"
    return text, ", ".join(f"{k} {fmt.format(v)}" for k, v in values.items())


def _telemetry_values(cell: CellRecord, notes: vc.Footnotes) -> list[vc.Val]:
    t = cell.telemetry

    def num(attr: str, fmt: str, what: str) -> vc.Val:
        v = getattr(t, attr)
        return vc.Val(fmt.format(v), title=f"{what}: {v:.6g}") if v is not None else notes.missing(
            vc.telemetry_reason(cell, attr))

    cpu = num("device_cpu_busy_pct", "{:.0f}%", "device CPU busy")
    if t.cpu_core_busy_pct and not cpu.missing:
        text, each = _spread(t.cpu_core_busy_pct, "{:.0f}")
        cpu = replace(cpu, sub=f"cores {text}%", sub_cls="muted", title=f"{cpu.title}; per core: {each}")
    if t.cpu_freq_mhz:
        text, each = _spread(t.cpu_freq_mhz, "{:.0f}")
        freq = vc.Val(text, title=f"mean clock per core/policy (MHz): {each}")
    else:
        freq = notes.missing(t.missing.get("cpu_freq_mhz") or vc.telemetry_reason(cell, "cpu_freq_mhz"))
    gate = (f"; the cool-down gate read {t.start_temp_c} °C ({t.temp_source or 'its zone not recorded'}) before the cell"
            if t.start_temp_c is not None else "")
    if t.temp_max_c is not None:
        temp = vc.Val(f"{fmt_num(t.temp_end_c, '.1f')} ({t.temp_max_c:.1f})", sub=t.temp_zone, sub_cls="muted",
                      title=f"zone {t.temp_zone or 'not recorded'}: end {t.temp_end_c}, max {t.temp_max_c} °C{gate}")
    else:
        temp = notes.missing(vc.telemetry_reason(cell, "temp_max_c"))
    if t.skin_max_c is not None:
        skin = vc.Val(f"{fmt_num(t.skin_end_c, '.1f')} ({t.skin_max_c:.1f})", sub=t.skin_zone, sub_cls="muted",
                      title=f"zone {t.skin_zone}: end {t.skin_end_c}, max {t.skin_max_c} °C")
    else:
        skin = notes.missing(vc.telemetry_reason(cell, "skin_max_c"))
    if t.energy_mj is not None:
        mah = f"{t.energy_mah:.3f} mAh" if t.energy_mah is not None else None
        energy = vc.Val(f"{t.energy_mj:.0f} mJ", sub=mah, sub_cls="muted", title=f"energy over the window: "
                     f"{t.energy_mj:.1f} mJ" + (f", {t.energy_mah:.4f} mAh" if t.energy_mah is not None else ""))
    else:
        energy = notes.missing(vc.telemetry_reason(cell, "energy_mj"))
    if t.window_s is not None:
        rate = f"every {t.sample_interval_ms:g} ms" if t.sample_interval_ms is not None else None
        cost = f"; the sampler used {t.sampler_cpu_pct:.2f}% of one core" if t.sampler_cpu_pct is not None else ""
        window = vc.Val(f"{t.window_s:.1f} s", sub=rate, sub_cls="muted",
                     title=f"window {t.window_s:.2f} s{achieved_text(t.sample_rate_hz, t.sample_max_gap_ms)}{cost}")
    else:
        window = notes.missing(vc.telemetry_reason(cell, "window_s"))
    return [
        cpu, freq,
        num("gpu_busy_pct", "{:.0f}%", "GPU busy"),
        num("gpu_freq_mhz", "{:.0f}", "GPU clock (MHz)"),
        num("rss_peak_mb", "{:.0f} MB", "RSS peak of the measured process"),
        num("mem_avail_min_mb", "{:.0f} MB", "lowest MemAvailable"),
        temp, skin,
        num("current_ma", "{:.0f} mA", "mean battery current"),
        num("voltage_v", "{:.3f} V", "mean battery voltage"),
        num("power_mw", "{:.0f} mW", "mean power"),
        energy,
        num("host_package_mw", "{:.0f} mW", "RAPL package power"),
        window,
    ]


def build_telemetry_tables(run: RunRecord, notes: vc.Footnotes) -> list[TelemetryTableView]:
    """Per device: every telemetry number each ok cell stored, missing ones with their reasons. Devices whose cells
    stored no sampler telemetry at all (older perflab, or not sampled) are left out."""
    out = []
    for dev, groups in vc.grouped_cells(run):
        cells = [c for _, m in groups for c in m if c.status == CellStatus.OK]
        if not any(c.telemetry.timeline_file or c.telemetry.window_s is not None for c in cells):
            continue
        rows = [TelemetryRowView(vc.cell_key(run, c), vc.anchor_for(vc.cell_key(run, c)), vc.cell_label(c), c.delegate, c.baseline,
                                 vc.is_emulated(c), _telemetry_values(c, notes)) for c in cells]
        out.append(TelemetryTableView(dev, vc.device_emulated(dev) or any(r.emulated for r in rows), TELEMETRY_COLUMNS,
                                      rows))
    return out
