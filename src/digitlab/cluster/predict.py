"""`digitlab predict FILES --cluster ADDRESS --out results.csv|.parquet`: recognition on Ray Data.

The list of files goes to Ray Data as blocks (`block_size`: about four for each CPU), and stateless
tasks open each block's files, prepare them as a stack and predict with the model's NumPy inference file: the
same code, on the same bytes, as a local `digitlab predict`. (Ray Data's own `read_binary_files`
was measured first: for 12,000 files of 28 x 28 it spent 9.6 s listing their metadata on the
driver before reading anything, and 16 s more reading them in one task; plain reads in the tasks
take 0.5 s in all. benchmarks/scaling.py; BENCHMARKS.md.) The model travels once
through Ray's object store, so the nodes need digitlab installed but not the run folder. Rows
come back as Arrow tables in the files' order (Ray Data's `preserve_order`) and are written, with the columns of
`digitlab predict --csv`, to one file that appears whole when the job is done. A task lost with
its node is run again elsewhere (Ray Data's retries): no row is lost or written twice.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from pathlib import Path


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


def block_size(files: int, cpus: float) -> int:
    """Images in a block (one task's work): about four blocks for each CPU of the cluster, so that
    the work spreads and a lost task costs little, within [256, 4096]. Measured here (ray 2.60,
    benchmarks/scaling.py): the driver spends about 14 ms of CPU on each block (Ray Data's
    executor), so blocks of 256 images cap a job at about 70 blocks a second, whatever the
    workers; a block of 4,096 takes a worker about 3 s.
    """
    return int(min(MAX_BLOCK, max(MIN_BLOCK, math.ceil(files / (4 * max(1.0, cpus))))))


MIN_BLOCK, MAX_BLOCK = 256, 4096


def predict_on_cluster(recognizer: Recognizer, paths: list[str], out: Path, *, batch_size: int | None = None) -> Counter:
    """Predict every file of `paths` on the connected Ray cluster and write the rows to `out`;
    returns how many rows had each status ("ok", "unsure", "error"). `batch_size`, the images of a
    task, is `block_size` of the job and the cluster's CPUs unless given."""
    import pyarrow as pa
    import ray

    check_out(out)
    if not isinstance(recognizer.model, NumpyModel):
        raise ClusterError(f"{recognizer.name}: --cluster predicts with a run's NumPy inference file "
                           "(inference.npz), which this model has not; train it with `digitlab train` "
                           "or predict without --cluster.")
    if not paths:
        raise ClusterError("no image files to predict.")
    batch_size = batch_size or block_size(len(paths), ray.cluster_resources().get("CPU", 1.0))
    spec = (recognizer.model, recognizer.class_names, recognizer.temperature, recognizer.threshold,
            recognizer.second_look_below)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    # The nodes open the files by absolute path (their working folder is not ours); the rows and
    # messages name them as given, as a local run does. One Arrow table a block: Ray Data's
    # from_items spent 20 us of the driver's time on each path.
    # As bytes: a file name need not be UTF-8 (Arrow's text must be); os.fsdecode takes them back.
    names = pa.array([os.fsencode(p) for p in paths], pa.binary())
    where = pa.array([os.fsencode(Path(p).absolute()) for p in paths], pa.binary())  # not abspath: it drops ".." across links
    files = ray.data.from_arrow([pa.table({"path": where[i : i + batch_size], "name": names[i : i + batch_size]})
                                 for i in range(0, len(paths), batch_size)])
    # Ray Data runs a task lost with its node again (its default: retries without limit for system
    # failures, none for an exception raised by digitlab's code, which would only fail again).
    rows = files.map_batches(predict_batch, fn_kwargs={"spec": spec}, batch_size=batch_size, batch_format="pyarrow")
    counts: Counter = Counter()
    with atomic_write(out) as tmp:
        written = _write(tmp, out.suffix.lower(), rows.iter_batches(batch_format="pyarrow", batch_size=None), counts)
        if written != len(paths):  # Ray's retries guarantee it; a check costs nothing (and out is kept as it was)
            raise ClusterError(f"the cluster returned {written} rows for {len(paths)} files; {out} not written.")
    return counts


def predict_batch(batch, spec):
    """A block of files (an Arrow table: "path", absolute, and "name", as given) -> an Arrow table
    of the `--csv` columns of their predictions, all text, as `digitlab predict --csv` writes them."""
    import pyarrow as pa

    model, class_names, temperature, threshold, second_look_below = spec
    recognizer = Recognizer(model, class_names, temperature, threshold, second_look_below=second_look_below)
    names = [os.fsdecode(n) for n in batch.column("name").to_pylist()]
    paths = [os.fsdecode(p) for p in batch.column("path").to_pylist()]
    predictions = recognizer.predictions(names, prepare_many(paths, names))
    columns = list(zip(*(p.csv_row() for p in predictions)))
    return pa.table({c: _text_array(pa, columns[k]) for k, c in enumerate(CSV_COLUMNS)})


def _text_array(pa, texts):
    """An Arrow text column; a file name's bytes that are not UTF-8 (held as surrogates, PEP 383)
    written as backslash escapes, "caf\\xe9.png", since Arrow's and Parquet's text is UTF-8."""
    try:
        return pa.array(texts, pa.string())
    except UnicodeEncodeError:
        return pa.array([t.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for t in texts],
                        pa.string())


def _write(path: Path, suffix: str, batches, counts: Counter) -> int:
    """The rows (Arrow tables of text columns) to one .csv or .parquet file; the statuses counted."""
    import pyarrow as pa
    import pyarrow.compute as pc

    written = 0
    if suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for batch in batches:
                writer.writerows(zip(*(batch.column(c).to_pylist() for c in CSV_COLUMNS)))
                counts.update(batch.column("status").to_pylist())
                written += batch.num_rows
        return written
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.float64() if c in FLOAT_COLUMNS else pa.string()) for c in CSV_COLUMNS])
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            # The probabilities as numbers (a blank, for an image that could not be read, a null).
            columns = [pc.cast(pc.if_else(pc.equal(batch.column(c), ""), None, batch.column(c)), pa.float64())
                       if c in FLOAT_COLUMNS else batch.column(c) for c in CSV_COLUMNS]
            writer.write_table(pa.table(columns, schema=schema))
            counts.update(batch.column("status").to_pylist())
            written += batch.num_rows
    return written
