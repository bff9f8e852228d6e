"""Preparing a stack of images at once gives bit for bit what preparing each alone gives."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from digitlab.errors import ImageError
from digitlab.images.batch import MIN_STACK, otsu_rows, prepare_many, quantile_rows
from digitlab.images.prepare import otsu, to_mnist
from digitlab.images.read import open_image, to_ink


def one_by_one(images, names):
    out = []
    for image, name in zip(images, names):
        try:
            out.append(to_mnist(to_ink(open_image(image, name=name), name=name), name=name))
        except ImageError as e:
            out.append(e)
    return out


def assert_same(batch, single):
    assert len(batch) == len(single)
    for k, (b, s) in enumerate(zip(batch, single)):
        if isinstance(s, ImageError):
            assert isinstance(b, ImageError) and str(b) == str(s), (k, b, s)
        else:
            assert isinstance(b, np.ndarray), (k, b)
            assert b.dtype == s.dtype and b.shape == s.shape
            np.testing.assert_array_equal(b, s, err_msg=f"image {k}")


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def test_real_mnist_scans_as_files_are_prepared_exactly_as_one_by_one(mnist, tmp_path):
    _, (x_test, _) = mnist
    paths = []
    for i in range(300):
        digit = x_test[i] if i % 3 else 255 - x_test[i]  # a third dark ink on white paper
        path = tmp_path / f"{i}.png"
        Image.fromarray(digit).save(path)
        paths.append(path)
    names = [str(p) for p in paths]
    assert_same(prepare_many(paths, names), one_by_one(paths, names))


def test_large_scans_with_shadows_noise_and_specks_mixed_sizes_and_bad_files(mnist):
    _, (x_test, _) = mnist
    rng = np.random.default_rng(0)
    images = []
    for i in range(40):  # 140 x 140 photos: 16 background blocks, a shadow, noise, specks
        big = np.asarray(Image.fromarray(255 - x_test[i]).resize((140, 140)), np.float64)
        shadow = np.linspace(1.0, 0.55, 140)[None, :]
        noisy = big * shadow + rng.normal(0, 6, big.shape)
        noisy[rng.integers(0, 140, 5), rng.integers(0, 140, 5)] = 0
        images.append(png_bytes(np.uint8(np.clip(noisy, 0, 255))))
    images += [png_bytes(x_test[i]) for i in range(MIN_STACK + 2)]  # another size, stacked too
    images += [png_bytes(np.zeros((28, 28), np.uint8))] * 3  # blank: the one-image path's error
    images += [b"not an image", png_bytes(x_test[0][:20, :25])]  # a bad file; a size seen once
    turned = Image.fromarray(255 - x_test[2]).convert("RGB")
    exif = turned.getexif()
    exif[0x0112] = 6  # a phone's JPEG: stored on its side, shown upright
    buf = io.BytesIO()
    turned.save(buf, "JPEG", exif=exif, quality=95)
    images += [buf.getvalue()] * MIN_STACK  # to_gray turns them: a stack of their own
    images += [png_bytes(np.stack([255 - x_test[k]] * 3, -1)) for k in range(MIN_STACK)]  # RGB scans
    frames = [Image.fromarray(255 - x_test[k]) for k in range(3)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], optimize=False)  # grey, animated
    images += [gif.getvalue()] * MIN_STACK
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = x_test[1]  # transparency is the ink
    images.append(png_bytes(rgba))
    names = [f"image {k}" for k in range(len(images))]
    batch, single = prepare_many(images, names), one_by_one(images, names)
    assert sum(isinstance(s, ImageError) for s in single) == 4
    assert_same(batch, single)


@settings(max_examples=60, deadline=None)
@given(st.lists(hnp.arrays(np.uint8, (28, 28)), min_size=MIN_STACK, max_size=MIN_STACK + 4))
def test_any_stack_of_28_by_28_images_is_prepared_as_one_by_one(arrays):
    names = [f"a{k}" for k in range(len(arrays))]
    assert_same(prepare_many(arrays, names), one_by_one(arrays, names))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 60)),
                  elements=st.floats(0, 1, width=32)), st.data())
def test_quantile_rows_is_numpys_percentile(values, data):
    counts = np.array([data.draw(st.integers(1, values.shape[1])) for _ in range(len(values))])
    q = data.draw(st.sampled_from([90, 10, 50, 0.1, 99.9, 100, 0]))
    padded = values.copy()
    for row, n in zip(padded, counts):
        row[n:] = np.inf
    got = quantile_rows(padded, counts, q)
    want = [np.percentile(row[:n], q) for row, n in zip(values, counts)]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(want, np.float32))


def test_quantile_rows_rounds_as_numpy_does():
    """Found by the property test in CI: 21 values, q 90, where the general virtual-index formula
    lands a hair past index 18 and interpolated 3.6e-15 towards the next value; NumPy gives 0."""
    values = np.zeros((1, 21), np.float32)
    values[0, :2] = 1
    assert quantile_rows(values, np.array([21]), 90)[0] == np.percentile(values[0], 90) == 0


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 300)),
                  elements=st.floats(0, 1, width=32)),
       st.lists(st.floats(0.05000000074505806, 1, width=32), min_size=6, max_size=6))
def test_otsu_rows_is_otsu_of_each_row(values, peaks):
    """On ink maps as ink_mask sees them: their peak at least 0.05 (fainter ones are blank)."""
    values = np.concatenate([values, np.float32(peaks[: len(values)])[:, None]], axis=1)
    peaks = values.max(axis=1)
    assert otsu_rows(values, peaks).tolist() == [otsu(row) for row in values]


def test_predicting_a_folder_in_worker_processes_gives_the_same_answers(mnist, tmp_path):
    """What `digitlab predict FOLDER` runs: chunks of files prepared in 2 processes, predicted here."""
    from digitlab.images.folders import expand
    from digitlab.recognize import Recognizer

    _, (x_test, _) = mnist
    for i in range(700):
        Image.fromarray(x_test[i] if i % 2 else 255 - x_test[i]).save(tmp_path / f"{i:04d}.png")
    (tmp_path / "0100.png").write_bytes(b"not a png")  # an error in the middle of a chunk
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "0400.png")  # blank
    reader = Recognizer.load("reader")
    here = list(reader.predict_iter(expand([tmp_path]), batch_size=128, keep_prepared=True))
    apart = list(reader.predict_iter(expand([tmp_path]), batch_size=128, keep_prepared=True, workers=2))
    assert [p.source for p in apart] == [p.source for p in here] == [str(p) for p in sorted(tmp_path.iterdir())]
    assert [(p.status, p.digit) for p in apart] == [(p.status, p.digit) for p in here]
    assert [p.message for p in apart if p.status == "error"] == [p.message for p in here if p.status == "error"]
    assert [p.status for p in here].count("error") == 2
    for a, b in zip(apart, here):
        assert (a.prepared is None) == (b.prepared is None)
        if a.prepared is not None:
            np.testing.assert_array_equal(a.prepared, b.prepared)  # the same images, bit for bit
            # the model's sums in another order (one BLAS thread while workers run): the last bits
            np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-7)
