"""Run the fuzz campaigns and print what each did.

    python fuzz/run.py                          # every campaign, the default number of inputs
    python fuzz/run.py --target idx --examples 60000
    python fuzz/run.py --examples 300           # the short run CI does (tests/unit/test_fuzz_smoke.py)
    python fuzz/run.py --seconds 60             # a time budget split between the campaigns

For each campaign: inputs run, wall time, failures, outcome (ok, or the minimal failing input), the
slowest input, and the peak resident memory of the process (run one --target per process for a
campaign's own figure). An input over 2 s is a failure. The address space is capped (--memory-mb)
so an input that makes the code allocate without bound fails with MemoryError instead of swapping
the machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from campaigns import ALLOWED, campaigns, http_client, http_requests, http_target, Campaign  # noqa: E402

DEFAULT_EXAMPLES = {"idx": 60_000, "images": 25_000, "decoders": 100_000, "csv": 10_000, "folders": 2_000,
                    "http": 5_000}
DEADLINE_S = 2.0  # checked here, not by Hypothesis, whose deadline lets generated inputs run 25% over
CHUNK = 2_000


def run_campaign(campaign: Campaign, examples: int, seconds: float | None) -> dict:
    count = 0
    slowest = 0.0
    too_slow: list[str] = []
    first_error: list[str] = []  # as raised, before Hypothesis replays and shrinks it
    started = time.perf_counter()

    def one(value):
        nonlocal count, slowest
        count += 1
        t = time.perf_counter()
        try:
            campaign.target(value)
        except ALLOWED:
            pass
        except Exception as e:
            if not first_error:
                first_error.append(f"{type(e).__name__}: {str(e)[:300]} (at {_where(e)}) for {repr(value)[:300]}")
            raise
        elapsed = time.perf_counter() - t
        slowest = max(slowest, elapsed)
        if elapsed > DEADLINE_S:
            too_slow.append(f"{elapsed:.2f} s for {repr(value)[:200]}")

    def chunk(n: int):
        return settings(max_examples=n, deadline=None, database=None, derandomize=False,
                        phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
                        report_multiple_bugs=False)(given(campaign.strategy)(one))

    outcome, failures = "ok", 0
    try:
        # Runs of CHUNK inputs, each a fresh random search, until the count or the time is spent.
        while count < examples and (seconds is None or time.perf_counter() - started < seconds):
            before = count
            chunk(min(CHUNK, examples - count))()
            if count == before:  # the strategy has nothing new to give
                break
    except Exception as e:  # Hypothesis re-raises the shrunk failure
        frames = [f"{Path(f.filename).name}:{f.lineno}" for f in traceback.extract_tb(e.__traceback__)
                  if "hypothesis" not in f.filename]
        outcome, failures = f"FAILED: {type(e).__name__}: {str(e)[:500]} (at {' > '.join(frames[-6:])})", 1
        if first_error:
            outcome += f"; first seen as {first_error[0]}"
    if too_slow and outcome == "ok":
        outcome = f"FAILED: {len(too_slow)} input(s) over {DEADLINE_S:g} s, the first {too_slow[0]}"
    failures += len(too_slow)
    return {"campaign": campaign.name, "inputs": count, "seconds": round(time.perf_counter() - started, 1),
            "failures": failures,
            "slowest_input_s": round(slowest, 3), "outcome": outcome,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _where(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    return " > ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames[-4:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", choices=[*DEFAULT_EXAMPLES], help="repeatable; default: all")
    parser.add_argument("--examples", type=int, help="inputs per campaign (default: see DEFAULT_EXAMPLES)")
    parser.add_argument("--seconds", type=float, help="total time budget, split evenly between the campaigns")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space cap of this process")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_AS, (args.memory_mb << 20, resource.RLIM_INFINITY))
    warnings.simplefilter("ignore")  # Pillow warns about every damaged TIFF tag: thousands of lines
    targets = args.target or list(DEFAULT_EXAMPLES)
    found = campaigns()
    results = []
    for name in targets:
        campaign = found.get(name) or Campaign("http", http_requests(), http_target(http_client()))
        examples = args.examples or DEFAULT_EXAMPLES[name]
        budget = args.seconds / len(targets) if args.seconds else None
        result = run_campaign(campaign, examples if budget is None else 10**9, budget)
        results.append(result)
        print(json.dumps(result), flush=True)
    total = sum(r["inputs"] for r in results)
    print(json.dumps({"total_inputs": total, "failed": [r["campaign"] for r in results if r["outcome"] != "ok"]}))
    sys.exit(1 if any(r["outcome"] != "ok" for r in results) else 0)


if __name__ == "__main__":
    main()
