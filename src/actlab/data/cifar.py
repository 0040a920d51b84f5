"""CIFAR-10 and CIFAR-100 from the official python-pickle batches (Krizhevsky 2009,
"Learning multiple layers of features from tiny images").

Layout: ``<data dir>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
and ``<data dir>/cifar-100-python/{train, test, meta}``; each batch is a pickled dict
with ``data`` (uint8 [N, 3072], channel-major) and ``labels`` (``fine_labels`` and
``coarse_labels`` for CIFAR-100). When the folder is missing, the official archive is
used if it lies in the data directory, else downloaded (MD5 verified) where a network
exists.
"""

from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actlab.data.base import DATASETS, DatasetError, DatasetShape, ImageDataset
from actlab.data.files import Resource, download, extract, md5sum, resolve_data_root


@dataclass(frozen=True)
class CifarLayout:
    name: str
    folder: str
    archive: Resource
    train: tuple[tuple[str, str], ...]  # (file, official MD5)
    test: tuple[tuple[str, str], ...]
    meta: tuple[str, str]
    classes_key: str


CIFAR10 = CifarLayout(
    name="cifar10", folder="cifar-10-batches-py",
    archive=Resource("cifar-10-python.tar.gz",
                     "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                     "c58f30108f718f92721af3b95e74349a"),
    train=(("data_batch_1", "c99cafc152244af753f735de768cd75f"),
           ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
           ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
           ("data_batch_4", "634d18415352ddfa80567beed471001a"),
           ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")),
    test=(("test_batch", "40351d587109b95175f43aff81a1287e"),),
    meta=("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    classes_key="label_names",
)
CIFAR100 = CifarLayout(
    name="cifar100", folder="cifar-100-python",
    archive=Resource("cifar-100-python.tar.gz",
                     "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                     "eb9058c3a382ffc7106e4002c42a8d85"),
    train=(("train", "16019d7e3df5f24257cddd939b257f8d"),),
    test=(("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
    meta=("meta", "7973b15100ade9c7d40fb424638fde48"),
    classes_key="fine_label_names",
)


def _how_to_provide(layout: CifarLayout, root: Path) -> str:
    return (f"Put the official {layout.folder}/ folder (or {layout.archive.filename}, from "
            f"{layout.archive.url}) in {root}, or point --data-dir / data.data_dir / "
            f"$ACTLAB_DATA at the directory that holds it.")


def locate(layout: CifarLayout, root: Path, allow_download: bool = True) -> Path:
    """The folder with the batch files: present, extracted from a local archive, or
    downloaded and extracted."""
    for candidate in (root / layout.folder, root):
        if (candidate / layout.meta[0]).exists():
            return candidate
    archive = root / layout.archive.filename
    if not archive.exists():
        if not allow_download:
            raise DatasetError(f"{layout.name}: no {layout.folder}/ in {root}. "
                               f"{_how_to_provide(layout, root)}")
        try:
            download(layout.archive, root)
        except DatasetError as exc:
            raise DatasetError(f"{layout.name}: no {layout.folder}/ in {root}, and {exc}. "
                               f"{_how_to_provide(layout, root)}") from None
    staging = root / f".{layout.folder}.extracted"
    extract(archive, staging)
    extracted = staging / layout.folder
    if not (extracted / layout.meta[0]).exists():
        raise DatasetError(f"{archive} does not contain {layout.folder}/{layout.meta[0]}; "
                           "it is not the official archive")
    extracted.rename(root / layout.folder)
    shutil.rmtree(staging, ignore_errors=True)
    return root / layout.folder


def _unpickle(path: Path) -> dict:
    if not path.exists():
        raise DatasetError(f"{path} is missing; the CIFAR folder is incomplete")
    try:
        with path.open("rb") as handle:
            content = pickle.load(handle, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise DatasetError(f"{path} is truncated or not a CIFAR pickle ({exc!r}); replace it "
                           "with the official file") from None
    if not isinstance(content, dict):
        raise DatasetError(f"{path} does not hold a dict; it is not a CIFAR batch file")
    return {key.decode() if isinstance(key, bytes) else key: value
            for key, value in content.items()}


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 3, 32, 32] and labels int64 [N] of one batch file."""
    content = _unpickle(path)
    if "data" not in content or label_key not in content:
        raise DatasetError(f"{path} lacks the '{'data' if 'data' not in content else label_key}'"
                           " entry of a CIFAR batch file")
    data = np.asarray(content["data"])
    labels = np.asarray(content[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: data is {data.dtype} {data.shape}, expected uint8 "
                           "[N, 3072]")
    if len(data) != len(labels):
        raise DatasetError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _classes(directory: Path, layout: CifarLayout, key: str) -> tuple[str, ...]:
    meta = _unpickle(directory / layout.meta[0])
    if key not in meta:
        raise DatasetError(f"{directory / layout.meta[0]} lacks '{key}'")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[key])


def load_cifar(layout: CifarLayout, data_dir: str | None, label_key: str, classes_key: str,
               allow_download: bool = True) -> ImageDataset:
    root = resolve_data_root(data_dir)
    directory = locate(layout, root, allow_download)
    parts = {}
    for split, files in (("train", layout.train), ("test", layout.test)):
        batches = [read_batch(directory / name, label_key) for name, _ in files]
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        parts[split] = (torch.from_numpy(images), torch.from_numpy(labels))
    return ImageDataset(
        name=layout.name, train_images=parts["train"][0], train_labels=parts["train"][1],
        test_images=parts["test"][0], test_labels=parts["test"][1],
        classes=_classes(directory, layout, classes_key), source=str(directory),
        details={"official_md5": lambda: official_checksums(layout, directory)},
    )


def official_checksums(layout: CifarLayout, directory: Path) -> dict[str, bool]:
    """File -> whether its MD5 equals the official release's (for ``actlab data info``)."""
    files = [*layout.train, *layout.test, layout.meta]
    return {name: (directory / name).exists() and md5sum(directory / name) == md5
            for name, md5 in files}


@DATASETS.register("cifar10", aliases=("cifar-10",), shape=DatasetShape(3, 32, 10))
def cifar10(data_dir: str | None = None, download: bool = True) -> ImageDataset:
    """CIFAR-10: 50k/10k 32x32 RGB, 10 classes, from ``cifar-10-batches-py/``."""
    return load_cifar(CIFAR10, data_dir, "labels", CIFAR10.classes_key, download)


@DATASETS.register("cifar100", aliases=("cifar-100",), shape=lambda labels="fine", **_:
                   DatasetShape(3, 32, 100 if labels == "fine" else 20))
def cifar100(data_dir: str | None = None, labels: str = "fine",
             download: bool = True) -> ImageDataset:
    """CIFAR-100: 50k/10k 32x32 RGB, 100 fine classes (``labels='coarse'``: 20 superclasses),
    from ``cifar-100-python/``."""
    if labels not in ("fine", "coarse"):
        raise DatasetError(f"cifar100 labels must be 'fine' or 'coarse', got {labels!r}")
    return load_cifar(CIFAR100, data_dir, f"{labels}_labels", f"{labels}_label_names",
                      download)
