"""The IDX format of MNIST and Fashion-MNIST (LeCun et al.; Xiao, Rasul & Vollgraf 2017).

An IDX file is a big-endian header -- two zero bytes, a type code (0x08 = uint8) and the
number of dimensions -- then one uint32 per dimension, then the data. Files may be
gzip-compressed (``.gz``), as distributed. Every inconsistency (wrong magic, a size
that does not match the header, a truncated gzip stream) is an error naming the file.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from actlab.data.base import DATASETS, DatasetError, ImageDataset, default_data_root

IDX_UINT8 = 0x08
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle boot")
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a uint8 array of the header's shape."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(f"{path} is truncated or not a valid gzip file ({exc}); "
                           "download it again") from exc
    if len(raw) < 4:
        raise DatasetError(f"{path} is too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != IDX_UINT8 or ndim not in (1, 3):
        raise DatasetError(
            f"{path} is not an IDX uint8 file: magic bytes {raw[:4].hex()} (expected "
            "00000801 for labels or 00000803 for images)"
        )
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DatasetError(f"{path} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    expected = int(np.prod(shape))
    if len(raw) - header_end != expected:
        raise DatasetError(
            f"{path} is truncated or corrupt: its header promises {expected} bytes of data "
            f"{tuple(shape)}, the file holds {len(raw) - header_end}; download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(stem)


def load_idx_dataset(name: str, directory: Path, classes: tuple[str, ...], how_to_get: str
                     ) -> ImageDataset:
    """Load the four IDX files of an MNIST-family dataset from ``directory``."""
    arrays = {}
    for key, stem in MNIST_FILES.items():
        try:
            arrays[key] = read_idx(_find(directory, stem))
        except FileNotFoundError:
            raise DatasetError(
                f"{name}: {stem}[.gz] not found in {directory}. {how_to_get}"
            ) from None
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise DatasetError(f"{name} {split}: images must be 3-d and labels 1-d IDX files")
        if len(images) != len(labels):
            raise DatasetError(f"{name} {split}: {len(images)} images but {len(labels)} labels "
                               f"in {directory}")
    return ImageDataset(
        name=name,
        train_images=torch.from_numpy(arrays["train_images"].copy()).unsqueeze(1),
        train_labels=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_images=torch.from_numpy(arrays["test_images"].copy()).unsqueeze(1),
        test_labels=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        classes=classes,
        source=str(directory),
    )


@DATASETS.register("fashion_mnist", aliases=("fashion-mnist", "fmnist"))
def fashion_mnist(data_dir: str | None = None) -> ImageDataset:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60k/10k 28x28 grayscale, 10 classes.

    Looked up in ``data_dir``, else Debian's package directory
    ``/usr/share/datasets/fashion-mnist``, else ``$ACTLAB_DATA/fashion_mnist``.
    """
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
    elif FASHION_SYSTEM_DIR.exists():
        directory = FASHION_SYSTEM_DIR
    else:
        directory = default_data_root() / "fashion_mnist"
    return load_idx_dataset(
        "fashion_mnist", directory, FASHION_CLASSES,
        "Install it with `apt-get install dataset-fashion-mnist` (Debian) or put the four "
        "official IDX files there and pass data_dir.",
    )


@DATASETS.register("mnist")
def mnist(data_dir: str | None = None) -> ImageDataset:
    """MNIST (LeCun et al. 1998): 60k/10k 28x28 grayscale digits, from ``$ACTLAB_DATA/mnist``."""
    directory = Path(data_dir).expanduser() if data_dir else default_data_root() / "mnist"
    return load_idx_dataset(
        "mnist", directory, tuple(str(d) for d in range(10)),
        "Put the four official IDX files (train-images-idx3-ubyte.gz, ...) there or pass "
        "data_dir.",
    )
