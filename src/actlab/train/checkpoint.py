"""Per-run checkpoints for exact resume.

At the end of every epoch the engine writes the model, the optimizer, the step counter,
every random state (the data-order generator, torch's CPU and CUDA generators), the
curves so far and the environment that trained them (versions, device, threads: a run
resumed elsewhere records what changed), atomically (a temporary file renamed into
place). A run restarted from such a checkpoint continues exactly where it was: on CPU
it finishes with the same metrics as a run that was never interrupted
(tests/test_resume.py).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """Where a run keeps its resume point: the file, the epoch the store says it holds
    (0: none, start fresh), and whether the file stays when the run ends."""

    path: Path | None = None
    resume_epoch: int = 0
    keep: bool = False

    def load(self, run_id: str) -> dict[str, Any] | None:
        """The saved state to resume from, if the file holds ``resume_epoch`` of this run."""
        return load_checkpoint(self.path, run_id, self.resume_epoch) if self.path else None

    def write(self, state: dict[str, Any]) -> bool:
        """Save ``state``; where the disk refuses (full, size limit), warn and go on
        without checkpoints (the run itself is fine; only its resume point is lost)."""
        if self.path is None:
            return False
        try:
            save_checkpoint(self.path, state)
        except (OSError, RuntimeError) as exc:
            log.warning("could not write the checkpoint %s (%s); this run continues without "
                        "checkpoints and would restart from scratch if interrupted",
                        self.path, exc)
            self.path = None
            return False
        return True

    def discard(self) -> None:
        """The run has ended: remove the file unless it is to be kept."""
        if self.path is not None and not self.keep:
            self.path.unlink(missing_ok=True)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a reader sees the old file or the new one."""
    _write_atomically(path, lambda out: torch.save({"format": FORMAT_VERSION, **state}, out))


def save_checkpoint_bytes(path: Path, data: bytes) -> None:
    """Write a checkpoint received as bytes (from a Ray worker) atomically to ``path``."""
    _write_atomically(path, lambda out: out.write(data))


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


def load_checkpoint(path: Path, run_id: str, epoch: int) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it belongs to ``run_id`` and to ``epoch`` (the epoch
    the store recorded), else None (the run starts over)."""
    if epoch <= 0 or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError):
        return None  # unreadable: start over rather than trust it
    if (state.get("format") != FORMAT_VERSION or state.get("run_id") != run_id
            or state.get("epoch") != epoch):
        return None
    return state


def rng_states(generator: torch.Generator) -> dict[str, Any]:
    states: dict[str, Any] = {"data": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(generator: torch.Generator, states: dict[str, Any]) -> None:
    generator.set_state(states["data"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
