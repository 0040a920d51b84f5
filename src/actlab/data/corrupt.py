"""Corrupted variants of a dataset: the psi family and CIFAR-10-C style corruptions.

Every corruption is a function of uint8 images [N, C, H, W] and a ``torch.Generator``,
returns uint8 images of the same shape, and is deterministic given the generator's seed.

- ``shot_noise_psi`` (alias ``psi``): Poisson (photon-count) noise with peak ``psi``,
  y = Poisson(psi * x) / psi for x in [0, 1], clipped; lower psi is noisier. The study
  that motivates it (psi8, psi16, psi32, psi64) did not publish its recipe; this is
  actlab's definition (docs/data.md).
- CIFAR-10-C style (Hendrycks & Dietterich 2019, "Benchmarking neural network robustness
  to common corruptions and perturbations"), severities 1-5 with the parameters of the
  CIFAR-10-C generation code: gaussian_noise, shot_noise, impulse_noise, gaussian_blur,
  contrast, brightness, jpeg, pixelate. They are generated locally, not downloaded, so
  the images differ from the published CIFAR-10-C files while following their recipe.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from actlab.registry import Registry

Corruption = Callable[..., torch.Tensor]
CORRUPTIONS: Registry[Corruption] = Registry("corruption")

SEVERITY_PARAMETERS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # sigma on [0, 1]
    "shot_noise": (500, 250, 100, 75, 50),  # photons at full intensity
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),  # salt-and-pepper amount
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),  # sigma in pixels
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # factor towards the per-channel mean
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to HSV value
    "jpeg": (80, 65, 58, 50, 40),  # JPEG quality
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),  # down-scale factor
}


def _unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def _severity(kind: str, severity: int) -> float:
    if severity not in range(1, 6):
        raise ValueError(f"{kind} severity must be 1-5, got {severity}")
    return SEVERITY_PARAMETERS[kind][severity - 1]


@CORRUPTIONS.register("shot_noise_psi", aliases=("psi",))
def shot_noise_psi(images: torch.Tensor, generator: torch.Generator, psi: float = 8.0
                   ) -> torch.Tensor:
    """Poisson noise with peak ``psi``: y = Poisson(psi * x) / psi (lower psi, more noise)."""
    if psi <= 0:
        raise ValueError(f"shot_noise_psi needs psi > 0, got {psi}")
    return _to_uint8(torch.poisson(_unit(images) * psi, generator=generator) / psi)


@CORRUPTIONS.register("gaussian_noise")
def gaussian_noise(images: torch.Tensor, generator: torch.Generator, severity: int = 1
                   ) -> torch.Tensor:
    sigma = _severity("gaussian_noise", severity)
    noise = torch.randn(images.shape, generator=generator)
    return _to_uint8(_unit(images) + sigma * noise)


@CORRUPTIONS.register("shot_noise")
def shot_noise(images: torch.Tensor, generator: torch.Generator, severity: int = 1
               ) -> torch.Tensor:
    photons = _severity("shot_noise", severity)
    return _to_uint8(torch.poisson(_unit(images) * photons, generator=generator) / photons)


@CORRUPTIONS.register("impulse_noise")
def impulse_noise(images: torch.Tensor, generator: torch.Generator, severity: int = 1
                  ) -> torch.Tensor:
    """Salt and pepper: a fraction ``amount`` of the values set to 0 or 255, half each."""
    amount = _severity("impulse_noise", severity)
    hit = torch.rand(images.shape, generator=generator) < amount
    salt = torch.rand(images.shape, generator=generator) < 0.5
    out = images.clone()
    out[hit & salt] = 255
    out[hit & ~salt] = 0
    return out


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """1-d Gaussian kernel truncated at 4 sigma (as scipy/skimage), summing to 1."""
    radius = max(1, math.ceil(4.0 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


@CORRUPTIONS.register("gaussian_blur")
def gaussian_blur(images: torch.Tensor, generator: torch.Generator, severity: int = 1
                  ) -> torch.Tensor:
    """Separable Gaussian blur, edges extended (skimage's default 'nearest' mode)."""
    kernel = gaussian_kernel(_severity("gaussian_blur", severity))
    radius = len(kernel) // 2
    x = _unit(images)
    n, c, h, w = x.shape
    x = x.reshape(n * c, 1, h, w)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return _to_uint8(x.reshape(n, c, h, w))


@CORRUPTIONS.register("contrast")
def contrast(images: torch.Tensor, generator: torch.Generator, severity: int = 1
             ) -> torch.Tensor:
    """(x - mean) * c + mean, with the mean per image and channel."""
    factor = _severity("contrast", severity)
    x = _unit(images)
    mean = x.mean(dim=(2, 3), keepdim=True)
    return _to_uint8((x - mean) * factor + mean)


@CORRUPTIONS.register("brightness")
def brightness(images: torch.Tensor, generator: torch.Generator, severity: int = 1
               ) -> torch.Tensor:
    """Add c to the HSV value channel, keeping hue and saturation.

    With hue and saturation fixed, RGB scales linearly with V = max(R, G, B), so the
    result is x * V'/V (a black pixel becomes grey V'), with V' = min(V + c, 1).
    """
    shift = _severity("brightness", severity)
    x = _unit(images)
    value = x.amax(dim=1, keepdim=True)
    new_value = (value + shift).clamp(max=1.0)
    scaled = torch.where(value > 0, x * new_value / value.clamp_min(1e-12), new_value)
    return _to_uint8(scaled)


@CORRUPTIONS.register("jpeg")
def jpeg(images: torch.Tensor, generator: torch.Generator, severity: int = 1) -> torch.Tensor:
    """Re-encode each image as JPEG at quality 80, 65, 58, 50, 40 (Pillow)."""
    quality = int(_severity("jpeg", severity))
    out = torch.empty_like(images)
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        _to_pil(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[index] = _from_pil(decoded, images.shape[1])
    return out


@CORRUPTIONS.register("pixelate")
def pixelate(images: torch.Tensor, generator: torch.Generator, severity: int = 1
             ) -> torch.Tensor:
    """Down-scale by c with a box filter, then back up with a box filter (as CIFAR-10-C)."""
    factor = _severity("pixelate", severity)
    height, width = images.shape[2:]
    small = (max(1, int(width * factor)), max(1, int(height * factor)))
    out = torch.empty_like(images)
    for index, image in enumerate(images):
        pil = _to_pil(image).resize(small, Image.Resampling.BOX)
        out[index] = _from_pil(pil.resize((width, height), Image.Resampling.BOX),
                               images.shape[1])
    return out


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = image.numpy()
    if array.shape[0] == 1:
        return Image.fromarray(array[0])
    return Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)))


def _from_pil(image: Image.Image, channels: int) -> torch.Tensor:
    array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return torch.from_numpy(array[None].copy() if array.ndim == 2
                            else array.transpose(2, 0, 1).copy())


def corrupt(images: torch.Tensor, kind: str, seed: int = 0, **options: Any) -> torch.Tensor:
    """Apply a registered corruption to uint8 images, deterministically from ``seed``."""
    if images.dtype != torch.uint8:
        raise TypeError(f"corruptions take uint8 images, got {images.dtype}")
    generator = torch.Generator().manual_seed(seed)
    return CORRUPTIONS.get(kind)(images, generator, **options)


def psnr(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 image batches."""
    mse = (clean.float() - noisy.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)
