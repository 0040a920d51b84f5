"""Input pipeline: actlab's in-memory, batched, on-device augmentation vs the usual
notebook setup (a Dataset with per-sample PIL/tensor transforms in a DataLoader).

Both train the same simple CNN (3 conv + 2 FC, from the same initial weights) for one
epoch on the same CIFAR-sized images with the same augmentation (random crop with 4
pixels of zero padding, horizontal flip), per-channel normalization, SGD, batch size and
thread count. The notebook loop uses ``num_workers`` DataLoader workers as a notebook
would (default 2 = the cores here). Epochs alternate; medians are reported.

    python benchmarks/input_pipeline.py [--train-size 10000] [--epochs 3] [--workers 2]
                                        [--data-dir ../shared/data] [--no-append]

Data: the CIFAR-10 JPEG stand-in (``--data-dir`` holding cifar10-jpeg.tar.gz, e.g.
../shared/data) or, without it, synthetic 32x32 RGB images of the same size.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from actlab.data import DeviceData, load_dataset, make_splits
from actlab.data.augment import Augmentation
from actlab.models import build_model
from record import report


class NotebookDataset(torch.utils.data.Dataset):
    """Per-sample transforms as tutorials write them: PIL image, pad + random crop,
    random flip, to float tensor, normalize."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std) -> None:
        self.images = images  # uint8 [N, H, W, C]
        self.labels = labels
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])
        padded = Image.new(image.mode, (image.width + 8, image.height + 8))
        padded.paste(image, (4, 4))
        x, y = np.random.randint(0, 9, size=2)
        image = padded.crop((x, y, x + 32, y + 32))
        if np.random.rand() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (tensor - self.mean) / self.std, int(self.labels[index])


def train_epoch(model, batches, lr: float = 0.01) -> tuple[float, int]:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    seen = 0
    start = time.perf_counter()
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    return time.perf_counter() - start, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2]
                                                  / "shared" / "data"))
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if (Path(args.data_dir) / "cifar10-jpeg.tar.gz").exists():
        dataset, source = load_dataset("cifar10_jpeg", args.data_dir), "CIFAR-10 JPEG stand-in"
    else:
        dataset = load_dataset("synthetic", channels=3, image_size=32,
                               train_size=args.train_size, test_size=100)
        source = "synthetic 32x32 RGB"
    splits = make_splits(dataset, val_fraction=0.0,
                         train_per_class=args.train_size // dataset.num_classes)
    augmentation = Augmentation(crop_padding=4, flip=True)
    data = DeviceData(splits, torch.device("cpu"), torch.channels_last, augmentation)
    # The same pipeline in the notebook's memory format: isolates the pipeline's share.
    data_nchw = DeviceData(splits, torch.device("cpu"), torch.contiguous_format, augmentation)
    notebook = NotebookDataset(splits.train.images.permute(0, 2, 3, 1).numpy(),
                               splits.train.labels.numpy(), splits.mean.tolist(),
                               splits.std.tolist())
    loader = torch.utils.data.DataLoader(notebook, batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.workers)
    template = build_model("simple_cnn", act="relu", num_classes=dataset.num_classes)

    actlab_times, nchw_times, notebook_times = [], [], []
    for epoch in range(args.epochs + 1):  # epoch 0 warms up all three and is discarded
        model = copy.deepcopy(template).to(memory_format=torch.channels_last)
        seconds, n = train_epoch(model, data.train_batches(
            args.batch_size, torch.Generator().manual_seed(epoch)))
        nchw_seconds, _ = train_epoch(copy.deepcopy(template), data_nchw.train_batches(
            args.batch_size, torch.Generator().manual_seed(epoch)))
        notebook_seconds, _ = train_epoch(copy.deepcopy(template), loader)
        if epoch > 0:
            actlab_times.append(seconds)
            nchw_times.append(nchw_seconds)
            notebook_times.append(notebook_seconds)
    ours, theirs = statistics.median(actlab_times), statistics.median(notebook_times)
    nchw = statistics.median(nchw_times)
    report("Input pipeline: actlab's batched augmentation vs the notebook DataLoader",
           ["model / data", "notebook DataLoader", "actlab pipeline, NCHW (speed-up)",
            "actlab pipeline, channels_last", "speed-up"],
           [[f"simple_cnn / {source}, {n:,} images, batch {args.batch_size}, crop+flip",
             f"{theirs:.2f} s/epoch ({n / theirs:,.0f} img/s, {args.workers} workers)",
             f"{nchw:.2f} s/epoch ({theirs / nchw:.2f}x)",
             f"{ours:.2f} s/epoch ({n / ours:,.0f} img/s)", f"**{theirs / ours:.2f}x**"]],
           notes=f"{args.threads} threads; medians of {args.epochs} epochs after one warm-up, "
                 "the three alternating.", append=not args.no_append)

if __name__ == "__main__":
    main()
