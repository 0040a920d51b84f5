"""How long a large plan takes before anything trains (issue 21, item 8: a grid of
50,000 cells must expand in seconds, not minutes).

For each size, a study of that many runs (activations x initializers x lrs x batch
sizes x seeds on synthetic data) is written to a temporary folder and timed, each step
in a fresh process so that nothing is remembered between them: ``load_study`` (parse,
count, expand and validate every cell), labelling the cells (what ``plan`` and the
store show), registering the plan in a new SQLite store (what ``actlab run`` does
first), and the whole ``actlab plan STUDY --yes`` command.

    python benchmarks/plan_size.py [--runs 5000 --runs 50000] [--no-append]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import report

ROOT = Path(__file__).resolve().parents[1]
ACTS = ["relu", "tanh", "elu", "gelu", "silu", "mish", "sigmoid", "softplus", "selu",
        "hardswish"]
INITS = ["he", "xavier", "lecun", "orthogonal", "default"]
LRS = [0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2]
BATCHES = [16, 24, 32, 48, 64, 96, 128, 192, 256, 512]
STEPS = """
import sys, time
from actlab.study import Store
from actlab.study.cells import cell_labels
from actlab.study.plan import load_study
start = time.perf_counter()
study = load_study(sys.argv[1], max_runs=10**9)
specs = study.expand()
loaded = time.perf_counter()
cell_labels(specs)
labelled = time.perf_counter()
with Store(sys.argv[2]) as store:
    store.register_study(study, specs)
print(len(specs), loaded - start, labelled - loaded, time.perf_counter() - labelled)
"""


def study_text(runs: int) -> str:
    """A study of ``runs`` runs: the first axes that multiply to it, then seeds."""
    axes = {"act": ACTS, "init": INITS, "lr": LRS, "batch_size": BATCHES}
    grid, cells = {}, 1
    for name, values in axes.items():
        take = min(len(values), max(1, runs // cells))
        grid[name] = values[:take]
        cells *= take
    seeds = max(1, runs // cells)
    lines = [f"  {name}: [{', '.join(map(str, values))}]" for name, values in grid.items()]
    return ("name: big\nmodel: simple_cnn\ndata: {name: synthetic}\ntrain: {epochs: 1}\n"
            "grid:\n" + "\n".join(lines) + f"\nseeds: {seeds}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, action="append",
                        help="Plan sizes [default: 5000 and 50000].")
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="actlab-plan-size-") as temp:
        env = {**os.environ, "ACTLAB_CACHE": str(Path(temp) / "cache"), "COLUMNS": "120"}
        for runs in args.runs or [5000, 50000]:
            study = Path(temp) / f"big-{runs}.yaml"
            study.write_text(study_text(runs))
            store = Path(temp) / f"big-{runs}.db"
            subprocess.run([sys.executable, "-m", "actlab.cli", "plan", str(study), "--yes"],
                           env=env, check=True, capture_output=True)  # fills the catalog
            out = subprocess.run([sys.executable, "-c", STEPS, str(study), str(store)],
                                 env=env, check=True, capture_output=True, text=True).stdout
            count, load, label, register = out.split()
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "actlab.cli", "plan", str(study), "--yes",
                            "--store", str(Path(temp) / "none.db")],
                           env=env, check=True, capture_output=True)
            whole = time.perf_counter() - start
            rows.append([f"{int(count):,}", f"{float(load):.2f} s", f"{float(label):.2f} s",
                         f"{float(register):.2f} s", f"{whole:.2f} s"])
    report("Plan size: expanding, labelling and registering a large grid (issue 21)",
           ["runs", "load_study (expand + validate)", "cell labels", "register in a new store",
            "actlab plan --yes (whole command)"], rows,
           notes="Each step in a fresh process with the component catalog filled; `plan` "
                 "draws the first 200 rows (--limit).", append=not args.no_append)


if __name__ == "__main__":
    main()
