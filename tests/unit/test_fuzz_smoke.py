"""The fuzz campaigns run (briefly) in every CI, so the harness cannot rot; the long runs and their
figures are in RELIABILITY.md."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_every_fuzz_campaign_runs_clean_for_a_short_budget():
    done = subprocess.run([sys.executable, str(REPO / "fuzz" / "run.py"), "--seconds", "40"],
                          capture_output=True, text=True, timeout=600)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    campaigns = {r["campaign"]: r for r in lines if "campaign" in r}
    assert set(campaigns) == {"idx", "images", "csv", "folders", "http"}
    assert all(r["outcome"] == "ok" and r["inputs"] > 0 for r in campaigns.values()), campaigns
