"""Scaling on a Ray cluster (issue 23): batch recognition and sweeps against worker processes, and a
model of the overheads measured, with what it predicts for 8, 64 and 512 workers.

    python benchmarks/scaling.py               # 12,000 scans (and 3,000), 4 trainings, 3 rounds: about 8 min
    python benchmarks/scaling.py --quick       # a smoke run

A worker here is a one-CPU node of a local Ray cluster (`ray.cluster_utils.Cluster`: a head that
runs nothing and N nodes), as `--cluster local:N` starts; this 2-core machine measures N = 1 and 2.

Batch recognition (`predict_on_cluster`, what `digitlab predict --cluster` runs, the shipped
reader, MNIST test digits as 28 x 28 PNG files). In each round, interleaved with the cluster
runs, the baseline: the same files through `Recognizer.predict_iter` in one local process, as
`digitlab predict --csv --workers 1` runs them. Efficiency is T1 / (N * TN).

The model. For n images on N workers, T(N, n) = F + n (s + p / N): F the fixed cost of a job
(planning, first tasks), s the serial cost per image (on the driver: Ray Data's scheduling of
the blocks, the rows coming back, the one writer), p the cost per image that the workers share.
Two job sizes give F and the per-image slope at N = 1 and 2; the two slopes give s and p. Ideal
is the local one-process work spread over N: n W / N. The driver's writer alone (rows to CSV,
no cluster) is timed too, to show how much of s it is.

Sweeps (`digitlab.cluster.sweep`, what `compare --cluster` and `reproduce --cluster` run): K
trainings of the MLP on part of MNIST, on 1 and 2 nodes; the wall time against the ideal,
sum(train_seconds) / N. The overhead of a trial (its `digitlab train` process starting, loading
data, compiling; Tune's scheduling) is o = (wall on 1 node - F_tune) / K - mean train_seconds,
and Tune's own cost per trial c is timed with K trials that do nothing. Predicted:
wall(N, K) = F_tune + K c + ceil(K / N) (t + o), against K t / N.
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from batch_predict import write_scans  # noqa: E402  (the benchmarks are scripts, not a package)

WORKERS = (8, 64, 512)


def local_cluster(nodes: int):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(nodes):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    return cluster


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def predict_local(recognizer, paths: list[str]) -> None:
    for _ in recognizer.predict_iter(paths, workers=1):
        pass


def predict_cluster(recognizer, paths: list[str], out: Path) -> None:
    from digitlab.cluster.predict import predict_on_cluster

    predict_on_cluster(recognizer, paths, out)


def writer_only(recognizer, paths: list[str]) -> float:
    """Seconds per row for the driver's writer alone: rows as the cluster returns them, to CSV."""
    from digitlab.cluster.predict import _write
    from digitlab.recognize import CSV_COLUMNS

    import numpy as np

    rows = [p.csv_row() for p in recognizer.predict_iter(paths[:2000], workers=1)]
    batch = {c: np.array([r[k] for r in rows], dtype=object) for k, c in enumerate(CSV_COLUMNS)}
    with tempfile.TemporaryDirectory() as tmp:
        seconds = timed(lambda: _write(Path(tmp) / "rows.csv", ".csv", iter([batch] * 10), Counter()))
    return seconds / (10 * len(rows))


def task_latency() -> tuple[float, float]:
    """A Ray task's round trip, warm (median of 50 in turn), and the rate of 1,000 at once."""
    import ray

    @ray.remote(num_cpus=1)
    def noop():
        return None

    ray.get(noop.remote())
    trips = [timed(lambda: ray.get(noop.remote())) for _ in range(50)]
    burst = timed(lambda: ray.get([noop.remote() for _ in range(1000)]))
    return statistics.median(trips), 1000 / burst


def batch_scaling(args, recognizer, paths: list[str]) -> dict:
    import ray

    small = paths[: len(paths) // 4]
    times: dict[tuple, list[float]] = {}
    latency = {}
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in (1, 2):
            cluster = local_cluster(nodes)
            ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
            try:
                predict_cluster(recognizer, small[:256], Path(tmp) / "warm.csv")  # workers import digitlab
                if nodes == 1:
                    latency = dict(zip(("round trip", "burst rate"), task_latency()))
                for r in range(args.rounds):
                    for key, work in ((("local", nodes), lambda: predict_local(recognizer, paths)),
                                      (("cluster", nodes, len(paths)),
                                       lambda: predict_cluster(recognizer, paths, Path(tmp) / "big.csv")),
                                      (("cluster", nodes, len(small)),
                                       lambda: predict_cluster(recognizer, small, Path(tmp) / "small.csv"))):
                        times.setdefault(key, []).append(timed(work))
                    print(f"  {nodes} node(s), round {r + 1}: " + ", ".join(
                        f"{k[0]}{'' if len(k) == 2 else f' {k[2]:,}'} {v[-1]:.1f} s" for k, v in times.items()
                        if k[1] == nodes), flush=True)
            finally:
                ray.shutdown()
                cluster.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    n, m = len(paths), len(small)
    local = statistics.median(times[("local", 1)] + times[("local", 2)])
    W = local / n
    slope = {N: (med[("cluster", N, n)] - med[("cluster", N, m)]) / (n - m) for N in (1, 2)}
    F = statistics.median([med[("cluster", N, n)] - slope[N] * n for N in (1, 2)])
    p = 2 * (slope[1] - slope[2])
    s = slope[1] - p
    return {"n": n, "local": local, "W": W, "med": med, "slope": slope, "F": F, "s": s, "p": p,
            "D": writer_only(recognizer, paths), "latency": latency}


def print_batch(b: dict) -> None:
    n, med = b["n"], b["med"]
    print(f"\nBatch recognition, {n:,} PNG files (medians)")
    print(f"  local predict, 1 process:   {b['local']:6.1f} s  {n / b['local']:8,.0f} images/s  (the baseline)")
    t1 = med[("cluster", 1, n)]
    for N in (1, 2):
        tN = med[("cluster", N, n)]
        print(f"  cluster, {N} worker(s):      {tN:6.1f} s  {n / tN:8,.0f} images/s  "
              f"{n / tN / (n / b['local']):.2f}x the baseline, efficiency T1/(N TN) {t1 / (N * tN):.2f}")
    lat = b["latency"]
    print(f"\nOverheads measured: a task's round trip {lat['round trip'] * 1e3:.1f} ms, "
          f"{lat['burst rate']:,.0f} tasks/s at once;")
    print(f"  job fixed cost F {b['F']:.2f} s; per image: work W {b['W'] * 1e6:.0f} us (local), on the cluster "
          f"{b['slope'][1] * 1e6:.0f} us on 1 worker, {b['slope'][2] * 1e6:.0f} us on 2;")
    print(f"  serial s {b['s'] * 1e6:.0f} us/image (of which the driver's CSV writer {b['D'] * 1e6:.1f} us), "
          f"shared p {b['p'] * 1e6:.0f} us/image.")
    s = max(b["s"], b["D"])  # a noisy fit can give less than the writer alone, which is certainly serial
    print("\nPredicted, 1,000,000 images: T(N) = F + n (s + p / N) against the ideal n W / N")
    print("  workers   predicted s   ideal s   overhead")
    for N in (1, 2) + WORKERS:
        t = b["F"] + 1e6 * (s + b["p"] / N)
        ideal = 1e6 * b["W"] / N
        print(f"  {N:7d}   {t:11.1f}   {ideal:7.1f}   {1 - ideal / t:8.0%}")


def sweep_scaling(args) -> dict:
    import ray
    from ray import tune

    from digitlab.cluster.sweep import Trial, sweep
    from digitlab.runs import METRICS_FILE, read_json

    extra = ("--no-plots", "--limit", str(args.limit), "--epochs", str(args.epochs))
    out: dict = {"wall": {}, "train": {}, "noop": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in (1, 2):
            cluster = local_cluster(nodes)
            ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
            try:
                start = time.perf_counter()
                tune.Tuner(tune.with_resources(lambda config: tune.report({"x": 1}), {"cpu": 1}),
                           param_space={"i": tune.grid_search(list(range(args.noop_trials)))},
                           run_config=tune.RunConfig(storage_path=f"{tmp}/noop{nodes}", verbose=0)).fit()
                out["noop"][nodes] = time.perf_counter() - start
                trials = [Trial("mlp", "mnist", seed, f"{tmp}/n{nodes}/mlp-seed{seed}", extra)
                          for seed in range(args.trials)]
                start = time.perf_counter()
                outcomes = sweep(trials, data_dir=args.data_dir, storage=Path(tmp) / f"tune{nodes}")
                out["wall"][nodes] = time.perf_counter() - start
                assert all(o.run for o in outcomes), [o.error for o in outcomes]
                out["train"][nodes] = [float(read_json(Path(o.run) / METRICS_FILE)["train_seconds"]) for o in outcomes]
            finally:
                ray.shutdown()
                cluster.shutdown()
            print(f"  {nodes} node(s): {args.trials} trainings in {out['wall'][nodes]:.1f} s, "
                  f"{args.noop_trials} empty trials in {out['noop'][nodes]:.1f} s", flush=True)
    return out


def print_sweep(sw: dict, args) -> None:
    K = args.trials
    print(f"\nSweeps: {K} trainings of the MLP ({args.limit:,} images, {args.epochs} epochs, --no-plots)")
    for N in (1, 2):
        ideal = sum(sw["train"][N]) / N
        print(f"  {N} worker(s): wall {sw['wall'][N]:6.1f} s, ideal sum(train_seconds)/N {ideal:5.1f} s, "
              f"overhead {1 - ideal / sw['wall'][N]:.0%}")
    # Tune's own cost: K_noop empty trials on 2 nodes take F_tune + K_noop c (they need no CPU time)
    c = sw["noop"][2] / args.noop_trials
    F_tune = min(sw["noop"].values()) / 2  # half the empty sweep as its fixed part: a rough split
    t = statistics.fmean(sw["train"][1])
    o = max(0.0, (sw["wall"][1] - F_tune) / K - t - c)
    print(f"  per trial: training {t:.1f} s, process start, data and compile o = {o:.1f} s, "
          f"Tune's scheduling c = {c:.2f} s")
    print("\nPredicted sweeps, 4 trials a worker: wall = F + K c + ceil(K/N) (t + o) against K t / N")
    print("  workers   trials   training t   predicted s   ideal s   overhead")
    for t_train, label in ((t, "this MLP"), (300.0, "300 s (a CNN recipe)")):
        for N in (1, 2) + WORKERS:
            trials = 4 * N
            wall = F_tune + trials * c + math.ceil(trials / N) * (t_train + o)
            ideal = trials * t_train / N
            print(f"  {N:7d}   {trials:6d}   {label:>20s}   {wall:9.1f}   {ideal:7.1f}   {1 - ideal / wall:8.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=12_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--noop-trials", type=int, default=16)
    parser.add_argument("--limit", type=int, default=20_000, help="training images of each sweep trial")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data-dir", default=os.environ.get("DIGITLAB_DATA"))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,200 images, 1 round, 2 small trials")
    parser.add_argument("--only", choices=("batch", "sweep"), default=None)
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds, args.trials, args.noop_trials, args.limit, args.epochs = 1200, 1, 2, 4, 2000, 1
    from digitlab.cluster.connect import import_ray
    from digitlab.recognize import Recognizer

    import_ray()
    print(f"{os.cpu_count()} cores; Python {sys.version.split()[0]}; ray {__import__('ray').__version__}", flush=True)
    if args.only != "sweep":
        recognizer = Recognizer.load("reader")
        with tempfile.TemporaryDirectory() as tmp:
            paths = [str(p) for p in write_scans(Path(tmp), args.images, args.data_dir)]
            print_batch(batch_scaling(args, recognizer, paths))
    if args.only != "batch":
        print_sweep(sweep_scaling(args), args)


if __name__ == "__main__":
    main()
