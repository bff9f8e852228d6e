"""The image files named on a command line (`images.folders.expand`): every path answered once,
none silently dropped, however the folders are laid out or locked (the review of 2026-12-07)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from digitlab.images.folders import expand
from digitlab.images.read import Unreadable
from tests.conftest import invoke_cli, seven


def names(found, root: Path) -> list[str]:
    return [f"error: {p.message}" if isinstance(p, Unreadable) else str(Path(p).relative_to(root)) for p in found]


def test_a_folder_without_images_is_an_answer_of_its_own_and_the_batch_goes_on(tmp_path):
    seven().save(tmp_path / "seven.png")
    (tmp_path / "heic").mkdir()
    (tmp_path / "heic" / "IMG_0001.heic").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    found = list(expand([tmp_path / "seven.png", tmp_path / "heic", tmp_path / "empty"]))
    assert [isinstance(p, Unreadable) for p in found] == [False, True, True]
    assert "no image files in the folder (it holds 1 other file(s), such as IMG_0001.heic)" in found[1].message
    assert "(it holds nothing)" in found[2].message
    done = invoke_cli("predict", str(tmp_path / "seven.png"), str(tmp_path / "empty"), "--json")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["status"], r["digit"]) for r in rows] == [("ok", "7"), ("error", None)]  # seven.png still answered
    assert rows[1]["source"] == str(tmp_path / "empty") and done.returncode == 1


def test_hidden_files_are_left_out_and_links_to_folders_followed_once(tmp_path):
    (tmp_path / "scans" / "sub").mkdir(parents=True)
    (tmp_path / "more").mkdir()
    for path in ("scans/a.png", "scans/sub/b.png", "scans/._a.png", "more/c.png"):
        seven().save(tmp_path / path, format="PNG")
    (tmp_path / "scans" / ".Trashes").mkdir()
    seven().save(tmp_path / "scans" / ".Trashes" / "old.png")
    (tmp_path / "scans" / "more").symlink_to(tmp_path / "more")  # a link to a folder: searched
    (tmp_path / "more" / "loop").symlink_to(tmp_path / "scans")  # and a link back: not searched again
    assert names(expand([tmp_path / "scans"]), tmp_path / "scans") == ["a.png", "more/c.png", "sub/b.png"]
    (tmp_path / "only-hidden").mkdir()
    seven().save(tmp_path / "only-hidden" / ".h.png")
    (found,) = expand([tmp_path / "only-hidden"])
    assert "(it holds only 1 hidden file(s), left out; name them to read them)" in found.message
    assert list(expand([tmp_path / "only-hidden" / ".h.png"])) == [tmp_path / "only-hidden" / ".h.png"]  # named: read


def test_folders_that_cannot_be_entered_or_listed_are_named_not_skipped(tmp_path):
    """As a user without root's overrides: a file in a folder that cannot be entered, named on the
    command line, crashed the batch (PermissionError from is_dir); a sub-folder that cannot be
    listed was skipped with exit status 0."""
    seven().save(tmp_path / "seven.png")
    (tmp_path / "locked").mkdir()
    seven().save(tmp_path / "locked" / "in.png")
    (tmp_path / "scans" / "private").mkdir(parents=True)
    seven().save(tmp_path / "scans" / "a.png")
    (tmp_path / "locked").chmod(0)
    (tmp_path / "scans" / "private").chmod(0)
    code = ("import sys; from digitlab.images.folders import expand; from digitlab.images.read import Unreadable\n"
            "for p in expand(sys.argv[1:]): print('error:', p.message) if isinstance(p, Unreadable) else print(p)")
    as_user = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    try:
        done = subprocess.run([*as_user, sys.executable, "-c", code, "seven.png", "locked/in.png", "scans"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
    finally:
        (tmp_path / "locked").chmod(0o755)
        (tmp_path / "scans" / "private").chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["seven.png", "error: locked/in.png: cannot open (Permission denied).",
                                        "scans/a.png", "error: scans/private: cannot list the folder (Permission denied)."]


def test_a_file_that_cannot_be_read_gets_its_own_row_not_a_usage_error(tmp_path):
    """Typer's Path refused the whole command (exit 2) for one unreadable file named on the command
    line, while the same file found in a folder got its row: now both get their row."""
    seven().save(tmp_path / "seven.png")
    seven().save(tmp_path / "secret.png")
    (tmp_path / "secret.png").chmod(0)
    as_user = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    for command in ("predict", "read"):
        done = subprocess.run([*as_user, sys.executable, "-m", "digitlab", command, "seven.png", "secret.png", "--json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        assert done.returncode == 1 and [r["status"] for r in rows] == ["ok", "error"], done.stderr
        assert rows[1]["message"] == "secret.png: cannot open (Permission denied)."


def test_names_that_are_not_utf8_are_escaped_in_every_output(tmp_path):
    """A file name's bytes that are not UTF-8 (Latin-1 "café") crashed `predict --csv` and the
    plain output part-way on a UTF-8 terminal; every format now shows them as \\xNN."""
    folder = os.fsencode(tmp_path) + b"/caf\xe9_7.png"
    seven().save(folder.decode("utf-8", "surrogateescape"), format="PNG")
    for fmt in ("--csv", "--json", None):
        done = subprocess.run([sys.executable, "-m", "digitlab", "predict", str(tmp_path), *([fmt] if fmt else [])],
                              capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"}, timeout=120)
        assert done.returncode == 0, done.stderr
        text = done.stdout.decode("utf-8")  # valid UTF-8 throughout
        text = json.loads(text)["source"] if fmt == "--json" else text
        assert "caf\\xe9_7.png" in text and "Traceback" not in done.stderr.decode("utf-8", "replace"), text
