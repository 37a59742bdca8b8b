"""TFLite model analyzer: op list and GPU-delegate compatibility, as a structure.

``tf.lite.experimental.Analyzer.analyze(model_path=..., gpu_compatibility=True)`` prints its
report to stdout and returns None; :func:`run_analyzer` captures that text and
:func:`parse_analyzer_output` (pure) turns it into an :class:`AnalyzerReport`.

Report format (TensorFlow ``lite/python/analyzer_wrapper/model_analyzer.cc``): per subgraph a
line ``Subgraph#i name(T#..) -> [T#..]``, one ``  Op#j NAME(inputs) -> [outputs]`` line per op;
with the GPU check, an incompatible op is followed by ``GPU COMPATIBILITY WARNING: <reason>``
and the subgraph by ``GPU COMPATIBILITY WARNING: Subgraph#i has GPU delegate compatibility
issues at nodes 0, 3 ...``; a clean model ends with ``Your model looks compatible with GPU
delegate on TFLite runtime version X`` (older builds: "compatibile ... with TFLite runtime").

Caveat measured here: the analyzer in the TensorFlow 2.21 pip wheel reported a model with a
Flex (TF Select) op, CUMSUM, TOPK_V2 and FLOOR_MOD as "compatible" — its GPU verdict is weak
evidence. perflab adds one certain rule of its own: Flex ops are never delegated to the GPU
(``source="perflab"``). A phone's delegate log (``Replacing N out of M node(s)``) is the truth.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from perflab.core.names import one_line
from perflab.core.native_output import native_stderr_captured
from perflab.core.tflite_file import check_tflite_file
from perflab.errors import ModelError, UserInputError

_SUBGRAPH = re.compile(r"^Subgraph#(\d+)\b")
_OP = re.compile(r"^\s+Op#(\d+) ([A-Za-z0-9_]+)\((.*)\) -> \[(.*)\]\s*$")
_WARN = re.compile(r"^GPU COMPATIBILITY WARNING: (.*)$")
_SUMMARY = re.compile(r"^Subgraph#(\d+) has GPU delegate compatibility issues at nodes ([\d,\s]+?)"
                      r"(?: (?:with|on) TFLite runtime version (\S+))?\s*$")
_OK = re.compile(r"^Your model looks compatib(?:i)?le with GPU delegate (?:with|on) TFLite runtime version ([^\s.]+(?:\.[^\s.]+)*)")
_SIZE = re.compile(r"^\s*Model size:\s+(\d+) bytes")
_TENSOR = re.compile(r"T#(\d+)")


@dataclass(frozen=True)
class AnalyzerOp:
    subgraph: int
    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class GpuIssue:
    subgraph: int
    op_index: int
    op_name: str
    reason: str
    source: str  # "tflite analyzer" or "perflab"


@dataclass
class AnalyzerReport:
    ops: list[AnalyzerOp] = field(default_factory=list)
    gpu_checked: bool = False
    gpu_compatible: bool | None = None  # None: GPU check not run
    gpu_issues: list[GpuIssue] = field(default_factory=list)
    runtime_version: str | None = None
    model_size_bytes: int | None = None

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.name] = counts.get(op.name, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "ops": [op.name for op in self.ops],
            "op_counts": self.op_counts(),
            "gpu_checked": self.gpu_checked,
            "gpu_compatible": self.gpu_compatible,
            "gpu_issues": [asdict(i) for i in self.gpu_issues],
            "runtime_version": self.runtime_version,
            "model_size_bytes": self.model_size_bytes,
        }


def _warning(rep: AnalyzerReport, msg: str, last_op: AnalyzerOp | None, summary_nodes: set[tuple[int, int]]) -> None:
    """One GPU-compatibility warning: a subgraph summary (nodes listed) or the last op's reason."""
    rep.gpu_checked = True
    if s := _SUMMARY.match(msg):
        nodes = [int(n) for n in s.group(2).replace(",", " ").split()]
        summary_nodes |= {(int(s.group(1)), n) for n in nodes}
        rep.runtime_version = s.group(3) or rep.runtime_version
        rep.gpu_compatible = False
    elif last_op is not None:
        rep.gpu_issues.append(GpuIssue(last_op.subgraph, last_op.index, last_op.name, msg, "tflite analyzer"))
        rep.gpu_compatible = False


def parse_analyzer_output(text: str) -> AnalyzerReport:
    """Parse the analyzer's printed report (pure)."""
    rep = AnalyzerReport()
    subgraph = 0
    last_op: AnalyzerOp | None = None
    summary_nodes: set[tuple[int, int]] = set()
    in_ops = False
    for line in text.splitlines():
        if (m := _SUBGRAPH.match(line)) and " has GPU delegate" not in line:
            subgraph, in_ops, last_op = int(m.group(1)), True, None
            continue
        if in_ops and (m := _OP.match(line)):
            last_op = AnalyzerOp(subgraph, int(m.group(1)), m.group(2),
                                 tuple(int(t) for t in _TENSOR.findall(_strip_data(m.group(3)))),
                                 tuple(int(t) for t in _TENSOR.findall(m.group(4))))
            rep.ops.append(last_op)
            continue
        if m := _WARN.match(line.strip()):
            _warning(rep, m.group(1).strip(), last_op, summary_nodes)
            continue
        if line.startswith("Tensors of Subgraph#"):
            in_ops, last_op = False, None
            continue
        if m := _OK.match(line.strip()):
            rep.gpu_checked, rep.gpu_compatible = True, rep.gpu_compatible is not False
            rep.runtime_version = m.group(1).rstrip(".")
            continue
        if m := _SIZE.match(line):
            rep.model_size_bytes = int(m.group(1))
    # nodes named only in a subgraph summary (no per-op reason printed)
    named = {(i.subgraph, i.op_index) for i in rep.gpu_issues}
    by_key = {(op.subgraph, op.index): op for op in rep.ops}
    for key in sorted(summary_nodes - named):
        op = by_key.get(key)
        rep.gpu_issues.append(GpuIssue(key[0], key[1], op.name if op else "?", "listed as incompatible", "tflite analyzer"))
    # perflab's own certain rule
    for op in rep.ops:
        if op.name.startswith("Flex") and (op.subgraph, op.index) not in {(i.subgraph, i.op_index) for i in rep.gpu_issues}:
            rep.gpu_issues.append(GpuIssue(op.subgraph, op.index, op.name,
                                           "TF Select (Flex) op: runs in the TensorFlow kernel library, never on a "
                                           "GPU delegate", "perflab"))
    if rep.gpu_checked and rep.gpu_issues:
        rep.gpu_compatible = False
    return rep


def _strip_data(arg_text: str) -> str:
    """Drop inline constant data (``T#8[0, 1, ...]``) so only tensor ids remain."""
    return re.sub(r"\[[^\]]*\]", "", arg_text)


def run_analyzer(model_path: Path, gpu_compatibility: bool = True) -> str:
    """Run TensorFlow's analyzer (imports TensorFlow) and return what it printed. A file that
    is missing or not a TFLite flatbuffer is refused before TensorFlow sees it (its C++ side
    crashes on some); that, and anything the analyzer raises on a damaged model, is a
    ModelError."""
    try:
        check_tflite_file(model_path)
    except UserInputError as exc:
        raise ModelError(str(exc)) from None
    with native_stderr_captured():
        import tensorflow as tf

    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            tf.lite.experimental.Analyzer.analyze(model_path=str(model_path), gpu_compatibility=gpu_compatibility)
    except Exception as exc:  # the analyzer's C++ side raises anything (UnicodeDecodeError, RuntimeError)
        raise ModelError(f"{model_path}: the TFLite analyzer cannot read this model: {type(exc).__name__}: "
                         f"{one_line(str(exc), 200)}") from exc
    return buf.getvalue()


def analyze_model(model_path: Path, gpu_compatibility: bool = True) -> AnalyzerReport:
    return parse_analyzer_output(run_analyzer(model_path, gpu_compatibility))
