"""The data sets digitlab knows: one record each, with files, checksums, mirrors and class names.

Adding a data set in the IDX layout means adding one `Dataset` record to `DATASETS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from digitlab.errors import DataError

ROLES = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class DataFile:
    """One published file of a data set."""

    role: str  # one of ROLES
    filename: str  # as published on the mirrors (gzip-compressed)
    sha256: str  # of the decompressed IDX contents: checked on every load
    gz_sha256: str  # of the published .gz: checked on download
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Dataset:
    """A data set in the MNIST layout: four IDX files, uint8 images and uint8 labels."""

    name: str
    description: str
    mirrors: tuple[str, ...]  # base URLs tried in order; a file's URL is mirror + filename
    files: tuple[DataFile, ...]
    class_names: tuple[str, ...]
    license: str

    def file(self, role: str) -> DataFile:
        for f in self.files:
            if f.role == role:
                return f
        raise KeyError(role)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.file("train_images").shape[1:]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _files(sizes: tuple[int, int], sums: dict[str, tuple[str, str]]) -> tuple[DataFile, ...]:
    n_train, n_test = sizes
    shapes = {
        "train_images": (n_train, 28, 28),
        "train_labels": (n_train,),
        "test_images": (n_test, 28, 28),
        "test_labels": (n_test,),
    }
    names = {
        "train_images": "train-images-idx3-ubyte.gz",
        "train_labels": "train-labels-idx1-ubyte.gz",
        "test_images": "t10k-images-idx3-ubyte.gz",
        "test_labels": "t10k-labels-idx1-ubyte.gz",
    }
    return tuple(DataFile(r, names[r], sums[r][0], sums[r][1], shapes[r]) for r in ROLES)


MNIST = Dataset(
    name="mnist",
    description="MNIST handwritten digits (LeCun, Cortes, Burges): 60,000 training and 10,000 test images",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    files=_files(
        (60000, 10000),
        {
            "train_images": (
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            "train_labels": (
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            "test_images": (
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            "test_labels": (
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        },
    ),
    class_names=tuple(str(d) for d in range(10)),
    license="CC BY-SA 3.0",
)

FASHION_MNIST = Dataset(
    name="fashion-mnist",
    description="Fashion-MNIST (Zalando Research): 28x28 grayscale clothing images in 10 classes",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    files=_files(
        (60000, 10000),
        {
            "train_images": (
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
            "train_labels": (
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
            "test_images": (
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
            "test_labels": (
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
        },
    ),
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    license="MIT (Zalando SE)",
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (MNIST, FASHION_MNIST)}


def get_dataset(name: str) -> Dataset:
    """The registry record for `name`, or a `DataError` listing the known data sets."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f'"{name}" is not a known data set. Choose one of: {", ".join(DATASETS)}.'
        ) from None
