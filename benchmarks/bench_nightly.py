"""The nightly's own cost: N emulated phones on a light scenario, against one phone alone.

Usage: python benchmarks/bench_nightly.py [--phones 8] [--hosts 2] [--scenarios 1] [--queue] [--json]

Emulated phones (perflab's emulator) behind real adb servers, one per emulated host, phones
spread over the hosts; the scenario is scenarios/light.yaml (a 120×68 frame, 2 timed runs,
bicubic and ESPCN int8: 2 cells per phone; ``--scenarios K`` runs K copies of it). Measured, each from a fresh night folder:

- one phone: the in-process night (``run_night``) with one phone;
- N phones: the in-process night with all N phones (one thread each);
- with ``--queue``, N phones through the PostgreSQL task queue: a private PostgreSQL server
  (the Debian package's binaries, as the tests start it), one ``perflab worker`` per host
  started and ready first, the clock running from queueing the night to its last unit.

Reported: the ratio N phones / one phone (the issue's bar: ≤ 1.5×), and the scheduler and queue
overhead per cell: the night's wall time minus the longest phone's measured work (the sum of
its cells' ``duration_s`` as the runner records them), divided by that phone's cells (bar:
< 0.5 s). Emulated phones run their model on this machine's CPU, so on a machine with fewer
cores than phones the N-phone night is also slowed by the phones competing for the CPU; that is
reported too (the longest phone's measured work, alone and among N).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from perflab.emulator.phone import EmulatedPhone, connect_to_adb_server
from perflab.emulator.testing import private_adb_server
from perflab.lab.nightly import UnitOptions, UnitOutcome, UnitStatus, night_dir, read_outcomes, run_night
from perflab.lab.rack import load_rack, resolve_devices
from perflab.store.runfolder import load_run

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "scenarios" / "light.yaml"
PERFLAB = str(Path(sys.executable).with_name("perflab"))


def scenarios(folder: Path, k: int) -> list[Path]:
    """``k`` copies of the light scenario under distinct names (a night of 2·k cells per phone)."""
    text = SCENARIO.read_text()
    out = []
    for i in range(1, k + 1):
        p = folder / f"light{i}.yaml"
        p.write_text(text.replace("name: light", f"name: light{i}", 1))
        out.append(p)
    return out


def write_rack(folder: Path, name: str, hosts: list[int], phones: list[tuple[str, int]], scs: list[Path]) -> Path:
    lines = [f"name: {name}", "hosts:"]
    lines += [f"  h{i}: {{adb: '127.0.0.1:{port}'}}" for i, port in enumerate(hosts)]
    lines += ["devices:"] + [f"  - {{serial: '{serial}', host: h{h}}}" for serial, h in phones]
    lines += [f"scenarios: [{', '.join(str(p) for p in scs)}]", "limits: {retry_backoff_s: 0.5}"]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def costs(outcomes: list[UnitOutcome], wall_s: float) -> dict[str, Any]:
    """Where the night's time went, for the phone that took longest in the runner."""
    per_phone: dict[str, list[UnitOutcome]] = {}
    for o in outcomes:
        per_phone.setdefault(o.serial, []).append(o)

    def runner_s(units: list[UnitOutcome]) -> float:
        return sum(u.run_s or 0.0 for u in units)

    slowest = max(per_phone.values(), key=runner_s)
    cells = [c for u in slowest for c in load_run(Path(u.folder or "")).cells]
    cell_s = sum(c.duration_s or 0.0 for c in cells)
    run_s = runner_s(slowest)
    return {"wall_s": wall_s, "cells_per_phone": len(cells), "slowest_phone_cells_s": cell_s,
            "slowest_phone_runner_s": run_s,
            # the runner's own cost per phone (prepare, frames, restore), spread over its cells
            "runner_overhead_per_cell_s": (run_s - cell_s) / len(cells),
            # the night's: resolving, health checks, run folders, state, the store, the queue
            "scheduler_overhead_per_cell_s": (wall_s - run_s) / len(cells)}


def in_process(rack: Path, reports: Path) -> dict[str, Any]:
    loaded = load_rack(rack)
    t0 = time.monotonic()
    res = resolve_devices(loaded)
    summary = run_night(loaded, res, "bench", reports, options=UnitOptions(store_url=str(reports / "perflab.sqlite")))
    wall = time.monotonic() - t0
    assert all(o.status == UnitStatus.OK for o in summary.outcomes), [o.reason for o in summary.outcomes]
    return costs(summary.outcomes, wall)


def queued(rack: Path, reports: Path, hosts: int, env: dict[str, str]) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "tests"))
    from support.postgres import private_postgres  # the tests' private PostgreSQL server

    reports.mkdir(parents=True, exist_ok=True)
    with private_postgres() as pg, ExitStack() as stack:
        logs = []
        for h in range(hosts):
            log = reports / f"worker-h{h}.log"
            out = stack.enter_context(log.open("wb"))
            proc = subprocess.Popen([PERFLAB, "worker", "--host", f"h{h}", "--db", pg.url, "--reports-dir",
                                     str(reports / f"h{h}"), "--no-report", "--heartbeat-s", "1"],
                                    env=env, stdout=out, stderr=subprocess.STDOUT)
            stack.callback(proc.wait, 60)
            stack.callback(proc.terminate)
            logs.append(log)
        while not all("taking jobs" in log.read_text() for log in logs):  # workers ready: imports done
            time.sleep(0.2)
        t0 = time.monotonic()
        r = subprocess.run([PERFLAB, "nightly", str(rack), "--db", pg.url, "--night", "bench", "--wait",
                            "--reports-dir", str(reports / "summary")], env=env, capture_output=True, text=True,
                           check=False)
        wall = time.monotonic() - t0
        if r.returncode != 0:
            raise SystemExit(f"queued night failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    outcomes = [o for h in range(hosts) for o in read_outcomes(night_dir(reports / f"h{h}", "bench"))]
    assert all(o.status == UnitStatus.OK for o in outcomes), [o.reason for o in outcomes]
    cli_s = _cli_start_s(env)  # the `perflab nightly --wait` process's own start-up, not the queue's
    return costs(outcomes, wall - cli_s) | {"cli_start_s": cli_s}


def _cli_start_s(env: dict[str, str]) -> float:
    t0 = time.monotonic()
    subprocess.run([PERFLAB, "--version"], env=env, capture_output=True, check=True)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phones", type=int, default=8)
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--scenarios", type=int, default=1, help="copies of the light scenario (2 cells each)")
    ap.add_argument("--queue", action="store_true", help="also through the PostgreSQL task queue")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="perflab-bench-nightly-"))
    os.environ["PERFLAB_STATE_DIR"] = str(tmp / "state")
    env = dict(os.environ)
    out: dict[str, Any] = {"phones": args.phones, "hosts": args.hosts, "cpus": os.cpu_count(),
                           "python": platform.python_version(), "scenario": str(SCENARIO.relative_to(REPO))}
    with ExitStack() as stack:
        servers = [stack.enter_context(private_adb_server()) for _ in range(args.hosts)]
        phones = []
        for i in range(args.phones):
            p = stack.enter_context(EmulatedPhone.start(profile="pixel7"))
            connect_to_adb_server(p, servers[i % args.hosts])
            phones.append((p.serial, i % args.hosts))
        ports = [s.port for s in servers]
        scs = scenarios(tmp, args.scenarios)
        one = write_rack(tmp, "one", ports, phones[:1], scs)
        many = write_rack(tmp, "many", ports, phones, scs)
        out["one_phone"] = in_process(one, tmp / "r-one")
        out["n_phones"] = in_process(many, tmp / "r-many")
        out["ratio"] = out["n_phones"]["wall_s"] / out["one_phone"]["wall_s"]
        if args.queue:
            out["n_phones_queued"] = queued(many, tmp / "r-queued", args.hosts, env)
            out["ratio_queued"] = out["n_phones_queued"]["wall_s"] / out["one_phone"]["wall_s"]
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{args.phones} emulated phones on {args.hosts} adb servers, {out['one_phone']['cells_per_phone']} cells "
          f"per phone, {out['cpus']} CPUs")
    rows = [("one phone, in process", out["one_phone"], None),
            (f"{args.phones} phones, in process", out["n_phones"], out["ratio"])]
    if args.queue:
        rows.append((f"{args.phones} phones, queued", out["n_phones_queued"], out["ratio_queued"]))
    for label, r, ratio in rows:
        times = f" = {ratio:.2f}× one phone" if ratio is not None else ""
        print(f"  {label:24s} {r['wall_s']:6.2f} s{times}; slowest phone: cells {r['slowest_phone_cells_s']:.2f} s, "
              f"runner {r['slowest_phone_runner_s']:.2f} s; per cell: scheduler "
              f"{r['scheduler_overhead_per_cell_s']:.2f} s, runner {r['runner_overhead_per_cell_s']:.2f} s")


if __name__ == "__main__":
    main()
