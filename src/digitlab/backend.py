"""Pick the Keras backend before Keras is imported: the one measured fastest for the model.

Measured on a 2-core CPU (see BENCHMARKS.md): on JAX, with digitlab's compiled loop
(digitlab.jaxloop), the MLP trains 3.9x and the CNN 1.3x faster than Keras + TensorFlow's `fit`;
`cnn-aug`'s random augmentation layers are slow on JAX, so it names TensorFlow. Each preset names
its backend; `KERAS_BACKEND` set by the user always wins, and once Keras is imported in a process
its backend is fixed.
"""

from __future__ import annotations

import importlib.util
import os
import sys

BACKENDS = ("jax", "tensorflow", "torch")
DEFAULT_BACKEND = "jax"


def select_backend(preferred: str | None = None) -> str:
    """Import Keras on `preferred` unless the user set KERAS_BACKEND or Keras is already imported.

    Returns the backend that Keras uses in this process. The environment is left as it was, so
    child processes (such as `digitlab reproduce`'s) choose their own backend again.
    """
    if "keras" not in sys.modules:
        user_choice = bool(os.environ.get("KERAS_BACKEND"))
        if not user_choice:
            os.environ["KERAS_BACKEND"] = preferred or DEFAULT_BACKEND
        try:
            _import_tensorflow_quietly()  # TensorFlow's import may import Keras: env set first
        finally:
            if not user_choice:
                del os.environ["KERAS_BACKEND"]
    return sys.modules["keras"].backend.backend()


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow (if installed) with its C++ start-up chatter sent to /dev/null.

    Keras imports TensorFlow whenever it is installed -- to save or load any model, whatever the
    backend -- and TensorFlow's native code then prints oneDNN and CUDA notices to stderr that no
    environment variable silences. They would bury digitlab's own messages.
    """
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
