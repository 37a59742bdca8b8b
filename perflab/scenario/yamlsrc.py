"""YAML loading that remembers where every value came from.

pydantic reports errors by path (``("models", 0, "variants")``); users need a file and line.
We compose the YAML node tree once, build plain Python data from it, and keep a map from
each path to the line of its key (or of the value, for list items).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from perflab.errors import SourceLocation, UserInputError

PathKey = tuple[str | int, ...]


@dataclass
class LocatedDocument:
    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """Line of the deepest known prefix of ``path`` (1-based), if any."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return None

    def location(self, path: PathKey) -> SourceLocation:
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
        return SourceLocation(self.file, self.line_of(path), dotted or None)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a silent overwrite is a classic scenario bug)."""


def _construct(
    node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str, scalars: yaml.SafeLoader
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = scalars.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)):
                raise UserInputError(
                    "mapping keys must be plain scalars",
                    SourceLocation(file, key_node.start_mark.line + 1, None),
                )
            key = str(key)
            if key in out:
                raise UserInputError(
                    f"duplicate key {key!r}", SourceLocation(file, key_node.start_mark.line + 1, key)
                )
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, path + (key,), lines, file, scalars)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), lines, file, scalars) for i, item in enumerate(node.value)]
    return scalars.construct_object(node, deep=True)


def load_yaml(path: Path) -> LocatedDocument:
    """Read and compose a YAML file; syntax errors become one-line user errors."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UserInputError("file not found", SourceLocation(file, None, None)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read: {exc}", SourceLocation(file, None, None)) from exc
    return load_yaml_text(text, file)


def load_yaml_text(text: str, file: str) -> LocatedDocument:
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise UserInputError(f"YAML syntax: {exc.problem}", SourceLocation(file, line, None)) from exc
    except yaml.YAMLError as exc:
        raise UserInputError(f"YAML syntax: {exc}", SourceLocation(file, None, None)) from exc
    if node is None:
        raise UserInputError("empty document", SourceLocation(file, 1, None))
    lines: dict[PathKey, int] = {}
    data = _construct(node, (), lines, file, _StrictLoader(""))
    return LocatedDocument(file=file, data=data, lines=lines)
