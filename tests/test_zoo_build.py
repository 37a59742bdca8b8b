"""Builders (TensorFlow/Keras): re-parameterisation, bicubic graph, MACs, training data rules."""

from __future__ import annotations

import numpy as np
import pytest

from perflab.errors import UserInputError

tf = pytest.importorskip("tensorflow")


def test_repvgg_merged_equals_unmerged() -> None:
    from perflab.zoo import models

    train_model = models.build("repvgg", 2, seed=3, batch_size=None)
    # non-trivial weights in every branch (fresh 1x1/3x3 init + random biases)
    rng = np.random.default_rng(0)
    train_model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in train_model.get_weights()])
    merged = models.reparameterize(train_model, 2, batch_size=None)
    x = rng.random((2, 19, 23, 3)).astype(np.float32)
    a = np.asarray(train_model(x))
    b = np.asarray(merged(x))
    assert a.shape == b.shape == (2, 38, 46, 3)
    # equal up to float32 summation order (the merged conv adds the branches before, not after)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert float(np.abs(a - b).mean()) < 2e-6
    n_train = sum(int(np.prod(w.shape)) for w in train_model.get_weights())
    n_merged = sum(int(np.prod(w.shape)) for w in merged.get_weights())
    assert n_merged < n_train  # the branches are gone
    assert not any(layer.name.endswith("_1x1") for layer in merged.layers)


def test_merge_rep_kernels_identity_and_1x1() -> None:
    from perflab.zoo.models import merge_rep_kernels

    c = 4
    k3, b3 = np.zeros((3, 3, c, c), np.float32), np.zeros(c, np.float32)
    k1, b1 = np.full((1, 1, c, c), 0.5, np.float32), np.ones(c, np.float32)
    k, b = merge_rep_kernels(k3, b3, k1, b1, identity=True)
    np.testing.assert_allclose(k[1, 1], 0.5 + np.eye(c))
    assert float(np.abs(k).sum() - np.abs(k[1, 1]).sum()) == 0.0
    np.testing.assert_allclose(b, 1.0)


def test_bicubic_keras_equals_reference() -> None:
    from perflab.zoo import bicubic

    lr = np.random.default_rng(1).random((9, 14, 3)).astype(np.float32)
    for s in (2, 3, 4):
        y = np.asarray(bicubic.build_keras(s)(lr[None]))[0]
        np.testing.assert_allclose(y, bicubic.reference_bicubic_upscale(lr, s), atol=1e-5)


def test_macs_counting() -> None:
    from perflab.zoo import models, ship

    m = models.build("abpn", 3, batch_size=None)
    assert ship.count_macs_per_lr_pixel(m) == 9 * 3 * 28 + 5 * 9 * 28 * 28 + 9 * 28 * 27
    with pytest.raises(UserInputError):
        models.build("nosuchnet", 2)


def test_held_out_images_are_refused_for_training() -> None:
    from perflab.zoo import data

    assert not any(n in data.HELD_OUT for n in data.TRAINING_SOURCES)
    with pytest.raises(UserInputError):
        data.training_images(("skimage:coffee",))


def test_generated_images_are_deterministic() -> None:
    from perflab.zoo import data

    a, b = data.generate_image(3, (96, 128)), data.generate_image(3, (96, 128))
    assert a.shape == (96, 128, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert float(a.std()) > 0.02


def test_patches_are_aligned() -> None:
    from perflab.quality.frames import hr_to_lr
    from perflab.zoo import data

    hr = data.generate_image(0, (120, 160))
    pairs = data.make_pairs(2, [("generated:0", hr)])
    lr, hrp = data.sample_patches(pairs, 2, 4, 16, np.random.default_rng(0), augment=False)
    assert lr.shape == (4, 16, 16, 3) and hrp.shape == (4, 32, 32, 3)
    # the LR patch equals the documented degradation of its HR patch away from the patch border
    again = hr_to_lr(hrp[0], 2)
    assert float(np.abs(again[3:-3, 3:-3] - lr[0][3:-3, 3:-3]).max()) <= 1.5 / 255
