"""Datasets (registry, official-format readers, synthetic data) and the input pipeline."""

from actlab.data import (  # noqa: F401  (registration side effect)
    cifar,
    idx,
    imagefolder,
    synthetic,
)
from actlab.data.base import (
    DATASETS,
    DatasetError,
    DatasetShape,
    ImageDataset,
    dataset_shape,
)
from actlab.data.loader import DeviceData, Split, Splits, load_dataset, make_splits
from actlab.paths import default_data_root

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetShape",
    "DeviceData",
    "ImageDataset",
    "Split",
    "Splits",
    "dataset_shape",
    "default_data_root",
    "load_dataset",
    "make_splits",
]
