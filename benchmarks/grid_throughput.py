"""Configurations per hour for a whole study, in several execution modes: each mode runs
the study from scratch through the CLI (a fresh store each), one mode after another.

    python benchmarks/grid_throughput.py STUDY.yaml [--mode "" --mode "--jobs 2"]
                                         [--data-dir ../shared/data]

A mode is the extra `actlab run` options, "" being the default (serial, all threads).
Examples (GPU goals of issue 11; a CUDA machine with the CIFAR-10 files in DATA):

    # he-init-depth at full size: serial fp32 vs actlab's fastest GPU modes
    python benchmarks/grid_throughput.py studies/he-init-depth.yaml --data-dir DATA \\
        --mode "" --mode "--runs-per-gpu 4" --mode "--cohort 6 --runs-per-gpu 2"
    # a LeNet-5 / Fashion-MNIST grid (the quickstart)
    python benchmarks/grid_throughput.py studies/quickstart.yaml \\
        --mode "" --mode "--runs-per-gpu 8" --mode "--cohort 4 --runs-per-gpu 4"

On CPU the modes worth comparing are "" (serial, both threads) and "--jobs 2".
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from record import report


def gpu_utilisation() -> subprocess.Popen | None:
    """nvidia-smi sampling GPU utilisation once a second (None without it)."""
    try:
        return subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu",
                                 "--format=csv,noheader,nounits", "-l", "1"],
                                stdout=subprocess.PIPE, text=True)
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--mode", action="append", default=None,
                        help='extra `actlab run` options, e.g. "--jobs 2" (repeatable)')
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    modes = args.mode if args.mode is not None else ["", "--jobs 2"]
    name = yaml.safe_load(args.study.read_text())["name"]
    rows, baseline = [], None
    for mode in modes:
        with tempfile.TemporaryDirectory() as folder:
            command = [sys.executable, "-m", "actlab.cli", "run", str(args.study),
                       "--store", str(Path(folder) / "actlab.db"), *shlex.split(mode)]
            if args.data_dir:
                command += ["--data-dir", args.data_dir]
            sampler = gpu_utilisation()
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            seconds = time.perf_counter() - start
            outcome = _outcome(Path(folder) / "actlab.db", name)
            utilisation = "-"
            if sampler is not None:
                sampler.terminate()
                samples = [float(v) for v in sampler.communicate()[0].split() if v.strip()]
                utilisation = f"{sum(samples) / max(1, len(samples)):.0f}%"
        baseline = baseline or seconds
        rows.append([mode or "(default: serial)", f"{seconds:.0f} s",
                     f"**{baseline / seconds:.2f}x**", outcome, utilisation])
    runs = len(_specs(args.study))
    for row in rows:
        seconds = float(row[1].rstrip(" s"))
        row.insert(2, f"{runs * 3600 / seconds:,.0f}")
    report(f"Grid throughput: {name} ({runs} runs)",
           ["mode", "wall time", "configurations per hour", "vs default",
            "runs by status", "mean GPU utilisation"], rows, append=not args.no_append)


def _outcome(store_path: Path, study: str) -> str:
    """How the mode's runs ended, e.g. "32 completed": a mode whose runs diverge or fail
    early would otherwise look fast."""
    from actlab.study.store import Store

    with Store(store_path) as store:
        counts = store.counts(store.study_id(study))
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()) if n)


def _specs(path: Path) -> list:
    from actlab.study import load_study

    return load_study(path).expand()


if __name__ == "__main__":
    main()
