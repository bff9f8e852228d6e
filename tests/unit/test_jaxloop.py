"""The compiled JAX loop: its own convolution and pooling equal Keras', and it trains a real Keras model."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.models.backend import select_backend

assert select_backend("jax") == "jax", "these tests need Keras on the JAX backend in this process"

import keras  # noqa: E402

from digitlab.training import jaxloop  # noqa: E402
from digitlab.errors import TrainingDiverged  # noqa: E402
from digitlab.models import build_model  # noqa: E402


@pytest.mark.parametrize("shape,kernel,padding", [
    ((3, 28, 28, 1), (3, 3, 1, 32), "same"),
    ((2, 14, 14, 32), (3, 3, 32, 64), "same"),
    ((2, 13, 11, 3), (5, 3, 3, 4), "same"),  # odd sizes, uneven kernel: Keras pads the extra row at the end
    ((2, 13, 11, 3), (3, 2, 3, 4), "valid"),
])
def test_im2col_convolution_equals_keras(shape, kernel, padding):
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=shape).astype(np.float32), rng.normal(size=kernel).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras.ops.conv(x, k, padding=padding))
    got = np.asarray(jaxloop.conv2d_im2col(x, k, padding))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,kernel,padding", [
    ((2, 14, 14, 16), (3, 3, 16, 32), "same"),
    ((2, 13, 11, 3), (5, 3, 3, 4), "same"),
    ((2, 13, 11, 3), (3, 2, 3, 4), "valid"),
])
def test_im2col_convolution_gradients_equal_keras(shape, kernel, padding):
    """The written-out input gradient (the turned kernel over the padded output gradient) and the
    kernel gradient equal JAX's derivative of Keras' own convolution."""
    import jax

    rng = np.random.default_rng(5)
    x, k = rng.normal(size=shape).astype(np.float32), rng.normal(size=kernel).astype(np.float32)
    ours, ours_vjp = jax.vjp(lambda a, b: jaxloop.conv2d_im2col(a, b, padding), x, k)
    ref, ref_vjp = jax.vjp(lambda a, b: keras.ops.conv(a, b, padding=padding), x, k)
    g = rng.normal(size=ref.shape).astype(np.float32)
    for got, expected in zip(ours_vjp(g), ref_vjp(g)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape,size", [((2, 28, 28, 3), (2, 2)), ((2, 13, 11, 2), (2, 2)), ((1, 10, 9, 1), (3, 3))])
def test_strided_max_pool_equals_keras(shape, size):
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras.ops.max_pool(x, size, strides=size, padding="valid"))
    np.testing.assert_array_equal(np.asarray(jaxloop.maxpool_strided(x, size)), expected)


@pytest.mark.parametrize("shape,size", [((2, 28, 28, 3), (2, 2)), ((2, 13, 11, 2), (2, 2)), ((3, 10, 9, 1), (3, 2))])
def test_max_pool_gradient_equals_keras_with_ties(shape, size):
    """Pixels drawn from {0, 1, 2} tie in most windows: the gradient must go to the first maximum only,
    as Keras' own max_pool on JAX sends it; rows and columns the pooling leaves out get none."""
    import jax

    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, shape).astype(np.float32)
    ours, ours_vjp = jax.vjp(lambda t: jaxloop.maxpool_strided(t, size), x)
    keras_out, keras_vjp = jax.vjp(lambda t: keras.ops.max_pool(t, size, strides=size, padding="valid"), x)
    g = rng.normal(size=ours.shape).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(keras_out))
    np.testing.assert_array_equal(np.asarray(ours_vjp(g)[0]), np.asarray(keras_vjp(g)[0]))
    assert np.count_nonzero(np.asarray(ours_vjp(np.ones_like(g))[0])) == g.size  # one pixel per window


@pytest.mark.parametrize("x_shape,units", [((64, 512), 10), ((64, 784), 512), ((4, 3, 20), 7)])
def test_dense_product_and_its_gradients_equal_keras_matmul(x_shape, units):
    """Both ways of writing the kernel gradient (narrow and wide layers), and inputs of rank 3."""
    import jax

    rng = np.random.default_rng(4)
    x = rng.normal(size=x_shape).astype(np.float32)
    k = rng.normal(size=(x_shape[-1], units)).astype(np.float32)
    ours, ours_vjp = jax.vjp(jaxloop.dense_matmul, x, k)
    ref, ref_vjp = jax.vjp(keras.ops.matmul, x, k)
    g = rng.normal(size=ref.shape).astype(np.float32)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-5, atol=1e-4)
    for got, expected in zip(ours_vjp(g), ref_vjp(g)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("preset", ["cnn", "cnn-fast", "cnn-simple", "cnn-aug", "mlp-dropout", "softmax"])
def test_the_pure_forward_pass_equals_the_keras_model(preset):
    model = build_model(preset)
    x = np.random.default_rng(2).random((8, *model.input_shape[1:])).astype(np.float32)
    tv, ntv, _ = [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables], None
    got, _ = jaxloop.make_forward(model)(tv, ntv, x, False)
    np.testing.assert_allclose(np.asarray(got), keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-5)


def _compiled(preset: str, lr: float | None = None):
    model = build_model(preset)
    model.compile(optimizer=keras.optimizers.Adam(**({"learning_rate": lr} if lr else {})),
                  loss="categorical_crossentropy")
    return model


def test_an_epoch_trains_the_keras_model_itself_including_the_last_small_batch(mnist):
    (x, y), (xt, yt) = mnist
    x, y = x[:1000].reshape(-1, 784), y[:1000]
    model = _compiled("mlp")
    before = model.get_weights()
    loop = jaxloop.build_loop(model, x, y, 10)
    seen = []
    logs = jaxloop.train_epoch(loop, model, np.random.default_rng(0).permutation(1000), 64, epoch=1,
                               progress=lambda done, logs: seen.append(done))
    assert int(model.optimizer.iterations.numpy()) == 16  # 15 batches of 64 and one of 40
    assert seen[-1] == 16 and all(a < b for a, b in zip(seen, seen[1:]))
    assert all(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights()))
    assert 0.5 < logs["accuracy"] <= 1 and logs["loss"] > 0
    loss, accuracy = jaxloop.evaluate(loop, model, xt[:1500].reshape(-1, 784), yt[:1500])  # a padded last batch
    probs = model.predict(xt[:1500].reshape(-1, 784).astype(np.float32) / 255, verbose=0)
    assert accuracy == pytest.approx(float(np.mean(probs.argmax(1) == yt[:1500])))
    assert accuracy > 0.7  # one epoch of 1,000 images


def test_a_frozen_layer_stays_as_it_was_and_the_others_train(mnist):
    """A frozen Dense or Conv2D keeps its weights out of the trainable list: Keras' own call runs it."""
    (x, y), _ = mnist
    for preset, frozen in (("mlp", "hidden"), ("cnn", "conv1")):
        model = build_model(preset)
        layer = model.get_layer(frozen)
        layer.trainable = False
        model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy")
        kept = [w.copy() for w in layer.get_weights()]
        others = model.layers[-1].get_weights()[0].copy()
        shape = tuple(model.input_shape[1:])
        loop = jaxloop.build_loop(model, x[:256].reshape(-1, *shape), y[:256], 10)
        jaxloop.train_epoch(loop, model, np.arange(256), 64, epoch=1)
        assert all(np.array_equal(a, b) for a, b in zip(kept, layer.get_weights())), preset
        assert np.abs(model.layers[-1].get_weights()[0] - others).max() > 0, preset


def test_a_diverging_loss_names_the_epoch_and_batch(mnist):
    (x, y), _ = mnist
    model = _compiled("mlp")
    loop = jaxloop.build_loop(model, x[:2000].reshape(-1, 784), y[:2000], 10)
    jaxloop.train_epoch(loop, model, np.arange(2000), 64, epoch=1)
    model.trainable_variables[0].assign(np.full(model.trainable_variables[0].shape, np.inf, np.float32))
    with pytest.raises(TrainingDiverged, match=r"the loss became nan in epoch 2, batch 1: .* smaller --learning-rate"):
        jaxloop.train_epoch(loop, model, np.arange(2000), 64, epoch=2)


def test_supports_sequential_models_on_jax_only():
    assert jaxloop.supports(build_model("cnn"))
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert not jaxloop.supports(functional)
    regularised = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, kernel_regularizer="l2")])
    assert not jaxloop.supports(regularised)


def test_the_compilation_cache_is_skipped_where_unwritable_and_respects_the_users_own(tmp_path):
    import jax

    from digitlab.models.backend import use_compilation_cache

    saved = jax.config.jax_compilation_cache_dir
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        blocker = tmp_path / "file"
        blocker.write_text("a file where the cache folder would go")
        assert use_compilation_cache(blocker / "compiled") is False
        assert jax.config.jax_compilation_cache_dir is None
        assert use_compilation_cache(tmp_path / "compiled") is True
        (folder,) = (tmp_path / "compiled").iterdir()  # one per CPU and JAX version
        assert jax.config.jax_compilation_cache_dir == str(folder) and f"jax{jax.__version__}" in folder.name
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "users-own"))
        assert use_compilation_cache(tmp_path / "other") is False
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "users-own")
    finally:
        jax.config.update("jax_compilation_cache_dir", saved)


def test_a_half_written_compilation_cache_entry_is_removed_so_the_cache_keeps_working(tmp_path):
    """A process killed between JAX's two writes of an entry leaves a program without its use time;
    JAX's eviction then fails on every new entry. Mending removes exactly the orphans."""
    from jax._src.lru_cache import LRUCache

    from digitlab.models.backend import mend_compiled_cache

    (tmp_path / "whole-cache").write_bytes(b"p" * 10)
    (tmp_path / "whole-atime").write_bytes((1).to_bytes(8, "little"))
    (tmp_path / "killed-cache").write_bytes(b"half")
    (tmp_path / "stray-atime").write_bytes((2).to_bytes(8, "little"))
    cache = LRUCache(str(tmp_path), max_size=2**20)
    with pytest.raises(FileNotFoundError):  # why it is needed: JAX's own cache stops taking entries
        cache.put("new", b"n" * 10)
    assert mend_compiled_cache(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["whole-atime", "whole-cache"]
    cache.put("new", b"n" * 10)
    assert cache.get("new") == b"n" * 10 and cache.get("whole") == b"p" * 10
    assert mend_compiled_cache(tmp_path) == 0
