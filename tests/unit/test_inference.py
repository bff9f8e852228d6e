"""The NumPy inference path gives Keras' probabilities, for every kind of layer the presets use."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digitlab.errors import RunError
from digitlab.models.numpy_model import export, load
from digitlab.data.arrays import shape_for


@pytest.fixture(scope="module")
def keras_models():
    from digitlab.models import build_model

    import keras
    from keras import layers

    # A model with Keras' own augmentation layers, as cnn-aug had before digitlab.data.augment (its old
    # run folders still load) and as a user's own model may have: identity at inference.
    augmenting = keras.Sequential([
        keras.Input((28, 28, 1)), layers.RandomRotation(0.03), layers.RandomTranslation(0.1, 0.1),
        layers.RandomZoom(0.1), layers.RandomFlip(), layers.Conv2D(4, 3, activation="relu"), layers.Flatten(),
        layers.Dense(10, activation="softmax")])
    models = {}
    for name in ("mlp-dropout", "mlp-deep-sigmoid", "cnn", "cnn-simple", "softmax", "cnn-aug", "with-random-layers"):
        model = augmenting if name == "with-random-layers" else build_model(name)
        rng = np.random.default_rng(0)  # weights large enough for peaked, informative outputs
        # (batch norm's variances must stay positive: take absolute values; SeedGenerator states are kept)
        model.set_weights([np.abs(rng.normal(0, 0.15, w.shape)).astype(w.dtype) + 0.5 if "variance" in v.path
                           else (w if "seed" in v.path else rng.normal(0, 0.15, w.shape).astype(w.dtype))
                           for v, w in zip(model.weights, model.get_weights())])
        models[name] = model
    return models


# cnn-simple: 'valid' convolutions and an odd map pooled (11 x 11 -> 5 x 5)
@pytest.mark.parametrize("name", ["mlp-dropout", "mlp-deep-sigmoid", "cnn", "cnn-simple", "softmax", "cnn-aug",
                                  "with-random-layers"])
def test_numpy_inference_matches_keras_within_1e_5(name, keras_models, mnist, tmp_path):
    _, (x_test, _) = mnist
    model = keras_models[name]
    x = shape_for(x_test[:500], tuple(model.input_shape[1:]))
    path = export(model, tmp_path / "inference.npz")
    fast = load(path)
    expected = np.asarray(model.predict(x, verbose=0))
    got = fast.predict(x, batch_size=128)
    assert expected.max(axis=1).mean() > 0.2, "outputs are far from uniform, so the comparison means something"
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert fast.count_params() == model.count_params() and fast.input_shape == model.input_shape


def test_a_layer_it_does_not_cover_means_no_file(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.LayerNormalization(), keras.layers.Dense(2)])
    assert export(model, tmp_path / "inference.npz") is None and not list(tmp_path.iterdir())


def test_a_damaged_or_pickled_file_is_refused(tmp_path):
    path = tmp_path / "inference.npz"
    path.write_bytes(b"PK not a zip")
    with pytest.raises(RunError, match="cannot read the inference file"):
        load(path)
    np.savez(path, meta=np.array([{"evil": object()}], dtype=object))
    with pytest.raises(RunError, match="cannot read the inference file"):
        load(path)


@pytest.mark.parametrize("meta, arrays, why", [
    ({"input_shape": [784], "layers": ["x"]}, {}, "AttributeError"),
    ({"layers": [{"kind": "dense", "activation": "softmax", "arrays": "0"}]},
     {"0_kernel": np.zeros((784, 10), np.float32), "0_bias": np.zeros(10, np.float32)}, "input_shape"),
    ({"input_shape": [784], "layers": []}, {}, "no layer with weights"),
    ({"input_shape": [-1], "layers": [{"kind": "dense", "activation": "softmax", "arrays": "0"}]},
     {"0_kernel": np.zeros((784, 10), np.float32), "0_bias": np.zeros(10, np.float32)}, "not an image's"),
    ({"input_shape": [784], "layers": [{"kind": "maxpool", "size": 2}, {"kind": "dense", "activation": "softmax",
                                                                      "arrays": "0"}]},
     {"0_kernel": np.zeros((784, 10), np.float32), "0_bias": np.zeros(10, np.float32)}, "ValueError"),
    ({"input_shape": [784], "layers": [{"kind": "dense", "activation": "softmax", "arrays": "0"}]},
     {"0_kernel": np.zeros((28, 10), np.float32), "0_bias": np.zeros(10, np.float32)}, "ValueError"),
    ({"input_shape": [28, 28, 1], "layers": [{"kind": "conv", "activation": "relu", "arrays": "0"}]},
     {"0_kernel": np.zeros((3, 3, 1, 4), np.float32), "0_bias": np.zeros(4, np.float32)}, "padding"),
])
def test_a_crafted_file_whose_layers_do_not_fit_is_refused_on_loading(tmp_path, meta, arrays, why):
    """Found in review: the meta is checked key by key, but a file whose layers do not fit
    together (a crafted one with the model's own checksum reaches `evaluate` and `predict`) failed
    with a traceback mid-prediction. One blank image through it on loading gives one line."""
    path = tmp_path / "inference.npz"
    np.savez(path, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    with pytest.raises(RunError, match=f"cannot read the inference file .*{why}"):
        load(path)


def test_predict_batches_gives_predicts_outputs_for_any_count(keras_models, mnist, tmp_path):
    from digitlab.models.numpy_model import predict_batches

    _, (x_test, _) = mnist
    model = keras_models["mlp-dropout"]
    x = shape_for(x_test[:1001], tuple(model.input_shape[1:]))  # batches of 256, 256, 256, 233
    np.testing.assert_allclose(predict_batches(model, x, 256), model.predict(x, verbose=0), atol=1e-5)  # other batch sizes: other sums
    assert predict_batches(model, x[:0], 256).shape == (0, 10)
    fast = load(export(model, tmp_path / "inference.npz"))  # a NumpyModel: its own predict
    np.testing.assert_allclose(predict_batches(fast, x, 256), model.predict(x, verbose=0), atol=1e-5)


def test_a_stale_or_foreign_inference_file_never_answers_for_the_model(keras_models, tmp_path):
    """Issue 22: inference.npz was trusted over model.keras unchecked, so a copy from another network
    answered (and /api/v1/model reported it). Now it is used only while it is model.keras's export."""
    import json

    from digitlab.models.numpy_model import exported_from
    from digitlab.recognize import Recognizer

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "softmax"}))
    keras_models["softmax"].save(run / "model.keras")
    export(keras_models["softmax"], run / "inference.npz", source=run / "model.keras")
    assert exported_from(run / "inference.npz", run / "model.keras")
    assert type(Recognizer.load(run).model).__name__ == "NumpyModel"

    export(keras_models["mlp-dropout"], run / "inference.npz", source=tmp_path / "elsewhere.keras"
           if (tmp_path / "elsewhere.keras").write_bytes(b"another model") else None)  # another network's file
    assert not exported_from(run / "inference.npz", run / "model.keras")
    for target in (run, run / "model.keras"):
        with pytest.warns(UserWarning, match="is not the export of .*model.keras.*stale or foreign"):
            recognizer = Recognizer.load(target)
        assert type(recognizer.model).__name__ != "NumpyModel"
        assert recognizer.model.count_params() == keras_models["softmax"].count_params()
    export(keras_models["softmax"], run / "inference.npz")  # no source recorded (an old run): not trusted either
    assert not exported_from(run / "inference.npz", run / "model.keras")


@given(st.integers(1, 6), st.integers(-3, 3), st.integers(-3, 3), st.integers(0, 99))
def test_moved_images_are_shifted_with_zeros_coming_in(n, down, right, seed):
    from digitlab.models.numpy_model import moved

    images = np.random.default_rng(seed).integers(1, 256, (n, 7, 9, 1)).astype(np.uint8)
    out = moved(images, down, right)
    assert out.shape == images.shape and out.dtype == images.dtype
    for y in range(7):
        for x in range(9):
            sy, sx = y - down, x - right
            want = images[:, sy, sx] if 0 <= sy < 7 and 0 <= sx < 9 else 0
            assert np.array_equal(out[:, y, x], np.broadcast_to(want, out[:, y, x].shape))


def test_the_second_look_averages_only_the_images_the_model_is_unsure_of():
    from digitlab.models.numpy_model import SHIFTS, moved, second_look

    rng = np.random.default_rng(0)
    images = rng.random((6, 28, 28)).astype(np.float32)
    weights = rng.normal(0, 3, (28 * 28, 10)).astype(np.float32)

    def predict(x):  # a softmax of a fixed linear map: sure of some images, unsure of others
        z = x.reshape(len(x), 28 * 28) @ weights
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    first = predict(images)
    below = float(np.median(first.max(axis=1)))
    got = second_look(predict, images, below)
    unsure = first.max(axis=1) < below
    assert 0 < unsure.sum() < len(images)
    averaged = (first + sum(predict(moved(images, dy, dx)) for dy, dx in SHIFTS)) / 5
    assert np.allclose(got[~unsure], first[~unsure]) and np.allclose(got[unsure], averaged[unsure])
    assert np.allclose(got.sum(axis=1), 1)
    assert np.array_equal(second_look(predict, images, 0.0), first)  # 0: never
    assert second_look(predict, images[:0], 0.9).shape == (0, 10)


def test_the_shipped_reader_takes_its_second_look_and_a_caller_can_decline_it(mnist):
    from digitlab.recognize import Recognizer

    reader = Recognizer.load("reader")
    assert reader.second_look_below == reader.run.config.second_look_below == 0.9
    plain = Recognizer(reader.model, reader.class_names, reader.temperature, reader.threshold, reader.run,
                       second_look_below=0.0)
    prepared = mnist[1][0][:1500].astype(np.float32) / 255
    with_look, without = reader.probabilities(prepared), plain.probabilities(prepared)
    first = reader.model.predict(prepared.reshape(-1, 28, 28, 1)).max(axis=1)  # before calibration
    looked = first < 0.9
    assert 0 < looked.sum() < 0.1 * len(prepared)  # a few percent of MNIST's test digits
    assert np.allclose(with_look[~looked], without[~looked], atol=1e-7)
    assert not np.allclose(with_look[looked], without[looked])


def test_flattened_images_take_the_second_look_too(mnist):
    from digitlab.recognize import Recognizer

    reader = Recognizer.load("reader")
    prepared = mnist[1][0][:300].astype(np.float32) / 255
    assert np.allclose(reader.probabilities(prepared.reshape(300, 784)), reader.probabilities(prepared))


@pytest.mark.parametrize("name, numpy_path", [("softmax", True), ("cnn-simple", False)])
def test_evaluate_takes_the_numpy_export_of_a_dense_network_only(name, numpy_path, keras_models, data_dir, tmp_path,
                                                                 monkeypatch):
    """`evaluate` answers with a dense run's export (no Keras: seconds less); a network with
    convolutions is evaluated by Keras, whose compiled convolutions are faster over a test set
    than NumPy's and need no gigabytes of image patches (found in review)."""
    from digitlab.evaluation import evaluate as evaluation

    model = keras_models[name]
    model.save(tmp_path / "model.keras")
    export(model, tmp_path / "inference.npz", source=tmp_path / "model.keras")
    loaded = []
    real = evaluation.load_model
    monkeypatch.setattr(evaluation, "load_model", lambda *a, **k: loaded.append(a) or real(*a, **k))
    ev = evaluation.evaluate(tmp_path / "model.keras", dataset="mnist", data_dir=data_dir)
    assert (not loaded) == numpy_path and ev.compute_precision == "float32" and len(ev.labels) == 10000
