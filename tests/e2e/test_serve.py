"""`digitlab serve` end to end: a real server on 127.0.0.1, real MNIST digits, hostile requests,
a schema-driven fuzz, a load test, and a real browser drawing on the page."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from PIL import Image
from schemathesis.checks import not_a_server_error

from digitlab.images.synthetic import compose_number
from tests.conftest import DATA_DIR, REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # service_load and flood, imported by the tests that use them

pytestmark = pytest.mark.slow  # a trained model (mlp_run), load and memory tests, schemathesis, a browser


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=60) as c:
        yield c


def png(array: np.ndarray, size: int | None = None, fmt: str = "PNG") -> bytes:
    image = Image.fromarray(array)
    if size:
        image = image.resize((size, size))
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with almost no data: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_health_and_model_facts(client, mlp_run):
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    facts = client.get("/api/v1/model").json()
    metrics = json.loads((mlp_run / "metrics.json").read_text())
    assert facts["name"] == mlp_run.name and facts["preset"] == "mlp" and facts["dataset"] == "mnist"
    assert facts["classes"] == list("0123456789") and facts["test_accuracy"] == metrics["test_accuracy"]
    assert str(mlp_run.parent) not in json.dumps(facts), "the server's paths are not a client's business"
    assert client.get("/openapi.json").json()["paths"].keys() >= {"/api/v1/predict", "/api/v1/read/upload"}
    assert "digitlab" in client.get("/docs").text


def test_predicts_real_digits_sent_as_pixels_base64_and_upload(client, mnist):
    _, (x_test, y_test) = mnist
    answers = [client.post("/api/v1/predict", json={"pixels": x_test[i].tolist()}).json() for i in range(30)]
    assert sum(a["digit"] == str(y) for a, y in zip(answers, y_test[:30])) >= 28
    first = answers[0]
    assert math.isclose(sum(first["probabilities"]), 1, rel_tol=1e-5) and len(first["top"]) == 3
    assert np.array(first["prepared"]).shape == (28, 28) and first["classes"] == list("0123456789")
    paper = png(255 - x_test[1], 300)  # dark ink on white paper, scaled up
    as_data_url = "data:image/png;base64," + base64.b64encode(paper).decode()
    assert client.post("/api/v1/predict", json={"image": as_data_url}).json()["digit"] == str(y_test[1])
    jpeg = png(255 - x_test[2], 250, "JPEG")
    upload = client.post("/api/v1/predict/upload", files={"file": ("two.jpg", jpeg, "image/jpeg")})
    assert upload.status_code == 200 and upload.json()["digit"] == str(y_test[2])


def test_threshold_per_request_marks_unsure_answers(client, mnist):
    _, (x_test, _) = mnist
    answer = client.post("/api/v1/predict", json={"pixels": x_test[0].tolist(), "threshold": 1.0}).json()
    assert answer["status"] == "unsure" and answer["digit"] is None and "threshold" in answer["message"]


def test_reads_a_whole_number(client, mnist):
    _, (x_test, y_test) = mnist
    picks = [3, 2, 1, 18, 4]
    image = compose_number([x_test[i] for i in picks], np.random.default_rng(0), 0.0)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    reading = client.post("/api/v1/read/upload", files={"file": ("n.png", buf.getvalue(), "image/png")}).json()
    assert reading["text"] == "".join(str(y_test[i]) for i in picks)
    assert len(reading["digits"]) == 5 and all(len(d["box"]) == 4 for d in reading["digits"])
    same = client.post("/api/v1/read", json={"image": base64.b64encode(buf.getvalue()).decode()}).json()
    assert same["text"] == reading["text"]


@pytest.mark.parametrize(("send", "status", "says"), [
    (dict(files={"file": ("a.txt", b"hello", "text/plain")}), 415, "not an image"),
    (dict(files={"file": ("a.png", b"this is text", "image/png")}), 422, "not a PNG, JPEG, GIF, BMP, WebP, TIFF or PGM/PPM image"),
    (dict(files={"file": ("a.png", b"", "image/png")}), 422, "the file is empty"),
    (dict(files={"file": ("bomb.png", header_only_png(40_000, 40_000), "image/png")}), 422, "limit"),
    (dict(content=b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",  # never closed
          headers={"Content-Type": "multipart/form-data; boundary=x"}), 422, ""),
    (dict(content=b"\0" * 5_000_001, headers={"Content-Type": "image/png"}), 413, "over the limit"),
], ids=["text-file", "text-named-png", "empty", "bomb", "malformed-multipart", "oversize"])
def test_hostile_uploads_get_a_clear_4xx(client, send, status, says):
    response = client.post("/api/v1/predict/upload", **send)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"] if isinstance(response.json()["detail"], str) else True


def test_truncated_png_and_blank_drawing_are_explained(client, mnist):
    _, (x_test, _) = mnist
    whole = png(255 - x_test[0], 100)
    truncated = client.post("/api/v1/predict/upload", files={"file": ("cut.png", whole[: len(whole) // 2], "image/png")})
    assert truncated.status_code == 422 and "truncated" in truncated.json()["detail"]
    blank = client.post("/api/v1/predict", json={"pixels": [[0] * 28] * 28})
    assert blank.status_code == 422 and "blank" in blank.json()["detail"]


@pytest.mark.parametrize("body", [
    {}, {"pixels": [[0] * 28] * 27}, {"pixels": [[300] * 28] * 28}, {"image": "not base64!"},
    {"image": "aGVsbG8=", "pixels": [[0] * 28] * 28}, {"image": "aGVsbG8=", "threshold": 2},
])
def test_bad_json_bodies_get_422(client, body):
    response = client.post("/api/v1/predict", json=body)
    assert response.status_code == 422, response.text


def test_a_chunked_body_over_the_limit_is_refused_without_reading_it_all(client):
    sent = 0

    def chunks():  # no Content-Length: the server must count
        nonlocal sent
        for _ in range(100):
            sent += 1_000_000
            yield b"\0" * 1_000_000

    try:
        response = client.post("/api/v1/predict/upload", content=chunks(), headers={"Content-Type": "image/png"})
        assert response.status_code == 413
    except httpx.HTTPError:
        pass  # the server may close the connection while the client is still sending: also a refusal
    assert sent < 100_000_000
    assert client.get("/api/v1/health").status_code == 200


def test_1000_requests_at_16_concurrent_without_an_error(server):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "service_load.py"), "--url", server,
                           "--requests", "1000", "--concurrency", "16", "--kinds", "pixels,png",
                           "--data-dir", str(DATA_DIR)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    said = [{k: r[k] for k in ("kind", "statuses", "failures", "p99_ms", "max_ms")} for r in results]
    assert [r["errors"] for r in results] == [0, 0], said
    assert all(r["accuracy"] > 0.95 for r in results), said


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_no_request_generated_from_the_schema_gets_a_5xx(server, mode):
    """Schemathesis writes requests from the OpenAPI schema: valid ones, and (negative mode) ones that
    break it in every way the schema allows to say. The server must answer each without a 5xx."""
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    seen = Counter()

    @given(case=schema.as_strategy(mode))
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        seen[case.operation.label] += 1
        case.call_and_validate(checks=[not_a_server_error])

    check()
    assert len(seen) >= 4, seen  # the schema's operations were all reached


def test_slow_clients_do_not_disturb_the_others(server):
    """Slowloris: 50 connections trickle a request header a byte at a time; meanwhile 200 ordinary
    requests are answered, each promptly."""
    port = int(server.rsplit(":", 1)[1])
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    header = b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
    stop = threading.Event()

    def trickle():
        for byte in header:
            for s in slow:
                try:
                    s.send(bytes([byte]))
                except OSError:
                    pass  # the server may drop a slow client: that is allowed
            if stop.wait(0.05):
                return

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        digit = [[0] * 28 for _ in range(28)]
        for r in range(8, 20):
            digit[r][14] = 255
        latencies = []
        with httpx.Client(base_url=server, timeout=10) as client:
            for _ in range(200):
                started = time.perf_counter()
                assert client.post("/api/v1/predict", json={"pixels": digit}).status_code == 200
                latencies.append(time.perf_counter() - started)
        assert sorted(latencies)[-1] < 2, "an ordinary request waited behind the slow clients"
    finally:
        stop.set()
        sender.join()
        for s in slow:
            s.close()


def test_a_flood_of_worst_case_reads_leaves_predictions_under_3x_their_idle_latency(server):
    """Issue 22's target: eight clients upload the slowest `read` image known, over and over, while
    one sends ordinary predicts. Rounds alternate idle and flooded (benchmarks/flood.py); the median
    of the flooded/idle ratios stays under 3. Reads shared the predictions' queue: the ratio was 125."""
    from flood import measure

    result = measure(server, rounds=3, attackers=8, count=200)
    assert result["median_ratio"] < 3, result
    assert result["read_statuses"].get("200", 0) > 0, result  # the reads were served, not just refused


def test_memory_stays_flat_over_3000_requests(server_process, mnist):
    """Resident memory after 3,000 requests is within 30 MB of that after 1,000: a leak of 15 kB per
    request would show."""
    from service_load import hammer

    url, process = server_process
    _, (x_test, _) = mnist
    bodies = [{"json": {"pixels": x_test[i].tolist()}} for i in range(1000)]
    # This test is about memory: every answer must be a 200, but a rare connection the client could
    # not complete (status 0) is tolerated here, up to 1%: CI runs on 2 busy cores saw 1 of 9,000
    # once and 3 of the first 1,000 once (not reproduced alone or beside two training runs; the
    # client's exceptions are now in the message). The load test above requires zero errors of any kind.
    def no_http_errors(result):
        dropped = result["statuses"].get(0, 0)
        assert set(result["statuses"]) <= {200, 0} and dropped <= len(bodies) // 100, (result["statuses"], result["failures"])

    no_http_errors(asyncio.run(hammer(url, "pixels", bodies, 16)))
    after_1000 = rss_mb(process.pid)
    for _ in range(2):
        no_http_errors(asyncio.run(hammer(url, "pixels", bodies, 16)))
    after_3000 = rss_mb(process.pid)
    print(f"server RSS after 1,000 requests {after_1000:.1f} MB, after 3,000 {after_3000:.1f} MB")
    assert after_3000 - after_1000 < 30, (after_1000, after_3000)
