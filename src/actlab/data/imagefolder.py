"""Image folders (``train/<class>/*.jpg``, ``test|val/<class>/*``): ImageNet-100, the
CIFAR-10 JPEG stand-in, any user data set.

Images are decoded once (Pillow, with progress), resized to the study's size
(shorter side to ``image_size``, then a centre crop) and cached as uint8 arrays keyed
by the source files (path, size, modification time) and the decoding options; the next
run loads the cache in a fraction of a second. The source may also be a .tar(.gz) or
.zip archive of such a folder: it is decoded in one streaming pass, never extracted.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from actlab.data.base import DATASETS, DatasetError, DatasetShape, ImageDataset
from actlab.data.files import atomic_write_bytes, resolve_data_root
from actlab.paths import cache_root
from actlab.progress import progress_bar

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def resolve_source(path: str | os.PathLike, data_dir: str | None) -> Path:
    """``path`` (absolute, or relative to the data directory): an image folder, or an
    archive of one (``x`` also finds ``x.tar.gz``)."""
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
        return source  # read in one streaming pass, never extracted
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


def decode(path: Path | io.BytesIO, image_size: int | None, grayscale: bool,
           label: str = "") -> np.ndarray:
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
        raise DatasetError(f"{label or path} cannot be decoded ({exc}); remove or replace it"
                           ) from None
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
    return _stack(images, description)


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
    """Decode (or load from the cache) an image folder or an archive of one."""
    options = {"image_size": image_size, "grayscale": grayscale,
               "classes": list(classes) if classes else None}
    if source.is_file():
        stat = source.stat()
        key = hashlib.sha256(json.dumps({"archive": str(source.resolve()), "size": stat.st_size,
                                         "mtime": stat.st_mtime_ns, **options},
                                        sort_keys=True).encode()).hexdigest()[:20]
        build = lambda: _decode_archive(name, source, image_size, grayscale, classes)  # noqa: E731
    else:
        layout = _folder_layout(name, source, classes)
        key = cache_key(source, layout.train_files + layout.test_files, options)
        build = lambda: layout.decode(name, image_size, grayscale)  # noqa: E731
    cached = cache_path(name, key)
    details = {"cache": str(cached), "cache_hit": use_cache and cached.exists()}
    if use_cache and cached.exists():
        log.info("%s: decoded images from the cache %s", name, cached)
        with np.load(cached) as arrays:
            parts = {k: arrays[k] for k in arrays.files}
    else:
        log.warning("%s: decoding the images of %s once (cached at %s)", name, source, cached)
        parts = build()
        if use_cache:
            buffer = io.BytesIO()
            np.savez(buffer, **parts)
            atomic_write_bytes(cached, buffer.getvalue())
    return ImageDataset(
        name=name, train_images=torch.from_numpy(parts["train_images"]),
        train_labels=torch.from_numpy(parts["train_labels"].astype(np.int64)),
        test_images=torch.from_numpy(parts["test_images"]),
        test_labels=torch.from_numpy(parts["test_labels"].astype(np.int64)),
        classes=tuple(str(c) for c in parts["classes"]), source=str(source), details=details,
    )


@dataclass
class FolderLayout:
    train_files: list[Path]
    train_labels: list[int]
    test_files: list[Path]
    test_labels: list[int]
    classes: tuple[str, ...]

    def decode(self, name: str, image_size: int | None, grayscale: bool) -> dict:
        return {
            "train_images": decode_all(self.train_files, image_size, grayscale, f"{name} train"),
            "train_labels": np.asarray(self.train_labels, dtype=np.int64),
            "test_images": decode_all(self.test_files, image_size, grayscale, f"{name} test"),
            "test_labels": np.asarray(self.test_labels, dtype=np.int64),
            "classes": np.asarray(self.classes),
        }


def _folder_layout(name: str, source: Path, classes: tuple[str, ...] | None) -> FolderLayout:
    test_dir = next((source / s for s in ("test", "val") if (source / s).is_dir()), None)
    if test_dir is None:
        raise DatasetError(f"{source} has train/ but no test/ or val/ folder")
    train_files, train_labels, found = list_split(source / "train", classes)
    test_files, test_labels, _ = list_split(test_dir, found)
    return FolderLayout(train_files, train_labels, test_files, test_labels, found)


def _archive_members(archive: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(member path, reader) of every file, in one sequential pass (fast for .tar.gz)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            for info in handle.infolist():
                if not info.is_dir():
                    yield info.filename, functools.partial(handle.read, info)
        return
    try:
        with tarfile.open(archive, "r:*") as handle:
            for member in handle:
                if member.isfile():
                    yield member.name, lambda m=member: handle.extractfile(m).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetError(f"{archive} is not a readable tar or zip archive ({exc}); it may be "
                           "truncated: provide it again") from None


def _decode_archive(name: str, archive: Path, image_size: int | None, grayscale: bool,
                    classes: tuple[str, ...] | None) -> dict:
    """Decode every <split>/<class>/<image> member without extracting the archive."""
    decoded: dict[str, dict[str, list[tuple[str, np.ndarray]]]] = {}
    with progress_bar(f"{name}: decoding {archive.name}", None) as advance:
        for member, read in _archive_members(archive):
            parts = PurePosixPath(member).parts
            if (len(parts) < 3 or parts[-3] not in ("train", "test", "val")
                    or PurePosixPath(member).suffix.lower() not in IMAGE_SUFFIXES):
                continue
            array = decode(io.BytesIO(read()), image_size, grayscale, f"{archive}:{member}")
            decoded.setdefault(parts[-3], {}).setdefault(parts[-2], []).append((member, array))
            advance(1)
    if "train" not in decoded:
        raise DatasetError(f"{archive} has no train/<class>/<image> members")
    test_split = "test" if "test" in decoded else "val" if "val" in decoded else None
    if test_split is None:
        raise DatasetError(f"{archive} has train/ but no test/ or val/ images")
    found = classes or tuple(sorted(decoded["train"]))
    for split in ("train", test_split):
        unknown = sorted(set(decoded[split]) - set(found))
        if unknown:
            raise DatasetError(f"{archive} {split}/ has classes the training split lacks "
                               f"or that are not expected: {', '.join(unknown)}")
    missing = [c for c in found if not decoded["train"].get(c)]
    if missing:
        raise DatasetError(f"{archive}: class(es) {', '.join(missing)} have no training images")
    result: dict[str, np.ndarray] = {"classes": np.asarray(found)}
    for split, key in (("train", "train"), (test_split, "test")):
        images, labels = [], []
        for index, cls in enumerate(found):
            for _, array in sorted(decoded[split].get(cls, []), key=lambda item: item[0]):
                images.append(array)
                labels.append(index)
        result[f"{key}_images"] = _stack(images, f"{name} {split}")
        result[f"{key}_labels"] = np.asarray(labels, dtype=np.int64)
    return result


def _stack(images: list[np.ndarray], description: str) -> np.ndarray:
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise DatasetError(f"{description}: images have different sizes {sorted(shapes)[:3]}; "
                           "set the dataset option image_size to resize them")
    return np.stack(images) if images else np.zeros((0, 1, 1, 1), dtype=np.uint8)


@DATASETS.register("imagefolder", aliases=("image_folder",),
                   shape=lambda image_size=None, grayscale=False, **_:
                   DatasetShape(1 if grayscale else 3, image_size, None))
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


@DATASETS.register("cifar10_jpeg", aliases=("cifar10-jpeg",),
                   shape=lambda image_size=None, **_: DatasetShape(3, image_size or 32, 10))
def cifar10_jpeg(data_dir: str | None = None, path: str = "cifar10-jpeg",
                 image_size: int | None = None) -> ImageDataset:
    """The CIFAR-10 JPEG stand-in (all 60,000 images re-encoded as 32x32 JPEG, quality ~75):
    ``cifar10-jpeg/`` or ``cifar10-jpeg.tar.gz`` in the data directory."""
    return load_image_folder("cifar10_jpeg", resolve_source(path, data_dir), image_size,
                             classes=CIFAR10_CLASSES)


@DATASETS.register("imagenet100", aliases=("imagenet-100",),
                   shape=lambda image_size=64, **_: DatasetShape(3, image_size, 100))
def imagenet100(data_dir: str | None = None, path: str = "imagenet100",
                image_size: int = 64) -> ImageDataset:
    """ImageNet-100 (100 ImageNet classes, ~130k train / 5k val JPEGs) as an image folder
    ``imagenet100/{train,val}/<wnid>/*.JPEG``, resized to ``image_size`` (64 by default)."""
    return load_image_folder("imagenet100", resolve_source(path, data_dir), image_size)
