"""Batch recognition speed against the decode-only rate (issue 23, part 1).

    python benchmarks/batch_predict.py --model runs/<default mlp run> --images 10000 --rounds 3
    python benchmarks/batch_predict.py --model reader --images 2000 --rounds 1     # the shipped reader

Writes MNIST test digits as 28 x 28 PNG files (as a folder of scans would hold them) into a
temporary folder, then in interleaved rounds times, on the same files:

- decode only: Pillow opens and decodes each file (the floor: no preparation, no model);
- one by one: decoding and MNIST-style preparation of each image alone (`Recognizer.prepare`),
  the path before batch preparation;
- predict, 1 process: `Recognizer.predict_iter` over the folder in this process (decode, prepare
  in stacks of 256, batched inference);
- predict, N workers: the same with decoding and preparation in `--workers` processes (default:
  the cores, at most 4), as `digitlab predict FOLDER --csv` runs it, without the printing.

Prints images/s for each (median and range over rounds) and predict's share of the decode-only
rate; the issue's target is a third. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from digitlab.data.userdata import load_dataset
from digitlab.images.batch import default_workers
from digitlab.images.folders import expand
from digitlab.recognize import Recognizer


def write_scans(folder: Path, count: int, data_dir: str | None) -> list[Path]:
    _, (x_test, _) = load_dataset("mnist", data_dir=data_dir, progress=False)
    paths = []
    for i in range(count):
        path = folder / f"{i:06d}.png"
        Image.fromarray(x_test[i % len(x_test)]).save(path)
        paths.append(path)
    return paths


def decode_only(paths: list[Path]) -> None:
    for path in paths:
        with Image.open(path) as image:
            image.load()


def one_by_one(recognizer: Recognizer, paths: list[Path]) -> None:
    for path in paths:
        recognizer.prepare(path, str(path))


def predict(recognizer: Recognizer, folder: Path, workers: int) -> int:
    return sum(p.status == "ok" for p in recognizer.predict_iter(expand([folder]), workers=workers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="run folder, .keras file or 'reader' [default: as predict chooses]")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("DIGITLAB_DATA"))
    parser.add_argument("--workers", type=int, default=default_workers(), help="[default: the cores, at most 4]")
    args = parser.parse_args()
    recognizer = Recognizer.load(args.model)
    print(f"model: {recognizer.name}; {args.images:,} PNG files of 28 x 28; {args.rounds} rounds", flush=True)
    parallel = f"predict, {args.workers} workers"
    rates: dict[str, list[float]] = {"decode only": [], "one by one": [], "predict, 1 process": [], parallel: []}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_scans(Path(tmp), args.images, args.data_dir)
        for _ in range(args.rounds):
            for name, work in (("decode only", lambda: decode_only(paths)),
                               ("one by one", lambda: one_by_one(recognizer, paths)),
                               ("predict, 1 process", lambda: predict(recognizer, Path(tmp), 1)),
                               (parallel, lambda: predict(recognizer, Path(tmp), args.workers))):
                started = time.perf_counter()
                work()
                rates[name].append(args.images / (time.perf_counter() - started))
    for name, values in rates.items():
        print(f"{name:20s} {statistics.median(values):10,.0f} images/s  ({min(values):,.0f} - {max(values):,.0f})")
    for name in ("predict, 1 process", parallel):
        share = statistics.median(rates[name]) / statistics.median(rates["decode only"])
        print(f"{name} at {share:.2f} of the decode-only rate (target: at least 0.33)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
