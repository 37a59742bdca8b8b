"""Shell builtins: status, variables, directories, ``test``, ``sleep``."""

from __future__ import annotations

import math
import re
import signal
import stat as statmod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from perflab.emulator.fs import ROOT_UID
from perflab.emulator.shell.errors import SH, ExitShell, LoopControl, Unsupported
from perflab.emulator.shell.expand import check_ifs
from perflab.emulator.shell.parser import ASSIGN_RE
from perflab.emulator.shell.registry import command, err
from perflab.emulator.shell.streams import IO, Input, ReadInterrupted, TimedOut

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


@dataclass(frozen=True)
class ReadArgs:
    raw: bool
    names: tuple[str, ...]
    delim: bytes = b"\n"
    timeout_s: float | None = None
    fd: int = 0


def _read_line(inp: Input, args: ReadArgs) -> tuple[str, int]:
    """The next logical line up to the delimiter (backslash-newline joins lines unless raw) and
    read's status: 0, 1 when the end of input ended it, or mksh's timeout status with what had
    arrived. Raises ReadInterrupted from a FIFO."""
    text = ""
    delim = args.delim.decode("latin-1")
    while True:
        line = inp.until(args.delim, args.timeout_s)
        if line is None:
            return text, 1
        chunk = line.decode("utf-8", "replace")
        if isinstance(line, TimedOut):
            return text + chunk, _READ_TIMEOUT_STATUS
        eof = not chunk.endswith(delim)
        chunk = chunk.removesuffix(delim)
        if args.raw or not chunk.endswith("\\") or chunk.endswith("\\\\"):
            return text + chunk, 1 if eof else 0
        text += chunk[:-1]
        if eof:
            return text, 1


_READ_ARGS: dict[tuple[str, ...], ReadArgs] = {}  # parsed once per distinct argument list
_READ_TIMEOUT_STATUS = 128 + signal.SIGALRM  # mksh: as if SIGALRM had been caught


def _parse_read_args(args: list[str]) -> ReadArgs | str:
    """``read [-r] [-d x] [-t s] [-uN] name…`` (mksh's other options are refused); a bad name or
    option → its error."""
    raw, delim, timeout_s, fd = False, b"\n", None, 0
    names: list[str] = []
    it = iter(args)
    for a in it:
        if a == "-r":
            raw = True
        elif a.startswith("-u") and a[2:].isdigit():  # mksh: the number follows -u at once
            fd = int(a[2:])
        elif a in ("-d", "-t"):
            value = next(it, None)
            if value is None:
                return f"read: {a}: option requires an argument"
            if a == "-d":
                delim = value.encode()[:1] or b"\0"  # the first byte of x; NUL if empty
            else:
                try:
                    timeout_s = float(value)
                except ValueError:
                    return f"read: -t: {value}: bad number"
        elif a.startswith("-"):
            raise Unsupported(f"read {a}")
        elif not ASSIGN_RE.fullmatch(a + "="):
            return f"{SH}: read: {a}: invalid identifier"
        else:
            names.append(a)
    return ReadArgs(raw, tuple(names) or ("REPLY",), delim, timeout_s, fd)


def _ifs_fields(text: str, n: int) -> list[str]:
    """Split on IFS whitespace (the default IFS) into at most ``n`` fields; the last keeps its
    inner separators, without trailing ones (POSIX read)."""
    fields = _IFS_WS.split(text.strip(" \t\n"), maxsplit=n - 1) if n > 1 else [text.strip(" \t\n")]
    return [f for f in fields if f] if fields != [""] else []


_IFS_WS = re.compile(r"[ \t\n]+")


@command("read")
def _read(sh: Shell, args: list[str], io: IO) -> int:
    key = tuple(args)
    parsed = _READ_ARGS.get(key)
    if parsed is None:
        result = _parse_read_args(args)
        if isinstance(result, str):
            err(io, result)
            return 2
        parsed = result
        if len(_READ_ARGS) < 1024:
            _READ_ARGS[key] = parsed
    inp = io.input if parsed.fd == 0 else sh.fds.get(parsed.fd)
    if inp is None:
        err(io, f"{SH}: read: -u{parsed.fd}: bad file descriptor")
        return 2
    return read_input(sh, parsed, inp)


def read_input(sh: Shell, parsed: ReadArgs, inp: Input) -> int:
    """``read`` with its arguments parsed, from ``inp``: one line into the names; its status."""
    check_ifs(sh.cmd_env.get("IFS", sh.vars.get("IFS")))
    try:
        text, status = _read_line(inp, parsed)
    except ReadInterrupted as exc:
        text, status = "", 128 + exc.signo
    if not parsed.raw and "\\" in text:
        text = re.sub(r"\\(.)", r"\1", text)
    _assign_fields(sh, parsed.names, text)
    return status


def _assign_fields(sh: Shell, names: tuple[str, ...], text: str) -> None:
    """What ``read`` stores: the whole line in REPLY, or IFS fields, the last taking the rest."""
    if names == ("REPLY",):
        sh.vars["REPLY"] = text
        return
    fields = _ifs_fields(text, len(names))
    for i, name in enumerate(names):
        sh.vars[name] = fields[i] if i < len(fields) else ""


def read_args(args: tuple[str, ...]) -> ReadArgs | None:
    """``read``'s arguments parsed (once per distinct list), or None where the builtin itself must
    report or refuse them."""
    parsed = _READ_ARGS.get(args)
    if parsed is not None:
        return parsed
    try:
        result = _parse_read_args(list(args))
    except Unsupported:
        return None
    return None if isinstance(result, str) else result
