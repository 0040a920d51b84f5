"""Learnable activation parameters: stored per site and epoch, optimizer groups."""

import pytest

from actlab.models import build_model
from actlab.study import Store, StudyView, parse_study
from actlab.study.executors import run_study
from actlab.train.optim import build_optimizer, parameter_groups


def test_short_lenet_run_stores_changing_parameter_trajectories(tmp_path) -> None:
    study = parse_study({
        "name": "learnable", "model": "lenet5",
        "data": {"name": "synthetic", "options": {"train_size": 300, "test_size": 50}},
        "train": {"epochs": 2, "batch_size": 32, "optimizer": {"name": "sgd", "lr": 0.01}},
        "grid": {"act": ["tact", "arelu", "combo_adaptive"]}, "seeds": 1})
    with Store(tmp_path / "db") as store:
        summary = run_study(store, study)
        assert summary.counts["completed"] == 3
        params = StudyView(store, store.study_id("learnable"), "").params()
    assert sorted(params["epoch"].unique()) == [0, 1, 2]
    for act, names in (("tact", {"alpha", "beta"}), ("arelu", {"a", "b", "c", "d"}),
                       ("combo_adaptive", {"X", "Y", "Z", "logits[0]", "atanh.a", "arelu.d"})):
        rows = params[params["act"] == act]
        assert set(rows["site"]) == {"features.1", "features.4", "classifier.2",
                                     "classifier.4"}
        assert names <= set(rows["name"])
        wide = rows.pivot_table(index=["site", "name"], columns="epoch", values="value")
        assert (wide[2] != wide[0]).any(), f"{act} parameters did not change"
    combo = params[(params["act"] == "combo_adaptive") & params["name"].isin(["X", "Y", "Z"])]
    sums = combo.groupby(["site", "epoch"])["value"].sum()
    assert sums.to_numpy() == pytest.approx(1.0)
    start = combo[combo["epoch"] == 0]["value"]
    assert start.to_numpy() == pytest.approx(1 / 3)
    # Its 18 parameters are drawn as the first 8 panels (a figure 18 panels wide is read by
    # no one); the report's table lists all of them.
    from actlab.report.figures import parameter_finals, parameter_trajectories

    for draw in (parameter_trajectories, parameter_finals):
        figure = draw(params, "combo_adaptive")
        assert len(figure.axes) == 8
        assert figure.axes[0].get_title().endswith("logits[0]")
        figure.clf()


def test_parameter_groups_and_weight_decay_exemption() -> None:
    model = build_model("lenet5", act="prelu", in_channels=1, image_size=28)
    groups = parameter_groups(model)
    assert len(groups["act"]) == 4  # one PReLU slope per site
    assert not groups["norm"]
    optimizer = build_optimizer(model, "sgd", lr=0.1, weight_decay=0.5,
                                decay_act_and_norm=False, act_lr_scale=0.1)
    decays = {g["weight_decay"] for g in optimizer.param_groups}
    assert decays == {0.5, 0.0}
    act_group = next(g for g in optimizer.param_groups if g["lr_scale"] == 0.1)
    assert act_group["weight_decay"] == 0.0
    assert {id(p) for p in act_group["params"]} == {id(p) for p in groups["act"]}
    total = sum(len(g["params"]) for g in optimizer.param_groups)
    assert total == len(list(model.parameters()))


def test_activation_lr_scale_is_applied_by_the_engine() -> None:
    from actlab.spec import RunSpec
    from actlab.train.engine import run_one
    from helpers import Callbacks

    frozen_acts = RunSpec.model_validate({
        "model": "lenet5", "act": "prelu",
        "data": {"name": "synthetic", "options": {"train_size": 200, "test_size": 20}},
        "train": {"epochs": 1, "batch_size": 32,
                  "optimizer": {"name": "sgd", "lr": 0.01, "act_lr_scale": 1e-12}}})
    values: list = []
    run_one(frozen_acts, Callbacks(params=lambda epoch, v: values.append(v)))
    start, end = dict(((s, n), x) for s, n, x in values[0]), dict(
        ((s, n), x) for s, n, x in values[-1])
    assert start == pytest.approx(end, abs=1e-9)
