"""The study files shipped in studies/: every one validates, every full-size study has a
CPU-sized variant with the same structure, and every CPU variant runs end to end and is
reported. In CI each CPU variant runs as its covering copy (every model, activation,
initializer, lr, schedule and corruption at least once, 8 images per class, 1 epoch);
docs/studies.md gives the documented sizes and their measured times."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from actlab.cli import app
from actlab.study import load_study
from actlab.study.plan import load_document
from helpers import FASHION_DIR

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
CPU_VARIANTS = [p for p in STUDIES if p.stem.endswith("-cpu")]
FULL_SIZE = [p for p in STUDIES if (p.parent / f"{p.stem}-cpu.yaml").exists()]
runner = CliRunner()


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_shipped_study_validates(path: Path) -> None:
    study = load_study(path)
    assert study.name == path.stem
    assert study.description.strip(), "say what the study tests"
    result = runner.invoke(app, ["plan", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output


def test_the_guide_studies_ship_at_full_and_cpu_size() -> None:
    names = {p.stem for p in FULL_SIZE}
    assert names == {"af-wi-grid", "tact-study", "adaptive-study", "af-tutorial",
                     "he-init-depth", "mish-anchor", "af-fair", "mish-anchor-adaptive"}


def structure(path: Path) -> dict[str, object]:
    """What a CPU variant must keep: the activations, initializers, learning rates,
    schedules and corruptions, the number of tasks and of model variants."""
    specs = load_study(path).expand()
    return {
        "acts": {s.act for s in specs}, "inits": {s.init for s in specs},
        "lrs": {s.train.optimizer.lr for s in specs},
        "schedules": {s.train.schedule for s in specs},
        "corruptions": {s.corruption_label for s in specs},
        "tasks": len({(s.model, s.data.name) for s in specs}),
        "models": len({s.model_label for s in specs}),
    }


@pytest.mark.parametrize("path", FULL_SIZE, ids=lambda p: p.stem)
def test_cpu_variants_keep_the_structure(path: Path) -> None:
    full, cpu = structure(path), structure(path.parent / f"{path.stem}-cpu.yaml")
    if path.stem == "adaptive-study":  # GoogLeNet (no width option) -> the simple CNN
        full["tasks"] = cpu["tasks"]
    if path.stem == "af-fair":  # ResNet-20 and the largest lr need a GPU's epochs
        assert cpu["lrs"] < full["lrs"]
        assert (cpu["tasks"], cpu["models"]) == (1, 1)
        full["lrs"], full["tasks"], full["models"] = cpu["lrs"], 1, 1
    assert cpu == full


def covering(document: dict) -> dict:
    """The study with its grids cut to a covering set of cells: every value of every axis
    (and every row of a zip group) appears in at least one cell, but not every combination.

    The main grid and zip groups become one zip group whose axes are cycled to the longest
    one; each further grid becomes one single-cell further grid per row of its own cycle.
    So a 7 x 3 x 3-task grid plans 7 cells instead of 63, and each model still meets an
    activation, an initializer and its own per-model settings."""
    document = copy.deepcopy(document)
    main = list((document.pop("grid", None) or {}).items())
    rows = [(tuple(group), list(zip(*group.values(), strict=True)))
            for group in document.pop("zip", None) or []]
    length = max([len(v) for _, v in main] + [len(r) for _, r in rows], default=0)
    if length:
        cycled: dict[str, list] = {axis: [values[k % len(values)] for k in range(length)]
                                   for axis, values in main}
        for axes, group_rows in rows:
            for index, axis in enumerate(axes):
                cycled[axis] = [group_rows[k % len(group_rows)][index] for k in range(length)]
        if len(cycled) == 1:  # a zip group needs two axes: a lone axis stays a grid
            document["grid"] = cycled
        else:
            document["zip"] = [cycled]
    grids = document.pop("grids", None) or []
    rows = [[{axis: values[k % len(values)] for axis, values in grid.items()}
             for k in range(max(len(values) for values in grid.values()))] for grid in grids]
    merged = _merged_rows(rows)
    if merged is not None:  # one cell covers a row of every further grid at once
        rows = [merged]
    further = [{axis: [value] for axis, value in row.items()} for grid in rows for row in grid]
    if further:
        document["grids"] = further
    return document


#: The CPU variant that trains on the CIFAR-10 stand-in itself in CI (the others on
#: synthetic 3 x 32 x 32 data in its place: the stand-in's 60,000 images, decoded and
#: shot-noised at four psi values, would cost minutes and cover no other code).
ON_THE_STAND_IN = "af-tutorial-cpu"


def shrunk(path: Path, folder: Path) -> Path:
    """The CPU variant at CI size: its covering cells (above), 8 training and 4 test images
    per class, 1 epoch, one seed; synthetic 3 x 32 x 32 data in place of the CIFAR-10
    stand-in except for :data:`ON_THE_STAND_IN` (and for it too when ../shared/data is not
    beside the checkout)."""
    document = covering(load_document(path))
    document["name"] = f"{document['name']}-ci"
    document["seeds"] = 1
    if "tune" in document:  # a tuned study: one tuning seed, every value of the space
        document["tune"]["seeds"] = 1
    document.setdefault("data", {}).update(train_per_class=8, test_per_class=4)
    document.setdefault("train", {})["epochs"] = 1
    # Per-layer statistics would add a figure per measure and task to the report; they are
    # tested for every zoo model on their own (tests/test_models.py).
    document["train"]["layer_stats"] = False
    for overrides in document.get("per_model", {}).values():
        overrides.get("train", {}).pop("epochs", None)
        overrides.get("data", {}).pop("train_per_class", None)
        if not overrides.get("train", True):
            overrides.pop("train")
        if not overrides.get("data", True):
            overrides.pop("data")
    if path.stem != ON_THE_STAND_IN or not (SHARED_DATA / "cifar10-jpeg.tar.gz").exists():
        document = _without_stand_in(document)
    target = folder / f"{path.stem}.yaml"
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


@pytest.mark.parametrize("path", CPU_VARIANTS, ids=lambda p: p.stem)
def test_the_ci_copy_covers_every_value_of_the_cpu_variant(path: Path,
                                                           tmp_path: Path) -> None:
    document = covering(load_document(path))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    cells = len(load_study(tmp_path / "c.yaml").expand())
    assert structure(tmp_path / "c.yaml") == structure(path)
    assert cells <= len(load_study(path).expand())  # equal for a single-axis grid


def _merged_rows(grids: list[list[dict]]) -> list[dict] | None:
    """The k-th rows of all further grids as one cell each (cycled to the longest grid),
    when the grids agree on every axis they share (tact-study's lr sweep, schedule and
    corruption grids on ResNet-18 with the same activations: 5 cells instead of 15);
    None when they do not."""
    if len(grids) < 2:
        return None
    merged = []
    for k in range(max(len(rows) for rows in grids)):
        cell: dict = {}
        for rows in grids:
            row = rows[k % len(rows)]
            if any(axis in cell and cell[axis] != value for axis, value in row.items()):
                return None
            cell.update(row)
        merged.append(cell)
    return merged


def _without_stand_in(document: dict) -> dict:
    synthetic = {"name": "synthetic", "options": {"train_size": 80, "test_size": 40,
                                                  "image_size": 32, "channels": 3}}

    def swap(value: object) -> object:
        if value == "cifar10_jpeg":
            return "synthetic"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    document = swap(copy.deepcopy(document))
    if document.get("data", {}).get("name") == "synthetic":
        document["data"].update(synthetic)
        return document
    # The stand-in only on some tasks (af-wi-grid: the dataset is zipped with the model):
    # synthetic options for the models that train on it, through per_model.
    cells = [dict(zip(group, row, strict=True)) for group in document.get("zip", [])
             for row in zip(*group.values(), strict=True)] + [
        {axis: values[0] for axis, values in grid.items()} for grid in document.get("grids", [])]
    models = {cell["model"] for cell in cells if cell.get("dataset") == "synthetic"}
    per_model = document.setdefault("per_model", {})
    for model in models:
        per_model.setdefault(model, {}).setdefault("data", {})["options"] = dict(
            synthetic["options"])
    return document


def only_its_seeds_differ(path: Path) -> bool:
    """Whether a CPU variant is another CPU variant with other seeds only (the adaptive
    seeds of mish-anchor-adaptive-cpu): its CI copy (one seed) would train the same runs
    again. Adaptive seeds on real training are tested in tests/test_adaptive.py and
    tests/test_ray.py."""
    document = yaml.safe_load(path.read_text())
    parent = document.get("extends", "")
    return parent.endswith("-cpu.yaml") and set(document) <= {
        "name", "description", "extends", "seeds"}


def test_a_seeds_only_variant_extends_a_cpu_variant_that_runs() -> None:
    skipped = [p for p in CPU_VARIANTS if only_its_seeds_differ(p)]
    assert [p.stem for p in skipped] == ["mish-anchor-adaptive-cpu"]
    for path in skipped:
        parent = path.parent / yaml.safe_load(path.read_text())["extends"]
        assert parent in CPU_VARIANTS
        assert not only_its_seeds_differ(parent)


@pytest.mark.slow
@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="needs Debian's dataset-fashion-mnist package")
@pytest.mark.parametrize("path", [p for p in CPU_VARIANTS if not only_its_seeds_differ(p)],
                         ids=lambda p: p.stem)
def test_cpu_variant_runs_end_to_end(path: Path, tmp_path: Path) -> None:
    study = shrunk(path, tmp_path)
    db = tmp_path / "actlab.db"
    data_dir = ["--data-dir", str(SHARED_DATA)] if SHARED_DATA.exists() else []
    # The worker's share of the cores (tests/conftest.py): more would oversubscribe them.
    threads = str(torch.get_num_threads())
    result = runner.invoke(app, ["run", str(study), "--store", str(db), *data_dir,
                                 "--threads", threads], terminal_width=200)
    assert result.exit_code == 0, result.output
    name = yaml.safe_load(study.read_text())["name"]
    out = tmp_path / "report"
    # The theory section is left out here: it is tested on its own for every model and
    # activation (tests/test_theory_study.py) and within whole reports (test_report.py).
    result = runner.invoke(app, ["report", name, "--store", str(db), "-o", str(out),
                                 "--no-svg", "--no-theory"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert list((out / "figures").glob("*.png"))
    assert not list((out / "figures").glob("*.svg"))  # --no-svg: PNG only, none linked
    assert ".svg" not in (out / "index.html").read_text()
    text = (out / "report.md").read_text()
    for section in ("## Results", "## Curves", "## Divergent and failed runs"):
        assert section in text
    if path.stem == "he-init-depth-cpu":  # train.test_each_epoch: accuracy per epoch
        assert "Test accuracy per epoch" in text
