"""Result tables: rows x columns of per-cell statistics, rendered as Markdown, LaTeX
(booktabs) and CSV.

As in the reference AF studies, each cell reads ``mean ± std (n)``; the best cell of each
row is in bold and the best of each column in italics (a cell best in both is both).
Cells without completed runs read ``—``. The CSV keeps the raw numbers.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class CellTable:
    """A rows x columns grid of statistics of one metric (from ``cell_statistics``)."""

    stats: pd.DataFrame  # one row per cell: rows, cols, n, mean, std, ci_low, ci_high...
    rows: str
    cols: str
    metric: str
    scale: float = 100.0  # 100: accuracies shown in %
    digits: int = 2
    higher_is_better: bool = True
    caption: str = ""
    row_order: list = field(default_factory=list)
    col_order: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.row_order = self.row_order or list(dict.fromkeys(self.stats[self.rows]))
        self.col_order = self.col_order or list(dict.fromkeys(self.stats[self.cols]))
        self._cells = {(r[self.rows], r[self.cols]): r for r in self.stats.to_dict("records")}

    def cell(self, row: object, col: object) -> dict | None:
        return self._cells.get((row, col))

    def _means(self) -> pd.DataFrame:
        return pd.DataFrame([[self._mean(r, c) for c in self.col_order] for r in self.row_order],
                            index=self.row_order, columns=self.col_order, dtype=float)

    def _mean(self, row: object, col: object) -> float:
        cell = self.cell(row, col)
        return math.nan if cell is None or not cell["n"] else float(cell["mean"])

    def marks(self) -> dict[tuple, set[str]]:
        """{(row, col): {'row_best', 'col_best'}} for the cells to highlight."""
        means = self._means()
        if not self.higher_is_better:
            means = -means
        marks: dict[tuple, set[str]] = {}
        for row in means.index:
            if means.loc[row].notna().sum() > 1:
                marks.setdefault((row, means.loc[row].idxmax()), set()).add("row_best")
        for col in means.columns:
            if means[col].notna().sum() > 1:
                marks.setdefault((means[col].idxmax(), col), set()).add("col_best")
        return marks

    def text(self, row: object, col: object, plus_minus: str = "±") -> str:
        cell = self.cell(row, col)
        if cell is None or not cell["n"]:
            return "—"
        mean = f"{cell['mean'] * self.scale:.{self.digits}f}"
        spread = ("" if cell["n"] < 2 or pd.isna(cell["std"])
                  else f" {plus_minus} {cell['std'] * self.scale:.{self.digits}f}")
        return f"{mean}{spread} (n={cell['n']})"

    # -- renderers ---------------------------------------------------------------------
    def to_markdown(self) -> str:
        marks = self.marks()
        corner = f"{self.rows} \\ {self.cols}"
        lines = ["| " + " | ".join([corner, *map(str, self.col_order)]) + " |",
                 "|" + "---|" * (len(self.col_order) + 1)]
        for row in self.row_order:
            cells = []
            for col in self.col_order:
                text, mark = self.text(row, col), marks.get((row, col), set())
                if "col_best" in mark:
                    text = f"*{text}*"
                if "row_best" in mark:
                    text = f"**{text}**"
                cells.append(text)
            lines.append("| " + " | ".join([str(row), *cells]) + " |")
        return "\n".join(lines)

    def to_html(self) -> str:
        marks = self.marks()
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.col_order)
        rows = []
        for row in self.row_order:
            cells = []
            for col in self.col_order:
                text, mark = html.escape(self.text(row, col)), marks.get((row, col), set())
                if "col_best" in mark:
                    text = f"<em>{text}</em>"
                if "row_best" in mark:
                    text = f"<strong>{text}</strong>"
                cells.append(f"<td>{text}</td>")
            rows.append(f"<tr><th>{html.escape(str(row))}</th>{''.join(cells)}</tr>")
        corner = html.escape(f"{self.rows} \\ {self.cols}")
        return (f'<table class="data cells"><thead><tr><th>{corner}</th>{head}</tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table>")

    def to_latex(self) -> str:
        marks = self.marks()
        header = " & ".join([_latex_escape(f"{self.rows} / {self.cols}"),
                             *(_latex_escape(str(c)) for c in self.col_order)])
        body = []
        for row in self.row_order:
            cells = []
            for col in self.col_order:
                text, mark = self.text(row, col, plus_minus="$\\pm$"), marks.get((row, col), set())
                text = text.replace("—", "--")
                if "col_best" in mark:
                    text = f"\\textit{{{text}}}"
                if "row_best" in mark:
                    text = f"\\textbf{{{text}}}"
                cells.append(text)
            body.append(" & ".join([_latex_escape(str(row)), *cells]) + r" \\")
        caption = f"\\caption{{{_latex_escape(self.caption)}}}\n" if self.caption else ""
        return ("\\begin{table}[t]\n\\centering\n" + caption
                + f"\\begin{{tabular}}{{l{'r' * len(self.col_order)}}}\n\\toprule\n"
                + header + r" \\" + "\n\\midrule\n" + "\n".join(body)
                + "\n\\bottomrule\n\\end{tabular}\n\\end{table}\n")

    def to_csv(self) -> str:
        columns = [c for c in (self.rows, self.cols, "n", "mean", "std", "median", "iqm",
                               "ci_low", "ci_high", "worst", "diverged", "failed")
                   if c in self.stats]
        return self.stats[columns].to_csv(index=False)


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#",
                 "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return re.sub(r"[\\&%_#${}~^]", lambda m: LATEX_SPECIAL[m.group()], text)
