"""What every ``actlab`` command shares: the application, consoles, common options and
the translation of expected errors into one clear message with exit status 2.

The CLI prints; the library logs. Every command module imports only typer and rich at
module level (torch, pandas and matplotlib inside the commands that need them), so that
``actlab --help``, ``list``, ``status``, ``runs`` and ``plan`` start in a fraction of a
second (benchmarks/startup.py).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from actlab.components import ComponentSpecError
from actlab.registry import UnknownNameError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="markdown",
                  help="Comparative studies of activation functions and weight initializers.")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_STORE = Path("results/actlab.db")

StoreOption = typer.Option(
    None, "--store", envvar="ACTLAB_STORE",
    help=f"SQLite run store [default: {DEFAULT_STORE}, or $ACTLAB_STORE].")


PluginOption = typer.Option(
    [], "--plugin", help="Your own components: a .py file or an importable module that "
                         "registers them (repeatable; docs/extending.md).")


def load_plugins(references: list[str]) -> list[Any]:
    """Read and load the ``--plugin`` files and modules (paths relative to the working
    directory) and the installed plug-ins; returns the sources read."""
    from actlab import plugins

    sources = [plugins.read(reference) for reference in references]
    plugins.load(sources)
    plugins.load_installed()
    return sources


LimitOption = typer.Option(
    200, "--limit", min=0, help="Draw at most this many runs in the table (0: all).")


DataDirOption = typer.Option(
    None, "--data-dir", exists=True, file_okay=False, dir_okay=True,
    help="Data directory; overrides the study file's data.data_dir and $ACTLAB_DATA "
         "[default: ~/.cache/actlab/data].")


ModelOptionsOption = typer.Option(
    [], "--option", "-o", help="Model option as key=value (repeatable), e.g. -o width=32.")


def store_path(store: Path | None) -> Path:
    return store if store is not None else DEFAULT_STORE


def _expected_errors() -> tuple[type[BaseException], ...]:
    """The errors a user's input can cause. Those of modules this process never
    imported cannot have been raised, so they are not imported to be caught: a bad study
    file is reported without loading torch (which actlab.data imports)."""
    from actlab.plugins import PluginError
    from actlab.study import StoreError, StudyError

    errors: list[type[BaseException]] = [StudyError, StoreError, UnknownNameError,
                                          ComponentSpecError, PluginError]
    for module, name in (("actlab.data.base", "DatasetError"),
                         ("actlab.study.ray_executor", "RayExecutorError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def handle_errors(func: F) -> F:
    """Turn expected errors into a one-message exit with status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _expected_errors() as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")
         ) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False)])



def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``['width=32', 'stem=cifar']`` -> ``{'width': 32, 'stem': 'cifar'}`` (YAML values)."""
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            err_console.print(f"[bold red]error:[/] model option '{pair}' is not key=value, "
                              "e.g. -o width=32")
            raise typer.Exit(2)
        options[key.strip()] = yaml.safe_load(value)
    return options
