"""``actlab list``, ``models``, ``data`` and ``theory``: what actlab offers, without
training anything."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actlab.cli.common import (
    DataDirOption,
    ModelOptionsOption,
    PluginOption,
    app,
    console,
    err_console,
    handle_errors,
    load_plugins,
    parse_options,
)
from actlab.components import ComponentSpecError


@app.command()
@handle_errors
def theory(
    acts: str | None = typer.Option(None, "--acts", help="Comma-separated activations "
                                    "[default: relu, leaky_relu, elu, selu, gelu, silu, mish, "
                                    "tanh, sigmoid, softplus]."),
    inits: str | None = typer.Option(None, "--inits", help="Comma-separated initializers "
                                     "[default: he_normal, xavier_normal(gain=1.0), "
                                     "lecun_normal, orthogonal, normal]."),
    out: Path = typer.Option(Path("results/theory"), "--out", "-o", help="Output folder."),
    depth: int = typer.Option(50, "--depth", min=1, help="Layers of the plain network."),
    width: int = typer.Option(256, "--width", min=1, help="Its width (units or channels)."),
    kind: str = typer.Option("fc", "--kind", help="fc (fully connected) or conv (3x3)."),
    svg: bool = typer.Option(True, "--svg/--no-svg",
                             help="Also write every figure as SVG (vector, for papers)."),
    plugin: list[str] = PluginOption,
) -> None:
    """Theory without training: the AF catalog, f and f', signal propagation at init per
    AF x WI, escape depths and mean-field phase diagrams (index.html, report.md)."""
    load_plugins(plugin)
    from actlab.activations import resolve_act
    from actlab.inits import resolve_init
    from actlab.theory.report import DEFAULT_ACTS, DEFAULT_INITS, write_theory

    if kind not in ("fc", "conv"):
        raise typer.BadParameter(f"{kind!r} is not fc or conv", param_hint="--kind")
    act_list = _split_components(acts) or list(DEFAULT_ACTS)
    init_list = _split_components(inits) or list(DEFAULT_INITS)
    for act in act_list:
        resolve_act(act)  # unknown names: a clear error before any work
    for init in init_list:
        resolve_init(init)
    with console.status("computing the theory report"):
        paths = write_theory(out, act_list, init_list, depth, width, kind, svg=svg)
    console.print(f"theory: {paths['html']} (and {paths['markdown'].name}, tables/, figures/)")


def _split_components(text: str | None) -> list[str]:
    """Split 'relu,leaky_relu(slope=0.3),tanh' at the commas outside parentheses."""
    if not text:
        return []
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p]


@app.command("list")
@handle_errors
def list_(what: str = typer.Argument(..., help="activations | inits | models | datasets | "
                                                "schedules"),
          pattern: str = typer.Argument("*", help="Wildcard filter, e.g. '*relu*'."),
          details: bool = typer.Option(False, "--details",
                                       help="Activations: formula, properties, gains."),
          plugin: list[str] = PluginOption,
          ) -> None:
    """List a registry's names (with aliases)."""
    load_plugins(plugin)
    import fnmatch

    from actlab import catalog

    if what not in catalog.LISTED:
        err_console.print(f"[bold red]error:[/] cannot list '{what}'; choose from "
                          f"{', '.join(catalog.LISTED)}")
        raise typer.Exit(2)
    if details and what == "activations":
        _activation_details(pattern)
        return
    kind = catalog.LISTED[what]
    table = Table(title=f"{kind}s")
    table.add_column("name")
    table.add_column("aliases")
    table.add_column("description")
    for entry in catalog.listing(kind):  # remembered: no torch once the catalog is warm
        if fnmatch.fnmatchcase(entry["name"], pattern.lower()):
            table.add_row(entry["name"], ", ".join(entry["aliases"]), entry["description"])
    console.print(table)


def _activation_details(pattern: str) -> None:
    """One block per activation (readable at any terminal width)."""
    from actlab.activations import ACTIVATIONS, example_act, matched_gain, torch_gain

    for name in ACTIVATIONS.list(pattern):
        entry = ACTIVATIONS.entry(name)
        props = entry.factory.properties
        flags = [flag for flag, on in (("monotonic", props.monotonic), ("smooth", props.smooth),
                                       ("bounded", props.bounded),
                                       ("zero-centred", props.zero_centred)) if on]
        spec = example_act(name)
        if props.unknown:
            flags = ["not declared (`actlab theory` and reports measure them)"]
        try:
            torch_value = f"{torch_gain(spec):.4f}"
        except ValueError:
            torch_value = "none (use gain: matched)"
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        for key, value in (
            ("formula", props.formula if not spec.kwargs.get("formula")
             else f"yours, e.g. {spec.label}"),
            ("learnable", ", ".join(props.learnable) or "none"),
            ("range", props.range_label),
            ("properties", ", ".join(flags) or "none of monotonic, smooth, bounded, zero-centred"),
            ("matched gain", f"{matched_gain(spec):.4f}"
                             + (" (of the example)" if spec.kwargs.get("formula") else "")),
            ("torch gain", torch_value),
            ("reference", props.reference or "-"),
        ):
            grid.add_row(key, value)
        aliases = f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        console.print(f"[bold]{name}[/]{aliases}")
        console.print(grid)
        console.print()


check_app = typer.Typer(no_args_is_help=True,
                        help="Check a component before spending compute on it.")
app.add_typer(check_app, name="check")


@check_app.command("activation")
@handle_errors
def check_activation(
    act: str = typer.Argument(..., help="A registered activation (yours with --plugin), "
                                        "e.g. serf, 'leaky_relu(slope=0.3)' or "
                                        "'expr(\"x * tanh(softplus(x))\")'."),
    cost: bool = typer.Option(True, "--cost/--no-cost",
                              help="Time it against ReLU on this machine (about 1 s)."),
    plugin: list[str] = PluginOption,
) -> None:
    """Finite values and gradients (fp32, bf16), gradcheck and double backward, f(0),
    f'(0), E[f], E[f^2] and the matched gain, vmap and compile, per-channel parameters
    and the cost against ReLU, with a verdict; exit status 1 when a check fails."""
    from actlab.theory.check import check_activation as run_checks
    from actlab.theory.check import verdict

    load_plugins(plugin)
    with console.status(f"checking {act}"):
        checks = run_checks(act, cost=cost)
    table = Table(title=f"activation {act}", show_header=False)
    table.add_column("result")
    table.add_column("check")
    table.add_column("detail")
    marks = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[dim]value[/]"}
    for item in checks:
        table.add_row(marks[item.ok], escape(item.name), escape(item.detail))
    console.print(table)
    summary = verdict(checks)
    console.print(f"[bold]{summary}[/]")
    if not summary.startswith("ready"):
        raise typer.Exit(1)


models_app = typer.Typer(no_args_is_help=True, help="Describe the model zoo.")
app.add_typer(models_app, name="models")



def _describe(name: str, act: str, classes: int, channels: int, size: int,
              options: dict[str, Any]) -> Any:
    from actlab.models.info import describe_model

    try:
        return describe_model(name, act=act, num_classes=classes, in_channels=channels,
                              image_size=size, **options)
    except ValueError as exc:
        if isinstance(exc, ComponentSpecError):
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


@models_app.command("show")
@handle_errors
def models_show(
    name: str = typer.Argument(..., help="A registered model, e.g. resnet18."),
    act: str = typer.Option("relu", "--act", help="Activation, e.g. mish or 'tact(alpha=1)'."),
    classes: int = typer.Option(10, "--classes", help="Number of classes."),
    channels: int = typer.Option(3, "--channels", help="Input channels."),
    size: int = typer.Option(32, "--size", help="Input height = width in pixels."),
    option: list[str] = ModelOptionsOption,
    plugin: list[str] = PluginOption,
) -> None:
    """Parameters, multiply-accumulates and activation sites of one model."""
    load_plugins(plugin)
    info = _describe(name, act, classes, channels, size, parse_options(option))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    fixed = ", ".join(info.fixed_sites) if info.fixed_sites else "none"
    for key, value in (
        ("input", f"{info.in_channels} x {info.image_size} x {info.image_size}, "
                  f"{info.num_classes} classes"),
        ("activation", info.act),
        ("parameters", f"{info.parameters:,}"),
        ("  of which activation", f"{info.activation_parameters:,}"),
        ("MACs per image", f"{info.macs:,} ({info.macs / 1e6:,.1f} M)"),
        ("activation sites", str(info.activation_sites)),
        ("fixed sites", fixed if len(fixed) < 200 else f"{len(info.fixed_sites)} (sigmoid gates)"),
        ("supports fixup", "yes" if info.fixup else "no"),
        ("options", ", ".join(f"{k}={v!r}" for k, v in info.options.items()) or "none"),
        ("reference", info.reference or "-"),
    ):
        grid.add_row(key, value)
    console.print(f"[bold]{info.name}[/]")
    console.print(grid)


@models_app.command("list")
@handle_errors
def models_list(
    pattern: str = typer.Argument("*", help="Wildcard filter, e.g. 'resnet*'."),
    act: str = typer.Option("relu", "--act", help="Activation used for the counts."),
    classes: int = typer.Option(10, "--classes", help="Number of classes."),
    channels: int = typer.Option(3, "--channels", help="Input channels."),
    size: int = typer.Option(32, "--size", help="Input height = width in pixels."),
    plugin: list[str] = PluginOption,
) -> None:
    """Every model with its parameters, MACs and activation sites at one input size."""
    load_plugins(plugin)
    from actlab.models import MODELS

    table = Table(title=f"models for {channels} x {size} x {size} inputs, {classes} classes")
    for column in ("name", "family", "parameters", "MACs (M)", "act sites", "fixup"):
        table.add_column(column, justify="left" if column in ("name", "family") else "right")
    for name in MODELS.list(pattern):
        info = _describe(name, act, classes, channels, size, {})
        table.add_row(name, info.family, f"{info.parameters:,}", f"{info.macs / 1e6:,.1f}",
                      str(info.activation_sites), "yes" if info.fixup else "")
    console.print(table)


data_app = typer.Typer(no_args_is_help=True, help="Inspect datasets.")
app.add_typer(data_app, name="data")

DatasetOptionsOption = typer.Option(
    [], "--option", "-o", help="Dataset option as key=value (repeatable), e.g. -o path=x.")


def _load_for_cli(name: str, data_dir: Path | None, option: list[str]) -> Any:
    from actlab.data import load_dataset
    from actlab.progress import set_progress_factory

    set_progress_factory(_rich_progress)
    try:
        return load_dataset(name, str(data_dir) if data_dir else None,
                            **parse_options(option))
    finally:
        set_progress_factory(None)


def _rich_progress(description: str, total: int | None) -> Any:
    @contextlib.contextmanager
    def bar() -> Any:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=err_console, transient=True) as progress:
            task = progress.add_task(description, total=total)
            yield lambda amount=1: progress.advance(task, amount)

    return bar()


@data_app.command("info")
@handle_errors
def data_info(
    name: str = typer.Argument(..., help="A registered dataset, e.g. cifar10."),
    data_dir: Path | None = DataDirOption,
    option: list[str] = DatasetOptionsOption,
    checksums: bool = typer.Option(False, "--checksums",
                                   help="Compare the files with the official MD5s."),
) -> None:
    """Sizes, classes, location, statistics and cache state of a dataset."""
    from actlab.data.loader import channel_statistics

    dataset = _load_for_cli(name, data_dir, option)
    mean, std = channel_statistics(dataset.train_images)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    classes = ", ".join(dataset.classes[:20]) + (" ..." if dataset.num_classes > 20 else "")
    rows = [
        ("location", dataset.source),
        ("train", f"{len(dataset.train_labels):,} images"),
        ("test", f"{len(dataset.test_labels):,} images"),
        ("image", f"{dataset.channels} x {dataset.image_size} x {dataset.image_size} uint8"),
        ("classes", f"{dataset.num_classes}: {classes}"),
        ("train mean", ", ".join(f"{v:.4f}" for v in mean.tolist())),
        ("train std", ", ".join(f"{v:.4f}" for v in std.tolist())),
    ]
    if "cache" in dataset.details:
        state = "hit" if dataset.details["cache_hit"] else "written now"
        rows.append(("cache", f"{dataset.details['cache']} ({state})"))
    if checksums and "official_md5" in dataset.details:
        status = dataset.details["official_md5"]()
        matching = [f for f, ok in status.items() if ok]
        rows.append(("official MD5", f"{len(matching)}/{len(status)} files match"
                     + ("" if len(matching) == len(status) else
                        f" (differ or missing: {', '.join(f for f in status if not status[f])};"
                        " MD5s are of the official downloads' bytes, so a recompressed copy "
                        "such as Debian's differs even where its content is the same)")))
    for key, value in rows:
        grid.add_row(key, value)
    console.print(f"[bold]{dataset.name}[/]")
    console.print(grid)


@data_app.command("show")
@handle_errors
def data_show(
    name: str = typer.Argument(..., help="A registered dataset, e.g. cifar10."),
    data_dir: Path | None = DataDirOption,
    option: list[str] = DatasetOptionsOption,
    corruption: str | None = typer.Option(
        None, "--corruption", help="e.g. 'gaussian_noise(severity=3)' or "
                                   "'shot_noise_psi(psi=8)'; shown beside the clean images."),
    split: str = typer.Option("test", "--split", help="train or test."),
    per_class: int = typer.Option(8, "--per-class", help="Images per class (one row each)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the corruption and the sample."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="PNG file [default: DATASET[-CORRUPTION].png]."),
) -> None:
    """Write a grid of sample images (one row per class) as a PNG, to look at the data."""
    from actlab.components import parse_component_text
    from actlab.data.corrupt import corrupt
    from actlab.data.preview import sample_grid, sample_per_class

    if split not in ("train", "test"):
        err_console.print("[bold red]error:[/] --split must be train or test")
        raise typer.Exit(2)
    dataset = _load_for_cli(name, data_dir, option)
    images, labels = ((dataset.train_images, dataset.train_labels) if split == "train"
                      else (dataset.test_images, dataset.test_labels))
    chosen = sample_per_class(labels, min(per_class, 64), seed, max_classes=20)
    panels = [images[chosen]]
    stem = dataset.name
    if corruption:
        kind, options = parse_component_text(corruption)
        try:
            panels.append(corrupt(images[chosen], kind, seed=seed, **options))
        except (ValueError, TypeError) as exc:
            err_console.print(f"[bold red]error:[/] corruption '{corruption}': {exc}")
            raise typer.Exit(2) from None
        stem += "-" + corruption.replace("(", "-").replace(")", "").replace("=", "")
    path = sample_grid(panels, columns=min(per_class, 64), out=out or Path(f"{stem}.png"))
    console.print(f"wrote {path} ({len(chosen)} images per panel, rows = classes)")
