"""Fetching into a cache that cannot take the file: a full disk, a read-only folder, an unreadable
mirror file, a folder where a file belongs. One line each, nothing partial kept."""

from __future__ import annotations

import os

import pytest

from digitlab.data.fetch import fetch_file
from digitlab.errors import FetchError
from tests.unit.mirror import FILE, GZ, TINY, leftovers


@pytest.mark.parametrize("where", ["folder-mirror", "http-mirror"])
def test_a_full_disk_is_named_with_what_to_do_and_leaves_nothing(server, tmp_path, monkeypatch, where):
    import errno
    import shutil

    import pooch

    # The disk fills up half-way through the file, so a partial file exists when the error comes.
    def copy_then_full(src, dst, *args, **kwargs):
        dst.write(src.read(len(GZ) // 2))
        dst.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def download_then_full(self, url, output_file, *args, **kwargs):
        output_file.write(GZ[: len(GZ) // 2])  # digitlab hands pooch a file object (capped in size)
        output_file.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / FILE.filename).write_bytes(GZ)
    if where == "folder-mirror":
        monkeypatch.setattr(shutil, "copyfileobj", copy_then_full)
        mirrors = [str(mirror), f"{server[1]}/good/"]
    else:
        monkeypatch.setattr(pooch.HTTPDownloader, "__call__", download_then_full)
        mirrors = [f"{server[1]}/good/", str(mirror)]
    with pytest.raises(FetchError) as info:
        fetch_file(TINY, FILE, cache_dir=tmp_path / "cache", mirrors=mirrors, progress=False)
    message = str(info.value)
    assert "No space left on device" in message and str(tmp_path / "cache" / "tiny") in message
    assert "Free some space" in message and "DIGITLAB_CACHE" in message
    assert server[0].hits == [], "a full disk is not a mirror's fault: no other mirror was tried"
    assert leftovers(tmp_path / "cache") == [] and not (tmp_path / "cache" / "tiny" / FILE.filename).exists()


def test_an_unreadable_mirror_file_is_the_mirrors_problem_not_the_caches(tmp_path, monkeypatch):
    import errno

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / FILE.filename).write_bytes(GZ)
    real_open = open

    def guarded(path, *args, **kwargs):
        if str(path) == str(mirror / FILE.filename):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded)
    with pytest.raises(FetchError, match="could not fetch tiny/tiny-idx.gz from any mirror"):
        fetch_file(TINY, FILE, cache_dir=tmp_path / "cache", mirrors=[str(mirror)], progress=False)


@pytest.mark.parametrize(("options", "says"), [("size=64k", "No space left on device"),
                                               ("ro", "Read-only file system")])
def test_a_real_small_or_read_only_cache_filesystem(tmp_path, options, says):
    """`digitlab fetch` into a 64 KB tmpfs (MNIST's labels fit, its images do not) and a read-only
    one: exit 1, one line naming the folder, no partial file. The tmpfs is mounted in a user and
    mount namespace of its own (`unshare`), so the test needs no root and runs on every machine
    that allows those (it was skipped where mounting needed root)."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import DATA_DIR

    assert shutil.which("unshare"), "this test mounts a tmpfs with util-linux's unshare"
    cache, snapshot = tmp_path / "cache", tmp_path / "snapshot"
    cache.mkdir()
    snapshot.mkdir()
    # In the namespace: mount, fetch, then copy what the fetch left (the tmpfs goes with the namespace).
    script = 'mount -t tmpfs -o "$1" tmpfs "$2" || exit 99; "$3" -m digitlab fetch mnist; code=$?; cp -a "$2/." "$4"; exit $code'
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", options,
                           str(cache), sys.executable, str(snapshot)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DIGITLAB_CACHE": str(cache), "DIGITLAB_MIRROR": str(DATA_DIR),
                               "DIGITLAB_DATA": ""})
    assert done.returncode != 99, f"this machine allows no user namespace to mount a tmpfs in: {done.stderr}"
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert says in done.stderr and str(cache / "mnist") in done.stderr.replace("\n", "")
    assert "DIGITLAB_CACHE" in done.stderr.replace("\n", "")
    assert leftovers(snapshot) == [], "no partial download left behind"


def test_a_read_only_cache_folder_is_named_with_what_to_do(tmp_path, monkeypatch):
    """Without mount rights: chmod where it binds, and where it does not (root ignores file modes)
    every write under the folder fails as a read-only file system would make it fail."""
    import errno
    import os

    cache = tmp_path / "cache"
    cache.mkdir()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / FILE.filename).write_bytes(GZ)
    if os.geteuid() != 0:
        cache.chmod(0o555)
    else:
        real_open, real_mkdir = os.open, os.mkdir

        def refuse(path) -> None:
            if str(os.fspath(path)).startswith(str(cache)):
                raise OSError(errno.EROFS, "Read-only file system", str(path))

        def open_ro(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                refuse(path)
            return real_open(path, flags, *args, **kwargs)

        def mkdir_ro(path, *args, **kwargs):
            refuse(path)
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", open_ro)
        monkeypatch.setattr(os, "mkdir", mkdir_ro)
    try:
        with pytest.raises(FetchError) as info:
            fetch_file(TINY, FILE, cache_dir=cache, mirrors=[str(mirror)], progress=False)
    finally:
        cache.chmod(0o755)
    message = str(info.value)
    assert f"cannot write to the cache folder {cache / 'tiny'}" in message
    assert "Make it writable, or set DIGITLAB_CACHE" in message and "from any mirror" not in message
    assert list(cache.iterdir()) == []


def test_fetch_command_with_an_unusable_cache_prints_one_line(tmp_path):
    """`digitlab fetch` where the cache folder cannot exist (its parent is a file; this binds for
    root too): exit 1, one line on stderr naming the folder and what to do, no traceback."""
    from tests.conftest import DATA_DIR, invoke_cli

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = invoke_cli("fetch", "mnist", env={"DIGITLAB_CACHE": str(blocker / "cache"), "DIGITLAB_MIRROR": str(DATA_DIR),
                                             "DIGITLAB_DATA": ""})
    assert done.returncode == 1 and done.stdout == "", done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: cannot write to the cache folder " + str(blocker / "cache" / "mnist"))
    assert "set DIGITLAB_CACHE to a folder you can write to" in lines[0]


@pytest.mark.parametrize("name", [FILE.filename, FILE.filename + ".lock"])
def test_a_folder_where_the_cache_keeps_a_file_is_named_with_what_to_do(tmp_path, name):
    """It was "cannot write to the cache folder (Is a directory). Make it writable", or a copy error
    suggesting a file inside it."""
    (tmp_path / "tiny" / name).mkdir(parents=True)
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / FILE.filename).write_bytes(GZ)
    with pytest.raises(FetchError, match=rf"tiny/{name}: not a file, where the cache keeps one. Move it away") as info:
        fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[str(tmp_path / "mirror")])
    assert "writable" not in str(info.value) and (tmp_path / "tiny" / name).is_dir()


def test_a_file_where_the_cache_keeps_a_data_sets_folder_is_named_and_a_linked_file_is_taken(server, tmp_path):
    """A file at <cache>/tiny was "cannot write ... (File exists) ... Make it writable"; a cached file
    that is a link to the user's own copy was refused by `--force` (a later review)."""
    (tmp_path / "tiny").write_text("not a folder")
    with pytest.raises(FetchError, match="tiny: not a folder, where the cache keeps tiny's files"):
        fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{server[1]}/good/"])
    (tmp_path / "tiny").unlink()
    (tmp_path / "tiny").mkdir()
    (tmp_path / "own.gz").write_bytes(GZ)
    (tmp_path / "tiny" / FILE.filename).symlink_to(tmp_path / "own.gz")
    path = fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{server[1]}/good/"], force=True, progress=False)
    assert path.read_bytes() == GZ and (tmp_path / "own.gz").read_bytes() == GZ


def test_fetch_with_the_data_folder_set_checks_it_and_downloads_nothing(tmp_path):
    """With DIGITLAB_DATA holding the files, `fetch` went to the internet and then said to set
    DIGITLAB_DATA (the README walkthrough of 2026-12-07)."""
    from tests.conftest import DATA_DIR, invoke_cli

    cache = tmp_path / "cache"
    done = invoke_cli("fetch", "mnist", env={"DIGITLAB_CACHE": str(cache), "DIGITLAB_DATA": str(DATA_DIR)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" ok ") == 4 and "Nothing downloaded: $DIGITLAB_DATA holds mnist's files" in done.stdout
    assert not cache.exists()
    part = tmp_path / "part" / "mnist"  # all but one file: that one is named, not the first (the attack review)
    part.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (part / name).symlink_to(DATA_DIR / "mnist" / name)
    done = invoke_cli("fetch", "mnist", env={"DIGITLAB_CACHE": str(cache), "DIGITLAB_DATA": str(part.parent),
                                             "DIGITLAB_MIRROR": str(tmp_path / "nowhere")})
    assert done.returncode == 1 and done.stdout.count(" ok ") == 3, done.stdout + done.stderr
    assert f"put mnist/t10k-labels-idx1-ubyte.gz in DIGITLAB_DATA's folder, {part.parent}" in done.stderr
    assert "(or set DIGITLAB_DATA)" not in done.stderr
