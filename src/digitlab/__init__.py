"""digitlab: handwritten-digit recognition, from MNIST's IDX files to trained, evaluated networks.

    >>> import digitlab
    >>> (x_train, y_train), (x_test, y_test) = digitlab.load_dataset("mnist")
    >>> run = digitlab.train("mlp")             # trains, evaluates, writes runs/<name>/
    >>> run.metrics["test_accuracy"]
    >>> digitlab.evaluate(run.path).confusion

Keras is imported only when a model is built or loaded, so the backend fastest for each preset
can still be chosen (see digitlab.models.backend).
"""

from __future__ import annotations

from importlib import import_module

from digitlab.data import augment  # distorted copies of training digits (uint8 in, uint8 out; JAX inside)
from digitlab.config import RunConfig
from digitlab.data import DATASETS, read_idx, write_idx
from digitlab.errors import ConfigError, DataError, DigitlabError, FetchError, ImageError, RunError
from digitlab.models.presets import PRESETS, config_for, get_preset
from digitlab.scratch.neuron import Neuron
from digitlab.data.userdata import load_dataset  # registered names and paths to your own data

__version__ = "0.1.0"

# Names whose modules import Keras: loaded on first use.
_LAZY = {
    "train": "digitlab.lab.pipeline",
    "resume": "digitlab.lab.pipeline",
    "Run": "digitlab.lab.pipeline",
    "evaluate": "digitlab.evaluation.evaluate",
    "Evaluation": "digitlab.evaluation.evaluate",
    "load_model": "digitlab.models.files",
    "build_model": "digitlab.models",
    "Recognizer": "digitlab.recognize",
    "Prediction": "digitlab.recognize",
    "Reading": "digitlab.recognize",
    "plots": "digitlab.reports.plots",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = import_module(_LAZY[name])
        return module if name == "plots" else getattr(module, name)
    raise AttributeError(f"module 'digitlab' has no attribute {name!r}")


__all__ = [
    "DATASETS", "PRESETS", "ConfigError", "DataError", "DigitlabError", "FetchError", "ImageError", "Neuron",
    "RunConfig", "RunError", "augment", "config_for", "get_preset", "load_dataset", "read_idx", "write_idx",
    *_LAZY,
]
