"""load_dataset on the real files: shapes, dtypes, checksums, and where files come from."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from digitlab import load_dataset
from digitlab.data import DATASETS, get_dataset
from digitlab.errors import DataError, FetchError
from tests.conftest import require_real_data


def test_mnist_matches_the_keras_convention(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert set(np.unique(y_test)) == set(range(10))
    # Well-known facts of the real files: the first training label is 5, the first test label 7.
    assert y_train[0] == 5 and y_test[0] == 7
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fashion_mnist_loads_with_its_class_names():
    data_dir = require_real_data("fashion-mnist")
    (x, y), (xt, yt) = load_dataset("fashion-mnist", data_dir=data_dir)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert np.bincount(yt).tolist() == [1000] * 10
    assert get_dataset("fashion-mnist").class_names[0] == "T-shirt/top"
    assert get_dataset("fashion-mnist").class_names[9] == "Ankle boot"


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="Choose one of: mnist, fashion-mnist"):
        load_dataset("mnits")


def copy_mnist(src, dst, transform=None):
    (dst / "mnist").mkdir(parents=True)
    for f in DATASETS["mnist"].files:
        data = (src / "mnist" / f.filename).read_bytes()
        (dst / "mnist" / f.filename).write_bytes(transform(f, data) if transform else data)


def test_a_named_folder_with_uncompressed_files_works(data_dir, tmp_path):
    (tmp_path / "mnist").mkdir()
    for f in DATASETS["mnist"].files:
        raw = gzip.decompress((data_dir / "mnist" / f.filename).read_bytes())
        (tmp_path / "mnist" / f.filename.removesuffix(".gz")).write_bytes(raw)
    (_, y), _ = load_dataset("mnist", data_dir=tmp_path)
    assert y[0] == 5


def test_a_wrong_file_in_the_named_folder_is_an_error_naming_it(data_dir, tmp_path):
    def swap(f, data):  # put the test labels where the training labels belong
        if f.role == "train_labels":
            return (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
        return data

    copy_mnist(data_dir, tmp_path, swap)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: SHA-256"):
        load_dataset("mnist", data_dir=tmp_path)


def test_without_a_named_folder_files_come_from_the_mirror_into_the_cache(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("DIGITLAB_DATA", raising=False)
    monkeypatch.setenv("DIGITLAB_MIRROR", str(data_dir))
    cache = tmp_path / "cache"
    (_, y), _ = load_dataset("mnist", cache_dir=cache, progress=False)
    assert y[0] == 5
    assert sorted(p.name for p in (cache / "mnist").glob("*.gz")) == sorted(f.filename for f in DATASETS["mnist"].files)
    # Now offline: the cache alone serves it.
    monkeypatch.setenv("DIGITLAB_MIRROR", str(tmp_path / "empty"))
    (_, y2), _ = load_dataset("mnist", cache_dir=cache)
    assert np.array_equal(y, y2)


def test_nowhere_to_get_it_is_a_fetch_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DIGITLAB_DATA", raising=False)
    monkeypatch.setenv("DIGITLAB_MIRROR", str(tmp_path / "no-such-mirror"))
    with pytest.raises(FetchError, match="could not fetch mnist/train-images-idx3-ubyte.gz"):
        load_dataset("mnist", cache_dir=tmp_path / "cache")
    assert not any((tmp_path / "cache" / "mnist").glob("*.gz"))


def test_environment_variable_names_the_data_folder(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITLAB_DATA", str(data_dir))
    monkeypatch.setenv("DIGITLAB_MIRROR", str(tmp_path / "nothing-here"))
    (_, y), _ = load_dataset("mnist")
    assert len(y) == 60000


def test_a_data_folder_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(DataError, match="--data-dir names .*typo, which is not a folder"):
        load_dataset("mnist", data_dir=tmp_path / "typo")


def test_loose_files_count_only_in_a_folder_named_after_the_data_set(data_dir, tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for f in DATASETS["mnist"].files:
        (folder / f.filename).symlink_to(data_dir / "mnist" / f.filename)
    (_, y), _ = load_dataset("mnist", data_dir=folder)
    assert y[0] == 5
    # MNIST's loose files share Fashion-MNIST's names: they must not be taken for it.
    monkeypatch.setenv("DIGITLAB_MIRROR", str(tmp_path / "no-mirror"))
    with pytest.raises(FetchError, match="could not fetch fashion-mnist"):
        load_dataset("fashion-mnist", data_dir=folder, cache_dir=tmp_path / "cache")


def test_a_hostile_header_in_a_data_file_is_refused_at_the_registered_size(tmp_path):
    import struct

    (tmp_path / "mnist").mkdir()
    # One column too many: 48,720,000 bytes claimed where the registry knows 47,040,000.
    header = bytes([0, 0, 8, 3]) + struct.pack(">III", 60000, 28, 29)
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(header + bytes(100))
    with pytest.raises(DataError, match="train-images-idx3-ubyte: header says 60000x28x29 .* more than the 47040000-byte limit"):
        load_dataset("mnist", data_dir=tmp_path)
