"""Data sets: the IDX format, the registry of known data sets, fetching and loading."""

from digitlab.data import arrays  # scaling, flattening, one-hot, the split: digitlab.data.arrays after `import digitlab`
from digitlab.data.idx import read_idx, write_idx
from digitlab.data.load import load_dataset
from digitlab.data.registry import DATASETS, Dataset, get_dataset

__all__ = ["DATASETS", "arrays", "Dataset", "get_dataset", "load_dataset", "read_idx", "write_idx"]
