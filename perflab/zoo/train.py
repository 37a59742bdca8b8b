"""Training recipe for the zoo (seeded, CPU, minutes). Runs only on demand — never in CI.

    python -m perflab.zoo.train --family espcn --scale 2            # train, convert, ship
    perflab models train espcn --scale 2                            # same, through the CLI

Recipe (the same for every family): LR/HR pairs from ``perflab.zoo.data`` (packaged +
generated images; coffee/chelsea/rocket held out), random aligned patches (LR 32×32 at ×2,
24×24 at ×3) with flips/rotations/channel permutations, batch 16, Adam, L1 loss, learning rate
1e-3 with cosine decay to 1e-5, a fixed number of steps. Seeds: numpy patch sampler, Keras
initialisers and TensorFlow ops (``enable_op_determinism``) — the same command gives the
same weights on the same machine/TF version.

Distillation (family ``student``, the ``espcn`` architecture): the loss adds ``kd_weight`` ×
L1(student, teacher output) to the L1 to HR; the teacher is the trained ``teacher`` Keras model
of the same scale. The teacher runs once on every whole LR training image before training (its
outputs are cropped with the same patch/augmentation as the HR), so distillation costs about
the same as training the student alone; with the same seed, steps and patches as ``espcn``,
the student's gain over ``espcn`` is the effect of distillation alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perflab.errors import UserInputError

# Keras checkpoints (.keras + the config as .json) are working files, not shipped: the shipped
# artefacts are the .tflite files in perflab/zoo/weights/.
CHECKPOINT_DIR = Path(os.environ.get("PERFLAB_ZOO_CHECKPOINTS", Path.home() / ".cache" / "perflab" / "zoo"))


@dataclass(frozen=True)
class TrainConfig:
    family: str
    scale: int
    steps: int = 2000
    batch: int = 16
    lr_patch: int = 0  # 0: 32 at ×2, 24 at ×3, 16 at ×4
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-5
    seed: int = 0
    kd_weight: float = 0.0  # > 0 only for distillation
    teacher_path: str = ""  # .keras file of the teacher (distillation)

    def patch(self) -> int:
        return self.lr_patch or {2: 32, 3: 24, 4: 16}[self.scale]


@dataclass(frozen=True)
class TrainResult:
    config: TrainConfig
    final_loss: float
    seconds: float
    checkpoint: Path


def train(cfg: TrainConfig, *, verbose: bool = True, checkpoint_dir: Path = CHECKPOINT_DIR) -> tuple[Any, TrainResult]:
    """Train one model; returns the (batch-None) Keras model and a summary. Imports TensorFlow."""
    import keras
    import tensorflow as tf

    from perflab.zoo import data, models

    if cfg.family not in models.FAMILIES:
        raise UserInputError(f"unknown family {cfg.family!r}")
    if cfg.family == "student" and (cfg.kd_weight <= 0 or not cfg.teacher_path):
        raise UserInputError("family 'student' trains by distillation: give kd_weight > 0 and teacher_path")
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(cfg.seed)
    pairs = data.make_pairs(cfg.scale)
    model = models.build(cfg.family, cfg.scale, seed=cfg.seed, batch_size=None)
    if cfg.kd_weight > 0:
        from perflab.zoo import tflayers  # noqa: F401  (registers the custom layers)

        teacher = keras.models.load_model(cfg.teacher_path, compile=False)
        pairs = [data.PairImage(p.name, p.hr, p.lr, np.asarray(teacher(p.lr[None], training=False))[0])
                 for p in pairs]
        del teacher

    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate, decay_steps=cfg.steps, alpha=cfg.final_learning_rate / cfg.learning_rate)
    opt = keras.optimizers.Adam(schedule)
    kd = tf.constant(cfg.kd_weight, tf.float32)

    @tf.function(reduce_retracing=True)  # type: ignore[misc, untyped-decorator]
    def step(lr: tf.Tensor, hr: tf.Tensor, soft: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            sr = model(lr, training=True)
            loss = tf.reduce_mean(tf.abs(sr - hr)) + kd * tf.reduce_mean(tf.abs(sr - soft))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    bar = keras.utils.Progbar(cfg.steps, stateful_metrics=["loss"], verbose=1 if verbose else 0)
    t0 = time.monotonic()
    ema = math.nan
    for i in range(cfg.steps):
        lr, hr, soft_or_none = data.sample_patch_triples(pairs, cfg.scale, cfg.batch, cfg.patch(), rng)
        soft = hr if soft_or_none is None else soft_or_none
        loss = float(step(tf.constant(lr), tf.constant(hr), tf.constant(soft)))
        ema = loss if math.isnan(ema) else 0.98 * ema + 0.02 * loss
        if (i + 1) % 10 == 0 or i + 1 == cfg.steps:
            bar.update(i + 1, values=[("loss", ema)])
    seconds = time.monotonic() - t0
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint_dir / f"{cfg.family}_x{cfg.scale}.keras"
    model.save(ckpt)
    (checkpoint_dir / f"{cfg.family}_x{cfg.scale}.json").write_text(
        json.dumps({**asdict(cfg), "final_loss": ema, "seconds": round(seconds, 1)}, indent=2) + "\n")
    return model, TrainResult(cfg, ema, seconds, ckpt)


def recipe_text(cfg: TrainConfig) -> str:
    kd = f", distilled from teacher_x{cfg.scale} (kd_weight {cfg.kd_weight})" if cfg.kd_weight > 0 else ""
    return (f"python -m perflab.zoo.train --family {cfg.family} --scale {cfg.scale} --steps {cfg.steps} "
            f"--seed {cfg.seed}: Adam L1, batch {cfg.batch}, LR patch {cfg.patch()}, lr {cfg.learning_rate:g}"
            f"→{cfg.final_learning_rate:g} cosine{kd}")


def train_and_ship(cfg: TrainConfig, variants: tuple[str, ...] | None = None, verbose: bool = True) -> TrainResult:
    """Train, then convert to the TFLite variants and record metadata in weights/zoo.json."""
    model, res = train(cfg, verbose=verbose)
    ship_trained(model, res, variants)
    return res


def load_checkpoint(path: Path) -> tuple[Any, TrainResult]:
    """A trained model and its summary from ``{family}_x{scale}.keras`` + ``.json``."""
    import keras

    from perflab.zoo import tflayers  # noqa: F401  (registers the custom layers)

    meta = json.loads(path.with_suffix(".json").read_text())
    final_loss, seconds = float(meta.pop("final_loss")), float(meta.pop("seconds"))
    cfg = TrainConfig(**meta)
    return keras.models.load_model(path, compile=False), TrainResult(cfg, final_loss, seconds, path)


def ship_trained(model: Any, res: TrainResult, variants: tuple[str, ...] | None = None) -> None:
    """Convert a trained model to the TFLite variants and record its metadata."""
    from perflab.zoo import data, models, ship
    from perflab.zoo.convert import VARIANTS

    cfg = res.config
    infer_model = models.inference_model(cfg.family, model, cfg.scale)
    params = ship.count_params(infer_model)
    train_params = ship.count_params(model)
    extra: dict[str, Any] = {"train_seconds": round(res.seconds, 1), "steps": cfg.steps, "seed": cfg.seed}
    if train_params != params:
        extra["training_params"] = train_params
    ship.ship(infer_model, cfg.family, cfg.scale, training_data=data.training_data_description(),
              description=(models.__doc__ or "").split(f"\n{cfg.family}")[1].split("\n")[0].strip()
              if f"\n{cfg.family}" in (models.__doc__ or "") else cfg.family,
              recipe=recipe_text(cfg), variants=variants or VARIANTS, extra=extra)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", required=True)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kd-weight", type=float, default=0.0)
    p.add_argument("--teacher", default="", help="teacher .keras checkpoint (distillation)")
    p.add_argument("--lr-patch", type=int, default=0, help="LR patch side (default 32/24/16 at x2/x3/x4)")
    p.add_argument("--variants", default="", help="comma list; default all five")
    p.add_argument("--no-ship", action="store_true", help="train and checkpoint only")
    p.add_argument("--from-checkpoint", default="", help="ship an already trained .keras checkpoint")
    a = p.parse_args(argv)
    variants = tuple(v for v in a.variants.split(",") if v) or None
    if a.from_checkpoint:
        model, res = load_checkpoint(Path(a.from_checkpoint))
        ship_trained(model, res, variants)
        return 0
    cfg = TrainConfig(a.family, a.scale, steps=a.steps, batch=a.batch, seed=a.seed, kd_weight=a.kd_weight,
                      teacher_path=a.teacher, lr_patch=a.lr_patch)
    if a.no_ship:
        _m, res = train(cfg)
    else:
        res = train_and_ship(cfg, variants)
    print(f"\n{cfg.family}_x{cfg.scale}: final L1 {res.final_loss:.5f} in {res.seconds:.0f} s → {res.checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
