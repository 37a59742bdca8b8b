"""The live progress table (issue 22 item 6): exactly 80 columns whatever the names, and an
EMULATED tag on emulated phones that survives a long label."""

from __future__ import annotations

import io

from perflab.lab.progress import TABLE_WIDTH, DeviceState, PlainProgress, table_lines


def test_the_table_is_80_columns_and_says_emulated() -> None:
    now = 1000.0
    states = [
        DeviceState("emulator-perflab-1", "Pixel 7 emulated profile with a long name (emulator-perflab-1)", 12,
                    emulated=True, index=3, cell_id="espcn_x2.int8.gpu-very-long-cell-identifier",
                    phase="timing (back_to_back)", started_s=now - 3725.0, cell_started_s=now - 2.0,
                    done_durations_s=[30.0, 31.0]),
        DeviceState("local", "host (local)", 4, index=1, cell_id="bicubic_x2.fp32.cpu", phase="quality",
                    started_s=now - 5.0, cell_started_s=now - 5.0),
    ]
    lines = table_lines(states, now)
    assert TABLE_WIDTH == 80
    assert [len(x) for x in lines] == [80, 80, 80]
    assert "EMULATED" in lines[1] and "EMULATED" not in lines[2]
    assert lines[1].index("EMULATED") < 24 and "…" in lines[1]  # the label is cut, the tag kept
    assert lines[2].startswith("host (local)")


def test_plain_progress_lines_say_emulated() -> None:
    """Logs and pipes get plain lines, not the table: an emulated phone's lines carry the tag there too."""
    out = io.StringIO()
    p = PlainProgress(lambda rec: "", stream=out)
    p.plan("emulator-perflab-1", "Pixel 7 emulated", 2, emulated=True)
    p.plan("local", "host (local)", 2)
    p.phase("emulator-perflab-1", 1, "espcn_x2.int8.cpu", "timing")
    p.phase("local", 1, "bicubic_x2.fp32.cpu", "quality")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  [emulator-perflab-1] EMULATED 1/2 espcn_x2.int8.cpu · timing")
    assert lines[1].startswith("  [local] 1/2 bicubic_x2.fp32.cpu · quality") and "EMULATED" not in lines[1]
