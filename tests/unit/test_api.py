"""The API application in process (FastAPI's TestClient), with a small untrained model: limits,
error mapping and response shapes. The real server and a trained model: tests/e2e/test_serve.py."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitlab.serve.app import Limits, ModelFacts, create_app


@pytest.fixture(scope="module")
def client():
    from digitlab.models.backend import select_backend

    select_backend()
    import keras

    from digitlab.recognize import Recognizer

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    recognizer = Recognizer(model, list("0123456789"))
    facts = ModelFacts("test", None, "mnist", list("0123456789"), None, None, 0.5, "jax")
    app = create_app(recognizer, facts, Limits(max_body_bytes=50_000, max_pixels=10_000))
    with TestClient(app) as c:
        yield c


def digit_png(size: int = 60) -> bytes:
    image = np.full((size, size), 255, np.uint8)
    image[size // 5 : -size // 5, size // 2 - 3 : size // 2 + 3] = 0  # a "1"
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def test_predict_answers_with_every_field(client):
    body = client.post("/api/v1/predict/upload", files={"file": ("one.png", digit_png(), "image/png")}).json()
    assert set(body) == {"status", "digit", "probability", "top", "probabilities", "classes", "message", "prepared"}
    assert len(body["probabilities"]) == 10 and np.array(body["prepared"]).shape == (28, 28)
    assert abs(sum(body["probabilities"]) - 1) < 1e-5


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(client):
    response = client.post("/api/v1/predict/upload", content=b"\0" * 50_001, headers={"Content-Type": "image/png"})
    assert response.status_code == 413 and "50,000 bytes" in response.json()["detail"]


def test_a_chunked_body_is_counted_as_it_arrives(client):
    def chunks():
        for _ in range(10):
            yield b"\0" * 10_000

    response = client.post("/api/v1/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_body_within_the_limit_reaches_the_application(client):
    response = client.post("/api/v1/predict", content=b"{" + b" " * 40_000, headers={"Content-Type": "application/json"})
    assert response.status_code == 422  # refused by JSON parsing, not by the size limit


def test_the_pixel_limit_is_the_servers_not_pillows(client):
    response = client.post("/api/v1/predict/upload", files={"file": ("big.png", digit_png(101), "image/png")})
    assert response.status_code == 422 and "10,000" in response.json()["detail"]


def test_an_image_with_no_ink_is_422_not_500(client):
    white = io.BytesIO()
    Image.new("L", (40, 40), 255).save(white, "PNG")
    response = client.post("/api/v1/read/upload", files={"file": ("white.png", white.getvalue(), "image/png")})
    assert response.status_code == 422 and "blank" in response.json()["detail"]
    # named by its file, as a read of it is (it was "image: ..."; the README walkthrough of 2026-12-07)
    response = client.post("/api/v1/predict/upload", files={"file": ("white.png", white.getvalue(), "image/png")})
    assert response.status_code == 422 and response.json()["detail"].startswith("white.png: the image is blank")


def test_the_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_a_body_that_is_not_utf8_is_a_422_not_a_500(client):
    """Found by fuzz/run.py: FastAPI's validation error echoed the raw bytes and failed to encode them."""
    response = client.post("/api/v1/predict", content=b"\x80\x81", headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422)
    # the JSON endpoint sent a body that claims to be a form and is not UTF-8 (the fuzzer's find)
    response = client.post("/api/v1/predict", content=b"\x80", headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body"]


class SlowReader:
    """A recognizer whose reads take `seconds` and count how many ran, and at most at once; its
    predictions are instant (a uniform answer)."""

    input_shape = (None, 28, 28)
    thread_safe = True

    def __init__(self, seconds: float):
        import threading

        from digitlab.recognize import Recognizer

        self.seconds, self.running, self.most, self.runs = seconds, 0, 0, 0
        self.lock = threading.Lock()
        outer = self

        class Slow(Recognizer):
            def read(self, image, name="image", *, deadline=None):
                import time

                from digitlab.recognize import Reading

                with outer.lock:
                    outer.running, outer.runs = outer.running + 1, outer.runs + 1
                    outer.most = max(outer.most, outer.running)
                time.sleep(outer.seconds)
                with outer.lock:
                    outer.running -= 1
                return Reading(name, "", [], [])

        self.recognizer = Slow(self, list("0123456789"))

    def predict(self, x, batch_size=None, verbose=0):
        return np.full((len(x), 10), 0.1, np.float32)


def slow_app(reader: SlowReader, limits: Limits):
    facts = ModelFacts("test", None, "mnist", list("0123456789"), None, None, 0.5, "numpy")
    return create_app(reader.recognizer, facts, limits)


def test_timed_out_work_keeps_its_worker_so_workers_bound_the_cpu():
    """Issue 22 (3): a request that timed out got its 503, but its thread ran on and its worker slot
    was released, so four slow uploads kept both cores busy past --workers. Now the running work
    keeps its worker until it ends, and work still queued when its request gives up never runs."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    # each read far longer than the six requests below take to time out, even on a busy machine
    reader = SlowReader(3.0)
    with TestClient(slow_app(reader, Limits(timeout_s=0.2, read_workers=1))) as c, ThreadPoolExecutor(4) as clients:
        post = lambda _: c.post("/api/v1/read/upload", files={"file": ("a.png", digit_png(), "image/png")})
        started = time.perf_counter()
        codes = [post(0).status_code for _ in range(3)]  # one after another, as a client retrying
        codes += [r.status_code for r in clients.map(post, range(3))]  # and at once
        answered = time.perf_counter() - started
        time.sleep(2.0)  # the one that ran finishes on its worker
    assert codes == [503] * 6 and answered < 2.5  # every client is answered at its timeout, not the read's end
    assert reader.most == 1, "more reads ran at once than --read-workers"
    assert reader.runs == 1, "reads whose request had given up still ran"


def test_reads_have_their_own_workers_so_a_flood_of_them_does_not_hold_up_predictions():
    """Issue 22: reads and predictions shared one queue, so a flood of slow reads (any web page can
    send them) made every predict wait behind it: 0.5 s instead of 4 ms (benchmarks/flood.py)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    reader = SlowReader(1.0)
    pixels = {"pixels": [[0] * 28 for _ in range(27)] + [[255] * 28]}
    with TestClient(slow_app(reader, Limits(timeout_s=30, workers=1, read_workers=1))) as c, \
            ThreadPoolExecutor(6) as clients:
        reads = [clients.submit(c.post, "/api/v1/read/upload", files={"file": ("a.png", digit_png(), "image/png")})
                 for _ in range(6)]  # six seconds of reads queued
        while reader.runs == 0:
            time.sleep(0.01)
        started = time.perf_counter()
        for _ in range(5):
            assert c.post("/api/v1/predict", json=pixels).status_code == 200
        waited = time.perf_counter() - started
        assert reader.runs == 1, "the predictions were answered after a read, not beside it"
        assert [r.result().status_code for r in reads] == [200] * 6
    assert waited < 1.0 and reader.most == 1


def test_every_answer_carries_nosniff_and_the_page_a_content_security_policy(client):
    page, docs = client.get("/"), client.get("/docs")
    for response in (page, docs, client.get("/api/v1/health")):
        assert response.headers["x-content-type-options"] == "nosniff" and response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline';" in docs.headers["content-security-policy"]  # Swagger UI's start


def test_the_api_documentation_needs_no_network():
    """Issue 22 (14): /docs loaded Swagger UI from a CDN: blank offline, and code from elsewhere."""
    from fastapi.testclient import TestClient as Client

    from digitlab.recognize import Recognizer

    class Model:
        input_shape = (None, 28, 28)
        thread_safe = True

    facts = ModelFacts("test", None, "mnist", list("0123456789"), None, None, 0.5, "numpy")
    with Client(create_app(Recognizer(Model(), list("0123456789")), facts)) as c:
        page = c.get("/docs").text
        assert "cdn." not in page and "https://" not in page.replace("https://github.com", "")
        for asset in re.findall(r'(?:src|href)="([^"]+)"', page):
            assert asset.startswith("/") and c.get(asset).status_code == 200, asset
        assert c.get("/openapi.json").status_code == 200


def test_a_loopback_server_answers_only_its_own_host_names():
    """DNS rebinding: a page whose domain resolves to 127.0.0.1 sends its own name as Host."""
    from digitlab.recognize import Recognizer
    from digitlab.serve.app import LOOPBACK_HOSTS

    class Model:
        input_shape = (None, 28, 28)
        thread_safe = True

    facts = ModelFacts("test", None, "mnist", list("0123456789"), None, None, 0.5, "numpy")
    app = create_app(Recognizer(Model(), list("0123456789")), facts, allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/v1/health").status_code == 200
        assert c.get("/api/v1/health", headers={"Host": "localhost:8000"}).status_code == 200
        assert c.get("/api/v1/health", headers={"Host": "attacker.example"}).status_code == 400


@pytest.mark.parametrize("content_type", ["image/png; charset=binary", "IMAGE/PNG", "image/jpg", "image/x-portable-graymap"])
def test_common_spellings_of_image_types_are_accepted(client, content_type):
    response = client.post("/api/v1/predict/upload", files={"file": ("one.png", digit_png(), content_type)})
    assert response.status_code == 200, response.text


def test_serve_binds_first_so_a_taken_port_or_a_bad_host_is_one_line():
    import socket

    from digitlab.cli.runs import listening_socket
    from digitlab.errors import ServeError

    first = listening_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    assert port > 0  # --port 0: the real port is known before "Serving ... on" is printed
    with first, pytest.raises(ServeError, match=f"port {port} on 127.0.0.1 is already in use"):
        listening_socket("127.0.0.1", port)
    with pytest.raises(ServeError, match='--host "no.such.host.invalid" is not an address of this machine'):
        listening_socket("no.such.host.invalid", 0)
    assert isinstance(first, socket.socket)


def test_the_served_socket_sends_each_response_without_waiting_for_an_ack():
    """A response's body must not wait behind its headers for the client's delayed ACK (40 ms on
    Linux): asyncio turns Nagle's algorithm off only on sockets whose protocol is IPPROTO_TCP,
    and a socket from socket.create_server has protocol 0. Found by benchmarks/flood.py: every
    request took 44 ms, a predict's own work 2 ms."""
    import asyncio
    import socket

    from digitlab.cli.runs import listening_socket

    async def accepted_nodelay() -> int:
        seen = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                seen.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        server = await asyncio.get_running_loop().create_server(Probe, sock=listening_socket("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            value = await asyncio.wait_for(seen, 10)
            writer.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0


def test_unfinished_uploads_hold_neither_memory_nor_the_connection_for_long():
    """Issue 22 (12): forty unfinished 5 MB uploads held ~200 MB with no timeout. Bodies in progress
    now share one budget (503 beyond it) and must arrive within the body timeout (408)."""
    import anyio

    from digitlab.serve.middleware import BodyLimit

    async def app(scope, receive, send):
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(message["body"])).encode()})

    limit = BodyLimit(app, max_bytes=1000, max_buffered=1500, timeout_s=0.3)

    def trickle(chunks, then_wait=False):
        queue = list(chunks)

        async def receive():
            if queue:
                return {"type": "http.request", "body": queue.pop(0), "more_body": bool(queue) or then_wait}
            await anyio.sleep(60)  # a client that never sends the rest

        return receive

    async def request(receive, client="10.0.0.1"):
        sent = []

        async def send(message):
            sent.append(message)

        await limit({"type": "http", "headers": [], "method": "POST", "path": "/", "client": (client, 5000)}, receive, send)
        return next(m["status"] for m in sent if m["type"] == "http.response.start"), sent[-1].get("body", b"")

    async def scenario():
        results = {}

        async def store(key, receive, client="10.0.0.1"):
            results[key] = await request(receive, client)

        async with anyio.create_task_group() as tg:
            tg.start_soon(store, "stalled", trickle([b"x" * 900], then_wait=True))  # holds 900 bytes, then stops
            await anyio.sleep(0.05)
            tg.start_soon(store, "other", trickle([b"w" * 500], then_wait=True), "10.0.0.2")  # 1,400 held
            await anyio.sleep(0.05)
            tg.start_soon(store, "second", trickle([b"y" * 700]), "10.0.0.3")  # 1,400 + 700 > 1,500
        results["after"] = await request(trickle([b"z" * 700]))  # the stalled ones were cut off: room again
        return results

    results = anyio.run(scenario)
    assert results["stalled"][0] == 408 and b"did not arrive within 0.3 s" in results["stalled"][1]
    assert results["second"][0] == 503 and b"the server is receiving too many uploads at once" in results["second"][1]
    assert results["after"] == (200, b"700") and limit.buffered == 0 and limit.by_client == {}


def test_one_client_cannot_hold_every_upload_slot():
    """The review of 2026-12-07: four slow 5 MB uploads from one address held the whole 20 MB for
    bodies, and every other client's upload got 503 for 30 s. One address now holds at most half
    of it; another client's upload goes through meanwhile."""
    import anyio

    from digitlab.serve.middleware import BodyLimit

    async def app(scope, receive, send):
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(message["body"])).encode()})

    limit = BodyLimit(app, max_bytes=1000, max_buffered=4000, timeout_s=0.5)

    async def post(client, chunks, stall=False):
        queue, sent = list(chunks), []

        async def receive():
            if queue:
                return {"type": "http.request", "body": queue.pop(0), "more_body": bool(queue) or stall}
            await anyio.sleep(60)

        async def send(message):
            sent.append(message)

        await limit({"type": "http", "headers": [], "method": "POST", "path": "/", "client": (client, 1)}, receive, send)
        return next(m["status"] for m in sent if m["type"] == "http.response.start"), sent[-1].get("body", b"")

    async def scenario():
        results = []

        async def store(*args):
            results.append(await post(*args))

        async with anyio.create_task_group() as tg:
            for _ in range(4):  # an attacker's four slow uploads of the largest body
                tg.start_soon(store, "10.6.6.6", [b"x" * 999], True)
                await anyio.sleep(0.02)
            await anyio.sleep(0.05)
            polite = await post("10.0.0.7", [b"p" * 800])
        return results, polite

    results, polite = anyio.run(scenario)
    assert polite == (200, b"800")
    assert sorted(status for status, _ in results) == [408, 408, 503, 503]
    assert all(b"this client is sending too many uploads at once" in body for status, body in results if status == 503)
