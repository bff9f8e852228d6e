"""Classic scikit-learn baselines on a real MNIST subset: each family learns, saves and loads safely."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.errors import RunError
from digitlab.models import PRESETS, get_preset
from digitlab.models.classic import ClassicModel, fit_classic, load_classic

CLASSIC = [name for name, p in PRESETS.items() if p.kind == "sklearn"]
# On 3,000 training images; naive Bayes is the weak baseline it is known to be (~55% on MNIST).
FLOOR = {"naive-bayes": 0.45, "random-forest": 0.85, "knn": 0.85, "logistic-regression": 0.8, "linear-svm": 0.8}


@pytest.fixture(scope="module")
def subset(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return x_train[:3000], y_train[:3000], x_test[:1000], y_test[:1000]


def test_the_five_families_are_presets():
    assert set(CLASSIC) == set(FLOOR)


@pytest.mark.parametrize("name", CLASSIC)
def test_each_family_learns_saves_and_loads(name, subset, tmp_path):
    x_train, y_train, x_test, y_test = subset
    model = fit_classic(get_preset(name).build_fn(), x_train, y_train, seed=0)
    p = model.predict(x_test.reshape(len(x_test), -1) / 255.0)
    assert p.shape == (1000, 10) and np.allclose(p.sum(axis=1), 1, atol=1e-4)
    assert (p.argmax(axis=1) == y_test).mean() > FLOOR[name]
    assert model.count_params() > 0
    path = tmp_path / "model.skops"
    model.save(path)
    again = load_classic(path)
    np.testing.assert_array_equal(again.predict(x_test / 255.0), p)


def test_a_file_holding_foreign_types_is_refused(tmp_path):
    import skops.io

    path = tmp_path / "model.skops"
    skops.io.dump({"model": Foreign()}, path)
    with pytest.raises(RunError, match="refused.*presets never save"):
        load_classic(path)


def test_a_damaged_file_gets_a_clear_error(tmp_path):
    path = tmp_path / "model.skops"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RunError, match="cannot load the model"):
        load_classic(path)


def test_models_without_probabilities_give_a_softmax_of_their_scores():
    class Scores:
        def decision_function(self, x):
            return np.array([[1000.0, 0.0], [0.0, 0.0]])

    p = ClassicModel(Scores(), (None, 2)).predict(np.zeros((2, 2)))
    assert np.allclose(p, [[1, 0], [0.5, 0.5]]) and np.isfinite(p).all()


class Foreign:
    """A type outside scikit-learn: loading it could run this module's code."""


def test_a_baseline_is_evaluated_in_float32_and_refuses_bfloat16(subset, tmp_path, data_dir):
    from digitlab.errors import ConfigError
    from digitlab.evaluation.evaluate import evaluate
    from digitlab.recognize import Recognizer

    x_train, y_train, _, _ = subset
    path = tmp_path / "model.skops"
    fit_classic(get_preset("naive-bayes").build_fn(), x_train, y_train, seed=0).save(path)
    with pytest.raises(ConfigError, match="is a scikit-learn model: it computes in float32; precision mixed_bfloat16 applies to Keras"):
        evaluate(path, precision="mixed_bfloat16", data_dir=data_dir)
    with pytest.raises(ConfigError, match="a scikit-learn model computes in float32"):
        Recognizer.load(path, precision="mixed_bfloat16")
    ev = evaluate(path, data_dir=data_dir)
    assert ev.compute_precision == "float32" and ev.accuracy > FLOOR["naive-bayes"]


def test_a_pipeline_that_runs_code_on_predict_is_refused_before_it_is_built(tmp_path):
    """The attack of issue 22: scikit-learn's own types (skops trusts them all) carrying
    builtins.eval, which skops' get_untrusted_types lists and the old check let through because
    it trusted every `builtins.*` type. Refused by the exact allow-list, before skops builds it."""
    import skops.io
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "model.skops"
    skops.io.dump(Pipeline([("run", FunctionTransformer(eval))]), path)
    assert "builtins.eval" in skops.io.get_untrusted_types(file=path)
    with pytest.raises(RunError, match=r"refused.*presets never save.*builtins\.eval"):
        load_classic(path)


def test_a_preset_estimator_inside_another_object_is_refused(subset, tmp_path):
    """Only the types are allowed, and the file must hold one of the presets' estimators itself."""
    import skops.io

    x_train, y_train, _, _ = subset
    model = fit_classic(get_preset("naive-bayes").build_fn(), x_train[:200], y_train[:200], seed=0)
    path = tmp_path / "model.skops"
    skops.io.dump([model.estimator], path)
    with pytest.raises(RunError, match="refused: a list is not one of digitlab's scikit-learn presets"):
        load_classic(path)


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x05\x06" + bytes(18)])
def test_a_file_that_is_not_a_skops_archive_gets_one_line(tmp_path, content):
    path = tmp_path / "model.skops"
    path.write_bytes(content)
    with pytest.raises(RunError, match="cannot load the model: not a scikit-learn model file"):
        load_classic(path)
