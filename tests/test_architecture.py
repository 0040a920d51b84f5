"""The shape of the code (docs/design.md, "Layers"): every import, at module level or
inside a function, points down the layers, no two packages import each other, the
commands that must start fast import no torch, pandas or matplotlib, functions stay
short, and comments cite papers or docs, not files outside the repository."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "actlab"

#: From the bottom up; a module may import its own layer and the layers below it.
LAYERS = [
    {"registry", "components", "paths", "progress", "catalog", "plugins",
     "paired"},  # no torch
    {"spec"},  # run specs: no torch
    {"activations", "schedules", "data"},  # components
    {"models"},
    {"inits"},
    {"train"},
    {"study"},
    {"analysis"},
    {"report"},
    {"theory"},  # registers its report section (entry point): above the report
    {"cli"},
]
RANK = {unit: rank for rank, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str | None:
    """``actlab.train.engine`` -> ``train``; ``actlab`` itself (the facade) -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "actlab" else None


def imports() -> list[tuple[str, str, str]]:
    """(importing file, importing unit, imported actlab module) for every import."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        unit = unit_of(module.removesuffix(".__init__"))
        if unit is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "actlab":  # from actlab import catalog, __version__
                    found += [(str(path.relative_to(SRC)), unit, f"actlab.{a.name}")
                              for a in node.names if a.name in RANK]
                elif node.module.startswith("actlab."):
                    found.append((str(path.relative_to(SRC)), unit, node.module))
            elif isinstance(node, ast.Import):
                found += [(str(path.relative_to(SRC)), unit, a.name) for a in node.names
                          if a.name.startswith("actlab.")]
    return found


def test_every_package_has_a_layer() -> None:
    units = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if p.name != "__init__.py" and not p.name.startswith("__")
             and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert units == set(RANK)


def test_imports_point_down_the_layers() -> None:
    upward = [f"{path} ({unit}) imports {target}" for path, unit, target in imports()
              if unit_of(target) is not None and RANK[unit_of(target)] > RANK[unit]]
    assert upward == []


def test_no_two_packages_import_each_other() -> None:
    edges = {(unit, unit_of(target)) for _, unit, target in imports()
             if unit_of(target) not in (None, unit)}
    assert sorted((a, b) for a, b in edges if (b, a) in edges) == []


def test_train_and_study_meet_only_through_the_spec() -> None:
    pairs = {(unit, unit_of(target)) for _, unit, target in imports()}
    assert ("train", "study") not in pairs
    assert ("report", "train") not in pairs
    assert ("report", "theory") not in pairs


def test_no_private_names_across_packages() -> None:
    crossing = []
    for path in sorted(SRC.rglob("*.py")):
        unit = path.relative_to(SRC).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    unit_of(node.module) not in (None, unit):
                crossing += [f"{path.relative_to(SRC)}: {node.module}.{a.name}"
                             for a in node.names if a.name.startswith("_")]
    assert crossing == []


FAST_COMMANDS = {
    "the CLI": "import actlab.cli",
    "run specs and plans": "import actlab.spec, actlab.study.plan",
    "the store": "import actlab.study.store, actlab.study.frames, actlab.study.progress",
}


@pytest.mark.parametrize("what", sorted(FAST_COMMANDS))
def test_fast_paths_import_no_torch_pandas_or_matplotlib(what: str) -> None:
    code = (f"import sys; {FAST_COMMANDS[what]}; "
            "print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


#: Functions allowed past MAX_LINES, each with the reason its docstring gives.
MAX_LINES = 80


def long_functions() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if length > MAX_LINES and "Long because" not in doc:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} "
                                 f"({length} lines)")
    return found


def test_functions_are_short_or_say_why_not() -> None:
    assert long_functions() == []


def test_run_one_reads_in_at_most_60_lines() -> None:
    tree = ast.parse((SRC / "train" / "engine.py").read_text())
    (run_one,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run_one"]
    assert run_one.end_lineno - run_one.lineno + 1 <= 60


def test_comments_cite_nothing_outside_the_repository() -> None:
    citing = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if "GUIDE" in p.read_text()]
    assert citing == []


def test_torch_has_no_upper_bound_and_the_set_up_pins_it() -> None:
    """Users install actlab beside the torch they have (a newer one, a CUDA one); only
    the set-up command pins the CPU build of this project's machines."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = SRC.parents[1]
    requirements = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "dependencies"]
    (torch_requirement,) = [r for r in requirements if r.startswith("torch")]
    assert "<" not in torch_requirement
    assert "torch==2.13.0" in (root / "Makefile").read_text()
