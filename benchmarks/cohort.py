"""Cohort mode vs one run after another: N seeds of one model and activation trained
as one stacked model (vmap) against the same N runs trained separately, on the same
device, data and settings; wall time per run set, runs per hour, and the largest
difference in test loss between a member and its separate run.

    python benchmarks/cohort.py [--model lenet5] [--dataset fashion_mnist] [--members 4]
                                [--epochs 2] [--per-class 500] [--device auto]

The executor's default (no cohorts) follows this measurement: on the 2-core CPU of our
development machine the cohort was slower (BENCHMARKS.md); on a GPU it is the way to
fill the device with small models.
"""

from __future__ import annotations

import argparse
import time

import torch

from actlab.spec import RunSpec
from actlab.train.cohort import train_cohort
from actlab.train.core import prepare_splits
from actlab.train.engine import run_one
from actlab.train.environment import resolve_device
from record import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--act", default="relu")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--members", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    device = resolve_device(args.device)
    base = RunSpec.model_validate({
        "model": args.model, "act": args.act, "init": "he_normal",
        "data": {"name": args.dataset, "data_dir": args.data_dir,
                 "train_per_class": args.per_class},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size,
                  "device": args.device, "optimizer": {"name": "sgd", "lr": 0.05}}})
    prepare_splits(base.data)  # decode/cache the data before timing anything
    run_one(base.model_copy(update={"train": base.train.model_copy(update={"epochs": 1})}))
    rows = []
    for members in args.members:
        specs = [base.model_copy(update={"seed": seed}) for seed in range(members)]
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        separate = [run_one(spec) for spec in specs]
        sync()
        one_by_one = time.perf_counter() - start
        start = time.perf_counter()
        together = train_cohort(specs)
        sync()
        cohort = time.perf_counter() - start
        gap = max(abs(a.final["test_loss"] - b.final["test_loss"])
                  for a, b in zip(together, separate, strict=True))
        rows.append([f"{members} x {args.model}/{args.act}", f"{one_by_one:.1f} s",
                     f"{cohort:.1f} s", f"**{one_by_one / cohort:.2f}x**",
                     f"{members * 3600 / one_by_one:,.0f} / {members * 3600 / cohort:,.0f}",
                     f"{gap:.1e}"])
    report(f"Cohort mode ({device.type})",
           ["runs", "one after another", "cohort", "speed-up", "runs per hour (separate / "
            "cohort)", "max abs test-loss difference"], rows,
           notes=f"{args.dataset}, {args.per_class} images per class, {args.epochs} epochs, "
                 f"batch {args.batch_size}, {torch.get_num_threads()} threads, device "
                 f"{device}.", append=not args.no_append)


if __name__ == "__main__":
    main()
