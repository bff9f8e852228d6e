"""Property-based fuzz campaigns: every parser and endpoint that reads outside input.

Each campaign feeds generated and mutated inputs to one target. The only outcomes allowed are a
result or a `DigitlabError` (an HTTP 4xx for the endpoints): any other exception, an input that
takes over 2 s, or a memory blow-up (the runner caps the address space) is a failure, which
Hypothesis shrinks to a minimal input and prints. Run them with `python fuzz/run.py`.
"""

from __future__ import annotations

import gzip
import io
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from hypothesis import strategies as st

from digitlab.errors import DigitlabError

IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


@dataclass(frozen=True)
class Campaign:
    name: str
    strategy: st.SearchStrategy
    target: Callable  # raises only DigitlabError on bad input


# ---- mutations shared by the binary formats ----

@st.composite
def mutated(draw, base: bytes) -> bytes:
    """`base` truncated, with bytes flipped, inserted or deleted, or left alone."""
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "header"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:  # the first 32 bytes hold the headers that say how much to allocate
            data[min(at, 31) % len(data)] = draw(st.integers(0, 255))
    return bytes(data)


# ---- IDX ----

@st.composite
def idx_files(draw) -> bytes:
    code = draw(st.sampled_from(sorted(IDX_TYPES)))
    ndim = draw(st.integers(0, 4))
    real = draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim))
    claimed = [draw(st.sampled_from([d, d, d, 0, 1, 2**31 - 1, 2**32 - 1, 65536])) for d in real]
    body = np.zeros(int(np.prod(real)) if real else 1, IDX_TYPES[code]).tobytes()
    raw = bytes([0, 0, code, ndim]) + b"".join(struct.pack(">I", d) for d in claimed) + body
    raw = draw(mutated(raw))
    return gzip.compress(raw, mtime=0) if draw(st.booleans()) else raw


def read_idx_bytes(data: bytes) -> None:
    from digitlab.data.idx import read_idx

    read_idx(data)  # the public default limit (1 GiB): memory is bounded by what the input holds


# ---- images and MNIST-style preparation ----

@st.composite
def image_files(draw) -> bytes:
    from PIL import Image

    fmt = draw(st.sampled_from(IMAGE_FORMATS))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I;16", "LA", "I", "F", "CMYK", "YCbCr", "LAB"]))
    if fmt in ("JPEG",) and mode not in ("L", "RGB"):
        mode = "L"
    if fmt == "BMP" and mode in ("I;16", "LA"):
        mode = "RGB"
    if fmt in ("GIF", "WEBP") and mode in ("I;16", "LA"):
        mode = "RGBA" if fmt == "WEBP" else "P"
    if mode == "LAB":  # only TIFF stores it; converting it for another format gave different bytes from run to run
        fmt = "TIFF"
    shape = draw(st.sampled_from([(1, 1), (28, 28), (1, 100_000), (100_000, 1), (3, 200), (64, 64), (0, 0)]))
    width, height = shape if shape != (0, 0) else (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    if draw(st.booleans()):  # a stroke on a plain background, more like a digit
        pixels[:] = 255
        pixels[height // 4 : 3 * height // 4 + 1, width // 2 : width // 2 + max(1, width // 8)] = 0
    if mode == "I;16":  # 16-bit grayscale
        image = Image.frombytes("I;16", (width, height), (pixels.astype("<u2") * 257).tobytes())
    elif mode == "LAB":  # CIELab, which TIFF stores; Pillow cannot convert to it
        image = Image.frombytes("LAB", (width, height), np.stack([pixels, pixels // 2, pixels // 3], -1).tobytes())
    else:
        image = Image.fromarray(pixels).convert(mode)
    buf = io.BytesIO()
    try:
        if fmt == "GIF" and draw(st.booleans()):  # animated
            image.convert("P").save(buf, "GIF", save_all=True, append_images=[image.convert("P")] * 2)
        else:
            image.save(buf, fmt)
    except (OSError, ValueError, KeyError, OverflowError):  # a mode or size this format cannot store: PNG
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "PNG")
    data = buf.getvalue()
    return draw(mutated(data)) if draw(st.booleans()) else data


@st.composite
def bomb_headers(draw) -> bytes:
    """A PNG, GIF or BMP header claiming a huge or a zero-sized image, with almost no data behind it."""
    import zlib

    width, height = draw(st.sampled_from([(40_000, 40_000), (2**31 - 1, 1), (1, 2**31 - 1), (100_000, 100_000),
                                          (0, 0), (0, 28), (28, 0), (65_535, 65_535)]))
    fmt = draw(st.sampled_from(["PNG", "GIF", "BMP"]))
    if fmt == "GIF":  # sizes are 16-bit: a logical screen and one frame of that size, one LZW code
        width, height = min(width, 65_535), min(height, 65_535)
        return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b","
                + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00;")
    if fmt == "BMP":  # 24-bit, no data behind the header
        width, height = min(width, 2**31 - 1), min(height, 2**31 - 1)
        return (b"BM" + struct.pack("<IHHI", 54, 0, 0, 54)
                + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@st.composite
def pil_images(draw):
    """A PIL image as a caller hands it to Recognizer.predict: any mode, sizes down to 0 x 0."""
    from PIL import Image

    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "PA", "1", "I;16", "I;16B", "I", "F", "LA", "La",
                                 "RGBa", "CMYK", "YCbCr", "LAB", "HSV"]))
    size = (draw(st.integers(0, 40)), draw(st.integers(0, 40)))
    base = Image.new("L", size, draw(st.integers(0, 255)))
    base.paste(draw(st.integers(0, 255)), (size[0] // 3, 0, size[0] // 2 + 1, size[1]))  # a stroke
    if mode == "LAB":
        return Image.merge("LAB", (base, base, base))
    try:
        return base.convert(mode)
    except ValueError:  # a conversion Pillow lacks: a blank image of that mode
        return Image.new(mode, size)


def prepare_image_bytes(data) -> None:
    from digitlab.images.read import open_image, to_ink
    from digitlab.images.prepare import to_mnist

    result = to_mnist(to_ink(open_image(data, name="fuzz"), name="fuzz"), name="fuzz")
    assert result.shape == (28, 28) and np.isfinite(result).all(), "prepared image must be 28x28 and finite"


# ---- every decoder Pillow has: only the allowed ones may ever produce an image ----

# Openings of formats Pillow reads but cannot write, so that their plugins' magic is matched too.
READ_ONLY_SEEDS = {
    "PSD": b"8BPS\x00\x01" + bytes(6) + b"\x00\x01\x00\x00\x00\x1c\x00\x00\x00\x1c\x00\x08\x00\x01" + bytes(64),
    "XPM": b'/* XPM */\nstatic char *x[] = {\n"2 2 1 1",\n"a c #000000",\n"aa",\n"aa"};\n',
    "SUN": b"\x59\xa6\x6a\x95" + (28).to_bytes(4, "big") * 2 + (8).to_bytes(4, "big") + bytes(16) + bytes(784),
    "FITS": b"SIMPLE  =                    T" + b" " * 50 + b"BITPIX  =                    8" + b" " * 50 + bytes(2720),
    "GBR": (28 + 28).to_bytes(4, "big") + (1).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2 + (1).to_bytes(4, "big") * 2
           + b"GIMP" + bytes(100),
    "PCD": bytes(2048) + b"PCD_IPI" + bytes(4096),
    "FTEX": b"FTEX" + bytes(64),
    "MCIDAS": bytes(4) + (4).to_bytes(4, "big") + bytes(1024),
}


def _writable_formats() -> tuple[str, ...]:
    from PIL import Image

    Image.init()
    return tuple(sorted(f for f in Image.SAVE if f not in ("PDF", "PALM", "BUFR", "GRIB", "HDF5", "WMF", "MPO")))


@st.composite
def any_format_files(draw) -> bytes:
    """A small image saved in any format Pillow writes (or a read-only format's opening), mutated."""
    from PIL import Image

    formats = _writable_formats()
    fmt = draw(st.sampled_from(formats + tuple(READ_ONLY_SEEDS)))
    if fmt in READ_ONLY_SEEDS:
        return draw(mutated(READ_ONLY_SEEDS[fmt]))
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    image = Image.new("RGB", size, (draw(st.integers(0, 255)), 0, 0))
    for candidate in (image, image.convert("RGBA"), image.convert("L"), image.convert("P"), image.convert("1"),
                      image.resize((32, 32)), image.resize((32, 32)).convert("P")):
        buf = io.BytesIO()
        try:  # a mode or size the format's writer does not take: the next one
            candidate.save(buf, fmt)
            return draw(mutated(buf.getvalue()))
        except Exception:  # noqa: BLE001 -- the writers raise OSError, ValueError, KeyError, TypeError...
            continue
    return draw(mutated(fmt.encode() + bytes(64)))


def open_only_allowed_decoders(data) -> None:
    """open_image may return an image only of an allowed format; Ghostscript must never be asked."""
    from PIL import EpsImagePlugin

    from digitlab.images.read import FORMATS, open_image

    def no_ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript was asked to run")

    EpsImagePlugin.Ghostscript = no_ghostscript
    image = open_image(data, name="fuzz")
    assert image.format in FORMATS, f"a {image.format} decoder ran"


# ---- CSV (Kaggle layout) and class folders ----

HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))


@st.composite
def csv_texts(draw) -> str:
    good = "3," + ",".join(["0"] * 784)
    rows = draw(st.lists(st.one_of(
        st.just(good),
        st.builds(lambda s: good[: len(good) // 2] + s, st.text(alphabet="0123456789,.-+eE x\"\r", max_size=30)),
        st.text(alphabet="0123456789,.-+eEnaif \"\r\t", max_size=80),
        st.builds(lambda v: f"{v}," + ",".join(["0"] * 784), st.sampled_from(["-1", "1e3", "nan", "inf", "2.5", "", "٣"])),
    ), max_size=4))
    header = draw(st.sampled_from([HEADER, HEADER.partition(",")[2], "label", "", "label,pixel0"]))
    return "\n".join([header, *rows])


def read_csv_text(text: str) -> None:
    from digitlab.data.userdata import read_csv

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.csv"
        path.write_text(text, encoding="utf-8")
        read_csv(path)


@st.composite
def class_folders(draw) -> list[tuple[str, str, bytes]]:
    entries = draw(st.lists(st.tuples(st.sampled_from(["0", "1", "seven", ".hidden"]),
                                      st.sampled_from(["a.png", "b.jpg", "c.txt", "d.gif"]),
                                      st.one_of(image_files(), st.binary(max_size=64))), min_size=1, max_size=3))
    return entries


def load_class_folders(entries) -> None:
    from digitlab.data.userdata import load_dataset

    with tempfile.TemporaryDirectory() as folder:
        for k, (cls, name, data) in enumerate(entries):
            (Path(folder) / cls).mkdir(exist_ok=True)
            (Path(folder) / cls / f"{k}-{name}").write_bytes(data)
        load_dataset(folder)


def campaigns() -> dict[str, Campaign]:
    return {
        "idx": Campaign("idx", st.one_of(idx_files(), st.binary(max_size=64)), read_idx_bytes),
        "images": Campaign("images", st.one_of(image_files(), bomb_headers(), pil_images(), st.binary(max_size=64)),
                           prepare_image_bytes),
        "decoders": Campaign("decoders", any_format_files(), open_only_allowed_decoders),
        "csv": Campaign("csv", csv_texts(), read_csv_text),
        "folders": Campaign("folders", class_folders(), load_class_folders),
    }


ALLOWED = (DigitlabError,)


# ---- the HTTP endpoints, in process, with a small model ----

@st.composite
def http_requests(draw) -> tuple[str, dict]:
    import base64

    kind = draw(st.sampled_from(["upload", "json-image", "json-pixels", "json-junk", "raw"]))
    path = draw(st.sampled_from(["/api/v1/predict", "/api/v1/read"]))
    if kind == "upload":
        data = draw(st.one_of(image_files(), bomb_headers(), st.binary(max_size=64)))
        ctype = draw(st.sampled_from(["image/png", "image/jpeg", "text/plain", "application/octet-stream", ""]))
        return path + "/upload", {"files": {"file": ("f", data, ctype)}}
    if kind == "json-image":
        data = draw(st.one_of(image_files(), st.binary(max_size=64)))
        text = base64.b64encode(data).decode()
        return path, {"json": {"image": draw(st.sampled_from(["", "data:image/png;base64,"])) + draw(mutated(text.encode())).decode("latin-1")}}
    if kind == "json-pixels":
        rows = draw(st.integers(0, 30))
        value = draw(st.one_of(st.integers(-5, 300), st.floats(allow_nan=False, allow_infinity=False)))
        return path, {"json": {"pixels": [[value] * draw(st.integers(27, 29)) for _ in range(rows)],
                               "threshold": draw(st.one_of(st.none(), st.floats(-1, 2)))}}
    if kind == "json-junk":
        return path, {"json": draw(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                                                lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                                                max_leaves=8))}
    return path, {"content": draw(st.binary(max_size=256)), "headers": {"Content-Type": draw(st.sampled_from(
        ["application/json", "multipart/form-data; boundary=x", "multipart/form-data", "text/plain"]))}}


def http_client():
    """A TestClient of the API around a small untrained MLP (the model's answers do not matter here)."""
    from fastapi.testclient import TestClient

    from digitlab.serve.app import Limits, ModelFacts, create_app
    from digitlab.models.numpy_model import NumpyModel
    from digitlab.recognize import Recognizer

    rng = np.random.default_rng(0)
    model = NumpyModel([{"kind": "dense", "activation": "relu", "kernel": rng.normal(0, 0.05, (784, 32)).astype(np.float32),
                         "bias": np.zeros(32, np.float32)},
                        {"kind": "dense", "activation": "softmax", "kernel": rng.normal(0, 0.2, (32, 10)).astype(np.float32),
                         "bias": np.zeros(10, np.float32)}], (None, 784))
    recognizer = Recognizer(model, list("0123456789"))
    facts = ModelFacts("fuzz", None, "mnist", list("0123456789"), None, None, 0.5, "numpy")
    return TestClient(create_app(recognizer, facts, Limits(max_body_bytes=200_000, max_pixels=1_000_000)))


def http_target(client):
    def post(request) -> None:
        path, kwargs = request
        response = client.post(path, **kwargs)
        assert response.status_code < 500, (response.status_code, response.text[:300])
    return post
