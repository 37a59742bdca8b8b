"""Tokens of the emulated shell: words made of quoted/unquoted segments, and operators.

Quoting follows mksh: 'single' is literal, "double" expands ``$var``, ``$(…)`` and
``$((…))``, a backslash quotes the next character. Constructs the phone does not run
(here-documents, ``<&``, ``&>``, subshells ``( )``) are refused here, before anything runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from perflab.emulator.shell.errors import ShellSyntaxError, Unsupported

#: Segment kinds. Unquoted expansions are field-split, quoted ones are not.
LIT, QUOTED, VAR, QVAR, CMD, QCMD, ARITH, QARITH = "lit", "q", "var", "qvar", "cmd", "qcmd", "arith", "qarith"
QUOTED_KINDS = frozenset({QUOTED, QVAR, QCMD, QARITH})
_QUOTED_OF = {VAR: QVAR, CMD: QCMD, ARITH: QARITH}


@dataclass(frozen=True)
class Seg:
    kind: str  # one of the kinds above
    text: str  # literal text, a variable name, a command's source or an arithmetic expression


@dataclass
class Word:
    segs: list[Seg] = field(default_factory=list)

    def plain(self) -> str | None:
        """The text when the word is one unquoted literal (keywords, operators' targets)."""
        if len(self.segs) == 1 and self.segs[0].kind == LIT:
            return self.segs[0].text
        return None

    @cached_property
    def static_fields(self) -> tuple[str, ...] | None:
        """The word's fields when no expansion can change them (literal or quoted text only, no
        glob pattern, no blank to split on), computed once: a sampler loop runs the same words
        thousands of times. ``None`` when the word must be expanded each time. Read only after
        the word is complete (the parser never changes a word it has returned)."""
        if not self.segs or any(seg.kind not in (LIT, QUOTED) for seg in self.segs):
            return None
        lits = "".join(seg.text for seg in self.segs if seg.kind == LIT)
        if any(c in lits for c in "*? \t\n") or ("[" in lits and "]" in lits):
            return None
        text = "".join(seg.text for seg in self.segs)
        return (text,) if text or any(seg.kind == QUOTED for seg in self.segs) else ()


    @cached_property
    def quoted_parts(self) -> tuple[tuple[bool, str], ...] | None:
        """(is a variable, text) for each segment when the word is all double-quoted text and
        ``$name``s (``"T $up"``): one field, no split, no glob; computed once. None otherwise."""
        if not self.segs or any(seg.kind not in (QUOTED, QVAR) for seg in self.segs):
            return None
        return tuple((seg.kind == QVAR, seg.text) for seg in self.segs)


@dataclass(frozen=True)
class Op:
    op: str
    fd: int | None = None


Token = Word | Op

_OPS2 = ("&&", "||", ">>", ">&", "<<", "<&", ";;", "&>", "<>", ">|")
_REFUSED_OPS2 = ("<<", "<&", ";;", "&>", ">|")
VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_VARS = "?$#!0123456789"


def _skip_quoted(src: str, i: int) -> int:
    """Index just after the quoted string that starts at ``src[i]`` (a ' or a ")."""
    q = src[i]
    j = i + 1
    while j < len(src) and src[j] != q:
        j += 2 if q == '"' and src[j] == "\\" else 1
    if j >= len(src):
        raise ShellSyntaxError("unterminated quoted string")
    return j + 1


def find_closing(src: str, start: int, close: str) -> int:
    """Index of the ``close`` that ends a ``$(``/``$((`` opened before ``start``, skipping quotes."""
    depth = 0
    i = start
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c in "'\"":
            i = _skip_quoted(src, i)
            continue
        if c == "(":
            depth += 1
        elif src.startswith(close, i) and depth == 0:
            return i
        elif c == ")":
            depth -= 1
        i += 1
    raise ShellSyntaxError(f"unterminated {'$((' if close == '))' else '$('}")


class _Lexer:
    def __init__(self, src: str) -> None:
        self.src = src
        self.n = len(src)
        self.i = 0
        self.toks: list[Token] = []
        self.cur: Word | None = None
        self.lit: list[str] = []

    # ------------------------------------------------------------------ word building
    def flush_lit(self, kind: str = LIT) -> None:
        if self.lit:
            self.word().segs.append(Seg(kind, "".join(self.lit)))
            self.lit.clear()

    def end_word(self) -> None:
        self.flush_lit()
        if self.cur is not None:
            self.toks.append(self.cur)
            self.cur = None

    def word(self) -> Word:
        if self.cur is None:
            self.cur = Word()
        return self.cur

    def add_seg(self, kind: str, text: str, quoted: bool) -> None:
        self.flush_lit(QUOTED if quoted else LIT)
        self.word().segs.append(Seg(_QUOTED_OF.get(kind, kind) if quoted else kind, text))

    # ------------------------------------------------------------------ main loop
    def run(self) -> list[Token]:
        while self.i < self.n:
            c = self.src[self.i]
            _DISPATCH.get(c, _Lexer.plain_char)(self, c)
        self.end_word()
        return self.toks

    def plain_char(self, c: str) -> None:
        self.lit.append(c)
        self.i += 1

    def blank(self, c: str) -> None:
        self.end_word()
        self.i += 1

    def newline(self, c: str) -> None:
        self.end_word()
        self.toks.append(Op(";"))
        self.i += 1

    def hash(self, c: str) -> None:
        if self.cur is not None or self.lit:
            self.plain_char(c)
            return
        end = self.src.find("\n", self.i)
        self.i = self.n if end < 0 else end

    def single_quote(self, c: str) -> None:
        self.flush_lit()
        end = self.src.find("'", self.i + 1)
        if end < 0:
            raise ShellSyntaxError("unterminated quoted string")
        self.word().segs.append(Seg(QUOTED, self.src[self.i + 1:end]))
        self.i = end + 1

    def double_quote(self, c: str) -> None:
        self.flush_lit()
        self.word()
        self.i += 1
        while True:
            if self.i >= self.n:
                raise ShellSyntaxError("unterminated quoted string")
            d = self.src[self.i]
            if d == '"':
                self.close_double_quote()
                return
            self.double_quoted_char(d)

    def close_double_quote(self) -> None:
        self.flush_lit(QUOTED)
        cur = self.word()
        if not cur.segs or cur.segs[-1].kind not in QUOTED_KINDS:
            cur.segs.append(Seg(QUOTED, ""))
        self.i += 1

    def double_quoted_char(self, d: str) -> None:
        nxt = self.src[self.i + 1:self.i + 2]
        if d == "\\" and nxt and nxt in '$`"\\\n':
            if nxt != "\n":
                self.lit.append(nxt)
            self.i += 2
        elif d == "$":
            self.flush_lit(QUOTED)
            self.dollar(d, quoted=True)
            self.flush_lit(QUOTED)
        elif d == "`":
            self.backtick(d, quoted=True)
        else:
            self.lit.append(d)
            self.i += 1

    def backslash(self, c: str) -> None:
        if self.i + 1 < self.n and self.src[self.i + 1] != "\n":
            self.flush_lit()
            self.word().segs.append(Seg(QUOTED, self.src[self.i + 1]))
        self.i += 2

    # ------------------------------------------------------------------ expansions
    def dollar(self, c: str, quoted: bool = False) -> None:
        j = self.i
        nxt = self.src[j + 1:j + 2]
        if nxt == "(":
            self.substitution(quoted)
        elif nxt == "{":
            self.braced_var(quoted)
        elif nxt and nxt in _SPECIAL_VARS:
            self.add_seg(VAR, nxt, quoted)
            self.i = j + 2
        elif nxt in ("@", "*"):
            raise Unsupported("$" + nxt)
        else:
            m = VAR_RE.match(self.src, j + 1)
            if m is None:
                self.lit.append("$")
                self.i = j + 1
                return
            self.add_seg(VAR, m.group(0), quoted)
            self.i = m.end()

    def braced_var(self, quoted: bool) -> None:
        end = self.src.find("}", self.i + 2)
        if end < 0:
            raise ShellSyntaxError("${: missing }")
        name = self.src[self.i + 2:end]
        if not (VAR_RE.fullmatch(name) or (len(name) == 1 and name in _SPECIAL_VARS) or name.isdigit()):
            raise Unsupported("${" + name + "}")
        self.add_seg(VAR, name, quoted)
        self.i = end + 1

    def substitution(self, quoted: bool) -> None:
        if self.src.startswith("$((", self.i):
            end = find_closing(self.src, self.i + 3, "))")
            self.add_seg(ARITH, self.src[self.i + 3:end], quoted)
            self.i = end + 2
            return
        end = find_closing(self.src, self.i + 2, ")")
        self.add_seg(CMD, self.src[self.i + 2:end], quoted)
        self.i = end + 1

    def backtick(self, c: str, quoted: bool = False) -> None:
        j = self.i + 1
        inner: list[str] = []
        while j < self.n and self.src[j] != "`":
            if self.src[j] == "\\" and self.src[j + 1:j + 2] in ("`", "\\", "$"):
                j += 1
            inner.append(self.src[j])
            j += 1
        if j >= self.n:
            raise ShellSyntaxError("unterminated `")
        self.add_seg(CMD, "".join(inner), quoted)
        self.i = j + 1

    # ------------------------------------------------------------------ operators
    def operator(self, c: str) -> None:
        fd: int | None = None
        text = "".join(self.lit)
        if c in "<>" and self.cur is None and text.isdigit():
            fd = int(text)
            self.lit.clear()
        else:
            self.end_word()
        two = self.src[self.i:self.i + 2]
        if two in _OPS2:
            if two in _REFUSED_OPS2:
                raise Unsupported(two)
            self.toks.append(Op(two, fd))
            self.i += 2
            return
        if c in "()":
            raise Unsupported("subshell " + c)
        self.toks.append(Op(c, fd))
        self.i += 1


_DISPATCH: dict[str, Callable[[_Lexer, str], None]] = {
    " ": _Lexer.blank, "\t": _Lexer.blank, "\n": _Lexer.newline, "#": _Lexer.hash,
    "'": _Lexer.single_quote, '"': _Lexer.double_quote, "\\": _Lexer.backslash,
    "$": _Lexer.dollar, "`": _Lexer.backtick,
    **{c: _Lexer.operator for c in ";&|<>()"},
}


def tokenize(src: str) -> list[Token]:
    return _Lexer(src).run()
