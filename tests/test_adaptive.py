"""Adaptive seeds (study/stopping.py, study/phases.py): the seeds block's validation, the
stopping rules on known pairs, and studies run by the executors with a fake trainer
whose test accuracy per activation and seed is known, so which cells stop where is
known in advance."""

from __future__ import annotations

import contextlib
import math
import textwrap
from collections import Counter

import numpy as np
import pytest

import helpers
from actlab.study import Store, StudyError, executors, load_study
from actlab.study.phases import current_plan, seeding_state
from actlab.study.stopping import AdaptiveSeeds, StoppingRule, follow_cell

BASE = """
name: adaptive
model: lenet5
data: {name: synthetic, options: {train_size: 100, test_size: 20}}
train: {epochs: 1, batch_size: 20}
grid:
  act: [relu, tanh, sigmoid]
"""
#: Mean test accuracy and its spread over seeds: tanh equals the baseline with almost no
#: spread (precise at the first check), sigmoid is 10 points worse and very noisy.
TRUTH = {"relu": (0.90, 0.0005), "tanh": (0.90, 0.0005), "sigmoid": (0.80, 0.03)}


def study_file(tmp_path, seeds: str, base: str = BASE):
    path = tmp_path / "study.yaml"
    path.write_text(base + textwrap.dedent(seeds))
    return path


class FakeTrainer(helpers.FakeTrainer):
    """Test accuracy = the activation's mean + its spread x a normal draw fixed by
    (activation, seed)."""

    def metrics(self, spec) -> tuple[float, float]:
        mean, spread = TRUTH[str(spec.act)]
        draw = np.random.default_rng([sorted(TRUTH).index(str(spec.act)), spec.seed])
        test = mean + spread * float(draw.standard_normal())
        return test, test


@pytest.mark.parametrize(("seeds", "message"), [
    ("seeds: {min: 3, max: 3, until: precision(0.5)}\n", "must be above seeds.min"),
    ("seeds: {min: 1, max: 5, until: precision(0.5)}\n", "greater than or equal to 2"),
    ("seeds: {min: 3, max: 9, until: significant(0.05)}\n", "is not a stopping rule"),
    ("seeds: {min: 3, max: 9, until: precision(0)}\n", "must be positive"),
    ("seeds: {min: 3, max: 9, until: precision(0.5), baseline: {init: he}}\n",
     "which the study does not compare"),
    ("seeds: {min: 3, max: 9, until: precision(0.5), baseline: {act: elu}}\n",
     "is not one of the study's values"),
    ("seeds: {min: 3, max: 9, until: precision(0.5)}\nexclude: [{act: relu}]\n",
     "has no baseline cell"),
    ("seeds: {min: 3, max: 9, until: precision(0.5)}\ntune: {space: {lr: [0.1, 0.01]}, "
     "seeds: [100]}\n", "cannot be combined"),
    ("seeds: {min: 3, max: 9, until: precision(0.5), step: 2}\n", "step"),
])
def test_a_bad_seeds_block_is_refused_at_plan_time(tmp_path, seeds: str, message: str) -> None:
    with pytest.raises(StudyError, match=message):
        load_study(study_file(tmp_path, seeds))


def test_rules_parse_and_read_in_points() -> None:
    assert StoppingRule.parse("precision(0.3)") == StoppingRule(kind="precision", value=0.3)
    assert StoppingRule.parse(" decided( rope = 0.5 ) ") == StoppingRule(kind="decided",
                                                                        value=0.5)
    assert str(StoppingRule.parse("decided(0.5)")) == "decided(rope=0.5)"
    seeds = AdaptiveSeeds(min=3, max=9, until="precision(0.3)", metric="test_loss")
    assert (seeds.scale, seeds.sign) == (1.0, -1.0)  # loss: raw units, lower is better


def rule(until: str, low: int = 3, high: int = 8, batch: int = 1) -> AdaptiveSeeds:
    return AdaptiveSeeds(min=low, max=high, until=until, batch=batch)


def test_precision_stops_a_steady_cell_at_min_and_feeds_a_noisy_one_to_max() -> None:
    steady = follow_cell(rule("precision(0.5)"), lambda seed: (0.9 + 1e-4 * seed, 0.9))
    assert (steady.seeds, steady.status) == (3, "stopped")
    assert "precise" in steady.reason
    noisy = np.random.default_rng(0).normal(0, 0.05, 20)
    wild = follow_cell(rule("precision(0.5)"), lambda seed: (0.9 + noisy[seed], 0.9))
    assert (wild.seeds, wild.status) == (8, "stopped")
    assert "max seeds (8) reached" in wild.reason
    assert wild.half_width > 0.5


def test_a_cell_waits_for_its_runs_and_decides_only_on_its_first_n_seeds() -> None:
    # Seeds 3.. finished early (another worker) must not change the decision at n = 3.
    values = {0: 0.90, 1: 0.95, 2: 0.85, 3: 0.90, 4: 0.90, 5: 0.90}
    progress = follow_cell(rule("precision(0.5)", batch=2),
                           lambda seed: (values[seed], 0.9) if seed in values else None)
    assert progress.seeds == 7
    assert progress.status == "waiting"
    assert "waiting for 1 of 7 seed pairs" in progress.reason
    first = follow_cell(rule("precision(0.5)"), lambda seed: None)
    assert (first.seeds, first.status) == (3, "waiting")


def test_decided_stops_on_a_clear_verdict_and_cells_without_pairs_stop() -> None:
    better = follow_cell(rule("decided(rope=0.5)"), lambda seed: (0.95 + 1e-3 * seed, 0.9))
    assert (better.seeds, better.verdict) == (3, "better")
    assert "decided: better" in better.reason
    diverged = follow_cell(rule("decided(rope=0.5)"), lambda seed: (math.nan, 0.9))
    assert diverged.status == "stopped"
    assert "nothing to compare" in diverged.reason


SEEDS = "seeds: {min: 3, max: 6, until: precision(0.5)}\n"


def test_seeds_go_only_to_the_open_cells(tmp_path, monkeypatch) -> None:
    fake = FakeTrainer()
    monkeypatch.setattr(executors, "run_one", fake)
    study = load_study(study_file(tmp_path, SEEDS))
    with Store(tmp_path / "a.db") as store:
        summary = executors.run_study(store, study)
        states = {state.label: state for state in seeding_state(store, study)}
        records = store.study("adaptive").records()
    seeds = Counter(record["act"] for record in records)
    assert seeds == {"relu": 6, "tanh": 3, "sigmoid": 6}  # the baseline follows sigmoid
    assert summary.counts["completed"] == 15
    assert max(fake.trained.values()) == 1  # no run trained twice
    assert states["act=tanh"].progress.reason.startswith("precise")
    assert states["act=sigmoid"].progress.reason.startswith("max seeds (6) reached")
    assert sorted(r["seed"] for r in records if r["act"] == "sigmoid") == list(range(6))
    # Raising max later (no --replan needed): the open cell goes on, every run is reused.
    more = load_study(study_file(tmp_path, SEEDS.replace("max: 6", "max: 8")))
    with Store(tmp_path / "a.db") as store:
        executors.run_study(store, more)
        records = store.study("adaptive").records()
    assert Counter(record["act"] for record in records) == {"relu": 8, "tanh": 3,
                                                            "sigmoid": 8}
    assert max(fake.trained.values()) == 1


def test_an_interrupted_adaptive_study_resumes_to_the_same_plan(tmp_path, monkeypatch) -> None:
    study = load_study(study_file(tmp_path, SEEDS))
    clean = FakeTrainer()
    monkeypatch.setattr(executors, "run_one", clean)
    with Store(tmp_path / "clean.db") as store:
        executors.run_study(store, study)
        expected = [spec.run_id for spec in current_plan(store, study)]
    counts: Counter[str] = Counter()
    for stop_after in (4, 5, None):  # interrupted twice, once in the first seeds
        fake = FakeTrainer(stop_after=stop_after)
        monkeypatch.setattr(executors, "run_one", fake)
        with Store(tmp_path / "b.db") as store:
            with contextlib.suppress(KeyboardInterrupt):
                executors.run_study(store, study)
            counts.update(fake.trained)
    with Store(tmp_path / "b.db") as store:
        assert sorted(spec.run_id for spec in current_plan(store, study)) == sorted(expected)
        assert store.counts(store.study_id("adaptive"))["completed"] == len(expected)
    assert max(counts.values()) == 1


def test_status_plan_and_report_show_the_seeds_per_cell(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from actlab.cli import app
    from actlab.report import Report

    monkeypatch.setattr(executors, "run_one", FakeTrainer())
    path = study_file(tmp_path, SEEDS)
    db = tmp_path / "a.db"
    with Store(db) as store:
        executors.run_study(store, load_study(path))
        report = Report(store, ["adaptive"], theory=False, svg=False)
        sections = {s.title: s for s in report.sections(tmp_path / "report")}
    runner = CliRunner()
    status = runner.invoke(app, ["status", "--store", str(db)], env={"COLUMNS": "120"})
    assert "adaptive: adaptive seeds, 0 of 2 cells open, 15 runs planned" in status.output
    detail = runner.invoke(app, ["status", "adaptive", "--store", str(db)],
                           env={"COLUMNS": "160"})
    assert "max seeds (6) reached" in detail.output
    assert "precise" in detail.output
    plan = runner.invoke(app, ["plan", str(path), "--store", str(db)], env={"COLUMNS": "160"})
    assert "study adaptive: 15 runs" in plan.output
    seeds = sections["Seeds: adaptive"]
    assert "This took 15 runs, against 18 with 6 seeds for every cell (83%)" in \
        " ".join(seeds.paragraphs)
    comparison = " ".join(sections["Comparisons"].paragraphs)
    assert "**worse**: sigmoid" in comparison
    assert "**equivalent**: tanh" in comparison
    assert "ROPE" not in comparison or "±0.5 points (the default" in comparison
    assert "detecting 0.5 points needs" in comparison


KILLED = """
name: adaptive-killed
model: lenet5
data: {name: synthetic, options: {train_size: 100, test_size: 40}}
train: {epochs: 1, batch_size: 20, optimizer: {name: sgd, lr: 0.05}}
grid:
  act: [relu, tanh, sigmoid]
seeds: {min: 2, max: 4, until: precision(0.1)}
"""


@pytest.mark.slow
def test_kill_9_of_parallel_workers_resumes_to_the_serial_study(tmp_path) -> None:
    """Real processes: `actlab run --jobs 2` killed with every worker (kill -9 of the
    process group) once the plan has grown, then resumed; the store ends with the same
    plan, each run once, and the same numbers as one uninterrupted serial run."""
    import contextlib
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from helpers import db_rows, study_outcome

    path = tmp_path / "study.yaml"
    path.write_text(KILLED)

    def command(db, *extra):
        return [sys.executable, "-m", "actlab.cli", "run", str(path), "--store", str(db),
                *extra]

    # One thread per run in both (2 jobs x 1 thread): results equal to the last bit.
    clean = tmp_path / "clean.db"
    subprocess.run(command(clean, "--threads", "1"), check=True, capture_output=True,
                   timeout=600)
    killed = tmp_path / "killed.db"
    parallel = ("--jobs", "2", "--threads", "2")
    proc = subprocess.Popen(command(killed, *parallel), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(sqlite3.OperationalError):  # not created yet
            if db_rows(killed, "SELECT COUNT(*) FROM runs WHERE status='running' AND "
                               "spec LIKE '%\"seed\":2%'")[0][0] >= 1:
                break  # a run the stopping rule added is training
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert db_rows(killed, "SELECT COUNT(*) FROM runs WHERE status='running'")[0][0] >= 1
    resumed = subprocess.run(command(killed, *parallel), check=True,
                             capture_output=True, text=True, timeout=600)
    assert "instead of" not in resumed.stdout  # a growing plan keeps its workers
    assert study_outcome(killed) == study_outcome(clean)
    study = load_study(path)
    with Store(clean) as a, Store(killed) as b:
        plan = sorted(spec.run_id for spec in current_plan(a, study))
        assert plan == sorted(spec.run_id for spec in current_plan(b, study))
        assert len(plan) > 6  # the rule added seeds beyond the first two
        assert b.counts(b.study_id("adaptive-killed"))["completed"] == len(plan)


def test_the_default_rule_keeps_false_better_claims_at_the_nominal_level() -> None:
    """The simulation of docs/statistics.md at a tenth of its size (seeded, so it either
    holds or not): with every cell equal to the baseline, the default rule's cells are
    called better by the t interval, Wilcoxon and the verdict no more often than the
    nominal levels allow (3 Monte-Carlo standard errors of slack), and it spends fewer
    runs than its maximum."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from adaptive_seeds import null_scenario

    default = AdaptiveSeeds(max=15)
    assert str(default.until) == "decided(rope=0.5)"
    assert default.min == 5
    result = null_scenario(default, 150, "normal", 0.5, seed=1)
    assert result["t"] <= 0.025 + 3 * result["t_error"]
    assert result["wilcoxon"] <= 0.025 + 3 * result["wilcoxon_error"]
    assert result["verdict"] <= 0.05
    assert result["runs"] < 11 * 15
