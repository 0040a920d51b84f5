"""docs/results/: the committed reports of the CPU runs. Each names the command that
produced it, and every line of the README quoted from a report ("> " lines under a
study's heading) appears in that report word for word, so the text cannot drift from
the numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
STUDIES = ["quickstart", "af-tutorial-cpu", "he-init-depth-cpu", "af-fair-cpu",
           "mish-anchor-adaptive-cpu"]


def quotes() -> dict[str, list[str]]:
    """README lines starting with '> ', by the study heading ('## name') above them."""
    found: dict[str, list[str]] = {}
    study = None
    for line in (RESULTS / "README.md").read_text().splitlines():
        heading = re.match(r"^## (\S+)", line)
        if heading:
            study = heading.group(1)
        elif line.startswith("> ") and study is not None:
            found.setdefault(study, []).append(line[2:].strip())
    return found


@pytest.mark.parametrize("study", STUDIES)
def test_each_report_is_committed_with_its_figures(study: str) -> None:
    report = (RESULTS / study / "report.md").read_text()
    figures = re.findall(r"\]\((figures/[^)]+\.png)\)", report)
    assert figures
    for figure in figures:
        assert (RESULTS / study / figure).read_bytes()[:4] == b"\x89PNG", figure


@pytest.mark.parametrize("study", STUDIES)
def test_the_readme_names_the_command_and_quotes_the_report(study: str) -> None:
    readme = (RESULTS / "README.md").read_text()
    assert f"actlab report {study.removesuffix('-cpu')}" in readme or \
        f"actlab report {study}" in readme
    report = " ".join((RESULTS / study / "report.md").read_text().split())
    quoted = quotes().get(study, [])
    assert quoted, f"quote the numbers the text relies on for {study}"
    for line in quoted:
        assert " ".join(line.split()) in report, line
