"""`digitlab predict FILES --cluster ADDRESS --out results.csv|.parquet`: recognition on Ray Data.

Ray Data splits the list of files into blocks of `batch_size`, and stateless tasks open each
block's files, prepare them as a stack and predict with the model's NumPy inference file: the
same code, on the same bytes, as a local `digitlab predict`. (Ray Data's own `read_binary_files`
was measured first: for 12,000 files of 28 x 28 it spent 9.6 s listing their metadata on the
driver before reading anything, and 16 s more reading them in one task; plain reads in the tasks
take 0.5 s in all. benchmarks/scaling.py; BENCHMARKS.md.) The model travels once
through Ray's object store, so the nodes need digitlab installed but not the run folder. Rows
come back in the files' order (Ray Data's `preserve_order`) and are written, with the columns of
`digitlab predict --csv`, to one file that appears whole when the job is done. A task lost with
its node is run again elsewhere (Ray Data's retries): no row is lost or written twice.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from digitlab.errors import ClusterError
from digitlab.files import atomic_write
from digitlab.images.batch import prepare_many
from digitlab.models.numpy_model import NumpyModel
from digitlab.recognize import CSV_COLUMNS, Recognizer

OUT_SUFFIXES = (".csv", ".parquet")
FLOAT_COLUMNS = ("probability", "p1", "p2", "p3")


def check_out(out: Path) -> None:
    """A ClusterError unless `out` is a .csv or .parquet file in an existing folder."""
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise ClusterError(f"--out {out}: write the results to a .csv or .parquet file.")
    if not out.parent.is_dir():
        raise ClusterError(f"--out {out}: the folder {out.parent} does not exist.")
    if out.is_dir():
        raise ClusterError(f"--out {out} is a folder; name a .csv or .parquet file.")


def predict_on_cluster(recognizer: Recognizer, paths: list[str], out: Path, *, batch_size: int = 256) -> Counter:
    """Predict every file of `paths` on the connected Ray cluster and write the rows to `out`;
    returns how many rows had each status ("ok", "unsure", "error")."""
    import ray

    check_out(out)
    if not isinstance(recognizer.model, NumpyModel):
        raise ClusterError(f"{recognizer.name}: --cluster predicts with a run's NumPy inference file "
                           "(inference.npz), which this model has not; train it with `digitlab train` "
                           "or predict without --cluster.")
    if not paths:
        raise ClusterError("no image files to predict.")
    spec = (recognizer.model, recognizer.class_names, recognizer.temperature, recognizer.threshold)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    # The nodes open the files by absolute path (their working folder is not ours); the rows and
    # messages name them as given, as a local run does.
    files = ray.data.from_items([{"path": str(Path(p).absolute()), "name": p} for p in paths],
                                override_num_blocks=max(1, math.ceil(len(paths) / batch_size)))
    # Ray Data runs a task lost with its node again (its default: retries without limit for system
    # failures, none for an exception raised by digitlab's code, which would only fail again).
    rows = files.map_batches(predict_batch, fn_kwargs={"spec": spec}, batch_size=batch_size, batch_format="numpy")
    counts: Counter = Counter()
    with atomic_write(out) as tmp:
        written = _write(tmp, out.suffix.lower(), rows.iter_batches(batch_format="numpy", batch_size=batch_size),
                         counts)
    if written != len(paths):  # Ray's retries guarantee it; a check costs nothing
        raise ClusterError(f"the cluster returned {written} rows for {len(paths)} files; {out} not written.")
    return counts


def predict_batch(batch: dict[str, np.ndarray], spec) -> dict[str, np.ndarray]:
    """A block of files ("path": absolute, "name": as given) -> the `--csv` columns of their predictions."""
    model, class_names, temperature, threshold = spec
    recognizer = Recognizer(model, class_names, temperature, threshold)
    names = [str(n) for n in batch["name"]]
    predictions = recognizer.predictions(names, prepare_many([str(p) for p in batch["path"]], names))
    rows = [p.csv_row() for p in predictions]
    return {column: np.array([row[k] for row in rows], dtype=object) for k, column in enumerate(CSV_COLUMNS)}


def _write(path: Path, suffix: str, batches: Iterator[dict[str, np.ndarray]], counts: Counter) -> int:
    written = 0
    if suffix == ".csv":
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for batch in batches:
                writer.writerows(zip(*(batch[c] for c in CSV_COLUMNS)))
                counts.update(batch["status"].tolist())
                written += len(batch["status"])
        return written
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.float64() if c in FLOAT_COLUMNS else pa.string()) for c in CSV_COLUMNS])
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            columns = {c: [float(v) if v != "" else None for v in batch[c]] if c in FLOAT_COLUMNS else list(batch[c])
                       for c in CSV_COLUMNS}
            writer.write_table(pa.table(columns, schema=schema))
            counts.update(batch["status"].tolist())
            written += len(batch["status"])
    return written
