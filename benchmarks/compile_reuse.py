"""torch.compile per run vs once per worker: K runs of one model and activation (seeds
differ) with ``train.compile``, first compiling every run anew (the compiled-model cache
cleared before each run, as a fresh worker would), then reusing the first run's graph
(actlab's default, actlab/train/reuse.py); and the same runs without compile for the
epoch time compile buys or costs.

    python benchmarks/compile_reuse.py [--models lenet5 resnet20] [--runs 4]
                                       [--dataset fashion_mnist] [--per-class 200]

Each "anew" run starts with nothing compiled in memory (actlab's cache and dynamo's
cleared), as in a new worker process. Inductor keeps compiled kernels on disk between
processes, so "anew" is a warm recompile (dynamo tracing, graph lowering, cache
lookups), not a cold first compile.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from actlab.spec import RunSpec
from actlab.train import reuse
from actlab.train.engine import run_one
from record import report


def spec(model: str, dataset: str, per_class: int, seed: int, compile_: bool) -> RunSpec:
    return RunSpec.model_validate({
        "model": model, "act": "relu", "init": "he_normal", "seed": seed,
        "data": {"name": dataset, "train_per_class": per_class, "test_per_class": 50},
        "train": {"epochs": 1, "batch_size": 128, "compile": compile_, "device": "cpu",
                  "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}},
    })


def series(specs: list[RunSpec], fresh: bool) -> tuple[float, list[float], float]:
    """(wall seconds, compile seconds per run, median epoch seconds)."""
    compile_s, epoch_s = [], []
    start = time.perf_counter()
    for s in specs:
        if fresh:  # as in a new worker process: nothing compiled in memory
            reuse.clear()
            torch._dynamo.reset()
        result = run_one(s)
        compile_s.append(result.info.get("compile_s", 0.0))
        epoch_s.append(result.epochs[0].epoch_time)
    return time.perf_counter() - start, compile_s, statistics.median(epoch_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "resnet20"])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    rows = []
    for model in args.models:
        compiled = [spec(model, args.dataset, args.per_class, seed, True)
                    for seed in range(args.runs)]
        plain = [spec(model, args.dataset, args.per_class, seed, False)
                 for seed in range(args.runs)]
        run_one(plain[0])  # load the data and warm the allocator before timing
        plain_wall, _, plain_epoch = series(plain, fresh=True)
        anew_wall, anew_compile, anew_epoch = series(compiled, fresh=True)
        reuse.clear()
        torch._dynamo.reset()
        reused_wall, reused_compile, reused_epoch = series(compiled, fresh=False)
        reuse.clear()
        rows.append([model, f"{plain_wall:.1f} s ({plain_epoch:.2f} s/epoch)",
                     f"{anew_wall:.1f} s (compile {statistics.mean(anew_compile):.2f} s/run)",
                     f"{reused_wall:.1f} s (compile {reused_compile[0]:.2f} s, then "
                     f"{statistics.mean(reused_compile[1:]) * 1e3:.0f} ms/run)",
                     f"{anew_epoch:.2f} s / {reused_epoch:.2f} s",
                     f"**{anew_wall / reused_wall:.2f}x**"])
    report(f"torch.compile once per worker vs per run ({args.runs} runs, 1 epoch each)",
           ["model", "no compile", "compiled, every run anew", "compiled once, reused",
            "compiled epoch (anew / reused)", "reuse speed-up"],
           rows, notes=f"{args.dataset}, {args.per_class} images per class, batch 128, "
                       "relu/He, SGD; seeds 0..K-1; inductor's on-disk cache warm.",
           append=not args.no_append)


if __name__ == "__main__":
    main()
