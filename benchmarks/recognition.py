"""Recognition on real handwriting-like files: MNIST test digits rendered as users make them.

    python benchmarks/recognition.py --model runs/<cnn run> --digits 1000 --numbers 1000

Prints the accuracy on the raw test arrays and through `predict` on rendered image files (per
style), and the whole-string and per-digit accuracy of `read` on composed numbers of 3-8 digits
(issue 25's measure; `--lengths 3-10` for the rows measured before 2026-12-06), with the share whose
digits are all read right one by one: what a perfect split into digits would give.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from digitlab import load_dataset
from digitlab.recognize import Recognizer
from digitlab.images.synthetic import number_accuracy, rendered_accuracy


def lengths(text: str) -> tuple[int, int]:
    """'3-8' -> (3, 8): the fewest and most digits of a number."""
    try:
        fewest, most = (int(n) for n in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give the fewest and most digits as FEWEST-MOST, e.g. 3-8") from None
    if not 1 <= fewest <= most:
        raise argparse.ArgumentTypeError(f"{text!r}: need 1 <= FEWEST <= MOST")
    return fewest, most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="run folder or .keras file [default: the latest run]")
    parser.add_argument("--digits", type=int, default=1000)
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--lengths", type=lengths, default=(3, 8), help="FEWEST-MOST digits of a number [default: 3-8]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    recognizer = Recognizer.load(args.model)
    _, (x_test, y_test) = load_dataset("mnist", progress=False)
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(x_test), args.digits, replace=False)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        files = rendered_accuracy(recognizer, x_test[pick], y_test[pick], folder, rng)
    files["seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    numbers = number_accuracy(recognizer, x_test, y_test, args.numbers, rng, args.lengths)
    numbers["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps({"digits": args.digits, **files, **numbers}, indent=2))


if __name__ == "__main__":
    main()
