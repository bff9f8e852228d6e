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
        if kind not in ("good", "corrupt", "cut") or not self.path.endswith(FILE.filename):
            self.send_error(404)
            return
        body = GZ if kind != "corrupt" else GZ[:20] + bytes(b ^ 0x55 for b in GZ[20:60]) + GZ[60:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(GZ)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if kind == "cut" else body)
        self.server.hits.append(kind)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.hits = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    """Files in the cache other than finished downloads and lock files."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and not p.name.endswith((".lock", ".gz")))


def test_download_verifies_and_caches(server, tmp_path):
    httpd, base = server
    path = fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/good/"], progress=True)
    assert path == tmp_path / "tiny" / FILE.filename and path.read_bytes() == GZ
    fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/good/"])
    assert httpd.hits == ["good"], "a verified cached copy must not be downloaded again"


@pytest.mark.parametrize("bad", ["corrupt", "cut", "missing"])
def test_a_bad_mirror_falls_through_to_the_next(server, tmp_path, bad):
    httpd, base = server
    path = fetch_file(TINY, FILE, cache_dir=tmp_path, mirrors=[f"{base}/{bad}/", f"{base}/good/"], progress=False)
    assert path.read_bytes() == GZ
    assert httpd.hits[-1] == "good"
    assert leftovers(tmp_path) == []


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
