"""Evaluate a trained model on a data set's test images: loss, accuracy, confusion, per-class report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from digitlab.evaluation import metrics
from digitlab.models.backend import select_backend
from digitlab.data.userdata import dataset_info, is_user_data, load_test_split
from digitlab.errors import ConfigError
from digitlab.models import get_preset
from digitlab.models.numpy_model import INFERENCE_FILE, exported_from, predict_batches, second_look
from digitlab.models.numpy_model import load as load_inference
from digitlab.models.precision import computing_in, prediction_precision
from digitlab.models.shipped import open_model
from digitlab.data.arrays import shape_for
from digitlab.evaluation.calibration import apply_temperature, expected_calibration_error
from digitlab.models.files import load_model  # noqa: F401 (digitlab.load_model's old home)
from digitlab.runs import MODEL_FILE, RunFiles, dataset_label, open_run


@dataclass
class Evaluation:
    """A model's predictions on a labelled set, and the scores computed from them."""

    dataset: str
    class_names: list[str]
    labels: np.ndarray  # (n,) true classes
    probabilities: np.ndarray  # (n, classes) softmax outputs
    temperature: float | None = None  # fitted on the validation split, if the run has one
    compute_precision: str = "float32"  # the arithmetic the probabilities were computed in
    loss: float = field(init=False)
    accuracy: float = field(init=False)
    confusion: np.ndarray = field(init=False)
    run: RunFiles | None = field(default=None, init=False, repr=False)  # what `evaluate` opened and evaluated

    def __post_init__(self) -> None:
        self.loss = metrics.cross_entropy(self.labels, self.probabilities)
        self.accuracy = metrics.accuracy(self.labels, self.predicted)
        self.confusion = metrics.confusion(self.labels, self.predicted, len(self.class_names))

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def per_class(self) -> list[dict]:
        return metrics.per_class(self.labels, self.predicted, self.class_names)

    def most_confused(self, top: int = 5) -> list[dict]:
        return metrics.most_confused(self.confusion, self.class_names, top)

    def calibration(self) -> dict:
        """Expected calibration error of the raw softmax, and after temperature scaling."""
        out = {"ece": expected_calibration_error(self.probabilities, self.labels)}
        if self.temperature is not None:
            calibrated = apply_temperature(self.probabilities, self.temperature)
            out |= {"temperature": self.temperature, "ece_calibrated": expected_calibration_error(calibrated, self.labels)}
        return out

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "test_loss": self.loss,
            "test_accuracy": self.accuracy,
            "test_images": int(len(self.labels)),
            "compute_precision": self.compute_precision,  # (not the per-class metric "precision")
            "calibration": self.calibration(),
            "per_class": self.per_class,
            "most_confused": self.most_confused(),
        }


def predict_probabilities(model, images: np.ndarray, batch_size: int = 1000, second_look_below: float = 0.0) -> np.ndarray:
    """Softmax outputs of a Keras model for uint8 images (n, 28, 28), with the run's second look
    (`RunConfig.second_look_below`, `digitlab.models.numpy_model.second_look`)."""
    shape = tuple(model.input_shape[1:])
    return second_look(lambda x: predict_batches(model, shape_for(x, shape), batch_size), images, second_look_below)


def evaluate_model(model, images: np.ndarray, labels: np.ndarray, dataset: str = "mnist",
                   temperature: float | None = None, precision: str = "float32",
                   class_names: list[str] | None = None, second_look_below: float = 0.0) -> Evaluation:
    """Evaluate an in-memory Keras model on uint8 images and integer labels, its layers computing
    in `precision` ("float32" or "mixed_bfloat16"; the model is float32 again after). `class_names`
    default to the data set's."""
    names = list(class_names or dataset_info(dataset).class_names)
    with computing_in(model, precision):
        probabilities = predict_probabilities(model, images, second_look_below=second_look_below)
    if probabilities.shape[1] != len(names) or (len(labels) and int(np.max(labels)) >= len(names)):
        raise ConfigError(f"the model has {probabilities.shape[1]} outputs, but {dataset_label(dataset)} has "
                          f"{len(names)} classes; evaluate it on the data set it was trained on.")
    return Evaluation(dataset, names, np.asarray(labels), probabilities, temperature, precision)


def evaluate(
    run_or_model: str | os.PathLike | None = None,
    *,
    dataset: str | None = None,
    data_dir: str | os.PathLike | None = None,
    out: str | os.PathLike = "runs",
    trust: bool = False,
    precision: str = "auto",
) -> Evaluation:
    """Evaluate a run folder or .keras file (default: the latest run) on its data set's test split.

    `precision="auto"` computes in the precision the run trained in where that is fast here
    (`digitlab.models.precision.prediction_precision`), as the run's own test accuracy was; "float32" is
    the saved model's exact arithmetic. A run that computes in float32 is evaluated with its NumPy
    export (`inference.npz`, when it is the export of the run's model.keras as it is now, and the
    network is dense): the network `predict` answers with, the same float32 arithmetic as Keras' up
    to rounding."""
    # "reader": the model shipped with digitlab, as `predict --model reader` names it (a folder of
    # that name here wins, as there); its 99.42% was not to be checked otherwise
    run = open_run(run_or_model, out) if run_or_model is None else open_model(run_or_model, out)
    dataset = dataset or run.dataset
    if run.model.suffix == ".skops" and precision == "mixed_bfloat16":
        raise ConfigError(f"{run.model} is a scikit-learn model: it computes in float32; precision "
                          "mixed_bfloat16 applies to Keras networks.")
    trained = run.config.precision if run.config else None
    export = run.model.parent / INFERENCE_FILE
    model = load_inference(run.model) if run.shipped else None  # its NumPy file is all it has
    if run.shipped:
        if precision == "mixed_bfloat16":  # it was computed in float32 in silence
            raise ConfigError(f"the shipped {run.folder.name} has only its NumPy inference file, which computes in "
                              "float32; leave out --precision, or train a Keras model: digitlab train --model "
                              f"{run.preset}.")
        precision = "float32"
    elif (run.model.name == MODEL_FILE and (precision == "float32" or (precision == "auto" and trained in (None, "float32")))
            and export.is_file() and exported_from(export, run.model)):
        # The run's NumPy export, which `predict` and `serve` answer with: the same float32 network
        # without Keras' import and compilation (`digitlab evaluate` 3.3 s -> 0.9 s; BENCHMARKS.md).
        # Dense networks only: NumPy's convolutions over a whole test set are slower than XLA's
        # and take gigabytes for their image patches.
        model = load_inference(export)
        if any(layer["kind"] == "conv" for layer in model.layers):
            model = None
        else:
            precision = "float32"
    if model is None:
        backend = select_backend(get_preset(run.preset).backend if run.preset else None)
        model = load_model(run.model, trust=trust)
        precision = prediction_precision(trained, backend, precision)
    names = recorded_classes(run, dataset)
    x_test, y_test = load_test_split(dataset, data_dir=data_dir)
    evaluation = evaluate_model(model, x_test, y_test, dataset, run.temperature, precision, names,
                                second_look_below=run.config.second_look_below if run.config else 0.0)
    evaluation.run = run
    return evaluation


def recorded_classes(run: RunFiles, dataset: str | None = None) -> list[str] | None:
    """The run's own class names, checked against `dataset`'s (default: the run's) when that is the
    data set it trained on: labels read from a class folder added or removed since would be
    counted against the wrong outputs. None where the run recorded none."""
    names = run.class_names
    if dataset is not None and dataset != run.dataset:
        # Another data set: its label k must mean the run's output k. Its classes may be the first
        # of the run's (your own digits 0-4 against an MNIST run), not other names (Fashion's).
        other = list(dataset_info(dataset).class_names)
        if names is None and not is_user_data(run.dataset):  # a run from before classes.json: its data set's
            names = list(dataset_info(run.dataset).class_names)
        if names is not None and other != names[:len(other)]:
            raise ConfigError(f"{run.folder} answers the classes {', '.join(names[:12])}; {dataset_label(dataset)}'s are "
                              f"{', '.join(other[:12])}: its labels would be counted against outputs that mean other "
                              f"things. Evaluate the run on {run.dataset}, or on data with its classes.")
        return names
    if names is not None:
        now = list(dataset_info(run.dataset).class_names)
        if now != names:
            raise ConfigError(f"{dataset_label(run.dataset)}'s classes are now {', '.join(now[:12])}, but "
                              f"{run.folder} trained on {', '.join(names[:12])}; restore the data as it was, "
                              "or train a new run on it.")
    return names
