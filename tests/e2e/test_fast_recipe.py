"""`cnn-fast`, the recipe for 99% soonest, does what its preset claims on the real data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitlab.models import get_preset
from tests.conftest import require_real_data, run_cli

pytestmark = pytest.mark.slow  # trainings of the full recipe


def test_cnn_fast_meets_its_claim_in_two_epochs_as_reproduce_judges_it(tmp_path):
    require_real_data("mnist")
    done = run_cli("reproduce", "--presets", "cnn-fast", "--seeds", "3", "--out", str(tmp_path / "runs"),
                   "--markdown", str(tmp_path / "table.md"))
    assert done.returncode == 0, done.stderr
    runs = sorted(p.parent for p in (tmp_path / "runs").rglob("metrics.json"))
    assert len(runs) == 3
    assert all(len(json.loads((run / "history.json").read_text())["loss"]) == 2 for run in runs)  # two epochs
    accuracy = [json.loads((run / "metrics.json").read_text())["test_accuracy"] for run in runs]
    # A claim is met by the mean over seeds (digitlab.lab.reproduce). Seed 0 alone sits on the line:
    # 99.11% in digitlab's JAX loop (AVX2), 99.01% (Zen 4) and 98.99% (a Xeon with AMX) on TensorFlow
    # in mixed bfloat16; seeds 1 and 2 on that Xeon 99.07% each.
    assert np.mean(accuracy) >= get_preset("cnn-fast").claim.threshold, accuracy
    row = next(line for line in (tmp_path / "table.md").read_text().splitlines() if "cnn-fast" in line)
    assert "| yes" in row, row
