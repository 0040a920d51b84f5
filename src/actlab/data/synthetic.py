"""Seeded synthetic image data for tests and dry runs.

Each class has a random prototype image; samples are the prototype plus Gaussian pixel
noise, so a small CNN can learn the task in an epoch or two and a broken pipeline shows
up as chance accuracy.
"""

from __future__ import annotations

import torch

from actlab.data.base import DATASETS, DatasetShape, ImageDataset


@DATASETS.register("synthetic", shape=lambda num_classes=10, channels=1, image_size=28, **_:
                   DatasetShape(channels, image_size, num_classes))
def synthetic(
    data_dir: str | None = None,
    num_classes: int = 10,
    channels: int = 1,
    image_size: int = 28,
    train_size: int = 2000,
    test_size: int = 500,
    noise: float = 60.0,
    seed: int = 0,
) -> ImageDataset:
    """Class prototypes plus N(0, noise^2) pixel noise, as uint8; deterministic in ``seed``."""
    if num_classes < 2 or train_size < num_classes or test_size < 1:
        raise ValueError("synthetic data needs num_classes >= 2 and train_size >= num_classes")
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(num_classes, channels, image_size, image_size,
                            generator=generator) * 255

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=generator)]
        noise_field = torch.randn(n, channels, image_size, image_size, generator=generator)
        images = (prototypes[labels] + noise * noise_field).clamp(0, 255).round()
        return images.to(torch.uint8), labels

    train_images, train_labels = sample(train_size)
    test_images, test_labels = sample(test_size)
    return ImageDataset(
        name="synthetic", train_images=train_images, train_labels=train_labels,
        test_images=test_images, test_labels=test_labels,
        classes=tuple(f"class{i}" for i in range(num_classes)), source=f"synthetic(seed={seed})",
    )
