"""Schedules are pure functions of the step; they match their formulas and torch's own
schedulers on the same settings."""

import math

import pytest
import torch

from actlab.schedules import SCHEDULES, build_schedule


def torch_lrs(make_scheduler, steps: int, base_lr: float) -> list[float]:
    """The lr torch's scheduler gives at each of ``steps`` optimizer steps."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(("mode", "gamma"), [("triangular", 1.0), ("triangular2", 1.0),
                                            ("exp_range", 0.995)])
def test_cyclical_matches_torch_cyclic_lr(mode: str, gamma: float) -> None:
    options = "max_lr=0.1, step_size=7" + (f", gamma={gamma}" if mode == "exp_range" else "")
    schedule = build_schedule(f"{mode}({options})")
    expected = torch_lrs(lambda opt: torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=0.01, max_lr=0.1, step_size_up=7, mode=mode, gamma=gamma,
        cycle_momentum=False), 60, 0.01)
    ours = [schedule(step, 60, 0.01, 10) for step in range(60)]
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("step", "expected"), [
    # Smith 2017's formula by hand, base 0.01, max 0.1, step size 5.
    (0, 0.01), (5, 0.1), (10, 0.01), (2, 0.01 + 0.09 * 0.4), (13, 0.01 + 0.09 * 0.6)])
def test_triangular_formula(step: int, expected: float) -> None:
    assert build_schedule("triangular(max_lr=0.1, step_size=5)")(step, 100, 0.01) == \
        pytest.approx(expected)


def test_triangular_defaults_to_two_epoch_half_cycles_and_4x_peak() -> None:
    schedule = build_schedule("triangular")
    assert schedule(20, 100, 0.01, steps_per_epoch=10) == pytest.approx(0.04)
    assert schedule(40, 100, 0.01, steps_per_epoch=10) == pytest.approx(0.01)


def test_one_cycle_matches_torch() -> None:
    expected = torch_lrs(lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.2, total_steps=50, pct_start=0.3, div_factor=25,
        final_div_factor=1e4, cycle_momentum=False), 50, 0.2)
    schedule = build_schedule("one_cycle")
    assert [schedule(s, 50, 0.2) for s in range(50)] == pytest.approx(expected, rel=1e-6)


def test_step_and_multistep_match_torch() -> None:
    per_epoch = 4
    step_expected = torch_lrs(lambda opt: torch.optim.lr_scheduler.StepLR(
        opt, step_size=3 * per_epoch, gamma=0.5), 40, 0.1)
    step = build_schedule("step(every=3, gamma=0.5)")
    assert [step(s, 40, 0.1, per_epoch) for s in range(40)] == pytest.approx(step_expected)
    multi_expected = torch_lrs(lambda opt: torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=[2 * per_epoch, 7 * per_epoch], gamma=0.1), 40, 0.1)
    multi = build_schedule("multistep(milestones=[2, 7])")
    assert [multi(s, 40, 0.1, per_epoch) for s in range(40)] == pytest.approx(multi_expected)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_schedule_is_positive_and_pure(name: str) -> None:
    schedule = build_schedule(name)
    first = [schedule(s, 200, 0.1, 10) for s in range(200)]
    assert first == [schedule(s, 200, 0.1, 10) for s in range(200)]
    assert all(lr > 0 and math.isfinite(lr) for lr in first)


@pytest.mark.parametrize(("text", "message"), [
    ("step(every=0)", "every > 0"), ("multistep(milestones=[5, 2])", "increasing"),
    ("one_cycle(pct_start=1.5)", "pct_start"), ("triangular(max_lr=-1)", "positive"),
    ("exp_range(gamma=2)", "gamma"),
])
def test_bad_schedule_options_fail_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_schedule(text)
