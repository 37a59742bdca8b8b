"""File tools: ls, rm, mkdir, chmod, cp, mv, touch, stat, checksums."""

from __future__ import annotations

import errno as errno_mod
import hashlib
import os
import posixpath
import re
import stat as statmod
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from perflab.emulator.fs import SHELL_UID, FsError
from perflab.emulator.shell.errors import Unsupported
from perflab.emulator.shell.registry import COMMANDS, Cmd, command, each_or_fail, err, fs_msg
from perflab.emulator.shell.streams import IO

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell


def _make_hash(algo: str) -> Cmd:
    def run(sh: Shell, args: list[str], io: IO) -> int:
        status = 0
        files = [a for a in args if not a.startswith("-")] or ["-"]
        for f in files:
            try:
                data = io.stdin() if f == "-" else sh.rt.fs.read_bytes(sh.path(f), sh.uid)
            except FsError as exc:
                err(io, f"{algo}sum: {f}: {os.strerror(exc.errno_)}")
                status = 1
                continue
            io.out(f"{hashlib.new(algo, data).hexdigest()}  {f}\n".encode())
        return status
    return run


for _algo in ("sha256", "md5", "sha1"):
    COMMANDS[f"{_algo}sum"] = _make_hash(_algo)


@command("ls")
def _ls(sh: Shell, args: list[str], io: IO) -> int:
    flags = "".join(a[1:] for a in args if a.startswith("-") and len(a) > 1)
    paths = [a for a in args if not (a.startswith("-") and len(a) > 1)] or ["."]
    status = 0
    fs = sh.rt.fs
    multi = len(paths) > 1
    for idx, p in enumerate(paths):
        full = sh.path(p)
        st = fs.stat(full)
        if st is None:
            err(io, f"ls: {p}: No such file or directory")
            status = 1
            continue
        if statmod.S_ISDIR(st.mode) and "d" not in flags:
            try:
                names = fs.listdir(full)
            except FsError as exc:
                err(io, f"ls: {p}: {os.strerror(exc.errno_)}")
                status = 1
                continue
            if "a" in flags:
                names = [".", "..", *names]
            if multi:
                io.out(f"{'' if idx == 0 else chr(10)}{p}:\n".encode())
            for nm in names:
                io.out((_ls_line(sh, posixpath.join(full, nm), nm, flags) + "\n").encode())
        else:
            io.out((_ls_line(sh, full, p, flags) + "\n").encode())
    return status


def _ls_line(sh: Shell, full: str, shown: str, flags: str) -> str:
    if "l" not in flags:
        return shown
    st = sh.rt.fs.stat(full) or sh.rt.fs.stat(posixpath.dirname(full))
    if st is None:
        return shown
    owner = "shell" if st.uid == SHELL_UID else "root"
    mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.mtime_s))
    return f"{statmod.filemode(st.mode)} {st.nlink} {owner} {owner} {st.size:8d} {mtime} {shown}"


@command("rm")
def _rm(sh: Shell, args: list[str], io: IO) -> int:
    flags = "".join(a[1:] for a in args if a.startswith("-") and len(a) > 1)
    files = [a for a in args if not (a.startswith("-") and len(a) > 1)]
    status = 0
    for f in files:
        try:
            sh.rt.fs.remove(sh.path(f), sh.uid, recursive="r" in flags or "R" in flags)
        except FsError as exc:
            if exc.errno_ == errno_mod.ENOENT and "f" in flags:
                continue
            err(io, f"rm: {f}: {os.strerror(exc.errno_)}" if exc.errno_ != errno_mod.EISDIR
                 else f"rm: {f}: is a directory")
            status = 1
    return status


@command("mkdir")
def _mkdir(sh: Shell, args: list[str], io: IO) -> int:
    parents = "-p" in args
    status = 0
    for d in [a for a in args if a != "-p"]:
        try:
            sh.rt.fs.mkdir(sh.path(d), sh.uid, parents=parents)
        except FsError as exc:
            err(io, f"mkdir: '{d}': {os.strerror(exc.errno_)}")
            status = 1
    return status


def _each_path(sh: Shell, io: IO, tool: str, names: list[str], op: Callable[[str], None]) -> int:
    """toybox's loop over operands: ``op`` on each path, an error line for each that fails
    (status 1), the others still done. No operand, or an option this emulator lacks, first."""
    if not names:
        err(io, f"{tool}: Needs 1 argument")
        return 1
    if any(a.startswith("-") for a in names):
        raise Unsupported(f"{tool} " + " ".join(names))
    return each_or_fail(io, names, lambda name: op(sh.path(name)),
                        lambda name, exc: f"{tool}: {name}: {os.strerror(exc.errno_)}")


@command("rmdir")
def _rmdir(sh: Shell, args: list[str], io: IO) -> int:
    """toybox rmdir: empty directories (an ftrace instance under tracefs, as root)."""
    return _each_path(sh, io, "rmdir", args, lambda path: sh.rt.fs.rmdir(path, sh.uid))


@command("mkfifo")
def _mkfifo(sh: Shell, args: list[str], io: IO) -> int:
    mode = 0o666
    if args[:1] == ["-m"] and len(args) >= 2:
        try:
            mode = int(args[1], 8)
        except ValueError:
            err(io, f"mkfifo: bad mode '{args[1]}'")
            return 1
        args = args[2:]
    return _each_path(sh, io, "mkfifo", args, lambda path: sh.rt.fs.mkfifo(path, sh.uid, mode))


@command("chmod")
def _chmod(sh: Shell, args: list[str], io: IO) -> int:
    args = [a for a in args if a not in ("-R",)]
    if len(args) < 2:
        err(io, "chmod: Needs 2 arguments")
        return 1
    spec, files = args[0], args[1:]
    status = 0
    for f in files:
        path = sh.path(f)
        st = sh.rt.fs.stat(path)
        if st is None:
            err(io, f"chmod: {f}: No such file or directory")
            status = 1
            continue
        try:
            mode = _parse_mode(spec, st.mode & 0o7777)
        except ValueError:
            err(io, f"chmod: bad mode '{spec}'")
            return 1
        try:
            sh.rt.fs.chmod(path, mode, sh.uid)
        except FsError as exc:
            err(io, f"chmod: {f}: {os.strerror(exc.errno_)}")
            status = 1
    return status


def _parse_mode(spec: str, current: int) -> int:
    if re.fullmatch(r"[0-7]{1,4}", spec):
        return int(spec, 8)
    mode = current
    for clause in spec.split(","):
        m = re.fullmatch(r"([ugoa]*)([-+=])([rwx]*)", clause)
        if not m:
            raise ValueError(spec)
        who = m.group(1) or "a"
        bits = 0
        for perm, val in (("r", 4), ("w", 2), ("x", 1)):
            if perm in m.group(3):
                for w, shift in (("u", 6), ("g", 3), ("o", 0)):
                    if w in who or "a" in who:
                        bits |= val << shift
        if m.group(2) == "+":
            mode |= bits
        elif m.group(2) == "-":
            mode &= ~bits
        else:
            mode = bits
    return mode


@command("cp")
def _cp(sh: Shell, args: list[str], io: IO) -> int:
    files = [a for a in args if not a.startswith("-")]
    if len(files) < 2:
        err(io, "cp: Needs 2 arguments")
        return 1
    dst = sh.path(files[-1])

    def copy(src: str) -> None:
        target = posixpath.join(dst, posixpath.basename(src)) if sh.rt.fs.is_dir(dst) else dst
        data = sh.rt.fs.read_bytes(sh.path(src), sh.uid)
        sh.rt.fs.write_bytes(target, data, sh.uid)
        st = sh.rt.fs.stat(sh.path(src))
        if st is not None and sh.rt.fs.vnode(sh.path(src)) is None:
            sh.rt.fs.chmod(target, st.mode & 0o777, sh.uid)

    return each_or_fail(io, files[:-1], copy, lambda src, exc: f"cp: {fs_msg(exc)}")


@command("mv")
def _mv(sh: Shell, args: list[str], io: IO) -> int:
    files = [a for a in args if not a.startswith("-")]
    if len(files) != 2:
        err(io, "mv: Needs 2 arguments")
        return 1
    try:
        sh.rt.fs.rename(sh.path(files[0]), sh.path(files[1]), sh.uid)
    except FsError as exc:
        err(io, f"mv: {fs_msg(exc)}")
        return 1
    return 0


@command("touch")
def _touch(sh: Shell, args: list[str], io: IO) -> int:
    status = 0
    for f in [a for a in args if not a.startswith("-")]:
        path = sh.path(f)
        try:
            if sh.rt.fs.exists(path):
                if sh.rt.fs.vnode(path) is None and sh.rt.fs.writable_by(path, sh.uid):
                    os.utime(sh.rt.fs.host_path(path))
            else:
                sh.rt.fs.write_bytes(path, b"", sh.uid)
        except FsError as exc:
            err(io, f"touch: '{f}': {os.strerror(exc.errno_)}")
            status = 1
    return status


@command("stat")
def _stat(sh: Shell, args: list[str], io: IO) -> int:
    fmt = None
    files: list[str] = []
    it = iter(args)
    for a in it:
        if a in ("-c", "--format"):
            fmt = next(it, "")
        elif a.startswith("-c") and len(a) > 2:
            fmt = a[2:]
        else:
            files.append(a)
    status = 0
    for f in files:
        st = sh.rt.fs.stat(sh.path(f))
        if st is None:
            err(io, f"stat: '{f}': No such file or directory")
            status = 1
            continue
        if fmt is None:
            io.out(f"  File: {f}\n  Size: {st.size}\n Access: ({st.mode & 0o7777:04o}/"
                   f"{statmod.filemode(st.mode)})\n".encode())
            continue
        values = {"s": str(st.size), "n": f, "a": f"{st.mode & 0o7777:o}", "A": statmod.filemode(st.mode),
                  "Y": str(st.mtime_s), "f": f"{st.mode:x}", "u": str(st.uid), "U": "shell" if st.uid else "root",
                  "F": "directory" if statmod.S_ISDIR(st.mode) else "regular file", "%": "%"}
        io.out((re.sub(r"%(.)", lambda m: values.get(m.group(1), "?"), fmt) + "\n").encode())  # noqa: B023
    return status
