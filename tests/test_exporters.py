"""Exports to TensorBoard and MLflow, read back with each tool's own reader."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from helpers import TINY_STUDY

runner = CliRunner()


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    study = folder / "s.yaml"
    study.write_text(TINY_STUDY.format(name="tiny", epochs=2).replace(
        "act: [relu, tanh]", "act: [relu, tact]"))  # a learnable AF: params to export
    db = folder / "actlab.db"
    assert runner.invoke(app, ["run", str(study), "--store", str(db)]).exit_code == 0
    return db


@pytest.mark.slow
def test_tensorboard_event_files_per_run(stored, tmp_path) -> None:
    pytest.importorskip("tensorboard", reason="needs actlab[tensorboard]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    result = runner.invoke(app, ["export", "tiny", "--store", str(stored), "-f", "tensorboard",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 8
    tact = next(p for p in folders if "-tact-" in p.name)
    events = EventAccumulator(str(tact))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("accuracy/val")] == [1, 2]
    assert "loss/train" in scalars
    assert "lr" in scalars
    assert any(tag.startswith("params/") for tag in scalars)  # the learnable AF's values
    assert any(tag.startswith("layers/") for tag in scalars)


@pytest.mark.slow
def test_mlflow_runs_with_params_metrics_and_tags(stored, tmp_path) -> None:
    mlflow = pytest.importorskip("mlflow", reason="needs actlab[mlflow]")
    out = tmp_path / "ml"
    result = runner.invoke(app, ["export", "tiny", "--store", str(stored), "-f", "mlflow",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    uri = f"sqlite:///{(out / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    assert len(runs) == 8
    assert set(runs["params.act"]) == {"relu", "tact"}
    assert runs["metrics.final_test_acc"].between(0, 1).all()
    assert set(runs["tags.actlab.status"]) == {"completed"}
    client = mlflow.tracking.MlflowClient(uri)
    history = client.get_metric_history(runs["run_id"].iloc[0], "accuracy/val")
    assert [m.step for m in history] == [1, 2]
