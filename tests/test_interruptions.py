"""A study interrupted in any way resumes to exactly what an uninterrupted study gives:
kill -9 right after a run's first checkpoint, kill -9 at several moments (some inside a
store or checkpoint write) while `actlab status` watches, a disk that fills up (at the
store's creation, and part-way), and SIGTERM or SIGHUP to a parent of local workers.
Real processes, a real SQLite store; every wait is on the store's observable state, never
on a machine's speed.

The study is small but sensitive to every random stream: dropout, crop-and-flip
augmentation, a one-cycle schedule and a learnable activation, so a resume that restores
anything imperfectly shows in the numbers."""

from __future__ import annotations

import os
import random
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from helpers import db_rows, study_outcome

STUDY = """
name: interrupted
model: simple_cnn
model_options: {dropout: 0.3, width: 8}
data:
  name: synthetic
  options: {train_size: 600, test_size: 100, image_size: 32, channels: 3}
  augment: standard
train:
  epochs: 3
  batch_size: 32
  schedule: one_cycle
  optimizer: {name: sgd, lr: 0.02}
grid:
  act: [mish, tact]
seeds: 2
"""
RUNS, EPOCHS = 4, 3
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "300"}
runner = CliRunner()


def command(study: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "actlab.cli", "run", str(study), "--store", str(db),
            "--threads", "1"]


def count(db: Path, query: str) -> int:
    try:
        return db_rows(db, query)[0][0]
    except sqlite3.OperationalError:  # not created yet, or its schema not yet written
        return 0


def wait_until(db: Path, query: str, at_least: int, proc: subprocess.Popen) -> bool:
    """Poll the store until ``query`` counts ``at_least``; False if the study ended
    first (a fast machine may finish before a late kill point)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if count(db, query) >= at_least:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"the study never reached {query} >= {at_least}")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, dict]:
    """The study file and the outcome of an uninterrupted run of it."""
    folder = tmp_path_factory.mktemp("interruptions")
    path = folder / "study.yaml"
    path.write_text(STUDY)
    clean = folder / "clean.db"
    subprocess.run(command(path, clean), check=True, capture_output=True, env=ENV,
                   timeout=600)
    return path, study_outcome(clean)


def kill_after_a_checkpoint(run: list[str], db: Path) -> None:
    """kill -9 as soon as a run has checkpointed epoch 1 (it is then in epoch 2): it
    resumes from that checkpoint, on its second attempt."""
    proc = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    assert wait_until(db, "SELECT COUNT(*) FROM runs WHERE checkpoint_epoch = 1", 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_id,) = [r for (r,) in db_rows(db, "SELECT run_id FROM runs WHERE checkpoint_epoch = 1")]
    assert db_rows(db, "SELECT status FROM runs WHERE run_id=?", run_id) == [("running",)]
    resumed = subprocess.run(run, capture_output=True, text=True, env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert db_rows(db, "SELECT attempts FROM runs WHERE run_id=?", run_id) == [(2,)]
    info = db_rows(db, "SELECT info FROM runs WHERE run_id=?", run_id)[0][0]
    assert '"resumed_from_epoch": 1' in info


def kill_at_several_points(run: list[str], db: Path) -> None:
    """kill -9 once two runs are done and another is mid-training, while `actlab status`
    watches (it shows the run in flight with a time estimate, and after the kill its
    claim expired); then again once 9 and 11 epoch rows (of 12) are written, each after a
    random few milliseconds, so that some kills land inside a store or checkpoint write."""
    proc = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    assert wait_until(db, "SELECT COUNT(*) FROM runs WHERE status = 'completed'", 2, proc)
    assert wait_until(db, "SELECT COUNT(*) FROM epochs e JOIN runs r USING (study_id, run_id) "
                          "WHERE r.status = 'running'", 1, proc)
    live = status(db)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "in flight" in live
    assert re.search(rf"\b[1-{EPOCHS}]/{EPOCHS}\b", live)
    assert "time left: about" in live
    assert "expired" not in live
    (killed,) = db_rows(db, "SELECT run_id FROM runs WHERE status = 'running'")
    dead = status(db)
    assert "expired: the owner has died or gone silent" in dead
    assert killed[0] in dead
    rng = random.Random(7)
    for point in (9, 11):
        proc = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=ENV)
        wait_until(db, "SELECT COUNT(*) FROM epochs", point, proc)
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    resumed = subprocess.run(run, capture_output=True, text=True, env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr


def children(pid: int) -> list[int]:
    """The local executor's workers among the children of ``pid`` (not its resource tracker)."""
    found = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [c for c in found if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def terminate_the_jobs_parent(run: list[str], db: Path) -> None:
    """SIGTERM, then SIGHUP, to `actlab run --jobs 2` while both workers train: each stops
    its workers as Ctrl-C does (their runs go back to pending) and no worker outlives
    it."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        proc = subprocess.Popen([*run, "--jobs", "2"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=ENV)
        assert wait_until(db, "SELECT COUNT(*) FROM runs WHERE status = 'running'", 2, proc)
        workers = children(proc.pid)
        proc.send_signal(sig)
        assert proc.wait(timeout=120) != 0
        assert not [pid for pid in workers if alive(pid)]
        assert count(db, "SELECT COUNT(*) FROM runs WHERE status = 'running'") == 0
    resumed = subprocess.run(run, capture_output=True, text=True, env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr


def status(db: Path) -> str:
    result = runner.invoke(app, ["status", "interrupted", "--store", str(db)],
                           terminal_width=300)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def disk_full_at(limit_kb: int) -> Callable[[list[str], Path], None]:
    def fill_up(run: list[str], db: Path) -> None:
        """A file-size limit makes every write past it fail as on a full disk: the run
        stops with one clear message and exit status 2, and resumes once there is room."""

        def small_disk() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write, not a kill
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_kb * 1024, limit_kb * 1024))

        full = subprocess.run(run, capture_output=True, text=True, preexec_fn=small_disk,
                              env=ENV, timeout=600)
        assert full.returncode == 2, full.stderr
        assert "is the disk full or the file size limited?" in " ".join(full.stderr.split())
        assert "Traceback" not in full.stderr
        resumed = subprocess.run(run, capture_output=True, text=True, env=ENV, timeout=600)
        assert resumed.returncode == 0, resumed.stderr

    return fill_up


INTERRUPTIONS = {
    "kill -9 after a checkpoint": kill_after_a_checkpoint,
    "kill -9 at several points, status watching": kill_at_several_points,
    "disk full when the store is created": disk_full_at(48),
    "disk full part-way": disk_full_at(300),
    "SIGTERM and SIGHUP to a --jobs parent": terminate_the_jobs_parent,
}


@pytest.mark.slow
@pytest.mark.parametrize("how", INTERRUPTIONS)
def test_an_interrupted_study_resumes_to_the_uninterrupted_result(how: str, study, tmp_path
                                                                  ) -> None:
    path, expected = study
    db = tmp_path / "a.db"
    INTERRUPTIONS[how](command(path, db), db)
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(db, "SELECT status, COUNT(*) FROM runs GROUP BY 1") == [("completed", RUNS)]
    assert db_rows(db, "SELECT COUNT(*), COUNT(DISTINCT run_id || ':' || epoch) FROM epochs"
                   ) == [(RUNS * EPOCHS, RUNS * EPOCHS)]
    assert study_outcome(db) == expected
    assert not list(tmp_path.glob("*-artifacts/*/*/checkpoint.pt"))
