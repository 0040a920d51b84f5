"""Run specifications: everything that determines one training run, validated and hashed.

This is the lowest layer above the registries' :mod:`catalog`: it imports no torch, so
that planning a study, reading a store and reporting on it never wait for it. A
:class:`RunSpec` is frozen. Activation, initializer and schedule are typed
:class:`~actlab.components.Component` values kept as their canonical labels
(``leaky_relu(slope=0.3)``), so equal choices written differently give the same spec.
:attr:`RunSpec.run_id` is a content hash of the fields that change the result; where the
data lives and which device or thread count runs it do not enter it, so a study moved to
another machine resumes instead of starting over. docs/design.md ("Run ids") states the
rules.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from actlab import catalog
from actlab.components import Component

OPTIMIZER_NAMES = ("sgd", "adam", "adamw", "rmsprop")

# What decides a run's numbers to the last bit (the host and Python version do not): a
# run resumed where any of these differ is not bit-identical to an uninterrupted run.
RESULT_ENVIRONMENT = ("actlab", "git_commit", "torch", "device", "device_name", "threads")

#: Fields that say where or how a run executes, not what it computes.
EXECUTION_FIELDS: dict[str, Any] = {
    "data": {"data_dir"},
    "train": {"device", "channels_last", "precision", "compile", "deterministic"},
}
#: Fields added after stores existed: left out of the run id while at their default, so
#: adding them did not change the id of any earlier run.
OMITTED_AT_DEFAULT: dict[str, dict[str, Any]] = {
    "data": {"augment": {"crop_padding": 0, "flip": False, "rotation": 0.0},
             "corruption": None, "mean": None, "std": None},
    "train": {"grad_clip": None, "label_smoothing": 0.0, "chance_epochs": 3,
              "test_each_epoch": False, "layer_stats": True, "grad_stats": False},
}


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a study file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: How ``model_misfit`` starts the problem of a model whose builder puts nonlinearities
#: of its own beside the requested activation (a plug-in's, typically).
SWAP_PROBLEM = "builds nonlinearities other than the requested activation"


def _json_value(value: Any) -> Any:
    """Tuples and lists compare equal once written as study-file values."""
    return list(value) if isinstance(value, tuple) else value


def _choose(kind: str) -> Any:
    """A validator turning a written component (text, mapping) into a checked
    :class:`Component` of ``kind``; the catalog builds it once, so that bad option values
    (not only bad names) fail when the study is planned."""

    def choose(value: Any) -> Component:
        if isinstance(value, Component) and value.kind == kind:
            return value
        if isinstance(value, Component):
            value = value.label
        return Component(kind, catalog.component_label(kind, value))

    return choose


def _component_field(kind: str) -> Any:
    """A run-spec field holding a :class:`Component`, written out as its label."""
    return Annotated[Component, BeforeValidator(_choose(kind)),
                     PlainSerializer(str, return_type=str)]


ActivationChoice = _component_field("activation")
InitializerChoice = _component_field("initializer")
ScheduleChoice = _component_field("schedule")


AUGMENT_PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "standard": {"crop_padding": 4, "flip": True},  # CIFAR (He et al. 2016)
    "flip": {"flip": True},
}


class AugmentSpec(StrictModel):
    """Training-time augmentation (never applied to validation or test data)."""

    crop_padding: int = Field(0, ge=0, le=64)
    flip: bool = False
    rotation: float = Field(0.0, ge=0.0, le=180.0)

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in AUGMENT_PRESETS:
                raise ValueError(f"unknown augmentation preset '{value}'; choose from "
                                 f"{', '.join(AUGMENT_PRESETS)} or give crop_padding, flip, "
                                 "rotation")
            return AUGMENT_PRESETS[value]
        return value


class CorruptionSpec(StrictModel):
    """A corrupted variant: ``{kind: shot_noise_psi, psi: 8}`` or ``{kind: gaussian_noise,
    severity: 3}``, applied to the train and/or test images, deterministic from ``seed``."""

    kind: str
    severity: int | None = Field(None, ge=1, le=5)
    psi: float | None = Field(None, gt=0.0)
    apply_to: Literal["both", "train", "test"] = "both"
    seed: int = 0

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        return catalog.canonical_name("corruption", value)

    @model_validator(mode="after")
    def _options_fit_the_kind(self) -> CorruptionSpec:
        if self.kind == "shot_noise_psi":
            if self.severity is not None:
                raise ValueError("shot_noise_psi takes psi (e.g. psi: 8), not severity")
            if self.psi is None:
                raise ValueError("shot_noise_psi needs psi (e.g. psi: 8; lower is noisier)")
        else:
            if self.psi is not None:
                raise ValueError(f"{self.kind} takes severity 1-5, not psi")
            if self.severity is None:
                raise ValueError(f"{self.kind} needs severity 1-5")
        return self

    def options(self) -> dict[str, Any]:
        return {"psi": self.psi} if self.kind == "shot_noise_psi" else {"severity": self.severity}

    @property
    def label(self) -> str:
        value = f"psi={self.psi:g}" if self.kind == "shot_noise_psi" else \
            f"severity={self.severity}"
        return f"{self.kind}({value})" + ("" if self.apply_to == "both" else
                                          f"[{self.apply_to}]")


class DataSpec(StrictModel):
    """Which dataset, which part of it, how it is split, corrupted, normalized, augmented."""

    name: str = "fashion_mnist"
    data_dir: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    train_per_class: int | None = Field(None, gt=0)
    test_per_class: int | None = Field(None, gt=0)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    split_seed: int = 0
    corruption: CorruptionSpec | None = None
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    # Per-channel normalization in [0, 1] pixel units; default: the training split's.
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        return catalog.canonical_name("dataset", value)

    @model_validator(mode="after")
    def _mean_and_std_together(self) -> DataSpec:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std (per channel, in [0, 1] units), or neither")
        if self.std is not None and (min(self.std) <= 0 or len(self.std) != len(self.mean)):
            raise ValueError("std must be positive and have one value per channel, like mean")
        return self


class OptimizerSpec(StrictModel):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    lr: float = Field(0.01, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    decay_act_and_norm: bool = True
    act_lr_scale: float = Field(1.0, gt=0.0)

    @model_validator(mode="before")
    @classmethod
    def _rmsprop_momentum(cls, data: Any) -> Any:
        """RMSprop's conventional momentum is 0 (SGD's default 0.9 would be a surprise)."""
        if (isinstance(data, dict) and str(data.get("name", "")).lower() == "rmsprop"
                and "momentum" not in data):
            return {**data, "momentum": 0.0}
        return data

    @field_validator("name", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() not in OPTIMIZER_NAMES:
            raise ValueError(f"unknown optimizer '{value}'; choose from "
                             f"{', '.join(OPTIMIZER_NAMES)}")
        return value.lower() if isinstance(value, str) else value

    @property
    def label(self) -> str:
        """``sgd(lr=0.01)``: the optimizer, its lr and the settings it uses that are not
        at their defaults (for display; the run id hashes every field)."""
        defaults = OptimizerSpec(name=self.name).model_dump()
        changed = {k: v for k, v in self.model_dump().items()
                   if k not in ("name", "lr") and v != defaults[k]}
        return option_label(self.name, {"lr": self.lr, **changed})


class TrainSpec(StrictModel):
    """Optimization budget and settings of one run."""

    epochs: int = Field(10, gt=0)
    batch_size: int = Field(128, gt=1)
    eval_batch_size: int = Field(1024, gt=0)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleChoice = Component("schedule", "fixed")
    top_k: int = Field(3, gt=0)
    loss_bound: float = Field(1e4, gt=0.0)
    # A run whose validation accuracy fell back to chance (<= 1.1 / classes) for this many
    # consecutive epochs after it had learned (> 1.5 / classes) is diverged; 0 disables.
    chance_epochs: int = Field(3, ge=0)
    grad_clip: float | None = Field(None, gt=0.0)  # max global gradient norm
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    # Measurements (docs/training.md): test metrics every epoch; per-layer weight mean/std
    # and dead-unit fractions per epoch (cheap); per-layer gradient norms (a norm per
    # layer per step).
    test_each_epoch: bool = False
    layer_stats: bool = True
    grad_stats: bool = False
    # Execution settings (not part of the run id): device, memory format, precision
    # (auto = bf16 autocast on CUDA, fp32 on CPU where bf16 measured 3-13x slower),
    # torch.compile, and deterministic CUDA kernels (CPU runs are deterministic anyway).
    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool | None = None
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: bool = False
    deterministic: bool = False


class RunSpec(StrictModel):
    """One cell of a study: model x activation x initializer x data x training x seed."""

    model: str = "lenet5"
    model_options: dict[str, Any] = Field(default_factory=dict)
    act: ActivationChoice = Component("activation", "relu")
    init: InitializerChoice = Component("initializer", "default")
    gain: Literal["matched", "torch"] | float = "matched"
    seed: int = 0
    data: DataSpec = Field(default_factory=DataSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        return catalog.canonical_name("model", value)

    @model_validator(mode="before")
    @classmethod
    def _canonical_model_options(cls, data: Any) -> Any:
        """Unknown model options are errors; options equal to their default are dropped, so
        ``{width: 64}`` and ``{}`` on resnet18 are the same cell (the same run id)."""
        if not isinstance(data, dict) or not data.get("model_options"):
            return data
        try:
            allowed = catalog.model_options(data.get("model", "lenet5"))
        except ValueError:
            return data  # the model field reports the unknown name
        options = dict(data["model_options"])
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            listed = ", ".join(f"{k} (default {v!r})" for k, v in allowed.items()) or "none"
            raise ValueError(f"model {data.get('model')} has no option "
                             f"{', '.join(repr(u) for u in unknown)}; its options: {listed}")
        return {**data, "model_options": {k: v for k, v in options.items()
                                          if _json_value(v) != _json_value(allowed[k])}}

    @model_validator(mode="after")
    def _fits_the_data(self) -> RunSpec:
        """Model and top-k against the dataset's shape, where it is known before loading."""
        channels, image_size, num_classes = catalog.dataset_shape(self.data.name,
                                                                  self.data.options)
        if num_classes is not None and self.train.top_k > num_classes:
            raise ValueError(f"train.top_k is {self.train.top_k} but {self.data.name} has "
                             f"{num_classes} classes; choose top_k <= {num_classes}")
        if channels is not None and image_size is not None:
            problem = catalog.model_misfit(self.model, self.model_options, channels,
                                           image_size, num_classes or 10)
            if problem and problem.startswith(SWAP_PROBLEM):
                raise ValueError(f"model {self.model} {problem}")
            if problem:
                raise ValueError(f"model {self.model} does not fit {self.data.name} "
                                 f"({channels}x{image_size}x{image_size}): {problem}")
        return self

    @model_validator(mode="after")
    def _compatible(self) -> RunSpec:
        supported = catalog.fixup_models()
        if self.init.name == "fixup" and self.model not in supported:
            raise ValueError(f"init fixup needs a model without normalization built for it; "
                             f"'{self.model}' is not one. Models that support fixup: "
                             f"{', '.join(supported)}")
        return self

    def identity(self) -> dict[str, Any]:
        """The fields that determine the result (execution details removed), and the
        digest of each plug-in whose component the run uses (so that editing a plug-in
        re-runs its runs; actlab's own components add nothing)."""
        dumped = self.model_dump(mode="json")
        for section, fields in EXECUTION_FIELDS.items():
            for name in fields:
                dumped[section].pop(name, None)
        for section, defaults in OMITTED_AT_DEFAULT.items():
            for name, default in defaults.items():
                if dumped[section].get(name) == default:
                    dumped[section].pop(name)
        plugins = self.plugin_digests()
        if plugins:
            dumped["plugins"] = plugins
        return dumped

    def plugin_digests(self) -> dict[str, str]:
        """``{field: digest}`` for the components of this run that plug-ins registered."""
        def name(component: Any) -> str:  # a Component, or text set by model_copy
            return str(component).split("(", 1)[0]

        used = {"act": ("activation", name(self.act)), "init": ("initializer", name(self.init)),
                "model": ("model", self.model), "data": ("dataset", self.data.name),
                "schedule": ("schedule", name(self.train.schedule))}
        digests = {field: catalog.plugin_digest(kind, name)
                   for field, (kind, name) in used.items()}
        return {field: digest for field, digest in digests.items() if digest}

    @functools.cached_property
    def run_id(self) -> str:
        """Stable content hash: equal for equal specs, whatever the key order of the file.
        Computed once per spec (a plan of 50,000 runs looks its ids up several times)."""
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> RunSpec:
        """A copy, with ``update`` applied; the copy computes its own run id (pydantic
        copies a cached run id along with the fields)."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("run_id", None)
        return copied

    def with_data_dir(self, data_dir: str | None) -> RunSpec:
        """The same run reading its data from ``data_dir`` (the CLI's --data-dir, which
        takes precedence over the study file); the run id does not change."""
        if data_dir is None:
            return self
        return self.model_copy(update={"data": self.data.model_copy(
            update={"data_dir": str(data_dir)})})

    def describe(self) -> str:
        return describe_run(self.model, self.model_options, str(self.act), str(self.init),
                            self.seed)

    @property
    def model_label(self) -> str:
        """``deep_cnn(depth=5)``: the model with its non-default options."""
        return option_label(self.model, self.model_options)

    @property
    def corruption_label(self) -> str:
        """``shot_noise_psi(psi=8)``, or ``none`` for clean data."""
        c = self.data.corruption
        if c is None:
            return "none"
        options = {"psi": c.psi, "severity": c.severity,
                   "apply_to": None if c.apply_to == "both" else c.apply_to,
                   "seed": c.seed or None}
        return option_label(c.kind, {k: v for k, v in options.items() if v is not None})


def describe_run(model: str, model_options: dict[str, Any], act: str, init: str,
                 seed: int) -> str:
    """``deep_cnn(depth=5) mish he_normal seed=2``: a run in one line (also for runs read
    from a store without validating their spec)."""
    return f"{option_label(model, model_options)} {act} {init} seed={seed}"


def option_label(name: str, options: dict[str, Any]) -> str:
    """``name(k=v, ...)`` (just ``name`` without options), floats in short form."""
    if not options:
        return name
    parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items()]
    return f"{name}({', '.join(parts)})"
