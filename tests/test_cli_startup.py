"""Starting ``perflab`` imports only the command it runs: its command table lists every command
with its one-line help, and a command's module is imported when that command is given its
arguments (docs/design_decisions.md). Checked through ``sys.modules`` in a fresh interpreter,
never by timing."""

from __future__ import annotations

import inspect
import json
import os
import pkgutil
import subprocess
import sys
import typing
from importlib import import_module
from pathlib import Path

import typer
from support.cli import cli_commands

import perflab.cli
from perflab.cli.main import COMMANDS, app

# What a command may need and starting perflab must not import (each costs 0.1-0.4 s of CPU).
HEAVY = ("numpy", "adbutils", "requests", "perflab.emulator", "perflab.tracing")

_PROBE = """
import json, sys
HEAVY = {heavy!r}
def heavy():
    return sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
import perflab.cli
imported = heavy()
sys.argv = ["perflab", {argv}]
try:
    perflab.cli.main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"import": imported, "command": heavy(), "code": code}}))
"""


def _probe(*argv: str) -> dict[str, typing.Any]:
    """In a fresh interpreter: the heavy modules imported by ``import perflab.cli``, then by ``perflab *argv``."""
    code = _PROBE.format(heavy=HEAVY, argv=", ".join(map(repr, argv)))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    result: dict[str, typing.Any] = json.loads(res.stdout.splitlines()[-1])
    return result


def test_importing_the_cli_and_its_help_import_no_command_module() -> None:
    found = _probe("--help")
    assert found["import"] == [], "import perflab.cli imported " + ", ".join(found["import"])
    assert found["code"] == 0
    assert found["command"] == [], "perflab --help imported " + ", ".join(found["command"])


def test_a_command_imports_its_own_module_when_it_runs(tmp_path: Path) -> None:
    found = _probe("profile", "parse", str(tmp_path / "missing.log"))  # the probe sees what a command imports
    assert found["import"] == [] and found["code"] == 2
    assert "perflab.tracing" in found["command"]


def test_perflab_help_lists_every_command_with_its_line() -> None:
    env = {**os.environ, "TERMINAL_WIDTH": "300", "COLUMNS": "300"}
    res = subprocess.run([sys.executable, "-m", "perflab", "--help"], capture_output=True, text=True, timeout=120,
                         check=False, env=env, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    listed = {line.strip("│ ").split(" ", 1)[0]: line.strip("│ ").split(" ", 1)[-1].strip()
              for line in res.stdout.split("Commands")[1].splitlines() if line.startswith("│")}
    assert listed == {c.name: c.help for c in COMMANDS}


def test_every_typer_app_and_command_function_of_the_cli_is_in_the_command_table() -> None:
    assert app.registered_callback is not None
    mounted = {id(callback) for _, callback in cli_commands()} | {id(app.registered_callback.callback)}
    apps = {id(c.load()) for c in COMMANDS}
    for c in COMMANDS:
        target = c.load()
        if isinstance(target, typer.Typer):
            apps |= {id(g.typer_instance) for g in target.registered_groups}
    unmounted = []
    for info in pkgutil.iter_modules(perflab.cli.__path__, "perflab.cli."):
        module = import_module(info.name)
        for name, value in vars(module).items():
            if value is app:  # the top level itself
                continue
            if isinstance(value, typer.Typer) and id(value) not in apps:
                unmounted.append(f"{info.name}.{name} (a typer app)")
            elif inspect.isfunction(value) and value.__module__ == info.name and _takes_cli_parameters(value) \
                    and id(value) not in mounted:
                unmounted.append(f"{info.name}.{name} (a command function)")
    assert not unmounted, "not in perflab.cli.main.COMMANDS (so not in perflab --help): " + ", ".join(unmounted)


def _takes_cli_parameters(fn: typing.Callable[..., typing.Any]) -> bool:
    """Whether ``fn`` declares a typer option or argument, as a command does. Typer reads a
    command's hints the same way, so one whose hints name what exists only for type checking is
    no command."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except NameError:
        return False
    return any(isinstance(m, typer.models.ParameterInfo)
               for hint in hints.values() if typing.get_origin(hint) is typing.Annotated
               for m in typing.get_args(hint)[1:])


def test_a_command_that_keeps_its_own_help_is_listed_with_its_first_paragraph() -> None:
    for c in COMMANDS:
        target = c.load()
        if c.own_help:
            assert not isinstance(target, typer.Typer)
            assert (inspect.getdoc(target) or "").split("\n\n")[0].replace("\n", " ") == c.help, c.name


def test_the_emulated_benchmark_model_starts_without_the_phone_side() -> None:
    """Every emulated benchmark_model run is a fresh ``python -m perflab.emulator.benchmark_model``
    (each cell's runs, each quality frame): importing it must not bring the phone's adbd, physics,
    shell or pydantic profiles (half of its start-up when the package imported them), while the
    package's public names still load on first use."""
    code = ("import json, sys\n"
            "import perflab.emulator.benchmark_model.run\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('perflab.emulator'))))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    loaded = json.loads(res.stdout.splitlines()[-1])
    phone_side = ("adbd", "phone", "physics", "profiles", "runtime", "shell")
    assert [m for m in loaded if m.split(".")[2:3] and m.split(".")[2] in phone_side] == [], loaded
    from perflab import emulator

    assert emulator.EmulatedPhone.__module__ == "perflab.emulator.phone"
    assert emulator.Faults.__module__ == "perflab.emulator.adbd"
    assert "pixel7" in emulator.available_profiles()
    try:
        emulator.no_such_name  # noqa: B018 - the attribute lookup is what is tested
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name was found")
