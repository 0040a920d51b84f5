import os
import sqlite3
import subprocess
import sys

import pytest
import yaml

from actlab.study import Store, StoreError, StudyView, parse_study
from actlab.study.store import SCHEMA_VERSION, PlanChangedError, new_owner
from actlab.train.core import EpochMetrics, RunResult


def make_study(acts=("relu", "tanh"), name="s"):
    return parse_study({"name": name, "grid": {"act": list(acts)}, "seeds": 2})


def dead_owner() -> str:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return new_owner().replace(f":{os.getpid()}:", f":{proc.stdout.strip()}:")


def epoch(n: int) -> EpochMetrics:
    return EpochMetrics(n, 1.0 / n, 0.5, 1.0, 0.5, 0.1, 1.0, 100.0)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "runs.db") as s:
        yield s


def test_register_is_idempotent_and_tracks_the_plan(store) -> None:
    study = make_study()
    sid = store.register_study(study, study.expand())
    assert store.register_study(study, study.expand()) == sid
    assert store.counts(sid)["pending"] == 4
    smaller = make_study(acts=("relu",))
    store.register_study(smaller, smaller.expand(), replan=True)
    assert sum(store.counts(sid).values()) == 2
    assert store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4


def test_another_plan_under_a_stored_name_is_refused_and_changes_nothing(store) -> None:
    study = make_study()
    sid = store.register_study(study, study.expand())
    before = store.conn.execute("SELECT run_id, in_plan, status FROM runs").fetchall()
    other = parse_study({"name": "s", "grid": {"act": ["relu", "elu"]}, "seeds": 3})
    with pytest.raises(PlanChangedError) as refused:
        store.register_study(other, other.expand())
    message = str(refused.value)
    assert "study 's'" in message
    assert "--replan" in message
    assert "seeds: 2 -> 3" in message
    assert '["relu", "tanh"] -> ["relu", "elu"]' in message
    assert store.conn.execute("SELECT run_id, in_plan, status FROM runs").fetchall() == before
    assert store.counts(sid)["pending"] == 4
    # The same plan again (a new description changes no run) is no new plan.
    described = parse_study({"name": "s", "grid": {"act": ["relu", "tanh"]}, "seeds": 2,
                             "description": "now described"})
    assert store.register_study(described, described.expand()) == sid


def test_a_runner_whose_plan_is_replaced_stops_with_an_error(tmp_path) -> None:
    """Runner A's plan is replaced (--replan) after its first run: A must not end as if
    done while runs of its plan are pending."""
    from actlab.study.executors import RunEvents, run_study
    from helpers import TINY_STUDY

    first = parse_study(yaml.safe_load(TINY_STUDY.format(name="a", epochs=1)))
    second = first.model_copy(update={"seeds": 1})

    class ReplanAfterTheFirstRun(RunEvents):
        def run_finished(self, spec, result) -> None:
            with Store(tmp_path / "runs.db") as other_process:
                if other_process.counts(other_process.study_id("a"))["completed"] == 1:
                    other_process.register_study(second, second.expand(), replan=True)

    with Store(tmp_path / "runs.db") as store:
        with pytest.raises(PlanChangedError, match="re-planned by another") as stopped:
            run_study(store, first, ReplanAfterTheFirstRun())
        assert "of the 8 runs of this runner's plan" in str(stopped.value)


def test_claims_go_in_plan_order_and_are_exclusive(store) -> None:
    study = make_study()
    specs = study.expand()
    sid = store.register_study(study, specs)
    me, other = new_owner(), new_owner()
    claimed = [store.claim_next(sid, me), store.claim_next(sid, other)]
    assert [c.run_id for c in claimed] == [specs[0].run_id, specs[1].run_id]
    assert store.counts(sid)["running"] == 2


def test_a_dead_owners_run_is_reclaimed_and_restarts_clean(store) -> None:
    study = make_study(acts=("relu",))
    specs = study.expand()
    sid = store.register_study(study, specs)
    ghost = dead_owner()
    spec = store.claim_next(sid, ghost)
    store.record_epoch(sid, spec.run_id, epoch(1))
    again = store.claim_next(sid, new_owner())
    assert again.run_id == spec.run_id  # the dead owner's claim is taken over first
    assert store.conn.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 0
    row = store.conn.execute("SELECT attempts FROM runs WHERE run_id=?", (spec.run_id,)).fetchone()
    assert row["attempts"] == 2


def test_a_live_owners_run_is_left_alone_until_its_heartbeat_is_stale(tmp_path) -> None:
    study = make_study(acts=("relu",))
    with Store(tmp_path / "db", stale_after=3600) as store:
        sid = store.register_study(study, study.expand()[:1])
        store.claim_next(sid, new_owner())  # this very process: alive
        assert store.claim_next(sid, new_owner()) is None
        store.conn.execute("UPDATE runs SET heartbeat = heartbeat - 7200, "
                           "owner = 'otherhost:1:abc'")
        assert store.claim_next(sid, new_owner()) is not None


def test_finish_fail_release_and_retry(store) -> None:
    study = make_study()
    sid = store.register_study(study, study.expand())
    owner = new_owner()
    first = store.claim_next(sid, owner)
    store.record_epoch(sid, first.run_id, epoch(1))
    store.finish(sid, first.run_id, RunResult("completed", [epoch(1)], final={"test_acc": 0.9}))
    second = store.claim_next(sid, owner)
    store.fail(sid, second.run_id, "Traceback ...\nValueError: boom")
    third = store.claim_next(sid, owner)
    store.record_epoch(sid, third.run_id, epoch(1))
    store.release(sid, third.run_id)
    counts = store.counts(sid)
    assert (counts["completed"], counts["failed"], counts["pending"]) == (1, 1, 2)
    runs = StudyView(store, sid, "").runs()
    assert runs.loc[runs.status == "failed", "error"].item().endswith("boom")
    assert runs.loc[runs.status == "completed", "test_acc"].item() == 0.9
    assert store.reset_failed(sid) == 1
    assert StudyView(store, sid, "").epochs().run_id.tolist() == [first.run_id]


def test_release_and_rewind_keep_the_epochs_up_to_the_last_checkpoint(store) -> None:
    # Ctrl-C in epoch 3 of a run checkpointed after epoch 2: the next attempt resumes
    # from that checkpoint and records epochs 3.. only, so epochs 1-2 must survive.
    study = make_study()
    sid = store.register_study(study, study.expand())
    run = store.claim_next(sid, new_owner())
    for e in (1, 2, 3):
        store.record_epoch(sid, run.run_id, epoch(e))
    store.set_checkpoint_epoch(sid, run.run_id, 2)
    assert store.rewind(sid, run.run_id) == 2
    assert StudyView(store, sid, "").epochs().epoch.tolist() == [1, 2]
    store.record_epoch(sid, run.run_id, epoch(3))
    store.release(sid, run.run_id)
    assert StudyView(store, sid, "").epochs().epoch.tolist() == [1, 2]
    assert store.claim_next(sid, new_owner()).run_id == run.run_id
    assert store.checkpoint_epoch(sid, run.run_id) == 2


def test_unknown_study_lists_the_known_ones(store) -> None:
    study = make_study(name="known")
    store.register_study(study, study.expand())
    with pytest.raises(StoreError, match=r"no study named 'nope'.*known"):
        store.study_id("nope")


def test_unwritable_location_is_a_clear_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=r"cannot open the run store.*--store"):
        Store(blocker / "sub" / "runs.db")


def test_database_is_wal_and_consistent(store) -> None:
    study = make_study()
    store.register_study(study, study.expand())
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_layers_are_stored_and_cleared_with_a_reclaimed_run(store) -> None:
    study_id = store.register_study(make_study(), make_study().expand())
    spec = store.claim_next(study_id, dead_owner())
    store.record_layers(study_id, spec.run_id, 0, [("conv", "weight_std", 0.1),
                                                  ("conv", "weight_mean", 0.0)])
    frame = StudyView(store, study_id, "").layers()
    assert sorted(frame["metric"]) == ["weight_mean", "weight_std"]
    assert store.claim_next(study_id, new_owner()).run_id == spec.run_id  # reclaimed
    assert StudyView(store, study_id, "").layers().empty


def test_an_older_store_is_upgraded_in_place(tmp_path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE epochs (study_id INTEGER NOT NULL, run_id TEXT NOT NULL,
            epoch INTEGER NOT NULL, train_loss REAL, train_acc REAL, val_loss REAL,
            val_acc REAL, lr REAL, epoch_time REAL, images_per_s REAL,
            PRIMARY KEY (study_id, run_id, epoch));
        INSERT INTO epochs VALUES (1, 'r', 1, 0.5, 0.8, 0.6, 0.7, 0.1, 1.0, 100.0);
    """)
    conn.close()
    with Store(path) as upgraded:
        columns = [row[1] for row in upgraded.conn.execute("PRAGMA table_info(epochs)")]
        assert {"test_loss", "test_acc"} <= set(columns)
        version = upgraded.conn.execute("SELECT value FROM meta").fetchone()[0]
        assert version == str(SCHEMA_VERSION)
        assert upgraded.selections("any") == {}  # the tables of later versions exist
        assert upgraded.conn.execute("SELECT train_acc FROM epochs").fetchone()[0] == 0.8


def test_a_truncated_store_is_named_as_such(tmp_path) -> None:
    from typer.testing import CliRunner

    from actlab.cli import app

    path = tmp_path / "runs.db"
    with Store(path) as store:
        study = make_study()
        store.register_study(study, study.expand())
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    for command in (["status", "--store", str(path)], ["runs", "s", "--store", str(path)]):
        result = CliRunner().invoke(app, command, terminal_width=300)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "is not a valid SQLite run store" in text
        assert "disk full" not in text
    with pytest.raises(StoreError, match="not a valid SQLite run store"):
        Store(path)


def _read_only_mount_works() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _read_only_mount_works(),
                    reason="needs `unshare -m` (root) to mount a read-only file system")
def test_reading_commands_work_on_a_read_only_file_system(tmp_path, tiny_study_file) -> None:
    from typer.testing import CliRunner

    from actlab.cli import app

    folder, mounted = tmp_path / "store", tmp_path / "read-only"
    folder.mkdir()
    mounted.mkdir()
    done = CliRunner().invoke(app, ["run", str(tiny_study_file), "--store",
                                    str(folder / "a.db")])
    assert done.exit_code == 0, done.output
    actlab = f"{sys.executable} -m actlab.cli"
    db, out = mounted / "a.db", tmp_path / "out"
    script = " && ".join([
        f"mount --bind {folder} {mounted}", f"mount -o remount,ro,bind {mounted}",
        f"! touch {mounted}/probe",  # the file system is read-only indeed
        f"{actlab} status tiny --store {db}", f"{actlab} runs tiny --store {db}",
        f"{actlab} plan {tiny_study_file} --store {db}",
        f"{actlab} export tiny --store {db} -o {out}/export",
        f"{actlab} report tiny --store {db} -o {out}/report --no-theory --no-svg"])
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "8/8" in result.stdout
    assert (out / "export" / "runs.csv").exists()
    assert (out / "report" / "index.html").exists()
