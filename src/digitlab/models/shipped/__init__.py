"""Models that ship inside the package, so that a fresh install answers at once.

Each is a folder laid out like a run folder (digitlab.runs) without the Keras model: the NumPy
inference file, the class names, the calibration, the recipe it was trained with (config.json),
its MNIST test metrics, and `shipped.json`: where it came from (command, seed, commit, data and
their checksums), what it measured, and the SHA-256 of its inference file, checked on loading so
that a damaged install is one clear line, not wrong answers.

`open_model` holds the rule that picks the model recognition uses: one named, else the user's
latest run, else the shipped reader.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from pathlib import Path

from digitlab.config import RunConfig
from digitlab.data.notdigits import NOT_A_DIGIT
from digitlab.data.userdata import dataset_info
from digitlab.errors import DigitlabError, RunError
from digitlab.files import sha256_file
from digitlab.runs import CONFIG_FILE, RunFiles, complete_runs, open_run

SHIPPED_DIR = Path(__file__).parent
SHIPPED_MODELS = ("reader",)
MANIFEST = "shipped.json"
INFERENCE = "inference.npz"


def shipped_folder(name: str) -> Path:
    """The folder of the shipped model `name`, its inference file checked against its manifest."""
    if name not in SHIPPED_MODELS:
        raise RunError(f"{name}: no such shipped model; digitlab ships {', '.join(SHIPPED_MODELS)}.")
    folder = SHIPPED_DIR / name
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        expected = manifest["inference_sha256"]
        found = sha256_file(folder / INFERENCE)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunError(f"{folder}: the shipped {name} is incomplete ({type(e).__name__}: {e}); reinstall "
                       "digitlab.") from None
    if found != expected:
        raise RunError(f"{folder / INFERENCE}: the shipped {name} was changed after installation (its SHA-256 is "
                       f"{found[:12]}..., not {expected[:12]}...); reinstall digitlab.")
    return folder


def manifest(name: str) -> dict:
    """The shipped model's provenance and measurements (its shipped.json)."""
    return json.loads((shipped_folder(name) / MANIFEST).read_text())


def open_model(path: str | os.PathLike | None = None, out: str | os.PathLike = "runs") -> RunFiles:
    """The model recognition uses: `open_run`'s, or a model shipped with digitlab.

    The rule: a run folder or model file named is used; a shipped model's name ("reader") that is
    no file here names the shipped one; named nothing, the latest complete run in `out` that reads
    digits answers (the user trained it for a reason), and the shipped reader when there is none (a
    fresh install). A newer run of other classes (Fashion-MNIST's clothes, your own letters) is passed
    over, and said so (`RunFiles.passed_over`): `read` spelt "?SandalShirt??" for "90210" with it.
    """
    if path is not None and str(path) in SHIPPED_MODELS and not Path(path).exists():
        return shipped_run(str(path))
    if path is None:
        runs = complete_runs(out)
        digits = next((run for run in reversed(runs) if _reads_digits(run)), None)
        passed = runs[-1] if runs and runs[-1] != digits else None
        chosen = shipped_run("reader") if digits is None else open_run(digits, out)
        return dataclasses.replace(chosen, default=True, passed_over=passed)
    try:
        return dataclasses.replace(open_run(path, out), default=path is None)
    except RunError as e:
        if path is not None and str(path) in SHIPPED_MODELS:  # a folder of that name is here
            raise RunError(f"{e} (--model {path} names the folder {path}/ here, not the {path} shipped with "
                           "digitlab; run from another folder to use that)") from None
        close = difflib.get_close_matches(str(path), SHIPPED_MODELS, n=1) if path is not None else []
        if close and not Path(path).exists():
            raise RunError(f"{e} Did you mean --model {close[0]}, the model shipped with digitlab?") from None
        raise


def _reads_digits(folder: Path) -> bool:
    """Whether a run's classes are digits (and "not a digit"): its own record of them, else its data
    set's. A run whose files cannot be read counts as one, so that its error is what is said."""
    try:
        run = open_run(folder)
        names = run.class_names or list(dataset_info(run.dataset).class_names)
    except DigitlabError:
        return True
    return all(name in DIGITS or name == NOT_A_DIGIT for name in names)


DIGITS = tuple(str(d) for d in range(10))


def shipped_run(name: str) -> RunFiles:
    """A model shipped with digitlab, as a run whose model file is its NumPy inference file."""
    folder = shipped_folder(name)
    return RunFiles(folder / INFERENCE, folder, RunConfig.load(folder / CONFIG_FILE), shipped=True)


def model_name(run: RunFiles) -> str:
    """A model's short name, as JSON output and the API give it: the run folder's name (never its full
    path), the model file's for a bare file, "reader (shipped with digitlab)" for a shipped one."""
    if run.shipped:
        return f"{run.folder.name} (shipped with digitlab)"
    return run.folder.name if run.folder is not None else run.model.name


def which_model(run: RunFiles, out: str | os.PathLike = "runs") -> str:
    """Which model answers, and how to choose another, in one line for the person at the terminal."""
    passed = (f"; {run.passed_over}, newer, has classes that are not digits: name it with --model to use it"
              if run.passed_over is not None else "")
    if run.shipped:
        name = f"the {run.folder.name} shipped with digitlab"
        if run.default and passed:
            return (f"{name} (no complete run of digits in {out}/; {run.passed_over} has classes that are not "
                    "digits: name it with --model to use it)")
        return (f"{name} (no complete run in {out}/: train one, or name one with --model, to use your own)"
                if run.default else name)
    if run.default:
        return (f"{run.folder}, your latest complete run of digits (--model reader for the reader shipped with "
                f"digitlab{passed})")
    return str(run.folder or run.model)
