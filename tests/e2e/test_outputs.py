"""What the commands write for you (figures, prepared images, boxes, a run's results), and the one
line a user gets when it cannot be written or there is nothing to read (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import invoke_cli
from tests.e2e.test_cli import plain


def test_a_figure_that_cannot_be_written_is_one_line(tmp_path):
    """Issue 22 (13, 14): `plot -o DIR` wrote DIR.png and said "Wrote DIR"; a figure into an
    unwritable place was a traceback."""
    folder = tmp_path / "figures"
    folder.mkdir()
    done = invoke_cli("plot", "samples", "--output", str(folder))
    assert done.returncode == 1 and "is a folder; name a file" in done.stderr and "Traceback" not in done.stderr
    assert list(folder.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["figures"]


@pytest.mark.slow
def test_a_full_disk_while_writing_the_results_keeps_the_epochs_and_resume_finishes(tmp_path, monkeypatch, data_dir):
    """Issue 22 (13): a disk full while writing figures left status "training" and a traceback."""
    import errno

    import digitlab
    from digitlab.errors import WriteError
    from digitlab.lab import pipeline
    from digitlab.reports import helper

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    # Drawn here, not in the helper process, so that the disk can be "full" (an OSError raised in
    # the helper comes back as itself: tests/unit/test_helper.py).
    monkeypatch.setattr(helper, "start", lambda *args: None)
    monkeypatch.setattr(pipeline, "draw_run", full)
    config = digitlab.config_for("mlp", epochs=1, train_limit=2000, out=str(tmp_path))
    seen = []  # issue 24: the result is shown as soon as it is saved, before the figures are drawn
    with pytest.raises(WriteError, match=r"cannot write the run's results \(No space left on device\); its trained "
                                         r"epochs are kept.*digitlab train --resume"):
        digitlab.train(config, data_dir=data_dir, verbose=0, on_result=seen.append)
    assert len(seen) == 1 and seen[0]["test_accuracy"] > 0.8
    run = next(tmp_path.iterdir())
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    assert (run / "checkpoint.json").is_file()
    monkeypatch.undo()
    finished = digitlab.resume(run, data_dir=data_dir, verbose=0)
    assert json.loads((run / "status.json").read_text())["state"] == "complete" and finished.metrics["test_accuracy"] > 0.8


@pytest.mark.slow
def test_an_unforeseen_error_after_training_marks_the_run_failed(tmp_path, monkeypatch, data_dir):
    """A figure that raised anything but an OSError (a library's bug) left status "training" for good."""
    import digitlab
    from digitlab.lab import pipeline
    from digitlab.reports import helper

    def broken(*args, **kwargs):
        raise ValueError("a figure's bug")

    monkeypatch.setattr(helper, "start", lambda *args: None)
    monkeypatch.setattr(pipeline, "draw_run", broken)
    config = digitlab.config_for("mlp", epochs=1, train_limit=2000, out=str(tmp_path))
    with pytest.raises(ValueError, match="a figure's bug"):
        digitlab.train(config, data_dir=data_dir, verbose=0)
    run = next(tmp_path.iterdir())
    assert json.loads((run / "status.json").read_text()) == {"state": "failed", "error": "ValueError: a figure's bug"}
    assert (run / "checkpoint.json").is_file()  # its epoch is kept: --resume finishes it


def test_an_error_inside_training_marks_the_run_failed(tmp_path, monkeypatch, data_dir):
    import digitlab
    from digitlab.lab import pipeline

    def crashing(*args, **kwargs):
        raise RuntimeError("the backend fell over")

    monkeypatch.setattr(pipeline, "fit", crashing)
    with pytest.raises(RuntimeError):
        digitlab.train(digitlab.config_for("mlp", epochs=1, train_limit=500, out=str(tmp_path)), data_dir=data_dir,
                       verbose=0, plots_enabled=False)
    status = json.loads((next(tmp_path.iterdir()) / "status.json").read_text())
    assert status == {"state": "failed", "error": "RuntimeError: the backend fell over"}


@pytest.fixture()
def tiny_run(tmp_path):
    """A run folder holding an untrained softmax layer: enough to exercise predict and read's files."""
    from digitlab.models import build_model

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "softmax"}))
    build_model("softmax").save(run / "model.keras")
    return run


def digit_file(folder, name: str) -> Path:
    from PIL import Image
    import numpy as np

    image = np.full((60, 90), 255, np.uint8)
    image[10:50, 20:26] = 0
    image[10:50, 60:66] = 0
    path = folder / name
    Image.fromarray(image).save(path)
    return path


def test_output_files_of_predict_and_read_are_checked_and_one_line(tiny_run, tmp_path):
    """Issue 22 (13): --save-prepared with a 251-character file name or pointing at a file, and
    `read --save-boxes x.txt`, were tracebacks."""
    long_name = digit_file(tmp_path, "d" * 240 + ".png")
    prepared = tmp_path / "prepared"
    done = invoke_cli("predict", str(long_name), "--model", str(tiny_run), "--save-prepared", str(prepared))
    assert done.returncode == 0, done.stderr
    assert [len(p.name) for p in prepared.iterdir()] == [len("000000-") + 100 + len(".png")]
    done = invoke_cli("predict", str(long_name), "--model", str(tiny_run), "--save-prepared", str(long_name))
    assert done.returncode == 2 and "cannot make the folder" in plain(done.stderr) and "Traceback" not in done.stderr
    number = digit_file(tmp_path, "number.png")
    done = invoke_cli("read", str(number), "--model", str(tiny_run), "--save-boxes", str(tmp_path / "boxes.txt"))
    assert done.returncode == 2 and "not an image file name" in plain(done.stderr)
    done = invoke_cli("read", str(number), "--model", str(tiny_run), "--save-boxes", str(tmp_path / "boxes.png"))
    assert done.returncode == 0 and (tmp_path / "boxes.png").is_file()
    done = invoke_cli("read", str(number), "--model", str(tiny_run), "--save-boxes", str(prepared) + "/")
    assert done.returncode == 0 and (prepared / "000000-number.png").is_file()  # a folder: one file per image
    done = invoke_cli("read", str(number), str(long_name), "--model", str(tiny_run), "--save-boxes", str(tmp_path / "b.png"))
    assert done.returncode == 2 and "names one file, for 2 images; give a folder" in plain(done.stderr)
    done = invoke_cli("read", str(number), "--model", str(tiny_run), "--save-boxes", str(long_name / "x"))
    assert done.returncode == 2 and "cannot make the folder" in plain(done.stderr) and "Traceback" not in done.stderr


def test_a_folder_with_no_image_files_is_an_error_not_silence(tiny_run, tmp_path):
    """Issue 22 (14): a folder of only .heic files printed nothing and exited 0."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "IMG_0001.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    done = invoke_cli("predict", str(photos), "--model", str(tiny_run))
    assert done.returncode == 1 and "no image files in the folder (it holds 1 other file(s), such as IMG_0001.heic)" \
        in plain(done.stdout) and "Traceback" not in done.stderr  # the folder's row, as a bad file's
