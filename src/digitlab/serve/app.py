"""The HTTP API and the drawing page: a FastAPI application around one loaded `Recognizer`.

    >>> rec = Recognizer.load("runs/my-run")        # or Recognizer.load(): see digitlab.runs.open_model
    >>> app = create_app(rec, facts=model_facts(rec))
    >>> uvicorn.run(app)                          # or: digitlab serve --model runs/my-run

The model is chosen when the server starts and loaded once; no request can name another file.
Every request is bounded: its body size (checked before it is read in full), its image's pixel
count (checked from the header, before decoding), the time it may take, and how many predictions
run at once. Each violation is a 4xx (or 503) JSON answer `{"detail": "..."}` saying what was
wrong; nothing a client sends can take the server down.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import difflib
import ipaddress
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Annotated

import anyio
import numpy as np
from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from digitlab.errors import ImageError
from digitlab.images.read import open_image
from digitlab.models.numpy_model import NumpyModel
from digitlab.models.shipped import model_name
from digitlab.recognize import Prediction, Reading, Recognizer
from digitlab.runs import METRICS_FILE
from digitlab.serve.middleware import AllowedHosts, BodyLimit, SecurityHeaders
from digitlab.serve.schemas import (
    Guess, Health, ImageBody, PredictResponse, QueryThreshold, ReadDigit, ReadResponse, UploadThreshold,
)

API = "/api/v1"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "image/tiff",
               "image/x-portable-anymap", "application/octet-stream")
# Names clients use for the same types (the decoder allow-list, not the name, decides what is read).
TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
                "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp", "image/tif": "image/tiff",
                "image/x-portable-graymap": "image/x-portable-anymap", "image/x-portable-pixmap": "image/x-portable-anymap",
                "image/x-portable-bitmap": "image/x-portable-anymap"}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def host_names_answered(host: str, address: str | None = None) -> tuple[str, ...] | None:
    """The Host headers a server listening on `host` answers: its loopback names, and the name and
    address served (127.0.0.2 is this machine too), when it is a loopback address; None (every host)
    for an address other machines reach. `address`: the one the socket was bound to, which decides
    where `host` is a name or a spelling of an address ("127.1", this machine's own name)."""
    try:
        loopback = ipaddress.ip_address(address or host).is_loopback
    except ValueError:  # a host name: loopback only as "localhost"
        loopback = host == "localhost"
    if not loopback:
        return None
    # As a Host header carries them: an IPv6 address in brackets ("[::1]:8000"), as the host parser gives it.
    return tuple(dict.fromkeys(f"[{h}]" if ":" in h else h for h in (*LOOPBACK_HOSTS, host, address or host)))


@dataclass(frozen=True)
class Limits:
    """What one request may cost. The defaults suit a laptop; `digitlab serve --help` sets each."""

    max_body_bytes: int = 5_000_000  # a phone photo as JPEG fits; a 40,000 x 40,000 PNG does not
    max_pixels: int = 12_000_000  # well under Pillow's decompression-bomb limit (89 megapixels)
    timeout_s: float = 10.0  # waiting for a worker included
    workers: int = 2  # predictions running at once (the machine's cores)
    read_workers: int = 1  # numbers read at once, on threads of their own: reads cannot hold up predictions
    max_buffered_bytes: int = 20_000_000  # all request bodies held at once (503 beyond): slow uploads pile up
    body_timeout_s: float = 30.0  # to receive a body once the headers are in (408 beyond)


@dataclass(frozen=True)
class ModelFacts:
    """What `GET /api/v1/model` tells a client about the loaded model."""

    name: str
    preset: str | None
    dataset: str
    classes: list[str]
    test_accuracy: float | None
    temperature: float | None
    threshold: float
    backend: str
    shipped: bool = False  # the model shipped with digitlab (`digitlab serve --model RUN` serves one of yours)


def model_facts(recognizer: Recognizer) -> ModelFacts:
    """Facts about the model `Recognizer.load` loaded."""
    run = recognizer.run
    if run is None:
        raise ValueError("model_facts needs a Recognizer made by Recognizer.load (it knows its run)")
    metrics = run.read(METRICS_FILE) or {}
    return ModelFacts(
        name=model_name(run),
        preset=run.preset,
        dataset=run.dataset,
        classes=recognizer.class_names,
        test_accuracy=metrics.get("test_accuracy"),
        temperature=recognizer.temperature,
        threshold=recognizer.threshold,
        backend="numpy" if isinstance(recognizer.model, NumpyModel) else _keras_backend(),
        shipped=run.shipped,
    )


def _keras_backend() -> str:
    import keras

    return keras.backend.backend()


def media_type(content_type: str | None) -> str:
    """'IMAGE/PNG; charset=x' -> 'image/png', with common aliases ('image/jpg') mapped to IMAGE_TYPES'."""
    base = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    return TYPE_ALIASES.get(base, base)


def create_app(recognizer: Recognizer, facts: ModelFacts, limits: Limits = Limits(),
               allowed_hosts: tuple[str, ...] | None = None) -> FastAPI:
    """The FastAPI application serving `recognizer` within `limits`.

    `allowed_hosts`: the Host headers answered (others get 400); a server on a loopback address
    should answer only its own names (LOOPBACK_HOSTS), so that a web page whose domain is made to
    resolve to 127.0.0.1 (DNS rebinding) cannot use it. None answers every host."""
    # Predictions run on exactly `limits.workers` threads, reads of whole numbers on
    # `limits.read_workers` others: a read costs up to a hundred predictions' work, and a flood of
    # them (any web page the user visits can send one) must not queue ahead of predictions. A
    # request that times out gets its 503 at once; work of it still waiting is dropped, and a read
    # already running stops at its deadline (the same moment). So the two pools bound the CPU the
    # server uses, which a pool that abandons timed-out threads (anyio's abandon_on_cancel) does not.
    pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="digitlab-worker")
    read_pool = ThreadPoolExecutor(max_workers=limits.read_workers, thread_name_prefix="digitlab-reader")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        for p in (pool, read_pool):
            p.shutdown(wait=False, cancel_futures=True)

    # /docs from Swagger UI's files installed with fastapi-offline, not FastAPI's default CDN: the
    # page works offline, and a CDN cannot change what runs in it.
    app = FastAPIOffline(
        title="digitlab",
        version="1",
        summary="Recognise handwritten digits and numbers with a trained digitlab model.",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes,
                       max_buffered=max(limits.max_buffered_bytes, limits.max_body_bytes),  # one body always fits
                       timeout_s=limits.body_timeout_s)
    if allowed_hosts is not None:  # inside SecurityHeaders: its 400 has the headers too
        app.add_middleware(AllowedHosts, names=allowed_hosts)
    app.add_middleware(SecurityHeaders)

    async def run(fn, lane: ThreadPoolExecutor = pool):
        """Run blocking work on a thread of `lane`, within the timeout."""
        try:
            with anyio.fail_after(limits.timeout_s):
                # Cancelling the asyncio future cancels the pool's one if it has not started.
                return await asyncio.wrap_future(lane.submit(fn))
        except TimeoutError:
            raise HTTPException(503, f"the server is busy: the request took over {limits.timeout_s:g} s; "
                                     "try again later.") from None
        except ImageError as e:
            raise HTTPException(422, str(e)) from None
        except HTTPException:
            raise
        except Exception:  # noqa: BLE001 -- a bug, not the client's: logged, and answered in JSON with the
            # security headers (Starlette's own 500 is plain text from outside the middleware)
            logging.getLogger("digitlab.serve").exception("internal error answering a request")
            raise HTTPException(500, "internal error: digitlab could not answer this request (the server "
                                     "logged it); please report it with the image that caused it.") from None

    def with_threshold(threshold: float | None, in_url: float | None = None) -> Recognizer:
        """The recognizer with the request's threshold: the body's (or form's), else the URL's, else the server's."""
        threshold = threshold if threshold is not None else in_url
        if threshold is None:
            return recognizer
        other = copy.copy(recognizer)  # shares the model; only the threshold differs
        other.threshold = threshold
        return other

    def decode(body: ImageBody):
        if (body.image is None) == (body.pixels is None):
            raise HTTPException(422, "send exactly one of 'image' (a base64 image file) and 'pixels' (28 x 28 values).")
        if body.pixels is not None:
            return np.asarray(body.pixels, dtype=np.float64).round().astype(np.uint8)
        text = body.image
        if text.startswith("data:"):
            if "," not in text:
                raise HTTPException(422, "'image' is a data URL with no data: data:image/png;base64,<the base64>.")
            text = text.partition(",")[2]
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(422, "'image' is not valid base64.") from None
        return open_image(data, name="image", max_pixels=limits.max_pixels)

    async def known_fields(request: Request) -> None:
        """A misspelt `?thresold=` or form field was ignored, and the server's threshold answered. Only
        near misses are refused: other names (a cache-buster `?_=1`, a form's submit button) are not ours."""
        upload = request.url.path.endswith("/upload")
        for where, names, known in (("query parameter", request.query_params, ["threshold"]),
                                    ("form field", await request.form() if upload else {}, ["file", "threshold"])):
            for name in sorted(set(names) - set(known)):
                if meant := difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.75):
                    raise HTTPException(422, f"{name!r} is not a {where} of this endpoint; did you mean {meant[0]!r}?")

    async def upload(file: UploadFile):
        """Check an upload's type and read its bytes; returns their decoding, to run on a worker."""
        if media_type(file.content_type) not in IMAGE_TYPES:
            raise HTTPException(415, f"a file of type {file.content_type!r} is not an image type read here; send one of "
                                     f"{', '.join(IMAGE_TYPES)}.")
        data = await file.read()
        return lambda: open_image(data, name=file.filename or "upload", max_pixels=limits.max_pixels)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, e: RequestValidationError):
        # FastAPI's own handler echoes the input, and fails (500) when that is bytes that are not
        # UTF-8 (found by fuzz/run.py): say where and what, without the input.
        errors = [{"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
                  for err in e.errors()]
        for err in errors:  # pydantic's words, and what to send instead
            if err["loc"][:1] == ["body"] and err["type"] in ("model_attributes_type", "dict_type", "json_invalid") or (
                    err["loc"] == ["body"] and err["type"] == "missing"):  # not JSON (at a position), or no body
                err["msg"] += (f"; send a JSON object, {{\"image\": \"<base64 of the file>\"}} or {{\"pixels\": [[...28 rows]]}}, "
                               f"as Content-Type: application/json, or upload the file as multipart/form-data to "
                               f"{request.url.path.rstrip('/')}/upload")
            elif err["loc"][:2] == ["body", "file"] and "UploadFile" in err["msg"]:
                err["msg"] = "the field 'file' is not a file: send it as a file part of multipart/form-data, with a filename"
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        if e.status_code == 400 and e.detail == "There was an error parsing the body":  # FastAPI's words, for any
            # parser's error: JSON nested too deep, a number of over 4,300 digits, a damaged multipart form
            kind = media_type(request.headers.get("content-type"))
            why = "a damaged form" if "form" in kind else "not UTF-8 JSON, JSON nested too deep, or a number of over 4,300 digits"
            e = StarletteHTTPException(400, f"the request body could not be parsed as {kind} ({why}); send "
                                            "{\"image\": \"<base64 of the file>\"} or {\"pixels\": [[...28 rows]]} "
                                            "as JSON, or the file as multipart/form-data.")
        return await http_exception_handler(request, e)

    @app.exception_handler(ImageError)
    async def image_error(request: Request, e: ImageError):
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.get(f"{API}/health", tags=["service"])
    def health() -> Health:
        """The server is up and its model is loaded."""
        return Health(status="ok")

    @app.get(f"{API}/model", tags=["service"])
    def model() -> ModelFacts:
        """The loaded model: its run, preset, data set, classes, test accuracy, calibration."""
        return facts

    @app.post(f"{API}/predict", tags=["recognize"], dependencies=[Depends(known_fields)], responses={422: {"description": "Not a readable image."}})
    async def predict(body: ImageBody, threshold: QueryThreshold = None) -> PredictResponse:
        """The digit in one image: its probability, the top 3, all ten probabilities, the image the model saw."""
        rec = with_threshold(body.threshold, threshold)
        return await run(lambda: _prediction(rec.predict(decode(body), keep_prepared=True)[0], rec))

    @app.post(f"{API}/predict/upload", tags=["recognize"], dependencies=[Depends(known_fields)],
              responses={415: {"description": "Not an image type."}, 422: {"description": "Not a readable image."}})
    async def predict_upload(file: Annotated[UploadFile, File(description="An image file.")],
                             threshold: UploadThreshold = None, query: QueryThreshold = None) -> PredictResponse:
        """As `predict`, for an image uploaded as multipart/form-data (field `file`, optional field `threshold`)."""
        image = await upload(file)  # decoded on the worker, in the same run as the prediction
        rec = with_threshold(threshold, query)
        return await run(lambda: _prediction(rec.predict(image(), keep_prepared=True)[0], rec,
                                             file.filename or "upload"))

    @app.post(f"{API}/read", tags=["recognize"], dependencies=[Depends(known_fields)], responses={422: {"description": "Not a readable image."}})
    async def read(body: ImageBody, threshold: QueryThreshold = None) -> ReadResponse:
        """A handwritten number in one image: its text and, per digit, the prediction and its box."""
        rec = with_threshold(body.threshold, threshold)
        deadline = time.monotonic() + limits.timeout_s
        return await run(lambda: _reading(rec.read(decode(body), "image", deadline=deadline), rec), read_pool)

    @app.post(f"{API}/read/upload", tags=["recognize"], dependencies=[Depends(known_fields)],
              responses={415: {"description": "Not an image type."}, 422: {"description": "Not a readable image."}})
    async def read_upload(file: Annotated[UploadFile, File(description="An image file.")],
                          threshold: UploadThreshold = None, query: QueryThreshold = None) -> ReadResponse:
        """As `read`, for an image uploaded as multipart/form-data (field `file`, optional field `threshold`)."""
        image = await upload(file)
        rec = with_threshold(threshold, query)
        deadline = time.monotonic() + limits.timeout_s
        return await run(lambda: _reading(rec.read(image(), file.filename or "upload", deadline=deadline), rec),
                         read_pool)

    web = resources.files("digitlab.serve") / "web"

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(web / "index.html"))

    for route in [r for r in app.routes if getattr(r, "methods", None) == {"GET"}]:  # HEAD, as uptime checks send
        app.add_api_route(route.path, route.endpoint, methods=["HEAD"], include_in_schema=False)  # (no second operationId)

    app.mount("/static", StaticFiles(directory=str(web)), name="static")
    return app


def _prediction(pred: Prediction, recognizer: Recognizer, name: str = "image") -> PredictResponse:
    """The answer to a request for one image, named `name` in an error (an upload's file name, as
    a read of it names it; a blank upload was "image: ...")."""
    if pred.status == "error":  # predict() reports a bad image instead of raising
        raise ImageError(pred.message.replace(pred.source, name, 1))
    return PredictResponse(**_predicted(pred, recognizer))


def _predicted(pred: Prediction, recognizer: Recognizer) -> dict:
    return {
        "status": pred.status,
        "digit": pred.digit,
        "probability": pred.probability,
        "top": [Guess(digit=c, probability=p) for c, p in pred.top],
        "probabilities": [float(v) for v in pred.scores],
        "classes": recognizer.class_names,
        "message": pred.message,
        "prepared": np.rint(np.asarray(pred.prepared) * 255).astype(int).tolist(),
    }


def _reading(reading: Reading, recognizer: Recognizer) -> ReadResponse:
    digits = [ReadDigit(**_predicted(d, recognizer), box=list(map(int, b))) for d, b in zip(reading.digits, reading.boxes)]
    return ReadResponse(text=reading.text, digits=digits)
