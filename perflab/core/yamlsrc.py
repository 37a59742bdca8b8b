"""YAML loading that remembers where every value came from, and pydantic validation with file:line.

pydantic reports errors by path (``("models", 0, "variants")``); users need a file and line.
We compose the YAML node tree once, build plain Python data from it, and keep a map from
each path to the line of its key (or of the value, for list items).

Input files are hostile until proven otherwise, so every way a YAML file can make the
loader hang, eat memory or crash is a one-line :class:`~perflab.errors.UserInputError`
that names the file and line instead:

- the file is read as bytes, at most :data:`MAX_FILE_BYTES`; a NUL byte or a byte that is
  not UTF-8 is refused with its line;
- nesting deeper than :data:`MAX_DEPTH` is refused while *parsing* (PyYAML's composer is
  recursive, so 5000 nested ``[`` would otherwise end in a RecursionError);
- aliases are followed, but a document that expands to more than :data:`MAX_VALUES` values
  ("billion laughs") is refused, and so is an alias that refers to itself;
- a scalar the YAML resolver cannot build (an int of 5000 digits, a date like 2001-13-45)
  names its line.

Used by the scenario loader and the device configs; imports nothing from perflab but errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from perflab.core.files import read_regular_bytes
from perflab.core.names import one_line
from perflab.errors import SourceLocation, UserInputError

PathKey = tuple[str | int, ...]

MAX_FILE_BYTES = 1 << 20
"""Largest YAML file read (1 MiB): a scenario or device config is a few kilobytes."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences."""
MAX_VALUES = 50_000
"""Most values (mapping entries, list items, scalars) a document may expand to, aliases included."""
_MAX_SHOWN = 80  # characters of a user's value quoted back in a message


@dataclass
class LocatedDocument:
    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    text: str = ""

    def line_of(self, path: PathKey) -> int | None:
        """Line of the deepest known prefix of ``path`` (1-based), if any."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return None

    def location(self, path: PathKey) -> SourceLocation:
        return SourceLocation(self.file, self.line_of(path), dotted_path(path) or None)


def dotted_path(path: PathKey) -> str:
    """``("models", 0, "path")`` → ``models[0].path``; odd keys are quoted so the result is one line."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            key = p if p.isprintable() and p.strip() == p and p else json.dumps(p)
            out += ("." if out else "") + one_line(key)
    return out


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a silent overwrite is a classic scenario bug)."""


def _at(file: str, mark: Any, field_: str | None = None) -> SourceLocation:
    return SourceLocation(file, mark.line + 1 if mark is not None else None, field_)


class _Builder:
    """Node tree → plain data with a line per path, within the value budget, cycles refused."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[PathKey, int] = {}
        self.scalars = _StrictLoader("")
        self.values = 0
        self.active: set[int] = set()  # ids of collection nodes being built (an alias cycle hits one)

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise UserInputError(
                f"document expands to more than {MAX_VALUES} values (YAML aliases?)",
                _at(self.file, node.start_mark, dotted_path(path) or None),
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.active:
            raise UserInputError(
                "an alias refers to a value that contains it (self-referencing alias)",
                _at(self.file, node.start_mark, dotted_path(path) or None),
            )
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))
        raise UserInputError("unsupported YAML node", _at(self.file, node.start_mark, dotted_path(path) or None))

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, (str, int)):
                raise UserInputError(
                    "mapping keys must be plain strings or numbers", _at(self.file, key_node.start_mark, None)
                )
            key = str(key)
            if key in out:
                raise UserInputError(
                    f"duplicate key {one_line(key, _MAX_SHOWN)!r}",
                    _at(self.file, key_node.start_mark, dotted_path((*path, key))),
                )
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key))
            self.lines[(*path, key)] = key_node.start_mark.line + 1
        return out

    def _scalar(self, node: yaml.ScalarNode, path: PathKey) -> Any:
        try:
            return self.scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            raise UserInputError(
                f"cannot read value {one_line(str(node.value), _MAX_SHOWN)!r}: {one_line(str(exc), _MAX_SHOWN)}",
                _at(self.file, node.start_mark, dotted_path(path) or None),
            ) from None


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_text(data: bytes, file: str) -> str:
    """UTF-8 bytes → text; a NUL or an invalid byte is refused with its line."""
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if nul < 0 or exc.start < nul:
            column = exc.start - data.rfind(b"\n", 0, exc.start)
            raise UserInputError(
                f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column}",
                SourceLocation(file, _line_of_offset(data, exc.start), None),
            ) from None
        raise UserInputError("NUL byte in text", SourceLocation(file, _line_of_offset(data, nul), None)) from None
    if nul >= 0:
        raise UserInputError("NUL byte in text", SourceLocation(file, _line_of_offset(data, nul), None))
    return text.removeprefix("\ufeff")


def read_text_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A small UTF-8 text file, checked (regular file, opened without blocking; size, NUL,
    encoding); problems are one-line user errors."""
    file = str(path)
    data = read_regular_bytes(path, max_bytes=max_bytes)
    return decode_text(data, file)


def load_yaml(path: Path) -> LocatedDocument:
    """Read and compose a YAML file; every problem becomes a one-line user error."""
    return load_yaml_text(read_text_file(path), str(path))


def _check_shape(text: str, file: str) -> None:
    """One pass over the parser's events (iterative, no recursion): nesting depth capped."""
    depth = 0
    events: Iterator[yaml.Event] = yaml.parse(text, Loader=_StrictLoader)
    for event in events:
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise UserInputError(f"nested deeper than {MAX_DEPTH} levels", _at(file, event.start_mark))
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def load_yaml_text(text: str, file: str) -> LocatedDocument:
    if "\x00" in text:
        raise UserInputError("NUL byte in text", SourceLocation(file, text.count("\n", 0, text.index("\x00")) + 1, None))
    if len(text) > MAX_FILE_BYTES:
        raise UserInputError(f"text is longer than {MAX_FILE_BYTES} characters", SourceLocation(file, None, None))
    try:
        _check_shape(text, file)
        node = yaml.compose(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise UserInputError(f"YAML syntax: {one_line(str(exc.problem))}", _at(file, mark)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserInputError(f"YAML syntax: {one_line(str(exc))}", _at(file, mark)) from None
    except RecursionError:
        raise UserInputError(f"nested too deeply (more than {MAX_DEPTH} levels?)", SourceLocation(file, None, None)) from None
    if node is None:
        raise UserInputError("empty document", SourceLocation(file, 1, None))
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except RecursionError:
        raise UserInputError("nested too deeply", SourceLocation(file, None, None)) from None
    return LocatedDocument(file=file, data=data, lines=builder.lines, text=text)


# ---------------------------------------------------------------------------------------------
# pydantic validation with file:line


def validate_document(doc: LocatedDocument, model: type[BaseModel]) -> Any:
    """Validate ``doc.data`` against ``model``; the first error becomes a located UserInputError."""
    if not isinstance(doc.data, dict):
        raise UserInputError("top level must be a mapping", doc.location(()))
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors()
        err = errors[0]
        loc: PathKey = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
        # pydantic appends union/model tags to loc; keep the prefix that exists in the document
        while loc and doc.lines.get(loc) is None and len(loc) > 1 and err["type"] != "missing":
            loc = loc[:-1]
        message = _message(err)
        more = len(errors) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise UserInputError(one_line(message, 400), doc.location(loc)) from None


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    msg = str(err["msg"]).removeprefix("Value error, ")
    inp = err.get("input")
    if kind != "model_type" and inp is not None and not isinstance(inp, (dict, list)):
        shown = json.dumps(inp) if isinstance(inp, (str, int, float, bool)) else repr(inp)
        msg += f" (got {one_line(shown, _MAX_SHOWN)})"
    return msg
