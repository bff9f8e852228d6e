"""Downloads against a real HTTP server on 127.0.0.1: good, corrupted, cut off, missing, offline."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from digitlab.data.fetch import fetch_file, mirrors_for
from digitlab.errors import FetchError
from tests.unit.mirror import FILE, GZ, TINY, leftovers


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

    httpd, base = server
    folder = tmp_path / "tiny"
    code = ("from tests.unit.mirror import TINY, FILE; from digitlab.data.fetch import fetch_file; "
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
    # A `fetch --force` killed over a good copy: the next fetch finds the copy verified, and clears up too.
    (folder / f".download-{FILE.filename}-y").mkdir()
    (folder / ".tiny-idx.456-abcd1234.tmp.gz").write_bytes(GZ[:10])
    fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/good/"], progress=False)
    assert leftovers(tmp_path) == ["tiny/.download-other-idx.gz-x"] and httpd.hits.count("good") == 1


@pytest.mark.parametrize("slow", ["trickle", "slow-headers"])
def test_a_mirror_trickling_bytes_is_stopped_at_its_deadline_and_the_next_one_tried(server, tmp_path, monkeypatch, slow):
    """requests' timeout is per read: a mirror sending a byte every 50 ms (5 s a byte in the review),
    of the file or of its headers (a later review), never trips it, and held `fetch` for as long as
    it went on. The whole file has a deadline."""
    import time

    from digitlab.data import fetch

    monkeypatch.setattr(fetch, "DEADLINE_BASE_S", 1.0)
    monkeypatch.setattr(fetch, "MIN_BYTES_PER_S", 10**9)  # 1 s for the whole file
    httpd, base = server
    started = time.monotonic()
    with pytest.raises(FetchError, match=rf"{slow}/tiny-idx.gz: too slow: the file was not complete after 1 s"):
        fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/{slow}/"], progress=False)
    assert time.monotonic() - started < 10  # the whole file takes 25 s, the headers for ever
    assert leftovers(tmp_path) == []
    path = fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/{slow}/", f"{base}/good/"], progress=False)
    assert path.read_bytes() == GZ and httpd.hits == [slow, slow, "good"]


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
