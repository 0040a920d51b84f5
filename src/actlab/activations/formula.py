"""``expr``: an activation written as a formula, for the common case of a new activation.

``act: expr("x * tanh(softplus(x))")`` is Mish; learnable parameters are declared with
their start values, ``expr("a * x * sigmoid(b * x)", a=1.0, b=1.0, per_channel=true)``.
The formula is parsed into Python's syntax tree and only this restricted language is
accepted (never ``eval``): the input ``x``, the declared parameters, numbers, the
constants ``pi`` and ``e``, the operators ``+ - * / **``, comparisons (``x > 0``) for the
piecewise ``where(condition, a, b)``, and the functions of :data:`FUNCTIONS`. Attribute
access, subscripts, imports, keywords and any other name are refused with the reason.

The formula is evaluated by a tree of torch operations built once per module, so it
runs on any device and dtype, is differentiable (twice) and can be compiled. A formula
that is not finite for some x in [-10, 10] at its start values is refused when the
study is planned. The label keeps the formula's text, so the run id covers it: editing
the formula gives new runs.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from actlab.activations.base import Activation, ActProperties, register_activation
from actlab.activations.learnable import per_site_parameter

Tensor = torch.Tensor
Evaluator = Callable[[Tensor, dict[str, Tensor]], Tensor]

#: The functions a formula may call, by name, with how many arguments each takes.
FUNCTIONS: dict[str, tuple[Callable[..., Tensor], int]] = {
    "exp": (torch.exp, 1), "log": (torch.log, 1), "log1p": (torch.log1p, 1),
    "expm1": (torch.expm1, 1), "sqrt": (torch.sqrt, 1), "abs": (torch.abs, 1),
    "sign": (torch.sign, 1), "sin": (torch.sin, 1), "cos": (torch.cos, 1),
    "tanh": (torch.tanh, 1), "atan": (torch.atan, 1), "asinh": (torch.asinh, 1),
    "sigmoid": (torch.sigmoid, 1), "softplus": (F.softplus, 1), "erf": (torch.erf, 1),
    "erfc": (torch.erfc, 1), "relu": (F.relu, 1), "gelu": (F.gelu, 1), "silu": (F.silu, 1),
    "mish": (F.mish, 1), "elu": (F.elu, 1), "softsign": (F.softsign, 1),
    "hardtanh": (F.hardtanh, 1), "maximum": (torch.maximum, 2),
    "minimum": (torch.minimum, 2), "where": (torch.where, 3),
}
CONSTANTS = {"pi": math.pi, "e": math.e}
BINARY: dict[type[ast.operator], Callable[[Tensor, Tensor], Tensor]] = {
    ast.Add: torch.add, ast.Sub: torch.sub, ast.Mult: torch.mul, ast.Div: torch.div,
    ast.Pow: torch.pow,
}
COMPARE: dict[type[ast.cmpop], Callable[[Tensor, Tensor], Tensor]] = {
    ast.Gt: torch.gt, ast.GtE: torch.ge, ast.Lt: torch.lt, ast.LtE: torch.le,
}
#: Option names the formula's parameters may not take.
RESERVED = {"x", "formula", "per_channel", "channels", *FUNCTIONS, *CONSTANTS}


class FormulaError(ValueError):
    """A formula uses something outside the language, or is not finite at init."""


def compile_formula(text: str, parameters: set[str]) -> Evaluator:
    """An evaluator ``(x, {name: tensor}) -> f(x)`` of ``text``, or a FormulaError."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"formula {text!r} is not an expression: {exc.msg}") from None
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    if "x" not in used:
        raise FormulaError(f"formula {text!r} does not use x")
    unused = sorted(parameters - used)
    if unused:
        raise FormulaError(f"parameter(s) {', '.join(unused)} declared but not used in "
                           f"{text!r}")
    return _compile(tree.body, text, parameters)


def _compile(node: ast.AST, text: str, parameters: set[str]) -> Evaluator:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        value = float(node.value)
        return lambda x, p: torch.full((), value, dtype=x.dtype, device=x.device)
    if isinstance(node, ast.Name):
        name = node.id
        if name == "x":
            return lambda x, p: x
        if name in parameters:
            return lambda x, p: p[name]
        if name in CONSTANTS:
            constant = CONSTANTS[name]
            return lambda x, p: torch.full((), constant, dtype=x.dtype, device=x.device)
        hint = " (a function: call it, e.g. tanh(x))" if name in FUNCTIONS else ""
        raise FormulaError(f"unknown name {name!r} in formula {text!r}{hint}; use x, your "
                           "parameters (declared with start values, e.g. a=1.0), pi, e and "
                           f"the functions {', '.join(sorted(FUNCTIONS))}")
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        op, left, right = (BINARY[type(node.op)], _compile(node.left, text, parameters),
                           _compile(node.right, text, parameters))
        return lambda x, p: op(left(x, p), right(x, p))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _compile(node.operand, text, parameters)
        if isinstance(node.op, ast.UAdd):
            return operand
        return lambda x, p: torch.neg(operand(x, p))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARE:
        op = COMPARE[type(node.ops[0])]
        left = _compile(node.left, text, parameters)
        right = _compile(node.comparators[0], text, parameters)
        return lambda x, p: op(left(x, p), right(x, p))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name = node.func.id
        if name not in FUNCTIONS:
            raise FormulaError(f"function {name!r} is not allowed in formula {text!r}; the "
                               f"functions are {', '.join(sorted(FUNCTIONS))}")
        function, arity = FUNCTIONS[name]
        if len(node.args) != arity:
            raise FormulaError(f"{name} takes {arity} argument(s), got {len(node.args)} in "
                               f"formula {text!r}")
        args = [_compile(arg, text, parameters) for arg in node.args]
        if name == "where":
            condition, yes, no = args
            return lambda x, p: torch.where(condition(x, p), yes(x, p), no(x, p))
        return lambda x, p: function(*(arg(x, p) for arg in args))
    raise FormulaError(f"{_describe(node)} is not allowed in formula {text!r}: use x, "
                       "numbers, parameters, + - * / **, comparisons inside where(...) "
                       "and the listed functions")


def _describe(node: ast.AST) -> str:
    return {ast.Attribute: "attribute access (.)", ast.Subscript: "indexing ([])",
            ast.Lambda: "lambda", ast.Call: "this call", ast.BoolOp: "and/or",
            ast.IfExp: "if/else (use where(condition, a, b))",
            ast.Compare: "a chained or ==/!= comparison",
            ast.Constant: "this constant (only numbers)"}.get(type(node), type(node).__name__)


def _flag(value: Any, name: str) -> bool:
    """A boolean option that may arrive as the bare words true/false."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, bool):
        return value
    raise ValueError(f"expr option {name} must be true or false, got {value!r}")


@register_activation("expr", aliases=("formula",))
class Formula(Activation):
    """An activation given as a formula in x with optional learnable parameters (see the
    module docstring): ``expr("x * erf(softplus(x))")``, ``expr("a * x", a=1.0)``."""

    properties = ActProperties(formula="(a formula)", reference="your formula",
                               unknown=True)
    example: ClassVar[dict[str, Any]] = {"formula": "x * tanh(softplus(x))"}  # Mish

    def __init__(self, formula: str, per_channel: Any = False, channels: int | None = None,
                 **parameters: Any) -> None:
        super().__init__()
        if not isinstance(formula, str):
            raise FormulaError(f"expr needs the formula as text, got {formula!r}")
        reserved = sorted(set(parameters) & RESERVED)
        if reserved:
            raise FormulaError(f"expr parameter name(s) {', '.join(reserved)} are taken "
                               "(x, function and constant names); choose others")
        for name, value in parameters.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FormulaError(f"expr parameter {name} needs a number as its start "
                                   f"value, got {value!r}")
        self.formula = formula.strip()
        self.evaluate = compile_formula(self.formula, set(parameters))
        per_channel = _flag(per_channel, "per_channel")
        self.names = sorted(parameters)
        for name in self.names:
            self.register_parameter(name, per_site_parameter(parameters[name], per_channel,
                                                             channels, "expr"))
        self._check_finite()

    def forward(self, x: Tensor) -> Tensor:
        values = {}
        for name in self.names:
            value = getattr(self, name).to(x.dtype)
            if value.numel() > 1 and x.dim() > 1:  # per channel: broadcast over dim 1
                value = value.view(1, -1, *([1] * (x.dim() - 2)))
            values[name] = value.reshape(()) if value.numel() == 1 else value
        return self.evaluate(x, values)

    def _check_finite(self) -> None:
        grid = torch.arange(-1000, 1001) / 100.0  # [-10, 10] by 0.01, 0 exactly
        if any(getattr(self, n).numel() > 1 for n in self.names):
            grid = grid.view(1, 1, -1).expand(1, getattr(self, self.names[0]).numel(), -1)
        with torch.no_grad():
            values = self.forward(grid)
        if not torch.isfinite(values).all():
            bad = grid.flatten()[~torch.isfinite(values.flatten())][0].item()
            raise FormulaError(f"formula {self.formula!r} is not finite at x = {bad:g} (at its "
                               "start values); actlab refuses formulas that are not finite "
                               "over [-10, 10]")
