"""Several processes on one study: the local executor and independent `actlab run`
processes split the cells through the store's atomic claims, with no duplicate and no
lost run (real processes, a real SQLite store)."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from helpers import TINY_STUDY, db_rows


def assert_each_cell_once(db, cells: int, epochs: int) -> None:
    assert db_rows(db, "SELECT status, attempts, COUNT(*) FROM runs GROUP BY 1, 2") == [
        ("completed", 1, cells)]
    per_run = db_rows(db, "SELECT COUNT(*), MAX(epoch) FROM epochs GROUP BY run_id")
    assert per_run == [(epochs, epochs)] * cells
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.slow
def test_local_executor_with_two_jobs(tmp_path) -> None:
    study = tmp_path / "t.yaml"
    study.write_text(TINY_STUDY.format(name="jobs", epochs=2))
    db = tmp_path / "a.db"
    result = CliRunner().invoke(app, ["run", str(study), "--store", str(db), "--jobs", "2",
                                      "--threads", "2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "8 completed" in result.output
    assert "(8 run now" in result.output
    assert_each_cell_once(db, 8, 2)


@pytest.mark.slow
def test_no_more_jobs_than_runs_left(tmp_path) -> None:
    """--jobs 6 on a one-run study starts one worker (each costs a process and a copy of
    the data), with all the threads."""
    study = tmp_path / "t.yaml"
    study.write_text(TINY_STUDY.format(name="one", epochs=1).replace(
        "act: [relu, tanh]", "act: [relu]").replace(
        "init: [he_normal, xavier_normal]", "init: [he_normal]").replace("seeds: 2", "seeds: 1"))
    db = tmp_path / "a.db"
    result = CliRunner().invoke(app, ["run", str(study), "--store", str(db), "--jobs", "6",
                                      "--threads", "2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 run(s) left: 1 job(s) instead of 6" in text
    assert "2 threads in 1 jobs" in text
    assert_each_cell_once(db, 1, 1)


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 4])
def test_concurrent_run_processes_share_a_study(tmp_path, processes: int) -> None:
    study = tmp_path / "t.yaml"
    study.write_text(TINY_STUDY.format(name="shared", epochs=2).replace("seeds: 2", "seeds: 3"))
    db = tmp_path / "a.db"
    command = [sys.executable, "-m", "actlab.cli", "run", str(study), "--store", str(db),
               "--threads", "1"]
    procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
             for _ in range(processes)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    assert_each_cell_once(db, 12, 2)


