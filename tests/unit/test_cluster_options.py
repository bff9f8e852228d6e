"""`digitlab predict --cluster`: every wrong address, output or missing piece is one clear line,
before any cluster is started and without a file written. (The runs on a real multi-node cluster
are in tests/e2e/test_cluster.py, in the slow tier.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.cluster.connect import INSTALL_HINT, check_address
from digitlab.errors import ClusterError
from tests.conftest import invoke_cli


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:6379", "ray://head.example.org:10001", "[::1]:6379",
                                     "local:1", "local:64"])
def test_well_formed_addresses(address):
    assert check_address(address)[0] == ("local" if address.startswith("local:") else address)


@pytest.mark.parametrize("address", ["", "local:0", "local:65", "local:two", "localhost", "http://h:1", "h:0",
                                     "h:99999", "ray://h", "h:6379/x", "-h:1", "h :1"])
def test_malformed_addresses_are_one_line_naming_the_forms(address):
    with pytest.raises(ClusterError, match="local"):
        check_address(address)


@pytest.fixture
def folder(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(scans / "a.png")
    return scans


@pytest.mark.parametrize(("extra", "says"), [
    (["--cluster", "local:2"], "--cluster and --out go together"),
    (["--out", "{tmp}/r.csv"], "--cluster and --out go together"),
    (["--cluster", "local:2", "--out", "{tmp}/r.txt"], ".csv or .parquet"),
    (["--cluster", "local:2", "--out", "{tmp}/nowhere/r.csv"], "does not exist"),
    (["--cluster", "local:2", "--out", "{tmp}/r.csv", "--csv"], "leave out --json, --csv"),
    (["--cluster", "nohost", "--out", "{tmp}/r.csv"], "is not a cluster address"),
])
def test_wrong_cluster_options_are_refused_before_anything_starts(folder, tmp_path, extra, says):
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    done = invoke_cli("predict", str(folder), "--model", "reader", *args)
    assert done.returncode == 1 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("*.csv"))


def test_a_missing_file_is_refused_up_front(folder, tmp_path):
    done = invoke_cli("predict", str(folder), str(tmp_path / "gone.png"), "--model", "reader",
                      "--cluster", "local:2", "--out", str(tmp_path / "r.csv"))
    assert done.returncode == 1 and "gone.png: no such file" in done.stderr, done.stderr


def test_without_ray_installed_the_hint_says_which_extra(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    done = invoke_cli("predict", str(folder), "--model", "reader", "--cluster", "local:2", "--out", str(tmp_path / "r.csv"))
    assert done.returncode == 1 and INSTALL_HINT in done.stderr, done.stderr
    assert "pip install 'digitlab[ray]'" in done.stderr


def test_an_unreachable_cluster_is_one_line(folder, tmp_path):
    done = invoke_cli("predict", str(folder), "--model", "reader", "--cluster", "127.0.0.1:9",
                      "--out", str(tmp_path / "r.csv"))
    assert done.returncode == 1 and "cannot reach a Ray cluster at 127.0.0.1:9" in done.stderr, done.stderr
    assert not (tmp_path / "r.csv").exists()


# What the cluster's tasks and the driver's writer do, without a cluster: a task's table of rows
# equals the local `--csv` rows, and the writer puts them in either format unchanged.

@pytest.mark.parametrize(("files", "cpus", "size"), [(10, 2, 256), (12_000, 1, 3000), (12_000, 2, 1500),
                                                     (10**6, 8, 4096), (10**7, 512, 4096), (5000, 0, 1250)])
def test_blocks_are_about_four_a_cpu_within_bounds(files, cpus, size):
    from digitlab.cluster.predict import block_size

    assert block_size(files, cpus) == size


@pytest.fixture
def task_rows(tmp_path):
    """A block as the cluster's task gets it (one unreadable file among digits) and its rows, with
    the rows a local run writes for the same files."""
    import pyarrow as pa

    from digitlab.cluster.predict import Job, predict_batch
    from digitlab.recognize import Recognizer

    names = []
    for i in range(5):  # the last with a name that is not UTF-8 (Linux allows any bytes)
        names.append(str(tmp_path / (f"{i}.png" if i < 4 else "caf\udce9.png")))
        image = np.zeros((28, 28), np.uint8)
        image[6:22, 12 + i % 3 : 16 + i % 3] = 255
        Image.fromarray(image).save(names[-1])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    names.append(str(tmp_path / "broken.png"))
    recognizer = Recognizer.load("reader")
    spec = Job.of(recognizer)
    given = [f"n{i}" for i in range(len(names) - 2)] + ["caf\udce9.png", "n5"]
    table = predict_batch(pa.table({"path": pa.array([os.fsencode(n) for n in names], pa.binary()),
                                    "name": pa.array([os.fsencode(n) for n in given], pa.binary())}), spec)
    local = [p.csv_row() for p in recognizer.predict([open(n, "rb").read() for n in names])]
    return table, local


def test_a_task_returns_the_rows_of_a_local_run(task_rows):
    from digitlab.recognize import CSV_COLUMNS

    table, local = task_rows
    rows = [list(r) for r in zip(*(table.column(c).to_pylist() for c in CSV_COLUMNS))]
    # the names as given, in order; bytes that are not UTF-8 as backslash escapes
    assert [r[0] for r in rows] == ["n0", "n1", "n2", "n3", "caf\\xe9.png", "n5"]
    assert [r[1:-1] for r in rows[:5]] == [r[1:-1] for r in local[:5]]
    assert rows[5][1] == "error" and "broken.png" not in rows[5][-1] and rows[5][3] == ""


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_writer_keeps_every_row_and_counts_the_statuses(task_rows, tmp_path, suffix):
    import csv
    from collections import Counter

    import pyarrow.parquet as pq

    from digitlab.cluster.predict import _write
    from digitlab.recognize import CSV_COLUMNS

    table, _ = task_rows
    counts: Counter = Counter()
    out = tmp_path / f"rows{suffix}"
    assert _write(out, suffix, iter([table, table.slice(2)]), counts) == 10
    assert sum(counts.values()) == 10 and counts["error"] == 2
    if suffix == ".csv":
        with open(out, newline="", encoding="utf-8") as f:
            got = list(csv.reader(f))
        assert got[0] == CSV_COLUMNS and got[1:7] == [list(r) for r in zip(*table.to_pydict().values())]
    else:
        got = pq.read_table(out)
        assert got.column_names == CSV_COLUMNS and got.num_rows == 10
        assert got.column("probability").to_pylist()[5] is None  # the unreadable file: no number
        assert got.column("p1").to_pylist()[0] == float(table.column("p1")[0].as_py())


def test_a_short_answer_from_the_cluster_leaves_the_results_file_as_it_was(tmp_path, monkeypatch):
    """The row count is checked before the results file is replaced: a previous results file is
    kept whole, and no temporary file is left (a stand-in for Ray returns one row short)."""
    import sys
    from types import SimpleNamespace

    import pyarrow as pa

    from digitlab.cluster import predict as cluster_predict
    from digitlab.errors import ClusterError
    from digitlab.recognize import CSV_COLUMNS, Recognizer

    row = pa.table({c: pa.array(["ok" if c == "status" else "1"], pa.string()) for c in CSV_COLUMNS})
    rows = SimpleNamespace(iter_batches=lambda **kw: iter([row]))
    fake_ray = SimpleNamespace(
        cluster_resources=lambda: {"CPU": 2.0},
        data=SimpleNamespace(DataContext=SimpleNamespace(get_current=lambda: SimpleNamespace(
                                 execution_options=SimpleNamespace())),
                             from_arrow=lambda tables: SimpleNamespace(map_batches=lambda *a, **kw: rows)))
    monkeypatch.setitem(sys.modules, "ray", fake_ray)
    out = tmp_path / "results.csv"
    out.write_text("yesterday's results\n")
    with pytest.raises(ClusterError, match="returned 1 rows for 2 files"):
        cluster_predict.predict_on_cluster(Recognizer.load("reader"), ["a.png", "b.png"], out)
    assert out.read_text() == "yesterday's results\n" and sorted(tmp_path.iterdir()) == [out]


def fake_ray(cpus: float = 2.0):
    """A stand-in for Ray that runs each block's task here, in order: the driver's code and the
    tasks' code are the real ones."""
    from types import SimpleNamespace

    def from_arrow(tables):
        def map_batches(fn, fn_kwargs, **kw):
            return SimpleNamespace(iter_batches=lambda **kw: (fn(t, **fn_kwargs) for t in tables))
        return SimpleNamespace(map_batches=map_batches)

    return SimpleNamespace(
        cluster_resources=lambda: {"CPU": cpus},
        data=SimpleNamespace(DataContext=SimpleNamespace(get_current=lambda: SimpleNamespace(
            execution_options=SimpleNamespace())), from_arrow=from_arrow))


@pytest.fixture
def scans(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(7):
        image = np.zeros((28, 28), np.uint8)
        image[5:23, 10 + i % 4 : 14 + i % 4] = 255
        Image.fromarray(image).save(folder / f"{i}.png")
    (folder / "7.png").write_bytes(b"not a png")
    return sorted(str(p) for p in folder.iterdir())


@pytest.mark.parametrize("setup, says", [
    (lambda d: d / "missing" / "parts", "does not exist"),
    (lambda d: (d / "full").mkdir() or (d / "full" / "x").write_text("") or d / "full", "not an empty folder"),
    (lambda d: (d / "afile").write_text("") or d / "afile", "not an empty folder"),
    (lambda d: d / "results.txt", "or to a new folder"),
    (lambda d: Path("."), "not the current folder"),
    (lambda d: d / "..", "not the current folder"),
    (lambda d: (d / "empty-target").mkdir() or (d / "link").symlink_to(d / "empty-target") or d / "link", "a link"),
])
def test_a_folder_for_parts_must_be_new_or_empty(tmp_path, setup, says):
    from digitlab.cluster.predict import check_out

    with pytest.raises(ClusterError, match=says):
        check_out(setup(tmp_path))
    check_out(tmp_path / "new-parts")
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty")


def test_into_a_folder_each_block_is_a_part_and_the_rows_are_a_local_runs(scans, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from digitlab.cluster import predict as cluster_predict
    from digitlab.recognize import CSV_COLUMNS, Recognizer

    monkeypatch.setitem(sys.modules, "ray", fake_ray())
    reader = Recognizer.load("reader")
    out = tmp_path / "parts"
    counts = cluster_predict.predict_on_cluster(reader, scans, out, batch_size=3)
    assert sorted(p.name for p in out.iterdir()) == [f"part-{i:010d}.parquet" for i in (0, 3, 6)]
    assert sorted(tmp_path.iterdir()) == [out, tmp_path / "scans"]  # no staging folder left
    table = pq.read_table(sorted(out.iterdir()))
    assert table.column_names == CSV_COLUMNS and table.column("source").to_pylist() == scans
    local = [p.csv_row() for p in reader.predict(scans[:7])]
    assert table.column("status").to_pylist()[:7] == [r[1] for r in local]
    assert table.column("digit").to_pylist()[:7] == [r[2] for r in local]
    assert table.column("status").to_pylist()[7] == "error" and table.column("p1").to_pylist()[7] is None
    assert counts["error"] == 1 and sum(counts.values()) == 8


def test_when_the_folder_cannot_take_its_name_the_parts_are_kept_and_said_where(scans, tmp_path, monkeypatch):
    from digitlab.cluster import predict as cluster_predict
    from digitlab.recognize import Recognizer

    monkeypatch.setitem(sys.modules, "ray", fake_ray())
    out = tmp_path / "parts"
    real = cluster_predict.check_parts

    def meanwhile(folder, n):  # someone writes at `out` while the job runs
        real(folder, n)
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")

    monkeypatch.setattr(cluster_predict, "check_parts", meanwhile)
    with pytest.raises(ClusterError, match=r"all 8 rows are in .*\.parts\.partial-") as raised:
        cluster_predict.predict_on_cluster(Recognizer.load("reader"), scans, out, batch_size=3)
    kept = Path(str(raised.value).split(" are in ")[1].split(": move")[0])
    assert len(list(kept.glob("part-*.parquet"))) == 3 and (out / "theirs.txt").read_text() == "theirs"


def test_ctrl_c_leaves_no_staging_folder_even_when_a_late_part_lands_in_it(scans, tmp_path, monkeypatch):
    """Ctrl-C mid-job: the staging folder goes, although a task still running renamed its part in
    while it was being removed (rmtree then left the folder, `.parts.partial-...`, behind)."""
    import shutil
    from types import SimpleNamespace

    from digitlab.cluster import predict as cluster_predict
    from digitlab.recognize import Recognizer

    ray = fake_ray()

    def interrupted(tables):  # one block comes back, then the user presses Ctrl-C
        def map_batches(fn, fn_kwargs, **kw):
            def batches(**kw):
                yield fn(tables[0], **fn_kwargs)
                raise KeyboardInterrupt
            return SimpleNamespace(iter_batches=batches)
        return SimpleNamespace(map_batches=map_batches)

    ray.data.from_arrow = interrupted
    monkeypatch.setitem(sys.modules, "ray", ray)
    real_rmtree, late = shutil.rmtree, []

    def rmtree_with_a_late_part(path, ignore_errors=False):
        real_rmtree(path, ignore_errors=ignore_errors)
        if not late:  # a worker's rename lands between the listing and the removal
            late.append(path)
            Path(path).mkdir()
            (Path(path) / "part-0000000003.parquet").write_bytes(b"late")

    monkeypatch.setattr(shutil, "rmtree", rmtree_with_a_late_part)
    with pytest.raises(KeyboardInterrupt):
        cluster_predict.predict_on_cluster(Recognizer.load("reader"), scans, tmp_path / "parts", batch_size=3)
    assert late and sorted(p.name for p in tmp_path.iterdir()) == ["scans"]


def test_a_retried_block_writes_its_part_again_and_no_other(scans, tmp_path):
    import pyarrow as pa

    from digitlab.cluster.predict import Job, check_parts, predict_into_part
    from digitlab.recognize import Recognizer

    reader = Recognizer.load("reader")
    spec = Job.of(reader)
    block = pa.table({"path": pa.array([os.fsencode(p) for p in scans[:4]], pa.binary()),
                      "name": pa.array([os.fsencode(p) for p in scans[:4]], pa.binary()),
                      "index": pa.array(range(4), pa.int64())})
    parts = tmp_path / "parts"
    parts.mkdir()
    first = predict_into_part(block, spec, os.fsencode(parts))
    again = predict_into_part(block, spec, os.fsencode(parts))
    assert first.to_pylist() == again.to_pylist() == [{"part": "part-0000000000.parquet", "ok": 4, "unsure": 0, "error": 0}]
    assert [p.name for p in parts.iterdir()] == ["part-0000000000.parquet"]
    check_parts(parts, 4)
    with pytest.raises(ClusterError, match="4 rows for 5 files"):
        check_parts(parts, 5)
    with pytest.raises(ClusterError, match="every node of the cluster reaches"):  # a node without that storage
        predict_into_part(block, spec, os.fsencode(tmp_path / "not-here"))


def test_parts_that_leave_a_gap_or_overlap_are_refused(scans, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from digitlab.cluster.predict import check_parts

    def part(start, rows):
        pq.write_table(pa.table({"source": [str(i) for i in range(rows)]}), tmp_path / f"part-{start:010d}.parquet")

    part(0, 3)
    part(4, 2)
    with pytest.raises(ClusterError, match="a gap at file 3"):
        check_parts(tmp_path, 6)
    part(2, 2)
    with pytest.raises(ClusterError, match="rows twice at file 2"):
        check_parts(tmp_path, 6)


def test_a_task_that_fails_leaves_no_folder_and_no_staging(scans, tmp_path, monkeypatch):
    from digitlab.cluster import predict as cluster_predict
    from digitlab.recognize import Recognizer

    def broken(batch, spec):
        raise RuntimeError("disk full on node 3")

    monkeypatch.setitem(sys.modules, "ray", fake_ray())
    monkeypatch.setattr(cluster_predict, "predict_batch", broken)
    with pytest.raises(ClusterError, match="the job stopped: disk full on node 3"):
        cluster_predict.predict_on_cluster(Recognizer.load("reader"), scans, tmp_path / "parts", batch_size=3)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "scans"]


def test_parts_blocks_are_two_a_cpu_up_to_32768():
    from digitlab.cluster.predict import block_size

    assert block_size(10_000_000, 512, folder=True) == 9766
    assert block_size(10_000_000, 8, folder=True) == 32768
    assert block_size(1000, 8, folder=True) == 256


def test_a_stray_file_among_the_parts_is_one_clear_line(tmp_path):
    from digitlab.cluster.predict import check_parts

    (tmp_path / "part-abc.parquet").write_text("x")
    with pytest.raises(ClusterError, match="not a part this job writes"):
        check_parts(tmp_path, 1)
    (tmp_path / "part-abc.parquet").unlink()
    (tmp_path / "part-0000000000.parquet").write_text("not parquet")
    with pytest.raises(ClusterError, match="cannot be read"):
        check_parts(tmp_path, 1)
