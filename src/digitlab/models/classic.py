"""Classic scikit-learn baselines, behind the same small interface as a Keras model.

The tutorials end with "try a random forest instead". These presets train through the same
`digitlab train`, run folder, evaluation, recognition and service as the networks, because a
`ClassicModel` answers the few calls digitlab makes of a model: `predict` (class probabilities),
`input_shape`, `count_params` and `save`. It is saved with skops, not pickle: loading a skops file
runs no code, and `load_classic` refuses a file holding any type outside scikit-learn and NumPy.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.errors import RunError

SKOPS_FILE = "model.skops"
PRESET_ESTIMATORS = frozenset({  # the top-level estimator of each preset below
    "sklearn.ensemble._forest.RandomForestClassifier", "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.linear_model._logistic.LogisticRegression", "sklearn.naive_bayes.GaussianNB",
    "sklearn.svm._classes.LinearSVC",
})


def random_forest(seed: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed)


def knn(seed: int):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=3, n_jobs=-1)  # deterministic: the seed is not needed


def logistic_regression(seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=100, random_state=seed)


def naive_bayes(seed: int):
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


def linear_svm(seed: int):
    from sklearn.svm import LinearSVC

    # The primal solver: on 60,000 x 784 it is much faster than the dual one (n_samples > n_features).
    return LinearSVC(C=0.1, dual=False, random_state=seed)


@dataclass
class ClassicModel:
    """A fitted scikit-learn classifier on flattened [0, 1] pixels, speaking digitlab's model calls."""

    estimator: object
    input_shape: tuple = (None, 784)
    filename: str = SKOPS_FILE

    def predict(self, x, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """Class probabilities (n, classes). Models without probabilities (the linear SVM) give the
        softmax of their decision values; the run's fitted temperature then calibrates them."""
        x = np.asarray(x, np.float32).reshape(len(x), -1)
        if hasattr(self.estimator, "predict_proba"):
            p = self.estimator.predict_proba(x)
        else:
            scores = self.estimator.decision_function(x)
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p = p.astype(np.float32)
        return p / p.sum(axis=1, keepdims=True)  # rows sum to 1 in float32 too

    def count_params(self) -> int:
        """The numbers the model learned or stores: weights, tree nodes, or (k-NN) training pixels."""
        e = self.estimator
        if hasattr(e, "coef_"):
            return int(e.coef_.size + np.size(e.intercept_))
        if hasattr(e, "estimators_"):  # a forest: every node holds a split or a leaf's class counts
            return int(sum(t.tree_.node_count for t in e.estimators_))
        if hasattr(e, "theta_"):
            return int(e.theta_.size + e.var_.size + e.class_prior_.size)
        if hasattr(e, "_fit_X"):
            return int(e._fit_X.size)
        return 0

    def save(self, path: str | os.PathLike) -> None:
        import skops.io

        skops.io.dump(self.estimator, path)


def fit_classic(builder, x_train: np.ndarray, y_train: np.ndarray, seed: int) -> ClassicModel:
    """Fit a preset's estimator on uint8 images (n, 28, 28) or already-scaled float pixels."""
    x = np.asarray(x_train, np.float32).reshape(len(x_train), -1)
    if np.asarray(x_train).dtype == np.uint8:
        x /= 255.0
    estimator = builder(seed)
    estimator.fit(x, y_train)
    return ClassicModel(estimator, (None, x.shape[1]))


# Every type a preset's fitted estimator is saved with (tests/unit/test_classic.py derives it from the
# presets and checks it): a .skops file holding any other type is refused before anything in it is
# built. skops' own check trusts whole modules (every scikit-learn class, and `builtins.eval` is in
# `builtins`), which a file can abuse: a Pipeline of FunctionTransformers runs any Python on predict.
ALLOWED_TYPES = frozenset({
    "builtins.bool", "builtins.dict", "builtins.float", "builtins.int", "builtins.list", "builtins.str",
    "builtins.tuple", "numpy.bool_", "numpy.dtype", "numpy.float32", "numpy.float64", "numpy.int32",
    "numpy.int64", "numpy.ndarray",
    "sklearn.ensemble._forest.RandomForestClassifier", "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree", "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.linear_model._logistic.LogisticRegression", "sklearn.naive_bayes.GaussianNB",
    "sklearn.svm._classes.LinearSVC",
})
MAX_SCHEMA_BYTES = 64 << 20  # the largest schema.json read (a k-NN model's is far smaller; its arrays are separate)


def saved_types(path: str | os.PathLike) -> set[str]:
    """Every `module.Class` a .skops file would build, read from its schema without building anything.

    Raises RunError for a file that is not a skops archive or names a node without its module."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_SCHEMA_BYTES:
                raise RunError(f"{path}: refused: its schema is {info.file_size:,} bytes, more than a model has.")
            schema = json.loads(archive.read(info))
    except RunError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise RunError(f"{path}: cannot load the model: not a scikit-learn model file saved by digitlab "
                       f"({type(e).__name__}: {e}).") from None
    types: set[str] = set()
    stack = [schema]
    while stack:  # iterative: a deeply nested schema cannot exhaust the recursion limit
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node or "__module__" in node:
                types.add(f"{node.get('__module__')}.{node.get('__class__')}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return types


def load_classic(path: str | os.PathLike) -> ClassicModel:
    """Load a skops file holding one of the presets' estimators, refusing any file with another type
    (functions, pipelines, anything that could run code) before anything in it is built."""
    import skops.io

    path = Path(path)
    foreign = sorted(saved_types(path) - ALLOWED_TYPES)
    if foreign:
        raise RunError(f"{path}: refused: the file holds types that digitlab's scikit-learn presets never save "
                       f"({', '.join(foreign[:5])}); loading them could run code from the file.")
    try:
        estimator = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    except Exception as e:  # skops raises zipfile, JSON and type errors for a damaged file
        raise RunError(f"{path}: cannot load the model ({type(e).__name__}: {e}).") from None
    if type(estimator).__module__ + "." + type(estimator).__name__ not in PRESET_ESTIMATORS:
        raise RunError(f"{path}: refused: a {type(estimator).__name__} is not one of digitlab's scikit-learn presets.")
    n_features = getattr(estimator, "n_features_in_", 784)
    return ClassicModel(estimator, (None, int(n_features)))
