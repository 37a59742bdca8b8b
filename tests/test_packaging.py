"""What the wheel carries: every data file the package reads is declared as package data, and
no module reaches outside the package for its files.

The full check (build the wheel, install it in a clean venv, run perflab from a folder outside
the checkout) is scripts/check_wheel.sh, which .ci/run runs before the tests; these are the
quick guards that name the file at fault.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "perflab"


def _package_files() -> list[Path]:
    """Files under perflab/ that git knows or would add (tracked, or untracked and not ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "perflab"],
                         cwd=REPO, capture_output=True, text=True, check=True, timeout=60).stdout
    return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]


def test_every_data_file_in_the_package_is_declared_package_data() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["perflab"]
    declared = {p for pattern in patterns for p in PACKAGE.glob(pattern) if p.is_file()}
    data = [p for p in _package_files() if p.suffix not in (".py", ".pyi")]
    assert data, "no data files found: the package's configs and weights are gone"
    missing = sorted(str(p.relative_to(REPO)) for p in data if p not in declared)
    assert not missing, f"not in [tool.setuptools.package-data] (the wheel would lack them): {missing}"


def test_packaged_configs_are_declared() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["perflab"]
    found = {p.relative_to(PACKAGE).as_posix() for pattern in declared for p in PACKAGE.glob(pattern)}
    assert {"data/device_configs/generic.yaml", "data/emulator_profiles/pixel7.yaml"} <= found


_UP = re.compile(r"__file__\)?(?:\.resolve\(\))?(\.parents\[(\d+)\]|(?:\.parent(?!s))+)")


def _reaches_outside(module: Path, line: str) -> bool:
    """Whether ``Path(__file__)…parent…`` on this line names a folder above the package."""
    for m in _UP.finditer(line):
        up = int(m.group(2)) + 1 if m.group(2) is not None else m.group(1).count(".parent")
        if up > len(module.parents):
            return True
        if not module.parents[up - 1].is_relative_to(PACKAGE):
            return True
    return False


def test_no_module_finds_files_outside_the_package() -> None:
    """``Path(__file__).parents[2]`` from perflab/devices/ works only in a checkout; packaged
    data goes through perflab.core.paths (importlib.resources)."""
    offenders = [
        f"{p.relative_to(REPO)}:{n}" for p in _package_files() if p.suffix == ".py"
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if _reaches_outside(p, line)
    ]
    assert not offenders, offenders
