"""The dataset registry and :class:`ImageDataset`, the in-memory form of every dataset.

A dataset is held as uint8 tensors ``[N, C, H, W]`` with int64 labels: 60,000 28x28
images are 47 MB, so every dataset of the studies but ImageNet-100 fits in memory, and
normalization and batching happen on whole tensors instead of per sample.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from actlab.registry import Registry

DATASETS: Registry[Callable[..., ImageDataset]] = Registry("dataset")


class DatasetError(RuntimeError):
    """A dataset cannot be loaded; the message says where actlab looked and what to do."""


@dataclass(frozen=True)
class ImageDataset:
    """Train and test splits of an image classification dataset, as uint8 tensors."""

    name: str
    train_images: torch.Tensor  # uint8 [N, C, H, W]
    train_labels: torch.Tensor  # int64 [N]
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]
    source: str = ""
    # Facts for `actlab data info` (cache file and hit, checksum status); not compared.
    details: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        for split, images, labels in (("train", self.train_images, self.train_labels),
                                      ("test", self.test_images, self.test_labels)):
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise DatasetError(f"{self.name} {split} images must be uint8 [N, C, H, W], "
                                   f"got {images.dtype} {tuple(images.shape)}")
            if len(images) != len(labels):
                raise DatasetError(f"{self.name} {split}: {len(images)} images but "
                                   f"{len(labels)} labels")
            if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
                raise DatasetError(f"{self.name} {split} has labels outside "
                                   f"0..{len(self.classes) - 1} (found "
                                   f"{int(labels.min())}..{int(labels.max())})"
                                   + (f" in {self.source}" if self.source else ""))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.train_images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_images.shape[-1]


@dataclass(frozen=True)
class DatasetShape:
    """What a dataset gives a model, known before loading it (None: only the data knows)."""

    channels: int | None = None
    image_size: int | None = None
    num_classes: int | None = None


def register_dataset(name: str, *, aliases: tuple[str, ...] = (), override: bool = False,
                     shape: DatasetShape | Callable[..., DatasetShape] | None = None
                     ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a dataset to :data:`DATASETS` (the public API for plug-ins:
    docs/extending.md). The function takes ``data_dir`` (str or None) and its options as
    keyword arguments with defaults, and returns an :class:`ImageDataset` or the tuple
    ``(train_images, train_labels, test_images, test_labels, classes)`` with uint8 images
    ``[N, H, W]`` or ``[N, C, H, W]`` (NumPy or torch) and integer labels. ``shape``
    (channels, image size, classes, or a function of the options giving them) lets a plan
    check models against the data before anything is loaded."""

    def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(function) or "data_dir" not in inspect.signature(function).parameters:
            raise TypeError(f"dataset '{name}' must be a function taking data_dir and its "
                            "options as keyword arguments")

        @functools.wraps(function)
        def load(*args: Any, **kwargs: Any) -> ImageDataset:
            return as_image_dataset(name, function(*args, **kwargs))

        DATASETS.add(name, load, aliases=aliases, override=override,
                     **({"shape": shape} if shape is not None else {}))
        return function

    return decorator


def as_image_dataset(name: str, value: Any) -> ImageDataset:
    """``value`` (an ImageDataset or the 5-tuple of :func:`register_dataset`) as an
    :class:`ImageDataset`, or a DatasetError saying what is wrong with it."""
    if isinstance(value, ImageDataset):
        return value
    if not isinstance(value, tuple | list) or len(value) != 5:
        raise DatasetError(f"dataset '{name}' returned {type(value).__name__}; return an "
                           "ImageDataset or (train_images, train_labels, test_images, "
                           "test_labels, classes)")
    train_images, train_labels, test_images, test_labels, classes = value

    def images(array: Any, split: str) -> torch.Tensor:
        tensor = torch.as_tensor(array)
        if tensor.dtype != torch.uint8:
            raise DatasetError(f"dataset '{name}' {split} images are {tensor.dtype}; give "
                               "uint8 pixels (0-255)")
        return tensor.unsqueeze(1) if tensor.dim() == 3 else tensor

    return ImageDataset(name, images(train_images, "train"),
                        torch.as_tensor(train_labels).long(), images(test_images, "test"),
                        torch.as_tensor(test_labels).long(), tuple(str(c) for c in classes),
                        source=f"plug-in dataset {name}")


def dataset_shape(name: str, options: dict | None = None) -> DatasetShape:
    """The shape a registered dataset will have with ``options`` (from its ``shape`` meta:
    a DatasetShape or a function of the options), for checks before anything runs."""
    shape = DATASETS.entry(name).meta.get("shape")
    if callable(shape):
        try:
            return shape(**(options or {}))
        except TypeError:
            return DatasetShape()  # unknown options: reported when the data is loaded
    return shape if isinstance(shape, DatasetShape) else DatasetShape()
