"""The emulated shell's grammar: lists, and-or lists, pipelines, simple and compound commands."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from perflab.emulator.shell.errors import ShellSyntaxError, Unsupported
from perflab.emulator.shell.lexer import CMD, LIT, QCMD, QUOTED, VAR_RE, Op, Seg, Token, Word, tokenize

# ============================================================================ syntax tree


@dataclass
class Redir:
    op: str  # ">", ">>", "<", "<>", ">&"
    fd: int
    target: Word


@dataclass
class Simple:
    assigns: list[tuple[str, Word]]
    words: list[Word]
    redirs: list[Redir]

    @cached_property
    def static_argv(self) -> tuple[str, ...] | None:
        """The command's words when no expansion can change them and nothing is assigned (most
        of a sampler's commands), computed once; None when they must be expanded each time."""
        if self.assigns:
            return None
        argv: list[str] = []
        for w in self.words:
            fields = w.static_fields
            if fields is None:
                return None
            argv.extend(fields)
        return tuple(argv) if argv else None

    @cached_property
    def opens_files(self) -> bool:
        """Whether a redirection may open a file that must be closed when the command ends (a
        ``<`` reads its file whole at once; ``>/dev/null`` and ``>&`` open nothing)."""
        return any(r.op in (">", ">>", "<>") and r.target.static_fields != ("/dev/null",) for r in self.redirs)


@dataclass
class If:
    branches: list[tuple[list[AndOr], list[AndOr]]]
    orelse: list[AndOr] | None
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Loop:
    cond: list[AndOr]
    body: list[AndOr]
    until: bool
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class For:
    var: str
    items: list[Word]
    body: list[AndOr]
    redirs: list[Redir] = field(default_factory=list)


Command = Simple | If | Loop | For


@dataclass
class Pipeline:
    negate: bool
    cmds: list[Command]


@dataclass
class AndOr:
    parts: list[tuple[str | None, Pipeline]]
    background: bool = False
    #: how the interpreter runs this line, worked out on its first run (interp.Shell._prepare)
    prepared: object = field(default=None, compare=False, repr=False)


RESERVED = frozenset({"if", "then", "elif", "else", "fi", "while", "until", "do", "done", "for", "in", "case",
                      "esac", "function", "{", "}", "select"})
ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
_REDIR_OPS = (">", ">>", "<", "<>", ">&")
_REFUSED_KW = ("case", "esac", "function", "select", "{", "}")

# ============================================================================ parser


def tok_text(tok: Token | None) -> str:
    if tok is None:
        return "end of input"
    if isinstance(tok, Op):
        return tok.op
    return "".join(s.text for s in tok.segs)


class _Parser:
    def __init__(self, toks: list[Token]) -> None:
        self.t = toks
        self.i = 0

    # ------------------------------------------------------------------ token helpers
    def peek(self) -> Token | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def peek_op(self) -> str | None:
        tok = self.peek()
        return tok.op if isinstance(tok, Op) else None

    def peek_kw(self) -> str | None:
        tok = self.peek()
        if isinstance(tok, Word):
            p = tok.plain()
            if p in RESERVED or p == "!":
                return p
        return None

    def expect_kw(self, kw: str) -> None:
        if self.peek_kw() != kw:
            raise ShellSyntaxError(f"syntax error: expected '{kw}'")
        self.i += 1

    def skip_seps(self) -> None:
        while self.peek_op() == ";":
            self.i += 1

    def unexpected(self) -> ShellSyntaxError:
        tok = self.peek()
        return ShellSyntaxError(f"syntax error: unexpected {tok_text(tok)!r}" if tok else "syntax error")

    # ------------------------------------------------------------------ lists
    def parse_list(self, stop: set[str]) -> list[AndOr]:
        out: list[AndOr] = []
        while True:
            self.skip_seps()
            if self.peek() is None or self.peek_kw() in stop:
                return out
            ao = self.parse_andor()
            out.append(ao)
            op = self.peek_op()
            if op == "&":
                ao.background = True
                self.i += 1
                continue
            if self.peek() is None or op == ";":
                continue
            if self.peek_kw() in stop:
                return out
            raise self.unexpected()

    def parse_andor(self) -> AndOr:
        parts: list[tuple[str | None, Pipeline]] = [(None, self.parse_pipeline())]
        while (op := self.peek_op()) in ("&&", "||"):
            self.i += 1
            self.skip_seps()
            parts.append((op, self.parse_pipeline()))
        return AndOr(parts)

    def parse_pipeline(self) -> Pipeline:
        negate = False
        if self.peek_kw() == "!":
            negate = True
            self.i += 1
        cmds = [self.parse_command()]
        while self.peek_op() == "|":
            self.i += 1
            cmds.append(self.parse_command())
        return Pipeline(negate, cmds)

    # ------------------------------------------------------------------ commands
    def parse_command(self) -> Command:
        kw = self.peek_kw()
        compound: If | Loop | For
        if kw == "if":
            compound = self.parse_if()
        elif kw in ("while", "until"):
            compound = self.parse_loop(kw)
        elif kw == "for":
            compound = self.parse_for()
        elif kw is None or kw == "!":
            return self.parse_simple()
        elif kw in _REFUSED_KW:
            raise Unsupported(kw)
        else:
            raise ShellSyntaxError(f"syntax error: unexpected '{kw}'")
        while self.peek_op() in _REDIR_OPS:
            compound.redirs.append(self.parse_redir())
        return compound

    def parse_if(self) -> If:
        self.i += 1
        cond = self.parse_list({"then"})
        self.expect_kw("then")
        branches = [(cond, self.parse_list({"elif", "else", "fi"}))]
        orelse = None
        while (k := self.peek_kw()) in ("elif", "else"):
            self.i += 1
            if k == "elif":
                cond = self.parse_list({"then"})
                self.expect_kw("then")
                branches.append((cond, self.parse_list({"elif", "else", "fi"})))
            else:
                orelse = self.parse_list({"fi"})
        self.expect_kw("fi")
        return If(branches, orelse)

    def parse_loop(self, kw: str) -> Loop:
        self.i += 1
        cond = self.parse_list({"do"})
        self.expect_kw("do")
        body = self.parse_list({"done"})
        self.expect_kw("done")
        return Loop(cond, body, until=kw == "until")

    def parse_for(self) -> For:
        self.i += 1
        tok = self.peek()
        name = tok.plain() if isinstance(tok, Word) else None
        if name is None or not VAR_RE.fullmatch(name):
            raise ShellSyntaxError("for: bad variable name")
        self.i += 1
        self.skip_seps()
        if self.peek_kw() != "in":
            raise Unsupported("for without 'in'")
        self.i += 1
        items: list[Word] = []
        while isinstance(tok := self.peek(), Word):
            items.append(tok)
            self.i += 1
        self.skip_seps()
        self.expect_kw("do")
        body = self.parse_list({"done"})
        self.expect_kw("done")
        return For(name, items, body)

    def parse_redir(self) -> Redir:
        tok = self.t[self.i]
        assert isinstance(tok, Op)
        self.i += 1
        target = self.peek()
        if not isinstance(target, Word):
            raise ShellSyntaxError(f"syntax error: '{tok.op}' unexpected")
        self.i += 1
        fd = tok.fd if tok.fd is not None else (0 if tok.op in ("<", "<>") else 1)
        return Redir(tok.op, fd, target)

    def parse_simple(self) -> Simple:
        cmd = Simple([], [], [])
        while (tok := self.peek()) is not None:
            if isinstance(tok, Op):
                if tok.op not in _REDIR_OPS:
                    break
                cmd.redirs.append(self.parse_redir())
                continue
            if not cmd.words and (assign := _assignment(tok)) is not None:
                cmd.assigns.append(assign)
            else:
                cmd.words.append(tok)
            self.i += 1
        if not cmd.words and not cmd.assigns and not cmd.redirs:
            raise self.unexpected()
        return cmd


def _assignment(tok: Word) -> tuple[str, Word] | None:
    if not tok.segs or tok.segs[0].kind != LIT:
        return None
    m = ASSIGN_RE.fullmatch(tok.segs[0].text)
    if not m:
        return None
    value = Word([Seg(QUOTED, m.group(2)), *tok.segs[1:]]) if m.group(2) else Word(tok.segs[1:])
    return m.group(1), value


def _check_substitutions(toks: list[Token]) -> None:
    """Parse every ``$(…)`` now, so a refused construct inside one stops the script before it runs."""
    for tok in toks:
        if isinstance(tok, Word):
            for seg in tok.segs:
                if seg.kind in (CMD, QCMD):
                    parse(seg.text)


def parse(src: str) -> list[AndOr]:
    toks = tokenize(src)
    _check_substitutions(toks)
    p = _Parser(toks)
    out = p.parse_list(set())
    if p.peek() is not None:
        raise p.unexpected()
    return out
