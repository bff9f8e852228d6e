"""A tiny data set and an HTTP mirror of it on 127.0.0.1 that misbehaves on request, for the fetch tests."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from digitlab.data.idx import idx_bytes
from digitlab.data.registry import DataFile, Dataset

RAW = idx_bytes(np.arange(2000, dtype=np.uint8).reshape(2, 1000) % 251)
GZ = gzip.compress(RAW, mtime=0)
FILE = DataFile("train_images", "tiny-idx.gz", hashlib.sha256(RAW).hexdigest(), hashlib.sha256(GZ).hexdigest(), (2, 1000))
TINY = Dataset("tiny", "test data set", (), (FILE,), ("a", "b"), "none")


class Handler(http.server.BaseHTTPRequestHandler):
    """/good/<f>: the file; /corrupt/<f>: flipped bytes; /cut/<f>: half, then the connection drops."""

    def do_GET(self):
        kind = self.path.strip("/").split("/")[0]
        if kind not in ("good", "corrupt", "cut", "endless", "stall", "trickle", "slow-headers") or not self.path.endswith(FILE.filename):
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
        if kind == "slow-headers":  # a status line, then a header a byte every 50 ms, never ending
            self.server.hits.append(kind)
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not self.server.stop.wait(0.05):
                    self.wfile.write(b"a")
                    self.wfile.flush()
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
