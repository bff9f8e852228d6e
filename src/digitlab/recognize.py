"""Recognise digits in real images with a trained model: prepare like MNIST, predict, say how sure.

    >>> rec = Recognizer.load()     # your latest run in runs/, else the reader shipped with digitlab
    >>> rec.predict(["seven.png", pil_image, array])[0].digit
    '7'
    >>> rec.read("zip-code.jpg").text
    '90210'
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
from PIL import Image

from digitlab.config import check_precision
from digitlab.data.notdigits import NOT_A_DIGIT
from digitlab.data.userdata import dataset_info
from digitlab.errors import ConfigError, ImageError, RunError
from digitlab.evaluation.calibration import apply_temperature
from digitlab.images.batch import prepared_chunks
from digitlab.images.prepare import ink_mask, several_digits_hints, to_mnist
from digitlab.images.read import open_image, orientation, to_ink
from digitlab.images.rulings import remove_rulings
from digitlab.images.segment import digit_candidates, segment
from digitlab.models import get_preset
from digitlab.models.backend import select_backend
from digitlab.models.files import load_model
from digitlab.models.numpy_model import INFERENCE_FILE, exported_from, predict_batches, second_look
from digitlab.models.numpy_model import load as load_inference
from digitlab.models.precision import prediction_precision, set_compute_precision
from digitlab.models.shipped import model_name, open_model
from digitlab.runs import MODEL_FILE, RunFiles

DEFAULT_THRESHOLD = 0.5
# The most one `read` may take (the file's decoding included), whatever the image: a real number
# takes a tenth of that; the worst image a search found, a third. Beyond it, a clear refusal.
READ_BUDGET_S = 2.0


@dataclass
class Prediction:
    """What the model saw in one image. `digit` is None when it failed or was not sure enough."""

    source: str
    status: str  # "ok", "unsure" (best probability under the threshold) or "error"
    digit: str | None = None
    probability: float | None = None
    top: list[tuple[str, float]] = field(default_factory=list)  # the 3 most likely classes
    message: str = ""
    prepared: np.ndarray | None = field(default=None, repr=False)  # the 28 x 28 image the model saw
    scores: np.ndarray | None = field(default=None, repr=False)  # every class's probability

    def to_dict(self) -> dict:
        return {"source": self.source, "status": self.status, "digit": self.digit,
                "probability": self.probability, "top": [[c, p] for c, p in self.top], "message": self.message}

    def csv_row(self) -> list[str]:
        """The row of `digitlab predict --csv` (columns CSV_COLUMNS)."""
        tops = [v for c, p in self.top for v in (c, f"{p:.6f}")] + [""] * (6 - 2 * len(self.top))
        return [self.source, self.status, self.digit or "",
                "" if self.probability is None else f"{self.probability:.6f}", *tops, self.message]


CSV_COLUMNS = ["source", "status", "digit", "probability", "top1", "p1", "top2", "p2", "top3", "p3", "message"]


def images_of(images) -> Iterable:
    """The images `predict` and the `*_iter` methods go through: one image (a path, bytes, a file
    opened in binary mode, a PIL image, a 2-D or (h, w, channels) array) is one; an (n, h, w) or
    (n, h, w, channels) array is its n images, as `load_dataset` gives them (an object with
    `__array__`, such as a tensor, too), and an array or Series of paths its paths; any other
    iterable its items. Anything else is a TypeError."""
    if hasattr(images, "__array__") and not isinstance(images, (np.ndarray, Image.Image)):
        images = np.asarray(images)
    if isinstance(images, np.ndarray):
        if images.ndim == 1 and images.dtype.kind in "OU":  # paths, as a DataFrame's column holds them
            # str(): np.str_ is a NumPy scalar too, which open_image would take for pixels
            return [str(item) if isinstance(item, str) else item for item in images]
        return images if images.ndim == 4 or (images.ndim == 3 and images.shape[-1] not in (1, 2, 3, 4)) else [images]
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, io.IOBase, Image.Image)):
        return [images]
    if not isinstance(images, Iterable):
        raise TypeError(f"give an image (a file's path, its bytes, a PIL image or an array) or several, "
                        f"not {type(images).__name__}.")
    return images


def describe(source, index: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, io.IOBase) and isinstance(getattr(source, "name", None), str):  # an open file
        return source.name
    return f"<{type(source).__name__} #{index}>"


class Recognizer:
    """A trained model plus what it needs to read real images: class names, temperature, threshold."""

    def __init__(self, model, class_names: list[str], temperature: float | None = None,
                 threshold: float = DEFAULT_THRESHOLD, run: RunFiles | None = None, second_look_below: float | None = None):
        if isinstance(threshold, bool) or not (isinstance(threshold, (int, float, np.number)) and 0 <= threshold <= 1):
            raise ConfigError(f"the threshold is a probability, from 0 to 1, not {threshold!r}.")
        outputs = (getattr(model, "output_shape", None) or (None,))[-1]
        if isinstance(outputs, int) and outputs != len(class_names):
            where = f"{run.model.parent}: " if run is not None else ""
            raise RunError(f"{where}the model has {outputs} outputs and {len(class_names)} class names (classes.json); "
                           "a run's files must come from the same training: train it again.")
        self.model = model
        self.run = run  # where the model came from (Recognizer.load), None for a model given directly
        self.class_names = list(class_names)
        self.temperature = temperature
        self.threshold = threshold
        # The run's second look at images it is unsure of (RunConfig.second_look_below) unless given
        self.second_look_below = (second_look_below if second_look_below is not None else
                                  run.config.second_look_below if run is not None and run.config else 0.0)
        self._input_shape = tuple(model.input_shape[1:])
        # Keras models are not safe to call from several threads at once (on JAX, two concurrent
        # predict() calls swap each other's variables out); preparing images needs no lock.
        self._model_lock = contextlib.nullcontext() if getattr(model, "thread_safe", False) else threading.Lock()

    def __repr__(self) -> str:
        return f"Recognizer({self.name!r}, {len(self.class_names)} classes, threshold={self.threshold:g})"

    @property
    def name(self) -> str:
        """The answering model's short name (`digitlab.runs.model_name`); "model" for one given directly."""
        return model_name(self.run) if self.run is not None else "model"

    @classmethod
    def load(cls, run_or_model: str | os.PathLike | None = None, *, runs: str | os.PathLike = "runs",
             threshold: float = DEFAULT_THRESHOLD, engine: str = "auto", trust: bool = False,
             precision: str = "auto") -> Recognizer:
        """From a run folder, a .keras file, "reader" (the model shipped with digitlab), or by default
        the latest complete run under `runs`, and the shipped reader when there is none
        (`digitlab.runs.open_model`; `rec.run` says which answered).

        `engine="auto"` predicts with the run's `inference.npz` (NumPy alone: no Keras import, so
        a cold start takes a fraction of a second) when the run has one, else with Keras;
        `engine="keras"` always loads the Keras model, on the backend its preset trains on: for many
        images at once the faster choice where that is TensorFlow's oneDNN (a CNN on an AVX-512
        CPU: BENCHMARKS.md). `precision` is the Keras model's arithmetic: "auto" predicts in the one
        it trained in where that is fast here (`digitlab.models.precision.prediction_precision`), else
        float32; NumPy computes in float32. The Keras model stays in that precision (`rec.model`:
        to share the model, copy the run's `model.keras`, which is float32, rather than saving it).
        `trust=True` loads a .keras file that carries code (see `digitlab.models.files.load_model`).
        """
        if engine not in ("auto", "keras"):
            raise ValueError(f"engine must be 'auto' or 'keras', not {engine!r}")
        check_precision(precision)
        run = open_model(run_or_model, runs)
        if run.shipped:
            if engine != "auto" or precision == "mixed_bfloat16":
                raise ConfigError(f"the shipped {run.folder.name} has only its NumPy inference file, which computes "
                                  f"in float32; for a Keras model train one: digitlab train --model {run.preset}.")
            return cls(load_inference(run.model), run.class_names, run.temperature, threshold, run)
        model_path, config = run.model, run.config
        names = run.class_names or dataset_info(run.dataset).class_names
        temperature = run.temperature
        fast = model_path.parent / INFERENCE_FILE
        numpy_path = engine == "auto" and model_path.name == MODEL_FILE and fast.is_file()
        if numpy_path and not exported_from(fast, model_path):
            warnings.warn(f"{fast} is not the export of {model_path} as it is now (a stale or foreign copy); "
                          f"predicting with {MODEL_FILE}, which is slower to load. Train the run again, or "
                          f"delete {INFERENCE_FILE}, to silence this.", stacklevel=2)
            numpy_path = False
        keras_model = not numpy_path and model_path.suffix == ".keras"
        if precision == "mixed_bfloat16" and not keras_model:
            what = "digitlab's NumPy path (engine='auto')" if numpy_path else "a scikit-learn model"
            raise ConfigError(f"{model_path}: {what} computes in float32; mixed bfloat16 needs a Keras "
                              "model loaded with engine='keras'.")
        if numpy_path:
            model = load_inference(fast)
        elif not keras_model:  # a .skops file: no Keras import
            model = load_model(model_path, trust=trust)
        else:
            backend = select_backend(get_preset(config.model).backend if config else None)
            model = load_model(model_path, trust=trust)
            chosen = prediction_precision(config.precision if config else None, backend, precision)
            if chosen != "float32":
                set_compute_precision(model, chosen)
        return cls(model, list(names), temperature, threshold, run)

    def prepare(self, image, name: str = "image") -> np.ndarray:
        """The (28, 28) float image in [0, 1] the model sees for `image` (path, bytes, PIL or array)."""
        return to_mnist(to_ink(open_image(image, name=name), name=name), name=name)

    def probabilities(self, prepared: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities for prepared images (n, 28, 28)."""
        x = np.asarray(prepared, np.float32)
        with self._model_lock:
            p = second_look(lambda images: predict_batches(self.model, images.reshape((len(images), *self._input_shape)),
                                                           batch_size=512), x, self.second_look_below)
        return apply_temperature(p, self.temperature) if self.temperature else p

    def predict(self, images, *, keep_prepared: bool = False) -> list[Prediction]:
        """Predictions for one image or several (paths, bytes, PIL images, arrays; an (n, 28, 28)
        array is n images): `images_of`."""
        return list(self.predict_iter(images, keep_prepared=keep_prepared))

    def predict_iter(self, images: Iterable, *, batch_size: int = 256, keep_prepared: bool = False,
                     workers: int = 1) -> Iterator[Prediction]:
        """Predictions in order, prepared and predicted batch by batch: constant memory. With
        `workers` > 1, a stream of more than one batch is decoded and prepared in that many
        processes (the answers are the same; `images.batch.default_workers()` suits this machine)."""
        if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):  # 0 gave no answers, silently
            raise ConfigError(f"batch_size is a number of images, at least 1, not {batch_size!r}.")
        named = ((image, describe(image, i)) for i, image in enumerate(images_of(images)))
        chunks = ([list(part) for part in zip(*chunk)] for chunk in iter(lambda: list(islice(named, batch_size)), []))
        for names, results in prepared_chunks(chunks, workers):
            yield from self.predictions(names, results, keep_prepared=keep_prepared)

    def predictions(self, names: list[str], prepared: list, *, keep_prepared: bool = False) -> list[Prediction]:
        """Predictions for images already prepared: `images.batch.prepare_many`'s answers (a 28 x 28
        array, or the ImageError of an image that could not be prepared), with their names."""
        batch = [(Prediction(name, "error", message=str(r)), None) if isinstance(r, ImageError)
                 else (Prediction(name, "ok"), r) for name, r in zip(names, prepared)]
        return list(self._finish(batch, keep_prepared))

    def read(self, image, name: str | None = None, *, deadline: float | None = None) -> Reading:
        """The multi-digit number in one image (a ZIP code, a phone number).

        Past `deadline` (a `time.monotonic()` value), or READ_BUDGET_S from now if sooner, the work
        stops with an ImageError: a server that gives up on a request gets its worker back."""
        return read_number(self, image, name or describe(image, 0), deadline=deadline)

    def read_iter(self, images: Iterable, names: Iterable[str] | None = None) -> Iterator[Reading]:
        """Readings in order, one image at a time; an image that cannot be read is a Reading with
        status "error" and its message, and the others go on. `names`: what to call each image
        (its path as given, for one opened by another)."""
        images = images_of(images)
        named = zip(images, names) if names is not None else ((image, describe(image, i)) for i, image in enumerate(images))
        for image, name in named:
            try:
                yield self.read(image, name)
            except ImageError as e:
                yield Reading(name, "", [], [], status="error", message=str(e))

    def _finish(self, batch, keep_prepared: bool) -> Iterator[Prediction]:
        ready = [(pred, img) for pred, img in batch if img is not None]
        if ready:
            stack = np.stack([img for _, img in ready])
            for (pred, img), p, hint in zip(ready, self.probabilities(stack), several_digits_hints(stack)):
                self._fill(pred, p)
                pred.message = " ".join(filter(None, [pred.message, hint]))
                pred.prepared = img if keep_prepared else None
        for pred, _ in batch:
            yield pred

    def _fill(self, pred: Prediction, p: np.ndarray) -> None:
        pred.scores = p
        order = np.argsort(p)[::-1][:3]
        pred.top = [(self.class_names[k], float(p[k])) for k in order]
        best, prob = pred.top[0]
        pred.probability = prob
        if best == NOT_A_DIGIT:
            pred.status = "unsure"
            pred.message = (f"this does not look like a digit: the model's \"{NOT_A_DIGIT}\" class has {prob:.1%}; "
                            f"the likeliest digit is {next((c for c, _ in pred.top if c != NOT_A_DIGIT), '?')}.")
        elif prob >= self.threshold:
            pred.digit = best
        else:
            pred.status = "unsure"
            shown = f"{prob:.0%}" if f"{prob:.0%}" != f"{self.threshold:.0%}" else f"{prob:.4%}"  # not "100%, under 100%"
            pred.message = f"the best guess, {best}, has {shown}, under the threshold of {self.threshold:.0%}."


@dataclass
class Reading:
    """A number read from one image: its text ('?' for a digit under the threshold), each digit's
    prediction, and each digit's box (top, left, bottom, right) in the image's pixels."""

    source: str
    text: str
    digits: list[Prediction]
    boxes: list[tuple[int, int, int, int]]
    status: str = "ok"  # or "error": the image could not be read (`message` says why)
    message: str = ""

    def to_dict(self) -> dict:
        return {"source": self.source, "status": self.status, "text": self.text, "message": self.message,
                "digits": [{**d.to_dict(), "box": list(map(int, b))} for d, b in zip(self.digits, self.boxes)]}

    def csv_row(self) -> list[str]:
        """The row of `digitlab read --csv` (columns READ_COLUMNS); a box is top:left:bottom:right."""
        return [self.source, self.status, self.text, " ".join(f"{d.probability:.6f}" for d in self.digits),
                " ".join(":".join(map(str, b)) for b in self.boxes), self.message]


READ_COLUMNS = ["source", "status", "text", "probabilities", "boxes", "message"]


# What each digit of a reading costs, in log-probability: of two readings the model is about as
# sure of, the one with fewer digits wins, so a digit cut in two confident halves ("2" as "93") is
# not preferred to the digit itself. 0.25 was the best on numbers of train.json's pen digits and of
# MNIST's training digits (0.1-0.4 about as good); held-out, with MAX_GAP_IN_DIGIT, 1,000 MNIST
# test numbers went from 92.6% to 93.8% whole and 1,200 dev.json numbers from 88.4% to 88.9%.
DIGIT_COST = 0.25
# What reading one piece of ink as "not a digit" costs beyond its log-probability. Without that
# reading a letter or scribble the model was sure was none scored as its likeliest digit (near 0),
# and cut in two pieces that passed for digits it won: "H" was read "11", "a" "23". Chosen on
# numbers of train.json's pen digits and MNIST's training digits (1,000 each: one fewer read right
# at 0.2, none at 0.4, but 10 points fewer pen letters read "?"). Held out: 1,200 dev.json numbers
# 92.2 -> 91.9%, 1,000 MNIST test ones unchanged (96.3%); read all "?", the scribbles of
# benchmarks/handwriting.py 46 -> 92%, 52 letters in six fonts 26 -> 62% (issue 25).
NOT_A_DIGIT_COST = 0.2
# Hysteresis for a number's ink (`ink_mask`'s `faint`): ink above this share of the threshold is
# stroke where it joins stroke, so a faint stretch does not break a digit into pieces. The number's
# one threshold is set by its darkest digits; a paler digit beside them lost its faint strokes.
# Chosen on numbers of MNIST's training digits (0.6-0.75 about as good); held out, 1,000 MNIST test
# numbers of 3-8 digits went from 95.4% to 95.8% whole (3-10: 93.9% -> 95.0%), dev.json's unchanged.
# A faint piece may at most double its stroke (prepare.FAINT_GROWTH): a hard shadow is no stroke.
FAINT = 0.6


def read_number(recognizer: Recognizer, image, name: str = "image", *, deadline: float | None = None) -> Reading:
    """Segment the number in `image` into digits and recognise each.

    Pieces of ink are grouped into digits by dynamic programming: every run of up to MAX_GROUP
    neighbouring pieces (a broken stroke) may be one digit, and every group may be cut into
    several (touching digits; `images.segment.digit_candidates`). All candidates are prepared and
    predicted in one batch, and the reading whose digits the model is jointly most sure of (the
    largest sum of log-probabilities, less DIGIT_COST a digit; a whole piece may be read "not a
    digit" at NOT_A_DIGIT_COST more) wins: merging and cutting are decided by the recogniser, not
    by fixed rules, beyond two bounds of geometry (a group no wider than MAX_BROKEN_WIDTH heights,
    and no gap in it wider than MAX_GAP_IN_DIGIT).

    The work is checked against `deadline` (see `Recognizer.read`) between its steps.
    """
    budget = time.monotonic() + READ_BUDGET_S
    deadline = budget if deadline is None else min(deadline, budget)

    def in_time(step):
        if time.monotonic() > deadline:
            raise ImageError(f"{name}: reading the number ran out of time while {step}; crop the image to the "
                             "number, or send its digits one by one to predict.")

    picture = open_image(image, name=name)
    in_time("decoding the image")
    ink = to_ink(picture, name=name)
    in_time("finding the ink")
    pieces = segment(remove_rulings(ink_mask(ink, FAINT)), name)  # underlines, boxes: not digits
    if not pieces:
        raise ImageError(f"{name}: the image is blank after thresholding; no digits found.")
    candidates, images = {}, []
    for key, parts in digit_candidates(pieces):
        in_time(f"preparing its {len(pieces)} pieces of ink")
        candidates[key] = parts
        images += [to_mnist(ink, name=name, mask=s.mask) for s in parts]
    keys = list(candidates)
    images = np.stack(images)
    probs = recognizer.probabilities(images)
    offsets = np.cumsum([0] + [len(candidates[key]) for key in keys])
    # How sure the model is of a candidate: of its likeliest digit, or, for one whole piece of ink,
    # at NOT_A_DIGIT_COST more, that it is "not a digit" ("?"): a letter is not cut into digits.
    digit_columns = [k for k, c in enumerate(recognizer.class_names) if c != NOT_A_DIGIT]
    logp = np.log(np.clip(probs[:, digit_columns].max(axis=1), 1e-9, 1))
    if NOT_A_DIGIT in recognizer.class_names:
        rows = [offsets[i] for i, (start, end, k) in enumerate(keys) if end - start == 1 and k == 1]
        not_digit = np.log(np.clip(probs[rows, recognizer.class_names.index(NOT_A_DIGIT)], 1e-9, 1))
        logp[rows] = np.maximum(logp[rows], not_digit - NOT_A_DIGIT_COST)
    best = [0.0] + [-np.inf] * len(pieces)
    choice: list = [None] * (len(pieces) + 1)
    for i, key in enumerate(keys):  # in order of start, so best[start] is final when used
        start, end, _ = key
        total = best[start] + float(logp[offsets[i] : offsets[i + 1]].sum()) - DIGIT_COST * len(candidates[key])
        if total > best[end]:
            best[end], choice[end] = total, i
    chosen, end = [], len(pieces)
    while end > 0:
        chosen.append(choice[end])
        end = keys[choice[end]][0]
    segments, digits = [], []
    for i in reversed(chosen):
        for j, seg in enumerate(candidates[keys[i]]):
            row = offsets[i] + j
            pred = Prediction(f"{name}#{len(digits) + 1}", "ok", prepared=images[row])
            recognizer._fill(pred, probs[row])
            segments.append(seg)
            digits.append(pred)
    width, height = picture.size
    if orientation(picture) in (5, 6, 7, 8):  # to_ink turned it upright: a quarter turn
        width, height = height, width
    sy, sx = height / ink.shape[0], width / ink.shape[1]  # boxes in the upright picture, as a viewer shows it
    boxes = [(round(t * sy), round(left * sx), round(b * sy), round(r * sx)) for t, left, b, r in (s.box for s in segments)]
    text = "".join(d.digit if d.digit is not None else "?" for d in digits)
    return Reading(name, text, digits, boxes)

