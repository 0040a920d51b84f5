"""actlab vs the notebook-style training loop, end to end: the same model (same initial
weights), data split, optimizer, batch size, augmentation and epochs, each evaluating
on the validation split after every epoch.

"Notebook" is the loop tutorials teach: a ``Dataset`` whose ``__getitem__`` makes a PIL
image and applies per-sample transforms (pad + random crop and flip where the setup
augments; to tensor; normalize), a ``DataLoader(shuffle=True, num_workers=W)`` with W
as a notebook sets it (the number of cores), NCHW fp32, ``model.train()`` / ``eval()``.
actlab is ``run_one``: uint8 data in memory, whole-batch augmentation and
normalization, channels_last, and its per-epoch measurements (layer statistics,
dead units) included.

    python benchmarks/notebook_loop.py [--setups lenet5/fashion_mnist simple_cnn/cifar10_jpeg]
                                       [--epochs 3] [--data-dir ../shared/data]
                                       [--device auto]

Reported per setup: seconds per epoch (median, training + validation) and seconds to
reach the target validation accuracy (first epoch at or above it), for both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from actlab.spec import RunSpec
from actlab.train.core import initialized_model, prepare_data
from actlab.train.engine import run_one
from actlab.train.environment import resolve_device
from record import report

SETUPS = {  # model/dataset -> (augment, per-class training images, target val acc)
    "lenet5/fashion_mnist": (False, None, 0.85),
    "simple_cnn/cifar10_jpeg": (True, 1000, 0.40),
}


class NotebookDataset(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: list[float],
                 std: list[float], augment: bool) -> None:
        self.images = images[..., 0] if images.shape[-1] == 1 else images  # PIL: HxW or HxWxC
        self.labels = labels
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[index])
        if self.augment:
            padded = Image.new(image.mode, (image.width + 8, image.height + 8))
            padded.paste(image, (4, 4))
            x, y = np.random.randint(0, 9, size=2)
            image = padded.crop((x, y, x + image.width, y + image.height))
            if np.random.rand() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        array = np.asarray(image, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
        return (tensor - self.mean) / self.std, int(self.labels[index])


def notebook_run(model: torch.nn.Module, train: torch.utils.data.DataLoader,
                 val: torch.utils.data.DataLoader, epochs: int, lr: float,
                 device: torch.device) -> list[tuple[float, float]]:
    """(epoch seconds, val accuracy) per epoch; batches are copied to ``device`` as a
    notebook does (pinned memory, non-blocking)."""
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    history = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for x, y in train:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in val:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                correct += (model(x).argmax(1) == y).sum().item()
                total += len(y)
        history.append((time.perf_counter() - start, correct / total))
    return history


def as_numpy(split) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images as N x H x W x C (what PIL takes) and labels."""
    return split.images.permute(0, 2, 3, 1).numpy(), split.labels.numpy()


def time_to(history: list[tuple[float, float]], target: float) -> str:
    elapsed = 0.0
    for seconds, accuracy in history:
        elapsed += seconds
        if accuracy >= target:
            return f"{elapsed:.1f} s"
    return f"not reached (best {max(a for _, a in history):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2]
                                                  / "shared" / "data"))
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = []
    for setup in args.setups:
        model_name, dataset = setup.split("/")
        augment, per_class, target = SETUPS.get(setup, (False, None, 0.5))
        spec = RunSpec.model_validate({
            "model": model_name, "act": "relu", "init": "he_normal", "seed": 0,
            "data": {"name": dataset, "data_dir": args.data_dir, "train_per_class": per_class,
                     "augment": {"crop_padding": 4, "flip": True} if augment else "none"},
            "train": {"epochs": args.epochs, "batch_size": args.batch_size, "device": args.device,
                      "optimizer": {"name": "sgd", "lr": args.lr, "momentum": 0.9}}})
        data = prepare_data(spec, torch.device("cpu"))  # the notebook's data stays on the host
        model = initialized_model(spec, data).to(memory_format=torch.contiguous_format)
        splits = data.splits
        mean, std = splits.mean.tolist(), splits.std.tolist()
        loader = torch.utils.data.DataLoader(
            NotebookDataset(*as_numpy(splits.train), mean, std, augment),
            batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
            persistent_workers=args.workers > 0, pin_memory=device.type == "cuda")
        val = torch.utils.data.DataLoader(
            NotebookDataset(*as_numpy(splits.val), mean, std, False),
            batch_size=512, num_workers=args.workers, persistent_workers=args.workers > 0,
            pin_memory=device.type == "cuda")
        notebook = notebook_run(model, loader, val, args.epochs, args.lr, device)
        result = run_one(spec)
        ours = [(e.epoch_time, e.val_acc) for e in result.epochs]
        theirs_epoch = statistics.median(s for s, _ in notebook)
        ours_epoch = statistics.median(s for s, _ in ours)
        rows.append([f"{model_name} / {dataset}, {len(splits.train):,} images"
                     + (", crop+flip" if augment else ""),
                     f"{theirs_epoch:.2f} s", f"{ours_epoch:.2f} s",
                     f"**{theirs_epoch / ours_epoch:.2f}x**",
                     f"{target:.0%}: {time_to(notebook, target)} vs {time_to(ours, target)}",
                     f"{notebook[-1][1]:.3f} / {ours[-1][1]:.3f}"])
    report("actlab vs the notebook-style loop (per epoch, training + validation)",
           ["setup", "notebook", "actlab", "speed-up", "time to target val acc "
            "(notebook vs actlab)", f"val acc after {args.epochs} epochs (notebook / actlab)"],
           rows, notes=f"device {device}; SGD lr {args.lr} momentum 0.9, batch {args.batch_size}, "
                       f"{torch.get_num_threads()} threads, DataLoader workers "
                       f"{args.workers}; the same initial weights.",
           append=not args.no_append)


if __name__ == "__main__":
    main()
