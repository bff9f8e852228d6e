"""The IDX reader and writer: round trips on every type code, and each kind of malformed file."""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from digitlab.data.idx import TYPE_CODES, Gunzip, idx_bytes, read_idx, read_idx_header, write_idx
from digitlab.errors import DataError

DTYPES = [dt.newbyteorder("=") for dt in TYPE_CODES.values()]


@settings(max_examples=60, deadline=None)
@given(
    array=st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    ),
    compress=st.booleans(),
)
def test_round_trip_every_type_code(tmp_path_factory, array, compress):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)  # NaNs compare equal here
    assert read_idx(path.read_bytes()).shape == array.shape
    assert read_idx_header(path) == (array.shape, array.dtype)


def test_header_layout_is_big_endian():
    data = idx_bytes(np.array([[1, 2, 3]], dtype=np.int16))
    assert data[:4] == bytes([0, 0, 0x0B, 2])
    assert struct.unpack(">II", data[4:12]) == (1, 3)
    assert data[12:] == b"\x00\x01\x00\x02\x00\x03"


def test_unsupported_dtype_is_refused():
    with pytest.raises(DataError, match="cannot store dtype int64"):
        idx_bytes(np.zeros(3, dtype=np.int64))


def header(code=0x08, dims=(2, 3)):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize(
    "payload, phrase",
    [
        (b"", "only 0 bytes"),
        (b"\x00\x00", "only 2 bytes"),
        (b"\x01\x00\x08\x01" + b"\x00" * 8, "bad magic number"),
        (b"PK\x03\x04" + b"\x00" * 8, "bad magic number"),
        (header(code=0x0A) + b"\x00" * 6, "unknown IDX type code 0x0A"),
        (header(dims=(2, 3))[:-2], "truncated header"),
        (header(dims=(2, 3)) + b"\x00" * 5, "only 5 bytes follow"),
        (header(dims=(2, 3)) + b"\x00" * 7, "1 trailing bytes"),
        (header(code=0x0C, dims=(2,)) + b"\x00" * 4, "only 4 bytes follow"),
        (header(dims=(4_000_000_000, 4_000_000_000)) + b"\x00" * 8, "more than the"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_malformed_files_get_a_clear_error_naming_the_file(tmp_path, payload, phrase, compress):
    path = tmp_path / ("bad.idx.gz" if compress else "bad.idx")
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(DataError, match=phrase) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_hostile_header_does_not_allocate_what_it_claims(tmp_path):
    # A claim of 1 GB, just under the 1 GiB limit, with only 100 bytes of real data behind it.
    path = tmp_path / "hostile.idx"
    path.write_bytes(header(dims=(1_000_000_000,)) + b"\x00" * 100)
    tracemalloc.start()
    with pytest.raises(DataError, match="only 100 bytes follow"):
        read_idx(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10 * 1024 * 1024


def test_a_gzip_bomb_is_refused_before_it_is_decompressed(tmp_path):
    # 2 GB of zeros behind a header that honestly claims them: 2 MB compressed, over the 1 GiB limit.
    path = tmp_path / "bomb.idx.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(header(dims=(2_000_000_000,)))
        zeros = bytes(1 << 24)
        for _ in range(4):
            f.write(zeros)  # only 64 MB really written: the header check must fire first
    tracemalloc.start()
    with pytest.raises(DataError, match="more than the 1073741824-byte limit"):
        read_idx(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10 * 1024 * 1024
    with pytest.raises(DataError, match="more than the 1000-byte limit"):
        read_idx(gzip.compress(header(dims=(1001,)) + bytes(1001)), max_bytes=1000)


def test_corrupt_and_cut_off_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="gzip stream is corrupt or cut off"):
        read_idx(cut)
    garbled = tmp_path / "garbled.gz"
    garbled.write_bytes(good[:12] + bytes(b ^ 0xFF for b in good[12:40]) + good[40:])
    with pytest.raises(DataError, match="garbled.gz: (the gzip stream is corrupt|bad magic|unknown IDX type|truncated|only|SHA)"):
        read_idx(garbled)


def test_sha256_is_checked_on_the_decompressed_bytes(tmp_path):
    import hashlib

    raw = idx_bytes(np.arange(10, dtype=np.uint8))
    path = tmp_path / "a.idx.gz"
    path.write_bytes(gzip.compress(raw))
    assert read_idx(path, sha256=hashlib.sha256(raw).hexdigest()).tolist() == list(range(10))
    with pytest.raises(DataError, match="SHA-256 of the decompressed contents"):
        read_idx(path, sha256="0" * 64)


def test_missing_file_and_wrong_argument_type(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope.idx")
    with pytest.raises(TypeError, match="path or bytes"):
        read_idx(3)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_an_array_or_a_data_error(blob):
    try:
        read_idx(blob)
    except DataError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_a_header_read_alone_is_what_the_whole_read_finds_or_a_data_error(blob, compress):
    """read_idx_header never reads the data, so it may accept a file read_idx refuses (cut off,
    trailing bytes); whatever both accept, they agree on."""
    payload = gzip.compress(blob) if compress else blob
    try:
        shape, dtype = read_idx_header(payload)
    except DataError:
        with pytest.raises(DataError):
            read_idx(payload)
        return
    try:
        array = read_idx(payload)
    except DataError:
        return
    assert (array.shape, array.dtype) == (shape, dtype)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_after_a_valid_magic(blob):
    for payload in (b"\x00\x00\x08\x02" + blob, gzip.compress(b"\x00\x00\x0d\x01" + blob)):
        try:
            read_idx(payload)
        except DataError:
            pass


def test_writer_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((2, 2), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.idx"]
    assert path.read_bytes()[:4] == b"\x00\x00\x08\x02"


def test_a_zero_dimension_beside_huge_ones_is_refused_not_crashed():
    """Found by fuzz/run.py: 0 x 4294967295 x 4294967295 bytes holds no data, but NumPy cannot
    describe the array, and reshape raised a bare ValueError."""
    import struct

    data = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 0, 2**32 - 1, 2**32 - 1)
    with pytest.raises(DataError, match="dimensions too large for any array"):
        read_idx(data)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=3),
       padding=st.integers(0, 3), tail=st.sampled_from([b"", b"x", b"\x1f", b"\x1f\x8bgarbage", b"PK\x03\x04"]))
def test_gzip_members_padding_and_trailing_bytes_read_as_python_gzip_reads_them(data, cuts, padding, tail):
    """digitlab's own gzip reader (idx.Gunzip) against Python's gzip: the same bytes from one or
    several members and zero padding; trailing bytes that are no gzip member, or a cut-off one,
    are an error in both."""
    pieces = [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)])]
    blob = b"".join(gzip.compress(p) for p in pieces) + b"\0" * padding + tail
    try:
        want = gzip.decompress(blob)
    except (OSError, EOFError, ValueError) as e:
        want = type(e)
    stream = Gunzip(io.BytesIO(blob))
    try:
        got = b"".join(iter(lambda: stream.read(997), b""))
    except (OSError, EOFError, zlib.error) as e:
        got = type(e)
    if isinstance(want, bytes):
        assert got == want
    else:
        assert not isinstance(got, bytes), (want, got)  # both refuse it


def test_a_gzip_file_is_read_in_a_few_large_reads_not_thousands_of_small_ones(tmp_path):
    """Python's GzipFile reads 8 KB at a time and hands the GIL over at each read: while another
    thread ran Python (a run imports Keras as its data load), MNIST's training images took 31 s to
    read instead of 0.2 s. digitlab reads the compressed file in blocks of megabytes."""
    array = np.random.default_rng(0).integers(0, 40, (6000, 28, 28), dtype=np.uint8)  # 4.7 MB, compresses poorly
    path = write_idx(tmp_path / "images.idx.gz", array)
    reads = []
    real_open = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            reads.append(n)
            return self.f.read(n)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    import builtins
    from unittest import mock

    with mock.patch.object(builtins, "open", lambda *a, **k: Counting(real_open(*a, **k))):
        got = read_idx(path)
    assert np.array_equal(got, array)
    assert path.stat().st_size > 1 << 20 and len(reads) <= 8, reads
