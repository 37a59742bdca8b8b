"""The model run as consecutive one-op sub-models, each timed: how the emulated benchmark_model
measures per-op time (LiteRT's Python interpreter cannot time single ops of a whole graph).

:func:`op_models` cuts a single-subgraph TFLite flatbuffer into one model per operator (the
op, its tensors, the constant buffers it reads; its activation inputs become the sub-model's
inputs). :class:`SegmentedModel` runs them in execution order, each fed the tensors earlier
segments produced, and times every segment on the phone's clock (:mod:`.clock`); an injected
layer delay
(:mod:`.delays`) is spent inside its ops' segments, so the op profile, the kernel trace and the
whole-invoke time all *measure* it rather than being told it. The whole model's interpreter is
kept for the outputs (``--output_filepath``), so what the tool writes is the whole graph's
result, byte for byte as before."""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perflab.core.native_output import native_stderr_captured
from perflab.emulator.benchmark_model import clock
from perflab.emulator.benchmark_model.model import interpreter_options


def op_models(model_bytes: bytes) -> list[bytes] | None:
    """One flatbuffer per operator of the model's only subgraph, in execution order; None when
    the model has several subgraphs (control flow), which this does not cut."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    m = fb.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    if not m.subgraphs or len(m.subgraphs) != 1:
        return None
    sg = m.subgraphs[0]
    out: list[bytes] = []
    for op in sg.operators or []:
        ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        inter = [int(i) for i in (op.intermediates if op.intermediates is not None else [])]
        remap: dict[int, int] = {}
        tensors: list[Any] = []
        buffers: list[Any] = [fb.BufferT()]
        graph_inputs: list[int] = []
        for i in ins + outs + inter:
            if i < 0 or i in remap:
                continue
            t = copy.copy(sg.tensors[i])
            buf = m.buffers[t.buffer] if m.buffers and 0 <= t.buffer < len(m.buffers) else None
            constant = buf is not None and buf.data is not None and len(buf.data) > 0
            if constant:
                buffers.append(buf)
                t.buffer = len(buffers) - 1
            else:
                t.buffer = 0
            remap[i] = len(tensors)
            tensors.append(t)
            if not constant and i in ins and i not in outs and not t.isVariable:
                graph_inputs.append(remap[i])
        sub_op = copy.copy(op)
        sub_op.inputs = [remap[i] if i >= 0 else -1 for i in ins]
        sub_op.outputs = [remap[i] for i in outs]
        sub_op.intermediates = [remap[i] for i in inter] if op.intermediates is not None else None
        sub = fb.SubGraphT()
        sub.tensors, sub.operators = tensors, [sub_op]
        sub.inputs, sub.outputs = graph_inputs, [remap[i] for i in outs]
        sub.name = sg.name
        model = fb.ModelT()
        model.version, model.operatorCodes, model.description = m.version, m.operatorCodes, m.description
        model.subgraphs, model.buffers = [sub], buffers
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        out.append(bytes(builder.Output()))
    return out


def _cache_dir(model_bytes: bytes) -> Path:
    digest = hashlib.sha256(model_bytes).hexdigest()[:32]
    return Path(tempfile.gettempdir()) / "perflab-emu-segments" / digest


def cached_op_models(model_bytes: bytes) -> list[bytes] | None:
    """:func:`op_models`, kept on the host by the model's hash: the schema module takes most of a
    second to import, and a differential pass starts the tool dozens of times on few models."""
    d = _cache_dir(model_bytes)
    done = d / "count"
    try:
        n = int(done.read_text())
        return [(d / f"{k}.tflite").read_bytes() for k in range(n)]
    except (OSError, ValueError):
        pass
    blobs = op_models(model_bytes)
    if blobs is None:
        return None
    try:
        d.mkdir(parents=True, exist_ok=True)
        for k, b in enumerate(blobs):
            tmp = d / f".{k}.{os.getpid()}"
            tmp.write_bytes(b)
            tmp.replace(d / f"{k}.tflite")
        tmp = d / f".count.{os.getpid()}"
        tmp.write_text(str(len(blobs)))
        tmp.replace(done)
    except OSError:
        pass  # no cache: cut again next time
    return blobs


@dataclass
class _Segment:
    interp: Any
    inputs: list[tuple[int, int]]  # (sub-model tensor index, whole-model tensor index)
    outputs: list[tuple[int, int]]


@dataclass
class OpTimes:
    """Per op: its measured time (ms) in the first invoke of a series and the sum over all."""

    first_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    count: int = 0

    def add(self, per_op_ms: list[float]) -> None:
        if self.count == 0:
            self.first_ms = list(per_op_ms)
            self.total_ms = [0.0] * len(per_op_ms)
        self.total_ms = [a + b for a, b in zip(self.total_ms, per_op_ms, strict=True)]
        self.count += 1

    def avg_ms(self) -> list[float]:
        return [t / self.count for t in self.total_ms] if self.count else []


class SegmentedModel:
    """The model's ops as timed segments (see the module's doc)."""

    def __init__(self, segments: list[_Segment], main: Any) -> None:
        self._segments = segments
        self._main = main
        self._inputs = [int(d["index"]) for d in main.get_input_details()]

    @property
    def n_ops(self) -> int:
        return len(self._segments)

    @classmethod
    def build(cls, model_bytes: bytes, main: Any, threads: int) -> SegmentedModel | None:
        """The segments of the whole model ``main`` (already resized, allocated and fed: each
        segment is resized to the tensors the one before it produced, by running the chain once).
        None when the model cannot be cut (several subgraphs, an op LiteRT will not run alone).

        Every segment runs on the host's fast kernels (LiteRT's default delegate, XNNPACK), with
        or without ``--use_xnnpack``: the phone's CPU time for an op is what the host takes to
        compute it, and the host's builtin kernels (what the whole-model interpreter ``main`` runs
        without XNNPACK, for the outputs) took about 5x as long, so the host's drift and the cache
        it loses between a delayed layer's spin and the next layer were 5x as many milliseconds
        of a layer (docs/emulator.md, "The phone's CPU time"). An op on an accelerator whose
        cost the profile sets is computed the same way, its host time then off the phone's clock
        (:meth:`invoke`'s floors)."""
        from ai_edge_litert.interpreter import Interpreter

        try:
            blobs = cached_op_models(model_bytes)
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            return None
        whole_ops = [op for op in main._get_ops_details() if op["op_name"] != "DELEGATE"]
        if blobs is None or len(blobs) != len(whole_ops):
            return None
        values = {i: main.get_tensor(i) for i in (int(d["index"]) for d in main.get_input_details())}
        segments: list[_Segment] = []
        try:
            # the host's LiteRT announces the XNNPACK delegate it makes for the segments on the
            # tool's stderr; a tool run without --use_xnnpack made none
            with native_stderr_captured():
                for blob, op in zip(blobs, whole_ops, strict=True):
                    it = Interpreter(model_content=blob, **interpreter_options(threads, True))
                    sub_in = [int(d["index"]) for d in it.get_input_details()]
                    sub_out = [int(d["index"]) for d in it.get_output_details()]
                    whole_in = list(dict.fromkeys(int(i) for i in op["inputs"] if int(i) >= 0 and int(i) in values))
                    whole_out = [int(i) for i in op["outputs"]]
                    if len(sub_in) != len(whole_in) or len(sub_out) != len(whole_out):
                        return None
                    for s, w in zip(sub_in, whole_in, strict=True):
                        it.resize_tensor_input(s, list(values[w].shape), strict=False)
                    it.allocate_tensors()
                    seg = _Segment(it, list(zip(sub_in, whole_in, strict=True)), list(zip(sub_out, whole_out, strict=True)))
                    for s, w in seg.inputs:
                        it.set_tensor(s, values[w])
                    it.invoke()
                    for s, w in seg.outputs:
                        values[w] = it.get_tensor(s)
                    segments.append(seg)
        except (ValueError, RuntimeError, KeyError):
            return None
        return cls(segments, main)

    def invoke(self, delays_s: list[float], floors_s: Sequence[float] | None = None) -> list[tuple[float, float]]:
        """One invoke of the model, segment by segment (``delays_s``: the injected delay spent
        inside each op; ``floors_s``: the least each op lasts, its cost on the processor the
        phone runs it on, :mod:`.handover`); per op its (begin, end) on the phone's clock (s,
        :mod:`.clock`)."""
        values = {i: self._main.get_tensor(i) for i in self._inputs}
        spans: list[tuple[float, float]] = []
        floors = floors_s if floors_s is not None else [0.0] * len(self._segments)
        due_s: float | None = None  # when the previous layer on the accelerator was done
        for seg, delay_s, floor_s in zip(self._segments, delays_s, floors, strict=True):
            begin = clock.now_s()
            if floor_s > 0 and due_s is not None:
                # the accelerator runs its layers back to back: the host feeding this one is
                # the emulator's work, off the clock like the layer's own computing below
                clock.hide(begin - due_s)
                begin = due_s
            due_s = None
            it = seg.interp
            for s, w in seg.inputs:
                it.set_tensor(s, values[w])
            it.invoke()
            for s, w in seg.outputs:
                # a view of the segment's output buffer (valid until this segment runs again,
                # after every later segment has read it): one copy per edge, into the reader
                values[w] = it.tensor(s)()
            end = None
            if floor_s > 0:  # on an accelerator: the layer lasts its cost there, not the host's time
                clock.hide(clock.now_s() - begin)
                end = clock.spend_until(begin + floor_s)
                due_s = begin + floor_s
            if delay_s > 0:
                clock.spend(delay_s)
                end = due_s = None
            spans.append((begin, end if end is not None else clock.now_s()))
        return spans
