"""Where a run executes: its device, precision and determinism, the record of the
environment that trained it, and its peak memory."""

from __future__ import annotations

import contextlib
import functools
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import actlab
from actlab.spec import RESULT_ENVIRONMENT


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is available; "
                           "use device: auto or cpu")
    return torch.device(name)


def configure_determinism(deterministic: bool, device: torch.device) -> None:
    """CPU kernels are deterministic; on CUDA, cuDNN autotuning picks kernels per run and
    some kernels use atomics, so exact repeats need ``train.deterministic`` (slower)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast: on for CUDA under ``auto``, or when asked."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast_for(device: torch.device, enabled: bool) -> Any:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the actlab source tree, when it is a git checkout (looked up once)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(actlab.__file__).parent,
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device) -> dict[str, Any]:
    """How a run was made: versions, commit, device, threads."""
    return {
        "actlab": actlab.__version__, "git_commit": git_commit(), "torch": torch.__version__,
        "python": platform.python_version(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "host": platform.node(),
    }


def environment_changes(before: dict[str, Any], now: dict[str, Any]) -> dict[str, list]:
    """``{key: [before, now]}`` for each of :data:`RESULT_ENVIRONMENT` that differs."""
    return {key: [before.get(key), now.get(key)] for key in RESULT_ENVIRONMENT
            if before.get(key) != now.get(key)}


PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory(device: torch.device) -> None:
    """Start a new window for :func:`peak_memory_mb`: CUDA's peak-allocation counter, or
    on Linux the process's peak resident set (writing 5 to /proc/self/clear_refs resets
    VmHWM, Linux 4.0+), so a worker that trains many runs reports each epoch's own peak."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    # Not Linux, or not allowed: the peak then counts from the process's start.
    with contextlib.suppress(OSError):
        PROC_CLEAR_REFS.write_text("5")


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory since the last :func:`reset_peak_memory`: CUDA's peak allocation, or
    the process's peak resident set on CPU (VmHWM; elsewhere ru_maxrss, the peak since
    the process started)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # KiB
    except OSError:
        pass
    # ru_maxrss is the process's peak resident set, in KiB on Linux and bytes on macOS.
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
