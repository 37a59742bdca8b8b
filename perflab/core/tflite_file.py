"""Is this file a TFLite model? A structural check of its flatbuffer, without TensorFlow.

A ``.tflite`` file is a flatbuffer whose file identifier (bytes 4..8) is ``TFL3`` and whose root
table is a ``Model``: schema version 3, and a non-empty vector of subgraphs. This module walks
just enough of that structure, with every offset bounds-checked, to tell a model from an empty
file, a text file or random bytes — before anything is pushed to a phone or handed to
TensorFlow's analyzer (whose C++ side fails on such input with errors that are not one line).
It does not prove the model runs; the interpreter does that.

Pure parsing over bytes (:func:`tflite_problem`) and one reader (:func:`check_tflite_file`).
Imports nothing from perflab above it.
"""

from __future__ import annotations

import struct
from pathlib import Path

from perflab.core.files import open_regular
from perflab.errors import SourceLocation, UserInputError

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
MAX_MODEL_BYTES = 2**31 - 1
"""A flatbuffer cannot be larger (32-bit signed offsets)."""

# table fields, in schema order (tensorflow/lite/schema/schema.fbs)
_MODEL_VERSION = 0
_MODEL_SUBGRAPHS = 2
_MODEL_BUFFERS = 4
_SUBGRAPH_TENSORS = 0
_SUBGRAPH_INPUTS = 1
_SUBGRAPH_OUTPUTS = 2


def _u16(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<H", data, at)[0])


def _u32(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<I", data, at)[0])


def _i32(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<i", data, at)[0])


class _Damaged(Exception):
    """An offset points outside the file (the message says which part)."""


class _Table:
    """A flatbuffer table at ``pos``: its fields found through its vtable, bounds-checked."""

    def __init__(self, data: bytes, pos: int, what: str) -> None:
        size = len(data)
        if pos < 0 or pos + 4 > size:
            raise _Damaged(f"its {what} is outside the file")
        vtable = pos - _i32(data, pos)
        if vtable < 0 or vtable + 4 > size:
            raise _Damaged(f"its {what}'s vtable is outside the file")
        self.vtable_bytes, self.table_bytes = _u16(data, vtable), _u16(data, vtable + 2)
        if (self.vtable_bytes < 4 or self.vtable_bytes % 2 or vtable + self.vtable_bytes > size
                or pos + self.table_bytes > size):
            raise _Damaged(f"its {what} is damaged")
        self.data, self.pos, self.vtable, self.what = data, pos, vtable, what

    def field(self, index: int) -> int:
        """The field's position in the file, or 0 when absent."""
        slot = 4 + 2 * index
        if slot + 2 > self.vtable_bytes:
            return 0
        offset = _u16(self.data, self.vtable + slot)
        if offset == 0:
            return 0
        if offset + 4 > self.table_bytes:
            raise _Damaged(f"its {self.what} is damaged")
        return self.pos + offset

    def u32(self, index: int) -> int:
        at = self.field(index)
        return _u32(self.data, at) if at else 0

    def _vector(self, index: int, name: str) -> tuple[int, int]:
        """(where the vector's elements start, how many): (0, 0) when the field is absent.
        Its elements are 4 bytes each (offsets to tables, or int32s), all inside the file."""
        at = self.field(index)
        if not at:
            return 0, 0
        start = at + _u32(self.data, at)
        if start + 4 > len(self.data):
            raise _Damaged(f"its {name} list is outside the file")
        count = _u32(self.data, start)
        if start + 4 + 4 * count > len(self.data):
            raise _Damaged(f"its {name} list is damaged")
        return start + 4, count

    def count(self, index: int, name: str) -> int:
        """How many elements the vector field has (0 when absent)."""
        return self._vector(index, name)[1]

    def tables(self, index: int, name: str) -> list[int]:
        """Positions of the tables a vector of tables points to."""
        first, count = self._vector(index, name)
        return [p + _u32(self.data, p) for p in range(first, first + 4 * count, 4)]


def tflite_problem(data: bytes) -> str | None:
    """None when ``data`` is structurally a TFLite model flatbuffer, else why not, in words
    (pure; never raises on any input). Checked: the identifier, the schema version, at least
    one buffer, at least one subgraph, and each subgraph's tensors, inputs and outputs lists
    (TensorFlow's analyzer crashes the process on a model without them)."""
    size = len(data)
    if size == 0:
        return "the file is empty"
    if size < 16:
        return f"{size} bytes is too short for a TFLite model"
    if data[4:8] != FILE_IDENTIFIER:
        return f"not a TFLite model: no {FILE_IDENTIFIER.decode()} file identifier at byte 4"
    try:
        model = _Table(data, _u32(data, 0), "root table")
        version = model.u32(_MODEL_VERSION)
        if version != SCHEMA_VERSION:
            return f"TFLite schema version {version}, expected {SCHEMA_VERSION}"
        if not model.count(_MODEL_BUFFERS, "buffer"):
            return "not a TFLite model: it has no buffers"
        subgraphs = model.tables(_MODEL_SUBGRAPHS, "subgraph")
        if not subgraphs:
            return "not a TFLite model: it has no subgraphs"
        for i, pos in enumerate(subgraphs):
            sub = _Table(data, pos, f"subgraph {i}")
            for index, name in ((_SUBGRAPH_TENSORS, "tensor"), (_SUBGRAPH_INPUTS, "input"),
                                (_SUBGRAPH_OUTPUTS, "output")):
                if not sub.count(index, f"subgraph {i} {name}"):
                    return f"not a TFLite model: subgraph {i} has no {name}s"
    except _Damaged as exc:
        return f"not a TFLite model: {exc}"
    return None


def check_tflite_file(path: Path, *, location: SourceLocation | None = None) -> None:
    """UserInputError (at ``location``, else naming the file) unless ``path`` is a regular file
    holding a TFLite model flatbuffer (:func:`tflite_problem`). Opened without blocking."""
    where = location or SourceLocation(str(path), None, None)
    try:
        with open_regular(path) as f:
            data = f.read(MAX_MODEL_BYTES + 1)
    except UserInputError as exc:
        raise UserInputError(f"{path}: {exc.message}", where) from None
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read: {exc.strerror or exc}", where) from None
    if len(data) > MAX_MODEL_BYTES:
        raise UserInputError(f"{path}: larger than a TFLite model can be ({MAX_MODEL_BYTES} bytes)", where)
    problem = tflite_problem(data)
    if problem is not None:
        raise UserInputError(f"{path}: {problem}", where)
