"""Segment models for the split planner (issue 23), generated with TensorFlow.

A zoo model whose layer units (perflab.zoo.variants) form a chain — each unit reads only the
previous unit's output (or the LR frame: FSRCNN's anchor adds it before the pixel shuffle), as in
ESPCN and FSRCNN — is cut into **segments**: units [a, b) as a
TFLite model of their own, in one precision. The input of segment [a, b) is unit a−1's
activation (the LR frame for a = 0) — plus the LR frame as a second input named ``lr`` where a
unit of it reads the frame (the anchor) — its output unit b−1's. A plan (which unit runs in which
precision) runs as its segments in sequence, one interpreter each.

Every segment has float32 input and output tensors: an ``int8`` segment is full-integer inside
and quantises its input and dequantises its output itself (the converter's QUANTIZE and
DEQUANTIZE ops), calibrated on the fp32 model's activations at its input over the zoo's
representative LR patches. So the cost of a seam between an fp32 and an int8 segment is
measured, not assumed: it is in the segments' own times and in the hop between interpreters.

Segments are cached like variants (``<cache>/segments/<model>-<sha of the shipped fp32>-v…/``);
reading a cached segment needs no TensorFlow, making one does (MissingDependencyError without it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perflab.core.native_output import NativeOutput, native_stderr_captured
from perflab.core.types import ModelArtifact
from perflab.errors import MissingDependencyError, ModelError, UserInputError
from perflab.zoo.variants import LayerUnit, cache_root, tensorflow_missing

SEGMENTS_FORMAT = 1
PRECISIONS = ("fp32", "int8")
#: the zoo's learned SR families (bicubic is a fixed filter: nothing to split)
CHAIN_FAMILIES = ("espcn", "fsrcnn", "abpn", "repvgg", "teacher", "student")


@dataclass(frozen=True)
class SegmentKey:
    start: int
    end: int
    precision: str

    @property
    def file(self) -> str:
        return f"seg{self.start:02d}-{self.end:02d}_{self.precision}.tflite"


def segment_folder(art: ModelArtifact, root: Path | None = None) -> Path:
    base = root or cache_root().parent / "segments"
    return base / f"{art.name}-{art.sha256[:12]}-v{SEGMENTS_FORMAT}"


class SegmentMaker:
    """Builds (or finds) the segments of one zoo chain model; TensorFlow loads on first need."""

    def __init__(self, art: ModelArtifact, *, root: Path | None = None, calibration_patches: int = 16,
                 check: Callable[[], None] | None = None) -> None:
        if art.family not in CHAIN_FAMILIES:
            raise UserInputError(f"{art.name}: the split planner cuts chain models only "
                                 f"({', '.join(CHAIN_FAMILIES)}); {art.family!r} is not one")
        self.art = art
        self.folder = segment_folder(art, root)
        self._patches = calibration_patches
        self._check = check or (lambda: None)
        self._model: Any = None
        self._units: list[LayerUnit] | None = None

    # the unit names are stored beside the segments so that a cache-only machine knows them
    def units(self) -> list[str]:
        names = self.folder / "units.txt"
        if names.is_file():
            return names.read_text(encoding="utf-8").split()
        self._load()
        assert self._units is not None
        return [u.name for u in self._units]

    def path(self, key: SegmentKey) -> Path:
        """The segment's file, generated when not cached."""
        if key.precision not in PRECISIONS:
            raise UserInputError(f"segment precision {key.precision!r}: expected one of {', '.join(PRECISIONS)}")
        p = self.folder / key.file
        if p.is_file():
            return p
        self._load()
        assert self._units is not None
        if not 0 <= key.start < key.end <= len(self._units):
            raise UserInputError(f"segment [{key.start}, {key.end}) is outside {len(self._units)} units")
        self._check()
        data = self._convert(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".seg-", dir=self.folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)  # the cache holds complete files only
        return p

    def paths(self, keys: Sequence[SegmentKey]) -> list[Path]:
        return [self.path(k) for k in keys]

    # ------------------------------------------------------------------ TensorFlow side

    def _load(self) -> None:
        if self._model is not None:
            return
        why = tensorflow_missing()
        if why:
            raise MissingDependencyError("tensorflow", why)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # what TensorFlow still logs after start-up
        from perflab.zoo import variants

        shipped = self.art.path.with_name(self.art.path.name.replace(f"_{self.art.variant}.tflite", "_fp32.tflite"))
        # TensorFlow's start-up and LiteRT's delegate lines are not perflab's output
        with native_stderr_captured():
            model = variants._keras_model(self.art.family, self.art.scale)
            variants._load_shipped_weights(model, shipped)
            _load_shipped_prelu(model, shipped)
            _check_rebuild(model, shipped)
        units = chain_units(model, variants._units(model))
        self._model, self._units = model, units
        for k in range(len(units)):  # every unit must read only its predecessor (or the LR frame)
            try:
                self._sub(k, k + 1)
            except ModelError as exc:
                raise UserInputError(f"{self.art.name}: {exc}; not a chain the planner can cut") from None
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "units.txt").write_text("\n".join(u.name for u in units) + "\n", encoding="utf-8")

    def _sub(self, start: int, end: int) -> Any:
        """Units [start, end) as a Keras model: input ``in<start>`` (unit start−1's activation; the
        LR frame ``lr`` when start = 0), plus ``lr`` where a later unit reads the LR frame (FSRCNN's
        anchor). ModelError when a layer reads anything else (not a chain)."""
        import keras

        assert self._units is not None
        model = self._model
        lr = keras.Input(shape=(None, None, 3), batch_size=1, name="lr")
        mapping: dict[int, Any] = {id(model.inputs[0]): lr}
        act = lr
        if start > 0:
            prev = model.get_layer(self._units[start - 1].layers[-1]).output
            act = keras.Input(shape=(None, None, int(prev.shape[-1])), batch_size=1, name=f"in{start:02d}")
            mapping[id(prev)] = act
        reads_lr = False
        for u in self._units[start:end]:
            for name in u.layers:
                la = model.get_layer(name)
                ins = list(la._inbound_nodes[0].input_tensors)
                if any(id(t) not in mapping for t in ins):
                    raise ModelError(f"unit {u.name} ({name}) reads a tensor from outside units [{start}, {end})")
                reads_lr = reads_lr or any(t is model.inputs[0] for t in ins)
                args = [mapping[id(t)] for t in ins]
                mapping[id(la.output)] = la(args[0] if len(args) == 1 else args)
        out = mapping[id(model.get_layer(self._units[end - 1].layers[-1]).output)]
        inputs = [act, lr] if start > 0 and reads_lr else [act]
        return keras.Model(inputs, out, name=f"{self.art.name}_seg{start:02d}_{end:02d}")

    def _calibration(self, start: int, end: int) -> Callable[[], Any]:
        import numpy as np

        from perflab.zoo.data import representative_lr

        patches = [np.asarray(batch[0], dtype=np.float32)
                   for batch in representative_lr(self.art.scale, n=self._patches)()]
        prefix = self._sub(0, start) if start > 0 else None
        sub = self._sub(start, end)
        names = [str(t.name) for t in sub.inputs]  # the signature's input names: in<start>, lr
        with warnings.catch_warnings():  # Keras: a bare tensor for the input named "lr" (it is that input)
            warnings.simplefilter("ignore", UserWarning)
            acts = [np.asarray(prefix(p) if prefix is not None else p, dtype=np.float32) for p in patches]

        def gen() -> Any:
            for a, p in zip(acts, patches, strict=True):
                # by name: the converter's order of two inputs is not the Keras model's
                yield dict(zip(names, [a, p], strict=False)) if len(names) == 2 else [a]

        return gen

    def _convert(self, key: SegmentKey) -> bytes:
        import tensorflow as tf

        model = self._sub(key.start, key.end)
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if key.precision == "int8":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = self._calibration(key.start, key.end)
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            # input and output stay float32: the segment quantises and dequantises at its seams
        native = NativeOutput()
        try:
            with (contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(),
                  native_stderr_captured() as native):
                # "Statistics for quantized inputs were expected": the float input needs none
                warnings.simplefilter("ignore", UserWarning)
                return bytes(conv.convert())
        except Exception as exc:  # the converter raises many unrelated types
            raise ModelError(f"{self.art.name}: converting segment [{key.start}, {key.end}) to "
                             f"{key.precision} failed: {exc}{native.said_by('the converter')}") from exc


REBUILD_TOLERANCE = 1e-4  # max |Keras rebuild − shipped .tflite| on a random frame in [0, 1]


def _check_rebuild(model: Any, shipped: Path) -> None:
    """The Keras rebuild with the shipped weights must compute what the shipped fp32 model does
    (segments of a model that differs would plan a different model): ModelError if not (the
    model is not planned, the others still are)."""
    import numpy as np

    from perflab.zoo.infer import upscale

    lr = np.random.default_rng(0).random((12, 16, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mine = np.asarray(model(lr[None]), dtype=np.float32)[0]
    diff = float(np.abs(mine - upscale(shipped, lr, threads=1)).max())
    if not diff <= REBUILD_TOLERANCE:
        raise ModelError(f"{shipped.name}: perflab's rebuild of the model differs from the shipped file by up "
                         f"to {diff:.3g} on a test frame; its segments would be another model")


def _foreign_reads(model: Any, units: Sequence[LayerUnit]) -> list[set[tuple[int, int]]]:
    """Per unit: (producing unit, tensor id) of every tensor it reads from another unit (the LR
    frame left out). ModelError when a layer reads a tensor no unit makes."""
    owner = {id(model.get_layer(name).output): i for i, u in enumerate(units) for name in u.layers}
    reads: list[set[tuple[int, int]]] = [set() for _ in units]
    for i, u in enumerate(units):
        for name in u.layers:
            for t in model.get_layer(name)._inbound_nodes[0].input_tensors:
                if t is model.inputs[0]:
                    continue
                j = owner.get(id(t))
                if j is None:
                    raise ModelError(f"{model.name}: layer {name} reads a tensor no unit makes")
                if j != i:
                    reads[i].add((j, id(t)))
    return reads


def chain_units(model: Any, units: Sequence[LayerUnit]) -> list[LayerUnit]:
    """The profiling units (one conv each, perflab.zoo.variants) merged into blocks the model can
    be cut between: a cut before unit b holds when no layer from b on reads a tensor of units
    before b other than unit b−1's output (or the LR frame). A residual block (the teacher's
    conv, conv, add of the block's input) becomes one unit named ``first..last``; a chain
    (ESPCN, FSRCNN's anchor reads only the frame) keeps every unit. ModelError when a layer reads
    a tensor no unit makes."""
    reads = _foreign_reads(model, units)
    last_out = [id(model.get_layer(u.layers[-1]).output) for u in units]
    n = len(units)
    cuts = [0] + [b for b in range(1, n)
                  if all(j >= b or (j == b - 1 and tid == last_out[b - 1]) for i in range(b, n) for j, tid in reads[i])]
    cuts.append(n)
    out: list[LayerUnit] = []
    for k, (a, b) in enumerate(itertools.pairwise(cuts)):
        group = units[a:b]
        if len(group) == 1:
            out.append(dataclasses.replace(group[0], index=k))
            continue
        out.append(LayerUnit(index=k, name=f"{group[0].name}..{group[-1].name}",
                             layers=tuple(x for u in group for x in u.layers), kind="merged",
                             macs_per_lr_pixel=sum(u.macs_per_lr_pixel for u in group), duplicable=False))
    return out


def _load_shipped_prelu(model: Any, tflite_path: Path) -> int:
    """Copy PReLU slopes of the shipped fp32 .tflite into ``model`` by layer name (the variants'
    loader copies convs only; timing does not care, but the planner measures quality, so a
    segment must compute what the shipped model computes). A slope is the constant tensor named
    ``…/<layer>_1/…`` with the weight's shape. Returns how many were loaded."""
    import keras
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    if not tflite_path.is_file():
        return 0
    interp = Interpreter(model_path=str(tflite_path))
    tensors = interp.get_tensor_details()
    loaded = 0
    for la in model.layers:
        if not isinstance(la, keras.layers.PReLU):
            continue
        (want,) = [tuple(w.shape) for w in la.get_weights()]
        tag = f"/{la.name}_1/"
        for t in tensors:
            if tag in str(t["name"]) and tuple(int(x) for x in t["shape"]) == want:
                try:
                    value = np.asarray(interp.get_tensor(t["index"]), dtype=np.float32)
                except ValueError:  # an activation, not a constant
                    continue
                la.set_weights([value])
                loaded += 1
                break
    return loaded
