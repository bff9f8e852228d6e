"""Your own data: class folders of images, Kaggle-style CSV and IDX files; bad files and rows named."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from digitlab.data import write_idx
from digitlab.errors import DataError
from digitlab.data.userdata import dataset_info, load_dataset, read_csv

HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))


@pytest.fixture(scope="module")
def digits(mnist):
    (x, y), _ = mnist
    return x[:300], y[:300]


def write_csv(path, x, y=None):
    lines = [HEADER if y is not None else HEADER.partition(",")[2]]
    for i, image in enumerate(x):
        pixels = ",".join(map(str, image.ravel()))
        lines.append(f"{y[i]},{pixels}" if y is not None else pixels)
    path.write_text("\n".join(lines) + "\n")


def test_class_folders_of_real_photos_are_prepared_like_mnist(tmp_path, digits):
    x, y = digits
    for k in (3, 7):
        folder = tmp_path / ("three" if k == 3 else "seven")
        folder.mkdir()
        for i in np.flatnonzero(y == k)[:25]:  # dark ink on white paper, scaled up, as a user scans them
            Image.fromarray(255 - x[i]).resize((90, 90)).convert("RGB").save(folder / f"{i}.jpg")
    (x_train, y_train), (x_test, y_test) = load_dataset(str(tmp_path))
    assert x_train.dtype == np.uint8 and x_train.shape[1:] == (28, 28)
    assert len(y_train) + len(y_test) == 50 and len(y_test) == 10 and set(y_test) == {0, 1}
    assert x_train[:, 14, 14].mean() > 30, "white ink on black, centred, like MNIST"
    assert dataset_info(str(tmp_path)).class_names == ("seven", "three")


def test_train_and_test_folders_are_used_as_given(tmp_path, digits):
    x, y = digits
    for split, rows in (("train", range(0, 40)), ("test", range(40, 60))):
        for i in rows:
            folder = tmp_path / split / str(y[i])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i]).save(folder / f"{i}.png")
    (x_train, _), (x_test, _) = load_dataset(str(tmp_path))
    assert len(x_train) == 40 and len(x_test) == 20


def test_a_bad_image_in_a_class_folder_is_named(tmp_path, digits):
    (tmp_path / "a").mkdir()
    Image.fromarray(digits[0][0]).save(tmp_path / "a" / "good.png")
    (tmp_path / "a" / "broken.png").write_text("not an image")
    with pytest.raises(DataError, match=r"broken\.png.*not a PNG, JPEG"):
        load_dataset(str(tmp_path))


def test_kaggle_csv_with_an_unlabelled_test_file_holds_out_a_fifth(tmp_path, digits):
    x, y = digits
    write_csv(tmp_path / "train.csv", x[:200], y[:200])
    write_csv(tmp_path / "test.csv", x[200:])  # Kaggle's test.csv has no labels
    (x_train, y_train), (x_test, y_test) = load_dataset(str(tmp_path))
    assert len(x_test) == pytest.approx(40, abs=5) and len(x_train) + len(x_test) == 200
    together = np.concatenate([x_train, x_test])
    assert sorted(together.sum(axis=(1, 2))) == sorted(x[:200].sum(axis=(1, 2))), "pixels exactly as written"
    assert dataset_info(str(tmp_path)).class_names == tuple("0123456789")


def test_a_labelled_test_csv_is_the_test_set(tmp_path, digits):
    x, y = digits
    write_csv(tmp_path / "train.csv", x[:100], y[:100])
    write_csv(tmp_path / "test.csv", x[100:150], y[100:150])
    (_, _), (x_test, y_test) = load_dataset(str(tmp_path))
    np.testing.assert_array_equal(x_test, x[100:150])
    np.testing.assert_array_equal(y_test, y[100:150])


@pytest.mark.parametrize(("line", "message"), [
    ("5," + ",".join(["0"] * 783), r"line 3: expected 785 values, found 784"),
    ("5," + ",".join(["0"] * 783) + ",x", r"line 3, column 785: 'x' is not a number"),
    ("5," + ",".join(["0"] * 783) + ",300", r"line 3, column 785: the pixel '300' is not an integer from 0 to 255"),
    ("1.5," + ",".join(["0"] * 784), r"line 3, column 1: the label '1.5' is not an integer"),
    ("-1," + ",".join(["0"] * 784), r"line 3, column 1: the label '-1'"),
])
def test_bad_rows_are_named_by_file_line_and_column(tmp_path, line, message):
    path = tmp_path / "train.csv"
    path.write_text(HEADER + "\n" + "3," + ",".join(["0"] * 784) + "\n" + line + "\n")
    with pytest.raises(DataError, match=r"train\.csv " + message):
        read_csv(path)


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"),
    ("label,a,b\n1,2,3\n", "line 1: expected a header"),
    (HEADER + "\n", "no rows after the header"),
])
def test_bad_csv_files_are_explained(tmp_path, text, message):
    path = tmp_path / "train.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load_dataset(str(path))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789,.-x \"\n\r", max_size=60), max_size=5))
def test_any_csv_body_loads_or_gets_a_data_error(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "train.csv"
    path.write_text(HEADER + "\n" + "\n".join(lines))
    try:
        x, y = read_csv(path)
    except DataError as e:
        assert "train.csv" in str(e)
    else:
        assert x.shape[1:] == (28, 28) and len(y) == len(x)


def test_mnist_named_idx_files(tmp_path, digits):
    x, y = digits
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x[:200])
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y[:200])
    write_idx(tmp_path / "t10k-images-idx3-ubyte", x[200:])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", y[200:])
    (x_train, y_train), (x_test, y_test) = load_dataset(str(tmp_path))
    np.testing.assert_array_equal(x_test, x[200:])
    assert dataset_info(str(tmp_path)).num_classes == 10
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*missing"):
        load_dataset(str(tmp_path))


def test_a_path_that_holds_no_data_says_what_is_expected(tmp_path):
    with pytest.raises(DataError, match="no data found; expected a folder with one sub-folder"):
        load_dataset(str(tmp_path))
    with pytest.raises(DataError, match="not a known data set"):
        load_dataset(str(tmp_path / "nowhere"))


def _idx_set(folder, x_train, y_train, x_test, y_test):
    folder.mkdir()
    for name, array in (("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                        ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)):
        write_idx(folder / name, array)
    return folder


@pytest.mark.parametrize("y_train, y_test, phrase", [
    (np.array([0, 1, -1, 1] * 5, np.int8), np.array([0, 1], np.int8), "a label is -1"),
    (np.array([0, 1, 200, 1] * 5, np.uint8), np.array([0, 1], np.uint8), "198 of those classes have no training images"),
    (np.array([0.0, 1.0, 3.5, 1.0] * 5, np.float32), np.array([0, 1], np.float32), "labels must be whole numbers"),
    (np.zeros(20, np.uint8), np.zeros(2, np.uint8), "1 class(es); a classifier needs at least two"),
    (np.array([0, 1] * 10, np.uint8), np.array([0, 7], np.uint8), "a test label is 7"),
])
def test_labels_that_would_train_a_wrong_model_are_refused(tmp_path, digits, y_train, y_test, phrase):
    """Issue 22 (10): label -1 trained; 200 made a 201-class model; one class scored 100%; float
    labels crashed after training, leaving the run 'training'. Now refused before a run folder exists."""
    x, _ = digits
    folder = _idx_set(tmp_path / "mine", x[:20], y_train, x[:2], y_test)
    with pytest.raises(DataError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        dataset_info(str(folder))
        load_dataset(str(folder))


def test_a_single_class_folder_is_refused(tmp_path, digits):
    x, _ = digits
    (tmp_path / "only" / "cat").mkdir(parents=True)
    for i in range(10):
        Image.fromarray(x[i]).save(tmp_path / "only" / "cat" / f"{i}.png")
    with pytest.raises(DataError, match="a classifier needs at least two"):
        load_dataset(str(tmp_path / "only"))
