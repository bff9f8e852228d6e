"""Read user images safely, with limits, into an ink map in [0, 1].

"Ink" is what the pen left: 1 where the stroke is, 0 on the paper, whatever the image's colours,
transparency or lighting. Hostile files (a 40,000 x 40,000 PNG, a truncated file, text named
.png, a FIFO named as an image) get an `ImageError` naming the file before anything large is
decoded. Only the decoders of FORMATS are ever run, whatever a file is named: Pillow knows dozens
more, and some hand the bytes to other programs (its EPS reader runs Ghostscript).
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitlab.errors import ImageError
from digitlab.images.components import zoom_linear

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")  # Pillow's decoders for those (PPM reads PGM too)
MAX_PIXELS = 40_000_000  # a 40-megapixel phone photo passes; decompression bombs do not
MAX_FILE_BYTES = 256_000_000  # read from an open file object at most (a path's file is only read as decoded)
WORK_SIDE = 512  # larger images are reduced to this longest side before any analysis
CARD_FILL = 0.8  # an opaque part filling this share of its box, with contrast in it, is a card, not a stroke
ORIENTATION = 0x0112  # the EXIF tag that says how a camera held the picture (2-8: turned or mirrored)


@dataclass(frozen=True)
class Unreadable(os.PathLike):
    """A path already known not to give an image (a folder that cannot be listed, or holds no
    image): `open_image` raises its message, so that a batch answers it with an error of its own
    and goes on with the others."""

    path: str
    message: str

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


def open_image(source, *, name: str | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A decoded Pillow image from a path, bytes, a PIL image or an array, within the pixel limit."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, Unreadable):
        raise ImageError(source.message)
    if isinstance(source, (np.ndarray, np.generic)):
        return Image.fromarray(_array_to_uint8(source, name))
    if isinstance(source, memoryview):
        source = source.tobytes()
    if isinstance(source, io.TextIOBase):
        raise ImageError(f"{name or 'file'}: the file is open as text; open it in binary mode ('rb').")
    if isinstance(source, io.IOBase):  # a file opened in binary mode, an io.BytesIO: read from where it is
        at = source.tell() if source.seekable() else None
        source = source.read(MAX_FILE_BYTES + 1)
        if not source:
            raise ImageError(f"{name or 'file'}: " + ("the file is empty." if at == 0 else
                                                      "nothing left to read (was it read to its end already? seek(0) first)."))
        if len(source) > MAX_FILE_BYTES:
            raise ImageError(f"{name or 'file'}: more than {MAX_FILE_BYTES:,} bytes; no image digitlab reads is that large.")
    if not isinstance(source, (str, os.PathLike, bytes, bytearray)):
        raise ImageError(f"{name or type(source).__name__}: {type(source).__name__} is not an image; give a file's "
                         "path, its bytes, a PIL image or an array.")
    label = name or ("<bytes>" if isinstance(source, (bytes, bytearray)) else str(source))
    try:
        stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else _open_regular_file(source, label)
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file.") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: is a folder, not an image.") from None
    except OSError as e:
        raise ImageError(f"{label}: cannot open ({e.strerror or e}).") from None
    with stream:
        if (len(source) if isinstance(source, (bytes, bytearray)) else os.fstat(stream.fileno()).st_size) == 0:
            raise ImageError(f"{label}: the file is empty.")
        header = stream.read(16)
        stream.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow's "Corrupt EXIF data" and the like: the file reads, or gets its line
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(stream, formats=FORMATS)
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{label}: {width} x {height} pixels is more than the limit of {max_pixels:,}; "
                        "scale the image down first."
                    )
                image.load()
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # over Pillow's own limit (89
            # million pixels), so over ours too: said in our words, with our limit, not Pillow's
            size = re.search(r"\((\d+) pixels\)", str(e))
            raise ImageError(f"{label}: {f'{int(size[1]):,} pixels' if size else 'the image'} is more than the limit of "
                             f"{min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels):,}; scale the image down first.") from None
        except UnidentifiedImageError:
            if _known_format(header):  # its decoder refused its header: a damaged file of a format read here
                raise ImageError(f"{label}: the image is damaged or truncated (a {_known_format(header)} file whose "
                                 "header cannot be read).") from None
            raise ImageError(f"{label}: not a PNG, JPEG, GIF, BMP, WebP, TIFF or PGM/PPM image{_other_format(header)}; "
                             "save it as PNG or JPEG.") from None
        except Exception as e:  # noqa: BLE001 -- any decoder's failure on a damaged file (Pillow raises
            # OSError, SyntaxError, ValueError, and for some formats NotImplementedError or AttributeError)
            raise ImageError(f"{label}: the image is damaged or truncated ({type(e).__name__}: {e}).") from None
    return image


def orientation(image: Image.Image) -> int:
    """The image's EXIF orientation, 1 (as stored) to 8; 1 where its EXIF block is unreadable: the
    block is metadata beside sound pixels, which are read as stored, as a browser shows them."""
    try:
        value = image.getexif().get(ORIENTATION, 1)
    except Exception:  # noqa: BLE001 -- Pillow's EXIF parser raises SyntaxError, struct.error, ValueError...
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(image: Image.Image) -> Image.Image:
    """The image as a viewer shows it: turned by its EXIF orientation (`ImageOps.exif_transpose`),
    as stored where the EXIF block is unreadable."""
    if orientation(image) == 1:
        return image.copy()  # what exif_transpose gives an upright image, without its parsing the block again
    return ImageOps.exif_transpose(image)


def _open_regular_file(path, label: str):
    """Open `path` for reading only if it is a regular file: a FIFO or a device would block or never end.

    Opened without blocking first (a FIFO's open waits for a writer), checked, then read normally."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise IsADirectoryError(path)
            raise ImageError(f"{label}: not a regular file (a pipe, socket or device); save the image as a file.")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _known_format(header: bytes) -> str | None:
    """The format digitlab reads that a file's first bytes announce, if any."""
    for magic, what in ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF")):
        if header.startswith(magic):
            return what
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "WebP"
    if header[:2] == b"BM" and header[6:10] == bytes(4):  # its reserved bytes are zeros: "BM" alone starts text too
        return "BMP"
    return None


def _other_format(header: bytes) -> str:
    """', a PDF or PostScript file' and the like, for a file of a format digitlab does not decode."""
    for magic, what in ((b"%!PS", "a PostScript file"), (b"\xc5\xd0\xd3\xc6", "a PostScript file"),
                        (b"%PDF", "a PDF file"), (b"DDS ", "a DDS texture"), (b"BLP", "a BLP texture")):
        if header.startswith(magic):
            return f" (it is {what})"
    return ""


def _array_to_uint8(array: np.ndarray, name: str | None) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim not in (2, 3) or a.size == 0 or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageError(f"{name or 'array'}: shape {a.shape} is not an image (H x W, or H x W x 1/3/4 channels).")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.dtype == np.uint8:
        return a
    floats = np.issubdtype(a.dtype, np.floating)
    try:
        a = a.astype(np.float64)
    except (TypeError, ValueError):
        raise ImageError(f"{name or 'array'}: values of type {a.dtype} are not grey levels.") from None
    if not np.isfinite(a).all():
        raise ImageError(f"{name or 'array'}: contains NaN or infinite values.")
    low, high = a.min(), a.max()
    if high <= 1 or (floats and high <= 1.5):  # levels in [0, 1], a rounding error over 1 included
        a = a * 255
    elif low < 0 or high > 255:  # 16-bit levels or any other range: stretched, as to_gray stretches a 16-bit image's
        a = (a - low) * (255 / (high - low)) if high > low else np.zeros_like(a)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def to_ink(image: Image.Image, *, name: str = "image") -> np.ndarray:
    """An (h, w) float32 ink map in [0, 1]: 1 for the stroke, 0 for the background.

    Transparency, when the image has it, is the stroke (drawing apps leave the background
    transparent). Otherwise the background is estimated by a wide blur, which also removes
    uneven lighting, and the ink is whichever of dark-on-light or light-on-dark the image is.
    """
    values, is_ink = to_gray(image, name=name)
    return values if is_ink else ink_of_gray(values)


def to_gray(image: Image.Image, *, name: str = "image") -> tuple[np.ndarray, bool]:
    """The image as (h, w) float32 grey levels in [0, 1], upright, at most WORK_SIDE a side, and
    False; or, for an image whose transparent background leaves the opaque part as the stroke (it
    fills little of its box, or is of one colour), that ink map and True. `ink_of_gray` finishes
    `to_ink` for grey levels."""
    image = upright(image)
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # an animated image: its first frame
    if 0 in image.size:  # a PIL image made in code can be 0 pixels wide or high; no file decodes so
        raise ImageError(f"{name}: the image is {image.width} x {image.height} pixels; there is nothing to read.")
    if image.mode == "LAB":  # a CIELab TIFF: Pillow cannot convert it, but its L band is the grey level
        image = image.getchannel("L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(image, dtype=np.float64)
        if not np.isfinite(a).all():
            raise ImageError(f"{name}: the image's pixel values include NaN or infinity.")
        span = a.max() - a.min()
        image = Image.fromarray(np.uint8(255 * (a - a.min()) / span) if span else np.zeros(a.shape, np.uint8))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    try:
        image = image.convert("RGBA" if has_alpha else "L")
    except ValueError as e:  # a mode Pillow cannot convert, such as premultiplied 'La'
        raise ImageError(f"{name}: Pillow cannot turn the image's colour mode {image.mode} into grey levels "
                         f"({e}); save it as an RGB or grayscale PNG.") from None
    if max(image.size) > WORK_SIDE:
        image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    if not has_alpha:
        return np.asarray(image, dtype=np.float32) / 255, False
    rgba = np.asarray(image, dtype=np.float32) / 255
    alpha = rgba[:, :, 3]
    gray = rgba[:, :, :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    if alpha.min() < 0.5 < alpha.max():
        solid = alpha > 0.5
        rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
        opaque = gray[solid]
        low, high = np.percentile(opaque, [0.1, 99.9])
        if solid[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].mean() < CARD_FILL or high - low < 0.3:
            return alpha, True  # a drawing or a cut-out on a transparent background: the opaque part is the ink
        # a picture with transparent corners or margins (a card, a sticker): they take its paper's level,
        # not the whole card taken for ink (a "7" on a card with rounded corners was "not a digit")
        return gray * alpha + np.median(opaque) * (1 - alpha), False
    return gray * alpha + (1 - alpha), False


def ink_of_gray(gray: np.ndarray) -> np.ndarray:
    """The ink map of (h, w) grey levels: the paper's level and uneven lighting taken away, light
    ink on dark whichever way round the image was."""
    # Ink is the minority: the tail of the histogram that reaches further from the median. The
    # extreme percentiles still see a digit that covers a thousandth of a page.
    low, median, high = np.percentile(gray, [0.1, 50, 99.9])
    if median - low > high - median:
        gray = 1 - gray  # dark ink on light paper: now light ink on dark, as MNIST
    return np.clip(gray - background_of(gray), 0, None).astype(np.float32)


def background_of(gray: np.ndarray, blocks: int = 4) -> np.ndarray:
    """The paper's brightness at every pixel, for light ink on dark paper: a low percentile of each
    block of a coarse grid (ink covers less than 90% of any block), smoothly interpolated. This
    removes uneven lighting -- a shadow across a photo -- along with the paper's grey level.
    Small images (under 100 pixels a side) are taken as evenly lit: one block."""
    h, w = gray.shape
    if min(h, w) < 100:
        blocks = 1
    rows = np.array_split(np.arange(h), min(blocks, h))
    cols = np.array_split(np.arange(w), min(blocks, w))
    grid = np.array([[np.percentile(gray[r[0] : r[-1] + 1, c[0] : c[-1] + 1], 10) for c in cols] for r in rows])
    if grid.size == 1:
        return np.full_like(gray, grid[0, 0])
    return zoom_linear(grid, (h, w))
