"""The report end to end: a small synthetic study with every axis the figures need (two
models, two AFs one of them learnable, two WIs, an lr axis, seeds, a divergent cell) is
run through the CLI, reported, and the page is loaded in headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from actlab.cli import app
from browser import chromium, load_page

# Whole reports take seconds to draw: the edit-test loop (make test-fast) writes one in
# tests/test_cli.py; these check every part of them.
pytestmark = pytest.mark.slow
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

ALL_AXES = """
name: allaxes
description: every axis the report's figures need, on synthetic data
data:
  name: synthetic
  options: {train_size: 240, test_size: 80, image_size: 28, channels: 1}
train:
  epochs: 2
  batch_size: 32
  optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
  grad_stats: true
grid:
  model: [lenet5, simple_cnn]
  act: [relu, tact]
  init: [he_normal, xavier_normal]
  lr: [0.01, 0.05]
include:
  - {model: lenet5, act: relu, init: he_normal, lr: 1000.0}   # diverges
seeds: 2
"""

FIGURES = {  # every figure type the issue names -> a file of it
    "accuracy and loss vs epoch": "lenet5-val_acc.png",
    "loss vs epoch": "lenet5-train_loss.png",
    "accuracy vs wall time": "lenet5-val_acc-time.png",
    "loss vs wall time": "lenet5-train_loss-time.png",
    "final-accuracy bars with CIs": "lenet5-bars.png",
    "AF x WI heatmap": "lenet5-heatmap.png",
    "lr sweep": "lenet5-lr-sweep.png",
    "time per epoch per AF": "lenet5-epoch-time.png",
    "average weight per layer": "lenet5-layers-weight_mean.png",
    "gradient norm per layer": "lenet5-layers-grad_norm.png",
    "learned AF parameter trajectories": "lenet5-params-tact.png",
    "learned AF final values per layer": "lenet5-params-final-tact.png",
    "confusion matrix of the best run": "lenet5-confusion.png",
    "critical-difference diagram": "critical-difference.png",
    "theory: f and f' of the study's AFs": "theory-functions.png",
    "theory: AF learned per site": "lenet5-theory-learned-tact.png",
    "theory: variance per layer at init, study's model": "lenet5-theory-model-variance.png",
    "theory: gradient norm per layer at init": "simple-cnn-theory-model-grad.png",
}


@pytest.fixture(scope="module")
def all_axes_report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    study = folder / "allaxes.yaml"
    study.write_text(ALL_AXES)
    db = folder / "actlab.db"
    threads = str(torch.get_num_threads())  # the worker's share of the cores (conftest)
    result = runner.invoke(app, ["run", str(study), "--store", str(db), "--threads", threads])
    assert result.exit_code == 0, result.output
    out = folder / "out"
    result = runner.invoke(app, ["report", "allaxes", "--store", str(db), "-o", str(out)],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("kind", sorted(FIGURES))
def test_every_figure_type_is_in_the_report(all_axes_report, kind: str) -> None:
    png = all_axes_report / "figures" / FIGURES[kind]
    assert png.read_bytes()[:4] == b"\x89PNG", kind
    svg = png.with_suffix(".svg").read_text()
    assert svg.lstrip().startswith("<?xml")
    assert "<svg" in svg
    assert f"figures/{png.name}" in (all_axes_report / "index.html").read_text()
    assert f"figures/{png.name}" in (all_axes_report / "report.md").read_text()


def test_tables_in_three_formats_with_the_best_marked(all_axes_report) -> None:
    tables = all_axes_report / "tables"
    markdown = (tables / "lenet5-test_acc.md").read_text()
    assert "(n=2)" in markdown
    assert "**" in markdown  # best per row
    latex = (tables / "lenet5-test_acc.tex").read_text()
    assert "\\toprule" in latex
    assert "\\bottomrule" in latex
    assert "\\textbf{" in latex
    assert "$\\pm$" in latex
    csv = (tables / "lenet5-test_acc.csv").read_text().splitlines()
    assert csv[0].startswith("act,init") or "ci_low" in csv[0]
    for name in ("baseline", "ranks", "pairwise", "lenet5-convergence",
                 "lenet5-cost", "lenet5-selection",
                 "lenet5-peak", "divergence"):
        for suffix in ("md", "tex", "csv"):
            assert (tables / f"{name}.{suffix}").stat().st_size > 0, f"{name}.{suffix}"


def test_the_report_says_what_is_significant_and_lists_divergence(all_axes_report) -> None:
    text = " ".join((all_axes_report / "report.md").read_text().split())
    assert "differences are significant" in text
    assert "Friedman χ²" in text
    assert "Nemenyi critical difference" in text
    assert "diverged in epoch" in text
    assert "lr 1000" in text or "/ 1000" in text  # the divergent cell is named
    assert "95% percentile-bootstrap confidence interval" in text


def test_the_theory_section_covers_the_studys_choices(all_axes_report) -> None:
    text = " ".join((all_axes_report / "report.md").read_text().split())
    assert "## Theory" in text
    tables = all_axes_report / "tables"
    catalog = (tables / "theory-catalog.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in catalog[1:]] == ["relu", "tact"]
    chi = {(row["act"], row["init"]): row for row in csv_rows(tables / "theory-chi1.csv")}
    assert set(chi) == {(a, i) for a in ("relu", "tact") for i in ("he_normal", "xavier_normal")}
    assert chi["relu", "he_normal"]["phase"] == "critical"  # σw = √2 at the matched gain
    for model in ("lenet5", "simple-cnn"):
        rows = csv_rows(tables / f"{model}-theory-model-propagation.csv")
        assert len(rows) == 4  # one per AF x WI of the task
        assert all(float(r["grad_spread"]) >= 1 for r in rows)


def test_learnable_sites_are_reported_in_network_order(all_axes_report) -> None:
    from actlab.models import build_model
    from actlab.models.base import activation_sites
    from actlab.study import Store

    with Store(all_axes_report.parent / "actlab.db") as store:
        params = store.study("allaxes").params()
    lenet = params[params["model"] == "lenet5"]
    expected = list(activation_sites(build_model("lenet5", "tact", 10, 1, 28)))
    assert list(dict.fromkeys(lenet["site"])) == expected
    assert expected[0].startswith("features")  # not alphabetical (classifier.* first)


def csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_report_renders_in_headless_chromium(all_axes_report, tmp_path) -> None:
    page = load_page(all_axes_report / "index.html")
    assert page.title == "Study report: allaxes"
    assert len(page.images) >= len(FIGURES)
    assert [i["src"] for i in page.images if not i["naturalWidth"]] == []
    assert page.errors == []
    shot = tmp_path / "report.png"
    shot.write_bytes(page.screenshot)
    assert shot.read_bytes()[:4] == b"\x89PNG"


def test_the_notebook_api_draws_any_figure(all_axes_report) -> None:
    import matplotlib.pyplot as plt

    from actlab.report import Report
    from actlab.study import Store

    with Store(all_axes_report.parent / "actlab.db") as store:
        report = Report(store, ["allaxes"])
        assert report.task == ["model"]
        assert report.cell == ["act", "init", "lr"]
        for kind, options in (("heatmap", {}), ("curves", {"x": "time"}), ("cd", {}),
                              ("parameters", {"act": "tact"}), ("lr_sweep", {})):
            figure = report.figure(kind, **options)
            assert isinstance(figure, plt.Figure)
            plt.close(figure)
        with pytest.raises(ValueError, match="unknown figure"):
            report.figure("pie")


@pytest.mark.parametrize(("args", "message"), [
    (["--metric", "test_accuracy"], "no metric 'test_accuracy'"),
    (["--baseline", "act"], "is not axis=value"),
    (["--test", "anova"], "unknown test 'anova'"),
    (["--baseline", "model=lenet5"], "the cell axes are act, init, lr"),
    (["--baseline", "act=gelu"], "no runs with act=gelu; the values are relu, tact"),
])
def test_bad_report_options(all_axes_report, tmp_path, args, message) -> None:
    db = all_axes_report.parent / "actlab.db"
    result = runner.invoke(app, ["report", "allaxes", "--store", str(db), "-o",
                                 str(tmp_path / "r"), *args], terminal_width=200)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_report_with_every_option(all_axes_report, tmp_path) -> None:
    """Welch's test, a chosen baseline and metric, no theory, PNG only, and every figure
    inside index.html: the page needs no other file."""
    db = all_axes_report.parent / "actlab.db"
    out = tmp_path / "welch"
    result = runner.invoke(app, ["report", "allaxes", "--store", str(db), "-o", str(out),
                                 "--test", "welch", "--metric", "best_test_acc",
                                 "--baseline", "act=tact,init=xavier_normal,lr=0.05",
                                 "--no-theory", "--no-svg", "--self-contained"])
    assert result.exit_code == 0, result.output
    text = " ".join((out / "report.md").read_text().split())
    assert "Welch's t-test" in text
    assert "baseline for comparisons: tact / xavier_normal / 0.05" in text
    assert "metric: **best_test_acc**" in text
    assert "## Theory" not in text  # --no-theory
    assert not list((out / "figures").glob("*.svg"))  # --no-svg
    if chromium() is None:
        pytest.skip("the self-contained page needs Debian's chromium (.ci/run installs it)")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "index.html", alone / "index.html")  # without figures/
    page = load_page(alone / "index.html")
    assert page.images
    assert all(i["naturalWidth"] > 0 for i in page.images)
    assert all(i["src"].startswith("data:image/png") for i in page.images)
