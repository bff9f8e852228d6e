"""The API application in process (FastAPI's TestClient), with a small untrained model: limits,
error mapping and response shapes. The real server and a trained model: tests/e2e/test_serve.py."""

from __future__ import annotations

import io

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


def test_timed_out_work_keeps_its_worker_so_workers_bound_the_cpu():
    """Issue 22 (3): a request that timed out got its 503, but its thread ran on and its worker slot
    was released, so four slow uploads kept both cores busy past --workers. Now the running work
    keeps its worker until it ends, and work still queued when its request gives up never runs."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from digitlab.recognize import Reading, Recognizer

    running, most, runs = 0, 0, 0
    lock = threading.Lock()

    class Slow(Recognizer):
        def read(self, image, name="image"):
            nonlocal running, most, runs
            with lock:
                running, runs = running + 1, runs + 1
                most = max(most, running)
            time.sleep(3.0)  # far longer than the six requests below take to time out, even on a busy machine
            with lock:
                running -= 1
            return Reading(name, "", [], [])

    class Model:
        input_shape = (None, 28, 28)
        thread_safe = True

    facts = ModelFacts("test", None, "mnist", list("0123456789"), None, None, 0.5, "numpy")
    app = create_app(Slow(Model(), list("0123456789")), facts, Limits(timeout_s=0.2, workers=1))
    with TestClient(app) as c, ThreadPoolExecutor(4) as clients:
        post = lambda _: c.post("/api/v1/read/upload", files={"file": ("a.png", digit_png(), "image/png")})
        started = time.perf_counter()
        codes = [post(0).status_code for _ in range(3)]  # one after another, as a client retrying
        codes += [r.status_code for r in clients.map(post, range(3))]  # and at once
        answered = time.perf_counter() - started
        time.sleep(2.0)  # the one that ran finishes on its worker
    assert codes == [503] * 6 and answered < 2.5  # every client is answered at its timeout, not the read's end
    assert most == 1, "more reads ran at once than --workers"
    assert runs == 1, "reads whose request had given up still ran"
