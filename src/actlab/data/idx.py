"""The IDX format of MNIST and Fashion-MNIST (LeCun et al.; Xiao, Rasul & Vollgraf 2017).

An IDX file is a big-endian header -- two zero bytes, a type code (0x08 = uint8) and the
number of dimensions -- then one uint32 per dimension, then the data. Files may be
gzip-compressed (``.gz``), as distributed. Every inconsistency (wrong magic, a size
that does not match the header, a truncated gzip stream) is an error naming the file.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from actlab.data.base import DATASETS, DatasetError, DatasetShape, ImageDataset
from actlab.data.files import Resource, download, md5sum, resolve_data_root

log = logging.getLogger(__name__)

IDX_UINT8 = 0x08
# Official files and their published MD5s. MNIST's original host (yann.lecun.com) is
# often unreachable; the PyTorch-hosted copy has identical files.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MNIST_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}


def resources(base_url: str, md5s: dict[str, str]) -> dict[str, Resource]:
    return {stem: Resource(f"{stem}.gz", f"{base_url}{stem}.gz", md5)
            for stem, md5 in md5s.items()}
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


def load_idx_dataset(name: str, directory: Path, classes: tuple[str, ...], how_to_get: str,
                     official: dict[str, Resource] | None = None,
                     allow_download: bool = False) -> ImageDataset:
    """Load the four IDX files of an MNIST-family dataset from ``directory``; missing files
    are downloaded (MD5 verified) when ``allow_download`` and a network allow it."""
    arrays, paths = {}, {}
    for key, stem in MNIST_FILES.items():
        try:
            path = _find(directory, stem)
        except FileNotFoundError:
            if not (allow_download and official):
                raise DatasetError(
                    f"{name}: {stem}[.gz] not found in {directory}. {how_to_get}") from None
            try:
                path = download(official[stem], directory)
            except DatasetError as exc:
                raise DatasetError(f"{name}: {stem}[.gz] not found in {directory}, and {exc}. "
                                   f"{how_to_get}") from None
        arrays[key] = read_idx(path)
        paths[key] = path
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise DatasetError(f"{name} {split}: images must be 3-d and labels 1-d IDX files "
                               f"({paths[f'{split}_images']}, {paths[f'{split}_labels']})")
        if len(images) != len(labels):
            raise DatasetError(f"{name} {split}: {len(images)} images but {len(labels)} labels "
                               f"in {directory}")
        if len(labels) and int(labels.max()) >= len(classes):
            raise DatasetError(f"{name}: {paths[f'{split}_labels']} has label "
                               f"{int(labels.max())}, outside 0..{len(classes) - 1}: is it "
                               "the labels file of another dataset?")
    return ImageDataset(
        name=name,
        train_images=torch.from_numpy(arrays["train_images"].copy()).unsqueeze(1),
        train_labels=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_images=torch.from_numpy(arrays["test_images"].copy()).unsqueeze(1),
        test_labels=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        classes=classes,
        source=str(directory),
        details={"official_md5": lambda: official_md5_status(directory, official or {})},
    )


def official_md5_status(directory: Path, official: dict[str, Resource]) -> dict[str, bool]:
    """File -> whether it equals the official release (gzipped files only)."""
    return {r.filename: (directory / r.filename).exists()
            and md5sum(directory / r.filename) == r.md5 for r in official.values()}


def _idx_directory(data_dir: str | None, subdirs: tuple[str, ...],
                   fallback: Path | None = None) -> Path:
    """The first of ``<root>/<subdir>``, ``<root>`` and ``fallback`` holding the training
    images, where root is ``data_dir`` or ``$ACTLAB_DATA`` (or the per-user default);
    if none does, ``<root>/<subdirs[0]>``, where a download goes. The system-wide
    ``fallback`` is looked at even when a data directory is given: a study that reads
    the CIFAR stand-in from ``--data-dir`` and Fashion-MNIST from Debian's package (the
    CPU-sized af-wi-grid) must find both."""
    root = resolve_data_root(data_dir)
    candidates = [root / sub for sub in subdirs] + [root]
    if fallback is not None:
        candidates.append(fallback)
    for candidate in candidates:
        try:
            _find(candidate, MNIST_FILES["train_images"])
        except FileNotFoundError:
            continue
        named = bool(data_dir or os.environ.get("ACTLAB_DATA"))
        if candidate == fallback and named:  # not where the user pointed: say so
            _say_fallback(subdirs[0], root, fallback)
        else:
            log.info("%s: reading %s", subdirs[0], candidate)
        return candidate
    return root / subdirs[0]


@functools.cache  # once per process, not once per run
def _say_fallback(name: str, root: Path, fallback: Path) -> None:
    log.warning("%s: no IDX files in %s; reading the system copy in %s", name, root, fallback)


@DATASETS.register("fashion_mnist", aliases=("fashion-mnist", "fmnist"),
                   shape=DatasetShape(1, 28, 10))
def fashion_mnist(data_dir: str | None = None, download: bool = True) -> ImageDataset:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60k/10k 28x28 grayscale, 10 classes.

    Looked up in ``<data dir>/fashion_mnist`` and the data directory itself, then in
    Debian's ``/usr/share/datasets/fashion-mnist``.
    """
    directory = _idx_directory(data_dir, ("fashion_mnist", "fashion-mnist"), FASHION_SYSTEM_DIR)
    return load_idx_dataset(
        "fashion_mnist", directory, FASHION_CLASSES,
        "Install it with `apt-get install dataset-fashion-mnist` (Debian) or put the four "
        "official IDX files in <data dir>/fashion_mnist.",
        resources(FASHION_URL, FASHION_MD5), download,
    )


@DATASETS.register("mnist", shape=DatasetShape(1, 28, 10))
def mnist(data_dir: str | None = None, download: bool = True) -> ImageDataset:
    """MNIST (LeCun et al. 1998): 60k/10k 28x28 grayscale digits, from
    ``<data dir>/mnist`` or the data directory itself."""
    return load_idx_dataset(
        "mnist", _idx_directory(data_dir, ("mnist",)), tuple(str(d) for d in range(10)),
        "Put the four official IDX files (train-images-idx3-ubyte.gz, ...) in "
        "<data dir>/mnist (--data-dir, data.data_dir or $ACTLAB_DATA).",
        resources(MNIST_URL, MNIST_MD5), download,
    )
