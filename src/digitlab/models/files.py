"""Model files: a trained network's .keras file or a baseline's .skops file, loaded without running code.

Keras is imported inside `load_model`, after `select_backend`, and only for a .keras file: a
scikit-learn baseline, or a run predicted through its NumPy inference file, never pays for it.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from digitlab.errors import RunError
from digitlab.models.backend import select_backend
from digitlab.models.classic import load_classic


def load_model(path: str | os.PathLike, *, trust: bool = False):
    """Load a .keras file in Keras' safe mode (no code from the file is run), or a .skops baseline.

    A model file can carry Python code (a Lambda layer's function): loading it runs that code, so
    it is refused unless `trust=True` (`--trust-model` on the command line), for a file whose
    origin the user knows.
    """
    if Path(path).is_dir():  # Keras' own error named an UnboundLocalError
        raise RunError(f"{path}: a folder; load_model takes a model file (its model.keras or model.skops). For a run "
                       "folder, use digitlab.Recognizer.load(folder) or digitlab.evaluate(folder).")
    if Path(path).suffix == ".skops":
        return load_classic(path)
    if Path(path).suffix == ".keras" and Path(path).is_file() and not zipfile.is_zipfile(path):
        # Keras would say "File not found" of a file that is there
        raise RunError(f"{path}: not a Keras model file (a .keras file is a zip archive; this one is not): "
                       "damaged, or another kind of file named .keras. Train the run again, or name another model.")
    select_backend()  # no-op if Keras is already imported
    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=not trust)
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
    import numpy as np

    for variable in model.weights:  # a NaN answered "the best guess, 9, has nan%", and evaluated as 9.80%
        if not np.isfinite(np.asarray(variable)).all():
            raise RunError(f"{path}: the weights {variable.path} are not all finite numbers (NaN or infinity): the "
                           "training diverged or the file was changed; train it again.")
    return model
