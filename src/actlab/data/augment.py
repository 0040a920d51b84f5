"""Batched, on-device data augmentation: random crop with padding, horizontal flip and
small rotations, for whole batches at once (no per-sample Python work).

Random draws come from the training loop's ``torch.Generator`` (on the CPU, so a seed
gives the same augmentations on every device); the draws are then applied on the
device. Crop and flip work on the uint8 batch before normalization, rotation on the
normalized float batch (its zero padding is the training mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Draw:
    """The random choices for one batch."""

    offsets_y: torch.Tensor  # [B] int64 in [0, 2 * padding]
    offsets_x: torch.Tensor
    flips: torch.Tensor  # [B] bool
    angles: torch.Tensor  # [B] float32 radians


@dataclass(frozen=True)
class Augmentation:
    """``crop_padding`` pixels of zero padding before a random crop back to the original
    size (4 for CIFAR in He et al. 2016), random horizontal ``flip``, and a random rotation
    of up to ``rotation`` degrees either way."""

    crop_padding: int = 0
    flip: bool = False
    rotation: float = 0.0

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {self.crop_padding}")
        if not 0.0 <= self.rotation <= 180.0:
            raise ValueError(f"rotation must be in [0, 180] degrees, got {self.rotation}")

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.flip or self.rotation)

    def draw(self, batch: int, generator: torch.Generator) -> Draw:
        span = 2 * self.crop_padding + 1
        offsets = torch.randint(0, span, (2, batch), generator=generator)
        flips = (torch.rand(batch, generator=generator) < 0.5) if self.flip else \
            torch.zeros(batch, dtype=torch.bool)
        angles = ((torch.rand(batch, generator=generator) * 2 - 1)
                  * math.radians(self.rotation)) if self.rotation else torch.zeros(batch)
        return Draw(offsets[0], offsets[1], flips, angles)

    def apply_pixels(self, images: torch.Tensor, draw: Draw) -> torch.Tensor:
        """Crop and flip a uint8 (or float) batch [B, C, H, W]."""
        device = images.device
        if self.crop_padding:
            images = random_crop(images, self.crop_padding, draw.offsets_y.to(device),
                                 draw.offsets_x.to(device))
        if self.flip:
            flips = draw.flips.to(device).view(-1, 1, 1, 1)
            images = torch.where(flips, images.flip(3), images)
        return images

    def apply_float(self, images: torch.Tensor, draw: Draw) -> torch.Tensor:
        """Rotate a normalized float batch (bilinear, zero padding)."""
        if not self.rotation:
            return images
        return rotate(images, draw.angles.to(images.device))


def random_crop(images: torch.Tensor, padding: int, offsets_y: torch.Tensor,
                offsets_x: torch.Tensor) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop each image at its own offset, in one gather."""
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    device = images.device
    rows = (offsets_y.view(-1, 1) + torch.arange(height, device=device)).view(batch, 1, height, 1)
    cols = (offsets_x.view(-1, 1) + torch.arange(width, device=device)).view(batch, 1, 1, width)
    index_b = torch.arange(batch, device=device).view(-1, 1, 1, 1)
    index_c = torch.arange(channels, device=device).view(1, -1, 1, 1)
    return padded[index_b, index_c, rows, cols]


def rotate(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angles), torch.sin(angles)
    zeros = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1),
                         torch.stack([sin, cos, zeros], 1)], 1).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)
