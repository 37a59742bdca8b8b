"""Test helpers for the rack, nightly and queue tests: a private real PostgreSQL server, and
emulated rack hosts (one real adb server each, on its own 127.0.0.1 port).

The PostgreSQL server is the Debian package's binaries (``apt-get install postgresql``), started
by the test in a temporary folder on a free port — so a test can stop it (the database going
away mid-night) and start it again without touching any other server on the machine.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivatePostgres:
    bindir: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def start(self) -> None:
        log = self.data.parent / "pg.log"
        subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w",
                                       "-t", "60", "-o", f"-p {self.port} -k {self.data.parent} -h 127.0.0.1",
                                       "start"]), check=True, capture_output=True, timeout=90)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                                       "stop"]), check=False, capture_output=True, timeout=90)

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries not found (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="perflab-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o755)
    pg = PrivatePostgres(bindir, data, _free_port())
    subprocess.run(pg._as_owner([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                 "--no-sync"]), check=True, capture_output=True, timeout=120)
    with (data / "postgresql.conf").open("a") as f:
        f.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n")
    pg.start()
    try:
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate: object, timeout_s: float, poll_s: float = 0.2) -> bool:
    """Poll until ``predicate()`` holds (an event to wait for, with a generous safety limit)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


LIGHT_SCENARIO = """\
name: {name}
geometry: {{lr_width: 120, lr_height: 68, scale: 2}}
pacing: {{fps: 30, also_back_to_back: false}}
models:
  - zoo: espcn
    variants: [int8]
delegates: [cpu]
threads: 1
runs: {{warmup: 1, iterations: 2, timeout_s: 120}}
cooldown: {{max_start_temp_c: 90, wait_timeout_s: 5}}
tuning: {{suspend_charging: true}}
telemetry: {{enabled: false}}
profiling: {{op_profiling: false}}
inputs:
  images:
    - skimage: coffee
  max_frames: 1
"""


def write_scenario(folder: Path, name: str = "light") -> Path:
    p = folder / f"{name}.yaml"
    p.write_text(LIGHT_SCENARIO.format(name=name))
    return p
