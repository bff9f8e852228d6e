"""Strict reader and writer for the IDX format that MNIST and its relatives are published in.

The format (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number -- two zero bytes, a type
code, the number of dimensions -- then one big-endian uint32 per dimension, then the data in
C order, big-endian. Files may be gzip-compressed. Every header field is checked, and the data is
read in chunks as it arrives, so a hostile header that claims billions of items cannot make the
reader allocate more memory than the file really holds.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from digitlab.errors import DataError
from digitlab.files import write_bytes, write_errors

# Type code -> NumPy dtype. IDX is big-endian, so multi-byte dtypes are read with '>'.
TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CODES_BY_DTYPE: dict[np.dtype, int] = {dt.newbyteorder("="): code for code, dt in TYPE_CODES.items()}

# Refuse headers that claim more than this, whatever the file holds (MNIST's largest file is
# 47 MB). A gzip stream can expand 1000-fold, so the limit, not the file size, bounds memory;
# load_dataset passes each registered file's exact size instead.
MAX_BYTES = 1024**3
CHUNK = 4 << 20  # read (and decompress) at most this much at a time: memory grows as data arrives
GZIP_MAGIC = b"\x1f\x8b"


class Gunzip:
    """A gzip stream's decompressed bytes, `read(n)` as from gzip.GzipFile, in few large calls.

    Hand-written over zlib because gzip.GzipFile reads its input 8 KB at a time, releasing and
    taking back the GIL for each read, decompression and checksum: with another thread running
    Python (a run imports Keras while its data load), each handover waits out the thread's 5-ms
    switch interval, and MNIST's training images took 31 s to read instead of 0.2 (0.27 s for the
    whole data set alone, 1.5 s in a run). zlib checks each member's CRC-32 and length itself;
    members follow one another, zero bytes may pad the end, as GzipFile allows.
    """

    BLOCK = 4 << 20  # compressed bytes read from the file at a time

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._member = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer, checked
        self._input = b""

    def read(self, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            if self._member.eof:
                rest = self._member.unused_data.lstrip(b"\0")
                while not rest and (more := self._raw.read(self.BLOCK)):
                    rest = more.lstrip(b"\0")
                if not rest:
                    break  # the end of the file, after a whole member
                if not rest.startswith(GZIP_MAGIC[: len(rest)]):
                    raise gzip.BadGzipFile(f"not a gzip member after the end of the last ({rest[:2]!r})")
                self._member, self._input = zlib.decompressobj(wbits=31), rest
            if not self._input:
                self._input = self._raw.read(self.BLOCK)
                if not self._input:
                    raise EOFError("the compressed file ended before the end-of-stream marker was reached")
            part = self._member.decompress(self._input, n - got)
            self._input = b"" if self._member.eof else self._member.unconsumed_tail
            parts.append(part)
            got += len(part)
        return b"".join(parts)


def read_idx(
    source: str | os.PathLike | bytes,
    *,
    sha256: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-endian NumPy array.

    `source` is a path or the file's bytes. With `sha256`, the decompressed bytes must have
    that digest. Raises `DataError` naming the file and the problem for any malformed input.
    """
    return _with_stream(source, lambda stream, name, compressed: _read_stream(stream, name, compressed, sha256, max_bytes))


def read_idx_header(source: str | os.PathLike | bytes) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and (native-endian) dtype an IDX file's header claims, read without its data.

    Lets a caller bound one file by another before reading either: a labels file that claims a
    billion labels for 60,000 images is refused at once, not after decompressing a gigabyte.
    """
    def header(stream, name, compressed):
        dtype, shape, _ = _read_header(stream, name)
        return shape, dtype.newbyteorder("=")
    return _with_stream(source, header)


def _with_stream(source, read):
    if not isinstance(source, (str, os.PathLike, bytes, bytearray)):
        raise TypeError(f"read_idx takes a path or bytes, not {type(source).__name__}")
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        raw = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    except FileNotFoundError:
        raise DataError(f"{name}: no such file.") from None
    except OSError as e:
        raise DataError(f"{name}: cannot open ({e.strerror or e}).") from None
    with raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream = Gunzip(raw) if compressed else raw
        try:
            return read(stream, name, compressed)
        except (OSError, EOFError, zlib.error) as e:
            # gzip.BadGzipFile is an OSError; a cut-off gzip stream raises EOFError.
            if compressed:
                raise DataError(f"{name}: the gzip stream is corrupt or cut off ({e}).") from None
            raise DataError(f"{name}: cannot read ({e}).") from None


def _read_header(stream: BinaryIO, name: str) -> tuple[np.dtype, tuple[int, ...], bytes]:
    """The big-endian dtype, the shape and the raw bytes of an IDX header, every field checked."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(f"{name}: only {len(magic)} bytes; an IDX file starts with a 4-byte magic number.")
    if magic[0] != 0 or magic[1] != 0:
        what = "a gzip file within a gzip file" if magic[:2] == GZIP_MAGIC else "not an IDX file"
        raise DataError(
            f"{name}: bad magic number {magic.hex()}: an IDX file starts with two zero bytes ({what})."
        )
    code, ndim = magic[2], magic[3]
    if code not in TYPE_CODES:
        known = ", ".join(f"0x{c:02X}" for c in TYPE_CODES)
        raise DataError(f"{name}: unknown IDX type code 0x{code:02X}; the format defines {known}.")
    if ndim > 64:  # the format allows 255; NumPy holds at most 64, and no image set needs more than 4
        raise DataError(f"{name}: the header claims {ndim} dimensions; digitlab reads IDX files of at most 64 "
                        "(images have 3, labels 1).")
    dims_bytes = stream.read(4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise DataError(
            f"{name}: truncated header: {ndim} dimensions need {4 * ndim} bytes of sizes, "
            f"only {len(dims_bytes)} follow the magic number."
        )
    return TYPE_CODES[code], struct.unpack(f">{ndim}I", dims_bytes), magic + dims_bytes


def _read_stream(
    stream: BinaryIO, name: str, compressed: bool, sha256: str | None, max_bytes: int
) -> np.ndarray:
    dtype, shape, header = _read_header(stream, name)
    digest = hashlib.sha256(header)
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    header_len = len(header)
    shape_text = "x".join(map(str, shape)) or "scalar"
    # A zero-sized array may still claim huge other dimensions (0 x 4294967295 x ...): NumPy cannot
    # even describe it. Every dimension counts here as at least 1.
    nominal = int(np.prod([max(d, 1) for d in shape], dtype=object)) * dtype.itemsize
    if expected > max_bytes:
        raise DataError(
            f"{name}: header says {shape_text} {dtype.newbyteorder('=').name} ({expected} bytes), "
            f"more than the {max_bytes}-byte limit; the header is corrupt or hostile."
        )
    if nominal > max(max_bytes, 1 << 31):
        raise DataError(f"{name}: header says {shape_text}: dimensions too large for any array, though "
                        "one is 0; the header is corrupt or hostile.")
    data = bytearray()
    while len(data) < expected:
        chunk = stream.read(min(CHUNK, expected - len(data)))
        if not chunk:
            break
        data += chunk  # grows only as real data arrives, never to the size the header claims
    digest.update(data)
    if len(data) < expected:
        raise DataError(
            f"{name}: header says {shape_text} {dtype.newbyteorder('=').name} ({expected} bytes), "
            f"but only {len(data)} bytes follow the {header_len}-byte header. "
            "The file is probably truncated; fetch it again."
        )
    extra = stream.read(CHUNK)
    if extra:
        more = len(extra)
        while chunk := stream.read(CHUNK):
            more += len(chunk)
        raise DataError(
            f"{name}: {more} trailing bytes after the {expected} bytes of data the header "
            f"({shape_text}) describes; the dimensions disagree with the file's size."
        )
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        raise DataError(
            f"{name}: SHA-256 of the {'decompressed ' if compressed else ''}contents is "
            f"{digest.hexdigest()}, expected {sha256.lower()}. The file is corrupt or not the "
            "expected one; delete it and fetch it again."
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (uncompressed)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    code = CODES_BY_DTYPE.get(native)
    if code is None:
        names = ", ".join(dt.name for dt in CODES_BY_DTYPE)
        raise DataError(f"IDX cannot store dtype {array.dtype.name}; it stores {names}.")
    if array.ndim > 255:
        raise DataError(f"IDX stores at most 255 dimensions, the array has {array.ndim}.")
    if any(n >= 2**32 for n in array.shape):
        raise DataError(f"IDX dimension sizes must fit in 32 bits; shape is {array.shape}.")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=TYPE_CODES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file; gzip-compressed when `compress` or when the name ends in .gz.

    Written atomically (digitlab.files): a reader never sees a half-written file.
    """
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    payload = idx_bytes(array)
    if compress:
        # mtime=0: the same array always gives the same bytes.
        payload = gzip.compress(payload, mtime=0)
    with write_errors(path, "the IDX file"):
        write_bytes(path, payload)
    return path
