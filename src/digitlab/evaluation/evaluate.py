"""Evaluate a trained model on a data set's test images: loss, accuracy, confusion, per-class report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitlab.evaluation import metrics
from digitlab.models.backend import select_backend
from digitlab.config import RunConfig
from digitlab.data.userdata import dataset_info, load_dataset
from digitlab.errors import ConfigError, RunError
from digitlab.models import get_preset
from digitlab.models.numpy_model import predict_batches
from digitlab.models.precision import computing_in, prediction_precision
from digitlab.data.arrays import shape_for
from digitlab.evaluation.calibration import apply_temperature, expected_calibration_error
from digitlab.runs import CONFIG_FILE, resolve_model, run_temperature


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


def predict_probabilities(model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Softmax outputs of a Keras model for uint8 images (n, 28, 28)."""
    x = shape_for(images, tuple(model.input_shape[1:]))
    return predict_batches(model, x, batch_size)


def evaluate_model(model, images: np.ndarray, labels: np.ndarray, dataset: str = "mnist",
                   temperature: float | None = None, precision: str = "float32") -> Evaluation:
    """Evaluate an in-memory Keras model on uint8 images and integer labels, its layers computing
    in `precision` ("float32" or "mixed_bfloat16"; the model is float32 again after)."""
    names = list(dataset_info(dataset).class_names)
    with computing_in(model, precision):
        probabilities = predict_probabilities(model, images)
    return Evaluation(dataset, names, np.asarray(labels), probabilities, temperature, precision)


def load_model(path: str | os.PathLike, *, trust: bool = False):
    """Load a .keras file in Keras' safe mode (no code from the file is run), or a .skops baseline.

    A model file can carry Python code (a Lambda layer's function): loading it runs that code, so
    it is refused unless `trust=True` (`--trust-model` on the command line), for a file whose
    origin the user knows.
    """
    if Path(path).suffix == ".skops":
        from digitlab.models.classic import load_classic

        return load_classic(path)
    select_backend()  # no-op if Keras is already imported
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=not trust)
    except ValueError as e:
        if "safe_mode" in str(e) or "arbitrary code" in str(e):
            what = "a Lambda layer's Python function" if "Lambda" in str(e) else "Python code"
            raise RunError(
                f"{path}: refused: the model file carries {what}, and loading it would run that code "
                "with your permissions. If you trust the file (you made it, or know who did), load it "
                "with --trust-model (Python: trust=True)."
            ) from None
        raise RunError(f"{path}: cannot load the model ({type(e).__name__}: {e}).") from None
    except Exception as e:  # Keras raises ValueError, OSError, zipfile errors... for a bad file
        raise RunError(f"{path}: cannot load the model ({type(e).__name__}: {e}).") from None


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
    the saved model's exact arithmetic."""
    model_path, run_dir = resolve_model(run_or_model, out)
    config = RunConfig.load(run_dir / CONFIG_FILE) if run_dir is not None else None
    backend = select_backend(get_preset(config.model).backend if config else None)
    dataset = dataset or (config.dataset if config else "mnist")
    if model_path.suffix == ".skops" and precision == "mixed_bfloat16":
        raise ConfigError(f"{model_path} is a scikit-learn model: it computes in float32; precision "
                          "mixed_bfloat16 applies to Keras networks.")
    model = load_model(model_path, trust=trust)
    precision = prediction_precision(config.precision if config else None, backend, precision)
    _, (x_test, y_test) = load_dataset(dataset, data_dir=data_dir)
    return evaluate_model(model, x_test, y_test, dataset, run_temperature(run_dir), precision)
