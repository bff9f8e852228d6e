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
