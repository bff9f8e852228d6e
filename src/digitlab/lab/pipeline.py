"""train(config): data -> fitted model -> test evaluation -> a complete run folder, in one call."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np

from digitlab.config import RunConfig
from digitlab.data.userdata import dataset_info, load_dataset
from digitlab.errors import ConfigError, DigitlabError, Interrupted, RunError, WriteError
from digitlab.evaluation.calibration import fit_temperature
from digitlab.evaluation.evaluate import Evaluation, evaluate_model, predict_probabilities, recorded_classes
from digitlab.files import atomic_write
from digitlab.models import config_for, get_preset
from digitlab.models.backend import select_backend_meanwhile
from digitlab.models.numpy_model import INFERENCE_FILE
from digitlab.models.numpy_model import export as export_inference
from digitlab.models.precision import computing_in, prediction_precision, resolve_precision
from digitlab.reports import helper
from digitlab.reports.run_figures import SAMPLES, SHARES, draw_run
from digitlab.runs import (
    CALIBRATION_FILE,
    CLASSES_FILE,
    CONFIG_FILE,
    CONFUSION_FILE,
    METRICS_FILE,
    MODEL_FILE,
    STATUS_FILE,
    RunFiles,
    is_complete,
    new_run_dir,
    training_lock,
    write_history,
    write_json,
)
from digitlab.training import checkpoints, distributed
from digitlab.training.distributed import Job
from digitlab.training.fit import check_numpy_engine, fit, fit_classic, fit_numpy, make_splits


DRAWING_HELPERS = len(SHARES)  # processes drawing a run's figures, started with it


@dataclass
class Run:
    """A finished training run: where it is, what it was, what it learned, how it scored."""

    path: Path
    config: RunConfig
    model: object  # keras.Model
    history: dict[str, list[float]]
    evaluation: Evaluation
    metrics: dict

    def __repr__(self) -> str:  # the dataclass's dumped 10,000 x 10 probabilities and the history in a notebook
        accuracy = self.metrics.get("test_accuracy") if isinstance(self.metrics, dict) else None
        shown = f", test_accuracy={accuracy:.4f}" if isinstance(accuracy, float) else ""
        return f"Run({str(self.path)!r}, {self.config.model} on {self.config.dataset}{shown})"


def train(
    config: RunConfig | str | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    verbose: int | None = None,
    plots_enabled: bool = True,
    on_result: Callable[[dict], None] | None = None,
    job: Job | None = None,
) -> Run | None:
    """Train a preset with its recipe, evaluate it on the test set, and write a run folder.

    `config` is a RunConfig, a preset name, or None for the default MLP. Returns a `Run`.
    `on_result(metrics)` is called as soon as the test metrics are saved, before the figures and
    the report are drawn (seconds): a caller can show the result while the run folder is finished.
    With a `job` (`digitlab.training.distributed`) the training is spread over its processes;
    process 0 writes the run folder, and the others return None.
    """
    if config is None or isinstance(config, str):
        config = config_for(config) if config else config_for()
    dataset = dataset_info(config.dataset)
    preset = get_preset(config.model)  # an unknown name fails before any data is read or folder made
    if preset.kind == "sklearn" and config.engine == "numpy":
        raise ConfigError(f"{config.model} is a scikit-learn model; the NumPy engine trains the dense networks.")
    if preset.kind == "sklearn" and config.augment != "none":
        raise ConfigError(f"{config.model} is a scikit-learn model fitted once; --augment distorts the images of "
                          "each epoch of a network's training.")
    if config.engine == "numpy":
        check_numpy_engine(config, dataset.image_shape, dataset.num_classes)
    config = resolve_precision(config)  # config.json records the precision that ran, never "auto"
    if job is not None:
        distributed.check_config(config, job)
    # The figures' helper processes start now: matplotlib is imported beside the data and Keras.
    with helper.started(DRAWING_HELPERS if plots_enabled and (job is None or job.leader) else 0) as helpers:
        return _start(config, data_dir, verbose, plots_enabled, on_result, job, helpers)


def _start(config: RunConfig, data_dir, verbose, plots_enabled: bool, on_result: Callable[[dict], None] | None,
           job: Job | None, helpers: list[helper.Helper]) -> Run | None:
    """train() once its arguments are checked: the data, the run folder, the job, the training."""
    dataset = dataset_info(config.dataset)
    splits = _load_splits(config, data_dir)
    if job is not None:
        distributed.check_splits(config, splits, job)
    run_dir = None
    if job is None or job.leader:  # before the job starts: an unwritable --out must not leave peers waiting
        run_dir = new_run_dir(config.out, config.model, config.dataset)
        config.save(run_dir / CONFIG_FILE)
        write_json(run_dir / CLASSES_FILE, {"classes": list(dataset.class_names)})
    if job is not None:
        try:
            distributed.initialize(job)  # waits for every process of the job
        except DigitlabError as e:
            if run_dir is not None:
                _set_status(run_dir, {"state": "failed", "error": str(e)})
            raise
        except KeyboardInterrupt:
            if run_dir is not None:
                _set_status(run_dir, {"state": "failed", "error": "interrupted while waiting for the other processes"})
            # (JAX's wait goes on in a thread and ends this process when it runs out: a Python
            # session that called train(job=...) must be restarted; `distributed._interruptible`.)
            raise Interrupted(f"interrupted while waiting for the other {job.num_processes - 1} process(es); nothing "
                              "was trained.") from None
        if not job.leader:  # its share of each batch; process 0 writes the run
            try:
                distributed.fit_data_parallel(config, splits, job=job, num_classes=dataset.num_classes, verbose=0)
            except KeyboardInterrupt:
                raise Interrupted(f"interrupted; {distributed.NO_CHECKPOINTS}") from None
            return None
    with training_lock(run_dir):
        return _fit_and_finish(config, splits, run_dir, verbose, plots_enabled, resume=False, on_result=on_result,
                               job=job, helpers=helpers)


def resume(
    run_dir: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    verbose: int | None = None,
    plots_enabled: bool = True,
    on_result: Callable[[dict], None] | None = None,
) -> Run:
    """Continue an interrupted run from its last checkpoint, with the configuration it started with."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunError(f"{run_dir}: not a run folder (no {CONFIG_FILE}).")
    with training_lock(run_dir):
        return _resume(run_dir, data_dir, verbose, plots_enabled, on_result)


def _resume(run_dir: Path, data_dir, verbose, plots_enabled: bool, on_result: Callable[[dict], None] | None) -> Run:
    if is_complete(run_dir):
        raise RunError(f"{run_dir}: the run is already complete; nothing to resume.")
    config = RunConfig.load(run_dir / CONFIG_FILE)
    checkpoints.load(run_dir, config.epochs)  # fails clearly before any data is read: none, or altered
    recorded_classes(RunFiles(run_dir / MODEL_FILE, run_dir, config))  # the data's classes as when it started
    with helper.started(DRAWING_HELPERS if plots_enabled else 0) as helpers:
        splits = _load_splits(config, data_dir)
        return _fit_and_finish(config, splits, run_dir, verbose, plots_enabled, resume=True, on_result=on_result,
                               helpers=helpers)


def _load_splits(config: RunConfig, data_dir):
    """The run's data, read while Keras is imported (a core each: BENCHMARKS.md, "Whole runs");
    nothing touches Keras before both are done."""
    preset = get_preset(config.model)
    keras_ready = (select_backend_meanwhile(preset.backend) if preset.kind != "sklearn" and config.engine != "numpy"
                   else lambda: None)
    try:
        train_split, test_split = load_dataset(config.dataset, data_dir=data_dir)
        splits = make_splits(config, train_split, test_split)
    except BaseException:
        with contextlib.suppress(BaseException):  # the data's error is the one to show
            keras_ready()
        raise
    keras_ready()
    return splits


def _fit_and_finish(config: RunConfig, splits, run_dir: Path, verbose, plots_enabled: bool, resume: bool,
                    on_result: Callable[[dict], None] | None, job: Job | None = None,
                    helpers: list[helper.Helper] | None = None) -> Run:
    dataset = dataset_info(config.dataset)
    write_json(run_dir / STATUS_FILE, {"state": "training"})
    started = time.perf_counter()
    classic = get_preset(config.model).kind == "sklearn"
    fit_with = fit_classic if classic else fit_numpy if config.engine == "numpy" else fit
    if job is not None:
        fit_with = partial(distributed.fit_data_parallel, job=job)
    try:
        model, history = fit_with(config, splits, num_classes=dataset.num_classes, run_dir=run_dir,
                                  verbose=verbose, resume=resume)
    except DigitlabError as e:  # e.g. a diverging loss: the folder says so instead of "training"
        write_json(run_dir / STATUS_FILE, {"state": "failed", "error": str(e)})
        raise
    except Exception as e:  # a bug or a backend's error: the run is no longer "training" either
        _set_status(run_dir, {"state": "failed", "error": f"{type(e).__name__}: {e}"})
        raise
    except KeyboardInterrupt:
        if job is not None:
            _set_status(run_dir, {"state": "failed", "error": "interrupted"})
            raise Interrupted(f"interrupted; {distributed.NO_CHECKPOINTS}") from None
        write_json(run_dir / STATUS_FILE, {"state": "interrupted"})
        done = checkpoints.load(run_dir).epoch if (run_dir / checkpoints.CHECKPOINT_JSON).is_file() else 0
        raise Interrupted(
            f"interrupted after {done} complete epoch(s) of {config.epochs}; they are saved. "
            f'Resume with: digitlab train --resume "{run_dir}"'
        ) from None
    train_seconds = time.perf_counter() - started
    metrics_extra = {"processes": job.num_processes} if job is not None else {}
    try:
        return _finish(config, splits, run_dir, model, history, train_seconds, plots_enabled, resume, on_result,
                       metrics_extra, helpers)
    except KeyboardInterrupt:
        if job is not None:
            _set_status(run_dir, {"state": "failed", "error": "interrupted while writing the results"})
            raise Interrupted(f"interrupted while writing the results; {distributed.NO_CHECKPOINTS}") from None
        _set_status(run_dir, {"state": "interrupted"})
        raise Interrupted(f"interrupted while writing the results; all {config.epochs} epochs are saved. "
                          f'Resume with: digitlab train --resume "{run_dir}"') from None
    except OSError as e:  # a full disk, a folder made read-only: the checkpoint still holds the epochs
        _set_status(run_dir, {"state": "failed", "error": f"{type(e).__name__}: {e}"})
        then = (f"Free space or fix the folder; {distributed.NO_CHECKPOINTS}" if job is not None else
                f'its trained epochs are kept. Free space or fix the folder, then: digitlab train --resume "{run_dir}"')
        raise WriteError(f"{run_dir}: cannot write the run's results ({e.strerror or e}); {then}") from None
    except Exception as e:  # a figure's or a library's bug: the folder must not say "training" forever
        _set_status(run_dir, {"state": "failed", "error": f"{type(e).__name__}: {e}"})
        raise


def _set_status(run_dir: Path, status: dict) -> None:
    """Record how the run ended, if the folder still takes a write (it may be full)."""
    try:
        write_json(run_dir / STATUS_FILE, status)
    except OSError:
        pass


def _finish(config: RunConfig, splits, run_dir: Path, model, history: dict, train_seconds: float,
            plots_enabled: bool, resume: bool, on_result: Callable[[dict], None] | None = None,
            metrics_extra: dict | None = None, helpers: list[helper.Helper] | None = None) -> Run:
    """Everything after the last epoch: the model, calibration, test evaluation, files, figures,
    then "complete" and the checkpoint dropped, in that order (a run killed meanwhile resumes)."""
    # The model first: whatever happens to the figures, the trained weights are kept.
    model_file = getattr(model, "filename", MODEL_FILE)  # a classic baseline is a .skops file
    with atomic_write(run_dir / model_file) as tmp:
        model.save(tmp)
    if model_file == MODEL_FILE:  # the same network in plain arrays, for prediction without Keras
        export_inference(model, run_dir / INFERENCE_FILE, source=run_dir / MODEL_FILE)
    # Calibrated and tested in the arithmetic `digitlab evaluate` will use for this run here.
    keras = sys.modules.get("keras")  # not imported for a scikit-learn baseline
    precision = prediction_precision(config.precision, keras.backend.backend() if keras else None)
    temperature = None
    with computing_in(model, precision):  # one switch (and one trace) for both
        if splits.x_val is not None:  # calibrate on held-out images: honest probabilities
            temperature = fit_temperature(predict_probabilities(model, splits.x_val,
                                                                second_look_below=config.second_look_below), splits.y_val)
            write_json(run_dir / CALIBRATION_FILE, {"temperature": temperature, "fitted_on": f"{len(splits.y_val)} validation images"})
        predict_started = time.perf_counter()
        evaluation = evaluate_model(model, splits.x_test, splits.y_test, config.dataset, temperature, precision,
                                    second_look_below=config.second_look_below)
        predict_seconds = time.perf_counter() - predict_started

    write_history(run_dir, history)
    metrics = {
        **evaluation.to_dict(),
        **{f"final_{k}": v[-1] for k, v in history.items()},
        "parameters": int(model.count_params()),
        "train_seconds": round(train_seconds, 2),
        "predict_ms_per_1000": round(1000 * predict_seconds / len(splits.y_test) * 1000, 2),
        "resumed": resume,
        **(metrics_extra or {}),  # e.g. how many processes a data-parallel training ran on
    }
    write_json(run_dir / METRICS_FILE, metrics)
    with atomic_write(run_dir / CONFUSION_FILE) as tmp:
        np.savetxt(tmp, evaluation.confusion, fmt="%d", delimiter=",", header=",".join(evaluation.class_names),
                   comments="")
    if on_result is not None:
        on_result(metrics)
    env = environment(config.engine)
    if plots_enabled:  # by the helpers, which imported matplotlib meanwhile (not this process, nor for --no-plots)
        samples = (splits.x_train[:SAMPLES], splits.y_train[:SAMPLES])
        draw_run(run_dir, config.to_dict(), history, evaluation, samples, splits.x_test, metrics, env, helpers)
    write_json(run_dir / STATUS_FILE, {"state": "complete", **env})
    checkpoints.remove(run_dir)
    return Run(run_dir, config, model, history, evaluation, metrics)


def environment(engine: str = "keras") -> dict:
    """Versions and machine facts recorded with a run, so its numbers can be compared later.

    A classic baseline's run never imports Keras (and TensorFlow with it, seconds of a short run),
    so its Keras version is read from the installed package and its backend is None. A NumPy-engine
    run's backend is "numpy": Keras only wrote its model.keras (it said "jax").
    """
    keras = sys.modules.get("keras")
    return {
        "backend": "numpy" if engine == "numpy" else keras.backend.backend() if keras is not None else None,
        "keras": keras.__version__ if keras is not None else version("keras"),
        "scikit-learn": version("scikit-learn"),  # not imported: 1.5 s a run does not need
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
