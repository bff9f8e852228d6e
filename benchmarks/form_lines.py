"""What taking form lines out costs: `read` of dev.json numbers plain and in a row of boxes, and
preparing one dev digit plain and in a box it runs out of (`digitlab.images.rulings`).

    python benchmarks/form_lines.py            # medians in milliseconds

To compare two versions, interleave them on the same machine (it is noisy), e.g. with a checkout
of the commit before: `for i in 1 2; do PYTHONPATH=../before/src python benchmarks/form_lines.py;
python benchmarks/form_lines.py; done`.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from digitlab.data.pen import load_pen_digits
from digitlab.images.strokes import draw_number, draw_strokes
from digitlab.images.synthetic import in_cell, on_form
from digitlab.recognize import Recognizer


def median_ms(step, images) -> float:
    """The median time of `step` on each image, in milliseconds."""
    times = []
    for image in images:
        started = time.perf_counter()
        step(image)
        times.append(time.perf_counter() - started)
    return round(1000 * float(np.median(times)), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=60)
    parser.add_argument("--digits", type=int, default=100)
    parser.add_argument("--data-dir", default=os.environ.get("DIGITLAB_DATA"))
    args = parser.parse_args()
    reader = Recognizer.load("reader")
    dev = load_pen_digits("dev", args.data_dir)
    rng = np.random.default_rng(1)
    plain, boxed = [], []
    for _ in range(args.numbers):
        idx = rng.integers(0, len(dev), int(rng.integers(3, 7)))
        number = draw_number([dev[i].strokes for i in idx], rng)
        plain.append(number)
        boxed.append(np.asarray(on_form(number, len(idx), "boxes")))
    digits = [draw_strokes(d.strokes) for d in dev[: args.digits]]
    running_out = [np.asarray(in_cell(d, "box touching")) for d in digits]
    reader.read(plain[0])  # warm
    print(f"read: a number plain {median_ms(reader.read, plain)} ms, in boxes {median_ms(reader.read, boxed)} ms; "
          f"prepare: a digit plain {median_ms(reader.prepare, digits)} ms, "
          f"in a box it runs into {median_ms(reader.prepare, running_out)} ms", flush=True)


if __name__ == "__main__":
    main()
