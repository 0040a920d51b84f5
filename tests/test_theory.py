"""Theory without training: mean-field values from Poole et al. 2016 and the empirical
signal propagation at initialization that they predict (docs/theory.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actlab.activations.gains import second_moment
from actlab.theory import chi1, critical_sw, fixed_point, phase_diagram, variance_map
from actlab.theory.propagation import escape_depth, signal_propagation


def test_known_moments_and_maps() -> None:
    assert second_moment("relu") == pytest.approx(0.5, abs=1e-6)
    assert variance_map("relu", 1.0, sw=math.sqrt(2)) == pytest.approx(1.0, abs=1e-6)
    assert fixed_point("relu", math.sqrt(2)) == pytest.approx(1.0, abs=1e-6)
    assert fixed_point("relu", 2.0) == math.inf  # above the gain: no finite fixed point


def test_critical_weight_std_at_zero_bias() -> None:
    assert critical_sw("relu") == pytest.approx(math.sqrt(2), abs=1e-8)  # sw² = 2
    # tanh at sb = 0: q* = 0 below sw = 1 (chi1 = sw² f'(0)² = sw²), so the edge is 1
    assert critical_sw("tanh") == pytest.approx(1.0, abs=1e-6)


def test_relu_phase_diagram_q_star_is_the_closed_form() -> None:
    """With a bias, relu's q* = sb² / (1 - sw² / 2) below the boundary sw = sqrt 2 and is
    unbounded above it: at each row's critical sw, q_star is that value (inf above)."""
    rows = phase_diagram("relu", [0.05, 0.1, 0.3])
    assert rows["critical_sw"].to_numpy() == pytest.approx(math.sqrt(2), abs=1e-8)
    for row in rows.itertuples():
        closed = row.sb ** 2 / (1 - row.critical_sw ** 2 / 2) if row.critical_sw ** 2 < 2 \
            else math.inf
        expected = closed if closed < 1e8 else math.inf  # meanfield.Q_CAP
        assert row.q_star == pytest.approx(expected, rel=1e-5)


def test_tanh_phases() -> None:
    assert chi1("tanh", 0.8) == pytest.approx(0.64, abs=1e-3)  # ordered: q* = 0, f'(0) = 1
    assert chi1("tanh", 1.5) > 1.0  # chaotic
    boundary = phase_diagram("tanh", [0.0, 0.1, 0.3])
    assert boundary["critical_sw"].is_monotonic_increasing  # more bias needs more weight
    assert boundary["q_star"].iloc[0] < 0.01 < boundary["q_star"].iloc[2]


def test_n01_init_grows_by_fan_in_times_second_moment() -> None:
    width = 256
    frame = signal_propagation("relu", "normal", depth=6, width=width, batch=128)
    ratios = frame["pre_variance"].to_numpy()[1:] / frame["pre_variance"].to_numpy()[:-1]
    assert np.median(ratios) == pytest.approx(width * 0.5, rel=0.15)
    assert escape_depth(frame["pre_variance"]) == 2


def test_he_holds_and_xavier_halves_with_relu() -> None:
    he = signal_propagation("relu", "he_normal", depth=50, width=512, batch=128)
    variance = he["pre_variance"]
    assert variance.max() / variance.min() < 4  # within a factor of 4 over 50 layers
    assert escape_depth(variance) is None
    glorot = signal_propagation("relu", "xavier_normal(gain=1.0)", depth=50, width=512,
                                batch=128)
    values = glorot["pre_variance"].to_numpy()
    assert np.median(values[1:20] / values[:19]) == pytest.approx(0.5, abs=0.05)
    assert escape_depth(glorot["pre_variance"]) is not None  # it vanishes
    assert glorot["grad_norm"].iloc[0] < he["grad_norm"].iloc[0]


def test_conv_networks_propagate_too() -> None:
    frame = signal_propagation("tanh", "xavier_normal", depth=10, width=16, kind="conv",
                               batch=8)
    assert len(frame) == 10
    assert frame["pre_variance"].between(1e-3, 1e3).all()
    assert (frame["grad_norm"] > 0).all()


def test_catalog_rows_hold_known_values() -> None:
    from actlab.theory import catalog

    rows = catalog(["relu", "tanh", "sigmoid", "tact"], measure_cost=False).set_index("act")
    relu = rows.loc["relu"]
    assert (relu["f(0)"], relu["E[f^2]"], relu["E[f'^2]"]) == pytest.approx((0.0, 0.5, 0.5))
    assert relu["matched_gain"] == pytest.approx(math.sqrt(2))
    assert relu["torch_gain"] == pytest.approx(math.sqrt(2))
    assert not relu["bounded"]
    tanh = rows.loc["tanh"]
    assert tanh["f'(0)"] == pytest.approx(1.0)
    assert tanh["zero_centred"]
    assert tanh["E[f]"] == pytest.approx(0.0, abs=1e-12)
    assert rows.loc["sigmoid", "f(0)"] == pytest.approx(0.5)
    assert rows.loc["sigmoid", "f'(0)"] == pytest.approx(0.25)
    assert rows.loc["tact", "learnable"] == "alpha, beta"
    assert math.isnan(rows.loc["tact", "torch_gain"])  # PyTorch has no gain for it


def test_relative_cost_is_measured_against_relu() -> None:
    from actlab.theory import relative_cost

    costs = relative_cost(["relu", "mish"], size=(8, 4, 8, 8), repeats=5)
    assert list(costs.index) == ["relu", "mish"]
    assert (costs > 0).all()
    assert np.isfinite(costs).all()


def test_relative_cost_is_measured_once_per_machine(tmp_path, monkeypatch) -> None:
    import importlib
    import json

    module = importlib.import_module("actlab.theory.catalog")

    monkeypatch.setenv("ACTLAB_CACHE", str(tmp_path))
    measured: list[list[str]] = []
    real = module.relative_cost
    monkeypatch.setattr(module, "relative_cost", lambda acts: measured.append(list(acts))
                        or real(acts, size=(8, 4, 8, 8), repeats=3))
    first = module.cached_relative_cost(["relu", "mish"])
    again = module.cached_relative_cost(["mish", "tanh"])  # only tanh is new
    assert measured == [["relu", "mish"], ["tanh"]]
    assert again["mish"] == first["mish"]
    assert first["relu"] == 1.0
    stored = json.loads((tmp_path / "af-cost.json").read_text())
    assert set(next(iter(stored.values()))) == {"relu", "mish", "tanh"}
