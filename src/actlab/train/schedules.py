"""Learning-rate schedules as pure functions of the optimizer step (as nanoGPT's get_lr).

A schedule is built from a study-file value (``cosine`` or ``cosine(warmup_steps=100)``)
and called as ``schedule(step, total_steps, base_lr) -> lr``; the engine sets the lr of
every parameter group before each step, so there is no scheduler state to save.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from actlab.components import ComponentSpec, resolve_component
from actlab.registry import Registry

SCHEDULES: Registry[type[Schedule]] = Registry("schedule")


class Schedule:
    """Base class: ``__call__(step, total_steps, base_lr)`` returns the lr of ``step``."""

    def __call__(self, step: int, total_steps: int, base_lr: float) -> float:
        raise NotImplementedError


def _warmup_factor(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


@SCHEDULES.register("fixed", aliases=("constant", "none"))
class Fixed(Schedule):
    """The base learning rate at every step."""

    def __call__(self, step: int, total_steps: int, base_lr: float) -> float:
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

    def __call__(self, step: int, total_steps: int, base_lr: float) -> float:
        if step < self.warmup_steps:
            return base_lr * _warmup_factor(step, self.warmup_steps)
        span = max(1, total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        final = self.final_fraction * base_lr
        return final + 0.5 * (base_lr - final) * (1.0 + math.cos(math.pi * progress))


def resolve_schedule(value: str | Mapping[str, Any] | ComponentSpec) -> ComponentSpec:
    return resolve_component(SCHEDULES, value)


def build_schedule(value: str | Mapping[str, Any] | ComponentSpec) -> Schedule:
    spec = resolve_schedule(value)
    return SCHEDULES.get(spec.name)(**spec.kwargs)
