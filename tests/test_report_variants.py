"""Report variants, each on its own small study: two studies in one report, runs from
different environments, runs that asked for torch.compile and trained eagerly, and the
quickstart study's report in headless Chromium. (The report with every axis its figures
need is tests/test_report.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from browser import chromium, load_page
from helpers import needs_fashion

pytestmark = pytest.mark.slow  # whole reports take seconds to draw
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_two_studies_in_one_report(tmp_path) -> None:
    from helpers import TINY_STUDY

    db = tmp_path / "actlab.db"
    for name in ("first", "second"):
        study = tmp_path / f"{name}.yaml"
        study.write_text(TINY_STUDY.format(name=name, epochs=1))
        assert runner.invoke(app, ["run", str(study), "--store", str(db)]).exit_code == 0
    out = tmp_path / "both"
    result = runner.invoke(app, ["report", "first", "second", "--store", str(db), "-o",
                                 str(out), "--no-theory", "--no-svg"])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert "# Study report: first + second" in text
    assert "## Results: first" in text
    assert "## Results: second" in text
    # One environment: one sentence, no list.
    assert "Every run's full spec and environment are in the store." in text
    assert "The runs were trained in" not in text


def test_runs_from_different_environments_are_told_apart(tmp_path) -> None:
    import torch

    from helpers import TINY_STUDY

    db, study = tmp_path / "actlab.db", tmp_path / "mixed.yaml"
    threads = torch.get_num_threads()
    try:  # half the study on one thread, then one more seed on two: 4 runs each
        study.write_text(TINY_STUDY.format(name="mixed", epochs=1).replace("seeds: 2",
                                                                          "seeds: 1"))
        assert runner.invoke(app, ["run", str(study), "--store", str(db),
                                   "--threads", "1"]).exit_code == 0
        study.write_text(TINY_STUDY.format(name="mixed", epochs=1))
        assert runner.invoke(app, ["run", str(study), "--store", str(db), "--replan",
                                   "--threads", "2"]).exit_code == 0
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", "mixed", "--store", str(db), "-o", str(out),
                                 "--no-theory", "--no-svg"])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert "The runs were trained in 2 environments" in text
    assert "1 thread: 4 runs" in text
    assert "2 threads: 4 runs" in text


def test_runs_that_trained_eagerly_despite_compile_are_counted(tmp_path, monkeypatch) -> None:
    import torch

    from actlab.train import reuse

    study = tmp_path / "compiled.yaml"
    study.write_text("name: compiled\nmodel: lenet5\ninit: he_normal\n"
                     "data: {name: synthetic, options: {train_size: 200, test_size: 50}}\n"
                     "train: {epochs: 1, batch_size: 32, compile: true,\n"
                     "        optimizer: {name: sgd, lr: 0.01}}\ngrid: {act: [relu, tanh]}\n")
    db = tmp_path / "actlab.db"
    # Dynamo's limit at 1 and actlab not raising it: the second activation runs eagerly.
    monkeypatch.setattr(reuse, "allow_recompiles", lambda model_class: None)
    try:
        with torch._dynamo.config.patch(recompile_limit=1):
            reuse.clear()
            torch._dynamo.reset()
            result = runner.invoke(app, ["run", str(study), "--store", str(db)])
    finally:
        reuse.clear()
        torch._dynamo.reset()
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert runner.invoke(app, ["report", "compiled", "--store", str(db), "-o",
                               str(out), "--no-theory", "--no-svg"]).exit_code == 0
    assert ("1 run asked for torch.compile but trained eagerly"
            in (out / "report.md").read_text())


@needs_fashion
@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_quickstart_report_renders_in_headless_chromium(tmp_path) -> None:
    """The quickstart study file, cut to two activations, one initializer and seed, one
    epoch on 100 images per class (the full study is `make quickstart`: minutes)."""
    import yaml

    document = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
    document["grid"] = {"act": document["grid"]["act"][:2], "init": document["grid"]["init"][:1]}
    document["seeds"] = 1
    document["data"]["train_per_class"] = 100
    document["train"]["epochs"] = 1
    study = tmp_path / "quickstart.yaml"
    study.write_text(yaml.safe_dump(document))
    db = tmp_path / "actlab.db"
    result = runner.invoke(app, ["run", str(study), "--store", str(db), "--report"])
    assert result.exit_code == 0, result.output
    index = tmp_path / "reports" / "quickstart" / "index.html"
    page = load_page(index)
    assert len(page.images) >= 10
    assert [i["src"] for i in page.images if not i["naturalWidth"]] == []
    assert page.errors == []
    (tmp_path / "quickstart.png").write_bytes(page.screenshot)
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
