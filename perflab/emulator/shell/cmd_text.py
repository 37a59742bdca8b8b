"""Text tools: echo, printf, cat, tee, head, tail, grep, wc."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from perflab.emulator.fs import FsError
from perflab.emulator.shell.errors import Unsupported
from perflab.emulator.shell.registry import command, each_or_fail, err
from perflab.emulator.shell.streams import IO

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell


@command("echo")
def _echo(sh: Shell, args: list[str], io: IO) -> int:
    newline = True
    escapes = False
    while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
        flag = args.pop(0)
        newline = newline and "n" not in flag
        escapes = "e" in flag or (escapes and flag != "-E")
    text = " ".join(args)
    if escapes:
        text = _backslash_escapes(text)
    io.out((text + ("\n" if newline else "")).encode())
    return 0


def _backslash_escapes(text: str) -> str:
    table = {"n": "\n", "t": "\t", "\\": "\\", "r": "\r", "a": "\a", "0": "\0", "e": "\x1b"}
    return re.sub(r"\\(.)", lambda m: table.get(m.group(1), "\\" + m.group(1)), text)


@command("printf")
def _printf(sh: Shell, args: list[str], io: IO) -> int:
    if not args:
        err(io, "printf: Need 1 argument")
        return 1
    fmt = _backslash_escapes(args[0])
    rest = args[1:]
    spec = re.compile(r"%([-+ 0#]*\d*(?:\.\d+)?)([sdifxXoc%])")
    out: list[str] = []
    while True:
        used = 0

        def conv(m: re.Match[str]) -> str:
            nonlocal used
            flags, kind = m.group(1), m.group(2)
            if kind == "%":
                return "%"
            arg = rest[used] if used < len(rest) else ""  # noqa: B023 - called right away
            used += 1
            try:
                if kind in "di":
                    return ("%" + flags + "d") % int(arg or "0")
                if kind in "xXoc":
                    return ("%" + flags + kind) % (int(arg or "0") if kind != "c" else (arg[:1] or ""))
                if kind == "f":
                    return ("%" + flags + "f") % float(arg or "0")
            except ValueError:
                return "0"
            return ("%" + flags + "s") % arg

        out.append(spec.sub(conv, fmt))
        rest = rest[used:]
        if not rest or used == 0:
            break
    io.out("".join(out).encode())
    return 0


@command("cat")
def _cat(sh: Shell, args: list[str], io: IO) -> int:
    files = [a for a in args if a != "-u"] or ["-"]

    def show(f: str) -> None:
        io.out(io.stdin() if f == "-" else sh.rt.fs.read_bytes(sh.path(f), sh.uid))

    return each_or_fail(io, files, show, lambda f, exc: f"cat: {f}: {os.strerror(exc.errno_)}")


@command("tee")
def _tee(sh: Shell, args: list[str], io: IO) -> int:
    append = "-a" in args
    files = [a for a in args if a != "-a"]
    data = io.stdin()
    status = 0
    for f in files:
        try:
            sh.rt.fs.write_bytes(sh.path(f), data, sh.uid, append=append)
        except FsError as exc:
            err(io, f"tee: {f}: {os.strerror(exc.errno_)}")
            status = 1
        except ValueError:
            err(io, f"tee: {f}: Invalid argument")
            status = 1
    io.out(data)
    return status


def _text_lines(sh: Shell, args: list[str], io: IO) -> tuple[list[bytes], int]:
    status = 0
    if not args:
        data = io.stdin()
    else:
        chunks = []
        for f in args:
            try:
                chunks.append(sh.rt.fs.read_bytes(sh.path(f), sh.uid))
            except FsError as exc:
                err(io, f"{f}: {os.strerror(exc.errno_)}")
                status = 1
        data = b"".join(chunks)
    return data.splitlines(keepends=True), status


def _count_opt(args: list[str], default: int) -> tuple[int, list[str]]:
    n = default
    rest = []
    it = iter(args)
    for a in it:
        if a == "-n":
            n = int(next(it, str(default)))
        elif re.fullmatch(r"-n?\d+", a):
            n = int(a.lstrip("-n"))
        else:
            rest.append(a)
    return n, rest


@command("head")
def _head(sh: Shell, args: list[str], io: IO) -> int:
    n, files = _count_opt(args, 10)
    lines, status = _text_lines(sh, files, io)
    io.out(b"".join(lines[:n]))
    return status


@command("tail")
def _tail(sh: Shell, args: list[str], io: IO) -> int:
    n, files = _count_opt(args, 10)
    lines, status = _text_lines(sh, files, io)
    io.out(b"".join(lines[-n:] if n else []))
    return status


@command("grep", "egrep")
def _grep(sh: Shell, args: list[str], io: IO) -> int:
    flags: set[str] = set()
    rest: list[str] = []
    for a in args:
        if a.startswith("-") and len(a) > 1 and not rest:
            bad = set(a[1:]) - set("EFivcqs")
            if bad:
                raise Unsupported(f"grep -{''.join(sorted(bad))}")
            flags.update(a[1:])
        else:
            rest.append(a)
    if not rest:
        err(io, "grep: no pattern")
        return 2
    pattern, files = rest[0], rest[1:]
    if "F" in flags:
        pattern = re.escape(pattern)
    elif "E" not in flags:
        pattern = pattern.replace(r"\|", "|").replace(r"\(", "(").replace(r"\)", ")")
    try:
        rx = re.compile(pattern.encode(), re.IGNORECASE if "i" in flags else 0)
    except re.error:
        err(io, f"grep: bad regex '{rest[0]}'")
        return 2
    lines, status = _text_lines(sh, files, io)
    hits = [ln for ln in lines if bool(rx.search(ln)) != ("v" in flags)]
    if "q" not in flags:
        if "c" in flags:
            io.out(f"{len(hits)}\n".encode())
        else:
            io.out(b"".join(h if h.endswith(b"\n") else h + b"\n" for h in hits))
    if status:
        return 2
    return 0 if hits else 1


@command("wc")
def _wc(sh: Shell, args: list[str], io: IO) -> int:
    opts = [a for a in args if a.startswith("-")]
    files = [a for a in args if not a.startswith("-")]
    what = "".join(o[1:] for o in opts) or "lwc"
    status = 0
    targets: list[tuple[str | None, bytes]] = []
    if not files:
        targets.append((None, io.stdin()))
    for f in files:
        try:
            targets.append((f, sh.rt.fs.read_bytes(sh.path(f), sh.uid)))
        except FsError as exc:
            err(io, f"wc: {f}: {os.strerror(exc.errno_)}")
            status = 1
    for name, data in targets:
        nums = []
        if "l" in what:
            nums.append(data.count(b"\n"))
        if "w" in what:
            nums.append(len(data.split()))
        if "c" in what:
            nums.append(len(data))
        text = " ".join(str(x) for x in nums) if len(nums) == 1 else " ".join(f"{x:7d}" for x in nums)
        io.out((text + (f" {name}" if name else "") + "\n").encode())
    return status
