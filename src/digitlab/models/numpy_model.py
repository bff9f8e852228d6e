"""Prediction without a training framework: a trained network's forward pass in NumPy alone.

Importing Keras (with TensorFlow or JAX behind it) takes seconds; reading one digit takes a
millisecond. So training also writes `inference.npz` beside `model.keras`: the weights and the
layer list, in plain arrays (loaded with `allow_pickle=False`, so the file can hold no code).
`digitlab predict`, `read` and `serve` use it when it is there and fall back to Keras otherwise.
The `.keras` file stays the model of record: `export` is derived from it, and the tests check
that both give the same probabilities (within 1e-5) on the 10,000 MNIST test images.

Covered layers: Dense, Conv2D (stride 1, 'same' or 'valid'), MaxPooling2D, Flatten,
BatchNormalization (folded into a scale and shift), and, as the identity they are at inference,
Dropout and the random augmentation layers; relu / sigmoid / tanh / softmax / linear activations:
every preset.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from digitlab.errors import RunError
from digitlab.files import atomic_write, sha256_file

INFERENCE_FILE = "inference.npz"
MAX_UNPACKED = 200_000_000  # bytes an inference file's arrays may unpack to (the shipped reader's: 1.7 MB)
MAX_INPUT = 1 << 18  # values in one input image: 512 x 512 (digitlab's take 28 x 28)
ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax", "linear")


@dataclass
class NumpyModel:
    """A network's layers as NumPy arrays, answering `predict` like a Keras model (probabilities)."""

    layers: list[dict]  # {"kind": ..., plus arrays and settings}
    input_shape: tuple
    thread_safe = True  # (not a field) a pure function of its arrays: callers need no lock

    def predict(self, x, batch_size: int = 1024, verbose: int = 0) -> np.ndarray:
        x = np.asarray(x, np.float32)
        out = [self._forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self._classes()), np.float32)

    @property
    def output_shape(self) -> tuple:
        """(None, classes), as a Keras model gives it."""
        return None, self._classes()

    def count_params(self) -> int:
        """Trainable and batch-norm parameters, as Keras counts them (BN's four arrays are folded into two)."""
        return int(sum(a.size * (2 if layer["kind"] == "scale" else 1)
                       for layer in self.layers for k, a in layer.items() if k in ("kernel", "bias")))

    def _classes(self) -> int:
        return next(layer["kernel"].shape[-1] for layer in reversed(self.layers) if "kernel" in layer)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            kind = layer["kind"]
            if kind == "dense":
                x = _activate(x @ layer["kernel"] + layer["bias"], layer["activation"])
            elif kind == "conv":
                x = _activate(_conv2d(x, layer["kernel"], layer["padding"]) + layer["bias"], layer["activation"])
            elif kind == "scale":
                x = x * layer["kernel"] + layer["bias"]
            elif kind == "maxpool":
                x = _maxpool(x, layer["size"])
            elif kind == "flatten":
                x = x.reshape(len(x), -1)
        return x


def predict_batches(model, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """`model`'s outputs for the inputs `x`, batch by batch, as one float array: a Keras model,
    a NumpyModel or a scikit-learn baseline (`digitlab.models.classic`).

    A Keras model is called through `predict_on_batch`, one compiled call per batch, not `predict`,
    which wraps the arrays in a data pipeline on every call: on TensorFlow that was half the time
    of a CNN's test set (BENCHMARKS.md)."""
    if not hasattr(model, "predict_on_batch"):
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])


SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))  # (down, right) in pixels: the second look's copies


def second_look(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, below: float) -> np.ndarray:
    """`predict(images)`, except that an image whose top output is under `below` gets the mean of
    its outputs and those of its copies moved one pixel down, up, right and left (`SHIFTS`; zeros,
    the background of prepared images, come in at the edge).

    Test-time augmentation only where the model hesitates: on the 2026-12-05 reader, averaging every image
    gave the same gain as averaging the few under 90% (dev.json's page 98.4 -> 98.7%, MNIST test
    99.38 -> 99.47%) at five times the work instead of about 1.2 times (docs/presets.md).
    `images`: (n, h, w), (n, h, w, c) or square images flattened, (n, h * w), as `predict` takes them."""
    outputs = np.array(predict(images), copy=True)
    if below <= 0 or len(images) == 0:
        return outputs
    unsure = np.flatnonzero(outputs.max(axis=1) < below)
    if len(unsure):
        few = images[unsure]
        # flattened images (n, side * side) are moved as the squares they are, and given back flat
        square = few if few.ndim > 2 else few.reshape(len(few), *2 * [math.isqrt(few.shape[1])])
        total = outputs[unsure] + sum(np.asarray(predict(moved(square, dy, dx).reshape(few.shape)))
                                      for dy, dx in SHIFTS)
        outputs[unsure] = total / (1 + len(SHIFTS))
    return outputs


def moved(images: np.ndarray, down: int, right: int) -> np.ndarray:
    """`images` (n, h, w, ...) moved `down` and `right` pixels (negative: up, left), zeros coming in."""
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    out[:, max(down, 0):h + min(down, 0), max(right, 0):w + min(right, 0)] = \
        images[:, max(-down, 0):h + min(-down, 0), max(-right, 0):w + min(-right, 0)]
    return out


def export(model, path: str | os.PathLike, source: str | os.PathLike | None = None) -> Path | None:
    """Write the Keras `model`'s layers to `path` (.npz); None, writing nothing, if a layer is not covered.

    `source` is the saved model file the export stands for (the run's model.keras): its SHA-256 is
    recorded, and `exported_from` tells whether a file still is that model."""
    layers, arrays = [], {}
    for i, layer in enumerate(model.layers):
        kind, cfg = type(layer).__name__, layer.get_config()
        activation = cfg.get("activation", "linear")
        if kind in ("Dense", "Conv2D") and activation not in ACTIVATIONS:
            return None
        if kind == "Dense":
            spec = {"kind": "dense", "activation": activation}
        elif kind == "Conv2D":
            if (tuple(cfg["strides"]) != (1, 1) or tuple(cfg["dilation_rate"]) != (1, 1) or cfg["groups"] != 1
                    or cfg.get("data_format", "channels_last") != "channels_last" or cfg["padding"] not in ("same", "valid")):
                return None
            spec = {"kind": "conv", "activation": activation, "padding": cfg["padding"]}
        elif kind == "MaxPooling2D":
            size = tuple(cfg["pool_size"])
            if tuple(cfg["strides"] or size) != size or cfg["padding"] != "valid" or size[0] != size[1]:
                return None
            spec = {"kind": "maxpool", "size": size[0]}
        elif kind == "Flatten":
            spec = {"kind": "flatten"}
        elif kind == "BatchNormalization":
            if cfg["axis"] not in (-1, len(layer.input.shape) - 1) or not (cfg["center"] and cfg["scale"]):
                return None
            gamma, beta, mean, variance = (np.asarray(w, np.float32) for w in layer.get_weights())
            scale = gamma / np.sqrt(variance + cfg["epsilon"])  # at inference BN is x * scale + shift
            arrays[f"{i}_kernel"], arrays[f"{i}_bias"] = scale, beta - mean * scale
            layers.append({"kind": "scale", "arrays": f"{i}"})
            continue
        elif kind in ("Dropout", "InputLayer", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomFlip"):
            continue  # identity at inference
        else:
            return None
        if spec["kind"] in ("dense", "conv"):
            kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
            arrays[f"{i}_kernel"], arrays[f"{i}_bias"] = kernel, bias
            spec["arrays"] = f"{i}"
        layers.append(spec)
    meta = {"format": 1, "input_shape": list(model.input_shape[1:]), "layers": layers}
    if source is not None:
        meta["source_sha256"] = sha256_file(source)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    path = Path(path)
    with atomic_write(path) as tmp:
        np.savez(tmp, **arrays)
    return path


def exported_from(path: str | os.PathLike, source: str | os.PathLike) -> bool:
    """Whether the inference file `path` is the export of the model file `source` as it is now (not a
    stale copy from before the model changed, nor another network's file put beside it)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            recorded = json.loads(bytes(data["meta"]).decode()).get("source_sha256")
    except (OSError, KeyError, ValueError, TypeError, AttributeError, json.JSONDecodeError):
        return False
    return isinstance(recorded, str) and recorded == sha256_file(source)


def load(path: str | os.PathLike) -> NumpyModel:
    """Read an inference file written by `export` (no pickled objects are accepted)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            check_unpacked(data, MAX_UNPACKED, f"the {MAX_UNPACKED:,} a digit reader needs")
            meta = json.loads(bytes(data["meta"]).decode())
            layers = []
            for spec in meta["layers"]:
                layer = {k: v for k, v in spec.items() if k != "arrays"}
                if "arrays" in spec:
                    layer["kernel"], layer["bias"] = data[f"{spec['arrays']}_kernel"], data[f"{spec['arrays']}_bias"]
                    if not all(np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all()
                               for a in (layer["kernel"], layer["bias"])):
                        raise ValueError(f"the weights of {spec['arrays']} are not all finite numbers")
                if layer["kind"] not in ("dense", "conv", "scale", "maxpool", "flatten"):
                    raise ValueError(f"unknown layer kind {layer['kind']!r}")
                if layer.get("activation", "linear") not in ACTIVATIONS:
                    raise ValueError(f"unknown activation {layer['activation']!r}")
                layers.append(layer)
            if not any("kernel" in layer for layer in layers):
                raise ValueError("no layer with weights")
            shape = tuple(meta["input_shape"])
            if not 1 <= len(shape) <= 3 or not all(isinstance(d, int) and 0 < d <= 4096 for d in shape) \
                    or math.prod(shape) > MAX_INPUT:
                raise ValueError(f"input shape {list(shape)} is not an image's (at most {MAX_INPUT:,} values)")
            if any(layer["kind"] == "maxpool" and not (isinstance(layer.get("size"), int) and 1 <= layer["size"] <= 64)
                   for layer in layers):
                raise ValueError("a max-pooling size is not a whole number from 1 to 64")
        model = NumpyModel(layers, (None, *shape))
        # One blank image through it: a file whose layers do not fit together (crafted, or damaged)
        # fails here with one line, not with a traceback in the middle of a prediction.
        out = model.predict(np.zeros((1, *shape), np.float32))
        if out.ndim != 2 or out.shape[1] < 1:
            raise ValueError(f"its output has shape {out.shape[1:]}, not one probability a class")
    except (OSError, KeyError, ValueError, TypeError, AttributeError, IndexError, StopIteration,
            ZeroDivisionError, MemoryError, json.JSONDecodeError) as e:
        raise RunError(f"{path}: cannot read the inference file ({type(e).__name__}: {e}); "
                       f"delete it to use model.keras instead.") from None
    return model


def check_unpacked(npz, most: int, what: str) -> None:
    """A ValueError if the arrays of an open .npz file unpack to more than `most` bytes (`what`
    says whose limit), read from the zip's directory before any array is: a small file of
    zeros can unpack to gigabytes."""
    unpacked = sum(info.file_size for info in npz.zip.infolist())
    if unpacked > most:
        raise ValueError(f"its arrays unpack to {unpacked:,} bytes, more than {what}")


def _activate(z: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-np.clip(z, -80, 80)))
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return z


def _conv2d(x: np.ndarray, kernel: np.ndarray, padding: str) -> np.ndarray:
    """(n, h, w, c) * (kh, kw, c, f), stride 1: one matrix product over the image patches (im2col)."""
    kh, kw, c, f = kernel.shape
    if padding == "same":
        top, left = (kh - 1) // 2, (kw - 1) // 2
        x = np.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    patches = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # (n, oh, ow, c, kh, kw)
    n, oh, ow = patches.shape[:3]
    cols = patches.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * c)
    return (cols @ kernel.reshape(kh * kw * c, f)).reshape(n, oh, ow, f)


def _maxpool(x: np.ndarray, size: int) -> np.ndarray:
    n, h, w, c = x.shape
    h, w = h // size * size, w // size * size  # 'valid': a ragged edge is dropped, as in Keras
    return x[:, :h, :w].reshape(n, h // size, size, w // size, size, c).max(axis=(2, 4))
