"""The parts of a data-parallel training that need no second process: the options, what can be
spread, and how each global batch is split between the processes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digitlab.config import RunConfig
from digitlab.errors import ConfigError
from digitlab.models import config_for
from digitlab.training.distributed import Job, check_config, job_from_options, shard


def test_no_options_no_job_and_all_three_make_one():
    assert job_from_options(None, None, None) is None
    assert job_from_options("10.0.0.1:1234", 4, 3) == Job("10.0.0.1:1234", 4, 3)
    assert job_from_options("head.local:8476", 1, 0).leader


@pytest.mark.parametrize("options, says", [
    (("10.0.0.1:1234", None, None), "needs all three"),
    ((None, 2, 0), "needs all three"),
    (("10.0.0.1", 2, 0), "HOST:PORT"),
    (("10.0.0.1:0", 2, 0), "HOST:PORT"),
    (("10.0.0.1:99999", 2, 0), "HOST:PORT"),
    (("a b:12", 2, 0), "HOST:PORT"),
    (("10.0.0.1:1234", 0, 0), "at least 1"),
    (("10.0.0.1:1234", 2, 2), "from 0 to 1"),
    (("10.0.0.1:1234", 2, -1), "from 0 to 1"),
])
def test_bad_options_are_named(options, says):
    with pytest.raises(ConfigError, match=says):
        job_from_options(*options)


JOB = Job("127.0.0.1:1234", 2, 0)


@pytest.mark.parametrize("config, says", [
    (config_for("cnn"), "is a CNN"),
    (config_for("cnn-aug"), "is a CNN"),
    (config_for("reader"), "is a CNN"),
    (config_for("random-forest"), "scikit-learn"),
    (config_for("mlp", engine="numpy"), "NumPy engine"),
    (config_for("mlp", batch_size=63), "does not split into 2"),
    (config_for("mlp", precision="mixed_bfloat16"), "float32"),
])
def test_what_cannot_be_spread_is_refused_before_any_data_is_read(config: RunConfig, says):
    with pytest.raises(ConfigError, match=says):
        check_config(config, JOB)


def test_every_dense_preset_can_be_spread():
    for name in ("softmax", "mlp", "mlp-dropout", "mlp-wide", "mlp-small", "mlp-deep-sigmoid"):
        check_config(config_for(name), JOB)


@given(st.integers(1, 500), st.sampled_from([(1, 1), (2, 2), (2, 4), (3, 6), (4, 64), (8, 64)]), st.integers(0, 99))
def test_the_slices_of_each_step_make_the_global_batch_one_process_trains_on(n, sizes, seed):
    processes, batch = sizes
    order = np.random.default_rng(seed).permutation(n)
    slices = [shard(order, batch, Job("h:1", processes, i)) for i in range(processes)]
    steps = n // batch
    part = batch // processes
    assert all(len(s) == steps * part for s in slices)
    for k in range(steps):
        assert np.array_equal(np.concatenate([s[k * part:(k + 1) * part] for s in slices]),
                              order[k * batch:(k + 1) * batch])


def splits_of(train: int, val: int | None):
    from types import SimpleNamespace

    return SimpleNamespace(x_train=np.zeros((train, 784), np.float32), y_train=np.zeros(train, np.int64),
                           x_val=None if val is None else np.zeros((val, 784)), y_val=None if val is None else np.zeros(val))


@pytest.mark.parametrize("train, val, says", [
    (63, 100, "63 training images make no whole batch of 64"),
    (640, 1, "1 validation images cannot be shared by 2 processes"),
])
def test_too_few_images_for_the_job_is_a_config_error_not_an_empty_shard(train, val, says):
    from digitlab.training.distributed import check_splits

    with pytest.raises(ConfigError, match=says):
        check_splits(config_for("mlp", batch_size=64), splits_of(train, val), JOB)
    check_splits(config_for("mlp", batch_size=64), splits_of(64, 2), JOB)
    check_splits(config_for("mlp", batch_size=64), splits_of(64, None), JOB)


def test_process_0_makes_its_run_folder_before_the_job_starts(tmp_path, monkeypatch):
    """An --out that cannot be written stops process 0 before it joins the job (the others are
    not left waiting for it in the middle of a training)."""
    from digitlab.errors import RunError
    from digitlab.lab import pipeline
    from digitlab.training import distributed

    monkeypatch.setattr(pipeline, "_load_splits", lambda config, data_dir: splits_of(640, 100))
    monkeypatch.setattr(distributed, "initialize", lambda job: pytest.fail("joined the job"))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunError, match="cannot create a run folder"):
        pipeline.train(config_for("mlp", out=str(tmp_path / "a-file" / "runs")), job=JOB)


def test_a_job_that_cannot_start_marks_process_0s_folder_failed(tmp_path, monkeypatch):
    import json

    from digitlab.errors import ClusterError
    from digitlab.lab import pipeline
    from digitlab.training import distributed

    def no_peers(job):
        raise ClusterError("process 0 could not meet the other 1")

    monkeypatch.setattr(pipeline, "_load_splits", lambda config, data_dir: splits_of(640, 100))
    monkeypatch.setattr(distributed, "initialize", no_peers)
    with pytest.raises(ClusterError):
        pipeline.train(config_for("mlp", out=str(tmp_path)), job=JOB)
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "status.json").read_text()) == {"state": "failed", "error": "process 0 could not meet the other 1"}


class NoSpace:
    def save(self, path):
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("stop, says", [
    (KeyboardInterrupt, "interrupted; a training spread over processes keeps no checkpoints"),
    (None, "No space left on device"),
])
def test_a_job_stopped_says_start_again_never_resume(tmp_path, monkeypatch, stop, says):
    """A training spread over processes has no checkpoint: when it is interrupted, or its results
    cannot be written, it says to start every process again, not `--resume`, and its folder says failed."""
    import json

    from digitlab.errors import DigitlabError
    from digitlab.lab import pipeline
    from digitlab.training import distributed

    def fit(*args, **kwargs):
        if stop is not None:
            raise stop
        return NoSpace(), {"loss": [0.1]}

    monkeypatch.setattr(distributed, "fit_data_parallel", fit)
    with pytest.raises(DigitlabError) as raised:
        pipeline._fit_and_finish(config_for("mlp"), splits_of(640, 100), tmp_path, 0, False, resume=False,
                                 on_result=None, job=JOB)
    assert says in str(raised.value) and "start every process again" in str(raised.value)
    assert "--resume" not in str(raised.value)
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "failed"


def test_a_wait_inside_native_code_still_hears_ctrl_c():
    """`_interruptible` runs a call that Python cannot interrupt (JAX waiting for the other
    processes in C++) in a thread, and waits for it in steps where Ctrl-C is heard."""
    import _thread
    import threading
    import time

    from digitlab.training.distributed import _interruptible

    threading.Timer(0.3, _thread.interrupt_main).start()  # Ctrl-C, as the main thread sees it
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _interruptible(lambda: time.sleep(3))  # interrupt_main does not wake a sleep: called directly, it ran 3 s
    assert time.monotonic() - started < 2
    with pytest.raises(ValueError, match="boom"):  # the call's own error comes through as it is
        _interruptible(lambda: (_ for _ in ()).throw(ValueError("boom")))
    done = []
    _interruptible(lambda: done.append(1))
    assert done == [1]
