"""The report as a document: sections of paragraphs, tables and figures, rendered to
Markdown and HTML by the same walk (so the two never disagree)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class FigureItem:
    path: str  # PNG, relative to the report folder (an SVG lies beside it)
    title: str
    caption: str


@dataclass
class TableItem:
    title: str
    caption: str
    markdown: str
    html: str
    files: list[str] = field(default_factory=list)  # relative: tables/NAME.{md,tex,csv}


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)  # Markdown-light: **bold**, `code`
    items: list[FigureItem | TableItem | str] = field(default_factory=list)
    level: int = 2

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    def add(self, item: FigureItem | TableItem | str) -> None:
        self.items.append(item)


def frame_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A plain Markdown table of a frame (numbers rounded, NaN shown as —)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "—" if pd.isna(value) else f"{value:.{digits}g}"
        return str(value)

    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def frame_html(frame: pd.DataFrame, digits: int = 4) -> str:
    return frame.to_html(index=False, na_rep="—", border=0, classes="data",
                         float_format=lambda v: f"{v:.{digits}g}")
