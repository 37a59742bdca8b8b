"""perflab store index / info: run folders (a folder of them) into a store, idempotent; one-line
errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_store_sql import _run

from perflab.store.results import CellStatus
from perflab.store.sql import SqlStore


def _perflab(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perflab", *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


def test_store_index_and_info(tmp_path: Path) -> None:
    reports = tmp_path / "reports" / "light"
    _run(reports / "n1", "n1", "2026-11-26T00:00:00+00:00", 20.0)
    _run(reports / "n2", "n2", "2026-11-27T00:00:00+00:00", 24.0, CellStatus.FAILED)
    db = tmp_path / "store.sqlite"
    for _ in range(2):  # idempotent
        r = _perflab("store", "index", tmp_path / "reports", "--db", db)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[-1] == f"2 run(s) indexed in {db}"
    with SqlStore(db) as st:
        assert st.run_ids() == ["n1", "n2"] and st.run_folder("n1") == (reports / "n1").resolve()
        assert len(st.samples_frame("n1")) == 9
    r = _perflab("store", "info", "--db", db)
    assert r.returncode == 0
    assert r.stdout.splitlines()[1:] == ["schema: 4 (alembic revision 0004)", "runs: 2 (newest n2)",
                                         "  light: 2 run(s), 2 device(s), 6 cell record(s)"]
    for args in (("store", "info", "--db", "mysql://h/db"), ("store", "index", tmp_path / "nope", "--db", db)):
        r = _perflab(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
