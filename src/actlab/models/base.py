"""The model registry, :func:`build_model` and the activation swap check.

Every model takes the activation as an input (an :class:`ActSpec`) and builds one
activation module per nonlinearity site. After construction :func:`verify_activations`
proves the swap is complete: every activation module carries the requested spec (or is
one of the model's declared fixed sites, such as an SE block's sigmoid gate), no PyTorch
activation module is left, and a symbolic trace finds no functional nonlinearity
(``F.relu`` and friends) hidden in a ``forward``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from actlab.activations import Activation, ActSpec, resolve_act
from actlab.registry import Registry
from actlab.spec import SWAP_PROBLEM

log = logging.getLogger(__name__)

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


class ActivationSwapError(RuntimeError):
    """A built model contains a nonlinearity other than the requested activation."""


# Every activation module class PyTorch ships; none may appear in an actlab model.
TORCH_ACTIVATION_MODULES: tuple[type[nn.Module], ...] = tuple(
    getattr(nn.modules.activation, name)
    for name in nn.modules.activation.__all__
    if name not in ("MultiheadAttention",)
)

FUNCTIONAL_NONLINEARITIES: frozenset[Callable] = frozenset({
    F.relu, F.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish,
    F.softplus, F.hardswish, F.hardsigmoid, F.hardtanh, F.prelu, F.rrelu, F.glu, F.logsigmoid,
    F.softsign, F.tanhshrink, F.sigmoid, F.tanh, torch.relu, torch.relu_, torch.sigmoid,
    torch.tanh, torch.selu, torch.celu, torch.prelu,
})
METHOD_NONLINEARITIES = frozenset({"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_"})


class _ActivationAwareTracer(torch.fx.Tracer):
    """Treats actlab activations as opaque leaves, so only hidden nonlinearities show up."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, Activation) or super().is_leaf_module(m, module_qualified_name)


def activation_sites(model: nn.Module) -> dict[str, Activation]:
    """Qualified name -> activation module, for every activation site of ``model``.

    Activations nested inside another activation (the units of a combination) are part
    of their parent's site, not sites of their own.
    """
    sites: dict[str, Activation] = {}
    for name, module in model.named_modules():
        if isinstance(module, Activation) and not any(
            name.startswith(f"{parent}.") for parent in sites
        ):
            sites[name] = module
    return sites


def verify_activations(model: nn.Module, act: ActSpec) -> int:
    """Check that every nonlinearity of ``model`` is ``act``; return the number of sites.

    A model may declare ``fixed_activation_sites`` (qualified-name suffixes such as
    ``"se.gate"``) whose activation is fixed by the architecture, not by the study.
    """
    fixed: tuple[str, ...] = tuple(getattr(model, "fixed_activation_sites", ()))
    problems: list[str] = []
    sites = 0
    for name, module in activation_sites(model).items():
        if any(name.endswith(suffix) for suffix in fixed):
            continue
        sites += 1
        label = module.spec.label if module.spec is not None else type(module).__name__
        if label != act.label:
            problems.append(f"{name or '<root>'} is {label}")
    for name, module in model.named_modules():
        if isinstance(module, TORCH_ACTIVATION_MODULES):
            problems.append(f"{name} is a PyTorch {type(module).__name__} module")
    problems.extend(_hidden_functional_nonlinearities(model))
    if problems:
        raise ActivationSwapError(
            f"{type(model).__name__} was asked for activation '{act.label}' but has other "
            f"nonlinearities: {'; '.join(problems)}. Every nonlinearity must be built from the "
            "activation passed to the model (or declared in fixed_activation_sites)."
        )
    if sites == 0:
        raise ActivationSwapError(f"{type(model).__name__} has no activation site at all")
    return sites


def _hidden_functional_nonlinearities(model: nn.Module) -> list[str]:
    try:
        graph = _ActivationAwareTracer().trace(model)
    except Exception as exc:
        log.debug("symbolic trace of %s failed (%s); module check only",
                  type(model).__name__, exc)
        return []
    found = []
    for node in graph.nodes:
        if node.op == "call_function" and node.target in FUNCTIONAL_NONLINEARITIES:
            found.append(f"a functional {node.target.__name__} call in forward ({node.name})")
        elif node.op == "call_method" and node.target in METHOD_NONLINEARITIES:
            found.append(f"a .{node.target}() call in forward ({node.name})")
    return found


#: Arguments every model factory receives from :func:`build_model`, never from options.
BUILD_ARGUMENTS = ("act", "num_classes", "in_channels", "image_size")


Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

#: The arguments every model builder takes (the rest are its options).
BUILDER_ARGUMENTS = ("act", "num_classes", "in_channels", "image_size")


def register_model(name: str, *, aliases: tuple[str, ...] = (), override: bool = False,
                   fixup: bool = False) -> Callable[[Builder], Builder]:
    """Decorator adding a model builder to :data:`MODELS` (the public API for plug-ins:
    docs/extending.md). The builder takes ``act`` (an ActSpec: call ``act.build(channels)``
    at every nonlinearity site), ``num_classes``, ``in_channels``, ``image_size`` and
    its own options as keyword arguments with defaults, and returns an ``nn.Module``.
    Every build is verified: a site that is not ``act``, or a functional nonlinearity
    left in ``forward``, is an error. ``fixup=True`` marks a builder made for Fixup
    initialization (no normalization layers)."""

    def decorator(builder: Builder) -> Builder:
        if not callable(builder):
            raise TypeError(f"model '{name}' must be a builder function, got {builder!r}")
        parameters = inspect.signature(builder).parameters
        missing = [a for a in BUILDER_ARGUMENTS if a not in parameters]
        if missing:
            raise TypeError(f"model builder '{name}' must take {', '.join(BUILDER_ARGUMENTS)} "
                            f"as keyword arguments; it lacks {', '.join(missing)}")
        MODELS.add(name, builder, aliases=aliases, override=override,
                   **({"fixup": True} if fixup else {}))
        return builder

    return decorator


def model_options(name: str) -> dict[str, Any]:
    """Option name -> default for a registered model (its keyword arguments)."""
    signature = inspect.signature(MODELS.get(name))
    return {
        p.name: p.default for p in signature.parameters.values()
        if p.name not in BUILD_ARGUMENTS
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def build_model(
    name: str,
    act: str | Mapping[str, Any] | ActSpec = "relu",
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    **options: Any,
) -> nn.Module:
    """Build a registered model with ``act`` at every nonlinearity site, and verify the swap.

    >>> model = build_model("lenet5", act="mish", in_channels=1, image_size=28)
    """
    spec = resolve_act(act)
    factory = MODELS.get(name)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be positive, got {in_channels}")
    allowed = model_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listed = ", ".join(f"{k} (default {v!r})" for k, v in allowed.items()) or "none"
        raise ValueError(f"model {MODELS.canonical(name)} has no option "
                         f"{', '.join(repr(u) for u in unknown)}; its options: {listed}")
    model = factory(act=spec, num_classes=num_classes, in_channels=in_channels,
                    image_size=image_size, **options)
    model.activation_site_count = verify_activations(model, spec)
    return model


def eval_forward_with_hooks(model: nn.Module, batch: torch.Tensor,
                            hooks: Mapping[nn.Module, Callable[..., Any]]) -> None:
    """One eval-mode, no-grad forward of ``batch`` with forward ``hooks`` attached to the
    given modules; the model's mode is restored and the hooks removed afterwards."""
    handles = [module.register_forward_hook(hook) for module, hook in hooks.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(batch)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.lru_cache(maxsize=512)
def model_misfit(name: str, options_json: str, in_channels: int, image_size: int,
                 num_classes: int) -> str | None:
    """Why ``name`` with these options cannot take such inputs (None if it can): the model
    is built on the meta device, so checking every cell of a study costs milliseconds."""
    import json

    try:
        with torch.device("meta"):
            build_model(name, act="relu", num_classes=num_classes, in_channels=in_channels,
                        image_size=image_size, **json.loads(options_json))
    except ActivationSwapError as exc:  # a plug-in's builder, typically
        return f"{SWAP_PROBLEM}: {exc}"
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None
