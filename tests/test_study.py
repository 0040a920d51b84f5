import textwrap

import pytest

from actlab.spec import RunSpec
from actlab.study import StudyError, load_study, parse_study


def write(tmp_path, text: str):
    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_expansion_is_grid_times_seeds_in_file_order() -> None:
    study = parse_study({"name": "s", "grid": {"act": ["relu", "tanh", "mish"],
                                               "init": ["he", "xavier"]}, "seeds": 2})
    specs = study.expand()
    assert len(specs) == 12
    assert [(str(s.act), str(s.init), s.seed) for s in specs[:3]] == [
        ("relu", "he_normal", 0), ("relu", "he_normal", 1), ("relu", "xavier_uniform", 0)]
    assert len({s.run_id for s in specs}) == 12


def test_dotted_and_shorthand_axes() -> None:
    study = parse_study({"name": "s", "grid": {"lr": [0.1, 0.01], "train.epochs": [1, 2]},
                         "seeds": [7]})
    specs = study.expand()
    assert [(s.train.optimizer.lr, s.train.epochs, s.seed) for s in specs] == [
        (0.1, 1, 7), (0.1, 2, 7), (0.01, 1, 7), (0.01, 2, 7)]


def test_run_id_is_stable_across_spelling_and_key_order() -> None:
    a = RunSpec.model_validate({"act": "LReLU(slope=0.3)", "init": "kaiming",
                                "train": {"epochs": 2, "batch_size": 64}})
    b = RunSpec.model_validate({"train": {"batch_size": 64, "epochs": 2},
                                "init": {"name": "he_normal", "mode": "fan_in"},
                                "act": {"name": "leaky_relu", "slope": 0.3}})
    assert a.run_id == b.run_id
    assert a.act.label == "leaky_relu(slope=0.3)"
    assert a.init.label == "he_normal"
    # Where the data lives and which device runs it do not change the result's identity.
    c = RunSpec.model_validate({**a.model_dump(), "data": {"data_dir": "/elsewhere"},
                                "train": {**a.train.model_dump(), "device": "cpu"}})
    assert c.run_id == a.run_id
    assert RunSpec.model_validate({**a.model_dump(), "seed": 1}).run_id != a.run_id
    # The hash is a pinned function of the content: changing it orphans users' stores.
    assert RunSpec().run_id == RunSpec.model_validate({}).run_id
    assert len(a.run_id) == 16
    # The id is computed once per spec; a copy with other values has its own.
    assert a.model_copy(update={"seed": 1}).run_id == RunSpec.model_validate(
        {**a.model_dump(), "seed": 1}).run_id


def test_a_copy_of_a_study_with_other_values_expands_to_its_own_plan() -> None:
    study = parse_study({"name": "s", "grid": {"act": ["relu", "tanh"]}, "seeds": 2})
    assert len(study.expand()) == 4
    assert len(study.model_copy(update={"seeds": 1}).expand()) == 2
    assert len(study.expand()) == 4


@pytest.mark.parametrize(("text", "message"), [
    ("name: s\nact: relu6x\n", r"act: unknown activation 'relu6x'. Did you mean 'relu'"),
    ("name: s\ngrid: {act: [relu, mishh]}\n", r"act: unknown activation 'mishh'.*cell act=mishh"),
    ("name: s\ninit: hee\n", r"init: unknown initializer 'hee'"),
    ("name: s\nmodel: resnet9000\n", r"model: unknown model 'resnet9000'.*lenet5"),
    ("name: s\ndata: {name: imagenet21k}\n", r"data.name: unknown dataset"),
    ("name: s\ntrain: {epochs: zero}\n", r"train.epochs: Input should be a valid integer"),
    ("name: s\ntrain: {epochs: 0}\n", r"train.epochs: Input should be greater than 0"),
    ("name: s\ntrain: {optimizer: {name: lion}}\n", r"unknown optimizer 'lion'"),
    ("name: s\ntrain: {optimizer: {lr: -1}}\n", r"train.optimizer.lr: Input should be greater"),
    ("name: s\ntrain: {epoch: 3}\n", r"train.epoch: unknown field"),
    ("name: s\nlearning_rate: 3\n", r"unknown top-level key\(s\) learning_rate"),
    ("name: s\ngrid: {activation: [relu]}\n", r"unknown grid axis 'activation'"),
    ("name: s\ngrid: {act: []}\n", r"grid axis 'act' has no values"),
    ("name: s\nseeds: 0\n", r"seeds must be a positive count"),
    ("name: bad name!\n", r"name: String should match pattern"),
    ("act: relu\n", r"name: Field required"),
    ("name: s\ngrid: {act: [relu, ReLU]}\n", r"same run"),
    ("name: s\nact: leaky_relu(slope=\n", r"cannot parse"),
    ("name: s\ngrid: {act: [relu\n", r"YAML syntax error at line 3"),
    ("- just\n- a list\n", r"must be a YAML mapping"),
    ("name: s\ntrain: {schedule: cosine(warmup=3)}\n", r"schedule 'cosine' has no option 'warmup'"),
    ("name: s\nmodel: resnet20\nmodel_options: {depth: 32}\n",
     r"model resnet20 has no option 'depth'; its options: width \(default 16\)"),
    ("name: s\ndata: {corruption: {kind: psi}}\n", r"shot_noise_psi needs psi"),
    ("name: s\ndata: {corruption: {kind: gaussian_noise, psi: 8}}\n", r"takes severity 1-5"),
    ("name: s\ndata: {corruption: {kind: fog, severity: 1}}\n", r"unknown corruption 'fog'"),
    ("name: s\ndata: {corruption: {kind: contrast, severity: 7}}\n", r"less than or equal to 5"),
    ("name: s\ndata: {augment: fancy}\n", r"unknown augmentation preset 'fancy'"),
    ("name: s\ndata: {mean: [0.5]}\n", r"give both mean and std"),
    ("name: s\ndata: {name: synthetic, options: {image_size: 16}}\n",
     r"model lenet5 does not fit synthetic \(1x16x16\): lenet5 needs images of at least 28x28"),
    ("name: s\nmodel: resnet18\nmodel_options: {stem: imagenet}\ndata: {name: mnist}\n",
     r"resnet18 needs images of at least 32x32"),
    ("name: s\ntrain: {top_k: 20}\ndata: {name: cifar10}\n", r"top_k is 20 but cifar10 has 10"),
    ("name: s\ntrain: {top_k: 50}\ndata: {name: cifar100, options: {labels: coarse}}\n",
     r"cifar100 has 20 classes"),
    ("name: s\ngrid: {model: [resnet20, lenet5]}\nmodel_options: {shortcut: B}\n",
     r"model lenet5 has no option 'shortcut'.*cell model=lenet5"),
])
def test_invalid_study_files_name_the_problem(tmp_path, text: str, message: str) -> None:
    with pytest.raises(StudyError, match=message):
        load_study(write(tmp_path, text))


def test_all_problems_are_reported_together(tmp_path) -> None:
    path = write(tmp_path, "name: s\ngrid: {act: [relu6x, mishh], init: [hee, he]}\n")
    with pytest.raises(StudyError) as info:
        load_study(path)
    text = str(info.value)
    assert "relu6x" in text
    assert "mishh" in text
    assert "hee" in text
    assert str(path) not in text or "problem(s)" in text


def test_model_options_at_their_default_are_the_same_cell() -> None:
    explicit = RunSpec.model_validate({"model": "resnet18", "model_options": {"width": 64}})
    implicit = RunSpec.model_validate({"model": "resnet18"})
    assert explicit.model_options == {}
    assert explicit.run_id == implicit.run_id
    narrow = RunSpec.model_validate({"model": "resnet18", "model_options": {"width": 32}})
    assert narrow.model_options == {"width": 32}
    assert narrow.run_id != implicit.run_id


def test_missing_file(tmp_path) -> None:
    with pytest.raises(StudyError, match="file not found"):
        load_study(tmp_path / "nope.yaml")


def test_shipped_quickstart_validates() -> None:
    study = load_study("studies/quickstart.yaml")
    specs = study.expand()
    assert study.name == "quickstart"
    assert len({s.act for s in specs}) >= 5
    assert len({s.init for s in specs}) == 2
    assert len(specs) == len({s.act for s in specs}) * 2 * 2
    assert {s.model for s in specs} == {"lenet5"}
    assert specs[0].data.name == "fashion_mnist"
