"""Every benchmark script runs from a checkout with one command and prints its table.

The numbers are not checked (they belong in BENCHMARKS.md, never in assertions); what a
user depends on is that each script runs, prints a Markdown table with a row per
measurement and, with ``--no-append``, leaves BENCHMARKS.md alone. Each runs here on
synthetic data at the smallest size that exercises all of its code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

QUICK_ARGS = {
    "adaptive_seeds.py": ["--studies", "3", "--tails", "normal", "--rules",
                          "3:5:precision(0.5):1"],
    "af_cost.py": ["--models", "lenet5", "--acts", "relu", "mish", "--rounds", "1",
                   "--batch", "8"],
    "cohort.py": ["--dataset", "synthetic", "--members", "2", "--epochs", "1",
                  "--per-class", "20"],
    "compile_reuse.py": ["--models", "lenet5", "--dataset", "synthetic", "--runs", "2",
                         "--per-class", "20"],
    "engine_overhead.py": ["--dataset", "synthetic", "--epochs", "1"],
    "grid_throughput.py": ["{tmp}/one-run.yaml", "--mode", ""],
    "input_pipeline.py": ["--data-dir", "{tmp}", "--train-size", "200", "--epochs", "1",
                          "--workers", "0"],
    "notebook_loop.py": ["--setups", "lenet5/synthetic", "--epochs", "1", "--workers", "0"],
    "parallel_runs.py": ["--dataset", "synthetic", "--runs", "2", "--train-per-class", "20",
                         "--repeats", "1"],
    "plan_size.py": ["--runs", "20"],
    "startup.py": ["--repeats", "1", "--no-cold"],
    "step_profile.py": ["--steps", "2", "--rows", "3"],
}
ONE_RUN_STUDY = """
name: one-run
model: lenet5
act: relu
init: he_normal
data: {name: synthetic, options: {train_size: 200, test_size: 50}}
train: {epochs: 1, batch_size: 32, optimizer: {name: sgd, lr: 0.01}}
"""
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "record.py")


def test_every_benchmark_has_a_quick_command() -> None:
    assert set(SCRIPTS) == set(QUICK_ARGS), (
        "add the new benchmark's quick arguments to QUICK_ARGS (or drop a removed one)")


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_and_prints_its_table(script: str, tmp_path: Path) -> None:
    log_before = (ROOT / "BENCHMARKS.md").read_bytes()
    (tmp_path / "one-run.yaml").write_text(ONE_RUN_STUDY)
    args = [a.replace("{tmp}", str(tmp_path)) for a in QUICK_ARGS[script]]
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args, "--no-append"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    separator = [i for i, line in enumerate(lines) if re.fullmatch(r"\|(---\|)+", line)]
    assert separator, f"no Markdown table in the output:\n{done.stdout[-2000:]}"
    header, first_row = lines[separator[0] - 1], lines[separator[0] + 1]
    assert first_row.startswith("|")
    assert first_row.count("|") == header.count("|")
    assert (ROOT / "BENCHMARKS.md").read_bytes() == log_before


def test_report_appends_table_with_machine_and_command(tmp_path: Path, monkeypatch,
                                                      capsys) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import record
    finally:
        sys.path.remove(str(BENCHMARKS))
    log = tmp_path / "BENCHMARKS.md"
    log.write_text("# Benchmarks\n\nGoals.\n")
    monkeypatch.setattr(record, "BENCHMARKS", log)
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "benchmarks" / "x.py"), "--runs", "2"])
    record.report("A title", ["a", "b"], [[1, "2 s"]], notes="n")
    record.report("Second", ["c"], [[3]])
    text = log.read_text()
    assert text.startswith("# Benchmarks\n\nGoals.\n\n## Log\n")
    first, second = text.index("### A title ("), text.index("### Second (")
    assert first < second
    assert record.machine() in text
    assert "`python benchmarks/x.py --runs 2`" in text
    assert "| a | b |\n|---|---|\n| 1 | 2 s |\n\nn\n" in text
    assert "A title" in capsys.readouterr().out
