"""Where a stored study stands: counts by state, the runs in flight and the time left.

The time left is estimated from the store's own history: the median seconds per epoch
of finished runs of the same model and dataset (any study), times the epochs still to
train, divided by the runs training at once (what ``actlab status`` and ``actlab plan``
print). It is an estimate: it knows nothing of a machine that was added or taken away.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from actlab.spec import describe_run
from actlab.study.frames import epoch_seconds
from actlab.study.store import Store, owner_is_dead

FINISHED = ("completed", "diverged", "failed")


@dataclass(frozen=True)
class RunningRun:
    run_id: str
    label: str
    epoch: int  # epochs recorded so far
    epochs: int
    owner: str
    heartbeat_age_s: float
    stale: bool  # its owner is gone or silent: the next `actlab run` takes it over


@dataclass
class StudyProgress:
    name: str
    counts: dict[str, int]
    running: list[RunningRun] = field(default_factory=list)
    seconds_left: float | None = None  # None: no history to estimate from
    epochs_left: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(self.counts[s] for s in FINISHED)

    @property
    def fraction(self) -> float:
        return self.finished / self.total if self.total else 1.0


#: What an estimate needs of a run: its model, its dataset and the epochs it has left.
Work = tuple[str, str, int]


def seconds_for(work: list[Work], history: dict[tuple[str, str], float]) -> float | None:
    """Serial seconds to train ``work`` ((model, dataset, epochs left) triples) from the
    per-epoch times in ``history`` (by model and dataset; the model alone, else the
    median of all, where that is all there is). None without any history."""
    if not work:
        return 0.0
    if not history:
        return None
    by_model: dict[str, list[float]] = {}
    for (model, _), seconds in history.items():
        by_model.setdefault(model, []).append(seconds)
    overall = sorted(history.values())[len(history) // 2]
    total = 0.0
    for model, dataset, epochs in work:
        per_epoch = history.get((model, dataset))
        if per_epoch is None:
            per_epoch = min(by_model.get(model, [overall]))
        total += per_epoch * epochs
    return total


def study_progress(store: Store, name: str) -> StudyProgress:
    """The progress of the stored study ``name`` (StoreError if there is none)."""
    study_id = store.study_id(name)
    progress = StudyProgress(name, store.counts(study_id))
    recorded = dict(store.conn.execute(
        "SELECT run_id, MAX(epoch) FROM epochs WHERE study_id=? GROUP BY run_id",
        (study_id,)).fetchall())
    now = time.time()
    work: list[Work] = []
    for row in store.conn.execute(
            "SELECT run_id, status, spec, owner, heartbeat FROM runs WHERE study_id=? AND "
            "in_plan=1 AND status IN ('pending', 'running') ORDER BY position", (study_id,)):
        spec = json.loads(row["spec"])  # as stored: validating it would cost more than this
        epochs = spec["train"]["epochs"]
        done = recorded.get(row["run_id"], 0) if row["status"] == "running" else 0
        work.append((spec["model"], spec["data"]["name"], epochs - done))
        if row["status"] == "running":
            age = now - (row["heartbeat"] or 0)
            label = describe_run(spec["model"], spec["model_options"], spec["act"],
                                 spec["init"], spec["seed"])
            progress.running.append(RunningRun(
                row["run_id"], label, done, epochs, row["owner"] or "?",
                age, age > store.stale_after or owner_is_dead(row["owner"])))
    progress.epochs_left = sum(epochs for *_, epochs in work)
    serial = seconds_for(work, epoch_seconds(store.conn))
    if serial is not None:
        # Runs in flight (fresh claims) are the parallelism the study runs with now.
        parallel = max(1, sum(not run.stale for run in progress.running))
        progress.seconds_left = serial / parallel
    return progress


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
