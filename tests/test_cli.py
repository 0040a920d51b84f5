"""The command line end to end, on real files, a real SQLite store and real processes."""

import re

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from actlab.study import Store, load_study
from helpers import db_rows, needs_fashion, write_image_folder, write_mnist_dir

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)



def test_run_then_rerun_does_no_new_training_and_report(tmp_path, tiny_study_file) -> None:
    db = tmp_path / "results" / "actlab.db"
    first = invoke("run", str(tiny_study_file), "--store", str(db), "--threads", "1")
    assert first.exit_code == 0, first.output
    assert "8 completed" in first.output
    assert "(8 run now" in first.output
    # Again, with --report: nothing trains, the report is written beside the store.
    second = invoke("run", str(tiny_study_file), "--store", str(db), "--report")
    assert second.exit_code == 0
    assert "(0 run now" in second.output
    attempts = db_rows(db, "SELECT attempts FROM runs")
    assert [a for (a,) in attempts] == [1] * 8
    assert (tmp_path / "results" / "reports" / "tiny" / "report.md").exists()

    out = tmp_path / "report"
    result = invoke("report", "tiny", "--store", str(db), "-o", str(out), "--no-svg",
                    "--no-theory")
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "| relu | " in report
    assert "(n=2)" in report
    assert "**" in report
    for name in ("runs.csv", "epochs.csv", "figures/val_acc.png", "figures/train_loss.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "figures/val_acc.png").read_bytes()[:4] == b"\x89PNG"
    assert len((out / "runs.csv").read_text().strip().splitlines()) == 9


def test_bad_study_exits_nonzero_and_leaves_the_store_alone(tmp_path) -> None:
    study = tmp_path / "bad.yaml"
    study.write_text("name: bad\ngrid: {act: [relu, relu6x]}\n")
    db = tmp_path / "actlab.db"
    result = runner.invoke(app, ["run", str(study), "--store", str(db)])
    assert result.exit_code == 2
    assert "unknown activation 'relu6x'" in result.output
    assert not db.exists()


def test_failing_run_is_recorded_and_the_study_goes_on(tmp_path) -> None:
    study = tmp_path / "partly.yaml"
    # The data loads (checked before anything runs), but one cell asks for more examples
    # per class than there are: that run fails when it starts, the other completes.
    study.write_text(
        "name: partly\ntrain: {epochs: 1, batch_size: 32, optimizer: {lr: 0.01}}\n"
        "data: {name: synthetic, options: {train_size: 200, test_size: 50}}\n"
        "grid: {data.train_per_class: [10, 500]}\n")
    db = tmp_path / "actlab.db"
    result = runner.invoke(app, ["run", str(study), "--store", str(db)])
    assert result.exit_code == 1
    assert "1 run(s) failed" in result.output
    rows = dict(db_rows(db, "SELECT status, error FROM runs"))
    assert rows.keys() == {"failed", "completed"}
    assert "500 per class were asked for" in rows["failed"]
    report = runner.invoke(app, ["report", "partly", "--store", str(db), "-o",
                                 str(tmp_path / "r"), "--no-theory", "--no-svg"])
    assert report.exit_code == 0
    assert "failed: actlab.data.base.DatasetError" in (tmp_path / "r" / "report.md").read_text()


def test_report_of_unknown_study_or_store(tmp_path, tiny_study_file) -> None:
    result = runner.invoke(app, ["report", "tiny", "--store", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert "no run store" in result.output
    db = tmp_path / "actlab.db"
    with Store(db) as store:  # a store with another study (its plan: nothing to train)
        study = load_study(tiny_study_file)
        store.register_study(study, study.expand())
    result = runner.invoke(app, ["report", "nope", "--store", str(db)])
    assert result.exit_code == 2
    assert "no study named 'nope'" in result.output


@pytest.mark.parametrize(("what", "expected"), [
    ("activations", "leaky_relu"), ("inits", "he_normal"), ("models", "lenet5"),
    ("datasets", "fashion_mnist"), ("schedules", "cosine")])
def test_list_prints_registries(what: str, expected: str) -> None:
    result = invoke("list", what)
    assert result.exit_code == 0
    assert expected in result.output


def test_list_activation_details_shows_formula_properties_and_gains() -> None:
    result = invoke("list", "activations", "--details")
    assert result.exit_code == 0
    assert "1.4142" in result.output  # relu's matched gain
    assert "1.6667" in result.output  # tanh's torch gain, 5/3
    assert "alpha, beta" in result.output  # tact's learnable parameters


def test_models_show_prints_counts_sites_and_fixed_gates() -> None:
    result = runner.invoke(app, ["models", "show", "se_resnet18", "--act", "tact"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "11,263,092" in result.output  # 11,263,042 + 2 tact parameters x 25 sites
    assert "stages.0.0.se.gate" in result.output
    assert "555.5 M" in result.output
    option = runner.invoke(app, ["models", "show", "resnet20", "-o", "shortcut=B"])
    assert "272,474" in option.output


@pytest.mark.parametrize(("args", "message"), [
    (["models", "show", "resnet20", "-o", "depth=32"], "has no option 'depth'"),
    (["models", "show", "resnet20", "-o", "depth"], "is not key=value"),
    (["models", "show", "lenet5", "--size", "16"], "at least 28x28"),
    (["models", "show", "resnet9000"], "unknown model 'resnet9000'"),
    (["models", "show", "lenet5", "--act", "relu6x"], "unknown activation 'relu6x'"),
])
def test_models_show_bad_input_exits_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 2
    assert message in result.output


def test_models_list_covers_the_registry() -> None:
    result = runner.invoke(app, ["models", "list", "resnet*"], terminal_width=200)
    assert result.exit_code == 0
    assert "11,173,962" in result.output
    assert "resnet110" in result.output
    assert "lenet5" not in result.output


def _command_paths(group, prefix=()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in group.commands.items():
        paths.append((*prefix, name))
        if hasattr(command, "commands"):
            paths += _command_paths(command, (*prefix, name))
    return paths


def test_every_help_text_keeps_its_defaults_and_wraps_its_paragraphs() -> None:
    """Help is Markdown: `[default: ...]` is text (rich markup used to swallow it and
    leave "store ."), and a docstring's line breaks are not kept."""
    import typer

    paths = _command_paths(typer.main.get_command(app))
    assert ("run",) in paths
    assert ("models", "show") in paths
    for path in paths:
        text = runner.invoke(app, [*path, "--help"], terminal_width=100).output
        assert not re.search(r"\w \.(\s|$)", text), (path, text)
    run_help = " ".join(invoke("run", "--help").output.replace("│", " ").split())
    assert "[default: results/actlab.db, or $ACTLAB_STORE]" in run_help


def test_list_unknown_registry_fails() -> None:
    result = runner.invoke(app, ["list", "optimisers"])
    assert result.exit_code == 2
    assert "choose from activations" in result.output


def test_plan_and_status(tmp_path, tiny_study_file) -> None:
    db = tmp_path / "actlab.db"
    plan = invoke("plan", str(tiny_study_file), "--store", str(db))
    assert plan.exit_code == 0
    assert "8 runs" in plan.output
    assert "new" in plan.output
    assert "no finished runs in this store" in " ".join(plan.output.split())
    invoke("run", str(tiny_study_file), "--store", str(db))
    status = invoke("status", "--store", str(db))
    assert status.exit_code == 0
    assert "tiny" in status.output
    # More seeds of the same cells: the plan estimates the new runs from the finished ones.
    text = tiny_study_file.read_text().replace("seeds: 2", "seeds: 3")
    tiny_study_file.write_text(text)
    again = " ".join(invoke("plan", str(tiny_study_file), "--store", str(db)).output.split())
    assert "8 of 12 runs finished" in again
    assert re.search(r"about \d+ s for the 4 left", again)
    assert "has another plan (8 runs)" in again
    assert "--replan" in again
    # Running it is refused (the stored study keeps its plan), unless --replan.
    refused = invoke("run", str(tiny_study_file), "--store", str(db))
    assert refused.exit_code == 2
    assert "seeds: 2 -> 3" in " ".join(refused.output.split())
    assert db_rows(db, "SELECT COUNT(*) FROM runs")[0][0] == 8
    replanned = invoke("run", str(tiny_study_file), "--store", str(db), "--replan")
    assert replanned.exit_code == 0, replanned.output
    assert "12 completed" in replanned.output


SWEEP = """
name: sweep
model: lenet5
data: {name: synthetic, options: {train_size: 100, test_size: 20}}
grid:
  lr: [0.01, 0.02, 0.05]
  schedule: [fixed, cosine]
"""


def test_plan_and_runs_show_the_axes_that_vary_at_80_columns(tmp_path) -> None:
    """An lr sweep's cells differ in lr and schedule: both are columns of `plan` and
    `runs`, the axes that do not vary are named once under the table, and nothing is cut
    to a few characters at 80 columns. `runs -w` filters on any column, even before a
    run has finished."""
    study = tmp_path / "sweep.yaml"
    study.write_text(SWEEP)
    db = tmp_path / "a.db"
    plan = runner.invoke(app, ["plan", str(study), "--store", str(db)], terminal_width=80)
    assert plan.exit_code == 0, plan.output
    rows = [line for line in plan.output.splitlines() if "│" in line and "new" in line]
    assert len(rows) == 6
    assert {line.split("│")[2].strip() for line in rows} == {"0.01", "0.02", "0.05"}
    assert "same in every run: model=lenet5" in " ".join(plan.output.split())
    assert "…" not in plan.output
    first = runner.invoke(app, ["plan", str(study), "--store", str(db), "--limit", "2"],
                          terminal_width=80)
    assert len([line for line in first.output.splitlines() if "new" in line]) == 2
    assert "showing the first 2 of 6 runs (--limit 0 shows all)" in first.output
    assert "--columns" not in first.output  # plan has no such option
    with Store(db) as store:
        loaded = load_study(study)
        store.register_study(loaded, loaded.expand())
    table = runner.invoke(app, ["runs", "sweep", "--store", str(db), "-w", "lr=0.02",
                                "-w", "act=relu"], terminal_width=80)
    assert table.exit_code == 0, table.output
    assert "sweep: 2 run(s)" in table.output
    assert "…" not in table.output
    assert "cosine" in table.output
    bad = runner.invoke(app, ["runs", "sweep", "--store", str(db), "-w", "colour=red"])
    assert bad.exit_code == 2
    assert "column=value with a column of model" in " ".join(bad.output.split())


def test_data_info_and_show_on_an_image_folder(tmp_path) -> None:
    root = write_image_folder(tmp_path / "data" / "pets", size=(16, 16))
    info = runner.invoke(app, ["data", "info", "imagefolder", "--data-dir",
                               str(tmp_path / "data"), "-o", "path=pets"], terminal_width=200)
    assert info.exit_code == 0, info.output
    assert "12 images" in info.output
    assert "3: cat, dog, frog" in info.output
    assert "cache" in info.output
    out = tmp_path / "grid.png"
    show = runner.invoke(app, ["data", "show", "imagefolder", "-o", str(out), "--option",
                               f"path={root}", "--corruption", "gaussian_noise(severity=5)"])
    assert show.exit_code == 0, show.output
    from PIL import Image

    with Image.open(out) as image:
        assert image.width > image.height  # clean and corrupted panels side by side


@pytest.mark.parametrize(("args", "message"), [
    (["data", "info", "cifar10", "--data-dir", "/nonexistent"], "does not exist"),
    (["data", "info", "imagefolder"], "needs the option `path`"),
    (["data", "info", "imagefolder", "-o", "size=3"], "has no option 'size'"),
    (["data", "show", "synthetic", "--corruption", "fog(severity=1)"], "unknown corruption"),
    (["data", "show", "synthetic", "--corruption", "contrast(severity=9)"], "severity must be"),
])
def test_data_commands_fail_clearly(args: list[str], message: str) -> None:
    result = runner.invoke(app, args, terminal_width=300)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize("where", ["missing", "a file"])
def test_a_data_dir_that_is_no_directory_is_an_error(tmp_path, tiny_study_file,
                                                     monkeypatch, where: str) -> None:
    """Never a silent fall-back to data elsewhere (Debian's Fashion-MNIST)."""
    path = tmp_path / "data"
    if where == "a file":
        path.write_text("not a folder")
    fashion = tmp_path / "f.yaml"
    fashion.write_text("name: f\nmodel: lenet5\ndata: {name: fashion_mnist}\n")
    db = tmp_path / "a.db"
    flag = runner.invoke(app, ["run", str(fashion), "--store", str(db), "--data-dir",
                               str(path)], terminal_width=300)
    assert flag.exit_code == 2
    text = " ".join(flag.output.replace("│", " ").split())
    assert ("does not exist" if where == "missing" else "is a file") in text
    monkeypatch.setenv("ACTLAB_DATA", str(path))
    env = runner.invoke(app, ["run", str(fashion), "--store", str(db)], terminal_width=300)
    assert env.exit_code == 2
    assert f"$ACTLAB_DATA {path} " in " ".join(env.output.split())
    assert not db.exists()


@needs_fashion
def test_data_found_elsewhere_than_the_data_dir_is_said(tmp_path, caplog) -> None:
    from actlab.data import load_dataset

    empty = tmp_path / "empty"
    empty.mkdir()
    with caplog.at_level("WARNING"):
        dataset = load_dataset("fashion_mnist", str(empty))
    assert len(dataset.train_labels) == 60000
    assert f"no IDX files in {empty}; reading the system copy in " \
           "/usr/share/datasets/fashion-mnist" in caplog.text


def test_data_dir_flag_overrides_the_study_file(tmp_path) -> None:
    write_mnist_dir(tmp_path / "real" / "mnist", n_train=100, n_test=20)
    study = tmp_path / "s.yaml"
    study.write_text(
        "name: dirs\nmodel: lenet5\ndata: {name: mnist, data_dir: /nonexistent}\n"
        "train: {epochs: 1, batch_size: 32}\n")
    db = tmp_path / "a.db"
    failed = runner.invoke(app, ["run", str(study), "--store", str(db), "--threads", "1"])
    assert failed.exit_code == 2  # the study's directory does not exist: checked up front
    assert "the data directory /nonexistent does not exist" in " ".join(failed.output.split())
    assert not db.exists()  # nothing was stored
    result = runner.invoke(app, ["run", str(study), "--store", str(db), "--threads", "1",
                                 "--data-dir", str(tmp_path / "real")])
    assert result.exit_code == 0, result.output
    assert "1 completed" in result.output


def test_a_diverging_cell_is_recorded_and_the_study_completes(tmp_path) -> None:
    study = tmp_path / "lr.yaml"
    study.write_text(
        "name: lrs\nmodel: simple_cnn\ninit: he_normal\n"
        "data: {name: synthetic, options: {train_size: 200, test_size: 50}}\n"
        "train: {epochs: 2, batch_size: 32}\ngrid: {lr: [0.01, 100.0]}\n")
    db = tmp_path / "a.db"
    result = runner.invoke(app, ["run", str(study), "--store", str(db), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "1 completed, 1 diverged" in result.output
    assert re.search(r"diverged .*\(lr 100\) in epoch 1", " ".join(result.output.split()))
    rows = db_rows(db, "SELECT status, diverged_epoch FROM runs ORDER BY status")
    assert rows == [("completed", None), ("diverged", 1)]


def test_train_runs_one_cell_and_rerunning_reuses_it(tmp_path) -> None:
    db = tmp_path / "t.db"
    args = ["train", "--model", "simple_cnn", "--act", "mish", "--init", "he_normal",
            "--dataset", "synthetic", "--epochs", "2", "--batch-size", "32", "--lr", "0.01",
            "--schedule", "one_cycle", "--seed", "4", "-o", "width=8", "--store", str(db),
            "--threads", "1"]
    first = runner.invoke(app, args, terminal_width=200)
    assert first.exit_code == 0, first.output
    # the run's label carries the model's options
    assert "completed simple_cnn(width=8) mish he_normal seed=4: test_acc" in first.output
    study = db_rows(db, "SELECT name FROM studies")[0][0]
    assert study == "train-simple_cnn-mish-he_normal-synthetic-s4"
    second = runner.invoke(app, args, terminal_width=200)
    assert "(0 run now" in second.output
    bad = runner.invoke(app, ["train", "--model", "lenet5", "--optimizer", "lion",
                              "--store", str(db)])
    assert bad.exit_code == 2
    assert "unknown optimizer 'lion'" in bad.output


def test_runs_export_delete_and_the_python_api(tmp_path, tiny_study_file) -> None:
    import actlab

    db = tmp_path / "s.db"
    assert invoke("run", str(tiny_study_file), "--store", str(db), "--threads", "1"
                  ).exit_code == 0
    table = runner.invoke(app, ["runs", "tiny", "--store", str(db), "-w", "act=tanh"],
                          terminal_width=250)
    assert table.exit_code == 0, table.output
    assert "tiny: 4 run(s)" in table.output
    bad = runner.invoke(app, ["runs", "tiny", "--store", str(db), "-w", "colour=red"])
    assert bad.exit_code == 2
    out = tmp_path / "export"
    exported = runner.invoke(app, ["export", "tiny", "--store", str(db), "-f", "jsonl",
                                   "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    assert len((out / "runs.jsonl").read_text().splitlines()) == 8
    assert len((out / "epochs.jsonl").read_text().splitlines()) == 16
    with actlab.open_store(db) as store:
        view = store.study("tiny")
        assert len(view.runs()) == 8
        assert set(view.layers()["metric"]) >= {"weight_mean", "weight_std"}
    refused = runner.invoke(app, ["delete", "tiny", "--store", str(db)], input="n\n")
    assert refused.exit_code == 1
    deleted = runner.invoke(app, ["delete", "tiny", "--store", str(db), "--yes"])
    assert deleted.exit_code == 0
    assert "deleted study 'tiny' (8 runs)" in deleted.output
    assert db_rows(db, "SELECT COUNT(*) FROM runs") == [(0,)]
    assert db_rows(db, "SELECT COUNT(*) FROM epochs") == [(0,)]
    gone = runner.invoke(app, ["runs", "tiny", "--store", str(db)])
    assert gone.exit_code == 2
    assert "no study named 'tiny'" in gone.output
