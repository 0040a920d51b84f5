"""The study language: zip, exclude, include, per-model overrides, variants, extends; and
property-based checks of the expansion."""

import math
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actlab.study import StudyError, load_study, parse_study


def write(tmp_path, text: str, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_zip_exclude_include_per_model_and_variants() -> None:
    study = parse_study({
        "name": "s",
        "variants": {"lrelu03": "leaky_relu(slope=0.3)"},
        "grid": {"act": ["relu", "lrelu03", "sigmoid"], "init": ["he_normal", "xavier_normal"]},
        "zip": [{"model": ["lenet5", "fixup_resnet20"], "dataset": ["fashion_mnist", "mnist"]}],
        "exclude": [{"act": "sigmoid", "init": "HE"}, {"model": "fixup_resnet20",
                                                       "act": ["relu", "lrelu03"]}],
        "include": [{"model": "fixup_resnet20", "init": "fixup", "act": "relu",
                     "dataset": "mnist"}],
        "per_model": {"fixup_resnet20": {"train": {"epochs": 7}, "batch_size": 64}},
        "seeds": 2,
    })
    specs = study.expand()
    cells = {(s.model, str(s.act), str(s.init), s.data.name) for s in specs}
    # 3 acts x 2 inits x 2 zipped (model, dataset) = 12; minus sigmoid+he (2 models) = 10;
    # minus fixup_resnet20 with relu or lrelu03 (4) = 6; plus 1 included cell = 7.
    assert len(cells) == 7
    assert len(specs) == 14  # two seeds each
    assert ("lenet5", "leaky_relu(slope=0.3)", "he_normal", "fashion_mnist") in cells
    assert ("fixup_resnet20", "relu", "fixup", "mnist") in cells
    assert not any(m == "lenet5" and d == "mnist" for m, _, _, d in cells)  # zipped
    fixup = [s for s in specs if s.model == "fixup_resnet20"]
    assert {s.train.epochs for s in fixup} == {7}
    assert {s.train.batch_size for s in fixup} == {64}
    assert {s.train.epochs for s in specs if s.model == "lenet5"} == {10}


def test_an_explicit_axis_value_wins_over_a_per_model_override() -> None:
    study = parse_study({"name": "s", "grid": {"epochs": [2, 3]},
                         "per_model": {"lenet5": {"train": {"epochs": 9, "batch_size": 16}}}})
    specs = study.expand()
    assert [s.train.epochs for s in specs] == [2, 3]
    assert {s.train.batch_size for s in specs} == {16}


def test_extends_merges_a_base_study(tmp_path) -> None:
    write(tmp_path, """
        name: base
        model: lenet5
        train: {epochs: 5, batch_size: 32, optimizer: {name: adam, lr: 0.001}}
        grid: {act: [relu, mish], init: [he_normal]}
        seeds: 3
    """, "base.yaml")
    (tmp_path / "sub").mkdir()
    path = write(tmp_path, """
        name: child
        extends: ../base.yaml
        train: {epochs: 2}
        grid: {init: [xavier_normal, he_normal]}
    """, "sub/child.yaml")
    study = load_study(path)
    specs = study.expand()
    assert study.name == "child"
    assert len(specs) == 2 * 2 * 3
    assert {s.train.epochs for s in specs} == {2}
    assert {s.train.optimizer.name for s in specs} == {"adam"}  # inherited
    assert {str(s.init) for s in specs} == {"xavier_normal", "he_normal"}


@pytest.mark.parametrize(("files", "message"), [
    ({"a.yaml": "name: a\nextends: b.yaml\n", "b.yaml": "name: b\nextends: a.yaml\n"},
     "part of a cycle"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "name: b\n"}, "needs its own `name:`"),
    ({"a.yaml": "name: a\nextends: missing.yaml\n"}, r"missing\.yaml: 1 problem"),
])
def test_bad_extends_chains(tmp_path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        write(tmp_path, text, name)
    with pytest.raises(StudyError, match=message):
        load_study(tmp_path / "a.yaml")


@pytest.mark.parametrize(("document", "message"), [
    ({"zip": [{"act": ["relu"]}]}, "zip group 1 needs at least two axes"),
    ({"zip": [{"act": ["relu", "mish"], "init": ["he_normal"]}]}, "same, non-zero number"),
    ({"zip": [{"act": ["relu", "mish"], "fruit": [1, 2]}]}, "unknown zip axis 'fruit'"),
    ({"grid": {"act": ["relu"]}, "zip": [{"act": ["relu", "mish"], "lr": [0.1, 0.2]}]},
     "more than one of grid and zip"),
    ({"exclude": [{}]}, "exclude entry must name at least one field"),
    ({"include": [{"colour": "red"}]}, "unknown include axis 'colour'"),
    ({"include": [{"act": "relu"}]}, "same run"),
    ({"per_model": {"lenet5": {"train": {"epoch": 3}}}}, "train.epoch: unknown field"),
    ({"extends": "x.yaml"}, "resolved when a study is loaded from a file"),
])
def test_bad_study_language_is_named(document: dict, message: str) -> None:
    with pytest.raises(StudyError, match=message):
        parse_study({"name": "s", **document}).expand()


ACTS = ["relu", "mish", "tanh", "sigmoid", "elu", "gelu"]
INITS = ["he_normal", "xavier_normal", "orthogonal", "lecun_normal"]


@settings(max_examples=40, deadline=None)
@given(acts=st.lists(st.sampled_from(ACTS), min_size=1, max_size=4, unique=True),
       inits=st.lists(st.sampled_from(INITS), min_size=1, max_size=3, unique=True),
       lrs=st.lists(st.sampled_from([0.1, 0.01, 0.001]), min_size=1, max_size=3, unique=True),
       seeds=st.integers(1, 3), excluded_act=st.sampled_from(ACTS),
       data=st.data())
def test_cell_count_is_the_product_minus_exclusions_plus_inclusions(
        acts, inits, lrs, seeds, excluded_act, data) -> None:
    include_act = data.draw(st.sampled_from([a for a in ACTS if a not in acts] or [None]))
    document = {"name": "p", "grid": {"act": acts, "init": inits, "lr": lrs}, "seeds": seeds,
                "exclude": [{"act": excluded_act}]}
    if include_act is not None:
        document["include"] = [{"act": include_act, "init": "default"}]
    specs = parse_study(document).expand()
    kept_acts = [a for a in acts if a != excluded_act]
    expected = len(kept_acts) * len(inits) * len(lrs) + (include_act is not None)
    assert len(specs) == expected * seeds
    assert len({s.run_id for s in specs}) == len(specs)
    # Run ids do not depend on the order keys are written in.
    shuffled = parse_study(dict(reversed(list(document.items())))).expand()
    assert {s.run_id for s in shuffled} == {s.run_id for s in specs}
    assert math.prod([len(kept_acts), len(inits), len(lrs)]) * seeds <= len(specs)


def test_the_documented_example_is_valid_and_counts_as_described() -> None:
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).parent.parent / "docs" / "study-files.md").read_text()
    document = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    document.pop("extends")
    # 4 acts x 2 inits x 2 lrs x 2 zipped = 32; - 4 (sigmoid + he) - 7 (resnet20 at lr
    # 0.05, sigmoid + he already gone) = 21; + the further grid's 2 acts x 4 lrs on the
    # base (lenet5, he_normal) = 8, two of them (lr 0.01) already planned = 6; + 1
    # included = 28 cells; x 3 seeds.
    assert len(parse_study(document).expand()) == 84


def test_further_grids_add_their_products_once() -> None:
    from actlab.study import parse_study

    study = parse_study({
        "name": "s", "train": {"optimizer": {"name": "adam", "lr": 0.001}},
        "grid": {"model": ["lenet5", "simple_cnn"], "act": ["relu", "tanh"]},
        "grids": [{"model": ["lenet5"], "act": ["relu", "tanh"], "lr": [0.0001, 0.001, 0.01]},
                  {"model": ["lenet5"], "schedule": ["fixed", "triangular"]}],
        "exclude": [{"lr": 0.01, "act": "tanh"}]})
    cells = [(s.model, str(s.act), s.train.optimizer.lr, str(s.train.schedule))
             for s in study.expand()]
    assert cells[:4] == [("lenet5", "relu", 0.001, "fixed"), ("lenet5", "tanh", 0.001, "fixed"),
                         ("simple_cnn", "relu", 0.001, "fixed"),
                         ("simple_cnn", "tanh", 0.001, "fixed")]
    # the sweep adds lr 1e-4 and 1e-2 (1e-3 is the main grid's cell, planned once), minus
    # the excluded tanh at 1e-2; the schedule grid starts from the base act (relu)
    assert cells[4:] == [("lenet5", "relu", 0.0001, "fixed"), ("lenet5", "relu", 0.01, "fixed"),
                         ("lenet5", "tanh", 0.0001, "fixed"),
                         ("lenet5", "relu", 0.001, "triangular")]


@pytest.mark.parametrize(("grids", "message"), [
    ([{}], "grids entry 1 must map axes to lists of values"),
    ([{"act": ["relu"]}, {"colour": ["red"]}], "grids entry 2: unknown grid axis 'colour'"),
    ([{"act": []}], "grids entry 1: grid axis 'act' has no values"),
])
def test_bad_further_grids_are_named(grids, message) -> None:
    from actlab.study import StudyError, parse_study

    with pytest.raises(StudyError, match=message):
        parse_study({"name": "s", "grids": grids})


def test_every_varying_field_separates_cells_in_the_runs_frame(tmp_path) -> None:
    """Runs that differ in anything but the seed never share a report cell: model options
    go into the model label, the corruption has a column, other fields a setting."""
    from typer.testing import CliRunner

    from actlab.cli import app
    from actlab.report import Report
    from actlab.study import Store

    study = tmp_path / "axes.yaml"
    study.write_text(textwrap.dedent("""
        name: axes
        model: deep_cnn
        data:
          name: synthetic
          options: {train_size: 64, test_size: 32, image_size: 16, channels: 1}
        train: {epochs: 1, batch_size: 32, optimizer: {name: sgd, lr: 0.01}}
        grid:
          model_options: [{depth: 2}, {depth: 5}]   # 5 is the default: still labelled
          act: [relu]
        grids:
          - {model_options: [{depth: 2}], batch_size: [16]}
          - {model_options: [{depth: 2}], data.corruption: [{kind: gaussian_noise, severity: 2}]}
        seeds: 1
    """))
    db = tmp_path / "s.db"
    result = CliRunner().invoke(app, ["run", str(study), "--store", str(db)])
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        runs = store.study("axes").runs()
        assert list(runs["model"]) == ["deep_cnn(depth=2)", "deep_cnn(depth=5)",
                                       "deep_cnn(depth=2)", "deep_cnn(depth=2)"]
        assert list(runs["setting"]) == ["batch_size=32", "batch_size=32", "batch_size=16",
                                         "batch_size=32"]
        assert list(runs["corruption"]) == ["none", "none", "none",
                                            "gaussian_noise(severity=2)"]
        report = Report(store, ["axes"], theory=False)
        assert report.task == ["model", "corruption"]
        assert report.cell == ["setting"]
        assert report.stats["n"].tolist() == [1, 1, 1, 1]  # four cells, not merged
