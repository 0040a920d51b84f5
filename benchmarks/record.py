"""Shared by the benchmark scripts: the machine line and appending a result to
BENCHMARKS.md (under "## Log", newest last), so every number keeps its machine, versions
and command."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import date
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine() -> str:
    """'x86_64, 2 cores, torch 2.13.0+cpu, Python 3.11.7' (+ the GPU where there is one)."""
    parts = [platform.machine(), f"{os.cpu_count()} cores", f"torch {torch.__version__}",
             f"Python {platform.python_version()}"]
    if torch.cuda.is_available():
        parts.insert(0, torch.cuda.get_device_name(0))
    return ", ".join(parts)


def command() -> str:
    """The command that ran this benchmark, as typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(BENCHMARKS.parent):
        script = script.relative_to(BENCHMARKS.parent)
    return " ".join(["python", str(script), *map(shlex.quote, sys.argv[1:])])


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def report(title: str, header: list[str], rows: list[list[object]], notes: str = "",
           append: bool = True) -> None:
    """Print the table; append it to BENCHMARKS.md's log with date, machine and command."""
    table = markdown_table(header, rows)
    print(f"{title}\n{machine()}\n\n{table}\n{notes}")
    if not append:
        return
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if "\n## Log\n" not in text:
        text = text.rstrip("\n") + "\n\n## Log\n\nEach benchmark script appends its " \
            "result here (newest last).\n"
    entry = (f"\n### {title} ({date.today()})\n\n{machine()}; `{command()}`\n\n{table}\n"
             + (f"\n{notes.strip()}\n" if notes.strip() else ""))
    BENCHMARKS.write_text(text.rstrip("\n") + "\n" + entry)
