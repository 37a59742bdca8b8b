"""mksh arithmetic ``$((…))``: 64-bit signed integers, C operators, variables and assignments.

Supported: decimal and ``0x`` literals, variables (bare names; ``$x`` is expanded before),
``( )``, unary ``+ - ! ~``, ``* / %``, ``+ -``, ``<< >>``, ``< <= > >=``, ``== !=``, ``& ^ |``,
``&& ||``, ``?:``, ``=`` and ``op=``. ``++``/``--``, ``**`` and ``base#n`` are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping

from perflab.emulator.shell.errors import ShellError, Unsupported

_TOKEN_RE = re.compile(r"\s*(?:(0[xX][0-9A-Fa-f]+|\d+)|([A-Za-z_][A-Za-z0-9_]*)|"
                       r"(<<=|>>=|\+\+|--|\*\*|&&|\|\||<<|>>|<=|>=|==|!=|[-+*/%&|^]=|[-+*/%<>=!~&|^?:()]))")
_BINARY: dict[str, tuple[int, Callable[[int, int], int]]] = {
    "||": (1, lambda a, b: int(bool(a) or bool(b))),
    "&&": (2, lambda a, b: int(bool(a) and bool(b))),
    "|": (3, lambda a, b: a | b), "^": (4, lambda a, b: a ^ b), "&": (5, lambda a, b: a & b),
    "==": (6, lambda a, b: int(a == b)), "!=": (6, lambda a, b: int(a != b)),
    "<": (7, lambda a, b: int(a < b)), "<=": (7, lambda a, b: int(a <= b)),
    ">": (7, lambda a, b: int(a > b)), ">=": (7, lambda a, b: int(a >= b)),
    "<<": (8, lambda a, b: a << (b & 63)), ">>": (8, lambda a, b: a >> (b & 63)),
    "+": (9, lambda a, b: a + b), "-": (9, lambda a, b: a - b),
    "*": (10, lambda a, b: a * b), "/": (10, lambda a, b: _cdiv(a, b)), "%": (10, lambda a, b: _cmod(a, b)),
}
_UNARY: dict[str, Callable[[int], int]] = {"-": lambda v: -v, "+": lambda v: v, "!": lambda v: int(not v),
                                          "~": lambda v: ~v}
_ASSIGN_OPS = ("=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=")
_REFUSED = ("++", "--", "**")


class _ZeroDivisor(ArithmeticError):
    pass


def _wrap(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _cdiv(a: int, b: int) -> int:
    if b == 0:
        raise _ZeroDivisor()
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _cmod(a: int, b: int) -> int:
    return a - _cdiv(a, b) * b


_TOKENS: dict[str, tuple[str, ...]] = {}  # tokenised once per distinct expression (a loop's)


def _tokens(expr: str) -> tuple[str, ...]:
    toks = _TOKENS.get(expr)
    if toks is None:
        toks = tuple(_tokenize(expr))
        if len(_TOKENS) < 1024:
            _TOKENS[expr] = toks
    return toks


def _tokenize(expr: str) -> list[str]:
    out: list[str] = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if m is None or m.end() == pos:
            raise ShellError(f"{expr}: unexpected '{expr[pos:].strip()[:1]}'")
        tok = m.group(1) or m.group(2) or m.group(3)
        if tok in _REFUSED:
            raise Unsupported(f"arithmetic {tok}")
        out.append(tok)
        pos = m.end()
    return out


class _Eval:
    def __init__(self, expr: str, variables: MutableMapping[str, str]) -> None:
        self.expr = expr
        self.toks = _tokens(expr)
        self.i = 0
        self.vars = variables

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ShellError(f"{self.expr}: unexpected end of expression")
        self.i += 1
        return tok

    def value_of(self, name: str) -> int:
        text = self.vars.get(name, "").strip()
        if not text:
            return 0
        try:
            return int(text, 0) if text.lower().startswith("0x") else int(text)
        except ValueError:
            raise ShellError(f"{text}: bad number") from None

    def expression(self) -> int:
        return self.assignment()

    def assignment(self) -> int:
        tok = self.peek()
        nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        if tok is not None and (tok[0].isalpha() or tok[0] == "_") and nxt in _ASSIGN_OPS:
            self.i += 2
            rhs = self.assignment()
            value = rhs if nxt == "=" else _wrap(_BINARY[nxt[:-1]][1](self.value_of(tok), rhs))
            self.vars[tok] = str(value)
            return value
        return self.conditional()

    def conditional(self) -> int:
        cond = self.binary(1)
        if self.peek() != "?":
            return cond
        self.i += 1
        yes = self.assignment()
        if self.take() != ":":
            raise ShellError(f"{self.expr}: missing ':'")
        no = self.assignment()
        return yes if cond else no

    def binary(self, min_prec: int) -> int:
        left = self.unary()
        while (op := self.peek()) in _BINARY and _BINARY[op][0] >= min_prec:
            prec, fn = _BINARY[op]
            self.i += 1
            right = self.binary(prec + 1)
            left = _wrap(fn(left, right))
        return left

    def unary(self) -> int:
        tok = self.take()
        if tok == "(":
            value = self.expression()
            if self.take() != ")":
                raise ShellError(f"{self.expr}: missing ')'")
            return value
        unary = _UNARY.get(tok)
        if unary is not None:
            return _wrap(unary(self.unary()))
        if tok[0].isdigit():
            return _wrap(int(tok, 16) if tok[:2].lower() == "0x" else int(tok))
        if tok[0].isalpha() or tok[0] == "_":
            return self.value_of(tok)
        raise ShellError(f"{self.expr}: unexpected '{tok}'")


def evaluate(expr: str, variables: MutableMapping[str, str]) -> int:
    """The value of ``expr``; assignments change ``variables``. Errors raise ShellError (exit 1)."""
    if not expr.strip():
        return 0
    ev = _Eval(expr, variables)
    try:
        value = ev.expression()
    except _ZeroDivisor:
        raise ShellError(f"{expr.strip()}: zero divisor") from None
    if ev.peek() is not None:
        raise ShellError(f"{expr.strip()}: unexpected '{ev.peek()}'")
    return value
