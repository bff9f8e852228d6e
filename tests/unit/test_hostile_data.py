"""Attacks of a second outsider's review (2026-12-07), on training, data and run folders, each kept
as a test: what broke, and now holds. (tests/unit/test_hostile.py: recognition and the server.)"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from tests.conftest import invoke_cli, said, seven


def test_an_output_file_is_never_written_in_place_of_a_device_a_pipe_or_a_link(tmp_path):
    import os

    from digitlab.errors import WriteError
    from digitlab.files import write_bytes

    target = tmp_path / "target.txt"
    target.write_text("kept")
    os.symlink(target, tmp_path / "link.png")
    os.mkfifo(tmp_path / "fifo.png")
    for name in ("link.png", "fifo.png"):
        with pytest.raises(WriteError, match="not a regular file"):
            write_bytes(tmp_path / name, b"png")
    assert (tmp_path / "link.png").is_symlink() and target.read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.png", "link.png", "target.txt"]
    done = invoke_cli("plot", "samples", "-o", str(tmp_path / "fifo.png"))
    assert done.returncode == 1 and "not a regular file" in done.stderr and "Wrote" not in done.stdout
    assert "check that the folder exists" not in done.stderr  # atomic_write's line, not wrapped in another's


@pytest.mark.parametrize("content", [b'{"state": "complete\xff"}', b"[" * 100_000], ids=["not-utf8", "deep"])
def test_a_run_file_that_is_not_text_or_nests_too_deep_is_one_line(tmp_path, content):
    from digitlab.config import RunConfig
    from digitlab.errors import ConfigError, RunError
    from digitlab.runs import read_json

    path = tmp_path / "status.json"
    path.write_bytes(content)
    with pytest.raises(RunError, match="cannot read"):
        read_json(path)
    with pytest.raises(ConfigError, match="cannot read the run configuration"):
        RunConfig.load(path)


def write_idx(path, array, ndim_claimed=None):
    import gzip

    header = bytes([0, 0, 0x08, ndim_claimed or array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    if ndim_claimed:
        header += struct.pack(f">{ndim_claimed - array.ndim}I", *[1] * (ndim_claimed - array.ndim))
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_user_data_mistakes_are_one_line(tmp_path):
    from digitlab.data.idx import read_idx
    from digitlab.data.userdata import load_dataset
    from digitlab.errors import DataError

    write_idx(tmp_path / "dims.gz", np.zeros((1,), np.uint8), ndim_claimed=255)
    with pytest.raises(DataError, match="claims 255 dimensions"):
        read_idx(tmp_path / "dims.gz")

    rng = np.random.default_rng(0)
    idx = tmp_path / "zerotest"
    idx.mkdir()
    write_idx(idx / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (20, 28, 28)))
    write_idx(idx / "train-labels-idx1-ubyte.gz", np.arange(20) % 2)
    write_idx(idx / "t10k-images-idx3-ubyte.gz", np.zeros((0, 28, 28)))
    write_idx(idx / "t10k-labels-idx1-ubyte.gz", np.zeros((0,)))
    with pytest.raises(DataError, match="the test split has no images"):
        load_dataset(str(idx))

    folders = tmp_path / "folders"
    for name in ("a", "b", "c"):
        (folders / name).mkdir(parents=True)
    for name in ("a", "b"):
        for i in range(3):
            seven().save(folders / name / f"{i}.png")
    with pytest.raises(DataError, match=r"folders/c: the class folder holds no images"):
        load_dataset(str(folders))

    for bad in ("inf", "nan", "1\xff"):
        csv_file = tmp_path / "train.csv"
        csv_file.write_bytes(("label," + ",".join(f"p{i}" for i in range(784)) + "\n").encode()
                             + f"{bad},".encode("latin-1") + b",".join([b"0"] * 784) + b"\n")
        with pytest.raises(DataError):
            load_dataset(str(csv_file))


def test_a_csv_saved_with_a_byte_order_mark_reads(tmp_path):
    from digitlab.data.userdata import read_csv

    rows = ["label," + ",".join(f"pixel{i}" for i in range(784))]
    rows += [f"{k % 2}," + ",".join(["0"] * 784) for k in range(4)]
    (tmp_path / "excel.csv").write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")
    images, labels = read_csv(tmp_path / "excel.csv")
    assert images.shape == (4, 28, 28) and labels.tolist() == [0, 1, 0, 1]


def test_more_than_256_class_folders_keep_their_labels(tmp_path):
    from digitlab.data.userdata import _read_folders

    small = Image.fromarray(np.asarray(seven(28)))
    classes = [f"c{k:03d}" for k in range(300)]
    for name in classes:
        (tmp_path / name).mkdir()
        small.save(tmp_path / name / "0.png")
    _, labels = _read_folders(tmp_path, classes)
    assert labels.tolist() == list(range(300))


def test_a_resumed_checkpoint_must_hold_the_runs_network(tmp_path):
    from digitlab.errors import RunError
    from digitlab.models import build_model
    from digitlab.training.fit import _checkpoint_model

    path = tmp_path / "checkpoint-epoch1.keras"
    build_model("softmax", (28, 28), 10).save(path)
    assert _checkpoint_model(path, "softmax", 10).count_params() == 7850
    with pytest.raises(RunError, match="not the mlp of 10 classes that config.json names"):
        _checkpoint_model(path, "mlp", 10)
    with pytest.raises(RunError, match="of 10 outputs, not the softmax of 3 classes"):
        _checkpoint_model(path, "softmax", 3)
    path.write_bytes(b"garbage")
    with pytest.raises(RunError, match="cannot load the checkpoint"):
        _checkpoint_model(path, "softmax", 10)


def test_brackets_and_control_characters_in_names_print_as_they_are():
    from rich.console import Console

    from digitlab.cli.console import print_evaluation

    class Evaluation:  # what print_evaluation reads of digitlab.evaluation.evaluate's result
        loss, accuracy, compute_precision, dataset = 0.1, 0.5, "float32", "/data/br[/]ack"
        labels = np.zeros(4)
        class_names = ["[bold]b[", "e\x1b[31mred"]
        confusion = np.array([[1, 1], [0, 2]])
        per_class = [{"class": n, "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2} for n in class_names]

        def calibration(self):
            return {"ece": 0.1}

        def most_confused(self):
            return [{"true": "[bold]b[", "predicted": "e\x1b[31mred", "count": 1}]

    console = Console(record=True, width=200, emoji=False)
    print_evaluation(console, Evaluation())
    text = console.export_text()
    assert "/data/br[/]ack" in text and "[bold]b[" in text and "e\\x1b[31mred" in text and "\x1b" not in text


@pytest.mark.parametrize("history", [[], {"loss": "abc"}, {"loss": [0.5, 0.4], "accuracy": [0.9]},
                                     {"grad_norm/dense_1": [1, "x"]}], ids=["list", "string", "ragged", "text"])
def test_a_history_that_is_not_one_is_one_line_for_plots_and_diagnose(tmp_path, history):
    import json

    from digitlab.errors import RunError
    from digitlab.runs import HISTORY_JSON, RunFiles

    (tmp_path / HISTORY_JSON).write_text(json.dumps(history))
    run = RunFiles(tmp_path / "model.keras", tmp_path, None)
    with pytest.raises(RunError, match="not a training history"):
        run.read(HISTORY_JSON)
    (tmp_path / HISTORY_JSON).write_text(json.dumps({"loss": [0.5, None], "accuracy": [0.9, 0.95]}))
    assert run.read(HISTORY_JSON)["accuracy"] == [0.9, 0.95]


def test_a_history_with_metrics_the_run_does_not_record_is_not_written(tmp_path):
    from digitlab.errors import RunError
    from digitlab.runs import write_history

    with pytest.raises(RunError, match="has metrics this run does not record"):
        write_history(tmp_path, {"loss": [0.5, 0.4], "bogus": [1.0]})
    assert list(tmp_path.iterdir()) == []


def test_a_labels_file_claiming_a_billion_labels_is_refused_from_its_header(tmp_path, monkeypatch):
    """A gzip labels file whose header claims 10^9 labels (a bomb: zeros compress 1000-fold) cost
    18 s and 2 GB before the count was compared with the images'; the headers are compared first."""
    import gzip

    from digitlab.data import userdata
    from digitlab.errors import DataError

    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (20, 28, 28)))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (10, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(10) % 2)
    header = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10**9)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + bytes(1 << 20)))
    bodies_read = []
    monkeypatch.setattr(userdata, "read_idx", lambda path, **kw: bodies_read.append(path))
    for load in (userdata.load_dataset, userdata.dataset_info):
        with pytest.raises(DataError, match=r"20 train images but labels of shape \(1000000000,\)"):
            load(str(tmp_path))
    assert bodies_read == []


@pytest.mark.parametrize("option", ["--init-std", "--validation-split", "--learning-rate"])
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_number_option_that_is_not_finite_is_refused_before_training(tmp_path, option, value):
    """`--init-std inf` trained, and its NaN loss was blamed on the learning rate; NaN passed every bound."""
    done = invoke_cli("train", option, value, "--out", str(tmp_path))
    assert done.returncode == 2 and "must be a finite number" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_markdown_table_that_cannot_be_written_is_refused_before_any_training(tmp_path):
    """`reproduce --markdown missing/table.md` trained every preset (hours, by default) and then died
    with a FileNotFoundError traceback (third review)."""
    for markdown, says in ((tmp_path / "missing" / "table.md", "does not exist"), (tmp_path, "is a folder")):
        done = invoke_cli("reproduce", "--presets", "softmax", "--out", str(tmp_path / "runs"), "--markdown", str(markdown))
        assert done.returncode == 2 and says in said(done), done.stderr
        assert not (tmp_path / "runs").exists()
    (tmp_path / "link.md").symlink_to(tmp_path / "kept.md")  # and what atomic_write refuses, or no file can be made in
    (tmp_path / "kept.md").write_text("kept")
    for markdown, says in (("/dev/full", "not a regular file"), (tmp_path / "link.md", "not a regular file"),
                           ("/proc/table.md", "cannot be written")):
        done = invoke_cli("reproduce", "--presets", "softmax", "--out", str(tmp_path / "runs"), "--markdown", str(markdown))
        assert done.returncode == 1 and says in done.stderr, done.stderr
        assert not (tmp_path / "runs").exists() and (tmp_path / "kept.md").read_text() == "kept"


@pytest.mark.parametrize("content", ["[1]", '"abc"', '{"test_accuracy": "lots"}', '{"test_accuracy": 1.5}'])
def test_a_tampered_metrics_file_is_one_line_where_serve_reads_it(tmp_path, content):
    """A metrics.json of [1] stopped `digitlab serve` with an AttributeError; "lots" was served as
    the model's test accuracy (third review)."""
    from digitlab.errors import RunError
    from digitlab.runs import METRICS_FILE, RunFiles

    run = RunFiles(tmp_path / "model.keras", tmp_path, None)
    (tmp_path / METRICS_FILE).write_text('{"test_accuracy": 0.98, "per_class": {}}')
    assert run.read(METRICS_FILE)["test_accuracy"] == 0.98
    (tmp_path / METRICS_FILE).write_text(content)
    with pytest.raises(RunError, match="metrics.json: not the run's metrics"):
        run.read(METRICS_FILE)


def test_an_empty_data_set_name_a_device_or_a_pipe_is_one_line_not_the_current_folder(tmp_path, monkeypatch):
    """`--dataset ""` (an unset "$DS") trained on the current folder's sub-folders as classes; a
    device or a FIFO as the data set gave a NotADirectoryError traceback (third review)."""
    import os

    import digitlab
    from digitlab.errors import DataError

    for name in ("photos", "scans"):
        (tmp_path / name).mkdir()
        seven(28).save(tmp_path / name / "0.png")
        seven(28).save(tmp_path / name / "1.png")
    monkeypatch.chdir(tmp_path)
    done = invoke_cli("train", "--dataset", "", "--epochs", "1", "--out", str(tmp_path / "runs"))
    assert done.returncode == 2 and "is empty" in said(done) and not (tmp_path / "runs").exists()
    os.mkfifo(tmp_path / "pipe.csv")
    for name, says in (("", "the data set name is empty"), ("/dev/null", "not a file or folder"),
                       (str(tmp_path / "pipe.csv"), "not a file or folder"), (5, "not int 5")):
        with pytest.raises(DataError, match=says):
            digitlab.load_dataset(name)
    done = invoke_cli("train", "--dataset", str(tmp_path / "pipe.csv"), "--epochs", "1", "--out", str(tmp_path / "runs"))
    assert done.returncode == 1 and "not a file or folder (a device, pipe or socket)" in done.stderr


def test_compare_with_no_data_set_or_a_seed_out_of_range_is_a_usage_error(tmp_path):
    """`--datasets ","` exited 1 printing nothing; `--seed 99999999999` failed in every child training
    with a usage error about `python -m digitlab train` (third review)."""
    for option, value, says in (("--datasets", ",", "name at least one data set"), ("--seed", "99999999999", "4294967295")):
        done = invoke_cli("compare", "--models", "softmax", option, value, "--out", str(tmp_path / "c"))
        assert done.returncode == 2 and says in said(done), done.stderr
    assert not (tmp_path / "c").exists()


def test_a_home_folder_of_a_user_who_does_not_exist_is_one_line(tmp_path):
    """`~nouser/x` as a data set or data folder raised pathlib's RuntimeError, a traceback (a later review)."""
    import digitlab
    from digitlab.errors import DataError

    with pytest.raises(DataError, match="no user 'nouser-digitlab' on this machine"):
        digitlab.load_dataset("~nouser-digitlab/x")
    done = invoke_cli("train", "--data-dir", "~nouser-digitlab/d", "--epochs", "1", "--out", str(tmp_path / "r"))
    assert done.returncode == 1 and "no user 'nouser-digitlab'" in done.stderr and "Traceback" not in done.stderr
    done = invoke_cli("evaluate", "--dataset", "~nouser-digitlab/x")
    assert done.returncode == 2 and "no user 'nouser-digitlab'" in said(done)
