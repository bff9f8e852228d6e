"""Downloads against a real HTTP server on 127.0.0.1: good, corrupted, cut off, missing, offline."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from digitlab.data.fetch import fetch_file, mirrors_for
from digitlab.data.idx import idx_bytes
from digitlab.data.registry import DataFile, Dataset
from digitlab.errors import FetchError

RAW = idx_bytes(np.arange(2000, dtype=np.uint8).reshape(2, 1000) % 251)
GZ = gzip.compress(RAW, mtime=0)
FILE = DataFile("train_images", "tiny-idx.gz", hashlib.sha256(RAW).hexdigest(), hashlib.sha256(GZ).hexdigest(), (2, 1000))
TINY = Dataset("tiny", "test data set", (), (FILE,), ("a", "b"), "none")


class Handler(http.server.BaseHTTPRequestHandler):
    """/good/<f>: the file; /corrupt/<f>: flipped bytes; /cut/<f>: half, then the connection drops."""

    def do_GET(self):
        kind = self.path.strip("/").split("/")[0]
        if kind not in ("good", "corrupt", "cut", "endless", "stall", "trickle") or not self.path.endswith(FILE.filename):
            self.send_error(404)
            return
        if kind == "endless":  # no Content-Length, and bytes for as long as the client reads
            self.server.hits.append(kind)
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(10_000):  # 10 GB at most, should the client never stop
                    self.wfile.write(bytes(1 << 20))
            except OSError:
                pass
            return
        if kind == "trickle":  # a byte every 50 ms: no read ever times out
            self.server.hits.append(kind)
            self.send_response(200)
            self.send_header("Content-Length", str(len(GZ)))
            self.end_headers()
            try:
                for byte in GZ:
                    if self.server.stop.wait(0.05):
                        break
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            except OSError:
                pass
            return
        if kind == "stall":  # half the file, then nothing for longer than any test waits
            self.server.hits.append(kind)
            self.send_response(200)
            self.send_header("Content-Length", str(len(GZ)))
            self.end_headers()
            self.wfile.write(GZ[: len(GZ) // 2])
            self.wfile.flush()
            self.server.stop.wait(60)
            return
        body = GZ if kind != "corrupt" else GZ[:20] + bytes(b ^ 0x55 for b in GZ[20:60]) + GZ[60:]
        self.server.hits.append(kind)  # before the answer: the client may go on as soon as it has it
        self.send_response(200)
        self.send_header("Content-Length", str(len(GZ)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if kind == "cut" else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.hits, httpd.stop = [], threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    """Everything in the cache but the data sets' folders, finished downloads and lock files: a
    temporary file, a staging folder (even an empty one) or anything hidden is a leftover."""
    found = []
    for p in folder.rglob("*"):
        parts = p.relative_to(folder).parts
        if len(parts) == 1 and p.is_dir():
            continue  # <cache>/<dataset>
        if len(parts) == 2 and p.is_file() and not p.name.startswith(".") and p.name.endswith((".gz", ".gz.lock")):
            continue  # <cache>/<dataset>/<file>.gz and its lock
        found.append("/".join(parts))
    return sorted(found)


def test_download_verifies_and_caches(server, tmp_path):
    httpd, base = server
    path = fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/good/"], progress=True)
    assert path == tmp_path / "tiny" / FILE.filename and path.read_bytes() == GZ
    fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/good/"])
    assert httpd.hits == ["good"], "a verified cached copy must not be downloaded again"


@pytest.mark.parametrize("bad", ["corrupt", "cut", "missing", "endless"])
def test_a_bad_mirror_falls_through_to_the_next(server, tmp_path, bad):
    httpd, base = server
    path = fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/{bad}/", f"{base}/good/"], progress=False)
    assert path.read_bytes() == GZ
    assert httpd.hits[-1] == "good"
    assert leftovers(tmp_path) == []


def test_what_a_killed_download_left_in_the_cache_is_cleared_by_the_next_fetch(server, tmp_path):
    """A fetch SIGKILLed mid-download (or mid-copy from a folder mirror) leaves its hidden staging
    folder or temporary copy; the next fetch of that file, under its lock, deletes them. Another
    file's staging folder, possibly a living download's, is left alone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    _, base = server
    folder = tmp_path / "tiny"
    code = ("from tests.unit.test_fetch import TINY, FILE; from digitlab.data.fetch import fetch_file; "
            f"fetch_file(TINY, FILE, cache_dir={str(tmp_path)!r}, mirrors=[{base + '/stall/'!r}], progress=False)")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2])
    deadline = time.monotonic() + 60
    while not any(folder.glob(".download-*/*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert [p.name.startswith(f".download-{FILE.filename}-") for p in folder.glob(".download-*")] == [True]
    (folder / ".tiny-idx.123-abcd1234.tmp.gz").write_bytes(GZ[:10])  # atomic_write's, killed mid-copy
    (folder / ".download-other-idx.gz-x").mkdir()
    fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/good/"], progress=False)
    assert leftovers(tmp_path) == ["tiny/.download-other-idx.gz-x"]


def test_a_mirror_trickling_bytes_is_stopped_at_its_deadline_and_the_next_one_tried(server, tmp_path, monkeypatch):
    """requests' timeout is per read: a mirror sending a byte every 50 ms (5 s a byte in the review)
    never trips it, and held `fetch` for as long as it went on. The whole file has a deadline."""
    import time

    from digitlab.data import fetch

    monkeypatch.setattr(fetch, "DEADLINE_BASE_S", 1.0)
    monkeypatch.setattr(fetch, "MIN_BYTES_PER_S", 10**9)  # 1 s for the whole file
    httpd, base = server
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"trickle/tiny-idx.gz: too slow: the file was not complete after 1 s"):
        fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/trickle/"], progress=False)
    assert time.monotonic() - started < 10  # the whole file takes 25 s
    assert leftovers(tmp_path) == []
    path = fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/trickle/", f"{base}/good/"], progress=False)
    assert path.read_bytes() == GZ and httpd.hits == ["trickle", "trickle", "good"]


def test_all_mirrors_failing_says_what_was_tried_and_what_to_do(server, tmp_path):
    _, base = server
    mirrors = [f"{base}/corrupt/", f"{base}/cut/", "http://127.0.0.1:9/nothing/"]
    with pytest.raises(FetchError) as info:
        fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=mirrors, progress=False)
    message = str(info.value)
    for m in mirrors:
        assert m in message
    assert "checksum mismatch" in message and "--data-dir" in message and "DIGITLAB_MIRROR" in message
    assert not (tmp_path / "tiny" / FILE.filename).exists()
    assert leftovers(tmp_path) == []


def test_a_corrupt_cached_copy_is_replaced(server, tmp_path):
    _, base = server
    target = tmp_path / "tiny" / FILE.filename
    target.parent.mkdir(parents=True)
    target.write_bytes(b"garbage")
    fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/good/"], progress=False)
    assert target.read_bytes() == GZ


def test_a_local_folder_is_a_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / FILE.filename).write_bytes(GZ)
    path = fetch_file(TINY, FILE, cache_dir=tmp_path / "cache", mirrors=[str(mirror)])
    assert path.read_bytes() == GZ
    (mirror / FILE.filename).write_bytes(GZ[:-5])
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_file(TINY, FILE, cache_dir=tmp_path / "cache2", mirrors=[str(mirror)])
    assert leftovers(tmp_path / "cache2") == []


def test_mirror_environment_variable_replaces_the_public_mirrors(monkeypatch):
    monkeypatch.setenv("DIGITLAB_MIRROR", "http://127.0.0.1:8000/data, /srv/mirror/")
    assert mirrors_for(TINY) == ["http://127.0.0.1:8000/data/tiny/", "/srv/mirror/tiny/"]
    monkeypatch.delenv("DIGITLAB_MIRROR")
    assert mirrors_for(TINY) == []


def test_unwritable_cache_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(FetchError, match="cannot write to the cache folder") as info:
        fetch_file(TINY, FILE, cache_dir=blocker, mirrors=[])
    assert "DIGITLAB_CACHE" in str(info.value)


def test_force_replaces_the_cached_copy_only_with_a_verified_one(server, tmp_path):
    httpd, base = server
    fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/good/"], progress=False)
    with pytest.raises(FetchError):
        fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/corrupt/"], force=True, progress=False)
    assert (tmp_path / "tiny" / FILE.filename).read_bytes() == GZ, "a failed forced download kept the good copy"
    fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/good/"], force=True, progress=False)
    assert httpd.hits == ["good", "corrupt", "good"]
    assert leftovers(tmp_path) == []


def test_a_malformed_mirror_url_is_not_called_a_checksum_error(tmp_path):
    with pytest.raises(FetchError) as info:
        fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=["http://[::1/bad/"], progress=False)
    assert "checksum" not in str(info.value) and "http://[::1/bad/" in str(info.value)


# ---- the cache folder full or read-only: one clear error, nothing partial kept ----

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


def _mount_tmpfs(folder: Path, options: str) -> bool:
    """Mount a tmpfs (root with mount rights only); False where the machine does not allow it."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize(("options", "says"), [("size=64k", "No space left on device"),
                                               ("ro", "Read-only file system")])
def test_a_real_small_or_read_only_cache_filesystem(tmp_path, options, says):
    """`digitlab fetch` into a 64 KB tmpfs (MNIST's labels fit, its images do not) and a read-only
    one: exit 1, one line naming the folder, no partial file. Needs mount rights (root)."""
    import subprocess

    from tests.conftest import DATA_DIR, invoke_cli

    cache = tmp_path / "cache"
    if not _mount_tmpfs(cache, options):
        pytest.skip("this machine does not allow mounting a tmpfs; the simulated ENOSPC test covers the code")
    try:
        done = invoke_cli("fetch", "mnist", env={"DIGITLAB_CACHE": str(cache), "DIGITLAB_MIRROR": str(DATA_DIR)})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert says in done.stderr and str(cache / "mnist") in done.stderr.replace("\n", "")
        assert "DIGITLAB_CACHE" in done.stderr.replace("\n", "")
        assert leftovers(cache) == [], "no partial download left behind"
    finally:
        subprocess.run(["umount", str(cache)], check=False)


def test_two_processes_fetching_into_an_empty_cache_download_once(tmp_path):
    """Two `digitlab fetch mnist` at once, from a slow HTTP mirror of the real files: both succeed,
    each file is downloaded once (the second process waits on the lock, then finds it verified)."""
    import subprocess
    import time

    from tests.conftest import digitlab_command

    source = require_mnist_dir()

    class Slow(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(source.parent), **kwargs)

        def do_GET(self):
            self.server.hits.append(self.path)
            time.sleep(0.5)  # long enough for the two processes to overlap
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    httpd.hits = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    cache = tmp_path / "cache"
    env = {**__import__("os").environ, "DIGITLAB_CACHE": str(cache),
           "DIGITLAB_MIRROR": f"http://127.0.0.1:{httpd.server_address[1]}"}
    env.pop("DIGITLAB_DATA", None)
    try:
        processes = [subprocess.Popen([*digitlab_command(), "fetch", "mnist"], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        results = [p.communicate(timeout=300) + (p.returncode,) for p in processes]
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [rc for _, _, rc in results] == [0, 0], results
    assert all(out.count(" ok ") == 4 for out, _, _ in results), results
    files = sorted(httpd.hits)
    assert len(files) == 4 and len(set(files)) == 4, f"each file downloaded once, not {files}"
    from digitlab.data import get_dataset

    names = [f.filename for f in get_dataset("mnist").files]
    for f in get_dataset("mnist").files:
        assert hashlib.sha256((cache / "mnist" / f.filename).read_bytes()).hexdigest() == f.gz_sha256
    data_files = sorted(p.name for p in (cache / "mnist").iterdir() if not p.name.endswith(".lock"))
    assert data_files == sorted(names), "exactly one copy of each file, nothing else"
    assert leftovers(cache) == []


def require_mnist_dir() -> Path:
    from tests.conftest import require_real_data

    return require_real_data("mnist") / "mnist"


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
    done = invoke_cli("fetch", "mnist", env={"DIGITLAB_CACHE": str(blocker / "cache"), "DIGITLAB_MIRROR": str(DATA_DIR)})
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
    with pytest.raises(FetchError, match=rf"tiny/{name}: not a file, where the cache keeps one. Delete it") as info:
        fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[str(tmp_path / "mirror")])
    assert "writable" not in str(info.value) and (tmp_path / "tiny" / name).is_dir()
