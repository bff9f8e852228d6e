"""Named presets: the tutorials' networks, each with its training recipe and what it reported.

A preset is a plain record; `config_for` turns one into a `RunConfig`, with overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from digitlab.models.backend import CONVNET, convnet_backend
from digitlab.config import RunConfig, reject_unknown_fields
from digitlab.errors import ConfigError
from digitlab.models import classic


@dataclass(frozen=True)
class Claim:
    """What a tutorial reported, and the accuracy at which our mean counts as meeting it."""

    text: str
    metric: str  # "test_accuracy", or "val_accuracy" where the tutorial measured a held-out split
    threshold: float


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    builder: str  # name of the function in digitlab.models.networks
    recipe: dict  # RunConfig fields this preset sets
    claim: Claim | None  # what its tutorial reported; None for digitlab's own experiments
    # The Keras backend measured fastest for this network on a CPU: "jax", "tensorflow", or CONVNET,
    # whichever trains convolutions fastest on this CPU (digitlab.models.backend.convnet_backend).
    backend_rule: str
    kind: str = "keras"  # or "sklearn": a classic baseline from digitlab.models.classic

    @property
    def backend(self) -> str:
        """The Keras backend this preset trains on here."""
        return convnet_backend() if self.backend_rule == CONVNET else self.backend_rule

    def config(self, **overrides) -> RunConfig:
        return config_for(self.name, **overrides)

    def build_fn(self) -> Callable:
        if self.kind == "sklearn":
            return getattr(classic, self.builder)
        from digitlab.models import networks  # imports Keras: only once a network is built (backend chosen)

        return getattr(networks, self.builder)


# A claim given as one number is met when our mean is at most 0.2 points below it: about two
# seed-to-seed standard deviations for these networks.
POINT_TOLERANCE = 0.002

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "softmax",
            "softmax regression, 784 -> 10 (TensorFlow's single-layer MNIST example)",
            "softmax_regression",
            dict(optimizer="sgd", learning_rate=0.5, batch_size=128, epochs=10, validation_split=0.1),
            Claim("about 92%", "test_accuracy", 0.915),
            "jax",
        ),
        Preset(
            "mlp-dropout",
            "two 512-unit ReLU layers with dropout 0.2 (Keras' mnist_mlp example)",
            "mlp_dropout",
            dict(optimizer="rmsprop", batch_size=128, epochs=4, validation="test"),
            Claim("higher than 95%", "test_accuracy", 0.95),
            "jax",
        ),
        Preset(
            "mlp-wide",
            "784 -> 784 relu -> 32 relu -> 10, 640,890 parameters, SGD with batch 500",
            "mlp_wide",
            # The tutorial does not state its learning rate. Keras' SGD default (0.01) reaches only
            # ~92.4% in 20 epochs of batch 500 on [0, 1] pixels (measured); 0.1 reaches ~97%.
            dict(optimizer="sgd", learning_rate=0.1, batch_size=500, epochs=20, validation_split=0.1),
            Claim("around 95-98%", "test_accuracy", 0.95),
            "jax",
        ),
        Preset(
            "mlp-small",
            "784 -> 128 relu -> 10, 101,770 parameters, SGD on a 45,000/15,000 split",
            "mlp_small",
            dict(optimizer="sgd", batch_size=128, epochs=20, validation_split=0.25),
            Claim("92.64% on its 15,000 held-out images", "val_accuracy", 0.9264 - POINT_TOLERANCE),
            "jax",
        ),
        Preset(
            "mlp",
            "784 -> 512 relu -> 10, Adam, batch 64, 5 epochs: the default",
            "mlp",
            dict(optimizer="adam", batch_size=64, epochs=5, validation_split=0.1),
            Claim("97.88%", "test_accuracy", 0.9788 - POINT_TOLERANCE),
            "jax",
        ),
        Preset(
            "mlp-deep-sigmoid",
            "four 128-unit sigmoid layers: the vanishing-gradient experiment (see `digitlab diagnose`)",
            "mlp_deep_sigmoid",
            dict(optimizer="adam", batch_size=64, epochs=5, validation_split=0.1),
            None,  # not a tutorial's network: `digitlab reproduce` leaves it out
            "jax",
        ),
        Preset(
            "cnn-simple",
            "conv 32 -> max-pool -> conv 64 -> max-pool -> dropout 0.5 -> 10 (keras-io's Simple MNIST convnet)",
            "cnn_simple",
            # Precision as the other CNNs' (mixed bfloat16 where TensorFlow computes it fast): an engine
            # choice, like the backend; the tutorial's recipe is the optimizer, batch size and epochs.
            dict(optimizer="adam", batch_size=128, epochs=15, validation_split=0.1, precision="auto"),
            Claim("about 99%", "test_accuracy", 0.99 - POINT_TOLERANCE),
            CONVNET,
        ),
        Preset(
            "cnn",
            "two conv + max-pool stages, 128-unit dense, dropout (digitlab's design)",
            "cnn",
            # Cosine decay of Adam's rate: 99.34% vs 99.19% at a constant rate (12 epochs, seed 0).
            # Precision "auto": mixed bfloat16 where TensorFlow computes it fast (digitlab.models.precision.resolve_precision).
            dict(optimizer="adam", lr_schedule="cosine", batch_size=128, epochs=12, validation_split=0.1,
                 precision="auto"),
            Claim("at least 99.2% (digitlab's target)", "test_accuracy", 0.992),
            # TensorFlow's fit where it runs oneDNN, else JAX with digitlab's compiled loop (digitlab.training.jaxloop;
            # Keras' own fit on JAX is 10x slower)
            CONVNET,
        ),
        Preset(
            "cnn-fast",
            "the cnn at half the width, no dropout, a high rate for 2 epochs: 99% soonest",
            "cnn_fast",
            dict(optimizer="adam", learning_rate=0.006, lr_schedule="cosine", batch_size=128, epochs=2,
                 validation_split=0.1, precision="auto"),
            Claim("at least 99.0% in 2 epochs (digitlab's target)", "test_accuracy", 0.99),
            CONVNET,
        ),
        Preset(
            "cnn-aug",
            "two double-conv stages with batch norm, trained on turned, scaled and shifted digits: the best recipe",
            "cnn_aug",
            dict(optimizer="adam", lr_schedule="cosine", batch_size=128, epochs=15, validation_split=0.1,
                 augment="affine"),
            Claim("at least 99.6% (the speed issue's target)", "test_accuracy", 0.996),
            "tensorflow",
        ),
        Preset(
            "reader",
            "the cnn on MNIST, pen digits drawn as people's pens draw them, and not-digits: for real handwriting",
            "cnn",
            # mnist+pen: MNIST's training digits, pen-digits' train.json with each digit drawn eight ways
            # (pen width, slant, size, wobble, broken strokes; digitlab.data.pen) and a "not a digit"
            # class (digitlab.data.notdigits); tested on MNIST's test set. The cnn, not cnn-aug's
            # network: tried on 2026-12-06, cnn-aug's read MNIST (99.55%) and font letters better but
            # dev.json's pen digits worse (97.9% against 98.7%), at twice the file (docs/presets.md).
            # A second look (four 1-pixel shifts) at the 2-8% of images it is under 90% sure of: on
            # dev.json the page 98.4 -> 98.7%, MNIST test 99.38 -> 99.47% (the 2026-12-05 reader; the
            # one of 2026-12-06 afternoon: 98.4 -> 98.7%, 99.33 -> 99.42%), at ~1.2x the inference work.
            # float32, not "auto": the shipped reader was trained in float32, and on a CPU where "auto"
            # means mixed bfloat16 (an AMX Xeon) the same seed landed 0.52 points lower on dev.json
            # (98.19 against 98.70%), outside the half point its reproduction test allows.
            dict(dataset="mnist+pen", optimizer="adam", lr_schedule="cosine", batch_size=128, epochs=20,
                 validation_split=0.1, augment="affine", precision="float32", second_look_below=0.9),
            None,  # digitlab's own; measured on pen-digits' dev.json by benchmarks/handwriting.py
            CONVNET,
        ),
    ]
}
# The tutorials' "try a random forest instead": scikit-learn baselines on the same data and reports.
# They fit in one step (epochs, batch size and optimiser do not apply); 10% is held out to calibrate.
PRESETS |= {
    name: Preset(name, description, builder, dict(validation_split=0.1), None, "jax", kind="sklearn")
    for name, description, builder in [
        ("random-forest", "random forest of 100 trees (scikit-learn)", "random_forest"),
        ("knn", "k-nearest neighbours, k = 3, Euclidean (scikit-learn)", "knn"),
        ("logistic-regression", "multinomial logistic regression, L2, lbfgs (scikit-learn)", "logistic_regression"),
        ("naive-bayes", "Gaussian naive Bayes (scikit-learn)", "naive_bayes"),
        ("linear-svm", "linear support vector machine, C = 0.1, one-vs-rest (scikit-learn)", "linear_svm"),
    ]
}
DEFAULT_PRESET = "mlp"


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except (KeyError, TypeError):  # TypeError: a list, a dict, which cannot be a key
        raise ConfigError(f'"{name}" is not a preset. Choose one of: {", ".join(PRESETS)}.') from None


def config_for(name: str = DEFAULT_PRESET, **overrides) -> RunConfig:
    """The preset's recipe as a RunConfig; `overrides` that are not None replace single fields."""
    preset = get_preset(name)
    reject_unknown_fields(overrides)
    fields = {**preset.recipe, **{k: v for k, v in overrides.items() if v is not None}, "model": name}
    return RunConfig(**fields)
