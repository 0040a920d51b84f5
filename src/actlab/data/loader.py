"""The input pipeline: cached datasets, seeded splits and on-device batching.

Images stay uint8 on the training device; each batch is gathered by index and
normalized in one fused multiply-add, so there is no per-sample Python work at all
(per-sample transforms dominate the cost of small 32x32 models: BENCHMARKS.md,
"input pipeline").
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from actlab.data.augment import Augmentation
from actlab.data.base import DATASETS, DatasetError, ImageDataset
from actlab.data.corrupt import corrupt

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _load_cached(name: str, data_dir: str | None, options: tuple[tuple[str, Any], ...]
                 ) -> ImageDataset:
    log.info("loading dataset %s", name)
    return DATASETS.get(name)(data_dir=data_dir, **dict(options))


def forget_loaded_datasets() -> None:
    """Drop this process's loaded datasets (a parent whose workers load their own)."""
    _load_cached.cache_clear()


def load_dataset(name: str, data_dir: str | None = None, **options: Any) -> ImageDataset:
    """Load a registered dataset once per process (later calls return the cached copy)."""
    factory = DATASETS.get(name)
    allowed = [p for p in inspect.signature(factory).parameters if p != "data_dir"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(f"dataset {DATASETS.canonical(name)} has no option "
                           f"{', '.join(repr(u) for u in unknown)}; its options: "
                           f"{', '.join(allowed) or 'none'}")
    try:
        return _load_cached(DATASETS.canonical(name), data_dir, tuple(sorted(options.items())))
    except (ValueError, TypeError) as exc:  # a bad option value
        raise DatasetError(f"dataset {DATASETS.canonical(name)}: {exc}") from None


@lru_cache(maxsize=4)
def _corrupted_cached(dataset: ImageDataset, kind: str, options: tuple[tuple[str, Any], ...],
                      apply_to: str, seed: int) -> ImageDataset:
    log.warning("corrupting %s with %s%s (%s)", dataset.name, kind, dict(options), apply_to)
    train, test = dataset.train_images, dataset.test_images
    # Different seeds for the two splits, so train and test noise never coincide.
    if apply_to in ("both", "train"):
        train = corrupt(train, kind, seed=2 * seed, **dict(options))
    if apply_to in ("both", "test"):
        test = corrupt(test, kind, seed=2 * seed + 1, **dict(options))
    return dataclasses.replace(dataset, train_images=train, test_images=test,
                               source=f"{dataset.source} + {kind}{dict(options)} ({apply_to})")


def corrupted(dataset: ImageDataset, kind: str, options: dict[str, Any],
              apply_to: str = "both", seed: int = 0) -> ImageDataset:
    """``dataset`` with a registered corruption applied to its train and/or test images
    (once per process for equal arguments)."""
    return _corrupted_cached(dataset, kind, tuple(sorted(options.items())), apply_to, seed)


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Splits:
    """Train / validation / test splits plus the train split's per-channel statistics."""

    train: Split
    val: Split
    test: Split
    mean: torch.Tensor  # [C], in [0, 1] pixel units
    std: torch.Tensor  # [C]
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def per_class_subset(labels: torch.Tensor, per_class: int, generator: torch.Generator
                     ) -> torch.Tensor:
    """Indices of ``per_class`` randomly chosen examples of every class (sorted)."""
    order = torch.randperm(len(labels), generator=generator)
    chosen = []
    for cls in labels.unique(sorted=True).tolist():
        members = order[labels[order] == cls]
        if len(members) < per_class:
            raise DatasetError(f"class {cls} has only {len(members)} examples, "
                               f"{per_class} per class were asked for")
        chosen.append(members[:per_class])
    return torch.cat(chosen).sort().values


def make_splits(
    dataset: ImageDataset,
    val_fraction: float = 0.1,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    split_seed: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Splits:
    """Seeded split of the official training set into train and validation.

    ``train_per_class`` first keeps that many examples per class of the official training
    set; ``val_fraction`` of what is kept is then held out for validation. The split
    depends on ``split_seed`` only, so every run of a study sees the same data.
    Normalization statistics are the training split's per-channel mean and std unless
    ``mean`` and ``std`` are given (in [0, 1] pixel units).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    generator = torch.Generator().manual_seed(split_seed)
    train_x, train_y = dataset.train_images, dataset.train_labels
    if train_per_class is not None:
        keep = per_class_subset(train_y, train_per_class, generator)
        train_x, train_y = train_x[keep], train_y[keep]
    test_x, test_y = dataset.test_images, dataset.test_labels
    if test_per_class is not None:
        keep = per_class_subset(test_y, test_per_class, generator)
        test_x, test_y = test_x[keep], test_y[keep]
    order = torch.randperm(len(train_y), generator=generator)
    n_val = round(val_fraction * len(train_y))
    val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
    train = Split(train_x[train_idx], train_y[train_idx])
    if mean is None or std is None:
        mean_t, std_t = channel_statistics(train.images)
    else:
        if len(mean) != dataset.channels or len(std) != dataset.channels:
            raise DatasetError(f"{dataset.name} has {dataset.channels} channel(s) but mean/std "
                               f"give {len(mean)}/{len(std)} values")
        mean_t = torch.tensor(mean, dtype=torch.float32)
        std_t = torch.tensor(std, dtype=torch.float32)
    return Splits(train=train, val=Split(train_x[val_idx], train_y[val_idx]),
                  test=Split(test_x, test_y), mean=mean_t, std=std_t, classes=dataset.classes)


def channel_statistics(images: torch.Tensor, chunk: int = 8192
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images in [0, 1] units, in float64 chunks (a
    float copy of all of ImageNet-100 would not fit in memory)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk].to(torch.float64).div_(255.0)
        total += block.sum(dim=(0, 2, 3))
        squares += block.pow(2).sum(dim=(0, 2, 3))
    count = max(1, images.numel() // channels)
    mean = total / count
    var = (squares / count - mean.pow(2)).clamp_min(0.0) * count / max(1, count - 1)
    return mean.float(), var.sqrt().float().clamp_min(1e-3)


class DeviceData:
    """Splits held on one device, served as normalized float batches."""

    def __init__(self, splits: Splits, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format,
                 augmentation: Augmentation | None = None) -> None:
        self.splits = splits
        self.device = device
        self.memory_format = memory_format
        self.augmentation = augmentation if augmentation and augmentation.active else None
        self.train = splits.train.to(device)
        self.val = splits.val.to(device)
        self.test = splits.test.to(device)
        # x_norm = (x / 255 - mean) / std = x * scale + shift, one fused op per batch.
        self.scale = (1.0 / (255.0 * splits.std)).view(1, -1, 1, 1).to(device)
        self.shift = (-splits.mean / splits.std).view(1, -1, 1, 1).to(device)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.shift, images.float(), self.scale)
        return x.contiguous(memory_format=self.memory_format)

    def train_batches(self, batch_size: int, generator: torch.Generator
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled training batches; a last batch of one example is dropped
        because BatchNorm cannot train on it."""
        n = len(self.train)
        order = torch.randperm(n, generator=generator).to(self.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            if len(idx) < 2:
                break
            images = self.train.images[idx]
            if self.augmentation is None:
                yield self.normalize(images), self.train.labels[idx]
                continue
            draw = self.augmentation.draw(len(idx), generator)
            images = self.augmentation.apply_pixels(images, draw)
            rotated = self.augmentation.apply_float(self.normalize(images), draw)
            yield rotated.contiguous(memory_format=self.memory_format), self.train.labels[idx]

    def eval_batches(self, split: Split, batch_size: int
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(split), batch_size):
            yield (self.normalize(split.images[start:start + batch_size]),
                   split.labels[start:start + batch_size])

    def example_batch(self, size: int = 256) -> torch.Tensor:
        """A fixed, normalized batch of training images (for data-dependent init)."""
        return self.normalize(self.train.images[:size])
