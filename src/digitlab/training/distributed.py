"""Data-parallel training of a dense preset across processes: Keras' `DataParallel` on JAX.

    digitlab train --coordinator HOST:PORT --num-processes N --process-id I      # once per process

Every process holds the whole training set and the same seeds, so every process draws the same
shuffling order each epoch; process I trains on its slice of each global batch (`shard`), JAX
sums the gradients of the N slices over gloo collectives, and every process applies the same
update. The global batches are those one process would train on (the last, smaller batch of an
epoch is dropped, in one process too), so N processes reach the weights one process reaches on
the same batches (`tests/e2e/test_distributed.py`). Process 0 then writes the run folder as
`digitlab train` does; the others write nothing.

Only the dense presets: the CNNs train on the backend measured fastest for them on each machine,
TensorFlow on some, and Keras 3 has no multi-process path on TensorFlow; the scikit-learn
baselines fit in one step. A run spread over processes has no checkpoints (a lost process stops
them all: JAX's coordination service ends the others); start it again.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import numpy as np

from digitlab.config import RunConfig
from digitlab.errors import ClusterError, ConfigError, TrainingDiverged

NO_CHECKPOINTS = "a training spread over processes keeps no checkpoints: start every process again."

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$")


@dataclass(frozen=True)
class Job:
    """Where this process stands in a data-parallel training: the coordinator (process 0's
    HOST:PORT), how many processes, and which one this is."""

    coordinator: str
    num_processes: int
    process_id: int

    @property
    def leader(self) -> bool:
        """Process 0: the one that writes the run folder."""
        return self.process_id == 0


def job_from_options(coordinator: str | None, num_processes: int | None, process_id: int | None) -> Job | None:
    """The Job that `--coordinator`, `--num-processes` and `--process-id` describe (None without
    them); a ConfigError naming what is wrong."""
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if not any(given):
        return None
    if not all(given):
        raise ConfigError("a training spread over processes needs all three of --coordinator HOST:PORT, "
                          "--num-processes N and --process-id I (0 on the coordinator's machine).")
    match = _HOST_PORT.match(coordinator)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ConfigError(f"--coordinator {coordinator!r}: give process 0's HOST:PORT, e.g. 10.0.0.1:1234.")
    if num_processes < 1:
        raise ConfigError(f"--num-processes {num_processes}: at least 1.")
    if not 0 <= process_id < num_processes:
        raise ConfigError(f"--process-id {process_id}: from 0 to {num_processes - 1} (--num-processes {num_processes}).")
    return Job(coordinator, num_processes, process_id)


def check_config(config: RunConfig, job: Job) -> None:
    """A ConfigError unless this run can be spread over the job's processes."""
    from digitlab.models import get_preset

    preset = get_preset(config.model)
    if preset.kind == "sklearn":
        raise ConfigError(f"{config.model} is a scikit-learn model fitted in one step: train it without --coordinator.")
    if preset.backend_rule != "jax":  # the CNNs: their backend is the one fastest for convolutions here
        raise ConfigError(f"{config.model} is a CNN: a training spread over processes takes the dense presets (Keras' "
                          "DataParallel on JAX). The CNNs train on the backend fastest on each machine, TensorFlow on "
                          "some, and Keras 3 has no multi-process path there. Train it on one machine, or many "
                          "such trainings at once with `digitlab compare --cluster`.")
    if config.engine != "keras":
        raise ConfigError("the NumPy engine trains in one process: train without --coordinator, or with --engine keras.")
    if config.precision != "float32":
        raise ConfigError(f"a training spread over processes computes in float32, not {config.precision}.")
    if config.batch_size % job.num_processes:
        raise ConfigError(f"batch {config.batch_size} does not split into {job.num_processes} equal parts: give a "
                          f"--batch-size that {job.num_processes} divides.")


def check_splits(config: RunConfig, splits, job: Job) -> None:
    """A ConfigError unless every process has at least one row of a whole global batch, and of
    the held-out images, to train and validate on (the last, partial batch is dropped)."""
    if len(splits.x_train) < config.batch_size:
        raise ConfigError(f"{len(splits.x_train)} training images make no whole batch of {config.batch_size}: a "
                          "training spread over processes drops the last, partial batch. Give a smaller "
                          "--batch-size, or more images (--limit).")
    if splits.y_val is not None and len(splits.y_val) < job.num_processes:
        raise ConfigError(f"{len(splits.y_val)} validation images cannot be shared by {job.num_processes} processes: "
                          "give a larger --validation-split, or more images (--limit).")


# JAX waits 300 s for the other processes and then ends the process from C++ (SIGABRT and a stack
# trace, the run folder left without a status): digitlab stops waiting first, with one line.
JOIN_TIMEOUT_S = 270


def initialize(job: Job) -> None:
    """Join the job (blocks until all N processes have), before JAX computes anything."""
    from digitlab.models.backend import select_backend

    if select_backend("jax") != "jax":
        raise ConfigError("a training spread over processes runs Keras on JAX; this process already runs another "
                          "backend (KERAS_BACKEND?).")
    import jax
    import keras

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes sum gradients over gloo
    if job.num_processes > 1:
        try:
            _interruptible(lambda: keras.distribution.initialize(
                job_addresses=job.coordinator, num_processes=job.num_processes, process_id=job.process_id))
        except (KeyboardInterrupt, TimeoutError) as stop:
            # Leave the job now, not at exit: the coordination service's C++ logs a page about the
            # tasks that never came, which would bury the one line that says what happened. (It
            # takes a few seconds; whatever it raises, the interruption is what to report.)
            from digitlab.models.backend import stderr_muted

            with stderr_muted(), contextlib.suppress(Exception):
                jax.distributed.shutdown()
            if isinstance(stop, KeyboardInterrupt):
                raise
            raise ClusterError(f"process {job.process_id} waited {JOIN_TIMEOUT_S:g} s at {job.coordinator} and the other "
                               f"{job.num_processes - 1} did not all come; start every process with the same --coordinator "
                               "and --num-processes, within a few minutes of each other, process 0 on the coordinator's "
                               "machine.") from None
        except Exception as e:  # noqa: BLE001 -- JAX's runtime errors have no narrower public class here
            raise ClusterError(f"process {job.process_id} could not meet the other {job.num_processes - 1} at "
                               f"{job.coordinator} ({first_line(e)}); start every process with the same "
                               "--coordinator and --num-processes, process 0 on the coordinator's machine.") from None


def _interruptible(call) -> None:
    """call(), waited for where Ctrl-C is heard (`digitlab.threads.in_thread`): JAX's
    initialize waits for the other processes inside C++, where Python sees no signal, and Ctrl-C
    did nothing for up to its 5 minutes; digitlab stops waiting at JOIN_TIMEOUT_S. An interrupted or
    timed-out call's thread is left behind, still
    waiting inside JAX, which ends the whole process when its wait runs out: after an interrupted
    join, the process must end (the CLI does at once; from Python, restart the interpreter before
    joining another job)."""
    from digitlab.threads import in_thread

    in_thread(call, "digitlab-join-job")(timeout=JOIN_TIMEOUT_S)


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def shard(order: np.ndarray, batch_size: int, job: Job) -> np.ndarray:
    """This process's rows of each global batch of `order` (the last, partial batch dropped): its
    slice k of every batch, so that the N slices of a step make the batch one process would train on."""
    steps = len(order) // batch_size
    part = batch_size // job.num_processes
    return order[: steps * batch_size].reshape(steps, job.num_processes, part)[:, job.process_id].reshape(-1)


def fit_data_parallel(config: RunConfig, splits, *, job: Job, num_classes: int = 10, verbose: int | None = None,
                      run_dir=None, resume: bool = False):
    """Train the preset across the job's processes (`fit`'s signature; no checkpoints, so no
    `run_dir` use and no `resume`). Returns (a plain Keras model holding the trained weights,
    history) in every process."""
    if resume:
        raise ConfigError(f"--resume: {NO_CHECKPOINTS}")
    import sys

    import jax
    import keras

    from digitlab.data.arrays import one_hot, shape_for
    from digitlab.models import build_model
    from digitlab.training.fit import compile_for_fit, epoch_images, initialize_dense, one_epoch, seed_keras_epoch
    from digitlab.training.checkpoints import epoch_seed
    from digitlab.data.augment import distortion_for

    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    verbose = verbose if job.leader else 0
    distribution = keras.distribution.DataParallel(auto_shard_dataset=False)
    history: dict[str, list[float]] = {}
    with distribution.scope():
        keras.utils.set_random_seed(config.seed)
        model = build_model(config.model, splits.x_train.shape[1:], num_classes)
        initialize_dense(model, config)
        compile_for_fit(model, config, len(splits.x_train) // config.batch_size * config.batch_size)
        input_shape = tuple(model.input_shape[1:])
        distortion = distortion_for(config.augment)
        x = shape_for(splits.x_train, input_shape) if distortion is None else None
        y = one_hot(splits.y_train, num_classes)
        validation = None
        if splits.x_val is not None:  # each process its equal share of the held-out images
            rows = shard(np.arange(len(splits.y_val)), job.num_processes, job)
            validation = (shape_for(splits.x_val[rows], input_shape), one_hot(splits.y_val[rows], num_classes))
        for epoch in range(config.epochs):
            seed = epoch_seed(config.seed, epoch)
            mine = shard(seed_keras_epoch(model, seed, len(y)), config.batch_size, job)
            images = x if distortion is None else shape_for(epoch_images(splits, distortion, seed), input_shape)
            try:
                result = model.fit(images[mine], y[mine], batch_size=config.batch_size // job.num_processes,
                                   epochs=config.epochs, initial_epoch=epoch, validation_data=validation,
                                   validation_batch_size=max(1, 1000 // job.num_processes), shuffle=False,
                                   callbacks=[one_epoch()], verbose=verbose)
            except jax.errors.JaxRuntimeError as e:  # a process lost: the collectives fail or time out
                raise ClusterError(f"the training stopped in epoch {epoch + 1}: a process of the job was lost "
                                   f"({first_line(e)}). Start every process again.") from None
            for k, v in result.history.items():
                history.setdefault(k, []).append(float(v[-1]))
            if not np.isfinite(history["loss"][-1]):  # every process holds the same weights: all stop here
                raise TrainingDiverged(f"the loss became {history['loss'][-1]} in epoch {epoch + 1}: training "
                                       "diverged. Try a smaller --learning-rate.")
        # every variable is replicated: each process holds all of it in its own device's shard
        weights = [np.asarray(v.value.addressable_data(0)) for v in model.weights]
        state = [np.asarray(v.value.addressable_data(0)) for v in model.optimizer.variables]
    # The same network and optimizer state in a model of this process alone, as `fit` returns one
    plain = build_model(config.model, splits.x_train.shape[1:], num_classes)
    plain.set_weights(weights)
    compile_for_fit(plain, config, len(splits.x_train) // config.batch_size * config.batch_size)
    plain.optimizer.build(plain.trainable_variables)
    for variable, value in zip(plain.optimizer.variables, state, strict=True):
        variable.assign(value)
    return plain, history
