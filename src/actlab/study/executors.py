"""Executors: take the runnable cells of a study from the store and run them.

``run_study`` is the serial executor. It claims one cell at a time, trains it with
:func:`actlab.train.engine.run_one`, writes every epoch as it finishes and the final
result at the end. A run that raises is stored as ``failed`` with its traceback and the
study goes on; Ctrl-C gives the claimed run back so the next ``actlab run`` redoes it.
"""

from __future__ import annotations

import functools
import logging
import traceback
from dataclasses import dataclass, field
from typing import Any

from actlab.study.plan import Study
from actlab.study.spec import RunSpec
from actlab.study.store import Heartbeat, Store, new_owner
from actlab.train.engine import EpochMetrics, RunResult, run_one

log = logging.getLogger(__name__)


class RunEvents:
    """Progress callbacks of an executor; the CLI overrides them to draw progress."""

    def study_started(self, study: Study, total: int, done: int) -> None: ...

    def run_started(self, spec: RunSpec) -> None: ...

    def epoch_finished(self, spec: RunSpec, metrics: EpochMetrics) -> None: ...

    def run_finished(self, spec: RunSpec, result: RunResult) -> None: ...

    def run_failed(self, spec: RunSpec, error: str) -> None: ...


@dataclass
class StudySummary:
    counts: dict[str, int]
    ran: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    runs: Any = None  # the study's runs frame, filled in by callers that want it


def run_study(store: Store, study: Study, events: RunEvents | None = None,
              retry_failed: bool = False, data_dir: str | None = None,
              keep_checkpoints: bool = False) -> StudySummary:
    """Run every cell of ``study`` not finished yet, one after another. ``data_dir``
    overrides where every run reads its data (it is not part of a run's identity).

    Each run writes a checkpoint beside the store after every epoch; a run that was
    interrupted (killed, Ctrl-C) resumes from its last one. Checkpoints are removed when
    runs end unless ``keep_checkpoints``."""
    events = events or RunEvents()
    specs = study.expand()
    study_id = store.register_study(study, specs)
    if retry_failed:
        store.reset_failed(study_id)
    counts = store.counts(study_id)
    events.study_started(study, len(specs), counts["completed"] + counts["diverged"])
    owner = new_owner()
    summary = StudySummary(counts=counts)
    while (claimed := store.claim_next(study_id, owner)) is not None:
        spec = claimed.with_data_dir(data_dir)
        run_id = spec.run_id
        checkpoint = store.artifact_dir(study_id, run_id) / "checkpoint.pt"
        events.run_started(spec)

        def on_epoch(metrics: EpochMetrics, spec: RunSpec = spec) -> None:
            store.record_epoch(study_id, spec.run_id, metrics)
            events.epoch_finished(spec, metrics)

        try:
            with Heartbeat(store.path, study_id, run_id, owner):
                result = run_one(
                    spec, on_epoch=on_epoch,
                    on_params=functools.partial(store.record_params, study_id, run_id),
                    on_layers=functools.partial(store.record_layers, study_id, run_id),
                    checkpoint=checkpoint,
                    resume_epoch=store.checkpoint_epoch(study_id, run_id),
                    on_checkpoint=functools.partial(store.set_checkpoint_epoch, study_id,
                                                    run_id),
                    keep_checkpoint=keep_checkpoints)
        except KeyboardInterrupt:
            store.release(study_id, run_id)
            raise
        except Exception:
            error = traceback.format_exc()
            log.error("run %s (%s) failed:\n%s", run_id, spec.describe(), error)
            store.fail(study_id, run_id, error)
            if not keep_checkpoints:
                checkpoint.unlink(missing_ok=True)
            summary.failures.append((spec.describe(), error.strip().splitlines()[-1]))
            events.run_failed(spec, error)
        else:
            store.finish(study_id, run_id, result)
            events.run_finished(spec, result)
        summary.ran += 1
    summary.counts = store.counts(study_id)
    return summary
