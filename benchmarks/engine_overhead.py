"""Engine overhead: actlab's training loop vs a minimal hand-written PyTorch loop.

Both train the same model (built and initialized by actlab, then copied) on the same
in-memory uint8 data, normalized per batch the same way, with the same optimizer, batch
size, memory format and thread count. The engine's time is its per-epoch training time
(``EpochMetrics.images_per_s``, evaluation excluded); the minimal loop is timed the same
way. Epochs alternate between the two so that machine noise hits both alike; the ratio
of median epoch times is reported (goal: <= 1.05).

    python benchmarks/engine_overhead.py [--model lenet5] [--epochs 5] [--threads 2]
                                         [--dataset fashion_mnist] [--no-append]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
import torch.nn.functional as F

from actlab.data import DeviceData, load_dataset, make_splits
from actlab.spec import RunSpec
from actlab.train.core import initialized_model, prepare_data
from actlab.train.engine import run_one
from record import report


def minimal_epoch(model, data: DeviceData, batch_size: int, lr: float, seed: int) -> float:
    """Seconds for one epoch of the plainest loop: shuffle, normalize, step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    start = time.perf_counter()
    n = len(data.train)
    order = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        x = data.normalize(data.train.images[idx])
        loss = F.cross_entropy(model(x), data.train.labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--act", default="relu")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = RunSpec.model_validate({
        "model": args.model, "act": args.act, "init": "he_normal",
        "data": {"name": args.dataset},
        "train": {"epochs": 1, "batch_size": args.batch_size, "device": "cpu",
                  "optimizer": {"name": "sgd", "lr": 0.01}}})
    dataset = load_dataset(spec.data.name)
    splits = make_splits(dataset)
    data = DeviceData(splits, torch.device("cpu"), torch.channels_last)
    template = initialized_model(spec, prepare_data(spec, torch.device("cpu")))

    # Light measurements are the defaults (per-epoch layer statistics); heavy ones add a
    # gradient norm per layer per step (train.grad_stats).
    heavy_spec = spec.model_copy(update={"train": spec.train.model_copy(
        update={"grad_stats": True})})
    engine_times, heavy_times, minimal_times = [], [], []
    for epoch in range(args.epochs + 1):  # epoch 0 warms up all and is discarded
        result = run_one(spec)
        engine_epoch = len(data.train) / result.epochs[0].images_per_s
        heavy = run_one(heavy_spec)
        heavy_epoch = len(data.train) / heavy.epochs[0].images_per_s
        model = copy.deepcopy(template)
        minimal = minimal_epoch(model, data, args.batch_size, 0.01, epoch)
        if epoch > 0:
            engine_times.append(engine_epoch)
            heavy_times.append(heavy_epoch)
            minimal_times.append(minimal)
    engine_median = statistics.median(engine_times)
    heavy_median = statistics.median(heavy_times)
    minimal_median = statistics.median(minimal_times)
    ratio = engine_median / minimal_median
    images = len(data.train)
    report("Engine overhead: actlab's engine vs a minimal loop (training epoch)",
           ["model / data", "minimal loop", "actlab engine", "engine + gradient norms per "
            "layer per step", "ratio (goal <= 1.05)", "ratio with gradient norms"],
           [[f"{args.model} / {args.dataset}, {images:,} training images, batch "
             f"{args.batch_size}",
             f"{minimal_median:.3f} s/epoch ({images / minimal_median:,.0f} img/s)",
             f"{engine_median:.3f} s/epoch ({images / engine_median:,.0f} img/s)",
             f"{heavy_median:.3f} s/epoch", f"**{ratio:.3f}**",
             f"{heavy_median / minimal_median:.3f}"]],
           notes=f"{args.act}, {args.threads} threads, channels_last; medians of "
                 f"{args.epochs} epochs after one warm-up, the loops alternating.",
           append=not args.no_append)

if __name__ == "__main__":
    main()
