"""Reading a run store: a study's runs, epochs, learnable-activation values and layer
measurements as records and pandas frames (the Python API of ``actlab runs``, ``export``
and the report: ``actlab.open_store(path).study('quickstart').runs()``).

Reading needs neither torch nor the model zoo: every run row carries its cell labels
(:mod:`actlab.study.cells`) from when its plan was registered. Stores written before
labels were stored get them computed here, from the runs' specs, until the next
``actlab run`` stores them. pandas is imported only by the functions that return frames,
so ``actlab status`` and ``actlab runs`` do not wait for it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actlab.spec import RunSpec
from actlab.study.cells import CELL_COLUMNS, cell_labels

if TYPE_CHECKING:
    import pandas as pd

    from actlab.study.store import Store

#: Columns of a run record after its cell labels, before its final metrics.
RUN_COLUMNS = ("epochs", "status", "diverged_epoch", "reason", "error", "wall_time",
               "parameters")
#: The order of a run record's leading columns (what runs.csv has always shown first).
RECORD_ORDER = ("run_id", "model", "act", "init", "seed", "dataset", "corruption",
                "optimizer", "lr", "schedule", "setting")


def run_records(conn: sqlite3.Connection, study_id: int) -> list[dict[str, Any]]:
    """One record per run in the plan, in plan order: cell labels, status, final metrics
    (confusion matrices left out) and a few facts the run recorded about itself."""
    rows = conn.execute(
        "SELECT run_id, spec, cell, status, diverged_epoch, reason, error, final, info "
        "FROM runs WHERE study_id=? AND in_plan=1 ORDER BY position", (study_id,)).fetchall()
    cells = [json.loads(row["cell"]) if row["cell"] else None for row in rows]
    if any(cell is None for cell in cells):  # a store from before cells were stored
        cells = cell_labels([RunSpec.model_validate_json(row["spec"]) for row in rows])
    records = []
    for row, cell in zip(rows, cells, strict=True):
        final = json.loads(row["final"]) if row["final"] else {}
        info = json.loads(row["info"]) if row["info"] else {}
        record = {"run_id": row["run_id"], **cell}
        record = {key: record[key] for key in RECORD_ORDER} | (
            {"role": cell["role"]} if "role" in cell else {})  # a tuned study's trial/final
        records.append({
            **record, "epochs": json.loads(row["spec"])["train"]["epochs"],
            "status": row["status"], "diverged_epoch": row["diverged_epoch"],
            "reason": row["reason"], "error": row["error"],
            "wall_time": info.get("wall_time"), "parameters": info.get("parameters"),
            **{k: v for k, v in final.items() if not k.endswith("confusion")},
        })
    return records


def runs_frame(conn: sqlite3.Connection, study_id: int) -> pd.DataFrame:
    """:func:`run_records` as a frame."""
    import pandas as pd

    return pd.DataFrame.from_records(run_records(conn, study_id))


def _cell_columns(conn: sqlite3.Connection, study_id: int) -> pd.DataFrame:
    return runs_frame(conn, study_id)[["run_id", *CELL_COLUMNS, "status"]]


def epochs_frame(conn: sqlite3.Connection, study_id: int) -> pd.DataFrame:
    """One row per (run, epoch) of runs in the plan, with the run's cell columns.
    ``epoch_lr`` is the learning rate the schedule reached in the epoch; ``lr`` is the
    run's base learning rate (a cell axis)."""
    import pandas as pd

    frame = pd.read_sql_query(
        "SELECT e.* FROM epochs e JOIN runs r USING (study_id, run_id) "
        "WHERE e.study_id=? AND r.in_plan=1 ORDER BY r.position, e.epoch",
        conn, params=(study_id,))
    frame = frame.drop(columns=["study_id"]).rename(columns={"lr": "epoch_lr"})
    return frame.merge(_cell_columns(conn, study_id), on="run_id")


def long_frame(conn: sqlite3.Connection, study_id: int, table: str,
               keys: tuple[str, str]) -> pd.DataFrame:
    """Rows of a (run, epoch, key..., value) table (``params``, ``layers``) for runs in
    the plan, with the run's cell columns."""
    import pandas as pd

    key_list = ", ".join(f"t.{k}" for k in keys)
    # rowid keeps the order the engine wrote them in: network order (sites and layers
    # sorted by name would put classifier.2 before features.1)
    frame = pd.read_sql_query(
        f"SELECT t.run_id, t.epoch, {key_list}, t.value FROM {table} t "
        "JOIN runs r USING (study_id, run_id) WHERE t.study_id=? AND r.in_plan=1 "
        "ORDER BY r.position, t.epoch, t.rowid", conn, params=(study_id,))
    return frame.merge(_cell_columns(conn, study_id), on="run_id")


def epoch_seconds(conn: sqlite3.Connection) -> dict[tuple[str, str], float]:
    """Median wall seconds per epoch of finished runs (all studies), by (model,
    dataset): the history ``actlab plan`` and ``actlab status`` estimate from."""
    samples: dict[tuple[str, str], list[float]] = {}
    for row in conn.execute(
            "SELECT spec, info, diverged_epoch FROM runs "
            "WHERE status IN ('completed', 'diverged') AND info IS NOT NULL"):
        spec = json.loads(row["spec"])
        wall = json.loads(row["info"]).get("wall_time")
        epochs = row["diverged_epoch"] or spec["train"]["epochs"]
        if wall and epochs:
            key = (spec["model"], spec["data"]["name"])
            samples.setdefault(key, []).append(wall / epochs)
    return {key: sorted(v)[len(v) // 2] for key, v in samples.items()}


@dataclass(frozen=True)
class StudyView:
    """The stored data of one study (``store.study('quickstart')``)."""

    store: Store
    id: int
    name: str

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn

    def records(self) -> list[dict[str, Any]]:
        """The runs as plain records (no pandas)."""
        return run_records(self.conn, self.id)

    def runs(self) -> pd.DataFrame:
        """One row per run in the plan: cell columns, status and final metrics."""
        return runs_frame(self.conn, self.id)

    def epochs(self) -> pd.DataFrame:
        return epochs_frame(self.conn, self.id)

    def params(self) -> pd.DataFrame:
        """One row per (run, epoch, site, parameter) of learnable activations."""
        return long_frame(self.conn, self.id, "params", ("site", "name"))

    def layers(self) -> pd.DataFrame:
        """One row per (run, epoch, layer, metric): weight mean/std, grad norm, dead units."""
        return long_frame(self.conn, self.id, "layers", ("layer", "metric"))

    def counts(self) -> dict[str, int]:
        return self.store.counts(self.id)

    def finished_out_of_plan(self) -> int:
        """Finished runs kept from an earlier plan of the study (re-planned with
        --replan: an edited study file or plug-in), which reports leave out."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM runs WHERE study_id=? AND in_plan=0 AND status IN "
            "('completed', 'diverged', 'failed')", (self.id,)).fetchone()[0]

    def spec(self) -> dict[str, Any]:
        """The study as it was last planned (its validated study file)."""
        row = self.conn.execute("SELECT spec FROM studies WHERE id=?", (self.id,)).fetchone()
        return json.loads(row["spec"])

    def run_spec(self, run_id: str) -> RunSpec:
        row = self.conn.execute("SELECT spec FROM runs WHERE study_id=? AND run_id=?",
                                (self.id, run_id)).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id} in study {self.name}")
        return RunSpec.model_validate_json(row["spec"])

    def run_info(self, run_id: str) -> dict[str, Any]:
        """What the run recorded about itself (parameters, environment, input shape...);
        empty before it has started."""
        row = self.conn.execute("SELECT info FROM runs WHERE study_id=? AND run_id=?",
                                (self.id, run_id)).fetchone()
        return json.loads(row["info"]) if row and row["info"] else {}

    def infos(self) -> list[dict[str, Any]]:
        """The recorded ``info`` of every run that has one (in or out of the plan)."""
        return [json.loads(row["info"]) for row in self.conn.execute(
            "SELECT info FROM runs WHERE study_id=? AND info IS NOT NULL", (self.id,))]

    def confusion(self, run_id: str) -> list[list[int]] | None:
        row = self.conn.execute("SELECT final FROM runs WHERE study_id=? AND run_id=?",
                                (self.id, run_id)).fetchone()
        return json.loads(row["final"]).get("confusion") if row and row["final"] else None
