"""Runs in parallel vs threads per run: the same small study, run serially with all cores'
threads in one process, and with ``--jobs N`` worker processes of one thread each.

Each variant runs the study from scratch in its own store (the CLI, as a user would);
the variants alternate for ``--repeats`` rounds and the median wall times are compared.

    python benchmarks/parallel_runs.py [--runs 8] [--epochs 1] [--train-per-class 900]
                                       [--dataset fashion_mnist] [--no-append]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import report

STUDY = """
name: parallel
model: {model}
act: relu
init: he_normal
data: {{name: {dataset}, train_per_class: {per_class}}}
train: {{epochs: {epochs}, batch_size: 128, optimizer: {{name: sgd, lr: 0.05}}}}
seeds: {runs}
"""


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-per-class", type=int, default=900)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder) / "parallel.yaml"
        study.write_text(STUDY.format(model=args.model, runs=args.runs, epochs=args.epochs,
                                      per_class=args.train_per_class, dataset=args.dataset))
        serial, parallel = [], []
        for round_ in range(args.repeats):
            base = [sys.executable, "-m", "actlab.cli", "run", str(study), "--store"]
            serial.append(timed([*base, f"{folder}/s{round_}.db", "--threads", str(cores)]))
            parallel.append(timed([*base, f"{folder}/p{round_}.db", "--threads", str(cores),
                                   "--jobs", str(cores)]))
    s, p = statistics.median(serial), statistics.median(parallel)
    report("Runs in parallel vs threads per run",
           ["study", "serial, all threads", f"--jobs {cores}, 1 thread each", "speed-up"],
           [[f"{args.runs} x {args.model}, {args.epochs} epoch(s), {args.dataset}, "
             f"{args.train_per_class:,} training images per class", f"{s:.1f} s",
             f"{p:.1f} s", f"**{s / p:.2f}x**"]],
           notes=f"wall time through the CLI, fresh store each, medians of {args.repeats} "
                 "alternating rounds.", append=not args.no_append)

if __name__ == "__main__":
    main()
