"""The Ray executor on a real local Ray cluster (``ray.init(num_cpus=2)``): a study runs
to completion with the same results as the serial executor, and a study whose Ray worker
is SIGKILLed mid-run still completes, resuming the lost run from its checkpoint."""

from __future__ import annotations

import logging
import os
import signal

import pytest
import torch

from actlab.study import Store, parse_study
from actlab.study.executors import RunEvents, run_study
from helpers import TINY_STUDY, db_rows, study_outcome

ray = pytest.importorskip("ray", reason="the Ray executor's tests need `actlab[ray]`")

from actlab.study.ray_executor import (  # noqa: E402
    run_study_ray,
    train_streaming,
)


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture
def one_thread():
    """Ray tasks train with one thread (1 CPU each); the serial reference must too, for
    results equal to the last bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def study(name: str, epochs: int, train_size: int = 300):
    text = TINY_STUDY.format(name=name, epochs=epochs).replace(
        "train_size: 300", f"train_size: {train_size}")
    return parse_study(__import__("yaml").safe_load(text))


def serial_outcome(tmp_path, the_study) -> dict:
    with Store(tmp_path / "serial.db") as db:
        run_study(db, the_study)
    return study_outcome(tmp_path / "serial.db")


def test_the_task_body_streams_the_same_run_as_the_engine(one_thread) -> None:
    from actlab.train.engine import run_one

    spec = study("stream", epochs=2).expand()[0]
    events = list(train_streaming(spec.model_dump_json(), None, 0, threads=1))
    kinds = [event[0] for event in events]
    assert kinds[0] == "started"
    assert kinds[-1] == "result"
    assert kinds.count("epoch") == 2
    assert kinds.count("checkpoint") == 1
    streamed = events[-1][1]
    direct = run_one(spec)
    assert [e.train_loss for e in streamed.epochs] == [e.train_loss for e in direct.epochs]
    assert streamed.final["test_acc"] == direct.final["test_acc"]


PARTLY = ("name: partly\ntrain: {epochs: 1, batch_size: 32, optimizer: {lr: 0.01}}\n"
          "data: {name: synthetic, options: {train_size: 200, test_size: 50}}\n"
          "grid: {data.train_per_class: [10, 500]}\n")  # 500 per class: that run raises


def test_a_failing_run_streams_its_traceback(one_thread) -> None:
    spec = parse_study(__import__("yaml").safe_load(PARTLY)).expand()[1]
    events = list(train_streaming(spec.model_dump_json(), None, 0, threads=1))
    assert [event[0] for event in events] == ["started", "error"]
    assert "500 per class were asked for" in events[-1][1]


@pytest.mark.slow
def test_a_study_on_a_local_ray_cluster_equals_the_serial_run(tmp_path, ray_cluster,
                                                               one_thread) -> None:
    the_study = study("ray", epochs=2)
    db = tmp_path / "ray.db"
    placed: list[tuple[str, int]] = []

    class Placements(RunEvents):
        def run_placed(self, spec, host, pid) -> None:
            placed.append((spec.run_id, pid))

    with Store(db) as store:
        summary = run_study_ray(store, the_study, Placements())
    assert summary.counts["completed"] == 8
    assert summary.ran == 8
    assert len({pid for _, pid in placed}) == 2  # both CPUs of the cluster worked
    assert db_rows(db, "SELECT status, attempts, COUNT(*) FROM runs GROUP BY 1, 2") == [
        ("completed", 1, 8)]
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert study_outcome(db) == serial_outcome(tmp_path, the_study)
    # Re-running finds nothing to do and submits nothing.
    with Store(db) as store:
        assert run_study_ray(store, the_study).ran == 0


@pytest.mark.slow
def test_a_killed_ray_worker_is_resubmitted_and_resumes(tmp_path, ray_cluster, one_thread,
                                                       caplog) -> None:
    # 4 epochs of ~0.5 s: the worker is killed as epoch 2's metrics arrive (after epoch
    # 1's checkpoint, which streams before them), well before the run ends; the driver
    # holds that checkpoint and resubmits the run from it.
    the_study = study("killed", epochs=4, train_size=3000)
    the_study = the_study.model_copy(update={"grid": {"act": ["relu"], "init": ["he_normal"]}})
    db = tmp_path / "ray.db"
    pids: dict[str, list[int]] = {}
    killed: list[str] = []

    class KillFirstWorker(RunEvents):
        def run_placed(self, spec, host, pid) -> None:
            pids.setdefault(spec.run_id, []).append(pid)

        def epoch_finished(self, spec, metrics) -> None:
            if metrics.epoch == 2 and not killed:
                killed.append(spec.run_id)
                os.kill(pids[spec.run_id][-1], signal.SIGKILL)

    with caplog.at_level(logging.WARNING, logger="actlab.study.ray_executor"), \
            Store(db) as store:
        summary = run_study_ray(store, the_study, KillFirstWorker())
    assert summary.counts["completed"] == 2
    victim = killed[0]
    assert len(pids[victim]) == 2  # submitted twice, on two different worker processes
    assert pids[victim][0] != pids[victim][1]
    assert "worker or node lost (WorkerCrashedError" in caplog.text
    resumed = db_rows(db, "SELECT json_extract(info, '$.resumed_from_epoch') FROM runs "
                          "WHERE run_id=?", victim)
    assert resumed == [(1,)]
    assert db_rows(db, "SELECT COUNT(*), COUNT(DISTINCT run_id || epoch) FROM epochs") == [
        (8, 8)]
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert not list((tmp_path / "ray-artifacts").rglob("checkpoint.pt"))  # cleaned up
    assert study_outcome(db) == serial_outcome(tmp_path, the_study)


@pytest.mark.slow
def test_cli_runs_on_the_connected_cluster_and_records_a_failing_run(tmp_path,
                                                                    ray_cluster) -> None:
    from typer.testing import CliRunner

    from actlab.cli import app

    study_file = tmp_path / "partly.yaml"
    study_file.write_text(PARTLY)
    db = tmp_path / "ray.db"
    result = CliRunner().invoke(app, ["run", str(study_file), "--store", str(db),
                                      "--executor", "ray"], terminal_width=200)
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())  # rich wraps at its own width
    assert "1 completed, 0 diverged, 1 failed" in output
    assert "Ray, 1 CPU per run" in output
    rows = dict(db_rows(db, "SELECT status, error FROM runs"))
    assert "500 per class were asked for" in rows["failed"]  # the task's own traceback
    assert "Traceback" in rows["failed"]
    assert db_rows(db, "SELECT attempts FROM runs WHERE status='failed'") == [(1,)]


def test_a_plugin_study_runs_on_ray_workers_from_its_text(tmp_path, ray_cluster) -> None:
    """A study with its own activation (examples/serf) on the Ray cluster: the workers
    run the plug-in from the study's copy of its text, the file being gone by then (a
    node of a real cluster has no copy of it)."""
    from pathlib import Path

    from actlab import plugins
    from actlab.study import load_study

    (tmp_path / "serf.py").write_text(
        (Path(__file__).resolve().parents[1] / "examples" / "serf" / "serf.py").read_text())
    (tmp_path / "study.yaml").write_text(
        "name: serf-ray\nplugins: [serf.py]\nmodel: lenet5\n"
        "data: {name: synthetic, options: {train_size: 120, test_size: 40}}\n"
        "train: {epochs: 1, batch_size: 40}\ngrid: {act: [relu, serf]}\n")
    the_study = load_study(tmp_path / "study.yaml")
    (tmp_path / "serf.py").unlink()
    try:
        with Store(tmp_path / "ray.db") as db:
            summary = run_study_ray(db, the_study)
        assert summary.counts["completed"] == 2
        assert sorted(db_rows(tmp_path / "ray.db", "SELECT status FROM runs")) == [
            ("completed",), ("completed",)]
    finally:
        for source in the_study.plugins:
            plugins.unload(source)


def test_a_tuned_study_runs_both_phases_on_ray(tmp_path, ray_cluster, one_thread) -> None:
    """The Ray driver plans each group's final runs once its trials are finished, and
    selects as the serial executor does."""
    from actlab.study import load_study
    from actlab.study.phases import tuning_state

    (tmp_path / "study.yaml").write_text(
        "name: tuned-ray\nmodel: lenet5\n"
        "data: {name: synthetic, options: {train_size: 120, test_size: 40}}\n"
        "train: {epochs: 1, batch_size: 40}\ngrid: {act: [relu, tanh]}\n"
        "tune: {space: {lr: [0.01, 0.1]}, seeds: 1}\nseeds: 1\n")
    the_study = load_study(tmp_path / "study.yaml")
    with Store(tmp_path / "ray.db") as db:
        summary = run_study_ray(db, the_study)
        assert summary.counts["completed"] == 2 * 2 + 2
        ray_selections = [s.selection for s in tuning_state(db, the_study)]
    with Store(tmp_path / "serial.db") as db:
        run_study(db, the_study)
        assert [s.selection for s in tuning_state(db, the_study)] == ray_selections


def test_an_adaptive_study_grows_on_ray_as_it_does_serially(tmp_path, ray_cluster,
                                                            one_thread) -> None:
    """The Ray driver adds the seeds the stopping rule asks for as results stream in, and
    ends with the serial executor's plan and numbers."""
    from actlab.study import load_study
    from actlab.study.phases import current_plan

    (tmp_path / "study.yaml").write_text(
        "name: adaptive-ray\nmodel: lenet5\n"
        "data: {name: synthetic, options: {train_size: 100, test_size: 40}}\n"
        "train: {epochs: 1, batch_size: 20, optimizer: {name: sgd, lr: 0.05}}\n"
        "grid: {act: [relu, tanh]}\nseeds: {min: 2, max: 3, until: precision(0.1)}\n")
    the_study = load_study(tmp_path / "study.yaml")
    with Store(tmp_path / "ray.db") as db:
        summary = run_study_ray(db, the_study)
        plan = sorted(spec.run_id for spec in current_plan(db, the_study))
    assert summary.counts["completed"] == len(plan) == 6  # 40 test images: not precise
    assert serial_outcome(tmp_path, the_study) == study_outcome(tmp_path / "ray.db")
