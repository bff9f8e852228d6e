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

The model. The driver (one process) spends CPU all the while (Ray Data's executor polls: a
share a of a core), on each block (d_block) and on each image, the rows coming back and the one
writer (d_row); getrusage around jobs of 1,024 and 256 images a block, and of tasks that return
one row a block, separates the three; a job into a folder (`--out FOLDER`: the tasks write their
rows) against one row a block gives the driver's cost an image there (d_row_folder). A worker
takes w an image (two job sizes on one worker give w and the fixed cost F). The stages stream,
so the slower sets the pace: T(N, n) = F + max((n d_row + B d_block) / (1 - a), ceil(B / N) b w), with B
blocks of b images, b as `predict --cluster` picks it for n images on N CPUs. Ideal is the local
one-process work spread over N: n W / N. The model is checked against the measured 2 workers
(on this 2-core machine they share the cores with the driver and Ray's own processes).

Sweeps (`digitlab.cluster.sweep`, what `compare --cluster` and `reproduce --cluster` run): K
trainings of the MLP on part of MNIST, on 1 and 2 nodes; the wall time against the ideal,
sum(train_seconds) / N. The overhead of a trial (its `digitlab train` process starting, loading
data, compiling) is o, from the wall time on 1 node less Tune's costs and the trainings,
and Tune's own costs are timed with sweeps of trials that do nothing (4 and 16, on 1 and 2
workers): a fixed part F, a serial part cs a trial (the driver) and a part cp a trial that the
workers share. Predicted: wall(N, K) = F + K cs + ceil(K / N) (t + o + cp), against K t / N.
One training over processes (`digitlab train --coordinator`, Keras' DataParallel on JAX): the
MLP as `digitlab train` runs it (its compiled loop), through DataParallel in one process, and in
two processes meeting on 127.0.0.1; wall time of the whole and the run's train_seconds.
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import resource
import statistics
import sys
import tempfile
import time
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


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) so far: the driver's share of a job."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def predict_local(recognizer, paths: list[str]) -> None:
    for _ in recognizer.predict_iter(paths, workers=1):
        pass


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


def one_row_a_block(batch, spec):
    """A task that does all the work of a block but returns one row: the driver's probe (its
    CPU without the rows)."""
    from digitlab.cluster import predict

    return predict.predict_batch(batch, spec).slice(0, 1)


def predict_one_row(recognizer, paths: list[str], out: Path, batch_size: int) -> None:
    """`predict_cluster` with tasks that return one row a block (the job then reports too few rows)."""
    from digitlab.cluster import predict
    from digitlab.errors import ClusterError

    real = predict.predict_batch
    predict.predict_batch = one_row_a_block
    try:
        predict.predict_on_cluster(recognizer, paths, out, batch_size=batch_size)
    except ClusterError:  # "returned 12 rows for 12,000 files": expected
        pass
    finally:
        predict.predict_batch = real


def batch_scaling(args, recognizer, paths: list[str]) -> dict:
    """Each round: the local baseline, and on the cluster the job as `predict --cluster` runs it
    (its own block size) for all the files and a quarter of them; on one worker also with blocks
    of 256 and 1,024 images, and with tasks that return one row a block, whose driver times
    separate its CPU a block, an image and a second of the job."""
    import ray

    from digitlab.cluster.predict import predict_on_cluster

    n = len(paths)
    small = paths[: n // 4]
    times: dict[tuple, list[float]] = {}
    driver: dict[tuple, list[float]] = {}  # the driver's CPU seconds in each run
    latency = {}
    folders = itertools.count()  # --out FOLDER: a new folder each time
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in (1, 2):
            cluster = local_cluster(nodes)
            ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
            try:
                predict_on_cluster(recognizer, small[:256], Path(tmp) / "warm.csv")  # workers import digitlab
                if nodes == 1:
                    latency = dict(zip(("round trip", "burst rate"), task_latency()))
                jobs = {("local", nodes): lambda: predict_local(recognizer, paths),
                        ("cluster", nodes, n, None): lambda: predict_on_cluster(recognizer, paths, Path(tmp) / "a.csv"),
                        ("cluster", nodes, len(small), None):
                            lambda: predict_on_cluster(recognizer, small, Path(tmp) / "b.csv")}
                jobs[("folder", nodes, n, None)] = lambda: predict_on_cluster(
                    recognizer, paths, Path(tmp) / f"parts-{next(folders)}")
                if nodes == 1:
                    for bs in (256, 1024):
                        jobs[("cluster", 1, n, bs)] = (lambda bs: lambda: predict_on_cluster(
                            recognizer, paths, Path(tmp) / "c.csv", batch_size=bs))(bs)
                    jobs[("one row", 1, n, 1024)] = lambda: predict_one_row(recognizer, paths, Path(tmp) / "d.csv", 1024)
                    jobs[("folder", 1, n, 1024)] = lambda: predict_on_cluster(
                        recognizer, paths, Path(tmp) / f"parts-{next(folders)}", batch_size=1024)
                for r in range(args.rounds):
                    for key, work in jobs.items():
                        cpu = cpu_seconds()
                        times.setdefault(key, []).append(timed(work))
                        driver.setdefault(key, []).append(cpu_seconds() - cpu)
                    print(f"  {nodes} node(s), round {r + 1}: " + ", ".join(
                        f"{k[0]}{'' if len(k) == 2 else f' {k[2]:,}' + (f' (blocks of {k[3]})' if k[3] else '')} "
                        f"{v[-1]:.1f} s" for k, v in times.items() if k[1] == nodes), flush=True)
            finally:
                ray.shutdown()
                cluster.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k: statistics.median(v) for k, v in driver.items()}
    m = len(small)
    local = statistics.median(times[("local", 1)] + times[("local", 2)])
    slope = (med[("cluster", 1, n, None)] - med[("cluster", 1, m, None)]) / (n - m)  # one worker: its time an image
    # The driver's CPU = a wall + images d_row + blocks d_block (Ray Data's executor polls all the
    # while). Blocks of 1,024 with all rows and with one row a block differ in rows only (their wall
    # times nearly equal); blocks of 256 and 1,024 in blocks only; then a from what is left.
    full, one, fine = ("cluster", 1, n, 1024), ("one row", 1, n, 1024), ("cluster", 1, n, 256)
    blocks = math.ceil(n / 1024)
    a0 = cpu[one] / med[one]  # a first guess of a, to correct the two differences for their walls
    d_row = max(0.0, (cpu[full] - cpu[one] - a0 * (med[full] - med[one])) / (n - blocks))
    d_block = max(0.0, (cpu[fine] - cpu[full] - a0 * (med[fine] - med[full])) / (n / 256 - blocks))
    a = max(0.0, (cpu[full] - n * d_row - blocks * d_block) / med[full])
    # Into a folder, against one row a block: the same blocks, and the rows never come back
    folder = ("folder", 1, n, 1024)
    d_row_folder = max(0.0, (cpu[folder] - cpu[one] - a * (med[folder] - med[one])) / (n - blocks))
    return {"n": n, "local": local, "W": local / n, "med": med, "w": slope,
            "F": med[("cluster", 1, n, None)] - slope * n, "d_row": d_row, "d_block": d_block, "a": a,
            "d_row_folder": d_row_folder, "driver": cpu, "latency": latency}


def predicted(b: dict, workers: int, n: float, folder: bool = False) -> float:
    """T(N) = F + max(driver, workers): the stages stream, so the slower sets the pace. The driver
    polls (a share a of a core all the while) and spends d_row an image and d_block a block: it
    keeps up while a T + n d_row + B d_block <= T. The workers run ceil(B / N) waves of a block
    each (w an image), B blocks of the size `predict --cluster` picks for n images on N CPUs.
    `folder`: --out FOLDER, where the tasks write the rows (the driver's d_row_folder an image)."""
    from digitlab.cluster.predict import block_size

    bs = block_size(int(n), workers, folder)
    blocks = math.ceil(n / bs)
    driver = (n * b["d_row_folder" if folder else "d_row"] + blocks * b["d_block"]) / max(1e-9, 1 - b["a"])
    return b["F"] + max(driver, math.ceil(blocks / workers) * bs * b["w"])


def print_batch(b: dict) -> None:
    n, med = b["n"], b["med"]
    print(f"\nBatch recognition, {n:,} PNG files (medians)")
    print(f"  local predict, 1 process:   {b['local']:6.1f} s  {n / b['local']:8,.0f} images/s  (the baseline)")
    t1 = med[("cluster", 1, n, None)]
    for N in (1, 2):
        tN = med[("cluster", N, n, None)]
        print(f"  cluster, {N} worker(s):      {tN:6.1f} s  {n / tN:8,.0f} images/s  "
              f"{n / tN / (n / b['local']):.2f}x the baseline, efficiency T1/(N TN) {t1 / (N * tN):.2f}, "
              f"model {predicted(b, N, n):.1f} s")
    for N in (1, 2):
        tN = med[("folder", N, n, None)]
        print(f"  --out FOLDER, {N} worker(s): {tN:6.1f} s  {n / tN:8,.0f} images/s  "
              f"{n / tN / (n / b['local']):.2f}x the baseline, model {predicted(b, N, n, folder=True):.1f} s")
    for key in (("cluster", 1, n, 256), ("cluster", 1, n, 1024), ("one row", 1, n, 1024), ("folder", 1, n, 1024)):
        what = {"one row": ", one row back a block", "folder": ", into a folder"}.get(key[0], "")
        print(f"  1 worker, blocks of {key[3]:5d}{what:22s}: {med[key]:6.1f} s, driver CPU {b['driver'][key]:.2f} s")
    lat = b["latency"]
    print(f"\nOverheads measured: a task's round trip {lat['round trip'] * 1e3:.1f} ms, "
          f"{lat['burst rate']:,.0f} tasks/s at once;")
    print(f"  job fixed cost F {b['F']:.2f} s; per image: the work W {b['W'] * 1e6:.0f} us (local, one process), "
          f"a worker w {b['w'] * 1e6:.0f} us (its tasks, Ray's scheduling, the rows' transfer);")
    print(f"  the driver's CPU: {b['a']:.0%} of a core all the while (Ray Data's executor polling), "
          f"{b['d_block'] * 1e3:.1f} ms a block, {b['d_row'] * 1e6:.1f} us an image (the rows, the writer);")
    print(f"  into a folder (--out FOLDER): {b['d_row_folder'] * 1e6:.2f} us an image.")
    print("\nPredicted: T(N) = F + max((n d_row + B d_block) / (1 - a), ceil(B / N) b w), against the ideal n W / N")
    print("  images      workers   block   predicted s   ideal s   overhead")
    from digitlab.cluster.predict import block_size

    for folder in (False, True):
        print("  --out results.csv or .parquet:" if not folder else "  --out FOLDER:")
        for images in (1e6, 1e7):
            for N in (1, 2) + WORKERS:
                t = predicted(b, N, images, folder)
                ideal = images * b["W"] / N
                print(f"  {images:10,.0f}  {N:7d}   {block_size(int(images), N, folder):5d}   {t:11.1f}   "
                      f"{ideal:7.1f}   {1 - ideal / t:8.0%}")


def empty_sweep(trials: int, storage: str) -> float:
    """Seconds for Tune to run `trials` trials that do nothing (one CPU each)."""
    from ray import tune

    start = time.perf_counter()
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # Tune's table, even at verbose=0
        tune.Tuner(tune.with_resources(lambda config: tune.report({"x": 1}), {"cpu": 1}),
                   param_space={"i": tune.grid_search(list(range(trials)))},
                   tune_config=tune.TuneConfig(reuse_actors=True),  # as digitlab.cluster.sweep runs them
                   run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    return time.perf_counter() - start


def sweep_scaling(args) -> dict:
    import ray

    from digitlab.cluster.sweep import Trial, sweep
    from digitlab.runs import METRICS_FILE, read_json

    extra = ("--no-plots", "--limit", str(args.limit), "--epochs", str(args.epochs))
    out: dict = {"wall": {}, "train": {}, "empty": {}}
    sizes = (args.empty_trials // 4, args.empty_trials)
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in (1, 2):
            cluster = local_cluster(nodes)
            ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
            try:
                for k in sizes:
                    out["empty"][nodes, k] = empty_sweep(k, f"{tmp}/empty{nodes}-{k}")
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
            print(f"  {nodes} node(s): {args.trials} trainings in {out['wall'][nodes]:.1f} s; empty trials: " +
                  ", ".join(f"{k} in {out['empty'][nodes, k]:.1f} s" for k in sizes), flush=True)
    return out


def print_sweep(sw: dict, args) -> None:
    import numpy as np

    K = args.trials
    print(f"\nSweeps: {K} trainings of the MLP ({args.limit:,} images, {args.epochs} epochs, --no-plots)")
    for N in (1, 2):
        ideal = sum(sw["train"][N]) / N
        print(f"  {N} worker(s): wall {sw['wall'][N]:6.1f} s, ideal sum(train_seconds)/N {ideal:5.1f} s, "
              f"overhead {1 - ideal / sw['wall'][N]:.0%}")
    # Tune's own costs, from the empty sweeps: T = F + k cs + (k / N) cp (a fixed part, a serial
    # part per trial on the driver, a part per trial the workers share), least squares
    keys = list(sw["empty"])
    A = np.array([[1.0, k, k / N] for N, k in keys])
    F, cs, cp = np.linalg.lstsq(A, np.array([sw["empty"][key] for key in keys]), rcond=None)[0]
    cs, cp = max(cs, 0.0), max(cp, 0.0)  # a cost below zero is the machine's noise
    t = statistics.fmean(sw["train"][1])
    o = (sw["wall"][1] - F - K * cs) / K - cp - t  # one worker: the trials one after another
    print(f"  Tune, empty trials: fixed F {F:.1f} s, serial {cs:.2f} s a trial, shared {cp:.2f} s a trial")
    print(f"  per trial: training {t:.1f} s (train_seconds), and o = {o:.1f} s to start `digitlab train`, "
          "load the data and compile")
    wall2 = F + K * cs + math.ceil(K / 2) * (t + o + cp)
    print(f"  the model on 2 workers: {wall2:.1f} s predicted, {sw['wall'][2]:.1f} s measured")
    print("\nPredicted sweeps, 4 trials a worker: wall = F + K cs + ceil(K/N) (t + o + cp) against K t / N")
    print("  workers   trials             training t   predicted s   ideal s   overhead")
    for t_train, label in ((t, "this MLP"), (300.0, "300 s (a CNN recipe)")):
        for N in (1, 2) + WORKERS:
            trials = 4 * N
            wall = F + trials * cs + math.ceil(trials / N) * (t_train + o + cp)
            ideal = trials * t_train / N
            print(f"  {N:7d}   {trials:6d}   {label:>20s}   {wall:11.1f}   {ideal:7.1f}   {1 - ideal / wall:8.0%}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_processes(args, out: Path, processes: int | None) -> tuple[float, float]:
    """(wall seconds, the run's train_seconds) of one `digitlab train` of the MLP: as it is
    (processes None), or spread over `processes` processes with --coordinator."""
    import json
    import subprocess

    command = [sys.executable, "-m", "digitlab", "train", "--model", "mlp", "--limit", str(args.train_limit),
               "--epochs", str(args.epochs), "--no-plots"] + (["--data-dir", args.data_dir] if args.data_dir else [])
    port = free_port()
    start = time.perf_counter()
    if processes is None:
        children = [subprocess.Popen([*command, "--out", str(out / "0")], stdout=subprocess.DEVNULL)]
    else:
        children = [subprocess.Popen([*command, "--out", str(out / str(i)), "--coordinator", f"127.0.0.1:{port}",
                                      "--num-processes", str(processes), "--process-id", str(i)],
                                     stdout=subprocess.DEVNULL) for i in range(processes)]
    assert all(child.wait() == 0 for child in children)
    wall = time.perf_counter() - start
    (run,) = list((out / "0").iterdir())
    return wall, json.loads((run / "metrics.json").read_text())["train_seconds"]


def print_data_parallel(args) -> None:
    """The default MLP trained as it is, on one process through DataParallel, and on two."""
    ways = {"digitlab train (compiled loop)": None, "--coordinator, 1 process (Keras fit)": 1,
            "--coordinator, 2 processes": 2}
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for k, (name, processes) in enumerate(ways.items()):
                got[name].append(train_processes(args, Path(tmp) / f"{r}-{k}", processes))
    print(f"\nOne training over processes: mlp, {args.train_limit:,} images, {args.epochs} epochs, --no-plots "
          f"(medians of {args.rounds})")
    for name, results in got.items():
        print(f"  {name:40s} wall {statistics.median(w for w, _ in results):6.1f} s, "
              f"train_seconds {statistics.median(t for _, t in results):6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=12_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--empty-trials", type=int, default=16, help="the larger empty sweep (the other a quarter)")
    parser.add_argument("--limit", type=int, default=20_000, help="training images of each sweep trial")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data-dir", default=os.environ.get("DIGITLAB_DATA"))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,200 images, 1 round, 2 small trials")
    parser.add_argument("--train-limit", type=int, default=30_000, help="training images of the data-parallel runs")
    parser.add_argument("--only", choices=("batch", "sweep", "train"), default=None)
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds, args.trials, args.empty_trials, args.limit, args.epochs = 1200, 1, 2, 8, 2000, 1
        args.train_limit = 2000
    from digitlab.cluster.connect import import_ray
    from digitlab.recognize import Recognizer

    import_ray()
    print(f"{os.cpu_count()} cores; Python {sys.version.split()[0]}; ray {__import__('ray').__version__}", flush=True)
    if args.only in (None, "batch"):
        recognizer = Recognizer.load("reader")
        with tempfile.TemporaryDirectory() as tmp:
            paths = [str(p) for p in write_scans(Path(tmp), args.images, args.data_dir)]
            print_batch(batch_scaling(args, recognizer, paths))
    if args.only in (None, "sweep"):
        print_sweep(sweep_scaling(args), args)
    if args.only in (None, "train"):
        print_data_parallel(args)


if __name__ == "__main__":
    main()
