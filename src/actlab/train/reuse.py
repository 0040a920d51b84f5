"""Compiled models kept per process and reset per run.

``torch.compile`` costs seconds to minutes per model (benchmarks/compile_reuse.py), and a
grid repeats the same architecture with the same activation across seeds, initializers
and learning rates. A worker therefore compiles each (architecture, options, activation,
input shape, device, memory format) once and, for every later run of it, copies the
run's freshly built and initialized weights into the compiled module. The run sees
exactly what a fresh build would give: the new model is still built under the run's
seed (so the global random stream advances as before) and initialized; only its tensors
are copied, in place, so the compiled graph stays valid (its guards see the same
parameter objects).

Dynamo keeps the graphs of every module of one class under that class's ``forward``
and, past ``torch._dynamo.config.recompile_limit`` (8) of them in one process, runs the
module eagerly with only a log line: a worker that compiles a ninth activation of
LeNet-5 would train it uncompiled and report its epochs as compiled ones. The limit is
therefore raised with each architecture a worker compiles, and :func:`graph_count` lets
the engine check that a fresh compile did produce a graph.

Compiling happens before epoch 1 (:func:`compile_warmup`), so that its seconds are
reported on their own (``compile_s``) instead of inflating the first epoch's time.

Data needs no such cache: datasets are loaded once per process (``actlab.data``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from actlab.data import DeviceData
from actlab.spec import RunSpec
from actlab.train.environment import autocast_for

log = logging.getLogger(__name__)

#: Compiled models kept per process (least recently used dropped first).
CAPACITY = 4

Forward = Callable[[torch.Tensor], torch.Tensor]

_compiled: OrderedDict[str, tuple[nn.Module, Forward]] = OrderedDict()
#: Architectures compiled per model class in this process (evicted ones included: dynamo
#: keeps their graphs, and a re-compile after eviction adds another).
_compiles_per_class: Counter[type] = Counter()
#: Graphs one architecture may add under its class's ``forward`` (the full and the last
#: batch size, a dynamic-shape re-trace, a graph break's second frame), as headroom.
GRAPHS_PER_ARCHITECTURE = 4


def allow_recompiles(model_class: type) -> None:
    """Raise dynamo's per-code and total recompile limits so that one more architecture
    of ``model_class`` compiles instead of silently running eagerly."""
    _compiles_per_class[model_class] += 1
    config = torch._dynamo.config
    per_code = GRAPHS_PER_ARCHITECTURE * _compiles_per_class[model_class]
    total = GRAPHS_PER_ARCHITECTURE * sum(_compiles_per_class.values())
    if config.recompile_limit < per_code:
        log.debug("raising torch._dynamo.config.recompile_limit to %d", per_code)
        config.recompile_limit = per_code
    if config.accumulated_recompile_limit < total:
        config.accumulated_recompile_limit = total


def graph_count() -> int:
    """Graphs dynamo has compiled in this process (its own counter)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def architecture_key(spec: RunSpec, input_shape: tuple[int, ...], num_classes: int,
                     device: torch.device, memory_format: torch.memory_format) -> str:
    """What a compiled graph depends on: not the seed, initializer, gain, optimizer or
    data beyond its shape."""
    return json.dumps({
        "model": spec.model, "options": spec.model_options,
        "act": str(spec.act),
        "input_shape": list(input_shape), "num_classes": num_classes,
        "device": str(device), "memory_format": str(memory_format),
    }, sort_keys=True, default=str)


def reset_into(target: nn.Module, fresh: nn.Module) -> bool:
    """Copy every parameter and buffer of ``fresh`` into ``target`` in place; False (and
    ``target`` untouched) when the two do not have the same tensors (names, shapes,
    dtypes), e.g. an initializer that changed the module structure."""
    source = dict(fresh.state_dict(keep_vars=True))
    own = dict(target.state_dict(keep_vars=True))
    if source.keys() != own.keys() or any(
            own[k].shape != source[k].shape or own[k].dtype != source[k].dtype for k in own):
        return False
    with torch.no_grad():
        for name, tensor in own.items():
            tensor.copy_(source[name])
    for name, value in vars(fresh).items():
        if not name.startswith("_") and name != "training":
            setattr(target, name, value)  # e.g. init_report, activation_site_count
    target.zero_grad(set_to_none=True)
    return True


def compiled_model(key: str, fresh: nn.Module) -> tuple[nn.Module, Forward, bool]:
    """(model, compiled forward, reused): ``fresh`` compiled, or the compiled model of an
    earlier run with the same ``key`` holding ``fresh``'s weights."""
    cached = _compiled.get(key)
    if cached is not None and reset_into(cached[0], fresh):
        _compiled.move_to_end(key)
        log.debug("reusing the compiled model for %s", key)
        return cached[0], cached[1], True
    allow_recompiles(type(fresh))
    forward = torch.compile(fresh)
    _compiled[key] = (fresh, forward)
    _compiled.move_to_end(key)
    while len(_compiled) > CAPACITY:
        _compiled.popitem(last=False)
    return fresh, forward, False


def clear() -> None:
    """Forget every compiled model of this process."""
    _compiled.clear()
    _compiles_per_class.clear()


def compiled_forward(spec: RunSpec, model: nn.Module, data: DeviceData, bf16: bool
                     ) -> tuple[nn.Module, Forward, dict[str, Any]]:
    """(model, compiled forward, what to record): ``model`` compiled, or the compiled model
    of an earlier run of the same architecture holding ``model``'s weights, warmed up
    before epoch 1. ``compile_fell_back`` is recorded when a fresh compile produced no
    graph (dynamo gave up and the run trains eagerly)."""
    key = architecture_key(spec, tuple(data.splits.train.images.shape[1:]),
                           data.splits.num_classes, data.device, data.memory_format)
    model, forward, reused = compiled_model(key, model)  # keeps actlab_bf16
    graphs_before = graph_count()
    info: dict[str, Any] = {
        "compile_s": compile_warmup(forward, model, data, bf16, spec.train.batch_size),
        "compile_reused": reused}  # True: an earlier run's graph, warm
    if not reused and graph_count() == graphs_before:
        log.warning("%s: torch.compile produced no graph (see torch's log above); the run "
                    "trains eagerly and is recorded as compile_fell_back", spec.describe())
        info["compile_fell_back"] = True
    return model, forward, info


def compile_warmup(forward: Forward, model: nn.Module, data: DeviceData, bf16: bool,
                   batch_size: int) -> float:
    """Compile ``forward`` (a ``torch.compile`` wrapper of ``model``) for training with
    one forward + backward pass on a training batch of the run's size and one of the
    epoch's last batch size (each size compiles a graph), and return the seconds it took.

    The pass leaves no trace: BatchNorm running statistics are restored and the gradients
    dropped (no optimizer step is taken); it draws dropout masks from the global random
    stream, as any compiled run's first step would."""
    saved = {name: buffer.clone() for name, buffer in model.named_buffers()}
    # An epoch's last, shorter batch would otherwise compile a second graph inside epoch 1.
    sizes = [min(batch_size, len(data.train))]
    if len(data.train) % batch_size >= 2 and len(data.train) > batch_size:
        sizes.append(len(data.train) % batch_size)
    start = time.perf_counter()
    model.train()
    for size in sizes:
        x = data.normalize(data.train.images[:size])
        with autocast_for(data.device, bf16):
            logits = forward(x)
        logits.float().logsumexp(1).mean().backward()
    if data.device.type == "cuda":
        torch.cuda.synchronize(data.device)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            buffer.copy_(saved[name])
    model.zero_grad(set_to_none=True)
    return seconds
