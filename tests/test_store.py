import os
import sqlite3
import subprocess
import sys

import pytest

from actlab.study import Store, StoreError, StudyView, parse_study
from actlab.study.store import new_owner
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
    store.register_study(smaller, smaller.expand())
    assert sum(store.counts(sid).values()) == 2
    assert store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4


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
        assert version == "3"
        assert upgraded.conn.execute("SELECT train_acc FROM epochs").fetchone()[0] == 0.8
