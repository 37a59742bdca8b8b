"""Word expansion: parameters, field splitting of unquoted expansions, pathname globs."""

from __future__ import annotations

import fnmatch
import posixpath
from typing import TYPE_CHECKING

from perflab.emulator.fs import FsError
from perflab.emulator.shell.errors import Unsupported
from perflab.emulator.shell.lexer import ARITH, LIT, QARITH, QUOTED, QUOTED_KINDS, Word

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell

_Char = tuple[str, bool, bool]  # (char, splittable, globbable)


def _chars(sh: Shell, word: Word) -> list[_Char]:
    chars: list[_Char] = []
    for seg in word.segs:
        if seg.kind == LIT:
            chars += [(c, False, True) for c in seg.text]
        elif seg.kind == QUOTED:
            chars += [(c, False, False) for c in seg.text]
        else:
            value = sh.expansion(seg)
            chars += [(c, seg.kind not in QUOTED_KINDS, False) for c in value]
    return chars


DEFAULT_IFS = " \t\n"


def check_ifs(ifs: str | None) -> None:
    """Only the default IFS is implemented: refuse (never mis-split) with any other."""
    if ifs is not None and ifs != DEFAULT_IFS:
        raise Unsupported(f"IFS={ifs!r}")


def _split(chars: list[_Char]) -> list[list[_Char]]:
    fields: list[list[_Char]] = [[]]
    for ch in chars:
        if ch[1] and ch[0] in " \t\n":
            if fields[-1]:
                fields.append([])
            continue
        fields[-1].append(ch)
    return [f for f in fields if f]


def quoted_text(sh: Shell, parts: tuple[tuple[bool, str], ...]) -> str:
    """A word's ``quoted_parts`` expanded: its text with each ``$name`` replaced by its value."""
    return "".join([sh.var(text) if is_var else text for is_var, text in parts])


def _plain(sh: Shell, word: Word) -> list[str] | None:
    """The common cases without per-character work (a sampler loop expands thousands of words a
    second): a literal word with no glob character or blank, or a wholly double-quoted word."""
    static = word.static_fields
    if static is not None:
        return list(static)
    parts = word.quoted_parts
    if parts is not None:  # "…$var…"
        return [quoted_text(sh, parts)]
    segs = word.segs
    if len(segs) == 1 and segs[0].kind in (ARITH, QARITH):  # $((…)): a number, nothing to glob
        if segs[0].kind == ARITH:
            check_ifs(sh.vars.get("IFS"))  # unquoted: split by IFS, and only the default is implemented
        return [sh.expansion(segs[0])]
    if all(seg.kind in QUOTED_KINDS for seg in segs):  # "…$var…": one field, no split, no glob
        return ["".join(seg.text if seg.kind == QUOTED else sh.expansion(seg) for seg in segs)]
    return None


def _is_pattern(f: list[_Char]) -> bool:
    """An unquoted ``*`` or ``?``, or an unquoted ``[`` closed by a later ``]``: a lone ``[`` (the
    test command) is a plain word, as in mksh, and costs no directory listing."""
    for i, (c, _, g) in enumerate(f):
        if g and c in "*?":
            return True
        if g and c == "[" and any(c2 == "]" for c2, _, _ in f[i + 2:]):
            return True
    return False


def expand(sh: Shell, word: Word) -> list[str]:
    """Expand a word into fields: variables, field splitting of unquoted expansions, globs."""
    fast = _plain(sh, word)
    if fast is not None:
        return fast
    result: list[str] = []
    chars = _chars(sh, word)
    if any(splittable for _, splittable, _ in chars):
        check_ifs(sh.vars.get("IFS"))
    for f in _split(chars):
        text = "".join(c for c, _, _ in f)
        if _is_pattern(f):
            matches = glob(sh, text)
            result.extend(matches if matches else [text])
        else:
            result.append(text)
    if not result and any(s.kind in QUOTED_KINDS for s in word.segs):
        result.append("")
    return result


def _glob_part(sh: Shell, base: str, part: str) -> list[str]:
    if not any(c in part for c in "*?["):
        cand = posixpath.join(base, part)
        return [cand] if sh.rt.fs.exists(cand) else []
    try:
        names = sh.rt.fs.listdir(base)
    except FsError:
        return []
    return [posixpath.join(base, nm) for nm in names
            if fnmatch.fnmatchcase(nm, part) and (part.startswith(".") or not nm.startswith("."))]


def glob(sh: Shell, pattern: str) -> list[str]:
    absolute = pattern.startswith("/")
    bases = ["/" if absolute else sh.cwd]
    for part in (p for p in pattern.split("/") if p):
        bases = [m for base in bases for m in _glob_part(sh, base, part)]
    if not absolute:
        prefix = sh.cwd.rstrip("/") + "/"
        bases = [b.removeprefix(prefix) for b in bases]
    return sorted(bases)
