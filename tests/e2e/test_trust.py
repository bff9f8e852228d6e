"""A model file that carries code (a Lambda layer) is refused unless the user says they trust it."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.conftest import invoke_cli


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory):
    from digitlab.models.backend import select_backend

    select_backend()
    import keras

    model = keras.Sequential([keras.Input((784,)), keras.layers.Lambda(lambda x: x * 1.0),
                              keras.layers.Dense(10, activation="softmax")])
    path = tmp_path_factory.mktemp("lambda") / "carries-code.keras"
    model.save(path)
    return path


@pytest.mark.slow  # six commands, in this process (tests/e2e/test_cli.py runs the installed one)
def test_refused_with_why_and_how_then_loaded_when_trusted(lambda_model, mnist, tmp_path):
    refused = invoke_cli("evaluate", str(lambda_model))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    message = refused.stderr.replace("\n", " ")
    assert "refused: the model file carries a Lambda layer's Python function" in message
    assert "would run that code" in message and "--trust-model" in message
    trusted = invoke_cli("evaluate", str(lambda_model), "--trust-model")
    assert trusted.returncode == 0 and "Test accuracy" in trusted.stdout, trusted.stderr

    _, (x_test, _) = mnist
    Image.fromarray(x_test[0]).save(tmp_path / "digit.png")
    for command in ("predict", "read"):
        refused = invoke_cli(command, str(tmp_path / "digit.png"), "--model", str(lambda_model))
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, (command, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1 and "--trust-model" in refused.stderr, refused.stderr
        trusted = invoke_cli(command, str(tmp_path / "digit.png"), "--model", str(lambda_model), "--trust-model")
        assert trusted.returncode == 0 and "refused" not in trusted.stderr, (command, trusted.stderr)


def test_the_python_api_refuses_too(lambda_model):
    from digitlab.errors import RunError
    from digitlab.evaluation.evaluate import load_model

    with pytest.raises(RunError, match="trust=True"):
        load_model(lambda_model)
    assert load_model(lambda_model, trust=True).layers[0].__class__.__name__ == "Lambda"


def test_recognizer_and_evaluate_refuse_too_unless_trusted(lambda_model):
    import numpy as np

    from digitlab.errors import RunError
    from digitlab.evaluation.evaluate import evaluate
    from digitlab.recognize import Recognizer

    with pytest.raises(RunError, match="carries a Lambda layer's Python function"):
        Recognizer.load(lambda_model)
    with pytest.raises(RunError, match="carries a Lambda layer's Python function"):
        evaluate(lambda_model)
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 13:16] = 255
    (prediction,) = Recognizer.load(lambda_model, trust=True).predict(digit)
    assert prediction.status in ("ok", "unsure") and len(prediction.top) == 3
