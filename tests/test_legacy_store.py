"""A store written by an earlier actlab stays usable: tests/fixtures/legacy.db was written
by the code before issue 20's restructuring (commit cd9da0c) from
tests/fixtures/legacy-study.yaml, and tests/fixtures/legacy-report/ is the report that
code wrote of it. Today's code must find every run of that study done (the same run ids:
nothing is trained again) and write the same report: the same text, the same runs and
epochs frames, the same tables. What later issues added to every report (issue 24: the
Bayesian verdicts and the power table) may come in between: new lines, tables and
columns, never a changed or missing one."""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from helpers import db_rows

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "legacy-report"
# Measured on the machine that writes the report (cached per machine): not the store's.
MACHINE_DEPENDENT_COLUMNS = {"cost_vs_relu"}

runner = CliRunner()


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Path:
    """A copy of the legacy store, resumed by today's code."""
    folder = tmp_path_factory.mktemp("legacy")
    db = folder / "legacy.db"
    shutil.copy(FIXTURES / "legacy.db", db)
    result = runner.invoke(app, ["run", str(FIXTURES / "legacy-study.yaml"), "--store",
                                 str(db), "--threads", "1"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "32 completed, 2 diverged, 0 failed (0 run now" in " ".join(result.output.split())
    return folder


@pytest.fixture(scope="module")
def legacy(resumed) -> Path:
    """... and reported (a whole report with its theory section: seconds to draw)."""
    report = runner.invoke(app, ["report", "legacy", "--store", str(resumed / "legacy.db"),
                                 "-o", str(resumed / "report"), "--no-svg"])
    assert report.exit_code == 0, report.output
    return resumed


def test_resuming_trains_nothing_and_keeps_every_run(resumed) -> None:
    db = resumed / "legacy.db"
    assert db_rows(db, "SELECT status, attempts, COUNT(*) FROM runs GROUP BY 1, 2") == [
        ("completed", 1, 32), ("diverged", 1, 2)]
    original = FIXTURES / "legacy.db"
    query = "SELECT run_id, status, final FROM runs ORDER BY run_id"
    assert db_rows(db, query) == db_rows(original, query)
    assert db_rows(db, "SELECT COUNT(*) FROM epochs") == db_rows(original,
                                                               "SELECT COUNT(*) FROM epochs")


def masked_markdown(text: str) -> str:
    """The report's Markdown with the machine-dependent table columns blanked."""
    lines, masked = text.splitlines(), []
    drop: list[int] = []
    for line in lines:
        if line.startswith("| "):
            cells = line.split(" | ")
            if any(c.strip(" |") in MACHINE_DEPENDENT_COLUMNS for c in cells):
                drop = [i for i, c in enumerate(cells) if c.strip(" |") in
                        MACHINE_DEPENDENT_COLUMNS]
            cells = ["?" if i in drop else c for i, c in enumerate(cells)]
            line = " | ".join(cells)
        else:
            drop = [] if not line.startswith("|") else drop
        masked.append(line)
    return "\n".join(masked)


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")


def close(a: str, b: str) -> bool:
    """Equal text, numbers equal up to float rounding: the theory section's float64
    reductions differ in the last bits with the thread count, and a fixed point at 0 may
    come out as 0 or 8.5e-12."""
    if a == b:
        return True
    numbers_a, numbers_b = NUMBER.findall(a), NUMBER.findall(b)
    if NUMBER.sub("#", a) != NUMBER.sub("#", b) or len(numbers_a) != len(numbers_b):
        return False
    return all(math.isclose(float(x), float(y), rel_tol=1e-6, abs_tol=1e-9)
               for x, y in zip(numbers_a, numbers_b, strict=True))


def assert_close_lines(today: str, golden: str) -> None:
    today_lines, golden_lines = today.splitlines(), golden.splitlines()
    assert len(today_lines) == len(golden_lines)
    for number, (line, expected) in enumerate(zip(today_lines, golden_lines, strict=True), 1):
        assert close(line, expected), f"line {number}:\n{line}\n!=\n{expected}"


@pytest.mark.slow
def test_the_report_text_is_unchanged(legacy) -> None:
    golden = masked_markdown((GOLDEN / "report.md").read_text())
    today = masked_markdown((legacy / "report" / "report.md").read_text())
    assert_golden_lines_in_order(without_added_columns(today, golden), golden)


def without_added_columns(today: str, golden: str) -> str:
    """``today`` with each Markdown table cut to the columns of the golden table of the
    same leading columns (the columns added since are dropped)."""
    headers = [_cells(line) for line in golden.splitlines() if line.startswith("| ")]
    lines, out, columns = today.splitlines(), [], None
    for index, line in enumerate(lines):
        if not line.startswith("|"):
            columns = None
        elif line.startswith("| ") and index + 1 < len(lines) and \
                lines[index + 1].startswith("|---"):
            cells = _cells(line)
            match = [h for h in headers if set(h) <= set(cells) and h[:1] == cells[:1]]
            columns = ([cells.index(c) for c in max(match, key=len)]
                       if match and cells not in headers else None)
        elif line.startswith("|---") and columns is not None:
            line = "|" + "---|" * len(columns)
            out.append(line)
            continue
        if columns is not None and line.startswith("| "):
            cells = _cells(line)
            line = "| " + " | ".join(cells[i] for i in columns) + " |"
        out.append(line)
    return "\n".join(out)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def assert_golden_lines_in_order(today: str, golden: str) -> None:
    """Every golden line appears in ``today`` (numbers up to rounding), in order."""
    today_lines = today.splitlines()
    position = 0
    for number, expected in enumerate(golden.splitlines(), 1):
        while position < len(today_lines) and not close(today_lines[position], expected):
            position += 1
        assert position < len(today_lines), f"golden line {number} not found in order:\n{expected}"
        position += 1


def masked_csv(path: Path, keep: list[str] | None = None) -> str:
    """The rows as text, machine-dependent columns left out, only ``keep`` if given."""
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return "\n".join(",".join(f"{k}={v}" for k, v in row.items()
                              if k not in MACHINE_DEPENDENT_COLUMNS
                              and (keep is None or k in keep)) for row in rows)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["runs.csv", "epochs.csv"])
def test_the_runs_and_epochs_frames_are_unchanged(legacy, name: str) -> None:
    assert_close_lines(masked_csv(legacy / "report" / name), masked_csv(GOLDEN / name))


@pytest.mark.slow
def test_every_table_is_unchanged(legacy) -> None:
    expected = sorted(p.name for p in (GOLDEN / "tables").glob("*.csv"))
    written = sorted(p.name for p in (legacy / "report" / "tables").glob("*.csv"))
    assert set(written) - set(expected) == {"power.csv"}  # issue 24
    for name in expected:
        golden = GOLDEN / "tables" / name
        keep = next(csv.reader(io.StringIO(golden.read_text())))
        assert_close_lines(masked_csv(legacy / "report" / "tables" / name, keep),
                           masked_csv(golden))


def test_the_golden_report_names_the_commit_that_wrote_the_store() -> None:
    text = (GOLDEN / "report.md").read_text()
    assert re.search(r"actlab 0\.1\.0 \(commit cd9da0cc", text)


@pytest.mark.parametrize(("act", "model"), [("relu", "deep_cnn"),
                                           ("leaky_relu(slope=0.3)", "lenet5")])
def test_todays_engine_retrains_a_legacy_run_to_the_same_numbers(act: str, model: str) -> None:
    """The engine was restructured, not changed: a run of the legacy study trained again
    (one thread, as the fixture was) gives the curves and test metrics the old engine
    stored, up to float rounding between CPUs. (Not a tact run: issue 21 gave tact the
    matched gain of its per-site draws on average, where the old code used one draw's,
    so its runs start from other weights.)"""
    import json

    import torch

    from actlab.spec import RunSpec
    from actlab.train.engine import run_one

    rows = db_rows(FIXTURES / "legacy.db", "SELECT run_id, spec, final FROM runs WHERE "
                   "status='completed' ORDER BY position")
    run_id, spec_json, final = next(row for row in rows if json.loads(row[1])["act"] == act
                                    and json.loads(row[1])["model"] == model)
    spec = RunSpec.model_validate_json(spec_json)
    assert spec.run_id == run_id
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_one(spec)
    finally:
        torch.set_num_threads(threads)
    stored = db_rows(FIXTURES / "legacy.db", "SELECT train_loss, train_acc, val_loss, val_acc, "
                     "lr FROM epochs WHERE run_id=? ORDER BY epoch", run_id)
    again = [(e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.lr) for e in result.epochs]
    assert again == [pytest.approx(row, rel=1e-5) for row in stored]
    for key in ("test_acc", "test_loss", "best_val_epoch", "test_macro_f1"):
        assert result.final[key] == pytest.approx(json.loads(final)[key], rel=1e-5), key
