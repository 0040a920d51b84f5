"""The report as a document: sections of paragraphs, tables and figures, rendered to
Markdown and HTML by the same walk (so the two never disagree)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class FigureItem:
    path: str  # PNG, relative to the report folder
    title: str
    caption: str
    files: list[str]  # every format written (PNG first, then SVG if asked), same folder


@dataclass
class TableItem:
    title: str
    caption: str
    markdown: str
    html: str
    files: list[str] = field(default_factory=list)  # relative: tables/NAME.{md,tex,csv}


@dataclass
class CodeItem:
    """A block of source text shown verbatim (a plug-in's code)."""

    title: str
    text: str
    language: str = "python"


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)  # Markdown-light: **bold**, `code`
    items: list[FigureItem | TableItem | CodeItem | str] = field(default_factory=list)
    level: int = 2

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    def add(self, item: FigureItem | TableItem | CodeItem | str) -> None:
        self.items.append(item)


def slug(text: str) -> str:
    """A file-name-safe form of a label: ``deep_cnn(depth=5)`` -> ``deep-cnn-depth-5``."""
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


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


class ItemWriter:
    """Writes a document's figures (``figures/NAME.png``, and ``.svg`` when ``svg``) and
    tables (``tables/NAME.md`` + ``.tex`` + ``.csv``) under ``out`` and returns their
    items. Drawing dominates a report's time, and each format is drawn anew, so leaving
    out the SVG copies about halves it."""

    def __init__(self, out: Path, svg: bool = True) -> None:
        self.out = out
        self.formats = ("png", "svg") if svg else ("png",)

    def fig(self, figure: Any, name: str, title: str, caption: str) -> FigureItem:
        from actlab.report.figures import save  # matplotlib only when a figure is drawn

        path = save(figure, self.out / "figures" / name, self.formats)
        relative = path.relative_to(self.out)
        return FigureItem(str(relative), title, caption,
                          [str(relative.with_suffix(f".{s}")) for s in self.formats])

    def table(self, name: str, title: str, caption: str, frame: pd.DataFrame,
              texts: tuple[str, str, str, str] | None = None) -> TableItem:
        """A table of ``frame``, or of given (markdown, html, latex, csv) ``texts``."""
        folder = self.out / "tables"
        folder.mkdir(parents=True, exist_ok=True)
        if texts is None:
            texts = (frame_markdown(frame), frame_html(frame),
                     frame.to_latex(index=False, na_rep="--", float_format="%.4g"),
                     frame.to_csv(index=False))
        markdown, html, latex, csv = texts
        files = []
        for suffix, text in (("md", markdown), ("tex", latex), ("csv", csv)):
            (folder / f"{name}.{suffix}").write_text(text)
            files.append(f"tables/{name}.{suffix}")
        return TableItem(title, caption, markdown, html, files)
