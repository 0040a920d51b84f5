"""The run store: one SQLite database (WAL mode) holding studies, runs and their metrics.

This module writes: the schema and its upgrades, registering a plan, claims and
heartbeats, and each run's records as it trains. Reading (frames for analysis and
reports) is :mod:`actlab.study.frames`.

Every change is one transaction, so a process killed at any point leaves the database
consistent: a run is either pending, claimed (``running``, with an owner and a
heartbeat), or finished with all its rows. Claims use ``BEGIN IMMEDIATE`` so that several
processes can share a study without running a cell twice; a claim whose owner died (its
process is gone, or its heartbeat is older than ``stale_after`` seconds) is taken over.
docs/design.md ("Claims, heartbeats and dead owners") describes the protocol.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from actlab.plugins import PluginSource
from actlab.spec import RunSpec
from actlab.study.cells import cell_labels
from actlab.study.frames import StudyView
from actlab.study.plan import Study

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
STATUSES = ("pending", "running", "completed", "diverged", "failed")
EPOCH_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time",
                 "images_per_s", "test_loss", "test_acc", "peak_memory_mb")
#: Columns (table, column, type) added by each schema version, so an older store is
#: upgraded in place; new tables come from SCHEMA's CREATE TABLE IF NOT EXISTS.
MIGRATIONS: dict[int, list[tuple[str, str, str]]] = {
    2: [("epochs", "test_loss", "REAL"), ("epochs", "test_acc", "REAL"),
        ("epochs", "peak_memory_mb", "REAL"),
        ("runs", "checkpoint_epoch", "INTEGER")],
    # The cell labels (actlab.study.cells), stored when a plan is registered; older rows
    # get them from their specs when read, until their study is run again.
    3: [("runs", "cell", "TEXT")],
    # Tuned studies' selections (study/tuning.py): a new table, no new columns.
    4: [],
}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    run_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    in_plan INTEGER NOT NULL DEFAULT 1,
    spec TEXT NOT NULL,
    cell TEXT,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    heartbeat REAL,
    started_at REAL,
    finished_at REAL,
    diverged_epoch INTEGER,
    checkpoint_epoch INTEGER,
    reason TEXT,
    error TEXT,
    final TEXT,
    info TEXT,
    PRIMARY KEY (study_id, run_id)
);
CREATE TABLE IF NOT EXISTS epochs (
    study_id INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    {", ".join(f"{c} REAL" for c in EPOCH_COLUMNS)},
    PRIMARY KEY (study_id, run_id, epoch),
    FOREIGN KEY (study_id, run_id) REFERENCES runs(study_id, run_id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS layers (
    study_id INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    layer TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (study_id, run_id, epoch, layer, metric),
    FOREIGN KEY (study_id, run_id) REFERENCES runs(study_id, run_id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS selections (
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    grp TEXT NOT NULL,
    configuration TEXT NOT NULL,
    metric REAL,
    decided_at REAL NOT NULL,
    PRIMARY KEY (study_id, grp)
);
CREATE TABLE IF NOT EXISTS params (
    study_id INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    site TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (study_id, run_id, epoch, site, name),
    FOREIGN KEY (study_id, run_id) REFERENCES runs(study_id, run_id) ON DELETE CASCADE
);
"""


def _disk_hint(exc: Exception) -> str:
    text = str(exc)
    if _not_a_store(exc):
        return ""
    return " (is the disk full or the file size limited?)" if (
        "disk" in text or "full" in text or "too large" in text) else ""


def _not_a_store(exc: Exception) -> bool:
    """SQLite's answer for a file that is not a database, or a truncated or overwritten
    one ("file is not a database", "database disk image is malformed")."""
    return isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in str(exc) or "malformed" in str(exc))


def _write_error(path: Path, exc: Exception) -> str:
    hint = _disk_hint(exc)
    if hint:
        hint += ("; free space or choose another --store: runs finished before are kept, "
                 "and `actlab run` resumes the rest")
    return f"could not write the run store at {path}: {exc}{hint}"


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says why and what to do."""


class PlanChangedError(StoreError):
    """A study file plans other runs than the study of the same name in the store."""


def _differences(stored: Any, given: Any, prefix: str = "") -> list[str]:
    """``key: stored -> given`` for every leaf where two study documents differ; a
    plug-in is named by its file and digest, not its text."""
    if prefix == "plugins.":
        stored, given = _plugin_digests(stored), _plugin_digests(given)
    if isinstance(stored, dict) and isinstance(given, dict):
        found = []
        for key in dict.fromkeys([*stored, *given]):
            found += _differences(stored.get(key), given.get(key), f"{prefix}{key}.")
        return found
    if stored == given:
        return []
    return [f"{prefix.rstrip('.')}: {json.dumps(stored)} -> {json.dumps(given)}"]


def _plugin_digests(sources: Any) -> Any:
    """``{origin: digest}`` of a study document's plug-ins."""
    if not isinstance(sources, list):
        return sources
    return {source["origin"]: PluginSource.model_validate(source).digest
            for source in sources if isinstance(source, dict)}


def new_owner() -> str:
    """An owner tag for claims: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str | None) -> bool:
    """True if ``owner`` is a process on this host that no longer exists."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(rest.split(":")[0]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def _json(value: Any) -> str:
    def clean(obj: Any) -> Any:  # JSON has no NaN: store it as null
        if isinstance(obj, float) and not math.isfinite(obj):
            return None
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [clean(v) for v in obj]
        return obj

    return json.dumps(clean(value), sort_keys=True)


class Store:
    """A connection to the run store at ``path`` (created on first use)."""

    def __init__(self, path: str | Path, stale_after: float = 300.0,
                 read_only: bool = False) -> None:
        """``read_only``: open an existing store only to read it (status, runs, report,
        export), so that one on a read-only file system or without write permission can
        be read; a store of an older schema is still upgraded first where it can be
        written."""
        self.path = Path(path)
        self.stale_after = stale_after
        try:
            if not (read_only and self._open_read_only()):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._open()
        except StoreError as exc:
            raise StoreError(f"cannot open the run store: {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            if _not_a_store(exc):
                raise StoreError(
                    f"{self.path} is not a valid SQLite run store ({exc}): was it truncated "
                    "or overwritten? Restore it from a copy, or choose another --store") from exc
            raise StoreError(f"cannot open the run store at {self.path}: {exc}"
                             f"{_disk_hint(exc)}. Choose a writable location with --store or "
                             "ACTLAB_STORE.") from exc

    def _open_read_only(self) -> bool:
        """Connect without writing (True), or False when the store must first be
        upgraded to this version's schema. On a read-only file system SQLite cannot make
        the WAL's shared-memory file, so the store is then opened as immutable."""
        if not self.path.is_file():
            raise StoreError(f"no run store at {self.path}; run a study first or give its "
                             "path with --store")
        for mode in ("mode=ro", "immutable=1"):
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?{mode}", uri=True,
                                   timeout=60.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            try:
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'"
                                   ).fetchone()
            except sqlite3.OperationalError as exc:
                conn.close()
                if "unable to open" in str(exc) or "readonly" in str(exc):
                    continue  # no -shm on a read-only file system: try immutable
                raise
            version = int(row["value"]) if row else 0
            if version > SCHEMA_VERSION:
                conn.close()
                raise StoreError(f"{self.path} has schema version {version}, newer than this "
                                 f"actlab understands ({SCHEMA_VERSION}); upgrade actlab")
            if version < SCHEMA_VERSION:
                conn.close()
                return False
            self.conn = conn
            return True
        raise StoreError(f"cannot read the run store at {self.path}")

    def _open(self, attempts: int = 200) -> None:
        """Connect, switch to WAL and create the schema. Several processes may open a new
        store at the same moment; switching the journal mode does not wait for a lock
        (SQLite answers 'database is locked' at once), so that race is retried."""
        for attempt in range(attempts):
            self.conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            try:
                self.conn.execute("PRAGMA busy_timeout=60000")
                if self.conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA foreign_keys=ON")
                with self.transaction(immediate=True):
                    self._create_schema()
                return
            except sqlite3.OperationalError as exc:
                self.conn.close()
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 + 0.01 * attempt)

    def _create_schema(self) -> None:
        row = (self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
               if self._has_table("meta") else None)
        existing = int(row["value"]) if row else None
        if existing is not None and existing > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {existing}, newer than this "
                             f"actlab understands ({SCHEMA_VERSION}); upgrade actlab")
        if existing is not None:  # an older store: upgrade its tables first
            for version in range(existing + 1, SCHEMA_VERSION + 1):
                for table, column, kind in MIGRATIONS.get(version, []):
                    columns = {r["name"] for r in
                               self.conn.execute(f"PRAGMA table_info({table})")}
                    if columns and column not in columns:
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.conn.execute(statement)
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                          (str(SCHEMA_VERSION),))

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                 (name,)).fetchone() is not None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic transaction; ``immediate`` (the default: every caller writes) takes
        the write lock up front. A deferred transaction that reads and then writes fails
        at once with "database is locked" when another process wrote in between (WAL
        cannot upgrade its stale snapshot), instead of waiting its turn.

        A write the disk refuses (full, a size limit, an I/O error) rolls back and raises
        :class:`StoreError`: SQLite keeps the file consistent, and what was committed
        before stays."""
        try:
            self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise StoreError(_write_error(self.path, exc)) from exc

    # -- studies -------------------------------------------------------------------------
    def register_study(self, study: Study, specs: list[RunSpec], replan: bool = False) -> int:
        """Record ``study`` and its plan with each run's cell labels; returns the study's id.

        A study already in the store keeps its plan: a study file of the same name that
        plans other runs is refused (:class:`PlanChangedError`, naming the difference)
        unless ``replan``. Re-planned, new cells become pending runs and cells no longer
        in the plan are kept but marked out of plan (finished ones come back if a later
        plan has them again)."""
        now = time.time()
        spec_json = study.model_dump_json()
        cells = cell_labels(specs)
        with self.transaction(immediate=True) as conn:
            row = conn.execute("SELECT id, spec FROM studies WHERE name=?",
                               (study.name,)).fetchone()
            if row is None:
                study_id = conn.execute(
                    "INSERT INTO studies (name, spec, created_at, updated_at) VALUES (?,?,?,?)",
                    (study.name, spec_json, now, now)).lastrowid
            else:
                study_id = row["id"]
                if not replan:
                    self._check_same_plan(conn, study_id, row["spec"], study, specs)
                conn.execute("UPDATE studies SET spec=?, updated_at=? WHERE id=?",
                             (spec_json, now, study_id))
            conn.execute("UPDATE runs SET in_plan=0 WHERE study_id=?", (study_id,))
            for position, (spec, cell) in enumerate(zip(specs, cells, strict=True)):
                role = study.role_of(spec)
                if role is not None:  # a tuned study: trials and finals (study/tuning.py)
                    cell = {**cell, "role": role}
                conn.execute(
                    "INSERT INTO runs (study_id, run_id, position, spec, cell, status) "
                    "VALUES (?,?,?,?,?, 'pending') ON CONFLICT (study_id, run_id) "
                    "DO UPDATE SET in_plan=1, position=excluded.position, spec=excluded.spec, "
                    "cell=excluded.cell",
                    (study_id, spec.run_id, position, spec.model_dump_json(), json.dumps(cell)))
        return study_id

    def _check_same_plan(self, conn: sqlite3.Connection, study_id: int, stored_json: str,
                         study: Study, specs: list[RunSpec]) -> None:
        stored = {r["run_id"] for r in conn.execute(
            "SELECT run_id FROM runs WHERE study_id=? AND in_plan=1", (study_id,))}
        given = {spec.run_id for spec in specs}
        if stored == given:
            return
        if study.grows and stored <= given and not (
                (given - stored) & {s.run_id for s in study.expand()}):
            return  # runs decided since it was planned: tuning finals, adaptive seeds
        changes = _differences(json.loads(stored_json), study.model_dump(mode="json"))
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6
                                          else "")
        shown = shown or "same settings, another version of actlab"
        raise PlanChangedError(
            f"study '{study.name}' in {self.path} has another plan: {len(stored - given)} of "
            f"its {len(stored)} runs are not in this file's plan and {len(given - stored)} of "
            f"this file's {len(given)} runs are not in it ({shown}). Give this study file "
            "another name, or pass --replan to replace the stored plan (finished runs are "
            "kept; a runner of the old plan stops with an error)")

    def unfinished_out_of_plan(self, study_id: int, run_ids: list[str]) -> list[str]:
        """Those of ``run_ids`` that another process's re-plan took out of the plan
        before they finished."""
        rows = self.conn.execute(
            "SELECT run_id FROM runs WHERE study_id=? AND in_plan=0 AND status IN "
            "('pending', 'running')", (study_id,))
        wanted = set(run_ids)
        return [r["run_id"] for r in rows if r["run_id"] in wanted]

    def statuses(self, name: str, in_plan: bool = False) -> dict[str, str]:
        """Run id -> status of every run stored for the study ``name`` (only those of its
        current plan if ``in_plan``; empty when there is no such study)."""
        return {r["run_id"]: r["status"] for r in self.conn.execute(
            "SELECT run_id, status FROM runs JOIN studies s ON s.id = runs.study_id "
            "WHERE s.name=? AND (in_plan=1 OR ?=0)", (name, int(in_plan)))}

    def results(self, name: str, metric: str) -> dict[str, tuple[str, float]]:
        """Run id -> (status, ``metric``) of the study's finished runs: the final metric
        when the run stored one of that name (test_acc, best_val_acc, ...), else the last
        epoch's value (val_acc, val_loss); NaN for a run that diverged or failed. What a
        tuning selection (study/tuning.py) and a stopping rule (study/stopping.py) read."""
        rows = self.conn.execute(
            "SELECT run_id, status, final FROM runs JOIN studies s ON s.id = runs.study_id "
            "WHERE s.name=? AND status IN ('completed', 'diverged', 'failed')", (name,))
        results: dict[str, tuple[str, float]] = {}
        for row in rows:
            value = math.nan
            final = json.loads(row["final"] or "{}") if row["status"] == "completed" else {}
            if metric in final:
                value = math.nan if final[metric] is None else float(final[metric])
            elif row["status"] == "completed" and metric in ("val_acc", "val_loss"):
                last = self.conn.execute(
                    f"SELECT {metric} AS v FROM epochs e JOIN studies s ON s.id = e.study_id "
                    "WHERE s.name=? AND e.run_id=? ORDER BY epoch DESC LIMIT 1",
                    (name, row["run_id"])).fetchone()
                value = math.nan if last is None or last["v"] is None else float(last["v"])
            results[row["run_id"]] = (row["status"], value)
        return results

    def record_selections(self, study_id: int,
                          decided: list[tuple[str, dict[str, Any], float]]) -> None:
        """Keep each tuning group's selection (group, configuration, mean validation
        metric) the first time it is made; a decided group's selection never changes
        afterwards, whatever is re-run (study/phases.py)."""
        with self.transaction(immediate=True) as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO selections (study_id, grp, configuration, metric, "
                "decided_at) VALUES (?,?,?,?,?)",
                [(study_id, group, json.dumps(configuration, sort_keys=True), metric,
                  time.time()) for group, configuration, metric in decided])

    def selections(self, name: str) -> dict[str, tuple[dict[str, Any], float]]:
        """Group -> (configuration, metric) of the study's recorded selections."""
        if not self._has_table("selections"):
            return {}
        return {row["grp"]: (json.loads(row["configuration"]), row["metric"])
                for row in self.conn.execute(
                    "SELECT grp, configuration, metric FROM selections JOIN studies s ON "
                    "s.id = selections.study_id WHERE s.name=?", (name,))}

    def extend_plan(self, study_id: int, specs: list[RunSpec], roles: list[str | None]
                    ) -> int:
        """Add ``specs`` to the study's plan after its runs (a tuned study's final runs,
        once their group is decided); runs already planned are left as they are.
        Returns how many were new."""
        cells = cell_labels(specs)
        added = 0
        with self.transaction(immediate=True) as conn:
            start = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM runs WHERE "
                                 "study_id=?", (study_id,)).fetchone()[0]
            for spec, cell, role in zip(specs, cells, roles, strict=True):
                if role is not None:
                    cell = {**cell, "role": role}
                added += conn.execute(
                    "INSERT INTO runs (study_id, run_id, position, spec, cell, status) "
                    "VALUES (?,?,?,?,?, 'pending') ON CONFLICT (study_id, run_id) DO UPDATE "
                    "SET in_plan=1 WHERE in_plan=0",
                    (study_id, spec.run_id, start + added, spec.model_dump_json(),
                     json.dumps(cell))).rowcount
        return added

    def study_id(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM studies WHERE name=?", (name,)).fetchone()
        if row is None:
            known = [r["name"] for r in self.conn.execute("SELECT name FROM studies ORDER BY name")]
            raise StoreError(f"no study named '{name}' in {self.path}; studies there: "
                             f"{', '.join(known) or 'none (run one with `actlab run`)'}")
        return row["id"]

    def study_plugins(self, name: str) -> list[PluginSource]:
        """The plug-ins a stored study was planned with (their source text)."""
        row = self.conn.execute("SELECT spec FROM studies WHERE id=?",
                                (self.study_id(name),)).fetchone()
        return [PluginSource.model_validate(p)
                for p in json.loads(row["spec"]).get("plugins", [])]

    def delete_study(self, name: str) -> int:
        """Delete a study with all its runs, rows and checkpoint files; returns the number
        of runs deleted."""
        study_id = self.study_id(name)
        with self.transaction(immediate=True) as conn:
            runs = conn.execute("SELECT COUNT(*) FROM runs WHERE study_id=?",
                                (study_id,)).fetchone()[0]
            for table in ("epochs", "params", "layers", "runs"):
                conn.execute(f"DELETE FROM {table} WHERE study_id=?", (study_id,))
            conn.execute("DELETE FROM studies WHERE id=?", (study_id,))
        shutil.rmtree(self.path.parent / f"{self.path.stem}-artifacts" / str(study_id),
                      ignore_errors=True)
        return runs

    def study(self, name: str) -> StudyView:
        """A study's stored data (:mod:`actlab.study.frames`):
        ``store.study('quickstart').runs()``."""
        return StudyView(self, self.study_id(name), name)

    def studies(self) -> list[str]:
        return [r["name"] for r in self.conn.execute("SELECT name FROM studies ORDER BY name")]

    # -- runs ----------------------------------------------------------------------------
    def claim_next(self, study_id: int, owner: str,
                   match: Callable[[RunSpec], bool] | None = None) -> RunSpec | None:
        """Atomically claim the next runnable cell (pending, or abandoned by a dead owner)
        for which ``match(spec)`` holds (any, without ``match``)."""
        now = time.time()
        with self.transaction(immediate=True) as conn:
            rows = conn.execute(
                "SELECT run_id, status, owner, heartbeat, spec, checkpoint_epoch FROM runs "
                "WHERE study_id=? "
                "AND in_plan=1 AND status IN ('pending', 'running') ORDER BY position",
                (study_id,)).fetchall()
            for row in rows:
                if row["status"] == "running" and not (
                    owner_is_dead(row["owner"]) or now - (row["heartbeat"] or 0) > self.stale_after
                ):
                    continue
                spec = RunSpec.model_validate_json(row["spec"])
                if match is not None and not match(spec):
                    continue
                if row["status"] == "running":
                    log.info("reclaiming run %s abandoned by %s", row["run_id"], row["owner"])
                # A reclaimed run resumes from its last checkpoint (or starts over): drop
                # the rows the abandoned attempt wrote after that epoch.
                self._clear_rows(conn, study_id, row["run_id"], row["checkpoint_epoch"] or 0)
                conn.execute(
                    "UPDATE runs SET status='running', owner=?, heartbeat=?, started_at=?, "
                    "attempts=attempts+1, error=NULL WHERE study_id=? AND run_id=?",
                    (owner, now, now, study_id, row["run_id"]))
                return spec
        return None

    @staticmethod
    def _clear_rows(conn: sqlite3.Connection, study_id: int, run_id: str,
                    after_epoch: int = 0) -> None:
        """Delete a run's per-epoch rows after ``after_epoch`` (0: all but the
        initialization rows of params/layers, which are rewritten anyway)."""
        for table in ("epochs", "params", "layers"):
            conn.execute(f"DELETE FROM {table} WHERE study_id=? AND run_id=? AND "
                         f"(epoch > ? OR ? = 0)", (study_id, run_id, after_epoch, after_epoch))

    def checkpoint_epoch(self, study_id: int, run_id: str) -> int:
        """The epoch of the run's last recorded checkpoint (0: none)."""
        return self._checkpoint_epoch(self.conn, study_id, run_id)

    @staticmethod
    def _checkpoint_epoch(conn: sqlite3.Connection, study_id: int, run_id: str) -> int:
        row = conn.execute("SELECT checkpoint_epoch FROM runs WHERE study_id=? AND run_id=?",
                           (study_id, run_id)).fetchone()
        return (row["checkpoint_epoch"] or 0) if row else 0

    def set_checkpoint_epoch(self, study_id: int, run_id: str, epoch: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET checkpoint_epoch=? WHERE study_id=? AND run_id=?",
                         (epoch or None, study_id, run_id))

    def artifact_dir(self, study_id: int, run_id: str) -> Path:
        """Where a run's files (checkpoints) live: beside the database."""
        return self.path.parent / f"{self.path.stem}-artifacts" / str(study_id) / run_id

    def record_params(self, study_id: int, run_id: str, epoch: int,
                      values: list[tuple[str, str, float]]) -> None:
        """Learnable activation values of one epoch (0 = at initialization)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO params VALUES (?,?,?,?,?,?)",
                [(study_id, run_id, epoch, site, name, value) for site, name, value in values])

    def record_layers(self, study_id: int, run_id: str, epoch: int,
                      values: list[tuple[str, str, float]]) -> None:
        """Per-layer measurements of one epoch (0 = at initialization)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO layers VALUES (?,?,?,?,?,?)",
                [(study_id, run_id, epoch, layer, metric, value)
                 for layer, metric, value in values])

    def heartbeat(self, study_id: int, run_id: str, owner: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET heartbeat=? WHERE study_id=? AND run_id=? AND owner=?",
                         (time.time(), study_id, run_id, owner))

    def record_epoch(self, study_id: int, run_id: str, metrics: Any) -> None:
        values = asdict(metrics)
        with self.transaction() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO epochs (study_id, run_id, epoch, "
                f"{', '.join(EPOCH_COLUMNS)}) VALUES (?,?,?{', ?' * len(EPOCH_COLUMNS)})",
                (study_id, run_id, values["epoch"], *(values[c] for c in EPOCH_COLUMNS)))
            conn.execute("UPDATE runs SET heartbeat=? WHERE study_id=? AND run_id=?",
                         (time.time(), study_id, run_id))

    def finish(self, study_id: int, run_id: str, result: Any) -> None:
        """Store a finished run (completed or diverged) with its final metrics."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET status=?, finished_at=?, diverged_epoch=?, reason=?, final=?, "
                "info=?, owner=NULL, checkpoint_epoch=NULL WHERE study_id=? AND run_id=?",
                (result.status, time.time(), result.diverged_epoch, result.reason,
                 _json(result.final), _json(result.info), study_id, run_id))

    def fail(self, study_id: int, run_id: str, error: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET status='failed', finished_at=?, error=?, owner=NULL "
                         "WHERE study_id=? AND run_id=?", (time.time(), error, study_id, run_id))

    def rewind(self, study_id: int, run_id: str) -> int:
        """Drop a run's rows after its last checkpoint (an attempt that was cut off may
        have recorded an epoch it did not checkpoint); returns the epoch it resumes after."""
        with self.transaction() as conn:
            epoch = self._checkpoint_epoch(conn, study_id, run_id)
            self._clear_rows(conn, study_id, run_id, epoch)
        return epoch

    def release(self, study_id: int, run_id: str) -> None:
        """Give a claimed run back (e.g. on Ctrl-C) so the next `actlab run` redoes it,
        from its last checkpoint: the epochs recorded up to that checkpoint are kept."""
        with self.transaction() as conn:
            self._clear_rows(conn, study_id, run_id,
                             self._checkpoint_epoch(conn, study_id, run_id))
            conn.execute("UPDATE runs SET status='pending', owner=NULL, heartbeat=NULL "
                         "WHERE study_id=? AND run_id=?", (study_id, run_id))

    def release_owned(self, study_id: int, owner: str) -> int:
        """Give back every run ``owner`` still holds (its process is stopping: a signal
        may land between a claim and the training that would release it); returns how
        many."""
        held = [r["run_id"] for r in self.conn.execute(
            "SELECT run_id FROM runs WHERE study_id=? AND owner=? AND status='running'",
            (study_id, owner))]
        for run_id in held:
            self.release(study_id, run_id)
        return len(held)

    def reset_failed(self, study_id: int) -> int:
        with self.transaction() as conn:
            return conn.execute("UPDATE runs SET status='pending', error=NULL, "
                                "checkpoint_epoch=NULL WHERE study_id=? "
                                "AND status='failed' AND in_plan=1", (study_id,)).rowcount

    def counts(self, study_id: int) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, COUNT(*) AS n FROM runs WHERE study_id=? "
                                 "AND in_plan=1 GROUP BY status", (study_id,))
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({r["status"]: r["n"] for r in rows})
        return counts


class Heartbeat:
    """Refreshes a claim's heartbeat from a background thread while a run trains."""

    def __init__(self, path: Path, study_id: int, run_id: str, owner: str,
                 interval: float = 30.0) -> None:
        self.args = (study_id, run_id, owner)
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="actlab-heartbeat")

    def _beat(self) -> None:
        # A heartbeat that cannot be written (a full disk) only lets the claim expire
        # sooner: the run's own writes fail with the clear message; no thread traceback.
        try:
            store = Store(self.path)  # sqlite connections belong to one thread
        except (StoreError, sqlite3.Error) as exc:
            log.warning("the heartbeat of run %s cannot write the store: %s", self.args[1],
                        exc)
            return
        try:
            while not self._stop.wait(self.interval):
                store.heartbeat(*self.args)
        except (StoreError, sqlite3.Error) as exc:
            log.warning("the heartbeat of run %s stopped: %s", self.args[1], exc)
        finally:
            store.close()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def open_store(path: str | Path = "results/actlab.db") -> Store:
    """Open a run store: ``actlab.open_store('results/actlab.db').study('quickstart').runs()``."""
    if not Path(path).exists():
        raise StoreError(f"no run store at {path}; run a study first or give its path")
    return Store(path, read_only=True)
