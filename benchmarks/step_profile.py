"""Where one training step of a model goes: torch.profiler's operators, by input shape.

    python benchmarks/step_profile.py [--model lenet5] [--act relu] [--batch 128]
                                      [--steps 30] [--rows 12] [--format channels_last]

One step is what actlab's engine does per batch: forward, cross-entropy, backward and an
SGD step (momentum 0.9), He init, on a random batch at the model's usual input size,
after 10 warm-up steps. Each row is one operator at one input shape, with its time per
step (self time: its children excluded) and, for forward convolutions, the arithmetic rate, so
memory-bound operators (a low rate, or a time out of proportion to the elements) stand
out from compute-bound ones.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.profiler import profile

from actlab.inits import apply_init
from actlab.models import build_model
from af_cost import SHAPES
from record import report


def conv_output_sizes(model: torch.nn.Module, x: torch.Tensor) -> dict[tuple, int]:
    """(input shape, weight shape) -> output elements of each convolution in a forward
    pass, to turn the profiler's convolution times into arithmetic rates."""
    sizes: dict[tuple, int] = {}

    def record(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        sizes[(tuple(inputs[0].shape), tuple(module.weight.shape))] = output.numel()

    hooks = [m.register_forward_hook(record) for m in model.modules()
             if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return sizes


def conv_flops(name: str, shapes: list, sizes: dict[tuple, int]) -> float | None:
    """Forward FLOPs (2 x multiply-adds) of a convolution operator, else None."""
    if name != "aten::mkldnn_convolution" or len(shapes) < 2:
        return None
    outputs = sizes.get((tuple(shapes[0]), tuple(shapes[1])))
    if outputs is None:
        return None
    _, c_per_group, kh, kw = shapes[1]
    return 2.0 * outputs * c_per_group * kh * kw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--act", default="relu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--format", choices=["channels_last", "contiguous"],
                        default="channels_last")
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()
    channels, size = SHAPES.get(args.model, (3, 32))
    memory_format = {"channels_last": torch.channels_last,
                     "contiguous": torch.contiguous_format}[args.format]
    torch.manual_seed(0)
    model = build_model(args.model, act=args.act, in_channels=channels, image_size=size)
    apply_init(model, "he_normal", act=args.act)
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch, channels, size, size).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (args.batch,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    sizes = conv_output_sizes(model, x)
    for _ in range(10):
        step()
    with profile(record_shapes=True) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages(group_by_input_shape=True)
    total_ms = sum(e.self_cpu_time_total for e in events) / 1e3 / args.steps
    rows = []
    for event in sorted(events, key=lambda e: -e.self_cpu_time_total)[:args.rows]:
        ms = event.self_cpu_time_total / 1e3 / args.steps
        flops = conv_flops(event.key, event.input_shapes, sizes)
        shapes = ", ".join("x".join(map(str, s)) for s in event.input_shapes[:2]
                           if isinstance(s, list) and s)
        rows.append([event.key.removeprefix("aten::"), shapes or "-", f"{ms:.3f}",
                     f"{ms / total_ms:.0%}",
                     f"{flops / (ms / 1e3) / 1e9:.0f}" if flops else "-"])
    report(f"Training step profile: {args.model} / {args.act}, batch {args.batch}",
           ["operator", "input shapes", "ms per step", "share", "GFLOP/s (convolution)"],
           rows, notes=f"{args.format}, {torch.get_num_threads()} threads, SGD, "
                       f"{args.steps} profiled steps; {total_ms:.2f} ms per step under the "
                       f"profiler (self times; the profiler adds its own).",
           append=not args.no_append)


if __name__ == "__main__":
    main()
