"""Several processes on one study: the local executor and independent `actlab run`
processes split the cells through the store's atomic claims, with no duplicate and no
lost run (real processes, a real SQLite store)."""

import os
import sqlite3
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from helpers import TINY_STUDY, db_rows, study_outcome


def assert_each_cell_once(db, cells: int, epochs: int) -> None:
    assert db_rows(db, "SELECT status, attempts, COUNT(*) FROM runs GROUP BY 1, 2") == [
        ("completed", 1, cells)]
    per_run = db_rows(db, "SELECT COUNT(*), MAX(epoch) FROM epochs GROUP BY run_id")
    assert per_run == [(epochs, epochs)] * cells
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]


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


@pytest.mark.slow
def test_sigkill_at_many_points_then_resume_equals_an_uninterrupted_study(tmp_path) -> None:
    import random
    import signal
    import time

    study = tmp_path / "t.yaml"
    study.write_text(TINY_STUDY.format(name="kills", epochs=3))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def command(db) -> list[str]:
        return [sys.executable, "-m", "actlab.cli", "run", str(study), "--store", str(db),
                "--threads", "1"]

    clean = tmp_path / "clean.db"
    subprocess.run(command(clean), check=True, capture_output=True, env=env, timeout=600)
    expected = study_outcome(clean)

    db = tmp_path / "killed.db"
    rng = random.Random(7)
    # Kill once the study has written at least this many epoch rows (of 24), plus a short
    # random delay so that some kills land inside a store write or a checkpoint write.
    kill_points = [1, 4, 9, 14, 19, 23]
    kills = 0
    for point in kill_points:
        proc = subprocess.Popen(command(db), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                written = db_rows(db, "SELECT COUNT(*) FROM epochs")[0][0]
            except sqlite3.OperationalError:
                written = 0
            if written >= point:
                time.sleep(rng.uniform(0.0, 0.05))
                break
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 5
    finished = subprocess.run(command(db), capture_output=True, text=True, env=env,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(db, "SELECT status, COUNT(*) FROM runs GROUP BY 1") == [("completed", 8)]
    assert db_rows(db, "SELECT COUNT(*), COUNT(DISTINCT run_id || epoch) FROM epochs") == [
        (24, 24)]
    assert study_outcome(db) == expected
