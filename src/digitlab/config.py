"""RunConfig: everything that describes one training run, saved as config.json in the run folder."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

from digitlab.errors import ConfigError
from digitlab.files import atomic_write

# The optimizers a run can name, with their Keras classes (keras.optimizers.<name>)
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adamw": "AdamW", "adagrad": "Adagrad",
              "nadam": "Nadam"}
AUGMENTATIONS = ("none", "affine", "elastic")  # digitlab.data.augment.DISTORTIONS says what each one does
VALIDATION_MODES = ("split", "test")
LR_SCHEDULES = ("constant", "cosine")
ENGINES = ("keras", "numpy")
INITS = ("glorot_uniform", "he_normal", "normal")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")


def check_precision(precision: str) -> None:
    """A ConfigError naming the choices unless `precision` is one of PRECISIONS (for prediction's
    `precision` arguments; a RunConfig reports its own fields together)."""
    if precision not in PRECISIONS:
        raise ConfigError(f'precision "{precision}" is not one of {", ".join(PRECISIONS)}')


def reject_unknown_fields(names) -> None:
    """A ConfigError naming every name in `names` that is not a RunConfig field, with the known ones."""
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ConfigError(f"unknown configuration field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}.")


@dataclass(frozen=True)
class RunConfig:
    """One training run. Presets give the recipe defaults; CLI flags replace single fields."""

    model: str = "mlp"
    dataset: str = "mnist"
    engine: str = "keras"  # "numpy": the from-scratch engine (dense presets only)
    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float | None = None  # None: the optimizer's Keras default
    # Weight initialisation: "glorot_uniform" (Keras' default), "he_normal", or "normal" with
    # init_std -- the tutorials' "sloppy" initialisation, for the vanishing-gradient experiment.
    init: str = "glorot_uniform"
    init_std: float = 0.05
    # "constant", or "cosine": decay the learning rate to 0 over the run (a cheap accuracy gain)
    lr_schedule: str = "constant"
    # "split": hold out `validation_split` of the training set (seeded); "test": validate on the
    # test set, as some tutorials do (their validation numbers are then test numbers).
    validation: str = "split"
    validation_split: float = 0.1
    # "none", or the training images distorted afresh each epoch: "affine" (rotation, scale, shift)
    # or "elastic" (and Simard's elastic field); see digitlab.data.augment.
    augment: str = "none"
    # "float32", or "mixed_bfloat16": every layer but the output one computes in bfloat16 (weights,
    # optimizer and softmax stay float32), on CPUs with bfloat16 instructions the CNN's epoch in
    # about two thirds of the time. "auto": mixed_bfloat16 where that is faster
    # (digitlab.models.precision.resolve_precision), else float32; a run's config.json records which one ran.
    precision: str = "float32"
    # A second look at images the model is unsure of: where its top output for an image is under
    # this (0: never), the answer is the mean over the image and its copies moved one pixel up,
    # down, left and right (test-time augmentation where it pays; digitlab.models.numpy_model.second_look).
    second_look_below: float = 0.0
    seed: int = 0
    train_limit: int | None = None  # train on only the first N training images (quick experiments)
    out: str = "runs"  # parent folder of the run folders

    def __post_init__(self) -> None:
        # Types first, as config.json's are checked (a notebook's `epochs=True` trained and wrote a run
        # digitlab could not read back; `epochs=1.5` failed deep in Keras). NumPy's numbers and paths
        # are taken as the plain values they stand for, which JSON can hold.
        wrong = []
        for name, kind in _field_kinds().items():
            value = getattr(self, name)
            if kind.rstrip("?") == "str" and isinstance(value, os.PathLike):
                value = os.fspath(value)
            elif kind.rstrip("?") == "int" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = int(value)
            elif kind.rstrip("?") == "float" and isinstance(value, numbers.Real) and not isinstance(value, bool):
                try:
                    value = float(value)
                except OverflowError:  # an int of 400 digits: no float holds it
                    value = math.inf
            if not _is_kind(value, kind):
                wrong.append(f"{name} must be {_KINDS[kind.rstrip('?')][1]}, not {value!r}")
            object.__setattr__(self, name, value)
        if wrong:
            raise ConfigError("invalid run configuration: " + "; ".join(wrong) + ".")
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be at least 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f'optimizer "{self.optimizer}" is not one of {", ".join(OPTIMIZERS)}')
        if self.learning_rate is not None and not 0 < self.learning_rate < math.inf:
            problems.append(f"learning_rate must be a positive number, got {self.learning_rate}")
        if self.engine not in ENGINES:
            problems.append(f'engine "{self.engine}" is not one of {", ".join(ENGINES)}')
        if self.init not in INITS:
            problems.append(f'init "{self.init}" is not one of {", ".join(INITS)}')
        if not 0 < self.init_std < math.inf:
            problems.append(f"init_std must be a positive number, got {self.init_std}")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f'lr_schedule "{self.lr_schedule}" is not one of {", ".join(LR_SCHEDULES)}')
        if self.validation not in VALIDATION_MODES:
            problems.append(f'validation "{self.validation}" is not one of {", ".join(VALIDATION_MODES)}')
        if not 0 <= self.validation_split < 1:
            problems.append(f"validation_split must be in [0, 1), got {self.validation_split}")
        if self.augment not in AUGMENTATIONS:
            problems.append(f'augment "{self.augment}" is not one of {", ".join(AUGMENTATIONS)}')
        if self.precision not in PRECISIONS:
            problems.append(f'precision "{self.precision}" is not one of {", ".join(PRECISIONS)}')
        if not 0 <= self.second_look_below <= 1:
            problems.append(f"second_look_below must be in [0, 1], got {self.second_look_below}")
        if not 0 <= self.seed < 2**32:
            problems.append(f"seed must be in 0..2**32-1, got {self.seed}")
        if self.train_limit is not None and self.train_limit < 1:
            problems.append(f"train_limit must be at least 1, got {self.train_limit}")
        if problems:
            raise ConfigError("invalid run configuration: " + "; ".join(problems) + ".")

    def extras_note(self) -> str:
        """For one-line summaries: ', cosine decay' for a rate that decays, ', affine augmentation'
        for a run on distorted copies, ', mixed bfloat16' (or ', precision auto') for one not in
        float32, '' for none of them."""
        notes = ["cosine decay"] if self.lr_schedule == "cosine" else []
        notes += [f"{self.augment} augmentation"] if self.augment != "none" else []
        if self.precision != "float32":
            notes.append({"mixed_bfloat16": "mixed bfloat16"}.get(self.precision, f"precision {self.precision}"))
        return "".join(f", {n}" for n in notes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        """Build from a dict (a run's config.json), rejecting unknown keys and wrong types by name."""
        if not isinstance(data, dict):
            raise ConfigError(f"a run configuration is a JSON object of fields, not {type(data).__name__}.")
        reject_unknown_fields(data)
        return cls(**data)  # the types are checked as any RunConfig's

    def save(self, path: Path) -> None:
        with atomic_write(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise ConfigError(f"{path}: cannot read the run configuration ({e}).") from None
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None


# What each field's annotation admits from JSON (bool is an int in Python, never here).
_KINDS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (lambda v: type(v) is int, "a whole number"),
    "float": (lambda v: type(v) in (int, float), "a number"),
}


def _field_kinds() -> dict[str, str]:
    """Field name -> "str", "int", "float", with "?" appended where None is allowed too."""
    return {f.name: f.type.split(" |")[0] + ("?" if "None" in f.type else "") for f in dataclasses.fields(RunConfig)}


def _is_kind(value, kind: str) -> bool:
    if kind.endswith("?"):
        return value is None or _is_kind(value, kind[:-1])
    return _KINDS[kind][0](value)
