"""Shell builtins: status, variables, directories, ``test``, ``sleep``."""

from __future__ import annotations

import math
import re
import signal
import stat as statmod
from collections.abc import Callable
from typing import TYPE_CHECKING

from perflab.emulator.fs import ROOT_UID
from perflab.emulator.shell.errors import SH, ExitShell, LoopControl, Unsupported
from perflab.emulator.shell.expand import check_ifs
from perflab.emulator.shell.parser import ASSIGN_RE
from perflab.emulator.shell.registry import command, err
from perflab.emulator.shell.streams import IO

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell


@command("true", ":")
def _true(sh: Shell, args: list[str], io: IO) -> int:
    return 0


def _loop_control(sh: Shell, args: list[str], io: IO, name: str) -> int:
    """mksh: ``break [N]`` / ``continue [N]`` leave (or restart) the N-th enclosing loop."""
    levels = 1
    if args:
        if not args[0].isdigit() or int(args[0]) < 1:
            err(io, f"{SH}: {name}: {args[0]}: bad number")
            return 1
        levels = int(args[0])
    if sh.loop_depth == 0:
        err(io, f"{SH}: {name}: can't {name}")
        return 1
    raise LoopControl(min(levels, sh.loop_depth), again=name == "continue")


@command("break")
def _break(sh: Shell, args: list[str], io: IO) -> int:
    return _loop_control(sh, args, io, "break")


@command("continue")
def _continue(sh: Shell, args: list[str], io: IO) -> int:
    return _loop_control(sh, args, io, "continue")


@command("false")
def _false(sh: Shell, args: list[str], io: IO) -> int:
    return 1


@command("exit")
def _exit(sh: Shell, args: list[str], io: IO) -> int:
    code = sh.status
    if args:
        try:
            code = int(args[0]) & 0xFF
        except ValueError:
            err(io, f"{SH}: exit: {args[0]}: bad number")
            code = 2
    raise ExitShell(code)


@command("cd")
def _cd(sh: Shell, args: list[str], io: IO) -> int:
    target = sh.path(args[0]) if args else "/"
    if not sh.rt.fs.is_dir(target):
        err(io, f"{SH}: cd: {args[0] if args else '/'}: No such file or directory")
        return 2
    sh.cwd = target
    return 0


@command("pwd")
def _pwd(sh: Shell, args: list[str], io: IO) -> int:
    io.out((sh.cwd + "\n").encode())
    return 0


@command("export", "readonly", "local")
def _export(sh: Shell, args: list[str], io: IO) -> int:
    for a in args:
        m = ASSIGN_RE.fullmatch(a)
        if m:
            sh.vars[m.group(1)] = m.group(2)
    return 0


@command("unset")
def _unset(sh: Shell, args: list[str], io: IO) -> int:
    for a in args:
        sh.vars.pop(a, None)
    return 0


def _file_test(sh: Shell, op: str, x: str) -> bool:
    fs = sh.rt.fs
    path = sh.path(x)
    st = fs.stat(path)
    if op in ("-L", "-h"):
        return False
    if st is None:
        if op in _FILE_TESTS:
            return False
        raise ValueError(op)
    if op == "-w":
        return fs.writable_by(path, sh.uid) or (fs.vnode(path) is not None and sh.uid == ROOT_UID)
    check = _FILE_TESTS.get(op)
    if check is None:
        raise ValueError(op)
    return check(st.mode, st.size)


_FILE_TESTS: dict[str, Callable[[int, int], bool]] = {
    "-e": lambda mode, size: True,
    "-r": lambda mode, size: True,
    "-f": lambda mode, size: statmod.S_ISREG(mode),
    "-d": lambda mode, size: statmod.S_ISDIR(mode),
    "-s": lambda mode, size: size > 0,
    "-x": lambda mode, size: bool(mode & 0o111),
    "-w": lambda mode, size: False,
}
_INT_TESTS = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-le": int.__le__,
              "-gt": int.__gt__, "-ge": int.__ge__}


def _binary_test(x: str, op: str, y: str) -> bool:
    if op in ("=", "=="):
        return x == y
    if op == "!=":
        return x != y
    if op in _INT_TESTS:
        return bool(_INT_TESTS[op](int(x), int(y)))
    raise ValueError(op)


def _test_eval(sh: Shell, a: list[str]) -> bool:
    if not a:
        return False
    if a[0] == "!":
        return not _test_eval(sh, a[1:])
    for joiner in ("-a", "-o"):
        if joiner in a[1:]:
            i = a.index(joiner, 1)
            left, right = a[:i], a[i + 1:]
            if joiner == "-a":
                return _test_eval(sh, left) and _test_eval(sh, right)
            return _test_eval(sh, left) or _test_eval(sh, right)
    if len(a) == 1:
        return a[0] != ""
    if len(a) == 2:
        if a[0] in ("-z", "-n"):
            return (a[1] == "") == (a[0] == "-z")
        return _file_test(sh, a[0], a[1])
    if len(a) == 3:
        return _binary_test(a[0], a[1], a[2])
    raise ValueError(" ".join(a))


@command("test", "[")
def _test(sh: Shell, args: list[str], io: IO) -> int:
    if args and args[-1] == "]":
        args = args[:-1]
    try:
        return 0 if _test_eval(sh, args) else 1
    except ValueError as exc:
        err(io, f"test: {exc}: unknown operand or bad number")
        return 2


@command("sleep")
def _sleep(sh: Shell, args: list[str], io: IO) -> int:
    try:
        seconds = float(args[0]) if args else 0.0
    except ValueError:
        err(io, f"sleep: invalid number '{args[0]}'")
        return 1
    if not math.isfinite(seconds) or seconds < 0:
        err(io, f"sleep: invalid number '{args[0]}'")
        return 1
    sh.sleep(seconds)
    return 0


@command("exec")
def _exec(sh: Shell, args: list[str], io: IO) -> int:
    if not args:
        raise Unsupported("exec without a command (redirecting the shell's own streams)")
    raise ExitShell(sh.exec_argv(args, io, sh.cmd_env, exec_=True))


def parse_signal(spec: str) -> int | None:
    """A signal number from ``TERM``, ``SIGTERM``, ``15`` (0 and ``EXIT`` for the exit trap)."""
    name = spec.upper()
    if name in ("0", "EXIT"):
        return 0
    if name.isdigit():
        try:
            return int(signal.Signals(int(name)))
        except ValueError:
            return None
    try:
        return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError:
        return None


def _signal_name(signo: int) -> str:
    return "EXIT" if signo == 0 else signal.Signals(signo).name.removeprefix("SIG")


@command("trap")
def _trap(sh: Shell, args: list[str], io: IO) -> int:
    if not args:
        for trapped, action in sorted(sh.traps.items()):
            quoted = action.replace("'", "'\\''")
            io.out(f"trap -- '{quoted}' {_signal_name(trapped)}\n".encode())
        return 0
    if args[0] == "--":
        args = args[1:]
    action, conditions = (args[0], args[1:]) if parse_signal(args[0]) is None or len(args) > 1 else ("-", args)
    status = 0
    for cond in conditions:
        found = parse_signal(cond)
        if found is None or found in (signal.SIGKILL, signal.SIGSTOP):
            err(io, f"{SH}: trap: bad signal '{cond}'")
            status = 1
            continue
        signo: int = found
        if action == "-":
            sh.traps.pop(signo, None)
        else:
            sh.traps[signo] = action
    return status


@command("wait")
def _wait(sh: Shell, args: list[str], io: IO) -> int:
    if any(a.startswith(("-", "%")) for a in args):
        raise Unsupported("wait " + " ".join(a for a in args if a.startswith(("-", "%"))))
    pids = [int(a) if a.isdigit() else -1 for a in args] if args else list(sh.jobs)
    status = 0
    for pid in pids:
        job = sh.jobs.get(pid)
        if job is None:
            status = 127
            continue
        status = sh.wait_job(job)
        if job.done.is_set():
            sh.jobs.pop(pid, None)
    return status


def _read_line(io: IO, raw: bool) -> tuple[str, bool]:
    """The next logical line (backslash-newline joins lines unless ``raw``) and whether EOF ended it."""
    text = ""
    while True:
        line = io.inp.line()
        if line is None:
            return text, True
        chunk = line.decode("utf-8", "replace")
        eof = not chunk.endswith("\n")
        chunk = chunk.removesuffix("\n")
        if raw or not chunk.endswith("\\") or chunk.endswith("\\\\"):
            return text + chunk, eof
        text += chunk[:-1]
        if eof:
            return text, True


@command("read")
def _read(sh: Shell, args: list[str], io: IO) -> int:
    raw = False
    names: list[str] = []
    for a in args:
        if a == "-r":
            raw = True
        elif a.startswith("-"):
            raise Unsupported(f"read {a}")
        elif not ASSIGN_RE.fullmatch(a + "="):
            err(io, f"{SH}: read: {a}: invalid identifier")
            return 2
        else:
            names.append(a)
    names = names or ["REPLY"]
    check_ifs(sh.cmd_env.get("IFS", sh.vars.get("IFS")))
    text, eof = _read_line(io, raw)
    if not raw:
        text = re.sub(r"\\(.)", r"\1", text)
    fields = text.strip(" \t").split(None, len(names) - 1) if names != ["REPLY"] else [text]
    for i, name in enumerate(names):
        value = fields[i] if i < len(fields) else ""
        sh.vars[name] = value.rstrip(" \t") if i == len(names) - 1 and names != ["REPLY"] else value
    return 1 if eof else 0
