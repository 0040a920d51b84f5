"""The learning-rate range test."""

import math

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from actlab.spec import RunSpec
from actlab.train.lr_find import lr_range_test

SPEC = RunSpec.model_validate({
    "model": "lenet5", "init": "he_normal",
    "data": {"name": "synthetic", "options": {"train_size": 400, "test_size": 20}},
    "train": {"batch_size": 32}})


def test_lr_grows_geometrically_and_the_suggestion_lies_in_the_range() -> None:
    result = lr_range_test(SPEC, start_lr=1e-5, end_lr=1e-1, steps=30)
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) == 30
    assert result.lrs[0] == pytest.approx(1e-5)
    assert result.lrs[-1] == pytest.approx(1e-1)
    ratios = {round(b / a, 9) for a, b in zip(result.lrs, result.lrs[1:], strict=False)}
    assert len(ratios) == 1
    assert 1e-5 <= result.suggested_lr <= 1e-1
    low, high = result.suggested_range
    assert low <= high


def test_a_blow_up_stops_the_test_early() -> None:
    result = lr_range_test(SPEC, start_lr=1e-3, end_lr=1e4, steps=60)
    assert result.stopped_early
    assert len(result.lrs) < 60
    assert result.suggested_lr < 1e3
    assert all(math.isfinite(v) for v in result.smoothed[:-1])


def test_lr_find_command_writes_plot_and_values(tmp_path) -> None:
    out = tmp_path / "find.png"
    result = CliRunner().invoke(app, ["lr-find", "--dataset", "synthetic", "--steps", "20",
                                      "--start", "1e-4", "--end", "1", "--out", str(out),
                                      "--threads", "1"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "suggested range" in result.output
    assert out.exists()
    assert len(out.with_suffix(".csv").read_text().splitlines()) == 21
    bad = CliRunner().invoke(app, ["lr-find", "--dataset", "synthetic", "--start", "1",
                                   "--end", "0.1"])
    assert bad.exit_code == 2
    assert "start_lr < end_lr" in bad.output
