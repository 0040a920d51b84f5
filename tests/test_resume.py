"""Exact resume: a run interrupted after an epoch and resumed from its checkpoint ends
with the same metrics as a run that was never interrupted (CPU)."""

import logging

import pytest
import torch

from actlab.spec import RunSpec
from actlab.train.checkpoint import Checkpoint
from actlab.train.engine import run_one
from helpers import Callbacks

SYNTHETIC = {"name": "synthetic", "options": {"train_size": 400, "test_size": 100},
             "augment": {"crop_padding": 2, "flip": True}}


def spec(**train) -> RunSpec:
    # Dropout (simple_cnn) and augmentation make the test sensitive to every RNG stream.
    return RunSpec.model_validate({
        "model": "simple_cnn", "model_options": {"dropout": 0.3, "width": 8}, "act": "tact",
        "init": "he_normal", "seed": 3, "data": SYNTHETIC,
        "train": {"epochs": 3, "batch_size": 32, "schedule": "one_cycle",
                  "optimizer": {"name": "adam", "lr": 0.003}, **train}})


def comparable(result) -> tuple:
    epochs = [(e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.lr)
              for e in result.epochs]
    final = {k: v for k, v in result.final.items()
             if k != "peak_memory_mb" and not k.startswith("seconds_to_")}
    return epochs, final


class SimulatedKillError(Exception):
    pass


def test_resume_after_an_interruption_equals_the_uninterrupted_run(tmp_path) -> None:
    reference = run_one(spec())
    checkpoint = tmp_path / "ckpt.pt"
    saved: list[int] = []

    def stop_in_epoch_two(metrics) -> None:
        if metrics.epoch == 2:
            raise SimulatedKillError  # as if killed before epoch 2's checkpoint was written

    with pytest.raises(SimulatedKillError):
        run_one(spec(), Callbacks(epoch=stop_in_epoch_two, checkpoint=saved.append),
                checkpoint=Checkpoint(checkpoint))
    assert saved == [1]
    assert checkpoint.exists()
    resumed = run_one(spec(), checkpoint=Checkpoint(checkpoint, resume_epoch=1))
    assert resumed.info["resumed_from_epoch"] == 1
    assert comparable(resumed) == comparable(reference)
    assert not checkpoint.exists()  # removed when the run completes


def test_a_checkpoint_of_another_epoch_or_run_is_not_used(tmp_path) -> None:
    checkpoint = tmp_path / "ckpt.pt"
    run_one(spec(epochs=2), checkpoint=Checkpoint(checkpoint, keep=True))
    assert checkpoint.exists()  # kept on request (epoch 1 of a 2-epoch run)
    # The store says epoch 2 (a mismatch) or the file belongs to another run: start over.
    assert "resumed_from_epoch" not in run_one(
        spec(epochs=2), checkpoint=Checkpoint(checkpoint, resume_epoch=2)).info
    other = run_one(spec(epochs=3), checkpoint=Checkpoint(checkpoint, resume_epoch=1))
    assert "resumed_from_epoch" not in other.info



def test_a_resume_in_another_environment_is_recorded_and_warned(tmp_path, caplog) -> None:
    threads = torch.get_num_threads()
    checkpoint = tmp_path / "ckpt.pt"
    try:
        torch.set_num_threads(1)
        with pytest.raises(SimulatedKillError):
            run_one(spec(), Callbacks(epoch=stop_in(2)), checkpoint=Checkpoint(checkpoint))
        copy = tmp_path / "copy.pt"
        checkpoint_bytes = checkpoint.read_bytes()
        copy.write_bytes(checkpoint_bytes)
        # Same environment: nothing to report.
        same = run_one(spec(), checkpoint=Checkpoint(checkpoint, resume_epoch=1))
        assert same.info["resumed_from_epoch"] == 1
        assert "resumed_env_changes" not in same.info
        torch.set_num_threads(2)  # reduction order changes: not bit-identical any more
        with caplog.at_level(logging.WARNING, logger="actlab"):
            moved = run_one(spec(), checkpoint=Checkpoint(copy, resume_epoch=1))
        assert "resumes after epoch 1 in another environment (threads 1 -> 2)" in caplog.text
        # Moved, killed in epoch 3 and moved back: both changes stay on record.
        copy.write_bytes(checkpoint_bytes)
        with pytest.raises(SimulatedKillError):
            run_one(spec(), Callbacks(epoch=stop_in(3)),
                    checkpoint=Checkpoint(copy, resume_epoch=1))
        torch.set_num_threads(1)
        back = run_one(spec(), checkpoint=Checkpoint(copy, resume_epoch=2))
    finally:
        torch.set_num_threads(threads)
    assert moved.info["resumed_env_changes"] == [{"after_epoch": 1,
                                                  "changes": {"threads": [1, 2]}}]
    assert moved.info["env"]["threads"] == 2
    assert back.info["resumed_env_changes"] == [
        {"after_epoch": 1, "changes": {"threads": [1, 2]}},
        {"after_epoch": 2, "changes": {"threads": [2, 1]}}]


def stop_in(epoch: int):
    def stop(metrics) -> None:
        if metrics.epoch == epoch:
            raise SimulatedKillError
    return stop


