"""load_dataset: find a data set's files (named folder, cache, download) and read them, verified."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from digitlab.data.fetch import fetch_file
from digitlab.data.idx import read_idx
from digitlab.data.registry import DataFile, Dataset, get_dataset
from digitlab.errors import DataError

DATA_ENV = "DIGITLAB_DATA"  # a folder holding <dataset>/<file>, searched before the cache

Split = tuple[np.ndarray, np.ndarray]


def load_dataset(
    name: str = "mnist",
    *,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    mirrors: list[str] | None = None,
    progress: bool = True,
) -> tuple[Split, Split]:
    """Load a registered data set as `((x_train, y_train), (x_test, y_test))`.

    Images are (n, 28, 28) uint8 and labels (n,) uint8, as `keras.datasets.mnist.load_data()`.
    Files are taken, in order, from `data_dir` (or `$DIGITLAB_DATA`), from the cache folder, or
    downloaded from the mirrors into the cache. Every file's SHA-256 is checked.
    """
    dataset = get_dataset(name)
    arrays = {f.role: _load_file(dataset, f, data_dir, cache_dir, mirrors, progress) for f in dataset.files}
    for split in ("train", "test"):
        labels = arrays[f"{split}_labels"]
        if labels.size and int(labels.max()) >= dataset.num_classes:
            raise DataError(
                f"{name} {split} labels go up to {int(labels.max())}, but the data set has "
                f"{dataset.num_classes} classes."
            )
    return (
        (arrays["train_images"], arrays["train_labels"]),
        (arrays["test_images"], arrays["test_labels"]),
    )


def find_local(dataset: Dataset, datafile: DataFile, data_dir: str | os.PathLike | None) -> Path | None:
    """The file in the user's data folder, gzip-compressed or not, if it is there.

    The folder holds <dataset>/<file>, or is itself named after the data set: MNIST and
    Fashion-MNIST share file names, so loose files in any other folder would be ambiguous.
    """
    folder = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    if not folder:
        return None
    folder = expand_user(folder)
    if not folder.is_dir():
        source = "--data-dir" if data_dir is not None else f"${DATA_ENV}"
        raise DataError(f"{source} names {folder}, which is not a folder. Fix the path, or leave it unset to use the cache.")
    raw_name = datafile.filename.removesuffix(".gz")
    bases = [folder / dataset.name] + ([folder] if folder.name == dataset.name else [])
    for base in bases:
        for candidate in (base / datafile.filename, base / raw_name):
            if candidate.is_file():
                return candidate
    return None


def expand_user(path: str | os.PathLike) -> Path:
    """`path` with a leading ~ or ~user made the home folder, as the shell would; a DataError for a
    user this machine does not have (pathlib raises a bare RuntimeError)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        user = str(path).split("/", 1)[0]
        raise DataError(f"{path}: no user {user[1:]!r} on this machine to make {user} a home folder of; "
                        "write the folder in full.") from None


def _load_file(dataset, datafile, data_dir, cache_dir, mirrors, progress) -> np.ndarray:
    path = find_local(dataset, datafile, data_dir)
    if path is None:
        path = fetch_file(dataset, datafile, cache_dir=cache_dir, mirrors=mirrors, progress=progress)
    return checked_array(dataset, datafile, path)


def checked_array(dataset: Dataset, datafile: DataFile, path: Path) -> np.ndarray:
    """The file's array, its content's checksum and shape checked against the registry."""
    # The registry knows each file's size (uint8: one byte an item), so a hostile header cannot ask for more.
    array = read_idx(path, sha256=datafile.sha256, max_bytes=math.prod(datafile.shape))
    if array.shape != datafile.shape or array.dtype != np.uint8:
        raise DataError(
            f"{path}: holds {array.dtype.name} {array.shape}, expected uint8 {datafile.shape} "
            f"for {dataset.name} {datafile.role.replace('_', ' ')}."
        )
    return array
