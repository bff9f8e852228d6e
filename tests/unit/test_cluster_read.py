"""`digitlab read --cluster`: what a cluster's task makes of a block of number images, and what the
driver writes of it, without a cluster: the rows of a local `digitlab read --csv`. (The run on a
real multi-node cluster is in tests/e2e/test_cluster.py, in the slow tier.)"""

from __future__ import annotations

import csv
import os
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from tests.conftest import invoke_cli


@pytest.fixture
def numbers(tmp_path, mnist):
    """Four numbers of MNIST test digits (one under a name that is not UTF-8), a damaged file, and
    what each number is."""
    x, y = mnist[1]
    paths, truth = [], []
    for k, idx in enumerate([(0, 1, 2), (3, 4, 5, 6), (7, 8, 9), (10, 11, 12, 13, 14)]):
        paths.append(str(tmp_path / (f"n{k}.png" if k < 3 else "caf\udce9.png")))
        Image.fromarray(255 - np.hstack([np.pad(x[i], 4) for i in idx])).save(paths[-1])
        truth.append("".join(str(y[i]) for i in idx))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    paths.append(str(tmp_path / "broken.png"))
    return paths, truth


def test_a_read_task_returns_the_rows_of_a_local_read(numbers, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from digitlab.cluster.predict import Job, _write, predict_batch, predict_into_part
    from digitlab.recognize import READ_COLUMNS, Recognizer

    paths, truth = numbers
    reader = Recognizer.load("reader")
    block = pa.table({"path": pa.array([os.fsencode(p) for p in paths], pa.binary()),
                      "name": pa.array([os.fsencode(os.path.basename(p)) for p in paths], pa.binary()),
                      "index": pa.array(range(len(paths)), pa.int64())})
    table = predict_batch(block, Job.of(reader, "read"))
    assert table.column_names == READ_COLUMNS
    rows = [list(r) for r in zip(*(table.column(c).to_pylist() for c in READ_COLUMNS))]
    local = invoke_cli("read", *paths, "--model", "reader", "--csv")
    assert local.returncode == 1  # the damaged file
    want = list(csv.reader(local.stdout.splitlines()))
    assert want[0] == READ_COLUMNS
    # the names as given, in order (bytes that are not UTF-8 as backslash escapes); all else as locally
    assert [r[0] for r in rows] == ["n0.png", "n1.png", "n2.png", "caf\\xe9.png", "broken.png"]
    assert [r[1:] for r in rows] == [[w[1], w[2], w[3], w[4], w[5].replace(str(paths[-1]), "broken.png")]
                                     for w in want[1:]]
    assert [r[2] for r in rows[:4]] == truth and rows[4][1] == "error" and "damaged" in rows[4][-1]

    for suffix in (".csv", ".parquet"):  # the driver's writer, either format: the same text columns
        counts = Counter()
        out = tmp_path / f"numbers{suffix}"
        assert _write(out, suffix, iter([table.slice(0, 2), table.slice(2)]), counts, READ_COLUMNS) == 5
        got = list(csv.reader(open(out, newline=""))) if suffix == ".csv" else None
        if got is not None:
            assert got == [READ_COLUMNS] + rows
        else:
            assert pq.read_table(out).to_pylist() == [dict(zip(READ_COLUMNS, r)) for r in rows]
        assert counts == {"ok": 4, "error": 1}

    parts = tmp_path / "parts"  # a node writing its block's part: the same rows, and its counts
    parts.mkdir()
    done = predict_into_part(block, Job.of(reader, "read"), os.fsencode(parts))
    assert done.to_pylist() == [{"part": "part-0000000000.parquet", "ok": 4, "unsure": 0, "error": 1}]
    assert pq.read_table(parts / "part-0000000000.parquet").to_pylist() == [dict(zip(READ_COLUMNS, r)) for r in rows]


@pytest.mark.parametrize(("extra", "says"), [
    (["--cluster", "local:2"], "--cluster and --out go together"),
    (["--cluster", "local:2", "--out", "{tmp}/r.txt"], ".csv or .parquet"),
    (["--cluster", "local:2", "--out", "{tmp}/r.csv", "--save-boxes", "{tmp}/boxes"],
     "leave out --json, --csv and --save-boxes"),
    (["--cluster", "local:2", "--out", "{tmp}/r.csv", "--json"], "leave out --json"),
    (["--cluster", "nohost", "--out", "{tmp}/r.csv"], "is not a cluster address"),
])
def test_wrong_cluster_options_of_read_are_refused_before_anything_starts(numbers, tmp_path, extra, says):
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    done = invoke_cli("read", *numbers[0][:2], "--model", "reader", *args)
    assert done.returncode == 1 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("*.csv")) and not (tmp_path / "boxes").exists()
