"""Segment models for the split planner (issue 23), generated with TensorFlow.

A zoo model whose layer units (perflab.zoo.variants) form a chain — each unit reads only the
previous unit's output, as in ESPCN (FSRCNN's anchor, an add of the LR input before the pixel
shuffle, is a second input: not cut yet) — is cut into **segments**: units [a, b) as a
TFLite model of their own, in one precision. The input of segment [a, b) is unit a−1's
activation (the LR frame for a = 0), its output unit b−1's. A plan (which unit runs in which
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
import io
import itertools
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perflab.core.types import ModelArtifact
from perflab.errors import MissingDependencyError, ModelError, UserInputError
from perflab.zoo.variants import LayerUnit, cache_root, tensorflow_missing

SEGMENTS_FORMAT = 1
PRECISIONS = ("fp32", "int8")
CHAIN_FAMILIES = ("espcn",)  # FSRCNN's anchor (LR input added before the shuffle) makes it a DAG


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
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is no progress
        from perflab.zoo import variants

        model = variants._keras_model(self.art.family, self.art.scale)
        shipped = self.art.path.with_name(self.art.path.name.replace(f"_{self.art.variant}.tflite", "_fp32.tflite"))
        variants._load_shipped_weights(model, shipped)
        units = variants._units(model)
        for prev, u in itertools.pairwise(units):  # a chain: each unit reads its predecessor only
            first = model.get_layer(u.layers[0])
            if not (variants._single_input(first) and variants._consumes(first, model.get_layer(prev.layers[-1]))):
                raise UserInputError(f"{self.art.name}: unit {u.name} does not read only {prev.name}; "
                                     "not a chain the planner can cut")
        self._model, self._units = model, units
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "units.txt").write_text("\n".join(u.name for u in units) + "\n", encoding="utf-8")

    def _sub(self, start: int, end: int) -> Any:
        import keras

        assert self._units is not None
        first = self._model.get_layer(self._units[start].layers[0])
        channels = int(first.input.shape[-1])
        inp = keras.Input(shape=(None, None, channels), batch_size=1, name=f"in{start:02d}")
        x = inp
        for u in self._units[start:end]:
            for name in u.layers:
                x = self._model.get_layer(name)(x)
        return keras.Model(inp, x, name=f"{self.art.name}_seg{start:02d}_{end:02d}")

    def _calibration(self, start: int) -> Callable[[], Any]:
        import numpy as np

        from perflab.zoo.data import representative_lr

        patches = [batch[0] for batch in representative_lr(self.art.scale, n=self._patches)()]
        prefix = self._sub(0, start) if start > 0 else None
        acts = [np.asarray(prefix(p) if prefix is not None else p, dtype=np.float32) for p in patches]

        def gen() -> Any:
            for a in acts:
                yield [a]

        return gen

    def _convert(self, key: SegmentKey) -> bytes:
        import tensorflow as tf

        model = self._sub(key.start, key.end)
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if key.precision == "int8":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = self._calibration(key.start)
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            # input and output stay float32: the segment quantises and dequantises at its seams
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                # "Statistics for quantized inputs were expected": the float input needs none
                warnings.simplefilter("ignore", UserWarning)
                return bytes(conv.convert())
        except Exception as exc:  # the converter raises many unrelated types
            raise ModelError(f"{self.art.name}: converting segment [{key.start}, {key.end}) to "
                             f"{key.precision} failed: {exc}") from exc
