"""The interpreter: runs a parsed script against one phone's runtime, as one shell process."""

from __future__ import annotations

import errno as errno_mod
import os
import posixpath
import stat as statmod
import threading
from collections.abc import Callable

from perflab.emulator.fs import ROOT_UID, SHELL_UID, FsError, normalize
from perflab.emulator.runtime import PhoneRuntime
from perflab.emulator.shell import expand as expand_mod
from perflab.emulator.shell.errors import (
    SH,
    Cancelled,
    ExitShell,
    ShellError,
    ShellSyntaxError,
    Unsupported,
    WriteError,
)
from perflab.emulator.shell.lexer import Seg, Word
from perflab.emulator.shell.parser import AndOr, Command, For, If, Loop, Pipeline, Redir, Simple, parse
from perflab.emulator.shell.registry import COMMANDS, REFUSED
from perflab.emulator.shell.streams import IO, Writer

_PATH = "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin"


def _discard(data: bytes) -> None:
    del data


class Shell:
    """One shell session (one ``adb shell`` stream, or a nested ``sh -c``)."""

    def __init__(self, rt: PhoneRuntime, *, uid: int = SHELL_UID, cwd: str = "/",
                 cancel: threading.Event | None = None, variables: dict[str, str] | None = None) -> None:
        self.rt = rt
        self.uid = uid
        self.cwd = cwd
        self.vars: dict[str, str] = {"PATH": _PATH, "HOME": "/", "SHELL": SH,
                                     "USER": "root" if uid == ROOT_UID else "shell"}
        if variables:
            self.vars.update(variables)
        self.status = 0
        self.cancel = cancel or threading.Event()

    def child(self, *, uid: int | None = None, variables: dict[str, str] | None = None) -> Shell:
        """A new shell process started by this one (``sh -c``, ``su``, a script)."""
        return Shell(self.rt, uid=self.uid if uid is None else uid, cwd=self.cwd, cancel=self.cancel,
                     variables=variables)

    # ---------------------------------------------------------------- entry point
    def run(self, script: str, io: IO) -> int:
        try:
            tree = parse(script)
        except Unsupported as exc:
            io.err(f"{exc}\n".encode())
            self.status = 127
            return 127
        except ShellSyntaxError as exc:
            io.err(f"{SH}: {exc}\n".encode())
            self.status = 2
            return 2
        try:
            self.run_list(tree, io)
        except ExitShell as ex:
            self.status = ex.code
        except Unsupported as exc:
            io.err(f"{exc}\n".encode())
            self.status = 127
        except ShellError as exc:
            io.err(f"{SH}: {exc}\n".encode())
            self.status = exc.status
        except Cancelled:
            self.status = 130
        return self.status

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def run_list(self, items: list[AndOr], io: IO) -> int:
        for ao in items:
            self._run_andor(ao, io)
        return self.status

    def _run_andor(self, ao: AndOr, io: IO) -> int:
        for op, pl in ao.parts:
            if op == "&&" and self.status != 0:
                continue
            if op == "||" and self.status == 0:
                continue
            self._run_pipeline(pl, io)
        return self.status

    def _run_pipeline(self, pl: Pipeline, io: IO) -> int:
        self.check_cancel()
        stdin = io.stdin
        status = 0
        for idx, cmd in enumerate(pl.cmds):
            if idx == len(pl.cmds) - 1:
                status = self._run_command(cmd, IO(io.out, io.err, stdin))
            else:
                buf = bytearray()
                status = self._run_command(cmd, IO(buf.extend, io.err, stdin))
                stdin = _const(bytes(buf))
        if pl.negate:
            status = 0 if status != 0 else 1
        self.status = status
        return status

    def _run_command(self, cmd: Command, io: IO) -> int:
        self.check_cancel()
        if isinstance(cmd, Simple):
            return self._run_simple(cmd, io)
        io = self._apply_redirs(cmd.redirs, io) if cmd.redirs else io
        if isinstance(cmd, If):
            return self._run_if(cmd, io)
        if isinstance(cmd, Loop):
            return self._run_loop(cmd, io)
        return self._run_for(cmd, io)

    def _run_if(self, cmd: If, io: IO) -> int:
        for cond, body in cmd.branches:
            self.run_list(cond, io)
            if self.status == 0:
                return self.run_list(body, io)
        if cmd.orelse is not None:
            return self.run_list(cmd.orelse, io)
        self.status = 0
        return 0

    def _run_loop(self, cmd: Loop, io: IO) -> int:
        result = 0
        while True:
            self.check_cancel()
            self.run_list(cmd.cond, io)
            if (self.status == 0) == cmd.until:
                break
            result = self.run_list(cmd.body, io)
        self.status = result
        return result

    def _run_for(self, cmd: For, io: IO) -> int:
        result = 0
        for item in [s for w in cmd.items for s in self.expand(w)]:
            self.check_cancel()
            self.vars[cmd.var] = item
            result = self.run_list(cmd.body, io)
        self.status = result
        return result

    # ---------------------------------------------------------------- expansion
    def var(self, name: str) -> str:
        if name == "?":
            return str(self.status)
        if name == "$":
            return str(os.getpid() % 30000 + 1000)
        if name == "#":
            return "0"
        if name == "0":
            return "sh"
        if name.isdigit():
            return ""
        return self.vars.get(name, "")

    def expansion(self, seg: Seg) -> str:
        """The value of one expansion segment (a variable)."""
        return self.var(seg.text)

    def expand(self, word: Word) -> list[str]:
        return expand_mod.expand(self, word)

    def expand_one(self, word: Word) -> str:
        return " ".join(self.expand(word))

    def path(self, p: str) -> str:
        return normalize(p, self.cwd)

    # ---------------------------------------------------------------- simple commands
    def _run_simple(self, cmd: Simple, io: IO) -> int:
        argv = [f for w in cmd.words for f in self.expand(w)]
        env = {name: self.expand_one(w) for name, w in cmd.assigns}
        if not argv:
            self.vars.update(env)
            self.status = 0
        try:
            io2 = self._apply_redirs(cmd.redirs, io) if cmd.redirs else io
        except FsError as exc:
            io.err(f"{SH}: can't create {exc.path}: {os.strerror(exc.errno_)}\n".encode())
            self.status = 1
            return 1
        if not argv:
            return 0
        self.status = self.exec_argv(argv, io2, env)
        return self.status

    def _apply_redirs(self, redirs: list[Redir], io: IO) -> IO:
        fds: dict[int, Writer] = {1: io.out, 2: io.err}
        stdin = io.stdin
        for r in redirs:
            target = self.expand_one(r.target)
            if r.op == ">&":
                fds[r.fd] = self._dup_target(target, fds)
            elif r.op in (">", ">>"):
                fds[r.fd] = self._file_writer(self.path(target), truncate=r.op == ">")
            else:
                if r.fd != 0:
                    raise Unsupported(f"{r.fd}<")
                stdin = _const(self.rt.fs.read_bytes(self.path(target), self.uid))
        return IO(fds[1], fds[2], stdin)

    @staticmethod
    def _dup_target(target: str, fds: dict[int, Writer]) -> Writer:
        if target == "-":
            return _discard
        if target.isdigit() and int(target) in fds:
            return fds[int(target)]
        raise Unsupported(f">&{target}")

    def _file_writer(self, path: str, truncate: bool) -> Writer:
        if path == "/dev/null":
            return _discard
        node = self.rt.fs.vnode(path)
        if truncate and node is None:
            self.rt.fs.write_bytes(path, b"", self.uid)
        if node is not None and (node.write is None or self.uid != ROOT_UID):
            raise FsError(errno_mod.EACCES, path)

        def write(data: bytes) -> None:
            if not data:
                return
            try:
                self.rt.fs.write_bytes(path, data, self.uid, append=node is None)
            except ValueError:
                raise WriteError(path, errno_mod.EINVAL) from None
            except FsError as exc:
                raise WriteError(path, exc.errno_) from None

        return write

    def exec_argv(self, argv: list[str], io: IO, env: dict[str, str] | None = None) -> int:
        name = argv[0]
        try:
            if "/" in name:
                return self._exec_file(argv, io, env or {})
            fn = COMMANDS.get(name)
            if fn is None:
                if name in REFUSED:
                    raise Unsupported(name)
                io.err(f"{SH}: {name}: inaccessible or not found\n".encode())
                return 127
            return fn(self, argv[1:], io)
        except WriteError as exc:
            io.err(f"{name}: write error: {os.strerror(exc.errno_)}\n".encode())
            return 1

    def _exec_file(self, argv: list[str], io: IO, env: dict[str, str]) -> int:
        from perflab.emulator.shell.benchmark import run_benchmark_model

        path = self.path(argv[0])
        st = self.rt.fs.stat(path)
        if st is None:
            io.err(f"{SH}: {argv[0]}: inaccessible or not found\n".encode())
            return 127
        if statmod.S_ISDIR(st.mode) or not (st.mode & 0o111) or self.rt.fs.vnode(path) is not None:
            io.err(f"{SH}: {argv[0]}: can't execute: Permission denied\n".encode())
            return 126
        if posixpath.basename(path).startswith("benchmark_model"):
            return run_benchmark_model(self, path, argv[1:], io, env)
        data = self.rt.fs.read_bytes(path, self.uid)
        if data.startswith(b"\x7fELF"):
            raise Unsupported(f"native binary {argv[0]}")
        sub = self.child()
        return sub.run(data.decode("utf-8", "replace"), io)


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data
