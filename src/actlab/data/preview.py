"""Sample grids of a dataset (``actlab data show``): look at the data, clean and corrupted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def sample_per_class(labels: torch.Tensor, per_class: int, seed: int = 0,
                     max_classes: int = 20) -> torch.Tensor:
    """Indices of ``per_class`` random images of each of the first ``max_classes`` classes,
    grouped by class (fewer where a class has fewer images)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for cls in labels.unique(sorted=True)[:max_classes].tolist():
        members = torch.nonzero(labels == cls).flatten()
        pick = members[torch.randperm(len(members), generator=generator)[:per_class]]
        chosen.append(pick.sort().values)
    return torch.cat(chosen)


def sample_grid(panels: list[torch.Tensor], columns: int, out: Path, scale: int = 3,
                gap: int = 2) -> Path:
    """Write uint8 image batches [N, C, H, W] as grids of ``columns`` images per row, one
    grid per panel side by side, each pixel enlarged ``scale`` times; returns ``out``."""
    grids = [_grid(panel, columns, gap) for panel in panels]
    height = max(g.shape[0] for g in grids)
    separator = np.full((height, 4 * gap, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for index, grid in enumerate(grids):
        if index:
            parts.append(separator)
        parts.append(np.pad(grid, ((0, height - grid.shape[0]), (0, 0), (0, 0)),
                            constant_values=255))
    canvas = np.concatenate(parts, axis=1)
    image = Image.fromarray(canvas)
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out


def _grid(images: torch.Tensor, columns: int, gap: int) -> np.ndarray:
    array = images.numpy()
    if array.shape[1] == 1:
        array = np.repeat(array, 3, axis=1)
    count, _, height, width = array.shape
    rows = -(-count // columns)
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255,
                   dtype=np.uint8)
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        grid[top:top + height, left:left + width] = array[index].transpose(1, 2, 0)
    return grid
