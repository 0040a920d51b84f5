"""Learning-rate schedules as pure functions of the optimizer step (as nanoGPT's get_lr).

A schedule is built from a study-file value (``cosine`` or ``cosine(warmup_steps=100)``)
and called as ``schedule(step, total_steps, base_lr, steps_per_epoch) -> lr``; the engine
sets the lr of every parameter group before each step, so there is no scheduler state to
save (a resumed run only needs its step count). Options given in epochs are converted
with ``steps_per_epoch``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from actlab.components import Component, ComponentSpec, resolve_component
from actlab.registry import Registry

SCHEDULES: Registry[type[Schedule]] = Registry("schedule")


class Schedule:
    """Base class: ``__call__(step, total_steps, base_lr, steps_per_epoch)`` returns the
    lr of optimizer step ``step`` (counted from 0)."""

    def __call__(self, step: int, total_steps: int, base_lr: float,
                 steps_per_epoch: int = 1) -> float:
        raise NotImplementedError


def _warmup_factor(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


@SCHEDULES.register("fixed", aliases=("constant", "none"))
class Fixed(Schedule):
    """The base learning rate at every step."""

    def __call__(self, step: int, total_steps: int, base_lr: float,
                 steps_per_epoch: int = 1) -> float:
        return base_lr


@SCHEDULES.register("cosine")
class Cosine(Schedule):
    """Cosine annealing to ``final_fraction * base_lr`` (Loshchilov & Hutter 2017), with an
    optional linear warmup over the first ``warmup_steps`` steps."""

    def __init__(self, final_fraction: float = 0.0, warmup_steps: int = 0) -> None:
        if not 0.0 <= final_fraction <= 1.0:
            raise ValueError(f"cosine final_fraction must be in [0, 1], got {final_fraction}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.final_fraction = final_fraction
        self.warmup_steps = warmup_steps

    def __call__(self, step: int, total_steps: int, base_lr: float,
                 steps_per_epoch: int = 1) -> float:
        if step < self.warmup_steps:
            return base_lr * _warmup_factor(step, self.warmup_steps)
        span = max(1, total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        final = self.final_fraction * base_lr
        return final + 0.5 * (base_lr - final) * (1.0 + math.cos(math.pi * progress))


@SCHEDULES.register("step")
class Step(Schedule):
    """Multiply the lr by ``gamma`` every ``every`` epochs (StepLR)."""

    def __init__(self, every: float = 30, gamma: float = 0.1) -> None:
        if every <= 0 or not 0 < gamma <= 1:
            raise ValueError("step needs every > 0 (epochs) and 0 < gamma <= 1")
        self.every = every
        self.gamma = gamma

    def __call__(self, step: int, total_steps: int, base_lr: float,
                 steps_per_epoch: int = 1) -> float:
        epoch = step // steps_per_epoch
        return base_lr * self.gamma ** int(epoch // self.every)


@SCHEDULES.register("multistep")
class MultiStep(Schedule):
    """Multiply the lr by ``gamma`` at each epoch in ``milestones`` (MultiStepLR)."""

    def __init__(self, milestones: tuple[int, ...] | list[int] = (30, 60, 90),
                 gamma: float = 0.1) -> None:
        milestones = tuple(int(m) for m in milestones)
        if list(milestones) != sorted(milestones) or any(m <= 0 for m in milestones):
            raise ValueError(f"multistep milestones must be increasing positive epochs, "
                             f"got {list(milestones)}")
        if not 0 < gamma <= 1:
            raise ValueError(f"multistep gamma must be in (0, 1], got {gamma}")
        self.milestones = milestones
        self.gamma = gamma

    def __call__(self, step: int, total_steps: int, base_lr: float,
                 steps_per_epoch: int = 1) -> float:
        epoch = step // steps_per_epoch
        return base_lr * self.gamma ** sum(epoch >= m for m in self.milestones)


@SCHEDULES.register("one_cycle", aliases=("onecycle",))
class OneCycle(Schedule):
    """One-cycle (Smith & Topin 2019, as torch's OneCycleLR with cosine annealing): from
    base/div_factor up to the base lr over ``pct_start`` of training, then down to
    base/(div_factor*final_div_factor). The study's lr is the peak."""

    def __init__(self, pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4) -> None:
        if not 0 < pct_start < 1 or div_factor <= 0 or final_div_factor <= 0:
            raise ValueError("one_cycle needs 0 < pct_start < 1 and positive div factors")
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor

    def __call__(self, step: int, total_steps: int, base_lr: float,
                 steps_per_epoch: int = 1) -> float:
        initial = base_lr / self.div_factor
        final = initial / self.final_div_factor
        # Phase ends as in torch: float(pct_start * total) - 1 and total - 1.
        up_end = float(self.pct_start * total_steps) - 1
        if step <= up_end:
            return _cosine_between(initial, base_lr, step / up_end if up_end > 0 else 1.0)
        down = (step - up_end) / max(1e-12, (total_steps - 1) - up_end)
        return _cosine_between(base_lr, final, min(1.0, down))


def _cosine_between(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


class Cyclical(Schedule):
    """Cyclical learning rate (Smith 2017, "Cyclical learning rates for training neural
    networks"), per iteration::

        cycle = floor(1 + it / (2 step)); x = |it / step - 2 cycle + 1|
        lr = base + (max - base) * max(0, 1 - x) * scale

    ``max_lr`` defaults to 4 x the base lr; ``step_size`` (iterations per half cycle)
    defaults to 2 epochs (Smith suggests 2-10 epochs).
    """

    def __init__(self, max_lr: float | None = None, step_size: int | None = None,
                 gamma: float = 1.0) -> None:
        if max_lr is not None and max_lr <= 0:
            raise ValueError(f"max_lr must be positive, got {max_lr}")
        if step_size is not None and step_size < 1:
            raise ValueError(f"step_size must be >= 1 iteration, got {step_size}")
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.max_lr = max_lr
        self.step_size = step_size
        self.gamma = gamma

    def scale(self, cycle: int, iteration: int) -> float:
        raise NotImplementedError

    def __call__(self, step: int, total_steps: int, base_lr: float,
                 steps_per_epoch: int = 1) -> float:
        half = self.step_size or 2 * steps_per_epoch
        peak = self.max_lr if self.max_lr is not None else 4.0 * base_lr
        cycle = math.floor(1 + step / (2 * half))
        x = abs(step / half - 2 * cycle + 1)
        return base_lr + (peak - base_lr) * max(0.0, 1.0 - x) * self.scale(cycle, step)


@SCHEDULES.register("triangular", aliases=("cyclic", "clr"))
class Triangular(Cyclical):
    """Triangular cycles between the base lr and ``max_lr`` (scale 1)."""

    def __init__(self, max_lr: float | None = None, step_size: int | None = None) -> None:
        super().__init__(max_lr, step_size)

    def scale(self, cycle: int, iteration: int) -> float:
        return 1.0


@SCHEDULES.register("triangular2")
class Triangular2(Cyclical):
    """Triangular cycles whose amplitude halves every cycle (scale 1 / 2^(cycle - 1))."""

    def __init__(self, max_lr: float | None = None, step_size: int | None = None) -> None:
        super().__init__(max_lr, step_size)

    def scale(self, cycle: int, iteration: int) -> float:
        return 1.0 / 2.0 ** (cycle - 1)


@SCHEDULES.register("exp_range")
class ExpRange(Cyclical):
    """Triangular cycles with amplitude gamma^iteration."""

    def __init__(self, max_lr: float | None = None, step_size: int | None = None,
                 gamma: float = 0.99994) -> None:
        super().__init__(max_lr, step_size, gamma)

    def scale(self, cycle: int, iteration: int) -> float:
        return self.gamma ** iteration


def resolve_schedule(value: str | Mapping[str, Any] | Component | ComponentSpec
                     ) -> ComponentSpec:
    return resolve_component(SCHEDULES, value)


def build_schedule(value: str | Mapping[str, Any] | Component | ComponentSpec) -> Schedule:
    spec = resolve_schedule(value)
    return SCHEDULES.get(spec.name)(**spec.kwargs)
