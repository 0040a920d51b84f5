"""The component catalog (actlab/catalog.py): its remembered answers are the registries'
own, survive the process, are renewed with the code, keep bad questions with their
message, and never hold an answer about a component registered outside actlab."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from actlab import catalog
from actlab.activations import ACTIVATIONS, resolve_act
from actlab.data import DATASETS
from actlab.inits import INITS, resolve_init
from actlab.models import MODELS, model_options
from actlab.schedules import SCHEDULES, resolve_schedule


@pytest.fixture
def fresh_catalog(tmp_path, monkeypatch):
    """An empty catalog in its own cache folder."""
    monkeypatch.setenv("ACTLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(catalog, "_answers", catalog._Answers())
    return tmp_path


def reread() -> None:
    """Forget this process's answers: the next question reads the file."""
    catalog._answers.path, catalog._answers.answers = None, {}


def test_answers_are_the_registries_and_survive_the_process(fresh_catalog) -> None:
    live = {("activation", n): resolve_act(n).label for n in ACTIVATIONS if n != "expr"}
    live[("activation", 'expr("x * tanh(x)")')] = resolve_act('expr("x * tanh(x)")').label
    live |= {("initializer", n): resolve_init(n).label for n in INITS}
    live |= {("schedule", n): resolve_schedule(n).label for n in SCHEDULES}
    asked = {key: catalog.component_label(*key) for key in live}
    assert asked == live
    assert {n: catalog.model_options(n) for n in MODELS} == {
        n: json.loads(json.dumps(model_options(n))) for n in MODELS}
    assert [row["name"] for row in catalog.listing("dataset")] == list(DATASETS)
    (file,) = fresh_catalog.glob("catalog-*.json")
    reread()
    assert {key: catalog.component_label(*key) for key in live} == live
    assert file.stat().st_mtime_ns == next(fresh_catalog.glob("catalog-*.json")).stat(
    ).st_mtime_ns  # answered from the file: nothing new to write


def test_a_bad_question_keeps_its_message(fresh_catalog) -> None:
    for _ in range(2):  # asked, then answered from the catalog
        with pytest.raises(ValueError, match=r"unknown activation 'relu6x'\. Did you mean"):
            catalog.component_label("activation", "relu6x")
        with pytest.raises(ValueError, match="leaky_relu slope must be in"):
            catalog.component_label("activation", "leaky_relu(slope=2)")
        reread()


def test_steady_answers_are_the_same_and_bad_questions_still_fail(fresh_catalog) -> None:
    """Inside catalog.steady() (a plan's expansion) repeated questions are answered from
    memory, with the same values and the same errors as outside it."""
    outside = catalog.component_label("activation", "lrelu(slope=0.3)")
    with catalog.steady():
        for _ in range(3):
            assert catalog.component_label("activation", "lrelu(slope=0.3)") == outside
            with pytest.raises(ValueError, match=r"unknown activation 'relu6x'"):
                catalog.component_label("activation", "relu6x")
    assert catalog._steady is None


def test_a_new_version_of_the_code_starts_a_new_catalog(fresh_catalog, monkeypatch) -> None:
    catalog.component_label("activation", "lrelu")
    (old,) = fresh_catalog.glob("catalog-*.json")
    monkeypatch.setattr(catalog, "fingerprint", lambda: "0" * 16)
    assert catalog.component_label("activation", "mish") == "mish"
    assert [p.name for p in fresh_catalog.glob("catalog-*.json")] == [f"catalog-{'0' * 16}.json"]
    assert not old.exists()


OWN_ACTIVATION = """
from actlab.spec import RunSpec
try:
    RunSpec.model_validate({"act": "mine"})
except ValueError as exc:
    print("rejected:", "unknown activation 'mine'" in str(exc))
if sys.argv[1] == "register":
    from actlab.activations import ActProperties, Activation
    from actlab.activations.base import register_activation

    @register_activation("mine")
    class Mine(Activation):
        properties = ActProperties(formula="x")

        def forward(self, x):
            return x

    print("accepted:", RunSpec.model_validate({"act": "mine"}).act.label)
"""


@pytest.mark.slow
def test_a_users_own_component_is_never_remembered(tmp_path) -> None:
    """Rejected before it is registered and accepted after, in one process; rejected
    again in the next process, which does not register it: no answer about it was kept."""
    env = {**os.environ, "ACTLAB_CACHE": str(tmp_path)}

    def run(mode: str) -> list[str]:
        code = "import sys\n" + OWN_ACTIVATION
        return subprocess.run([sys.executable, "-c", code, mode], env=env, check=True,
                              capture_output=True, text=True).stdout.splitlines()

    assert run("register") == ["rejected: True", "accepted: mine"]
    assert run("plain") == ["rejected: True"]
