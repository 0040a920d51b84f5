"""Image folders (``train/<class>/*.jpg``, ``test|val/<class>/*``): ImageNet-100, the
CIFAR-10 JPEG stand-in, any user data set.

Images are decoded once (Pillow, with progress), resized to the study's size
(shorter side to ``image_size``, then a centre crop) and cached as uint8 arrays keyed
by the source files (path, size, modification time) and the decoding options; the next
run loads the cache in a fraction of a second. The source may also be a .tar(.gz) or
.zip archive, extracted once into the cache directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from actlab.data.base import DATASETS, DatasetError, ImageDataset
from actlab.data.files import atomic_write_bytes, cache_root, extract, resolve_data_root
from actlab.progress import progress_bar

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def resolve_source(path: str | os.PathLike, data_dir: str | None) -> Path:
    """``path`` (absolute, or relative to the data directory); an archive is extracted once
    into the cache and the extracted folder returned."""
    source = Path(path).expanduser()
    if not source.is_absolute():
        source = resolve_data_root(data_dir) / source
    if not source.exists():
        for suffix in ARCHIVE_SUFFIXES:  # "cifar10-jpeg" also finds cifar10-jpeg.tar.gz
            if source.with_name(source.name + suffix).exists():
                source = source.with_name(source.name + suffix)
                break
        else:
            raise DatasetError(
                f"image folder {source} does not exist. Give `path` (absolute, or relative to "
                f"the data directory {resolve_data_root(data_dir)}) of a folder with train/ and "
                "test/ (or val/) subfolders, one folder per class, or of such an archive.")
    if source.is_file():
        if not source.name.endswith(ARCHIVE_SUFFIXES):
            raise DatasetError(f"{source} is a file but not a .tar(.gz) or .zip archive")
        stat = source.stat()
        key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        target = cache_root() / "extracted" / f"{source.name}-{key.hexdigest()[:12]}"
        if not target.exists():
            extract(source, target)
        source = target
    return _descend(source)


def _descend(folder: Path) -> Path:
    """An archive usually holds one top folder (cifar10-jpeg/train/...); look inside it."""
    if (folder / "train").is_dir():
        return folder
    children = [c for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")]
    if len(children) == 1 and (children[0] / "train").is_dir():
        return children[0]
    raise DatasetError(f"{folder} has no train/ folder; an image folder needs "
                       "train/<class>/... and test/<class>/... (or val/)")


def list_split(folder: Path, classes: tuple[str, ...] | None) -> tuple[list[Path], list[int],
                                                                         tuple[str, ...]]:
    """Image files and class indices of one split folder; ``classes`` fixes the order."""
    found = sorted(c.name for c in folder.iterdir() if c.is_dir() and not c.name.startswith("."))
    if not found:
        raise DatasetError(f"{folder} has no class folders (expected {folder}/<class>/*.jpg)")
    if classes is None:
        classes = tuple(found)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DatasetError(f"{folder} has class folders the training split lacks: "
                           f"{', '.join(unknown)}")
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        class_dir = folder / name
        members = sorted(p for p in class_dir.iterdir()
                         if p.suffix.lower() in IMAGE_SUFFIXES) if class_dir.is_dir() else []
        if not members and folder.name == "train":
            raise DatasetError(f"class '{name}' has no images in {class_dir}; every class "
                               "needs training images")
        files += members
        labels += [index] * len(members)
    return files, labels, classes


def decode(path: Path, image_size: int | None, grayscale: bool) -> np.ndarray:
    """One image as uint8 [C, H, W]: RGB (or L), shorter side resized to ``image_size``
    (bilinear, antialiased) and centre-cropped to a square."""
    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")
            if image_size is not None and image.size != (image_size, image_size):
                width, height = image.size
                scale = image_size / min(width, height)
                size = (max(image_size, round(width * scale)),
                        max(image_size, round(height * scale)))
                image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)
                left = (size[0] - image_size) // 2
                top = (size[1] - image_size) // 2
                image = image.crop((left, top, left + image_size, top + image_size))
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(f"{path} cannot be decoded ({exc}); remove or replace it") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def decode_all(files: list[Path], image_size: int | None, grayscale: bool, description: str
               ) -> np.ndarray:
    # Serial on purpose: for 32x32 JPEGs a thread pool measured 2x slower here (the GIL
    # dominates such small decodes); large ImageNet images are decoded once either way.
    images: list[np.ndarray] = []
    with progress_bar(description, len(files)) as advance:
        for file in files:
            images.append(decode(file, image_size, grayscale))
            advance(1)
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise DatasetError(f"{description}: images have different sizes {sorted(shapes)[:3]}; "
                           "set the dataset option image_size to resize them")
    return np.stack(images) if images else np.zeros((0, 1, 1, 1), dtype=np.uint8)


def cache_key(root: Path, files: list[Path], options: dict) -> str:
    """Changes whenever a file is added, removed, resized or touched, or options change."""
    digest = hashlib.sha256(json.dumps({"root": str(root.resolve()), **options},
                                       sort_keys=True).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cache_path(name: str, key: str) -> Path:
    return cache_root() / "imagefolder" / f"{name}-{key}.npz"


def load_image_folder(name: str, source: Path, image_size: int | None = None,
                      grayscale: bool = False, classes: tuple[str, ...] | None = None,
                      use_cache: bool = True) -> ImageDataset:
    test_dir = next((source / s for s in ("test", "val") if (source / s).is_dir()), None)
    if test_dir is None:
        raise DatasetError(f"{source} has train/ but no test/ or val/ folder")
    train_files, train_labels, found = list_split(source / "train", classes)
    if classes is not None and set(found) != set(classes):
        raise DatasetError(f"{name}: expected classes {', '.join(classes)}")
    test_files, test_labels, _ = list_split(test_dir, found)
    options = {"image_size": image_size, "grayscale": grayscale, "classes": list(found)}
    key = cache_key(source, train_files + test_files, options)
    cached = cache_path(name, key)
    details = {"cache": str(cached), "cache_hit": use_cache and cached.exists()}
    if use_cache and cached.exists():
        log.info("%s: decoded images from the cache %s", name, cached)
        with np.load(cached) as arrays:
            train_x, test_x = arrays["train_images"], arrays["test_images"]
    else:
        log.warning("%s: decoding %d images from %s once (cached at %s)", name,
                    len(train_files) + len(test_files), source, cached)
        train_x = decode_all(train_files, image_size, grayscale, f"{name} train")
        test_x = decode_all(test_files, image_size, grayscale, f"{name} test")
        if use_cache:
            buffer = io.BytesIO()
            np.savez(buffer, train_images=train_x, test_images=test_x)
            atomic_write_bytes(cached, buffer.getvalue())
    return ImageDataset(
        name=name, train_images=torch.from_numpy(train_x),
        train_labels=torch.tensor(train_labels, dtype=torch.int64),
        test_images=torch.from_numpy(test_x),
        test_labels=torch.tensor(test_labels, dtype=torch.int64),
        classes=found, source=str(source), details=details,
    )


@DATASETS.register("imagefolder", aliases=("image_folder",))
def imagefolder(data_dir: str | None = None, path: str | None = None,
                image_size: int | None = None, grayscale: bool = False) -> ImageDataset:
    """Any folder (or archive) with train/<class>/* and test/<class>/* (or val/)."""
    if path is None:
        raise DatasetError("imagefolder needs the option `path`: a folder (or .tar.gz/.zip) "
                           "with train/<class>/... and test/<class>/... (or val/)")
    if image_size is not None and image_size < 8:
        raise DatasetError(f"imagefolder image_size must be at least 8, got {image_size}")
    return load_image_folder("imagefolder", resolve_source(path, data_dir), image_size,
                             grayscale)


@DATASETS.register("cifar10_jpeg", aliases=("cifar10-jpeg",))
def cifar10_jpeg(data_dir: str | None = None, path: str = "cifar10-jpeg",
                 image_size: int | None = None) -> ImageDataset:
    """The CIFAR-10 JPEG stand-in (all 60,000 images re-encoded as 32x32 JPEG, quality ~75):
    ``cifar10-jpeg/`` or ``cifar10-jpeg.tar.gz`` in the data directory."""
    return load_image_folder("cifar10_jpeg", resolve_source(path, data_dir), image_size,
                             classes=CIFAR10_CLASSES)


@DATASETS.register("imagenet100", aliases=("imagenet-100",))
def imagenet100(data_dir: str | None = None, path: str = "imagenet100",
                image_size: int = 64) -> ImageDataset:
    """ImageNet-100 (100 ImageNet classes, ~130k train / 5k val JPEGs) as an image folder
    ``imagenet100/{train,val}/<wnid>/*.JPEG``, resized to ``image_size`` (64 by default)."""
    return load_image_folder("imagenet100", resolve_source(path, data_dir), image_size)
