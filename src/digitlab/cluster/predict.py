"""`digitlab predict FILES --cluster ADDRESS --out results.csv|.parquet`, and `digitlab read` the
same way: recognition on Ray Data.

The list of files goes to Ray Data as blocks (`block_size`: about four for each CPU), and stateless
tasks open each block's files, prepare them as a stack and predict with the model's NumPy inference file: the
same code, on the same bytes, as a local `digitlab predict` (`read`: each file read as a number, as
`digitlab read` reads it). (Ray Data's own `read_binary_files`
was measured first: for 12,000 files of 28 x 28 it spent 9.6 s listing their metadata on the
driver before reading anything, and 16 s more reading them in one task; plain reads in the tasks
take 0.5 s in all. benchmarks/scaling.py; BENCHMARKS.md.) The model travels once
through Ray's object store, so the nodes need digitlab installed but not the run folder. Rows
come back as Arrow tables in the files' order (Ray Data's `preserve_order`) and are written, with the columns of
`digitlab predict --csv`, to one file that appears whole when the job is done. A task lost with
its node is run again elsewhere (Ray Data's retries): no row is lost or written twice.

`--out FOLDER` (a name without a suffix, on storage every node reaches): each task writes its
block's rows as a Parquet part there itself and returns only their count, so the driver never
handles a row; the folder appears, complete, when every part is checked. For jobs of millions
of files on many workers, where one driver writing every row sets the pace (BENCHMARKS.md).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from digitlab.errors import ClusterError
from digitlab.files import atomic_write, utf8_name
from digitlab.images.batch import prepare_many
from digitlab.models.numpy_model import NumpyModel
from digitlab.recognize import CSV_COLUMNS, READ_COLUMNS, Recognizer

OUT_SUFFIXES = (".csv", ".parquet")
FLOAT_COLUMNS = ("probability", "p1", "p2", "p3")  # numbers in a Parquet file (a reading's columns are all text)


@dataclass(frozen=True)
class Job:
    """What every task of a job needs, sent once through Ray's object store: the model and its
    settings, and what is done with each file, "predict" (a digit) or "read" (a number)."""

    model: NumpyModel
    class_names: list[str]
    temperature: float | None
    threshold: float
    second_look_below: float
    task: str = "predict"

    @classmethod
    def of(cls, recognizer: Recognizer, task: str = "predict") -> Job:
        return cls(recognizer.model, recognizer.class_names, recognizer.temperature, recognizer.threshold,
                   recognizer.second_look_below, task)

    def recognizer(self) -> Recognizer:
        return Recognizer(self.model, self.class_names, self.temperature, self.threshold,
                          second_look_below=self.second_look_below)

    @property
    def columns(self) -> list[str]:
        """The columns of `digitlab predict --csv`, or of `digitlab read --csv`."""
        return CSV_COLUMNS if self.task == "predict" else READ_COLUMNS


def is_folder(out: Path) -> bool:
    """Whether `--out` names a folder of Parquet parts (a name without a suffix), not one file."""
    return not out.suffix


def check_out(out: Path) -> None:
    """A ClusterError unless `out` is a .csv or .parquet file in an existing folder, or a new (or
    empty) folder for Parquet parts."""
    if is_folder(out):
        if out.name in ("", ".", "..") or out.is_symlink():
            raise ClusterError(f"--out {out}: name a new folder for the parts, e.g. --out results (not the current "
                               "folder, its parent or a link).")
        if not out.parent.is_dir():
            raise ClusterError(f"--out {out}: the folder {out.parent} does not exist.")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ClusterError(f"--out {out} exists and is not an empty folder; name a new folder for the parts "
                               "(nothing of yours is replaced).")
        return
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise ClusterError(f"--out {out}: write the results to a .csv or .parquet file, or to a new folder "
                           "(a name without a suffix) of Parquet parts written by the nodes.")
    if not out.parent.is_dir():
        raise ClusterError(f"--out {out}: the folder {out.parent} does not exist.")
    if out.is_dir():
        raise ClusterError(f"--out {out} is a folder; name a .csv or .parquet file.")


def block_size(files: int, cpus: float, folder: bool = False) -> int:
    """Images in a block (one task's work): about four blocks for each CPU of the cluster, so that
    the work spreads and a lost task costs little, within [256, 4096]. Measured here (ray 2.60,
    benchmarks/scaling.py): the driver spends about 14 ms of CPU on each block (Ray Data's
    executor), so blocks of 256 images cap a job at about 70 blocks a second, whatever the
    workers; a block of 4,096 takes a worker about 3 s.

    Into a folder (`folder`), where the rows never reach the driver and its blocks are all it
    spends on, about two blocks a CPU, up to 32,768 images (some 25 s of a worker's time)."""
    per_cpu, largest = (2, FOLDER_MAX_BLOCK) if folder else (4, MAX_BLOCK)
    return int(min(largest, max(MIN_BLOCK, math.ceil(files / (per_cpu * max(1.0, cpus))))))


MIN_BLOCK, MAX_BLOCK, FOLDER_MAX_BLOCK = 256, 4096, 32768
PART = "part-{:010d}.parquet"  # a folder's part, named by its first file's place in the list


def predict_on_cluster(recognizer: Recognizer, paths: list[str], out: Path, *, batch_size: int | None = None,
                       task: str = "predict") -> Counter:
    """Predict every file of `paths` (or, with `task="read"`, read each as a number) on the connected
    Ray cluster and write the rows to `out`; returns how many rows had each status ("ok", "unsure",
    "error"). `batch_size`, the images of a task, is `block_size` of the job and the cluster's
    CPUs unless given."""
    import pyarrow as pa
    import ray

    check_out(out)
    if not isinstance(recognizer.model, NumpyModel):
        raise ClusterError(f"{recognizer.name}: --cluster predicts with a run's NumPy inference file "
                           "(inference.npz), which this model has not; train it with `digitlab train` "
                           "or predict without --cluster.")
    if not paths:
        raise ClusterError("no image files to predict.")
    folder = is_folder(out)
    batch_size = batch_size or block_size(len(paths), ray.cluster_resources().get("CPU", 1.0), folder)
    spec = Job.of(recognizer, task)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    # The nodes open the files by absolute path (their working folder is not ours); the rows and
    # messages name them as given, as a local run does. One Arrow table a block: Ray Data's
    # from_items spent 20 us of the driver's time on each path.
    # As bytes: a file name need not be UTF-8 (Arrow's text must be); os.fsdecode takes them back.
    names = pa.array([os.fsencode(p) for p in paths], pa.binary())
    where = pa.array([os.fsencode(Path(p).absolute()) for p in paths], pa.binary())  # not abspath: it drops ".." across links
    files = ray.data.from_arrow([pa.table({"path": where[i : i + batch_size], "name": names[i : i + batch_size],
                                           "index": pa.array(range(i, min(i + batch_size, len(paths))), pa.int64())})
                                 for i in range(0, len(paths), batch_size)])
    # Ray Data runs a task lost with its node again (its default: retries without limit for system
    # failures, none for an exception raised by digitlab's code, which would only fail again).
    if folder:
        return _predict_into_folder(files, spec, batch_size, out, len(paths))
    rows = files.map_batches(predict_batch, fn_kwargs={"spec": spec}, batch_size=batch_size, batch_format="pyarrow")
    counts: Counter = Counter()
    with atomic_write(out) as tmp:
        written = _write(tmp, out.suffix.lower(), rows.iter_batches(batch_format="pyarrow", batch_size=None), counts,
                         spec.columns)
        if written != len(paths):  # Ray's retries guarantee it; a check costs nothing (and out is kept as it was)
            raise ClusterError(f"the cluster returned {written} rows for {len(paths)} files; {out} not written.")
    return counts


def predict_batch(batch, spec: Job):
    """A block of files (an Arrow table: "path", absolute, and "name", as given) -> an Arrow table
    of the `--csv` columns of their predictions (or readings), all text, as `digitlab predict --csv`
    (`read --csv`) writes them."""
    import pyarrow as pa

    recognizer = spec.recognizer()
    names = [os.fsdecode(n) for n in batch.column("name").to_pylist()]
    paths = [os.fsdecode(p) for p in batch.column("path").to_pylist()]
    if spec.task == "read":
        rows = [r.csv_row() for r in recognizer.read_iter(paths, names)]
    else:
        rows = [p.csv_row() for p in recognizer.predictions(names, prepare_many(paths, names))]
    columns = list(zip(*rows))
    return pa.table({c: _text_array(pa, columns[k]) for k, c in enumerate(spec.columns)})


def _predict_into_folder(files, spec, batch_size: int, out: Path, n: int) -> Counter:
    """The tasks write their own rows, one Parquet part a block, into a folder beside `out` that
    becomes `out` when every part is there: the driver handles blocks, never rows (the limit
    of one writer at hundreds of workers; BENCHMARKS.md)."""
    import tempfile

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would shut out other users and workers of another user
    try:
        done = files.map_batches(predict_into_part, fn_kwargs={"spec": spec, "folder": os.fsencode(staging.absolute())},
                                 batch_size=batch_size, batch_format="pyarrow")
        counts: Counter = Counter()
        try:
            for batch in done.iter_batches(batch_format="pyarrow", batch_size=None):
                for status in ("ok", "unsure", "error"):
                    counts[status] += sum(batch.column(status).to_pylist())
        except Exception as e:  # noqa: BLE001 -- a task's error comes back wrapped in Ray's classes
            raise ClusterError(f"the job stopped: {_cause(e)}; {out} not written.") from None
        check_parts(staging, n)
        for leftover in staging.glob(".part-*"):  # a try cut short by a lost node
            leftover.unlink()
    except BaseException:  # a failed or interrupted job leaves nothing
        _remove(staging)
        raise
    try:  # every part is there: the folder takes its name (an empty one in its place: check_out)
        if out.is_dir() and not out.is_symlink():
            out.rmdir()
        os.replace(staging, out)
    except OSError as e:  # e.g. something put at `out` meanwhile: the results are kept, and said where
        raise ClusterError(f"cannot name the results folder {out} ({e.strerror or e}); all {n:,} rows are in "
                           f"{staging}: move it there yourself.") from None
    return counts


def _remove(folder: Path, tries: int = 5) -> None:
    """`folder` and all in it, even while a task still running renames its part in: rmtree lists the
    folder, then removes it, and a part renamed in between kept the folder (a Ctrl-C left a
    `.partial-` folder behind). Once it is gone, no task can write there (`predict_into_part`)."""
    import shutil
    import time

    for _ in range(tries):
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.lexists(folder):
            return
        time.sleep(0.2)


def predict_into_part(batch, spec, folder: bytes):
    """A block's rows into `folder`'s part for it (written whole, then renamed: a retry of the
    same block writes the same part again); returns one row: the part's name and status counts."""
    import uuid

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    where = os.fsdecode(folder)
    if not os.path.isdir(where):
        import socket

        raise ClusterError(f"{where} is not on node {socket.gethostname()}: --out FOLDER must be on storage every "
                           "node of the cluster reaches (or write one .csv or .parquet file).")
    rows = predict_batch(batch, spec)
    name = PART.format(batch.column("index")[0].as_py())
    tmp = os.path.join(where, f".{name}.{uuid.uuid4().hex}")
    pq.write_table(_parquet_table(rows, spec.columns), tmp)
    os.replace(tmp, os.path.join(where, name))
    statuses = pc.value_counts(rows.column("status")).to_pylist()
    counts = {s: 0 for s in ("ok", "unsure", "error")} | {c["values"]: c["counts"] for c in statuses}
    return pa.table({"part": [name], **{s: [counts[s]] for s in ("ok", "unsure", "error")}})


def check_parts(folder: Path, n: int) -> None:
    """A ClusterError unless the folder's parts hold rows 0..n-1, each once (part k starts where
    part k-1 ends): what a storage that not every node reaches, or a lost write, would break."""
    import pyarrow.parquet as pq

    expected = 0
    for part in sorted(folder.glob("part-*.parquet")):
        match = re.fullmatch(r"part-(\d{10})\.parquet", part.name)
        if match is None:
            raise ClusterError(f"{part.name}: not a part this job writes, in its folder; is another job writing there?")
        start = int(match.group(1))
        if start != expected:
            raise ClusterError(f"the parts written hold {'rows twice' if start < expected else 'a gap'} at file "
                               f"{min(start, expected):,} of {n:,}: is the folder on storage every node reaches?")
        try:
            expected += pq.read_metadata(part).num_rows
        except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
            raise ClusterError(f"{part.name}: a part that cannot be read ({e}); is the storage shared and whole?") from None
    if expected != n:
        raise ClusterError(f"the parts written hold {expected:,} rows for {n:,} files: is the folder on storage "
                           "every node reaches?")


def _cause(error: BaseException) -> str:
    """The first line of the innermost cause of a Ray error (its own text is a long traceback)."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def _parquet_table(batch, names: list[str] = CSV_COLUMNS):
    """An Arrow table of the text columns as the Parquet file holds them: probabilities as numbers
    (a blank, for an image that could not be read, a null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [pc.cast(pc.if_else(pc.equal(batch.column(c), ""), None, batch.column(c)), pa.float64())
               if c in FLOAT_COLUMNS else batch.column(c) for c in names]
    return pa.table(columns, schema=_parquet_schema(names))


def _parquet_schema(names: list[str] = CSV_COLUMNS):  # made on use: pyarrow is imported only with Ray
    import pyarrow as pa

    return pa.schema([(c, pa.float64() if c in FLOAT_COLUMNS else pa.string()) for c in names])


def _text_array(pa, texts):
    """An Arrow text column; a file name's bytes that are not UTF-8 written as backslash escapes
    (`files.utf8_name`), since Arrow's and Parquet's text is UTF-8."""
    try:
        return pa.array(texts, pa.string())
    except UnicodeEncodeError:
        return pa.array([utf8_name(t) for t in texts], pa.string())


def _write(path: Path, suffix: str, batches, counts: Counter, names: list[str] = CSV_COLUMNS) -> int:
    """The rows (Arrow tables of text columns `names`) to one .csv or .parquet file; the statuses counted."""
    written = 0
    if suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(names)
            for batch in batches:
                writer.writerows(zip(*(batch.column(c).to_pylist() for c in names)))
                counts.update(batch.column("status").to_pylist())
                written += batch.num_rows
        return written
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, _parquet_schema(names)) as writer:
        for batch in batches:
            writer.write_table(_parquet_table(batch, names))
            counts.update(batch.column("status").to_pylist())
            written += batch.num_rows
    return written
