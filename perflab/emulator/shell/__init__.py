"""A strict, restricted POSIX-sh interpreter for the emulated phone (mksh's behaviour).

It supports what a measurement harness sends over ``adb shell`` and refuses the rest loudly
(``sh: <thing>: not supported by the emulated phone``, exit 127) instead of guessing.

Parts: ``lexer`` (words and operators), ``parser`` (the syntax tree), ``interp`` (the
interpreter, one shell process), ``expand`` (word expansion), and the commands by family:
``cmd_builtins``, ``cmd_text``, ``cmd_files``, ``cmd_system``, ``cmd_process``,
``cmd_android``, ``dumpsys``; ``benchmark`` runs the emulated ``benchmark_model``.
"""

from perflab.emulator.shell import (
    cmd_android,
    cmd_builtins,
    cmd_files,
    cmd_process,
    cmd_system,
    cmd_text,
    dumpsys,
)
from perflab.emulator.shell.benchmark import run_benchmark_model
from perflab.emulator.shell.dumpsys import dumpsys_battery, dumpsys_thermal
from perflab.emulator.shell.errors import SH, Cancelled, ShellSyntaxError, Unsupported
from perflab.emulator.shell.interp import Shell
from perflab.emulator.shell.lexer import Op, Seg, Token, Word, tokenize
from perflab.emulator.shell.parser import parse
from perflab.emulator.shell.registry import COMMANDS, command
from perflab.emulator.shell.streams import IO, Writer

del cmd_android, cmd_builtins, cmd_files, cmd_process, cmd_system, cmd_text, dumpsys  # imported to register

__all__ = [
    "COMMANDS", "IO", "SH", "Cancelled", "Op", "Seg", "Shell", "ShellSyntaxError", "Token", "Unsupported", "Word",
    "Writer", "command", "dumpsys_battery", "dumpsys_thermal", "parse", "run_benchmark_model", "tokenize",
]
