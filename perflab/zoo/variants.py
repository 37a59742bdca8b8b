"""Model variants for the differential (virtual-layer) profiler, generated with TensorFlow.

For a zoo model (family × scale × precision) this module rebuilds the Keras graph with the
zoo's builders (perflab.zoo.models, perflab.zoo.bicubic), loads the weights of the shipped fp32
``.tflite`` into it, cuts it into *layer units* and writes ``.tflite`` variants that a device
times exactly like a normal cell:

* **prefix** variants — the first k units (the model cut after unit k; its output is that
  unit's activation). Unit k's cost is what prefix k adds to prefix k−1.
* **duplicate** variants ("calibrated dummy layer") — the whole model with a copy of a target
  unit inserted right after it. Only units whose output has the shape of their input qualify
  (a 3×3 conv C→C with its activation): the copy does exactly the target's work, so the
  dummy's cost is known to equal the target's and the variant over-determines the system.

Each variant is described by ``counts``: how many times it runs each unit. The solver
(perflab.tracing.differential, pure) takes the counts and the measured times.

A unit is a Conv2D with the element-wise layers that follow it up to the next conv; the
layers after the last conv (anchor, pixel shuffle, clip) are the ``tail`` unit. Layer 1 also
carries the per-invoke fixed cost (input handling, the interpreter call) — there is no
variant without any layer to separate it. ``max_layers`` merges neighbouring units so that a
deep model needs at most that many prefix variants.

Variants are cached on disk (``$PERFLAB_CACHE_DIR`` or ``$XDG_CACHE_HOME/perflab`` or
``~/.cache/perflab``, then ``variants/<model>_<precision>-<sha of the shipped file>-…``): a
manifest.json next to the files. Reading a complete cache needs no TensorFlow; generating
needs the ``build`` (or ``dev``) extra, and without it :func:`variant_set` raises
MissingDependencyError (the caller records the differential numbers as missing, with why).
``python -m perflab.zoo.variants --family espcn --scale 2 --variant fp32`` fills the cache
ahead (e.g. on a build machine; copy the folder to machines without TensorFlow).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perflab.core.native_output import native_stderr_captured
from perflab.core.paths import ENV_CACHE_DIR, cache_dir
from perflab.core.types import ModelArtifact
from perflab.errors import MissingDependencyError, ModelError, UserInputError

VARIANTS_FORMAT = 2  # bump when the generated files or the manifest change
MANIFEST = "manifest.json"
CACHE_ENV = ENV_CACHE_DIR
GENERATABLE = ("espcn", "fsrcnn", "abpn", "repvgg", "teacher", "student", "bicubic")


@dataclass(frozen=True)
class LayerUnit:
    """A group of consecutive Keras layers timed as one row."""

    index: int
    name: str  # the conv's layer name (merged units: "first..last"), or "tail"
    layers: tuple[str, ...]
    kind: str  # conv / tail / merged
    macs_per_lr_pixel: int  # conv multiply-accumulates per LR pixel (0 for the tail)
    duplicable: bool  # output shape == input shape and single-input layers only


@dataclass(frozen=True)
class ModelVariant:
    name: str  # prefix01 …, dup:<unit>
    kind: str  # prefix / duplicate
    counts: tuple[int, ...]  # how often the variant runs each unit
    file: str  # file name inside the cache folder


@dataclass(frozen=True)
class VariantSet:
    model: str  # e.g. espcn_x2
    family: str
    scale: int
    precision: str
    source_sha256: str
    units: tuple[LayerUnit, ...]
    variants: tuple[ModelVariant, ...]
    weights: str  # where the weights came from
    ops_match: bool | None  # the regenerated whole model has the shipped model's op list
    folder: Path

    def path(self, v: ModelVariant) -> Path:
        return self.folder / v.file

    def artifact(self, v: ModelVariant) -> ModelArtifact:
        """The variant as something a Workload runs (sha256 and size read from the file)."""
        from perflab.core.files import sha256_file

        p = self.path(v)
        return ModelArtifact(name=f"{self.model}.{v.name.replace(':', '-')}", family=self.family,
                             variant=self.precision, scale=self.scale, path=p, sha256=sha256_file(p),
                             size_bytes=p.stat().st_size)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["folder"] = str(self.folder)
        d["format"] = VARIANTS_FORMAT
        return d


def variant_set_from_json(d: dict[str, Any], folder: Path) -> VariantSet:
    """Read a manifest (pure); ModelError when it is not this format."""
    try:
        if int(d["format"]) != VARIANTS_FORMAT:
            raise ModelError(f"variant manifest format {d['format']} is not {VARIANTS_FORMAT}")
        units = tuple(LayerUnit(index=int(u["index"]), name=str(u["name"]), layers=tuple(u["layers"]),
                                kind=str(u["kind"]), macs_per_lr_pixel=int(u["macs_per_lr_pixel"]),
                                duplicable=bool(u["duplicable"])) for u in d["units"])
        variants = tuple(ModelVariant(name=str(v["name"]), kind=str(v["kind"]),
                                      counts=tuple(int(c) for c in v["counts"]), file=str(v["file"]))
                         for v in d["variants"])
        return VariantSet(model=str(d["model"]), family=str(d["family"]), scale=int(d["scale"]),
                          precision=str(d["precision"]), source_sha256=str(d["source_sha256"]), units=units,
                          variants=variants, weights=str(d["weights"]),
                          ops_match=None if d.get("ops_match") is None else bool(d["ops_match"]), folder=folder)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"variant manifest in {folder} is malformed: {exc}") from exc


def cache_root(environ: dict[str, str] | None = None) -> Path:
    return cache_dir(environ) / "variants"


def tensorflow_missing() -> str | None:
    """Why variants cannot be generated here (None when TensorFlow imports)."""
    import importlib.util

    for name in ("tensorflow", "keras"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # ValueError: a module entry without a spec (blocked)
            spec = None
        if spec is not None:
            continue
        return ("TensorFlow is not installed (the differential profiler generates model variants with it: "
                "install perflab's build extra, e.g. scripts/setup.sh --dev)")
    return None


def variant_set(art: ModelArtifact, *, max_layers: int | None = None, duplicates: bool = True,
                root: Path | None = None, check: Callable[[], None] | None = None) -> VariantSet:
    """The cached variants of a zoo model artifact, generated (with TensorFlow) when missing.

    UserInputError: not a zoo model; MissingDependencyError: no TensorFlow and no cache;
    ModelError: the model could not be rebuilt or converted. ``check`` is called before each
    conversion (the run's stop check: RunInterrupted leaves no partial set behind).
    """
    if art.family not in GENERATABLE:
        raise UserInputError(f"{art.name}: differential variants are generated from the zoo's builders; "
                             f"family {art.family!r} is not one of {', '.join(GENERATABLE)}")
    if max_layers is not None and max_layers < 1:
        raise UserInputError(f"differential_max_layers must be at least 1, got {max_layers}")
    key = (f"{art.name}_{art.variant}-{art.sha256[:12]}-m{max_layers or 0}-d{int(duplicates)}"
           f"-v{VARIANTS_FORMAT}")
    folder = (root or cache_root()) / key
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            vs = variant_set_from_json(json.loads(manifest.read_text(encoding="utf-8")), folder)
            if all(vs.path(v).is_file() for v in vs.variants):
                return vs
        except (ModelError, ValueError):
            pass  # regenerate below
    why = tensorflow_missing()
    if why:
        raise MissingDependencyError("tensorflow", why)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
    try:
        with native_stderr_captured():  # TensorFlow's start-up and the converter's lines are not perflab's output
            vs = _generate(art, max_layers, duplicates, tmp, check or (lambda: None))
        (tmp / MANIFEST).write_text(json.dumps(vs.to_json(), indent=1) + "\n", encoding="utf-8")
        if manifest.is_file():  # another process finished the same set first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            if folder.exists():  # an incomplete or unreadable set
                shutil.rmtree(folder)
            tmp.rename(folder)  # the cache holds complete sets only
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return variant_set_from_json(json.loads(manifest.read_text(encoding="utf-8")), folder)


# --------------------------------------------------------------------------- generation (TF)


def _keras_model(family: str, scale: int) -> Any:
    if family == "bicubic":
        from perflab.zoo import bicubic

        return bicubic.build_keras(scale)
    from perflab.zoo import models

    if family == "repvgg":
        return models.build_repvgg(scale, batch_size=1, deploy=True)
    return models.build(family, scale, batch_size=1)


def _load_shipped_weights(model: Any, tflite_path: Path) -> str:
    """Copy conv kernels and biases of the shipped fp32 .tflite into ``model``, by layer name.

    TFLite names a conv's weight tensor ``<model>_1/<layer>_1/convolution`` (OHWI) and its
    fused bias ``…/<layer>_1/BiasAdd;…``. Other weights (PReLU slopes) keep the builder's values;
    a scale the converter folded into a kernel (the teacher's residual 0.2) is divided back out
    (:func:`_folded_scale`). Timing does not depend on float weight values; quantized variants
    are calibrated on the variant itself; the split planner's segments must compute what the
    shipped model does (perflab.zoo.segments checks it).
    """
    import keras
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    if not tflite_path.is_file():
        return f"builder initialisation ({tflite_path.name} not shipped)"
    interp = Interpreter(model_path=str(tflite_path))
    tensors = interp.get_tensor_details()
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    loaded = 0
    for la in convs:
        if not la.trainable or not la.weights:
            continue
        pat = re.compile(rf"/{re.escape(la.name)}(?:_\d+)?/(convolution|BiasAdd)\b")
        kernel = bias = None
        for t in tensors:
            parts = [p for p in str(t["name"]).split(";") if p]
            hits = [m for m in (pat.search(p) for p in parts) if m]
            if not hits:
                continue
            shape = tuple(int(s) for s in t["shape"])
            if len(shape) == 4 and len(parts) == 1 and shape[0] == la.filters:
                kernel = np.transpose(interp.get_tensor(t["index"]), (1, 2, 3, 0))
            elif len(shape) == 1 and shape[0] == la.filters and any(h.group(1) == "BiasAdd" for h in hits):
                bias = interp.get_tensor(t["index"])
        want = [w.shape for w in la.get_weights()]
        folded = _folded_scale(la)
        if folded is not None and kernel is not None:  # the converter multiplied the kernel by it
            kernel = kernel / folded
            bias = None if bias is None else bias / folded
        got = [kernel] + ([bias] if la.use_bias else [])
        if all(g is not None for g in got) and [tuple(g.shape) for g in got if g is not None] == [tuple(s) for s in want]:
            la.set_weights(got)
            loaded += 1
    total = sum(1 for la in convs if la.trainable and la.weights)
    if total == 0:
        return "fixed weights (no trainable conv)"
    return f"shipped fp32 weights ({loaded} of {total} conv layers by name; others as built)"


def _folded_scale(conv: Any) -> float | None:
    """The factor of a Rescaling layer (no offset) that alone reads ``conv``'s output: the TFLite
    converter folds it into the conv's kernel and bias (the teacher's residual 0.2), so the shipped
    numbers are the kernel times it; None where no such layer follows."""
    import keras

    if conv.get_config().get("activation", "linear") != "linear":  # the converter folds only into a bare conv
        return None
    consumers = [n.operation for n in conv._outbound_nodes]
    if len(consumers) != 1 or not isinstance(consumers[0], keras.layers.Rescaling):
        return None
    r = consumers[0]
    scale, offset = r.scale, r.offset
    if not isinstance(scale, (int, float)) or offset not in (0, 0.0) or scale == 0:
        return None
    return float(scale)


def _units(model: Any) -> list[LayerUnit]:
    import keras

    layers = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
    conv_pos = [i for i, la in enumerate(layers) if isinstance(la, keras.layers.Conv2D)]
    if not conv_pos:
        raise ModelError(f"{model.name}: no Conv2D layer to profile")
    out: list[LayerUnit] = []
    # layers before the first conv (e.g. bicubic's edge pad) belong to the first unit
    for n, start in enumerate(conv_pos):
        begin = 0 if n == 0 else start
        end = conv_pos[n + 1] if n + 1 < len(conv_pos) else len(layers)
        if n + 1 == len(conv_pos):  # the last conv: its own activation only; the rest is the tail
            end = start + 1
            while end < len(layers) and _single_input(layers[end]) and _consumes(layers[end], layers[end - 1]) \
                    and _is_activation(layers[end]):
                end += 1
        group = layers[begin:end]
        conv = layers[start]
        kh, kw = conv.kernel_size
        cin = int(conv.input.shape[-1])
        macs = int(kh * kw * cin * conv.filters)
        dup = all(_single_input(la) for la in group) and int(group[0].input.shape[-1]) == int(group[-1].output.shape[-1]) \
            and all(_consumes(b, a) for a, b in itertools.pairwise(group))
        out.append(LayerUnit(index=n, name=conv.name, layers=tuple(la.name for la in group), kind="conv",
                             macs_per_lr_pixel=macs, duplicable=bool(dup) and begin == start))
    taken = {x for u in out for x in u.layers}
    tail = [la.name for la in layers if la.name not in taken]
    if tail:
        out.append(LayerUnit(index=len(out), name="tail", layers=tuple(tail), kind="tail", macs_per_lr_pixel=0,
                             duplicable=False))
    return out


def _single_input(layer: Any) -> bool:
    node = layer._inbound_nodes[0]
    return len(node.input_tensors) == 1


def _consumes(layer: Any, prev: Any) -> bool:
    node = layer._inbound_nodes[0]
    return any(t is prev.output for t in node.input_tensors)


def _is_activation(layer: Any) -> bool:
    import keras

    return isinstance(layer, (keras.layers.ReLU, keras.layers.PReLU, keras.layers.Activation,
                              keras.layers.LeakyReLU))


def merge_units(units: list[LayerUnit], max_layers: int | None) -> list[LayerUnit]:
    """Merge neighbouring conv units so that at most ``max_layers`` units remain (the tail stays
    its own unit when there is room); pure."""
    if max_layers is None or len(units) <= max_layers:
        return units
    convs = [u for u in units if u.kind != "tail"]
    tail = [u for u in units if u.kind == "tail"]
    room = max(1, max_layers - len(tail))
    if room >= len(convs):
        return units
    groups: list[list[LayerUnit]] = []
    for k in range(room):
        lo, hi = k * len(convs) // room, (k + 1) * len(convs) // room
        groups.append(convs[lo:hi])
    merged = [
        g[0] if len(g) == 1 else LayerUnit(
            index=0, name=f"{g[0].name}..{g[-1].name}", layers=tuple(x for u in g for x in u.layers), kind="merged",
            macs_per_lr_pixel=sum(u.macs_per_lr_pixel for u in g), duplicable=False)
        for g in groups
    ]
    out = merged + (tail if len(merged) < max_layers else [])
    if tail and len(merged) >= max_layers:  # no room for the tail: it joins the last group
        last = out[-1]
        out[-1] = LayerUnit(index=0, name=f"{last.name}+tail", layers=last.layers + tail[0].layers, kind="merged",
                            macs_per_lr_pixel=last.macs_per_lr_pixel, duplicable=False)
    return [LayerUnit(index=i, name=u.name, layers=u.layers, kind=u.kind, macs_per_lr_pixel=u.macs_per_lr_pixel,
                      duplicable=u.duplicable) for i, u in enumerate(out)]


def _prefix_model(model: Any, unit: LayerUnit, k: int) -> Any:
    import keras

    return keras.Model(model.inputs, model.get_layer(unit.layers[-1]).output, name=f"{model.name}_prefix{k:02d}")


def _duplicate_model(model: Any, unit: LayerUnit) -> Any:
    """The whole model with a copy of ``unit`` (same config and weights) after it."""
    import keras

    last = unit.layers[-1]
    copies = []
    for name in unit.layers:
        la = model.get_layer(name)
        cfg = {**la.get_config(), "name": f"{name}_dup"}
        copies.append((la, type(la).from_config(cfg)))

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        y = layer(*args, **kwargs)
        if layer.name == last:
            for orig, copy in copies:
                y = copy(y)
                copy.set_weights(orig.get_weights())
        return y

    return keras.models.clone_model(model, clone_function=lambda la: la, call_function=call)


def _counts_of(sub: Any, units: list[LayerUnit], extra: int | None = None) -> tuple[int, ...]:
    names = {la.name for la in sub.layers}
    counts = [1 if any(x in names for x in u.layers) else 0 for u in units]
    if extra is not None:
        counts[extra] += 1
    return tuple(counts)


def _tflite_ops(path: Path) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    return [str(o["op_name"]) for o in Interpreter(model_path=str(path))._get_ops_details()]


def _generate(art: ModelArtifact, max_layers: int | None, duplicates: bool, folder: Path,
              check: Callable[[], None]) -> VariantSet:
    from perflab.zoo.convert import FULL_INTEGER, convert_keras

    model = _keras_model(art.family, art.scale)
    shipped_fp32 = art.path.with_name(art.path.name.replace(f"_{art.variant}.tflite", "_fp32.tflite"))
    weights = _load_shipped_weights(model, shipped_fp32) if art.family != "bicubic" else "fixed bicubic weights"
    units = merge_units(_units(model), max_layers)
    rep = None
    if art.variant in FULL_INTEGER:
        from perflab.zoo.data import representative_lr

        rep = representative_lr(art.scale, n=16)
    variants: list[ModelVariant] = []

    def write(name: str, kind: str, keras_model: Any, counts: tuple[int, ...]) -> None:
        check()
        file = re.sub(r"[^A-Za-z0-9_.-]", "-", name) + ".tflite"
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the exported signature
            data = convert_keras(keras_model, art.variant, rep)
        (folder / file).write_bytes(data)
        variants.append(ModelVariant(name=name, kind=kind, counts=counts, file=file))

    for k, u in enumerate(units, start=1):
        sub = model if k == len(units) else _prefix_model(model, u, k)
        write(f"prefix{k:02d}", "prefix", sub, _counts_of(sub, units))
    if duplicates:
        for u in units:
            if u.duplicable:
                write(f"dup:{u.name}", "duplicate", _duplicate_model(model, u), _counts_of(model, units, u.index))
    ops_match: bool | None = None
    try:
        ops_match = _tflite_ops(folder / variants[len(units) - 1].file) == _tflite_ops(art.path)
    except (ValueError, RuntimeError):
        ops_match = None
    return VariantSet(model=art.name, family=art.family, scale=art.scale, precision=art.variant,
                      source_sha256=art.sha256, units=tuple(units), variants=tuple(variants), weights=weights,
                      ops_match=ops_match, folder=folder)


# --------------------------------------------------------------------------- pre-generation


def main(argv: list[str] | None = None) -> int:
    """``python -m perflab.zoo.variants --family F --scale S --variant V [--max-layers N]``:
    generate (or find) a model's variants in the cache, e.g. on a build machine with
    TensorFlow, then copy ``$PERFLAB_CACHE_DIR/variants`` to machines without it."""
    import argparse
    import sys

    from perflab.errors import PerflabError
    from perflab.zoo.registry import get_artifact

    ap = argparse.ArgumentParser(prog="python -m perflab.zoo.variants", description=main.__doc__)
    ap.add_argument("--family", required=True)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--variant", default="fp32")
    ap.add_argument("--max-layers", type=int, default=12)
    args = ap.parse_args(argv)
    try:
        vs = variant_set(get_artifact(args.family, args.scale, args.variant), max_layers=args.max_layers)
    except PerflabError as exc:
        print(f"perflab: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UserInputError) else 1
    print(f"{vs.folder}: {len(vs.units)} layers, {len(vs.variants)} variants ({vs.weights})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
