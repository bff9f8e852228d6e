"""`digitlab predict -` and `read -`: one image piped into standard input, as Unix tools take it
(`curl ... | digitlab read -`). The installed command in a process of its own, with the shipped
reader, since what is tested is the pipe."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess

import numpy as np
from PIL import Image

from tests.conftest import DATA_DIR, DATA_ENV, digitlab_command, said


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def piped(*args: str, data: bytes | None = b"", cwd=None, stdin=None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}, DATA_ENV: str(DATA_DIR)}
    done = subprocess.run([*digitlab_command(), *args], input=data if stdin is None else None, stdin=stdin,
                          capture_output=True, env=env, cwd=cwd, timeout=300)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def test_predict_and_read_take_an_image_piped_into_standard_input(mnist, tmp_path):
    x, y = mnist[1]
    one = png(255 - x[0])  # dark ink on white, as a scan
    done = piped("predict", "--runs", str(tmp_path / "none"), "-", data=one)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"<stdin>: {y[0]} (")
    row = json.loads(piped("predict", "--runs", str(tmp_path / "none"), "--json", "-", data=one).stdout)
    assert row["source"] == "<stdin>" and row["digit"] == str(y[0])

    digits = [1, 2, 3, 4]
    number = png(255 - np.hstack([np.pad(x[i], 4) for i in digits]))
    boxes = tmp_path / "boxes"
    done = piped("read", "--runs", str(tmp_path / "none"), "--save-boxes", str(boxes), "-", data=number)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "".join(str(y[i]) for i in digits)
    # drawn on the piped image again (read once already), named after no file
    assert [p.name for p in boxes.iterdir()] == ["000000-stdin.png"]
    assert Image.open(boxes / "000000-stdin.png").size == (36 * 4, 36)


def test_a_file_called_dash_is_read_as_dot_slash_dash(tmp_path):
    from tests.conftest import seven

    seven().save(tmp_path / "-", format="PNG")
    done = piped("predict", "--runs", str(tmp_path / "none"), "./-", cwd=tmp_path, data=None)
    assert done.returncode == 0 and done.stdout.startswith("-: 7 ("), done.stderr


def test_what_cannot_come_through_the_pipe_gets_one_line_and_no_traceback(tmp_path):
    runs = ("--runs", str(tmp_path / "none"))
    for command in ("predict", "read"):
        empty = piped(command, *runs, "-", data=b"")
        assert empty.returncode == 1 and "<stdin>: the file is empty." in empty.stdout + empty.stderr
        junk = piped(command, *runs, "-", data=b"#!/bin/sh\necho not an image\n" * 10)
        assert junk.returncode == 1 and "<stdin>: not a PNG, JPEG" in junk.stdout + junk.stderr
        both = piped(command, *runs, "-", "other.png", data=b"")
        assert both.returncode == 2 and "'-' (an image on standard input) goes alone" in said(both)
        for done in (empty, junk, both):
            assert "Traceback" not in done.stderr
    cluster = piped("predict", *runs, "--cluster", "local:1", "--out", str(tmp_path / "r.csv"), "-", data=b"x")
    assert cluster.returncode == 1 and "not standard input ('-')" in cluster.stderr
    assert not (tmp_path / "r.csv").exists()


def test_a_dash_with_a_terminal_for_standard_input_says_so_instead_of_waiting(tmp_path):
    """A user who types `digitlab predict -` at a prompt would wait on a read that never ends."""
    leader, follower = pty.openpty()
    try:
        done = piped("predict", "--runs", str(tmp_path / "none"), "-", stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 2 and "this is a terminal" in said(done)

