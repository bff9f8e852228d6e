"""Training diagnostics: dead ReLUs, saturated sigmoids, vanishing gradients, per hidden layer.

The tutorials warn that sigmoid units saturate and gradients vanish with sloppy initialisation,
and that ReLU units die ("a large fraction (about 40%) of your neurons were zero the entire
time"). This module measures both on a trained dense network, with the NumPy engine:
activations over the whole training set, and the per-layer gradient norms and update ratios
recorded in the run's history during training.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from digitlab.data.arrays import shape_for
from digitlab.data.userdata import load_dataset
from digitlab.errors import ConfigError, RunError
from digitlab.evaluation.evaluate import load_model, recorded_classes
from digitlab.runs import HISTORY_JSON, open_run
from digitlab.scratch.convert import PASS_THROUGH, from_keras
from digitlab.scratch.layers import Dense, ReLU, Sigmoid, Tanh
from digitlab.scratch.network import Network

# The thresholds behind the verdicts (reported with them).
THRESHOLDS = {
    "dead_unit": "a ReLU unit whose output is 0 for every training image",
    "dead_layer_share": 0.10,  # a layer with at least this share of dead units is reported
    "saturation_margin": 0.01,  # output within this of the bounds (0/1 sigmoid, -1/1 tanh)
    "saturated_unit_share_of_images": 0.5,  # a unit saturated on more than half of the images
    "saturated_layer_share": 0.5,  # a layer with at least this share of saturated units
    "vanishing_ratio": 0.02,  # kernel gradient norm below this times the largest layer's
    "not_learning_loss": 0.95,  # a last epoch's training loss at least this share of chance's, ln(classes)
}


@dataclass
class LayerReport:
    """What one hidden layer (a Dense layer and its activation) did over the training set."""

    name: str
    activation: str
    units: int
    mean: float
    std: float
    dead_fraction: float | None = None  # ReLU layers
    dead_units: list[int] = field(default_factory=list)
    saturated_fraction: float | None = None  # sigmoid and tanh layers
    grad_norm: float | None = None  # last epoch, from the history
    grad_ratio: float | None = None  # grad_norm / the largest layer's grad_norm
    update_ratio: float | None = None  # ||W_end - W_start|| / ||W_start|| over the last epoch
    verdicts: list[str] = field(default_factory=list)

    learning: bool = True  # whether the network as a whole learned (Diagnosis.not_learning)

    @property
    def verdict(self) -> str:
        if self.verdicts:
            return "; ".join(self.verdicts)
        return "healthy" if self.learning else "no fault of its own found"


@dataclass
class Diagnosis:
    layers: list[LayerReport]
    images: int
    history_used: bool
    thresholds: dict = field(default_factory=lambda: dict(THRESHOLDS))
    # The network's own verdict, where its training loss stayed at chance's: no layer is then
    # "healthy", whatever its units and gradients (a deep sigmoid net under SGD: 11% and every
    # layer's numbers within bounds)
    not_learning: str | None = None

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "history_used": self.history_used,
            "not_learning": self.not_learning,
            "thresholds": self.thresholds,
            "layers": [{**asdict(layer), "verdict": layer.verdict} for layer in self.layers],
        }


def hidden_layers(net: Network) -> list[tuple[Dense, object]]:
    """(Dense, activation) pairs for the hidden layers: every Dense followed by an activation."""
    pairs = []
    for i, layer in enumerate(net.layers[:-1]):
        nxt = net.layers[i + 1]
        if isinstance(layer, Dense) and isinstance(nxt, (ReLU, Sigmoid, Tanh)):
            pairs.append((layer, nxt))
    return pairs


def activation_stats(net: Network, x: np.ndarray, batch_size: int = 2000) -> dict[str, dict]:
    """Forward `x` (n, features) in batches; per activation layer: units ever active, saturated
    counts, and the mean and standard deviation of all outputs."""
    margin = THRESHOLDS["saturation_margin"]
    stats: dict[str, dict] = {}
    for start in range(0, len(x), batch_size):
        h = x[start : start + batch_size]
        for layer in net.layers:
            h = layer.forward(h, training=False)
            if not isinstance(layer, (ReLU, Sigmoid, Tanh)):
                continue
            s = stats.setdefault(layer.name, {"ever_active": np.zeros(h.shape[1], bool),
                                              "saturated": np.zeros(h.shape[1], np.int64),
                                              "sum": 0.0, "sumsq": 0.0, "count": 0})
            s["ever_active"] |= (h > 0).any(axis=0)
            low = 0.0 if isinstance(layer, Sigmoid) else -1.0
            s["saturated"] += ((h <= low + margin) | (h >= 1.0 - margin)).sum(axis=0)
            s["sum"] += float(h.sum(dtype=np.float64))
            s["sumsq"] += float(np.square(h, dtype=np.float64).sum())
            s["count"] += h.size
    return stats


def diagnose_network(net: Network, x: np.ndarray, history: dict | None = None) -> Diagnosis:
    """Diagnose a NumPy-engine network on flattened float images `x`, with an optional history."""
    stats = activation_stats(net, x)
    # Only the network's own layers: a key naming no layer of it set "the largest" norm
    names = {f"{kind}/{dense.name}" for dense in net.dense_layers() for kind in ("grad_norm", "update_ratio")}
    history = {k: v for k, v in (history or {}).items() if k in names or k == "loss"}
    last = {k.split("/", 1)[1]: v[-1] for k, v in history.items() if k.startswith("grad_norm/") and v}
    moved = {k.split("/", 1)[1]: v[-1] for k, v in history.items() if k.startswith("update_ratio/") and v}
    if not all(_number(v) and v >= 0 for v in [*last.values(), *moved.values()]):
        last = moved = {}  # a diverged epoch's NaN (or a null, a norm under 0) would call every layer vanishing
    largest = max(last.values(), default=0.0)
    reports = []
    for dense, act in hidden_layers(net):
        s = stats[act.name]
        mean = s["sum"] / s["count"]
        report = LayerReport(
            name=dense.name, activation=act.name.rsplit("_", 1)[0], units=dense.shape[1], mean=mean,
            std=float(np.sqrt(max(s["sumsq"] / s["count"] - mean**2, 0.0))),
        )
        if isinstance(act, ReLU):
            dead = np.flatnonzero(~s["ever_active"])
            report.dead_units = dead.tolist()
            report.dead_fraction = len(dead) / report.units
            if report.dead_fraction >= THRESHOLDS["dead_layer_share"]:
                report.verdicts.append(f"{report.dead_fraction:.0%} dead units")
        else:
            share = s["saturated"] / len(x) > THRESHOLDS["saturated_unit_share_of_images"]
            report.saturated_fraction = float(share.mean())
            if report.saturated_fraction >= THRESHOLDS["saturated_layer_share"]:
                report.verdicts.append(  # not "gradients vanish": their norms need not (N(0, 4) weights make up for it)
                    f"saturated ({report.saturated_fraction:.0%} of units): outputs pinned at their bounds, "
                    "where the slope is near 0"
                )
        if dense.name in last:
            report.grad_norm = last[dense.name]
            report.grad_ratio = last[dense.name] / largest if largest > 0 else 0.0
            report.update_ratio = moved.get(dense.name)
            if report.grad_ratio < THRESHOLDS["vanishing_ratio"]:
                report.verdicts.append(f"vanishing gradients ({100 * report.grad_ratio:.3g}% of the largest "
                                       "layer's norm)")  # 1.97%, not "2.0%" under a 2% rule
        reports.append(report)
    not_learning = _not_learning(history.get("loss"), net.dense_layers()[-1].shape[1])
    for report in reports:
        report.learning = not_learning is None
    return Diagnosis(reports, len(x), bool(last), not_learning=not_learning)


def _number(value) -> bool:
    """A finite number, as history.json may hold it (10**400 is an int that no float holds)."""
    try:
        return type(value) in (int, float) and math.isfinite(value)
    except OverflowError:
        return False


def _not_learning(losses, classes: int) -> str | None:
    """Why the network as a whole has not learned, if its last epoch's training loss is still
    about chance's (ln of the number of classes: the loss of a uniform guess) or above it (the
    training diverged); else None."""
    if not (isinstance(losses, list) and losses and type(losses[-1]) in (int, float)):
        return None
    chance, last = math.log(classes), losses[-1]
    if _number(last) and last < THRESHOLDS["not_learning_loss"] * chance:
        return None
    if not _number(last) or last > 2 * chance:  # a loss of 229 (lr 0.5) is no uniform guess
        shown = f"{last:.4g}" if _number(last) else "not a finite number"
        return (f"the network has not learned: its training loss in the last epoch, {shown}, is far above what a "
                f"uniform guess scores (ln {classes} = {chance:.3f}): the training diverged. Try a smaller "
                "learning rate.")
    return (f"the network has not learned: its training loss in the last epoch, {last:.3f}, is what a "
            f"uniform guess scores (ln {classes} = {chance:.3f}). Look at the recipe (the optimizer, the learning "
            "rate, the initialisation) as much as at the layers below.")


def diagnose(
    run_or_model: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    out: str | os.PathLike = "runs",
    limit: int | None = None,
) -> Diagnosis:
    """Diagnose a run folder or .keras file (default: the latest run) on its training set."""
    run = open_run(run_or_model, out)
    if run.model.suffix != ".keras":
        raise RunError(f"{run.model}: diagnose looks inside neural networks; this is a scikit-learn model.")
    model = load_model(run.model)
    other = next((layer for layer in model.layers if type(layer).__name__ not in ("Dense", "Dropout", *PASS_THROUGH)), None)
    if other is not None:  # the engine's own message spoke of the engine, which the user had not asked for
        raise RunError(f"{run.model}: diagnose looks inside dense networks (Dense layers and their activations); "
                       f"{other.name} is a {type(other).__name__} layer.")
    net = from_keras(model)  # load_model refused weights that are not finite (they were "100% dead units")
    recorded_classes(run)  # the data set's classes as the run trained on them, as `evaluate` checks
    (x_train, _), _ = load_dataset(run.dataset, data_dir=data_dir)
    if limit is not None:
        if not (isinstance(limit, (int, np.integer)) and limit >= 1):  # -5 took all but 5 images; 0 a KeyError
            raise ConfigError(f"limit is a number of training images, at least 1, not {limit!r}.")
        x_train = x_train[:limit]
    history = run.read(HISTORY_JSON)
    x = shape_for(x_train, (net.dense_layers()[0].shape[0],))
    return diagnose_network(net, x, history)
