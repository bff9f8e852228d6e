"""Reading user images: formats, modes, polarity, lighting, and every kind of bad file."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from digitlab.images.read import ImageError, open_image, to_ink
from digitlab.images.prepare import to_mnist

DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255  # a "1"
DIGIT[6:9, 9:13] = 200


def png(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def two_tone(lower) -> Image.Image:
    """The digit on a transparent background, black above row 12 and `lower` below it."""
    rgb = np.zeros((28, 28, 3), np.uint8)
    rgb[12:] = lower
    return Image.fromarray(np.dstack([rgb, DIGIT]))


def card(corners: bool) -> Image.Image:
    """The dark digit on an opaque light card whose corners are transparent, or which sits on a
    transparent canvas twice its size."""
    rgb = np.repeat((235 - DIGIT.astype(int) * 235 // 255)[:, :, None], 3, axis=2).astype(np.uint8)
    alpha = np.full((28, 28), 255, np.uint8)
    if corners:
        for rows, cols in ((slice(0, 4), slice(0, 4)), (slice(0, 4), slice(-4, None)),
                           (slice(-4, None), slice(0, 4)), (slice(-4, None), slice(-4, None))):
            alpha[rows, cols] = 0
        return Image.fromarray(np.dstack([rgb, alpha]))
    canvas = np.zeros((56, 56, 4), np.uint8)
    canvas[14:42, 14:42] = np.dstack([rgb, alpha])
    return Image.fromarray(canvas)


def stroke_share(ink: np.ndarray) -> float:
    return float((ink > 0.5 * ink.max()).mean())


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.fromarray(DIGIT),  # white on black, like MNIST
        lambda: Image.fromarray(255 - DIGIT),  # black on white
        lambda: Image.fromarray(np.stack([255 - DIGIT, 255 - DIGIT // 2, np.full_like(DIGIT, 255)], -1)),  # RGB
        lambda: Image.fromarray(np.dstack([np.zeros((28, 28, 3), np.uint8), DIGIT])),  # transparent background
        lambda: Image.fromarray(np.dstack([np.full((28, 28, 3), 255, np.uint8), DIGIT])),  # white on transparent
        lambda: two_tone(np.array([0, 160, 0])),  # a stroke in two colours on a transparent background
        lambda: two_tone(np.array([140, 140, 140])),  # a pencil's greys (read as half a digit by one rule tried)
        lambda: card(corners=True),  # an opaque card with transparent rounded corners (the whole card was "ink")
        lambda: card(corners=False),  # the card on a transparent canvas
        lambda: Image.fromarray(255 - DIGIT).convert("P"),  # palette
        lambda: Image.fromarray((255 - DIGIT).astype(np.uint16) * 257),  # 16-bit
    ],
    ids=["mnist", "inverted", "rgb", "rgba", "rgba-white", "two-colour", "pencil", "card-corners", "card-margin",
         "palette", "16-bit"],
)
def test_every_mode_gives_the_same_stroke(make):
    image = Image.open(io.BytesIO(png(make())))
    prepared = to_mnist(to_ink(image))
    reference = to_mnist(to_ink(Image.fromarray(DIGIT)))
    assert prepared.shape == (28, 28) and prepared.dtype == np.float32
    assert np.abs(prepared - reference).mean() < 0.03


def test_uneven_light_is_removed():
    big = np.asarray(Image.fromarray(255 - DIGIT).resize((280, 280)), np.float32)
    shadow = np.linspace(1.0, 0.4, 280, dtype=np.float32)[None, :]
    ink = to_ink(Image.fromarray(np.uint8(big * shadow)))
    prepared = to_mnist(ink)
    reference = to_mnist(to_ink(Image.fromarray(255 - DIGIT).resize((280, 280))))
    assert np.abs(prepared - reference).mean() < 0.05


def test_arrays_and_animated_images():
    assert open_image(DIGIT).size == (28, 28)
    assert open_image(DIGIT.astype(np.float32) / 255).getpixel((13, 10)) == 255
    frames = [Image.fromarray(255 - DIGIT), Image.fromarray(np.full((28, 28), 255, np.uint8))]
    data = png(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert to_mnist(to_ink(open_image(data))).max() > 0.9  # the first frame is read


@pytest.mark.parametrize(
    "payload, phrase",
    [
        (b"", "the file is empty"),
        (b"hello, not an image", "not a PNG, JPEG, GIF, BMP, WebP, TIFF or PGM/PPM image"),
        (png(Image.fromarray(255 - DIGIT))[:60], "damaged or truncated"),
    ],
    ids=["empty", "text", "truncated"],
)
def test_bad_files_get_a_clear_error(tmp_path, payload, phrase):
    path = tmp_path / "bad.png"
    path.write_bytes(payload)
    with pytest.raises(ImageError, match=phrase) as info:
        open_image(path)
    assert str(path) in str(info.value)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with almost no data behind it: a decompression
    bomb's shape, made in no time (Pillow takes seconds to write a real one of 1.6 gigapixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit per pixel, as Image.new("1") saves
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(40_000, 40_000))  # 1.6 gigapixels claimed; decoding would fail on the data
    with pytest.raises(ImageError, match="decompression bomb|more than the limit"):
        open_image(path)
    Image.new("L", (3000, 2000)).save(path)
    with pytest.raises(ImageError, match="3000 x 2000 pixels is more than the limit of 1,000,000"):
        open_image(path, max_pixels=1_000_000)


def test_blank_images_and_odd_arrays():
    with pytest.raises(ImageError, match="blank after thresholding"):
        to_mnist(to_ink(Image.new("L", (200, 200), 255)), name="white.png")
    with pytest.raises(ImageError, match="not an image"):
        open_image(np.zeros((3, 3, 7)))
    with pytest.raises(ImageError, match="NaN"):
        open_image(np.full((5, 5), np.nan))
    with pytest.raises(ImageError, match="no such file"):
        open_image("/nonexistent/x.png")


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 60), st.integers(1, 60))))
def test_prepare_returns_an_mnist_image_or_a_clear_error(array):
    try:
        out = to_mnist(to_ink(open_image(array)))
    except ImageError:
        return
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_an_image_or_an_image_error(blob):
    try:
        to_ink(open_image(blob))
    except ImageError:
        pass


def test_a_cielab_tiff_reads_by_its_lightness():
    """Found by fuzz/run.py: Pillow opens a CIELab TIFF in mode LAB but cannot convert it, and the
    ValueError escaped as a crash (in `digitlab predict`, it ended the whole batch)."""
    path = Path(__file__).parent.parent / "data" / "cielab-one.tif"  # a dark "1" on light paper
    image = open_image(path)
    assert image.mode == "LAB"
    out = to_mnist(to_ink(image, name=path.name), name=path.name)
    assert out.shape == (28, 28) and out[:, 12:16].sum() > 0.8 * out.sum()  # the stroke stays a vertical bar


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "PA", "P", "I;16", "I", "F"])
@pytest.mark.parametrize("size", [(0, 5), (5, 0), (0, 0)])
def test_a_zero_sized_image_is_an_image_error(mode, size):
    """Found by fuzz/run.py: a PIL image 0 pixels wide (Recognizer.predict takes PIL images) crashed
    with NumPy's "zero-size array to reduction operation" in the alpha and 16-bit paths."""
    with pytest.raises(ImageError, match=rf"{size[0]} x {size[1]} pixels; there is nothing to read"):
        to_ink(Image.new(mode, size), name="empty")


def test_modes_pillow_cannot_convert_and_non_finite_pixels_are_image_errors():
    with pytest.raises(ImageError, match="colour mode La"):
        to_ink(Image.new("La", (20, 20)), name="premultiplied")
    floats = np.zeros((20, 20), np.float32)
    floats[3, 3] = np.nan
    with pytest.raises(ImageError, match="NaN or infinity"):
        to_ink(Image.fromarray(floats, mode="F"), name="float")


# ---- issue 22: only the allowed decoders run, on regular files only ----

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n0 0 moveto 28 28 lineto stroke\nshowpage\n"


@pytest.mark.parametrize("name", ["evil.png", "evil.eps", "evil"])
def test_postscript_never_reaches_ghostscript_whatever_the_name(tmp_path, monkeypatch, name):
    """Pillow's EPS reader runs `gs` on PostScript; digitlab never lets it see the file."""
    from PIL import EpsImagePlugin

    def no_ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript was asked to run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", no_ghostscript)
    path = tmp_path / name
    path.write_bytes(EPS)
    with pytest.raises(ImageError, match=r"not a PNG, JPEG.*\(it is a PostScript file\)"):
        open_image(path)
    with pytest.raises(ImageError, match="PostScript"):
        open_image(EPS)  # uploads arrive as bytes


@pytest.mark.parametrize("fmt", ["DDS", "TGA", "ICO", "PCX", "SGI", "IM", "SPIDER"])
def test_formats_outside_the_allow_list_are_refused_before_parsing(fmt):
    image = Image.fromarray(DIGIT).convert("RGB" if fmt in ("DDS", "ICO", "PCX", "SGI") else "L")
    if fmt == "SPIDER":
        image = image.convert("F")
    with pytest.raises(ImageError, match="not a PNG, JPEG, GIF, BMP, WebP, TIFF or PGM/PPM image"):
        open_image(png(image, fmt))


@pytest.mark.parametrize("header", [
    b"DDS |\x00\x00\x00\x07\x10\x00\x00" + bytes(112),            # a DDS header with a bogus pixel format
    b"BLP2\x01\x02\x08\x00" + bytes(140),                           # a BLP texture cut short
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x1c\x00\x00\x00\x1c\x08\x00\x00\x00\x00",  # PNG, no data
])
def test_damaged_files_get_one_line_never_another_exception(header):
    with pytest.raises(ImageError):
        open_image(header)


def test_a_fifo_named_as_an_image_is_refused_at_once(tmp_path):
    import os

    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)  # open() on it would wait forever for a writer
    with pytest.raises(ImageError, match="not a regular file"):
        open_image(fifo)
    with pytest.raises(ImageError, match="is a folder"):
        open_image(tmp_path)


@pytest.mark.parametrize("fmt, kw", [("PNG", {}), ("JPEG", {}), ("GIF", {}), ("BMP", {}), ("WEBP", {"lossless": True}),
                                     ("TIFF", {}), ("PPM", {})])
def test_every_allowed_format_still_opens(fmt, kw):
    assert open_image(png(Image.fromarray(DIGIT), fmt, **kw)).size == (28, 28)
