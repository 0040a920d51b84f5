"""Cost of each activation: forward + backward of whole models relative to ReLU, and of
the activation alone in its fused (PyTorch's native kernel) and composed form.

    python benchmarks/af_cost.py [--models lenet5 simple_cnn resnet20] [--batch 128]
                                 [--rounds 15] [--acts relu mish ...]

Models: one training step (forward, cross-entropy, backward) on a random batch at the
model's usual input size, He init, channels_last; the activations are timed in
interleaved rounds (one step of each per round) and each one's fastest round is kept,
so a slow phase of a shared machine hits all alike. Implementations: Mish as actlab's CPU kernel
(actlab.activations.kernels) and PyTorch's fused kernel (F.mish, actlab's choice on
GPUs), Swish as PyTorch's fused F.silu (actlab's default), against the composed
formulas x * tanh(softplus(x)) and x * sigmoid(x), timed the same way on a
256 x 64 x 16 x 16 tensor, with the bytes each keeps for the backward pass.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from actlab.activations.kernels import MishFromSigmoid
from actlab.inits import apply_init
from actlab.models import build_model
from record import report

DEFAULT_ACTS = ["relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "mish",
                "sigmoid", "tanh", "softplus", "hardswish", "swish_beta", "tact", "pelu"]
SHAPES = {"lenet5": (1, 28), "simple_cnn": (3, 32), "resnet20": (3, 32),
          "deep_cnn": (3, 32), "squeezenet": (3, 32), "mobilenetv2": (3, 32)}


def fastest(steps: dict[str, object], rounds: int, warmup: int = 2) -> dict[str, float]:
    """Each callable's fastest of ``rounds`` interleaved rounds, in seconds."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(rounds + warmup):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def model_step(model_name: str, act: str, batch: int) -> object:
    channels, size = SHAPES.get(model_name, (3, 32))
    torch.manual_seed(0)
    model = build_model(model_name, act=act, num_classes=10, in_channels=channels,
                        image_size=size).to(memory_format=torch.channels_last)
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    apply_init(model, "he_normal", act, "matched", batch=x)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
    return step


def saved_bytes(function, x: torch.Tensor) -> int:
    """Bytes the autograd graph keeps for the backward pass of ``function(x)``."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        function(x).sum()
    return total


IMPLEMENTATIONS = {
    "mish (actlab's CPU kernel, from one sigmoid)": MishFromSigmoid.apply,
    "mish (fused, F.mish)": F.mish,
    "mish (composed)": lambda x: x * torch.tanh(F.softplus(x)),
    "swish (fused, F.silu)": F.silu,
    "swish (composed)": lambda x: x * torch.sigmoid(x),
    "relu": F.relu,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "simple_cnn", "resnet20"])
    parser.add_argument("--acts", nargs="+", default=DEFAULT_ACTS)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-append", action="store_true", help="Print only.")
    args = parser.parse_args()

    rows = []
    per_model = {}
    for model_name in args.models:
        steps = {act: model_step(model_name, act, args.batch) for act in args.acts}
        best = fastest(steps, args.rounds)
        per_model[model_name] = {act: best[act] / best["relu"] for act in args.acts}
        per_model[model_name]["(relu ms/step)"] = best["relu"] * 1e3
    for act in args.acts:
        rows.append([act] + [f"{per_model[m][act]:.2f}" for m in args.models])
    rows.append(["ReLU step (ms)"] + [f"{per_model[m]['(relu ms/step)']:.1f}"
                                      for m in args.models])
    report("Activation cost per model (forward + backward step, relative to ReLU)",
           ["activation", *args.models], rows,
           notes=f"batch {args.batch}, fastest of {args.rounds} interleaved rounds, "
                 f"{torch.get_num_threads()} threads, channels_last.",
           append=not args.no_append)

    x = torch.randn(256, 64, 16, 16, requires_grad=True)
    best = fastest({name: (lambda f=f: f(x).sum().backward())
                    for name, f in IMPLEMENTATIONS.items()}, args.rounds * 2)
    rows = [[name, f"{best[name] * 1e3:.1f}", f"{best[name] / best['relu']:.1f}",
             f"{saved_bytes(f, x.detach().requires_grad_()) / 2**20:.0f}"]
            for name, f in IMPLEMENTATIONS.items()]
    report("Mish and Swish implementations (256 x 64 x 16 x 16, fp32)",
           ["implementation", "forward + backward (ms)", "vs relu",
            "kept for backward (MiB)"], rows,
           notes="actlab's mish uses its own kernel on CPU and F.mish elsewhere; "
                 "silu/swish uses F.silu (tests/test_activations.py checks they equal "
                 "the formulas in value and gradient).", append=not args.no_append)


if __name__ == "__main__":
    main()
