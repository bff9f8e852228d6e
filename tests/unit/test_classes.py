"""A run carries its own class names: its answers do not change when the data set's folders do."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from digitlab.errors import ConfigError, RunError
from digitlab.evaluation.evaluate import recorded_classes
from digitlab.runs import open_run


def class_folders(root, names, digits):
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(digits[k * 3 + i]).save(root / name / f"{i}.png")


@pytest.fixture()
def animal_run(tmp_path, mnist):
    """A two-class run on a folder data set (cat, dog), its model a real Keras softmax layer."""
    from digitlab.models import build_model

    (x, _), _ = mnist
    data = tmp_path / "animals"
    class_folders(data, ["cat", "dog"], x)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "softmax", "dataset": str(data)}))
    (run / "classes.json").write_text(json.dumps({"classes": ["cat", "dog"]}))
    build_model("softmax", (28, 28), 2).save(run / "model.keras")
    return run, data, x


def test_added_moved_or_deleted_class_folders_change_no_answer(animal_run):
    """Issue 22: with a folder added, every label shifted silently ("a cat becomes ant 88%"); with the
    data moved, the model was unusable."""
    from digitlab.recognize import Recognizer

    run, data, x = animal_run
    (data / "ant").mkdir()  # sorts first: the live list is now ant, cat, dog
    Image.fromarray(x[0]).save(data / "ant" / "0.png")
    assert Recognizer.load(run).class_names == ["cat", "dog"]
    shutil.rmtree(data)
    recognizer = Recognizer.load(run)
    assert recognizer.class_names == ["cat", "dog"]
    assert recognizer.predict([x[0]])[0].digit in ("cat", "dog")


def test_evaluating_or_resuming_on_changed_folders_is_refused_by_name(animal_run):
    run, data, x = animal_run
    assert recorded_classes(open_run(run)) == ["cat", "dog"]
    (data / "ant").mkdir()
    Image.fromarray(x[0]).save(data / "ant" / "0.png")
    with pytest.raises(ConfigError, match=r"classes are now ant, cat, dog, but .*run trained on cat, dog"):
        recorded_classes(open_run(run))


def test_a_model_evaluated_on_a_data_set_with_other_classes_gets_one_line(animal_run, data_dir):
    """Issue 22 (13): `evaluate <3-class run> --dataset mnist` raised a traceback."""
    from digitlab.evaluation.evaluate import evaluate

    run, _, _ = animal_run
    with pytest.raises(ConfigError, match=r"answers the classes cat, dog; mnist's are 0, 1, .*Evaluate the run on \S*animals, or"):
        evaluate(run, dataset="mnist", data_dir=data_dir)


def test_a_model_evaluated_on_other_data_with_its_classes_is_evaluated_and_with_other_names_refused(animal_run, tmp_path):
    """An MNIST run evaluated on Fashion-MNIST (ten classes too) printed its digits' answers under
    the names "Dress", "Shirt"...: a table that looked like an evaluation and was none."""
    from digitlab.evaluation.evaluate import evaluate

    run, data, x = animal_run
    same = tmp_path / "more-animals"
    class_folders(same, ["cat", "dog"], x[6:])
    assert evaluate(run, dataset=str(same)).class_names == ["cat", "dog"]
    cats = tmp_path / "cats"  # the first of the run's classes: each label means the run's output
    class_folders(cats, ["cat"], x[6:])
    assert recorded_classes(open_run(run), str(cats)) == ["cat", "dog"]
    other = tmp_path / "pets"
    class_folders(other, ["bird", "fish"], x[6:])
    with pytest.raises(ConfigError, match="answers the classes cat, dog; pets's are bird, fish"):
        evaluate(run, dataset=str(other))


@pytest.mark.parametrize("content", ['{"classes": "cat"}', '{"classes": []}', '{"classes": [1, 2]}', "[]"])
def test_a_tampered_classes_file_is_refused(animal_run, content):
    run, _, _ = animal_run
    (run / "classes.json").write_text(content)
    with pytest.raises(RunError, match='classes.json: "classes" must be a list of class names'):
        open_run(run).class_names


def test_a_run_without_a_classes_file_uses_its_data_sets_names(animal_run):
    run, _, _ = animal_run
    (run / "classes.json").unlink()
    assert open_run(run).class_names is None and recorded_classes(open_run(run)) is None


def test_a_run_from_before_runs_recorded_their_classes_is_checked_by_its_data_sets(tmp_path):
    """Without classes.json, an MNIST run evaluated on Fashion-MNIST printed its answers under
    Fashion's names again (a later review): the run's registered data set gives its classes."""
    from digitlab.models import build_model

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "softmax", "dataset": "mnist"}))
    build_model("softmax", (28, 28), 10).save(run / "model.keras")
    with pytest.raises(ConfigError, match="answers the classes 0, 1, 2"):
        recorded_classes(open_run(run), "fashion-mnist")
    assert recorded_classes(open_run(run), "mnist") is None


def test_an_unsure_answer_of_a_model_without_a_not_a_digit_class_says_only_what_it_knows():
    """"unsure (not sure: the best guess, 4, has 32%, ...; it may not be a digit.)": "unsure (not
    sure" said it twice, and a model of ten digits cannot tell what is not one (the README
    walkthrough of 2026-12-07)."""
    from digitlab.recognize import Recognizer

    class Model:  # a model of the ten digits, 32% sure of a 4
        input_shape, thread_safe = (None, 28, 28), True

        def predict(self, x, **_):
            p = np.full((len(x), 10), 0.68 / 9, np.float32)
            p[:, 4] = 0.32
            return p

    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255
    (pred,) = Recognizer(Model(), list("0123456789")).predict([image])
    assert pred.status == "unsure" and pred.message == "the best guess, 4, has 32%, under the threshold of 50%."
