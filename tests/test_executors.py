"""Choosing an executor from the command line, pinning local workers to GPUs, and what a
user without Ray is told."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from actlab.cli.execute import Execution
from actlab.study.executors import gpu_assignment, visible_gpus
from actlab.study.ray_executor import RayResources


@pytest.mark.parametrize(("executor", "jobs", "expected"), [
    (None, None, ("serial", 1)),
    (None, 1, ("serial", 1)),
    (None, 3, ("local", 3)),
    ("local", 2, ("local", 2)),
    ("ray", None, ("ray", 1)),
])
def test_executor_defaults(executor, jobs, expected) -> None:
    execution = Execution.choose(executor, jobs)
    assert (execution.executor, execution.jobs) == expected


def test_local_without_jobs_uses_every_core_or_every_gpu_slot() -> None:
    execution = Execution.choose("local", None, runs_per_gpu=3)
    gpus = len(visible_gpus())
    assert execution.jobs == (gpus * 3 if gpus else os.cpu_count())


@pytest.mark.parametrize(("executor", "jobs", "options"), [
    ("serial", 2, {}),
    ("ray", 2, {}),
    ("local", 2, {"address": "auto"}),
])
def test_meaningless_combinations_are_refused(executor, jobs, options) -> None:
    with pytest.raises(typer.BadParameter):
        Execution.choose(executor, jobs, **options)


@pytest.mark.parametrize(("jobs", "gpus", "expected"), [
    (4, [], [None] * 4),
    (4, ["0", "1"], ["0", "1", "0", "1"]),  # --runs-per-gpu 2 on two GPUs
    (3, ["2", "5", "7"], ["2", "5", "7"]),  # a CUDA_VISIBLE_DEVICES set by the user
    (1, ["3"], ["3"]),
])
def test_local_workers_are_pinned_round_robin(jobs, gpus, expected) -> None:
    assert gpu_assignment(jobs, gpus) == expected


def test_ray_slots_and_gpu_requests() -> None:
    from actlab.spec import RunSpec

    spec = RunSpec.model_validate({"model": "lenet5", "data": {"name": "synthetic"}})
    cpu_spec = spec.model_copy(update={"train": spec.train.model_copy(update={"device": "cpu"})})
    packed = RayResources(cpus_per_run=2, runs_per_gpu=4)
    assert packed.gpus(spec, cluster_gpus=2) == 0.25
    assert packed.gpus(cpu_spec, cluster_gpus=2) == 0.0
    assert packed.gpus(spec, cluster_gpus=0) == 0.0
    # 16 CPUs / 2 per run = 8 slots; 1 GPU x 4 runs = 4 slots: the GPUs bound it.
    assert packed.slots({"CPU": 16, "GPU": 1}, use_gpus=True) == 4
    assert packed.slots({"CPU": 16, "GPU": 1}, use_gpus=False) == 8
    assert packed.slots({}, use_gpus=False) == 1  # never zero: Ray queues the task


def test_without_ray_the_ray_executor_says_how_to_install_it(tmp_path) -> None:
    from helpers import TINY_STUDY

    study = tmp_path / "t.yaml"
    study.write_text(TINY_STUDY.format(name="noray", epochs=1))
    # `sys.modules['ray'] = None` makes `import ray` fail as if it were not installed.
    code = ("import sys; sys.modules['ray'] = None; from actlab.cli import app; "
            f"app(['run', {str(study)!r}, '--store', {str(tmp_path / 'a.db')!r}, "
            "'--executor', 'ray'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2
    assert "pip install 'actlab[ray]'" in " ".join(result.stderr.split())
