"""A strict, restricted POSIX-sh interpreter for the emulated phone.

It supports what a measurement harness sends over ``adb shell`` and refuses the rest loudly
(``sh: <thing>: not supported by the emulated phone``, exit 127) instead of guessing:

* quoting like mksh ('single', "double" with ``$var``/``$?`` expansion, backslashes);
* ``;`` ``&&`` ``||`` ``!``, simple pipes, redirections (``>``, ``>>``, ``<``, ``2>&1``,
  ``2>/dev/null``, ``N>file``), ``VAR=value`` (alone or as a command prefix), globs on paths;
* ``if``/``while``/``until``/``for`` compound commands;
* a fixed set of commands (see ``_COMMANDS``) working on the sandboxed filesystem.

Command substitution (``$(...)``, backticks), arithmetic, here-documents, background jobs,
subshells and functions are refused — never executed. Quoted text (``'$(id)'``,
``"a;reboot"``) is always literal.
"""

from __future__ import annotations

import errno as errno_mod
import fnmatch
import hashlib
import os
import posixpath
import re
import signal
import stat as statmod
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from perflab.emulator import physics as ph
from perflab.emulator.fs import ROOT_UID, SHELL_UID, FsError, normalize
from perflab.emulator.runtime import PhoneRuntime
from perflab.errors import PerflabError

SH = "/system/bin/sh"
Writer = Callable[[bytes], None]


class ShellSyntaxError(PerflabError):
    pass


class Unsupported(PerflabError):
    """A construct the emulated phone refuses to run."""

    def __init__(self, thing: str) -> None:
        self.thing = thing
        super().__init__(f"sh: {thing}: not supported by the emulated phone")


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


# ============================================================================ lexer


@dataclass(frozen=True)
class Seg:
    kind: str  # "lit" (unquoted), "q" (quoted literal), "var" (unquoted $x), "qvar" (quoted $x)
    text: str


@dataclass
class Word:
    segs: list[Seg] = field(default_factory=list)

    def plain(self) -> str | None:
        """The text when the word is one unquoted literal (keywords, operators' targets)."""
        if len(self.segs) == 1 and self.segs[0].kind == "lit":
            return self.segs[0].text
        return None


@dataclass(frozen=True)
class Op:
    op: str
    fd: int | None = None


Token = Word | Op

_OPS2 = ("&&", "||", ">>", ">&", "<<", "<&", ";;", "&>", "<>", ">|")
_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokenize(src: str) -> list[Token]:
    toks: list[Token] = []
    cur: Word | None = None
    lit: list[str] = []
    i = 0
    n = len(src)

    def flush_lit(kind: str = "lit") -> None:
        nonlocal cur
        if lit:
            if cur is None:
                cur = Word()
            cur.segs.append(Seg(kind, "".join(lit)))
            lit.clear()

    def end_word() -> None:
        nonlocal cur
        flush_lit()
        if cur is not None:
            toks.append(cur)
            cur = None

    def start_word() -> Word:
        nonlocal cur
        if cur is None:
            cur = Word()
        return cur

    def read_var(j: int, quoted: bool) -> int:
        """src[j] == '$'; append a var segment or literal '$'; returns the next index."""
        kind = "qvar" if quoted else "var"
        if j + 1 >= n:
            lit.append("$")
            return j + 1
        c = src[j + 1]
        if c == "(":
            raise Unsupported("$(...)" if src[j + 2:j + 3] != "(" else "$((...))")
        if c == "{":
            end = src.find("}", j + 2)
            if end < 0:
                raise ShellSyntaxError("${: missing }")
            name = src[j + 2:end]
            if not (_VAR_RE.fullmatch(name) or name in ("?", "$", "#", "!") or name.isdigit()):
                raise Unsupported("${" + name + "}")
            flush_lit("q" if quoted else "lit")
            start_word().segs.append(Seg(kind, name))
            return end + 1
        if c in "?$#!0123456789@*":
            if c in "@*!":
                raise Unsupported("$" + c)
            flush_lit("q" if quoted else "lit")
            start_word().segs.append(Seg(kind, c))
            return j + 2
        m = _VAR_RE.match(src, j + 1)
        if m is None:
            lit.append("$")
            return j + 1
        flush_lit("q" if quoted else "lit")
        start_word().segs.append(Seg(kind, m.group(0)))
        return m.end()

    while i < n:
        c = src[i]
        if c in " \t":
            end_word()
            i += 1
        elif c == "\n":
            end_word()
            toks.append(Op(";"))
            i += 1
        elif c == "#" and cur is None and not lit:
            while i < n and src[i] != "\n":
                i += 1
        elif c == "'":
            flush_lit()
            end = src.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated quoted string")
            start_word().segs.append(Seg("q", src[i + 1:end]))
            i = end + 1
        elif c == '"':
            flush_lit()
            start_word()
            i += 1
            while True:
                if i >= n:
                    raise ShellSyntaxError("unterminated quoted string")
                d = src[i]
                if d == '"':
                    flush_lit("q")
                    if not (cur and cur.segs):
                        start_word().segs.append(Seg("q", ""))
                    elif cur.segs[-1].kind not in ("q", "qvar"):
                        cur.segs.append(Seg("q", ""))
                    i += 1
                    break
                if d == "\\" and i + 1 < n and src[i + 1] in '$`"\\\n':
                    if src[i + 1] != "\n":
                        lit.append(src[i + 1])
                    i += 2
                elif d == "$":
                    flush_lit("q")
                    i = read_var(i, quoted=True)
                    flush_lit("q")
                elif d == "`":
                    raise Unsupported("`...`")
                else:
                    lit.append(d)
                    i += 1
        elif c == "\\":
            if i + 1 < n:
                if src[i + 1] != "\n":
                    flush_lit()
                    start_word().segs.append(Seg("q", src[i + 1]))
                i += 2
            else:
                i += 1
        elif c == "$":
            i = read_var(i, quoted=False)
        elif c == "`":
            raise Unsupported("`...`")
        elif c in ";&|<>()":
            two = src[i:i + 2]
            fd: int | None = None
            if c in "<>" and cur is None and lit and "".join(lit).isdigit():
                fd = int("".join(lit))
                lit.clear()
            else:
                end_word()
            if two in _OPS2:
                if two in ("<<", "<&", ";;", "&>", "<>", ">|"):
                    raise Unsupported(two)
                toks.append(Op(two, fd))
                i += 2
            else:
                if c in "()":
                    raise Unsupported("subshell " + c)
                if c == "&":
                    raise Unsupported("background job &")
                toks.append(Op(c, fd))
                i += 1
        else:
            lit.append(c)
            i += 1
    end_word()
    return toks


# ============================================================================ parser


@dataclass
class Redir:
    op: str  # ">", ">>", "<", ">&"
    fd: int
    target: Word


@dataclass
class Simple:
    assigns: list[tuple[str, Word]]
    words: list[Word]
    redirs: list[Redir]


@dataclass
class If:
    branches: list[tuple[list[AndOr], list[AndOr]]]
    orelse: list[AndOr] | None


@dataclass
class Loop:
    cond: list[AndOr]
    body: list[AndOr]
    until: bool


@dataclass
class For:
    var: str
    items: list[Word]
    body: list[AndOr]


Command = Simple | If | Loop | For


@dataclass
class Pipeline:
    negate: bool
    cmds: list[Command]


@dataclass
class AndOr:
    parts: list[tuple[str | None, Pipeline]]


_RESERVED = {"if", "then", "elif", "else", "fi", "while", "until", "do", "done", "for", "in", "case",
             "esac", "function", "{", "}", "select"}
_ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)


class _Parser:
    def __init__(self, toks: list[Token]) -> None:
        self.t = toks
        self.i = 0

    def peek(self) -> Token | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def peek_kw(self) -> str | None:
        tok = self.peek()
        if isinstance(tok, Word):
            p = tok.plain()
            if p in _RESERVED or p == "!":
                return p
        return None

    def expect_kw(self, kw: str) -> None:
        if self.peek_kw() != kw:
            raise ShellSyntaxError(f"syntax error: expected '{kw}'")
        self.i += 1

    def skip_seps(self) -> None:
        while isinstance(self.peek(), Op) and self.peek() == Op(";"):
            self.i += 1

    def parse_list(self, stop: set[str]) -> list[AndOr]:
        out: list[AndOr] = []
        while True:
            self.skip_seps()
            tok = self.peek()
            if tok is None or self.peek_kw() in stop:
                return out
            out.append(self.parse_andor())
            tok = self.peek()
            if tok is None:
                return out
            if isinstance(tok, Op) and tok.op == ";":
                continue
            if self.peek_kw() in stop:
                return out
            raise ShellSyntaxError(f"syntax error: unexpected {_tok_text(tok)!r}")

    def parse_andor(self) -> AndOr:
        parts: list[tuple[str | None, Pipeline]] = [(None, self.parse_pipeline())]
        while isinstance(self.peek(), Op) and self.peek().op in ("&&", "||"):  # type: ignore[union-attr]
            op = self.t[self.i].op  # type: ignore[union-attr]
            self.i += 1
            while self.peek() == Op(";"):
                self.i += 1
            parts.append((op, self.parse_pipeline()))
        return AndOr(parts)

    def parse_pipeline(self) -> Pipeline:
        negate = False
        if self.peek_kw() == "!":
            negate = True
            self.i += 1
        cmds = [self.parse_command()]
        while self.peek() == Op("|"):
            self.i += 1
            cmds.append(self.parse_command())
        return Pipeline(negate, cmds)

    def parse_command(self) -> Command:
        kw = self.peek_kw()
        if kw == "if":
            self.i += 1
            branches = []
            cond = self.parse_list({"then"})
            self.expect_kw("then")
            body = self.parse_list({"elif", "else", "fi"})
            branches.append((cond, body))
            orelse = None
            while True:
                k = self.peek_kw()
                if k == "elif":
                    self.i += 1
                    cond = self.parse_list({"then"})
                    self.expect_kw("then")
                    branches.append((cond, self.parse_list({"elif", "else", "fi"})))
                elif k == "else":
                    self.i += 1
                    orelse = self.parse_list({"fi"})
                else:
                    self.expect_kw("fi")
                    return If(branches, orelse)
        if kw in ("while", "until"):
            self.i += 1
            cond = self.parse_list({"do"})
            self.expect_kw("do")
            body = self.parse_list({"done"})
            self.expect_kw("done")
            return Loop(cond, body, until=kw == "until")
        if kw == "for":
            self.i += 1
            tok = self.peek()
            name = tok.plain() if isinstance(tok, Word) else None
            if name is None or not _VAR_RE.fullmatch(name):
                raise ShellSyntaxError("for: bad variable name")
            self.i += 1
            items: list[Word] = []
            self.skip_seps()
            if self.peek_kw() == "in":
                self.i += 1
                while isinstance(self.peek(), Word) and self.peek_kw() != "do":
                    items.append(self.t[self.i])  # type: ignore[arg-type]
                    self.i += 1
            else:
                raise Unsupported("for without 'in'")
            self.skip_seps()
            self.expect_kw("do")
            body = self.parse_list({"done"})
            self.expect_kw("done")
            return For(name, items, body)
        if kw is not None and kw not in ("!",):
            if kw in ("case", "esac", "function", "select", "{", "}"):
                raise Unsupported(kw)
            raise ShellSyntaxError(f"syntax error: unexpected '{kw}'")
        assigns: list[tuple[str, Word]] = []
        words: list[Word] = []
        redirs: list[Redir] = []
        while True:
            tok = self.peek()
            if tok is None:
                break
            if isinstance(tok, Op):
                if tok.op in (">", ">>", "<", ">&"):
                    self.i += 1
                    target = self.peek()
                    if not isinstance(target, Word):
                        raise ShellSyntaxError(f"syntax error: '{tok.op}' unexpected")
                    self.i += 1
                    fd = tok.fd if tok.fd is not None else (0 if tok.op == "<" else 1)
                    redirs.append(Redir(tok.op, fd, target))
                    continue
                break
            if not words and tok.segs and tok.segs[0].kind == "lit":
                m = _ASSIGN_RE.fullmatch(tok.segs[0].text)
                if m:
                    value = Word([Seg("q", m.group(2))] + tok.segs[1:]) if m.group(2) else Word(tok.segs[1:])
                    assigns.append((m.group(1), value))
                    self.i += 1
                    continue
            if words and tok.plain() in ("then", "do", "done", "fi", "elif", "else"):
                break
            words.append(tok)
            self.i += 1
        if not words and not assigns and not redirs:
            tok = self.peek()
            raise ShellSyntaxError(f"syntax error: unexpected {_tok_text(tok)!r}" if tok else "syntax error")
        return Simple(assigns, words, redirs)


def _tok_text(tok: Token | None) -> str:
    if tok is None:
        return "end of input"
    if isinstance(tok, Op):
        return tok.op
    return "".join(s.text for s in tok.segs)


def parse(src: str) -> list[AndOr]:
    p = _Parser(tokenize(src))
    out = p.parse_list(set())
    if p.peek() is not None:
        raise ShellSyntaxError(f"syntax error: unexpected {_tok_text(p.peek())!r}")
    return out


# ============================================================================ executor


@dataclass
class IO:
    out: Writer
    err: Writer
    stdin: Callable[[], bytes]


class Cancelled(Exception):
    pass


class Shell:
    """One shell session (one ``adb shell`` stream, or a nested ``sh -c``)."""

    def __init__(self, rt: PhoneRuntime, *, uid: int = SHELL_UID, cwd: str = "/",
                 cancel: threading.Event | None = None, variables: dict[str, str] | None = None) -> None:
        self.rt = rt
        self.uid = uid
        self.cwd = cwd
        self.vars: dict[str, str] = {"PATH": "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin",
                                     "HOME": "/", "SHELL": SH, "USER": "root" if uid == 0 else "shell"}
        if variables:
            self.vars.update(variables)
        self.status = 0
        self.cancel = cancel or threading.Event()

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
            self._run_list(tree, io)
        except _Exit as ex:
            self.status = ex.code
        except Unsupported as exc:
            io.err(f"{exc}\n".encode())
            self.status = 127
        except Cancelled:
            self.status = 130
        return self.status

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def _run_list(self, items: list[AndOr], io: IO) -> int:
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
        self._check_cancel()
        stdin = io.stdin
        status = 0
        for idx, cmd in enumerate(pl.cmds):
            last = idx == len(pl.cmds) - 1
            if last:
                status = self._run_command(cmd, IO(io.out, io.err, stdin))
            else:
                buf = bytearray()
                status = self._run_command(cmd, IO(buf.extend, io.err, stdin))
                data = bytes(buf)
                stdin = (lambda d=data: d)  # type: ignore[misc]
        if pl.negate:
            status = 0 if status != 0 else 1
        self.status = status
        return status

    def _run_command(self, cmd: Command, io: IO) -> int:
        self._check_cancel()
        if isinstance(cmd, Simple):
            return self._run_simple(cmd, io)
        if isinstance(cmd, If):
            for cond, body in cmd.branches:
                self._run_list(cond, io)
                if self.status == 0:
                    return self._run_list(body, io)
            if cmd.orelse is not None:
                return self._run_list(cmd.orelse, io)
            self.status = 0
            return 0
        if isinstance(cmd, Loop):
            result = 0
            while True:
                self._check_cancel()
                self._run_list(cmd.cond, io)
                if (self.status == 0) == cmd.until:
                    break
                result = self._run_list(cmd.body, io)
            self.status = result
            return result
        result = 0
        for item in [s for w in cmd.items for s in self.expand(w)]:
            self._check_cancel()
            self.vars[cmd.var] = item
            result = self._run_list(cmd.body, io)
        self.status = result
        return result

    # ---------------------------------------------------------------- expansion
    def _var(self, name: str) -> str:
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

    def expand(self, word: Word) -> list[str]:
        """Expand a word into fields: variables, field splitting of unquoted expansions, globs."""
        chars: list[tuple[str, bool, bool]] = []  # (char, splittable, globbable)
        for seg in word.segs:
            if seg.kind == "lit":
                chars += [(c, False, True) for c in seg.text]
            elif seg.kind == "q":
                chars += [(c, False, False) for c in seg.text]
            elif seg.kind == "var":
                chars += [(c, True, False) for c in self._var(seg.text)]
            else:
                chars += [(c, False, False) for c in self._var(seg.text)]
        fields: list[list[tuple[str, bool, bool]]] = [[]]
        had_quoted = any(s.kind in ("q", "qvar") for s in word.segs)
        for ch in chars:
            if ch[1] and ch[0] in " \t\n":
                if fields[-1]:
                    fields.append([])
                continue
            fields[-1].append(ch)
        result: list[str] = []
        for f in fields:
            if not f:
                continue
            text = "".join(c for c, _, _ in f)
            if any(g and c in "*?[" for c, _, g in f):
                matches = self._glob(text)
                result.extend(matches if matches else [text])
            else:
                result.append(text)
        if not result and had_quoted and not any(s.kind == "var" for s in word.segs) or not result and had_quoted:
            result.append("")
        return result

    def expand_one(self, word: Word) -> str:
        fields = self.expand(word)
        return " ".join(fields)

    def _glob(self, pattern: str) -> list[str]:
        absolute = pattern.startswith("/")
        parts = [p for p in pattern.split("/") if p]
        bases = ["/" if absolute else self.cwd]
        for part in parts:
            new: list[str] = []
            for base in bases:
                if any(c in part for c in "*?["):
                    try:
                        names = self.rt.fs.listdir(base)
                    except FsError:
                        continue
                    for nm in names:
                        if fnmatch.fnmatchcase(nm, part) and (part.startswith(".") or not nm.startswith(".")):
                            new.append(posixpath.join(base, nm))
                else:
                    cand = posixpath.join(base, part)
                    if self.rt.fs.exists(cand):
                        new.append(cand)
            bases = new
        if not absolute:
            prefix = self.cwd.rstrip("/") + "/"
            bases = [b.removeprefix(prefix) for b in bases]
        return sorted(bases)

    # ---------------------------------------------------------------- simple commands
    def path(self, p: str) -> str:
        return normalize(p, self.cwd)

    def _run_simple(self, cmd: Simple, io: IO) -> int:
        argv = [f for w in cmd.words for f in self.expand(w)]
        env = {name: self.expand_one(w) for name, w in cmd.assigns}
        if not argv:
            self.vars.update(env)
            self.status = 0
            if not cmd.redirs:
                return 0
        try:
            io2, closers = self._apply_redirs(cmd.redirs, io)
        except FsError as exc:
            io.err(f"{SH}: can't create {exc.path}: {os.strerror(exc.errno_)}\n".encode())
            self.status = 1
            return 1
        if not argv:
            return 0
        try:
            status = self.exec_argv(argv, io2, env)
        finally:
            for c in closers:
                c()
        self.status = status
        return status

    def _apply_redirs(self, redirs: list[Redir], io: IO) -> tuple[IO, list[Callable[[], None]]]:
        fds: dict[int, Writer] = {1: io.out, 2: io.err}
        stdin = io.stdin
        for r in redirs:
            target = self.expand_one(r.target)
            if r.op == ">&":
                if target == "-":
                    fds[r.fd] = lambda b: None
                elif target.isdigit() and int(target) in fds:
                    fds[r.fd] = fds[int(target)]
                else:
                    raise Unsupported(f">&{target}")
            elif r.op in (">", ">>"):
                path = self.path(target)
                if path == "/dev/null":
                    fds[r.fd] = lambda b: None
                    continue
                if r.op == ">":
                    self.rt.fs.write_bytes(path, b"", self.uid) if self.rt.fs.vnode(path) is None else None
                fds[r.fd] = self._file_writer(path, truncated_vnode=r.op == ">")
            else:
                if r.fd != 0:
                    raise Unsupported(f"{r.fd}<")
                data = self.rt.fs.read_bytes(self.path(target), self.uid)
                stdin = (lambda d=data: d)  # type: ignore[misc]
        return IO(fds[1], fds[2], stdin), []

    def _file_writer(self, path: str, truncated_vnode: bool) -> Writer:
        node = self.rt.fs.vnode(path)
        if node is not None and (node.write is None or self.uid != ROOT_UID):
            raise FsError(errno_mod.EACCES, path)

        def write(data: bytes) -> None:
            if not data:
                return
            try:
                self.rt.fs.write_bytes(path, data, self.uid, append=node is None)
            except ValueError:
                raise _WriteError(path, errno_mod.EINVAL) from None
            except FsError as exc:
                raise _WriteError(path, exc.errno_) from None

        del truncated_vnode
        return write

    def exec_argv(self, argv: list[str], io: IO, env: dict[str, str] | None = None) -> int:
        name = argv[0]
        try:
            if "/" in name:
                return self._exec_file(argv, io, env or {})
            fn = _COMMANDS.get(name)
            if fn is None:
                if name in _REFUSED:
                    raise Unsupported(name)
                io.err(f"{SH}: {name}: inaccessible or not found\n".encode())
                return 127
            return fn(self, argv[1:], io)
        except _WriteError as exc:
            io.err(f"{name}: write error: {os.strerror(exc.errno_)}\n".encode())
            return 1

    def _exec_file(self, argv: list[str], io: IO, env: dict[str, str]) -> int:
        path = self.path(argv[0])
        st = self.rt.fs.stat(path)
        if st is None:
            io.err(f"{SH}: {argv[0]}: inaccessible or not found\n".encode())
            return 127
        if statmod.S_ISDIR(st.mode) or not (st.mode & 0o111) or self.rt.fs.vnode(path) is not None:
            io.err(f"{SH}: {argv[0]}: can't execute: Permission denied\n".encode())
            return 126
        base = posixpath.basename(path)
        if base.startswith("benchmark_model"):
            return run_benchmark_model(self, path, argv[1:], io, env)
        data = self.rt.fs.read_bytes(path, self.uid)
        if data.startswith(b"\x7fELF"):
            raise Unsupported(f"native binary {argv[0]}")
        sub = Shell(self.rt, uid=self.uid, cwd=self.cwd, cancel=self.cancel)
        return sub.run(data.decode("utf-8", "replace"), io)


class _WriteError(Exception):
    def __init__(self, path: str, errno_: int) -> None:
        self.path = path
        self.errno_ = errno_


# ============================================================================ commands

_Cmd = Callable[[Shell, list[str], IO], int]
_COMMANDS: dict[str, _Cmd] = {}
_REFUSED = {"logcat", "am", "pm", "top", "atrace", "perfetto", "simpleperf", "dmesg", "mount", "find", "sed",
            "awk", "xargs", "eval", "exec", "source", ".", "trap", "wait", "nohup", "timeout", "nice",
            "taskset", "dd", "base64", "tar", "ln", "screencap", "screenrecord", "monkey", "wm",
            "service", "toybox", "busybox", "setenforce", "reboot-bootloader", "printenv", "env"}


def command(*names: str) -> Callable[[_Cmd], _Cmd]:
    def deco(fn: _Cmd) -> _Cmd:
        for n in names:
            _COMMANDS[n] = fn
        return fn
    return deco


def _err(io: IO, msg: str) -> None:
    io.err((msg + "\n").encode())


def _fs_msg(exc: FsError) -> str:
    return f"{exc.path}: {os.strerror(exc.errno_)}"


@command("true", ":")
def _true(sh: Shell, args: list[str], io: IO) -> int:
    return 0


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
            _err(io, f"{SH}: exit: {args[0]}: bad number")
            code = 2
    raise _Exit(code)


@command("cd")
def _cd(sh: Shell, args: list[str], io: IO) -> int:
    target = sh.path(args[0]) if args else "/"
    if not sh.rt.fs.is_dir(target):
        _err(io, f"{SH}: cd: {args[0] if args else '/'}: No such file or directory")
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
        m = _ASSIGN_RE.fullmatch(a)
        if m:
            sh.vars[m.group(1)] = m.group(2)
    return 0


@command("unset")
def _unset(sh: Shell, args: list[str], io: IO) -> int:
    for a in args:
        sh.vars.pop(a, None)
    return 0


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
        _err(io, "printf: Need 1 argument")
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
    status = 0
    for f in files:
        if f == "-":
            io.out(io.stdin())
            continue
        try:
            io.out(sh.rt.fs.read_bytes(sh.path(f), sh.uid))
        except FsError as exc:
            _err(io, f"cat: {f}: {os.strerror(exc.errno_)}")
            status = 1
    return status


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
            _err(io, f"tee: {f}: {os.strerror(exc.errno_)}")
            status = 1
        except ValueError:
            _err(io, f"tee: {f}: Invalid argument")
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
                _err(io, f"{f}: {os.strerror(exc.errno_)}")
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
        _err(io, "grep: no pattern")
        return 2
    pattern, files = rest[0], rest[1:]
    if "F" in flags:
        pattern = re.escape(pattern)
    elif "E" not in flags:
        pattern = pattern.replace(r"\|", "|").replace(r"\(", "(").replace(r"\)", ")")
    try:
        rx = re.compile(pattern.encode(), re.IGNORECASE if "i" in flags else 0)
    except re.error:
        _err(io, f"grep: bad regex '{rest[0]}'")
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
            _err(io, f"wc: {f}: {os.strerror(exc.errno_)}")
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


def _make_hash(algo: str) -> _Cmd:
    def run(sh: Shell, args: list[str], io: IO) -> int:
        status = 0
        files = [a for a in args if not a.startswith("-")] or ["-"]
        for f in files:
            try:
                data = io.stdin() if f == "-" else sh.rt.fs.read_bytes(sh.path(f), sh.uid)
            except FsError as exc:
                _err(io, f"{algo}sum: {f}: {os.strerror(exc.errno_)}")
                status = 1
                continue
            io.out(f"{hashlib.new(algo, data).hexdigest()}  {f}\n".encode())
        return status
    return run


for _algo in ("sha256", "md5", "sha1"):
    _COMMANDS[f"{_algo}sum"] = _make_hash(_algo)


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
            _err(io, f"ls: {p}: No such file or directory")
            status = 1
            continue
        if statmod.S_ISDIR(st.mode) and "d" not in flags:
            try:
                names = fs.listdir(full)
            except FsError as exc:
                _err(io, f"ls: {p}: {os.strerror(exc.errno_)}")
                status = 1
                continue
            if "a" in flags:
                names = [".", ".."] + names
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
            _err(io, f"rm: {f}: {os.strerror(exc.errno_)}" if exc.errno_ != errno_mod.EISDIR
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
            _err(io, f"mkdir: '{d}': {os.strerror(exc.errno_)}")
            status = 1
    return status


@command("chmod")
def _chmod(sh: Shell, args: list[str], io: IO) -> int:
    args = [a for a in args if a not in ("-R",)]
    if len(args) < 2:
        _err(io, "chmod: Needs 2 arguments")
        return 1
    spec, files = args[0], args[1:]
    status = 0
    for f in files:
        path = sh.path(f)
        st = sh.rt.fs.stat(path)
        if st is None:
            _err(io, f"chmod: {f}: No such file or directory")
            status = 1
            continue
        try:
            mode = _parse_mode(spec, st.mode & 0o7777)
        except ValueError:
            _err(io, f"chmod: bad mode '{spec}'")
            return 1
        try:
            sh.rt.fs.chmod(path, mode, sh.uid)
        except FsError as exc:
            _err(io, f"chmod: {f}: {os.strerror(exc.errno_)}")
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
        _err(io, "cp: Needs 2 arguments")
        return 1
    dst = sh.path(files[-1])
    status = 0
    for src in files[:-1]:
        target = posixpath.join(dst, posixpath.basename(src)) if sh.rt.fs.is_dir(dst) else dst
        try:
            data = sh.rt.fs.read_bytes(sh.path(src), sh.uid)
            sh.rt.fs.write_bytes(target, data, sh.uid)
            st = sh.rt.fs.stat(sh.path(src))
            if st is not None and sh.rt.fs.vnode(sh.path(src)) is None:
                sh.rt.fs.chmod(target, st.mode & 0o777, sh.uid)
        except FsError as exc:
            _err(io, f"cp: {_fs_msg(exc)}")
            status = 1
    return status


@command("mv")
def _mv(sh: Shell, args: list[str], io: IO) -> int:
    files = [a for a in args if not a.startswith("-")]
    if len(files) != 2:
        _err(io, "mv: Needs 2 arguments")
        return 1
    try:
        sh.rt.fs.rename(sh.path(files[0]), sh.path(files[1]), sh.uid)
    except FsError as exc:
        _err(io, f"mv: {_fs_msg(exc)}")
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
            _err(io, f"touch: '{f}': {os.strerror(exc.errno_)}")
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
            _err(io, f"stat: '{f}': No such file or directory")
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


def _test_eval(sh: Shell, a: list[str]) -> bool:
    if not a:
        return False
    if a[0] == "!":
        return not _test_eval(sh, a[1:])
    if "-a" in a[1:]:
        i = a.index("-a", 1)
        return _test_eval(sh, a[:i]) and _test_eval(sh, a[i + 1:])
    if "-o" in a[1:]:
        i = a.index("-o", 1)
        return _test_eval(sh, a[:i]) or _test_eval(sh, a[i + 1:])
    if len(a) == 1:
        return a[0] != ""
    if len(a) == 2:
        op, x = a
        if op == "-z":
            return x == ""
        if op == "-n":
            return x != ""
        fs = sh.rt.fs
        st = fs.stat(sh.path(x))
        if op == "-e":
            return st is not None
        if op == "-f":
            return st is not None and statmod.S_ISREG(st.mode)
        if op == "-d":
            return st is not None and statmod.S_ISDIR(st.mode)
        if op == "-s":
            return st is not None and st.size > 0
        if op == "-x":
            return st is not None and bool(st.mode & 0o111)
        if op == "-r":
            return st is not None
        if op == "-w":
            return st is not None and (fs.writable_by(sh.path(x), sh.uid) or
                                       (fs.vnode(sh.path(x)) is not None and sh.uid == ROOT_UID))
        if op in ("-L", "-h"):
            return False
        raise ValueError(op)
    if len(a) == 3:
        x, op, y = a
        if op in ("=", "=="):
            return x == y
        if op == "!=":
            return x != y
        ints = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-le": int.__le__,
                "-gt": int.__gt__, "-ge": int.__ge__}
        if op in ints:
            return bool(ints[op](int(x), int(y)))
        raise ValueError(op)
    raise ValueError(" ".join(a))


@command("test", "[")
def _test(sh: Shell, args: list[str], io: IO) -> int:
    if args and args[-1] == "]":
        args = args[:-1]
    try:
        return 0 if _test_eval(sh, args) else 1
    except ValueError as exc:
        _err(io, f"test: {exc}: unknown operand or bad number")
        return 2


@command("id")
def _id(sh: Shell, args: list[str], io: IO) -> int:
    if "-u" in args:
        io.out(f"{sh.uid}\n".encode())
    elif sh.uid == ROOT_UID:
        io.out(b"uid=0(root) gid=0(root) groups=0(root) context=u:r:su:s0\n")
    else:
        io.out(b"uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),"
               b"1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),3002(net_bt),3003(inet),"
               b"3006(net_bw_stats),3009(readproc),3011(uhid),3012(readtracefs) context=u:r:shell:s0\n")
    return 0


@command("whoami")
def _whoami(sh: Shell, args: list[str], io: IO) -> int:
    io.out(b"root\n" if sh.uid == ROOT_UID else b"shell\n")
    return 0


@command("sleep")
def _sleep(sh: Shell, args: list[str], io: IO) -> int:
    try:
        seconds = float(args[0]) if args else 0.0
    except ValueError:
        _err(io, f"sleep: invalid number '{args[0]}'")
        return 1
    if sh.cancel.wait(max(0.0, seconds)):
        raise Cancelled()
    return 0


@command("uptime")
def _uptime(sh: Shell, args: list[str], io: IO) -> int:
    up = int(sh.rt.uptime_s())
    load = sh.rt.snapshot().cpu_busy_cores
    io.out(f" {time.strftime('%H:%M:%S')} up {up // 86400} days, {up % 86400 // 3600:2d}:{up % 3600 // 60:02d},"
           f"  0 users,  load average: {load:.2f}, 0.50, 0.40\n".encode())
    return 0


@command("date")
def _date(sh: Shell, args: list[str], io: IO) -> int:
    now = time.time()
    fmt = next((a[1:] for a in args if a.startswith("+")), "%a %b %d %H:%M:%S %Z %Y")
    ns = f"{int(now * 1e9) % 1_000_000_000:09d}"
    text = fmt.replace("%s", str(int(now))).replace("%N", ns)
    io.out((time.strftime(text, time.localtime(now)) + "\n").encode())
    return 0


@command("nproc")
def _nproc(sh: Shell, args: list[str], io: IO) -> int:
    io.out(f"{sh.rt.profile.cpu_cores}\n".encode())
    return 0


@command("uname")
def _uname(sh: Shell, args: list[str], io: IO) -> int:
    if "-a" in args:
        io.out(b"Linux localhost 5.10.177-perflab-emulated #1 SMP PREEMPT aarch64 Toybox\n")
    elif "-r" in args:
        io.out(b"5.10.177-perflab-emulated\n")
    elif "-m" in args:
        io.out(b"aarch64\n")
    else:
        io.out(b"Linux\n")
    return 0


@command("getenforce")
def _getenforce(sh: Shell, args: list[str], io: IO) -> int:
    io.out(b"Enforcing\n")
    return 0


@command("which")
def _which(sh: Shell, args: list[str], io: IO) -> int:
    status = 0
    for a in args:
        if a in _COMMANDS and a not in ("exit", "cd", "export", "unset", "readonly", "local", ":"):
            io.out(f"/system/bin/{a}\n".encode())
        else:
            status = 1
    return status


@command("getprop")
def _getprop(sh: Shell, args: list[str], io: IO) -> int:
    props = sh.rt.props
    if not args:
        io.out("".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())).encode())
    else:
        io.out((props.get(args[0], args[1] if len(args) > 1 else "") + "\n").encode())
    return 0


@command("setprop")
def _setprop(sh: Shell, args: list[str], io: IO) -> int:
    if len(args) != 2:
        _err(io, "usage: setprop NAME VALUE")
        return 1
    key, value = args
    if key.startswith("ro.") and key in sh.rt.props or (sh.uid != ROOT_UID and not key.startswith(
            ("debug.", "persist.debug.", "log.", "sys.powerctl", "ctl."))):
        _err(io, f"Failed to set property '{key}' to '{value}'.\nSee dmesg for error reason.")
        return 1
    if key == "sys.powerctl" and value.startswith("reboot"):
        if sh.rt.request_reboot is not None:
            sh.rt.request_reboot(0.2)
        return 0
    sh.rt.props[key] = value
    return 0


@command("su")
def _su(sh: Shell, args: list[str], io: IO) -> int:
    if not sh.rt.profile.rooted:
        _err(io, f"{SH}: su: inaccessible or not found")
        return 127
    root = Shell(sh.rt, uid=ROOT_UID, cwd=sh.cwd, cancel=sh.cancel)
    if args and args[0] == "-c":
        if len(args) < 2:
            _err(io, "su: option requires an argument -- c")
            return 1
        return root.run(args[1], io)
    if args and args[0] in ("0", "root"):
        rest = args[1:]
        if not rest:
            return root.run(io.stdin().decode("utf-8", "replace"), io)
        try:
            return root.exec_argv(rest, io)
        except _Exit as ex:
            return ex.code
    if not args:
        return root.run(io.stdin().decode("utf-8", "replace"), io)
    _err(io, f"su: invalid uid/gid '{args[0]}'")
    return 1


@command("sh")
def _sh(sh: Shell, args: list[str], io: IO) -> int:
    sub = Shell(sh.rt, uid=sh.uid, cwd=sh.cwd, cancel=sh.cancel, variables=dict(sh.vars))
    if args and args[0] == "-c":
        if len(args) < 2:
            _err(io, f"{SH}: -c: option requires an argument")
            return 2
        return sub.run(args[1], io)
    if args and args[0].startswith("-"):
        raise Unsupported(f"sh {args[0]}")
    if args:
        try:
            script = sh.rt.fs.read_bytes(sh.path(args[0]), sh.uid)
        except FsError:
            _err(io, f"{SH}: {args[0]}: No such file or directory")
            return 127
        return sub.run(script.decode("utf-8", "replace"), io)
    return sub.run(io.stdin().decode("utf-8", "replace"), io)


@command("kill")
def _kill(sh: Shell, args: list[str], io: IO) -> int:
    sig = signal.SIGTERM
    pids: list[str] = []
    for a in args:
        if a.startswith("-") and len(a) > 1:
            name = a[1:].upper()
            if name.isdigit():
                sig = signal.Signals(int(name))
            elif name == "S":
                continue
            else:
                sig = signal.Signals[name if name.startswith("SIG") else "SIG" + name]
        else:
            pids.append(a)
    status = 0
    for p in pids:
        proc = sh.rt.processes.get(int(p)) if p.isdigit() else None
        if proc is None:
            _err(io, f"kill: pid {p}: No such process")
            status = 1
            continue
        proc.send_signal(sig)
    return status


@command("pidof")
def _pidof(sh: Shell, args: list[str], io: IO) -> int:
    found = [str(pid) for pid, p in sh.rt.processes.items() if p.poll() is None
             and any(posixpath.basename(getattr(p, "device_name", "")) == a for a in args)]
    if found:
        io.out((" ".join(found) + "\n").encode())
        return 0
    return 1


@command("ps")
def _ps(sh: Shell, args: list[str], io: IO) -> int:
    io.out(b"USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME\n")
    io.out(b"root             1     0 10904012  9876 0                   0 S init\n")
    for pid, p in sorted(sh.rt.processes.items()):
        if p.poll() is None:
            io.out(f"shell        {pid:5d}  1000  120000  40000 0                   0 R "
                   f"{getattr(p, 'device_name', 'benchmark_model')}\n".encode())
    return 0


@command("reboot")
def _reboot(sh: Shell, args: list[str], io: IO) -> int:
    if sh.rt.request_reboot is None:
        raise Unsupported("reboot")
    sh.rt.request_reboot(0.2)
    if sh.cancel.wait(30):
        raise Cancelled()
    return 0


# ---------------------------------------------------------------- android services


def dumpsys_battery(rt: PhoneRuntime) -> str:
    st = rt.snapshot()
    p = rt.physics.params
    ov = rt.battery_override
    usb = ov.get("usb", "true" if st.usb_present else "false")
    ac = ov.get("ac", "false")
    level = ov.get("level", str(ph.level_pct(st, p)))
    status = ov.get("status", str(rt.battery_status(st)))
    lines = ["Current Battery Service state:"]
    if ov:
        lines.append("  (UPDATES STOPPED -- use 'reset' to restart)")
    lines += [
        f"  AC powered: {ac}",
        f"  USB powered: {usb}",
        f"  Wireless powered: {ov.get('wireless', 'false')}",
        "  Dock powered: false",
        f"  Max charging current: {rt.profile.battery.max_charging_current_ua if usb == 'true' else 0}",
        f"  Max charging voltage: {rt.profile.battery.max_charging_voltage_uv if usb == 'true' else 0}",
        f"  Charge counter: {int(st.charge_uah)}",
        f"  status: {status}",
        "  health: 2",
        "  present: true",
        f"  level: {level}",
        "  scale: 100",
        f"  voltage: {int(st.voltage_uv / 1000)}",
        f"  temperature: {ov.get('temp', str(round(st.battery_temp_c * 10)))}",
        "  technology: Li-ion",
        f"  Charging state: {1 if status == '2' else 0}",
        "  Charging policy: 1",
    ]
    return "\n".join(lines) + "\n"


def _battery_cmd(sh: Shell, args: list[str], io: IO, who: str) -> int:
    if not args:
        io.out(dumpsys_battery(sh.rt).encode())
        return 0
    sub = args[0]
    if sub == "reset":
        sh.rt.battery_override.clear()
    elif sub == "unplug":
        sh.rt.battery_override.update({"ac": "false", "usb": "false", "wireless": "false"})
    elif sub == "set" and len(args) == 3:
        key = {"invalid": "invalid"}.get(args[1], args[1])
        if key in ("ac", "usb", "wireless"):
            sh.rt.battery_override[key] = "true" if args[2] not in ("0", "false") else "false"
        elif key in ("level", "status", "temp", "present", "counter", "invalid"):
            sh.rt.battery_override[key] = args[2]
        else:
            _err(io, f"Unknown set option: {args[1]}")
            return 255
    elif sub == "suspend_input":
        if sh.rt.props.get("ro.debuggable") != "1":
            _err(io, "Exception occurred while executing 'suspend_input':\njava.lang.SecurityException: battery "
                     "suspend_input is only supported on debuggable builds")
            return 255
        sh.rt.physics.set_charging_suspended(True)
    else:
        _err(io, f"{who}: unknown battery command: {' '.join(args)}")
        return 255
    return 0


def dumpsys_thermal(rt: PhoneRuntime) -> str:
    st = rt.snapshot()
    temps = [(s.name, s.type, rt.temp_for(s.source, st)) for s in rt.profile.thermal_hal]
    status = 0
    hottest = max((t for _, _, t in temps), default=0.0)
    if hottest > 47:
        status = 1 if hottest < 50 else 2 if hottest < 55 else 3
    lines = [
        "IsStatusOverride: false",
        "ThermalEventListeners:",
        "\tcallbacks: 1", "\tkilled: false", "\tbroadcasts count: -1",
        "ThermalStatusListeners:",
        "\tcallbacks: 2", "\tkilled: false", "\tbroadcasts count: -1",
        f"Thermal Status: {status}",
        "Cached temperatures:",
    ]
    lines += [f"\tTemperature{{mValue={rt.profile.physics.ambient_c + 2:.1f}, mType={t}, mName={n}, mStatus=0}}"
              for n, t, _ in temps]
    lines += ["HAL Ready: true", "HAL connection:", "\tThermalHAL AIDL 1  connected: yes",
              "Current temperatures from HAL:"]
    lines += [f"\tTemperature{{mValue={v:.1f}, mType={t}, mName={n}, mStatus={0 if v < 47 else 1}}}"
              for n, t, v in temps]
    lines += ["Current cooling devices from HAL:", "\tCoolingDevice{mValue=0, mType=2, mName=gpu}",
              "Temperature static thresholds from HAL:"]
    lines += [f"\tTemperatureThreshold{{mType={t}, mName={n}, mHotThrottlingThresholds=[NaN, 47.0, 50.0, 55.0, "
              f"60.0, 65.0, 70.0], mColdThrottlingThresholds=[NaN, NaN, NaN, NaN, NaN, NaN, NaN]}}"
              for n, t, _ in temps]
    return "\n".join(lines) + "\n"


@command("dumpsys")
def _dumpsys(sh: Shell, args: list[str], io: IO) -> int:
    if not args:
        raise Unsupported("dumpsys without a service")
    svc = args[0]
    if svc == "battery":
        return _battery_cmd(sh, args[1:], io, "dumpsys battery")
    if svc == "thermalservice":
        io.out(dumpsys_thermal(sh.rt).encode())
        return 0
    if svc == "power":
        io.out((f"POWER MANAGER (dumpsys power)\n\nPower Manager State:\n"
                f"  mWakefulness={'Awake' if sh.rt.screen_on else 'Asleep'}\n"
                f"  mStayOn={'true' if sh.rt.stay_on != 'false' else 'false'}\n"
                f"  mIsPowered={'true' if sh.rt.snapshot().usb_present else 'false'}\n").encode())
        return 0
    if svc in ("meminfo", "gfxinfo", "cpuinfo", "batterystats", "activity", "window", "display"):
        raise Unsupported(f"dumpsys {svc}")
    io.out(f"Can't find service: {svc}\n".encode())
    return 0


@command("cmd")
def _cmd(sh: Shell, args: list[str], io: IO) -> int:
    if args and args[0] == "battery":
        return _battery_cmd(sh, args[1:], io, "cmd battery")
    if args and args[0] == "settings":
        return _settings(sh, args[1:], io)
    if not args:
        _err(io, "cmd: No service specified; use -l to list all running services.")
        return 20
    raise Unsupported(f"cmd {args[0]}")


@command("settings")
def _settings(sh: Shell, args: list[str], io: IO) -> int:
    args = list(args)
    if len(args) >= 2 and args[0] == "--user":
        args = args[2:]
    if len(args) < 3 or args[0] not in ("get", "put", "delete") or args[1] not in sh.rt.settings:
        _err(io, "Invalid command: " + " ".join(args))
        return 255
    op, ns, key = args[0], args[1], args[2]
    table = sh.rt.settings[ns]
    if op == "get":
        io.out((table.get(key, "null") + "\n").encode())
    elif op == "put":
        if len(args) < 4:
            _err(io, "Invalid command: put requires a value")
            return 255
        table[key] = args[3]
        if ns == "global" and key == "stay_on_while_plugged_in":
            sh.rt.stay_on = "false" if args[3] == "0" else "true"
    else:
        io.out(f"Deleted {1 if table.pop(key, None) is not None else 0} rows\n".encode())
    return 0


@command("svc")
def _svc(sh: Shell, args: list[str], io: IO) -> int:
    if len(args) >= 3 and args[0] == "power" and args[1] == "stayon" and args[2] in ("true", "false", "usb", "ac",
                                                                                       "wireless"):
        sh.rt.stay_on = args[2]
        sh.rt.settings["global"]["stay_on_while_plugged_in"] = {"false": "0", "true": "7", "ac": "1", "usb": "2",
                                                                 "wireless": "4"}[args[2]]
        return 0
    if len(args) >= 2 and args[0] == "power" and args[1] == "reboot":
        return _reboot(sh, [], io)
    raise Unsupported("svc " + " ".join(args[:2]))


_KEYCODES = {"KEYCODE_POWER": 26, "KEYCODE_WAKEUP": 224, "KEYCODE_SLEEP": 223, "KEYCODE_HOME": 3,
             "KEYCODE_BACK": 4, "KEYCODE_MENU": 82}


@command("input")
def _input(sh: Shell, args: list[str], io: IO) -> int:
    if len(args) == 2 and args[0] == "keyevent":
        code = _KEYCODES.get(args[1]) if not args[1].isdigit() else int(args[1])
        if code is None:
            _err(io, f"Error: Unknown keycode {args[1]}")
            return 1
        if code == 26:
            sh.rt.screen_on = not sh.rt.screen_on
        elif code == 224:
            sh.rt.screen_on = True
        elif code == 223:
            sh.rt.screen_on = False
        return 0
    raise Unsupported("input " + " ".join(args[:1]))


# ============================================================================ benchmark_model


def run_benchmark_model(sh: Shell, device_path: str, args: list[str], io: IO, env: dict[str, str]) -> int:
    """Run the emulated tool as a real child process, streaming its output, feeding the physics."""
    rt = sh.rt
    child_env = dict(os.environ)
    child_env.update({
        "PERFLAB_EMU_ROOT": str(rt.fs.root),
        "PERFLAB_EMU_CWD": sh.cwd,
        "PERFLAB_EMU_PROFILE": rt.profile.name,
        "PERFLAB_EMU_UID": str(sh.uid),
        "PERFLAB_EMU_ARGV0": device_path,
    })
    for k in ("LD_LIBRARY_PATH", "ADSP_LIBRARY_PATH"):
        if k in env:
            child_env["PERFLAB_EMU_" + k] = env[k]
    cmd = [sys.executable, "-m", "perflab.emulator.benchmark_model", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env, start_new_session=True)
    proc.device_name = device_path  # type: ignore[attr-defined]
    rt.processes[proc.pid] = proc
    gpu = any(a in ("--use_gpu=true", "--use_gpu=1") for a in args) and rt.profile.delegates.gpu
    rt.physics.register_process(proc.pid, gpu=gpu)

    def pump(stream: object, writer: Writer) -> None:
        assert hasattr(stream, "read1")
        while True:
            chunk = stream.read1(65536)
            if not chunk:
                return
            try:
                writer(chunk)
            except Exception:  # noqa: BLE001 - the reader went away; keep draining
                writer = lambda b: None

    threads = [threading.Thread(target=pump, args=(proc.stdout, io.out), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, io.err), daemon=True)]
    for t in threads:
        t.start()
    cancelled = False
    try:
        while True:
            try:
                _, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                status, usage = 0, None
                break
            if _ != 0:
                break
            if sh.cancel.wait(0.05) and not cancelled:
                cancelled = True
                proc.send_signal(signal.SIGHUP)
                proc.kill()
        for t in threads:
            t.join(timeout=5)
        if usage is not None:
            # the last CPU seconds the sampler did not see yet
            done = usage.ru_utime + usage.ru_stime
            seen = rt.physics.consume_final(proc.pid)
            extra = max(0.0, done - seen)
            rt.physics.add_work(ph.Load(cpu_core_s=extra * (0.1 if gpu else 1.0), gpu_busy_s=extra if gpu else 0.0))
        proc.returncode = os.waitstatus_to_exitcode(status) if usage is not None else 0
    finally:
        rt.physics.unregister_process(proc.pid)
        rt.processes.pop(proc.pid, None)
    rc = proc.returncode
    if cancelled:
        raise Cancelled()
    if rc < 0:
        sig = -rc
        if sig == signal.SIGABRT:
            _err(io, "Aborted")
        return 128 + sig
    return rc
