"""Start-up time of the commands a user types to look around: wall seconds of a fresh
process, from exec to exit, for ``actlab --help``, ``list``, ``status``, ``runs`` and
``plan`` on a shipped study, with the component catalog warm (as after any earlier
command), beside ``plan`` with a cold catalog (its first use after an install or an
edit: it asks the registries, importing torch) and ``import torch`` for scale. Goal
(issue 20): each under 1 s warm.

    python benchmarks/startup.py [--repeats 5] [--no-append]

The store is a copy of tests/fixtures/legacy.db (34 runs); the catalog lives in a
temporary $ACTLAB_CACHE, so the user's is untouched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import report

ROOT = Path(__file__).resolve().parents[1]
ACTLAB = [sys.executable, "-m", "actlab.cli"]


def seconds(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Warm runs per command.")
    parser.add_argument("--no-cold", action="store_true",
                        help="Skip the cold-catalog measurement (it imports torch).")
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="actlab-startup-") as temp:
        store = Path(temp) / "actlab.db"
        shutil.copy(ROOT / "tests" / "fixtures" / "legacy.db", store)
        env = {**os.environ, "ACTLAB_CACHE": str(Path(temp) / "cache"), "COLUMNS": "120"}
        commands = {
            "actlab --help": [*ACTLAB, "--help"],
            "actlab list activations": [*ACTLAB, "list", "activations"],
            "actlab status": [*ACTLAB, "status", "--store", str(store)],
            "actlab status legacy": [*ACTLAB, "status", "legacy", "--store", str(store)],
            "actlab runs legacy": [*ACTLAB, "runs", "legacy", "--store", str(store)],
            "actlab plan studies/quickstart.yaml": [*ACTLAB, "plan", "studies/quickstart.yaml",
                                                     "--store", str(store)],
        }
        for command in commands.values():
            seconds(command, env)  # fills the catalog (the first of these asks the registries)
        rows = []
        for name, command in commands.items():
            warm = [seconds(command, env) for _ in range(args.repeats)]
            rows.append([name, f"{statistics.median(warm):.2f} s", f"{max(warm):.2f} s"])
        if not args.no_cold:
            shutil.rmtree(Path(temp) / "cache")
            cold = seconds(commands["actlab plan studies/quickstart.yaml"], env)
            rows.append(["actlab plan studies/quickstart.yaml, cold catalog",
                         f"{cold:.2f} s", "(once)"])
        reference = [seconds([sys.executable, "-c", "import torch"], env)
                     for _ in range(args.repeats)]
        rows.append(["(python -c 'import torch')", f"{statistics.median(reference):.2f} s",
                     f"{max(reference):.2f} s"])
    report("Start-up: the commands that look around (issue 20)",
           ["command", "median", "slowest"], rows,
           notes=f"Fresh processes, {args.repeats} runs each with the catalog filled; the "
                 "cold row is the first command after the catalog was deleted.",
           append=not args.no_append)


if __name__ == "__main__":
    main()
