"""`actlab theory` end to end on a small set, and its page in headless Chromium."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from browser import chromium, load_page

runner = CliRunner()


@pytest.mark.slow
def test_theory_report(tmp_path) -> None:
    out = tmp_path / "theory"
    result = runner.invoke(app, ["theory", "--acts", "relu,leaky_relu(slope=0.3),tanh",
                                 "--inits", "he_normal,normal", "--depth", "12", "--width",
                                 "64", "-o", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("functions", "pre-variance", "grad-norm", "phase-diagram"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "figures" / f"{name}.svg").exists()
    escape = (out / "tables" / "escape-depth.csv").read_text().splitlines()
    assert escape[0] == "act,he_normal,normal"
    assert escape[1] == "relu,holds,2"  # He holds; N(0,1) leaves the band at layer 2
    catalog = (out / "tables" / "catalog.csv").read_text()
    assert "leaky_relu(slope=0.3)" in catalog
    text = (out / "report.md").read_text()
    assert "## Mean-field phase diagram" in text
    phases = (out / "tables" / "chi1.csv").read_text()
    assert "he_normal,relu," in phases
    assert phases.count("\n") == 1 + 3 * 2  # header + AF x WI
    if chromium() is not None:
        page = load_page(out / "index.html")
        assert page.images
        assert all(i["naturalWidth"] > 0 for i in page.images)
        assert page.errors == []


@pytest.mark.parametrize(("args", "message"), [
    (["--acts", "relu,nope"], "unknown activation 'nope'"),
    (["--inits", "kaiming_magic"], "unknown initializer"),
    (["--kind", "rnn"], "is not fc or conv"),
])
def test_theory_bad_input(tmp_path, args, message) -> None:
    result = runner.invoke(app, ["theory", "-o", str(tmp_path / "t"), *args],
                           terminal_width=200)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "t").exists()
