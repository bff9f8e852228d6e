"""Your own data, wherever a data set name is accepted: `--dataset path/to/data`.

Three layouts are read:

- a folder with one sub-folder of images per class (`digits/0/*.png`, `digits/1/*.png`, ...), or
  with `train/` and `test/` folders laid out that way; each image is prepared like MNIST (ink
  found whatever its colours, scaled into 20x20, centred by mass in 28x28), so photos and scans work;
- CSV in Kaggle's digit-recognizer layout: a header `label,pixel0,...,pixel783`, then one image per
  line; a file, or a folder holding `train.csv` and, if it has labels, `test.csv`;
- IDX files with MNIST's names (`train-images-idx3-ubyte[.gz]` and the other three) in a folder.

Without a labelled test set, a fixed fifth of the training data (every class alike) is held out as
the test set. A bad file or row stops the load with a `DataError` naming the file and line.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.data import DATASETS, get_dataset, read_idx
from digitlab.data.idx import MAX_BYTES, read_idx_header
from digitlab.data import load_dataset as load_registered
from digitlab.data.load import expand_user
from digitlab.data.pen import MNIST_PEN, MNIST_PEN_CLASSES, MNIST_PEN_DESCRIPTION, pen_training_split
from digitlab.errors import DataError, ImageError

TEST_SHARE = 0.2
PIXELS = 784
IDX_NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
LAYOUTS = ("a folder with one sub-folder of images per class (optionally inside train/ and test/), "
           "a Kaggle-style CSV file or a folder with train.csv, or a folder with MNIST-named IDX files")

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class UserDataset:
    """What digitlab needs to know of a data set that is not in the registry."""

    name: str  # the path, as given
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...] = (28, 28)
    description: str = "your own data"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def is_user_data(name: str) -> bool:
    """A path rather than a registered name."""
    return name not in DATASETS and name != MNIST_PEN


def dataset_info(name: str):
    """The registry record of a known data set, or a `UserDataset` for a path."""
    name = _name(name)
    if name == MNIST_PEN:
        return UserDataset(MNIST_PEN, MNIST_PEN_CLASSES, description=MNIST_PEN_DESCRIPTION)
    if not is_user_data(name):
        return get_dataset(name)
    layout, path = _layout(name)
    if layout == "folders":
        train = path / "train" if (path / "train").is_dir() else path
        return UserDataset(name, tuple(_class_folders(train)))
    labels = _csv_labels(path) if layout == "csv" else _idx_labels(path)
    _check_label_values(labels, path)
    return UserDataset(name, tuple(str(i) for i in range(int(labels.max()) + 1)))


def load_dataset(name: str = "mnist", *, data_dir: str | os.PathLike | None = None, **options) -> tuple[Split, Split]:
    """`((x_train, y_train), (x_test, y_test))`, uint8 (n, 28, 28) and (n,), for a registered data set
    name (see `digitlab.data.load_dataset`) or a path to your own data in one of the three layouts."""
    name = _name(name)
    if name == MNIST_PEN:
        (x, y), test = load_registered("mnist", data_dir=data_dir, **options)
        x_pen, y_pen = pen_training_split(data_dir, cache_dir=options.get("cache_dir"))
        return (np.concatenate([x, x_pen]), np.concatenate([y, y_pen])), test
    if not is_user_data(name):
        return load_registered(name, data_dir=data_dir, **options)
    layout, path = _layout(name)
    train, test = {"folders": _load_folders, "csv": _load_csv, "idx": _load_idx}[layout](path)
    check_labels(train[1], test[1], path)
    return train, test


def load_test_split(name: str = "mnist", *, data_dir: str | os.PathLike | None = None) -> Split:
    """`(x_test, y_test)` of `load_dataset(name)`, without making its training split: mnist+pen's
    test split is MNIST's, and its training split draws the pen digits (minutes, on an empty cache)."""
    if _name(name) == MNIST_PEN:
        return load_registered("mnist", data_dir=data_dir)[1]
    return load_dataset(name, data_dir=data_dir)[1]


MAX_CLASSES = 1000


def check_labels(y_train: np.ndarray, y_test: np.ndarray, source) -> None:
    """A DataError unless the labels number at least two classes 0..K-1, each with training images,
    and the test labels are among them: a stray label (-1, 200, 3.5) would otherwise train a model
    of the wrong shape, and a single class would score a meaningless 100%."""
    for labels in (y_train, y_test):
        _check_label_values(labels, source)
    present = np.unique(y_train)
    classes = int(present.max()) + 1 if present.size else 0
    if present.size < 2:
        raise DataError(f"{source}: the training images have {present.size} class(es); a classifier needs at least "
                        "two. Add images of another class.")
    if present.size != classes:
        missing = sorted(set(range(classes)) - set(present.tolist()))
        raise DataError(f"{source}: labels run up to {classes - 1}, but {len(missing)} of those classes have no "
                        f"training images ({', '.join(map(str, missing[:8]))}{'...' if len(missing) > 8 else ''}); "
                        "number the classes 0..K-1 without gaps.")
    if not y_test.size:
        raise DataError(f"{source}: the test split has no images; add test images (or leave them out, and part of "
                        "the training images is held out for testing).")
    if y_test.size and int(y_test.max()) >= classes:
        raise DataError(f"{source}: a test label is {int(y_test.max())}, but the training labels only go up to "
                        f"{classes - 1}.")


def _check_label_values(labels: np.ndarray, source) -> None:
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{source}: labels must be whole numbers, not {labels.dtype} values.")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= MAX_CLASSES):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise DataError(f"{source}: a label is {bad}; labels number the classes from 0 to at most "
                        f"{MAX_CLASSES - 1}.")


def _name(name) -> str:
    """A data set's name or path as a string (a notebook's Path is one)."""
    if isinstance(name, os.PathLike):
        return os.fspath(name)
    if not isinstance(name, str):
        raise DataError(f"a data set is named by a string ({', '.join(DATASETS)}) or the path to your own data, "
                        f"not {type(name).__name__} {name!r}"[:300] + ".")
    return name


def _layout(name: str) -> tuple[str, Path]:
    if not name.strip() and not (name and Path(name).exists()):  # Path("") is the current folder, not meant by ""
        raise DataError(f'the data set name is empty; choose one of: {", ".join(DATASETS)}, or give the path to your '
                        'own data (".", for the current folder).')
    path = expand_user(name)
    if not path.exists():
        raise DataError(f'"{name}" is not a known data set nor an existing file or folder. '
                        f'Choose one of: {", ".join(DATASETS)}, or give the path to your own data.')
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "csv", path
        raise DataError(f"{path}: a data set file must be CSV; expected {LAYOUTS}.")
    if not path.is_dir():  # a device, a FIFO, a socket
        raise DataError(f"{path}: not a file or folder (a device, pipe or socket); expected {LAYOUTS}.")
    if (path / "train.csv").is_file():
        return "csv", path
    if any((path / n).is_file() or (path / f"{n}.gz").is_file() for n in IDX_NAMES.values()):
        return "idx", path
    if _class_folders(path / "train" if (path / "train").is_dir() else path):
        return "folders", path
    raise DataError(f"{path}: no data found; expected {LAYOUTS}.")


# ---- folders of images ----

def _class_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _load_folders(path: Path) -> tuple[Split, Split]:
    if (path / "train").is_dir():
        classes = _class_folders(path / "train")
        train = _read_folders(path / "train", classes)
        if (path / "test").is_dir():
            extra = sorted(set(_class_folders(path / "test")) - set(classes))
            if extra:
                raise DataError(f"{path / 'test'}: classes {', '.join(extra)} are not in {path / 'train'}.")
            return train, _read_folders(path / "test", classes, training=False)
        return hold_out(*train)
    return hold_out(*_read_folders(path, _class_folders(path)))


def _read_folders(folder: Path, classes: list[str], training: bool = True) -> Split:
    # Deferred: the image readers (Pillow, SciPy) are needed only for folders of image files
    from digitlab.images.read import IMAGE_SUFFIXES, open_image, to_ink
    from digitlab.images.prepare import to_mnist

    images, labels = [], []
    for k, name in enumerate(classes):
        files = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files and training:  # a class the model would have an output for and never learn
            raise DataError(f"{folder / name}: the class folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                            "add some, or remove the folder.")
        for file in files:
            try:
                prepared = to_mnist(to_ink(open_image(file, name=str(file)), name=str(file)), name=str(file))
            except ImageError as e:
                raise DataError(f"{e} Remove or fix the file, then load again.") from None
            images.append(np.rint(prepared * 255).astype(np.uint8))
            labels.append(k)
    if not images:
        raise DataError(f"{folder}: the class folders hold no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    return np.stack(images), np.asarray(labels, np.uint8 if len(classes) <= 256 else np.uint16)


# ---- CSV (Kaggle's digit-recognizer layout) ----

def _load_csv(path: Path) -> tuple[Split, Split]:
    train_file = path if path.is_file() else path / "train.csv"
    x, y = read_csv(train_file)
    if y is None:
        raise DataError(f"{train_file} line 1: the training file needs a 'label' column first.")
    test_file = train_file.with_name("test.csv")
    if path.is_dir() and test_file.is_file():
        xt, yt = read_csv(test_file)
        if yt is not None:  # Kaggle's own test.csv has no labels: then hold out part of train.csv
            return (x, y), (xt, yt)
    return hold_out(x, y)


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (n, 28, 28) uint8 and labels (n,) uint8, or None when there is no 'label' column.

    Rows are checked one by one, so the message names the line and column of the first bad value.
    Hand-written rather than numpy.loadtxt or pandas: those report a failing line at best, not
    which rule it broke, and pandas would be a dependency for this one file format.
    """
    path = Path(path)
    try:
        f = open(path, newline="", encoding="utf-8-sig")  # -sig: a byte-order mark, as Excel writes, is not the header's
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e.strerror or e}).") from None
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{path} line 1: not a CSV file ({e}).") from None
        if not header:
            raise DataError(f"{path}: the file is empty.")
        has_label = header[0].strip().lower() == "label"
        width = PIXELS + has_label
        if len(header) != width:
            raise DataError(f"{path} line 1: expected a header of 'label' and {PIXELS} pixel columns, or "
                            f"{PIXELS} pixel columns, found {len(header)} columns.")
        rows = []
        try:
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                rows.append(_parse_row(row, width, has_label, path, line))
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{path} line {reader.line_num}: not valid CSV ({e}).") from None
    if not rows:
        raise DataError(f"{path}: no rows after the header.")
    data = np.stack(rows)
    images = data[:, has_label:].astype(np.uint8).reshape(-1, 28, 28)
    return images, (data[:, 0].astype(np.uint8) if has_label else None)


def _csv_labels(path: Path) -> np.ndarray:
    """The label columns of train.csv (and a labelled test.csv), without parsing the pixels."""
    files = [path] if path.is_file() else [path / "train.csv", path / "test.csv"]
    labels = []
    for file in (f for f in files if f.is_file()):
        try:
            with open(file, newline="", encoding="utf-8-sig") as f:
                rows = csv.reader(f)
                header = next(rows, None) or [""]
                if header[0].strip().lower() == "label":
                    labels += [int(float(row[0])) for row in rows if row and _is_number(row[0])]
        except (OSError, csv.Error, UnicodeDecodeError, ValueError, OverflowError) as e:
            # the rows' own checks (read_csv) name the line; this quick scan says which file
            raise DataError(f"{file}: not a CSV file of labels and pixels ({type(e).__name__}: {e}).") from None
    if not labels:
        raise DataError(f"{files[0]}: no labelled rows; the first column must be 'label'.")
    return np.asarray(labels)


def _idx_labels(path: Path) -> np.ndarray:
    files, sizes = _idx_files(path)
    return np.concatenate([read_idx(files[role], max_bytes=sizes[role]).ravel() for role in ("train_labels", "test_labels")])


def _parse_row(row: list[str], width: int, has_label: bool, path: Path, line: int) -> np.ndarray:
    if len(row) != width:
        raise DataError(f"{path} line {line}: expected {width} values, found {len(row)}.")
    try:
        values = np.array(row, dtype=np.float64)
    except ValueError:
        column = next(j for j, v in enumerate(row) if not _is_number(v))
        raise DataError(f"{path} line {line}, column {column + 1}: {row[column][:20]!r} is not a number.") from None
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (values < 0) | (values > 255))
    if bad.size:
        j = int(bad[0])
        what = "label" if has_label and j == 0 else "pixel"
        limit = "an integer from 0 to 255"
        raise DataError(f"{path} line {line}, column {j + 1}: the {what} {row[j][:20]!r} is not {limit}.")
    return values.astype(np.int16)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# ---- IDX ----

def _load_idx(path: Path) -> tuple[Split, Split]:
    files, sizes = _idx_files(path)
    arrays = {role: read_idx(file, max_bytes=sizes[role]) for role, file in files.items()}
    return (arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"])


def _idx_files(path: Path) -> tuple[dict[str, Path], dict[str, int]]:
    """The four IDX files of the folder, and the bytes each header claims, once the headers agree.

    Only headers are read here: a gzip labels file that claims a billion labels for 60,000 images
    is refused at once, not after decompressing a gigabyte to count them.
    """
    files, headers = {}, {}
    for role, name in IDX_NAMES.items():
        file = next((f for f in (path / name, path / f"{name}.gz") if f.is_file()), None)
        if file is None:
            raise DataError(f"{path}: {name}[.gz] is missing; an IDX data set needs all four MNIST-named files.")
        files[role], headers[role] = file, read_idx_header(file)
    for split in ("train", "test"):
        (shape, dtype), (labels_shape, _) = headers[f"{split}_images"], headers[f"{split}_labels"]
        if len(shape) != 3 or shape[1:] != (28, 28) or dtype != np.uint8:
            raise DataError(f"{path}: {split} images must be uint8 of shape (n, 28, 28), not {dtype} {shape}.")
        if labels_shape != shape[:1]:
            raise DataError(f"{path}: {shape[0]} {split} images but labels of shape {labels_shape}.")
    return files, {role: min(math.prod(shape) * dtype.itemsize, MAX_BYTES) for role, (shape, dtype) in headers.items()}


def hold_out(x: np.ndarray, y: np.ndarray, share: float = TEST_SHARE) -> tuple[Split, Split]:
    """Split off `share` of every class as the test set, the same way every time."""
    rng = np.random.default_rng(0)
    test = np.zeros(len(y), bool)
    for k in np.unique(y):
        members = np.flatnonzero(y == k)
        test[rng.permutation(members)[: int(round(share * len(members)))]] = True
    if test.all() or not test.any():
        raise DataError(f"{len(y)} images are too few to hold out a test set; add more images or a test split.")
    return (x[~test], y[~test]), (x[test], y[test])
