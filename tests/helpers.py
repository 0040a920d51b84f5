"""Test helpers: writers for the official data formats and a tiny study file."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                                   reason="needs Debian's dataset-fashion-mnist package")


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, the format of MNIST and Fashion-MNIST."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                     *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_mnist_dir(directory: Path, n_train: int = 200, n_test: int = 50,
                    compress: bool = True) -> Path:
    """A small MNIST-format dataset: class-dependent images so it is learnable."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 50, size=(n, 28, 28))
        for i, label in enumerate(labels):
            images[i, label * 2:label * 2 + 6, :] = 250
        write_idx(directory / f"{split}-images-idx3-ubyte", images, compress)
        write_idx(directory / f"{split}-labels-idx1-ubyte", labels, compress)
    return directory


TINY_STUDY = """
name: {name}
model: lenet5
data:
  name: synthetic
  options: {{train_size: 300, test_size: 100, image_size: 28, channels: 1}}
train:
  epochs: {epochs}
  batch_size: 32
  optimizer: {{name: sgd, lr: 0.01}}
grid:
  act: [relu, tanh]
  init: [he_normal, xavier_normal]
seeds: 2
"""
