"""The fuzz campaigns run (briefly) in every CI, so the harness cannot rot; the long runs and their
figures are in docs/reliability.md."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

CAMPAIGNS = {"idx", "images", "decoders", "csv", "folders", "http"}
EXAMPLES = 300  # per campaign: about 10 s in all on 2 cores


@pytest.mark.slow  # six campaigns in a cold process
def test_every_fuzz_campaign_runs_clean_for_a_few_hundred_inputs():
    done = subprocess.run([sys.executable, str(REPO / "fuzz" / "run.py"), "--examples", str(EXAMPLES)],
                          capture_output=True, text=True, timeout=300)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    campaigns = {r["campaign"]: r for r in lines if "campaign" in r}
    assert set(campaigns) == CAMPAIGNS
    assert all(r["outcome"] == "ok" and r["failures"] == 0 and r["inputs"] == EXAMPLES for r in campaigns.values()), campaigns
    assert all(r["peak_rss_mb"] > 0 and r["seconds"] >= 0 for r in campaigns.values()), campaigns


def _runner():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fuzz_run", REPO / "fuzz" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_input_over_two_seconds_or_an_unexpected_exception_fails_the_campaign():
    """The runner times inputs itself: Hypothesis' deadline lets a generated input run 25% over."""
    import time

    from hypothesis import strategies as st

    run = _runner()
    slow = run.Campaign("slow", st.just(None), lambda _: time.sleep(2.1))
    result = run.run_campaign(slow, 1, None)
    assert result["failures"] == 1 and result["outcome"].startswith("FAILED: 1 input(s) over 2 s"), result
    broken = run.Campaign("broken", st.integers(0, 9), lambda v: [][v])
    result = run.run_campaign(broken, 50, None)
    assert result["failures"] == 1 and "first seen as IndexError" in result["outcome"], result
