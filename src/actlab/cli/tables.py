"""Tables of runs that stay readable at any terminal width (``actlab plan``, ``runs``).

A column whose value is the same in every row says nothing per row: it is left out and
named once under the table. Columns that still do not fit are left out lowest priority
first (and named), instead of every column being cut to a few characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

#: Room a column takes beyond its widest value: rich's padding and border.
COLUMN_OVERHEAD = 3


def constant_columns(rows: list[dict[str, str]], columns: Sequence[str]) -> dict[str, str]:
    """The columns with one value in every row (of two or more rows), with that value."""
    if len(rows) < 2:
        return {}
    return {c: rows[0][c] for c in columns if len({row[c] for row in rows}) == 1}


def fitting(rows: list[dict[str, str]], columns: Sequence[str], priority: Sequence[str],
            width: int) -> list[str]:
    """``columns`` (in their order) without the lowest-``priority`` ones that do not fit
    in ``width`` characters; columns not in ``priority`` go first."""
    def room(column: str) -> int:
        widest = max([len(column), *(len(row[column]) for row in rows)])
        return widest + COLUMN_OVERHEAD

    kept = list(columns)
    unranked = [c for c in kept if c not in priority]
    order = unranked[::-1] + [c for c in priority[::-1] if c in kept]
    while sum(room(c) for c in kept) + 1 > width and len(kept) > 1:
        kept.remove(order.pop(0))
    return kept


def print_runs(console: Console, title: str, rows: list[dict[str, Any]],
               columns: Sequence[str], priority: Sequence[str], *,
               keep: Sequence[str] = (), fixed: bool = False, limit: int = 0,
               choose_hint: str = "") -> None:
    """Print ``rows`` under ``title``: every column of ``columns`` if ``fixed`` (the user
    chose them), else those that vary (and ``keep``) and fit the console's width, with a
    line naming what was left out. With ``limit``, only the first ``limit`` rows are
    drawn (the columns are still chosen from all of them): a terminal table of 50,000
    runs took a minute to draw and helps no one. ``choose_hint`` tells how to pick the
    columns (the command's option), after the note on columns left out."""
    text = [{c: "" if row.get(c) is None else str(row.get(c)) for c in columns} for row in rows]
    notes = []
    shown = list(columns)
    if not fixed:
        same = {c: v for c, v in constant_columns(text, columns).items() if c not in keep}
        shown = [c for c in columns if c not in same]
        if same:
            notes.append("same in every run: " + ", ".join(
                f"{c}={v or '-'}" for c, v in same.items()))
        fitted = fitting(text, shown, priority, console.width)
        if len(fitted) < len(shown):
            notes.append("left out at this width: " + ", ".join(
                c for c in shown if c not in fitted) + choose_hint)
        shown = fitted
    table = Table(title=title)
    for column in shown:
        table.add_column(column, no_wrap=True, overflow="fold")
    drawn = text[:limit] if limit else text
    for row in drawn:
        table.add_row(*(row[c] for c in shown))
    console.print(table)
    if len(drawn) < len(text):
        notes.insert(0, f"showing the first {len(drawn):,} of {len(text):,} runs "
                        "(--limit 0 shows all)")
    for note in notes:
        console.print(f"[dim]{note}[/]")


def print_tuning(console: Console, store: Any, study: Any) -> None:
    """A tuned study's two phases (study/tuning.py): each group's trials finished and
    its selection, if decided."""
    from actlab.study.phases import tuning_state
    from actlab.study.tuning import configuration_text

    states = tuning_state(store, study)
    decided = sum(state.selection is not None for state in states)
    table = Table(title=f"tuning: {decided} of {len(states)} groups decided "
                        f"(selected on {study.tune.select}; each group's final runs, "
                        f"{len(study.seed_list)} seed(s) per cell, join the plan then)")
    for column in ("group", "trials finished", "selected", study.tune.select):
        table.add_column(column, no_wrap=column != "group")
    for state in states:
        chosen = state.selection
        table.add_row(state.group, f"{state.finished}/{state.trials}",
                      configuration_text(chosen.configuration) if chosen else "not yet",
                      f"{chosen.metric:.4g}" if chosen else "")
    console.print(table)


def print_seeding(console: Console, store: Any, study: Any) -> None:
    """A study with adaptive seeds (study/stopping.py): per cell its seeds, where the
    stopping rule stands and why."""
    from actlab.study.phases import seeding_state

    states = seeding_state(store, study)
    adaptive = study.adaptive
    table = Table(title=f"adaptive seeds ({adaptive.text()}, on {adaptive.metric}): "
                        f"{seeding_summary(states)} (at most "
                        f"{len(states) * adaptive.max})")
    decided = adaptive.until.kind == "decided"
    columns = ("cell", "seeds", "state", "diff", "±95%", *(("verdict",) if decided else ()),
               "why")
    for column in columns:
        table.add_column(column, no_wrap=column != "why")
    for state in states:
        progress = state.progress
        if progress is None:
            table.add_row(state.label, str(state.seeds), "baseline", "", "",
                          *([""] if decided else []), "the cells' seeds")
            continue
        finite = progress.pairs >= 2
        table.add_row(state.label, str(state.seeds),
                      "stopped" if progress.status == "stopped" else "open",
                      f"{progress.difference:+.2f}" if finite else "",
                      f"{progress.half_width:.2f}" if finite else "",
                      *([progress.verdict if finite else ""] if decided else []),
                      progress.reason)
    console.print(table)


def seeding_summary(states: list[Any]) -> str:
    """'3 of 10 cells open, 41 runs planned' for a study with adaptive seeds."""
    cells = [state for state in states if state.progress is not None]
    open_cells = sum(state.progress.status != "stopped" for state in cells)
    return (f"{open_cells} of {len(cells)} cells open, "
            f"{sum(state.seeds for state in states)} runs planned")
