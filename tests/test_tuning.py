"""Tuned studies (study/tuning.py, study/phases.py): the tune block's validation, the
search space's draws, the selection rule, and the two phases run by the executors with a
fake trainer whose validation metric is a known function of lr and activation."""

from __future__ import annotations

import contextlib
import math
import textwrap
from collections import Counter

import pytest

import helpers
from actlab.study import Store, StudyError, executors, load_study, parse_study
from actlab.study.phases import current_plan, tuning_state
from actlab.study.tuning import Distribution, TuneSpec, select

BASE = """
name: tuned
model: lenet5
data: {name: synthetic, options: {train_size: 100, test_size: 20}}
train: {epochs: 1, batch_size: 20}
grid:
  act: [relu, tanh]
"""
#: The best lr of each activation on validation; the test metric prefers the opposite.
BEST_VAL_LR = {"relu": 0.01, "tanh": 0.1}


def study_file(tmp_path, tune: str, extra: str = "seeds: 2\n"):
    path = tmp_path / "study.yaml"
    path.write_text(BASE + textwrap.dedent(tune) + extra)
    return path


@pytest.mark.parametrize(("tune", "message"), [
    ("tune: {space: {lr: [0.01, 0.1]}, select: test_acc}\n", "a test metric"),
    ("tune: {space: {lr: [0.01, 0.1]}, seeds: [0, 5]}\n", "tuning and final seeds overlap"),
    ("tune: {space: {}}\n", "tune.space must name at least one run field"),
    ("tune: {space: {lr: [0.01, 0.1]}, trials: 3}\n", "the grid has only 2 points"),
    ("tune: {space: {lr: [0.01, 0.1]}, per: [init]}\n", "which the study does not vary"),
    ("tune: {space: {lr: 'loguniform(0, 0.1)'}, method: random, trials: 4}\n",
     "needs a positive low bound"),
    ("tune: {space: {lr: 'uniform(0.1, 0.01)'}, method: random, trials: 4}\n",
     "needs low < high"),
    ("tune: {space: {lr: 'normal(0, 1)'}, method: random, trials: 4}\n",
     "is neither a list of values nor loguniform"),
    ("tune: {space: {lr: 'loguniform(1e-4, 1e-1)'}}\n", "grid needs a list of values"),
    ("tune: {space: {lr: 'loguniform(1e-4, 1e-1)'}, method: random}\n",
     "needs tune.trials"),
    ("tune: {space: {act: [relu, elu]}}\n", "is both a study axis and tuned"),
    ("tune: {space: {colour: [1, 2]}}\n", "unknown tune.space axis 'colour'"),
])
def test_a_bad_tune_block_is_refused_at_plan_time(tmp_path, tune: str, message: str) -> None:
    with pytest.raises(StudyError, match=message):
        load_study(study_file(tmp_path, tune))


def test_random_draws_are_reproducible_and_in_range() -> None:
    tune = TuneSpec(space={"train.optimizer.lr": "loguniform(1e-4, 1e-1)",
                           "train.optimizer.weight_decay": [0, 5e-4]},
                    method="random", trials=50, draw_seed=3)
    draws = tune.configurations()
    assert draws == tune.configurations()
    lrs = [d["train.optimizer.lr"] for d in draws]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs)
    assert sum(lr < 1e-2 for lr in lrs) > 15  # log-uniform: 2 of 3 decades below 1e-2
    assert {d["train.optimizer.weight_decay"] for d in draws} == {0, 5e-4}
    assert TuneSpec(space={"lr": [1, 2, 3, 4]}, trials=2).configurations() == TuneSpec(
        space={"lr": [1, 2, 3, 4]}, trials=2).configurations()
    assert str(Distribution.parse("loguniform(1e-4, 0.1)", "lr")) == "loguniform(0.0001, 0.1)"


def test_the_selection_rule() -> None:
    tune = TuneSpec(space={"train.optimizer.lr": [0.01, 0.1, 1.0]})
    lr = "train.optimizer.lr"
    chosen, mean = select(tune, [({lr: 0.01}, 0.5), ({lr: 0.01}, 0.7), ({lr: 0.1}, 0.6),
                                 ({lr: 0.1}, 0.6), ({lr: 1.0}, math.nan), ({lr: 1.0}, 0.99)])
    assert chosen == {lr: 0.01}  # a tie of means (0.6) goes to the smaller lr
    assert mean == pytest.approx(0.6)  # and a trial with a diverged seed never wins
    loss = TuneSpec(space={lr: [0.01, 0.1]}, select="val_loss")
    assert select(loss, [({lr: 0.01}, 0.9), ({lr: 0.1}, 0.3)])[0] == {lr: 0.1}
    with pytest.raises(ValueError, match="every trial of the group diverged"):
        select(tune, [({lr: 0.01}, math.nan)])
    assert tune.on_edge({lr: 0.01}) == [lr]
    assert tune.on_edge({lr: 0.1}) == []


class FakeTrainer(helpers.FakeTrainer):
    """The validation accuracy peaks at the activation's best lr (:data:`BEST_VAL_LR`),
    the test accuracy at the other activation's, so a selection that looked at test
    metrics would pick the wrong lr."""

    def metrics(self, spec) -> tuple[float, float]:
        act, lr = str(spec.act), spec.train.optimizer.lr
        other = BEST_VAL_LR["tanh" if act == "relu" else "relu"]
        val = 0.9 - 0.1 * abs(math.log10(lr / BEST_VAL_LR[act])) + 0.001 * (spec.seed % 2)
        return val, 0.9 - 0.1 * abs(math.log10(lr / other))


TUNE = """\
tune:
  space: {lr: [0.001, 0.01, 0.1, 1.0]}
  seeds: 2
"""


def test_each_group_selects_its_best_validation_lr_and_runs_its_finals(tmp_path,
                                                                       monkeypatch) -> None:
    fake = FakeTrainer()
    monkeypatch.setattr(executors, "run_one", fake)
    study = load_study(study_file(tmp_path, TUNE, "seeds: 3\n"))
    with Store(tmp_path / "a.db") as store:
        summary = executors.run_study(store, study)
        assert summary.counts["completed"] == 2 * 4 * 2 + 2 * 3  # trials, then finals
        states = {s.group.split("act=")[1]: s for s in tuning_state(store, study)}
        records = store.study("tuned").records()
    for act, best in BEST_VAL_LR.items():
        assert states[act].selection.configuration == {"train.optimizer.lr": best}
    finals = [(r["act"], r["lr"], r["seed"]) for r in records if r["seed"] < 3]
    assert sorted(finals) == sorted((act, lr, seed) for act, lr in BEST_VAL_LR.items()
                                    for seed in range(3))
    assert max(fake.trained.values()) == 1  # no run trained twice


def test_a_study_stopped_in_either_phase_resumes_with_the_same_selections(
        tmp_path, monkeypatch) -> None:
    study = load_study(study_file(tmp_path, TUNE))
    counts: Counter[str] = Counter()
    for stop_after in (5, 19, None):  # inside the trials, inside the finals, the rest
        fake = FakeTrainer(stop_after=stop_after and stop_after - sum(counts.values()))
        monkeypatch.setattr(executors, "run_one", fake)
        with Store(tmp_path / "a.db") as store, contextlib.suppress(KeyboardInterrupt):
            executors.run_study(store, study)
        counts.update(fake.trained)
    assert max(counts.values()) == 1  # nothing trained twice
    assert sum(counts.values()) == 2 * 4 * 2 + 2 * 2
    with Store(tmp_path / "a.db") as store:
        plan = current_plan(store, study)
        assert len(plan) == 20
        assert {s.train.optimizer.lr for s in plan if s.seed < 2} == {0.01, 0.1}


def test_plan_counts_trials_and_finals(tmp_path) -> None:
    study = parse_study({"name": "t", "grid": {"act": ["relu", "tanh"]}, "seeds": 3,
                         "tune": {"space": {"lr": [0.01, 0.1]}, "seeds": 2}})
    assert study.cell_count() == 2 * (2 * 2 + 3)
    assert len(study.expand()) == 8  # the trials; finals join once decided
    assert {study.role_of(s) for s in study.expand()} == {"tune"}


def test_the_report_shows_the_tuning_and_keeps_trials_out_of_the_results(
        tmp_path, monkeypatch) -> None:
    from actlab.report import write_report

    monkeypatch.setattr(executors, "run_one", FakeTrainer())
    study = load_study(study_file(tmp_path, TUNE, "seeds: 3\n"))
    with Store(tmp_path / "a.db") as store:
        executors.run_study(store, study)
        write_report(store, ["tuned"], tmp_path / "report", theory=False, svg=False)
    text = (tmp_path / "report" / "report.md").read_text()
    tuned = text.split("## Tuned comparison: tuned")[1].split("\n## ")[0]
    assert "4 trials (grid) over lr in {0.001, 0.01, 0.1, 1}" in tuned
    assert "| model=lenet5, dataset=synthetic, act=relu | 8/8 | lr=0.01 |" in tuned
    assert "| model=lenet5, dataset=synthetic, act=tanh | 8/8 | lr=0.1 |" in tuned
    assert "on the edge of the search space" not in tuned  # 0.01 and 0.1 are inside
    assert (tmp_path / "report" / "figures" / "tuned-tuning-trials.png").exists()
    results = text.split("## Results")[1].split("\n## ")[0]
    assert "(n=3)" in results  # the finals only: 3 seeds, not 3 + 8 trials
    assert "(n=11)" not in results


def test_plan_and_status_show_both_phases(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from actlab.cli import app

    path = study_file(tmp_path, TUNE, "seeds: 3\n")
    db = str(tmp_path / "a.db")
    runner = CliRunner()
    before = runner.invoke(app, ["plan", str(path), "--store", db], terminal_width=200)
    assert before.exit_code == 0, before.output
    assert "tuning: 0 of 2 groups decided" in before.output
    assert "study tuned: 16 runs" in before.output  # the trials; finals join later
    monkeypatch.setattr(executors, "run_one", FakeTrainer())
    with Store(db) as store:
        executors.run_study(store, load_study(path))
    after = runner.invoke(app, ["plan", str(path), "--store", db], terminal_width=200)
    assert "tuning: 2 of 2 groups decided" in after.output
    assert "study tuned: 22 runs" in after.output
    assert "22 of 22 runs finished" in after.output
    status = runner.invoke(app, ["status", "tuned", "--store", db], terminal_width=200)
    assert status.exit_code == 0, status.output
    assert "tuning: 2 of 2 groups decided" in status.output
    assert "lr=0.01" in status.output
    assert "lr=0.1" in status.output


def test_tuned_and_shared_rankings_side_by_side(tmp_path, monkeypatch) -> None:
    """With tune.shared the cells also run at the study's own lr: at 1.0 the fake
    trainer puts tanh ahead (its best lr is nearer), tuned both tie at their best."""
    from actlab.report import write_report

    monkeypatch.setattr(executors, "run_one", FakeTrainer())
    tune = TUNE.replace("  seeds: 2\n", "  seeds: 2\n  shared: true\n")
    path = study_file(tmp_path, tune, "seeds: 3\n")
    path.write_text(path.read_text().replace("batch_size: 20}",
                                             "batch_size: 20, optimizer: {lr: 1.0}}"))
    study = load_study(path)
    assert study.cell_count() == 2 * (4 * 2 + 3 + 3)
    with Store(tmp_path / "a.db") as store:
        summary = executors.run_study(store, study)
        assert summary.counts["completed"] == 2 * (4 * 2 + 3 + 3)
        write_report(store, ["tuned"], tmp_path / "report", theory=False, svg=False)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "### Tuned vs shared (lenet5, synthetic)" in text
    assert "Kendall's tau between the two rankings" in text
    assert "| tanh | 80.00 ± 0.00 (n=3) | 1 | 70.00 ± 0.00 (n=3) | 2 |" in text
    assert "tuning changed the rank of tanh" in text
    results = text.split("## Results")[1].split("\n## ")[0]
    assert "(n=3)" in results
    assert "(n=6)" not in results  # the shared runs are not in the final tables


KILLED = """
name: tuned-killed
model: simple_cnn
model_options: {width: 8}
data: {name: synthetic, options: {train_size: 300, test_size: 60, image_size: 16, channels: 3}}
train: {epochs: 2, batch_size: 30}
grid:
  act: [relu, tanh]
tune:
  space: {lr: [0.01, 0.1]}
  seeds: 1
seeds: 1
"""


@pytest.mark.slow
def test_kill_9_in_either_phase_resumes_to_the_uninterrupted_study(tmp_path) -> None:
    """Real processes: kill -9 while the trials run, and again while the finals run; the
    resumed study has every run once, the same numbers and the same selections as an
    uninterrupted one."""
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from helpers import db_rows, study_outcome

    path = tmp_path / "study.yaml"
    path.write_text(KILLED)

    def command(db):
        return [sys.executable, "-m", "actlab.cli", "run", str(path), "--store", str(db),
                "--threads", "1"]

    def kill_when(db, query: str, at_least: int) -> None:
        proc = subprocess.Popen(command(db), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(sqlite3.OperationalError):  # not created yet
                if db_rows(db, query)[0][0] >= at_least:
                    break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    clean = tmp_path / "clean.db"
    subprocess.run(command(clean), check=True, capture_output=True, timeout=600)
    killed = tmp_path / "killed.db"
    kill_when(killed, "SELECT COUNT(*) FROM runs WHERE status='completed'", 2)  # trials
    kill_when(killed, "SELECT COUNT(*) FROM runs WHERE status='running' AND "
                      "cell LIKE '%\"role\": \"final\"%'", 1)  # a final run in training
    subprocess.run(command(killed), check=True, capture_output=True, timeout=600)
    assert db_rows(killed, "SELECT status, COUNT(*) FROM runs GROUP BY 1") == [
        ("completed", 6)]
    assert study_outcome(killed) == study_outcome(clean)
    study = load_study(path)
    with Store(clean) as a, Store(killed) as b:
        assert [s.selection for s in tuning_state(a, study)] == [
            s.selection for s in tuning_state(b, study)]


def test_successive_halving_keeps_the_best_trial_and_records_where_it_stopped_the_others(
        tmp_path, monkeypatch) -> None:
    from actlab.report import write_report

    fake = FakeTrainer()
    monkeypatch.setattr(executors, "run_one", fake)
    lrs = [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
    tune = f"tune:\n  space: {{lr: {lrs}}}\n  method: halving\n  seeds: 1\n"
    path = study_file(tmp_path, tune, "seeds: 2\n")
    path.write_text(path.read_text().replace("epochs: 1,", "epochs: 4,"))
    study = load_study(path)
    assert study.tune.rungs(4) == [(8, 1), (2, 2), (1, 4)]
    with Store(tmp_path / "a.db") as store:
        executors.run_study(store, study)
        states = {s.group.split("act=")[1]: s for s in tuning_state(store, study)}
        epochs = {r["run_id"]: r["epochs"] for r in store.study("tuned").records()}
        write_report(store, ["tuned"], tmp_path / "report", theory=False, svg=False)
    for act, best in BEST_VAL_LR.items():
        state = states[act]
        assert state.selection.configuration == {"train.optimizer.lr": best}
        assert len(state.planned) == 8 + 2 + 1  # rung by rung: 8 at 1 epoch, 2 at 2, 1 at 4
        assert sorted(e for _, e in state.stopped) == [1] * 6 + [2]
        assert f"lr={best:g}" not in {text for text, _ in state.stopped}
    text = " ".join((tmp_path / "report" / "report.md").read_text().split())
    assert "(8 at 1 epoch, 2 at 2 epochs, 1 at 4 epochs)" in text
    assert "lr=0.0003 after 1" in text
    trial_epochs = sorted(epochs[s.run_id] for s in states["relu"].planned)
    assert trial_epochs == [1] * 8 + [2] * 2 + [4]
    assert sum(fake.trained.values()) == 2 * 11 + 2 * 2  # trials of both groups, finals
    assert max(fake.trained.values()) == 1


def test_a_decided_selection_is_stored_and_stands(tmp_path, monkeypatch) -> None:
    """The store keeps each group's first selection: a trial's result changed later
    (re-run, edited by hand) does not move a decided group's finals."""
    import sqlite3

    monkeypatch.setattr(executors, "run_one", FakeTrainer())
    study = load_study(study_file(tmp_path, TUNE))
    with Store(tmp_path / "a.db") as store:
        executors.run_study(store, study)
        recorded = store.selections("tuned")
    assert {g.split("act=")[1]: c for g, (c, _) in recorded.items()} == {
        act: {"train.optimizer.lr": lr} for act, lr in BEST_VAL_LR.items()}
    with sqlite3.connect(tmp_path / "a.db") as conn:  # make relu's lr 1.0 trials win
        conn.execute("UPDATE epochs SET val_acc = 0.99 WHERE lr = 1.0")
    with Store(tmp_path / "a.db") as store:
        relu = next(s for s in tuning_state(store, study) if s.group.endswith("relu"))
        assert relu.selection.configuration == {"train.optimizer.lr": 0.01}
        assert len(current_plan(store, study)) == 2 * 4 * 2 + 2 * 2
    from typer.testing import CliRunner

    from actlab.cli import app

    deleted = CliRunner().invoke(app, ["delete", "tuned", "--store", str(tmp_path / "a.db"),
                                       "--yes"])
    assert deleted.exit_code == 0, deleted.output
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM selections").fetchone() == (0,)
