"""A user's own components without a fork (docs/extending.md): plug-in files and modules,
installed plug-ins, the formula language, identity by source digest, bad plug-ins as
one-line errors, `actlab check activation`, and the documented SERF example run as
written from a folder outside the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from actlab import plugins
from actlab.activations import ACTIVATIONS, resolve_act
from actlab.activations.formula import FormulaError
from actlab.cli import app
from actlab.spec import RunSpec
from actlab.study import Store, load_study
from actlab.theory.check import check_activation, verdict

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SERF = (ROOT / "examples" / "serf" / "serf.py").read_text()
STUDY = """
name: mine
plugins: [acts.py]
model: lenet5
data: {name: synthetic, options: {train_size: 120, test_size: 40}}
train: {epochs: 1, batch_size: 40}
grid:
  act: [relu, serf]
"""


@pytest.fixture(autouse=True)
def _no_plugin_outlives_its_test():
    """Plug-ins loaded by a test are taken out after it: the other tests of this worker
    iterate the registries and expect actlab's own components only."""
    before = {source.digest for source in plugins.loaded()}
    yield
    for source in plugins.loaded():
        if source.digest not in before:
            plugins.unload(source)


def db_statuses(store: Store) -> list[tuple]:
    return [(r["init"], r["seed"], r["status"], r.get("reason") or r.get("error"))
            for r in store.study("mine").records() if r["status"] != "completed"]


def write_study(folder: Path, plugin: str = SERF, study: str = STUDY) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acts.py").write_text(plugin)
    (folder / "study.yaml").write_text(study)
    return folder / "study.yaml"


def run_ids(path: Path) -> dict[str, str]:
    return {str(spec.act): spec.run_id for spec in load_study(path).expand()}


def test_a_plugin_file_registers_its_activation_like_a_builtin(tmp_path) -> None:
    specs = load_study(write_study(tmp_path)).expand()
    assert [str(s.act) for s in specs] == ["relu", "serf"]
    entry = ACTIVATIONS.entry("serf")
    assert entry.meta["plugin"] == plugins.PluginSource(
        origin="acts.py", kind="file", text=SERF).digest
    assert ACTIVATIONS.entry("relu").meta == {}  # actlab's own entries stay its own
    x = torch.linspace(-5, 5, 101)
    expected = x * torch.erf(F.softplus(x))
    assert torch.allclose(resolve_act("serf").build()(x), expected)
    assert specs[1].plugin_digests() == {"act": entry.meta["plugin"]}
    assert specs[0].plugin_digests() == {}


def test_editing_a_plugin_changes_its_runs_ids_only_and_moving_it_changes_none(
        tmp_path) -> None:
    before = run_ids(write_study(tmp_path / "a"))
    moved = write_study(tmp_path / "b" / "elsewhere", study=STUDY.replace("acts.py",
                                                                            "../elsewhere/acts.py"))
    assert run_ids(moved) == before
    edited = run_ids(write_study(tmp_path / "c", plugin=SERF.replace(
        "x * torch.erf(F.softplus(x))", "x * torch.erf(F.softplus(x)) * 1.0")))
    assert edited["relu"] == before["relu"]
    assert edited["serf"] != before["serf"]


def test_an_edited_plugin_needs_replan_and_reruns_only_its_runs(tmp_path) -> None:
    study = write_study(tmp_path)
    db = str(tmp_path / "a.db")
    first = runner.invoke(app, ["run", str(study), "--store", db])
    assert first.exit_code == 0, first.output
    (tmp_path / "acts.py").write_text(SERF.replace("F.softplus(x))", "F.softplus(x)) * 1.0"))
    refused = runner.invoke(app, ["run", str(study), "--store", db], terminal_width=200)
    assert refused.exit_code == 2
    assert re.search(r"plugins\.acts\.py: \"\w{16}\" -> \"\w{16}\"",
                     " ".join(refused.output.split()))
    again = runner.invoke(app, ["run", str(study), "--store", db, "--replan"],
                          terminal_width=200)
    assert again.exit_code == 0, again.output
    assert "(1 run now" in again.output
    report = runner.invoke(app, ["report", "mine", "--store", db, "-o",
                                 str(tmp_path / "report"), "--no-theory", "--no-svg"])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Appendix: plug-ins" in text
    assert "F.softplus(x)) * 1.0" in text  # the source the plan was made with
    assert "1 finished run of an earlier plan" in text


def test_the_study_travels_to_workers_with_its_plugin_text(tmp_path) -> None:
    """--jobs workers run the plug-in from the study, not from the file: the file is
    gone by the time they start."""
    study = write_study(tmp_path, study=STUDY + "seeds: 2\n")
    loaded = load_study(study)
    (tmp_path / "acts.py").unlink()
    from actlab.study.executors import run_study_local

    with Store(tmp_path / "a.db") as store:
        summary = run_study_local(store, loaded, jobs=2, threads_per_job=1)
    assert summary.counts["completed"] == 4


def test_every_initializer_and_cohort_training_take_a_plugin_activation(tmp_path) -> None:
    """The plug-in's activation under every initializer (the matched gain is its own),
    trained as cohorts (vmap over seeds and initializers) as the built-ins are."""
    from actlab.inits import INITS
    from actlab.study.executors import run_study

    inits = [name for name in INITS if name != "fixup"]  # fixup: its own models, below
    study = STUDY.replace("  act: [relu, serf]", f"  act: [serf]\n  init: [{', '.join(inits)}]")
    study += "seeds: 2\n"
    path = write_study(tmp_path, study=study)
    fixup = write_study(tmp_path / "fixup", study=STUDY.replace(
        "model: lenet5", "model: fixup_resnet20\ninit: fixup").replace(
        "[relu, serf]", "[serf]").replace("name: mine", "name: mine-fixup"))
    with Store(tmp_path / "a.db") as store:
        summary = run_study(store, load_study(path), cohort=4)
        # N(0, 1) weights blow a 5-layer net up, with this activation as with any other.
        assert summary.counts["completed"] == 2 * (len(inits) - 1), db_statuses(store)
        assert {init for init, *_ in db_statuses(store)} == {"normal"}
        assert run_study(store, load_study(fixup)).counts["completed"] == 1
    specs = load_study(path).expand()
    assert {str(s.init) for s in specs} >= {"he_normal", "xavier_normal", "lsuv", "orthogonal"}


def test_theory_and_lr_find_take_a_plugin(tmp_path) -> None:
    (tmp_path / "acts.py").write_text(SERF)
    plugin = ["--plugin", str(tmp_path / "acts.py")]
    theory = runner.invoke(app, ["theory", "--acts", "serf,relu", "--inits", "he_normal",
                                 "--depth", "4", "--width", "8", "--no-svg", "-o",
                                 str(tmp_path / "theory"), *plugin])
    assert theory.exit_code == 0, theory.output
    assert "| serf | x * erf(ln(1 + exp(x)))" in (tmp_path / "theory" / "report.md").read_text()
    found = runner.invoke(app, ["lr-find", "--act", "serf", "--dataset", "synthetic",
                                "--steps", "12", "--out", str(tmp_path / "lr.png"), *plugin])
    assert found.exit_code == 0, found.output
    assert "suggested range" in found.output


@pytest.mark.parametrize(("plugin", "message"), [
    (None, "plugin file acts.py does not exist"),
    ("import torch\ndef f(:\n    pass\n", "plugin acts.py, line 2: syntax error"),
    ("import torch\nimport no_such_module_xyz\n",
     "plugin acts.py, line 2: cannot import: No module named 'no_such_module_xyz'"),
    ("from actlab import Activation, register_activation\n\n"
     "@register_activation('relu')\nclass R(Activation):\n    def forward(self, x):\n"
     "        return x\n",
     "plugin acts.py, line 3: DuplicateNameError: activation 'relu' is already registered; "
     "choose another name, or pass override=True"),
    ("from actlab import Activation, register_activation\n\n"
     "@register_activation('serf')\nclass S(Activation):\n    pass\n",
     "plugin acts.py, line 3: TypeError: activation 'serf' (S) has no forward(x)"),
    ("from actlab import register_activation\n\n@register_activation('serf')\nclass S:\n"
     "    pass\n", "must be a class derived from actlab.Activation"),
    ("from torch import nn\nfrom actlab import register_model\n\n"
     "@register_model('own_relu_net')\n"
     "def own_relu_net(act, num_classes=10, in_channels=1, image_size=28):\n"
     "    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), act.build(4), nn.Conv2d(4, 4, 3),\n"
     "                         nn.ReLU(), nn.Flatten(), nn.LazyLinear(num_classes))\n",
     "model own_relu_net builds nonlinearities other than the requested activation"),
    (SERF, "function 'open' is not allowed in formula 'open(x)'"),
])
def test_a_bad_plugin_is_a_one_line_error_and_the_store_is_untouched(
        tmp_path, plugin: str | None, message: str) -> None:
    study = STUDY
    if "own_relu_net" in (plugin or ""):
        study = STUDY.replace("model: lenet5", "model: own_relu_net").replace(
            "  act: [relu, serf]", "  act: [relu]")
    if "open(x)" in message:
        study = STUDY.replace("[relu, serf]", "[relu, 'expr(\"open(x)\")']")
    path = write_study(tmp_path, plugin=plugin or "", study=study)
    if plugin is None:
        (tmp_path / "acts.py").unlink()
    db = tmp_path / "a.db"
    with Store(db):
        pass
    before = db.read_bytes()
    result = runner.invoke(app, ["run", str(path), "--store", str(db)], terminal_width=400)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert db.read_bytes() == before


def test_override_replaces_a_builtin_and_unloading_puts_it_back(tmp_path) -> None:
    own = ("import torch\nfrom actlab import Activation, register_activation\n\n"
           "@register_activation('relu', override=True)\nclass MyReLU(Activation):\n"
           "    def forward(self, x):\n        return torch.clamp(x, min=0) * 2\n")
    (tmp_path / "own.py").write_text(own)
    builtin = ACTIVATIONS.get("relu")
    source = plugins.read(str(tmp_path / "own.py"))
    plugins.load([source])
    assert ACTIVATIONS.get("relu").__name__ == "MyReLU"
    assert RunSpec().run_id != "93c652400442a47f"  # its runs are not the built-in's
    plugins.unload(source)
    assert ACTIVATIONS.get("relu") is builtin
    assert RunSpec().run_id == "93c652400442a47f"


def test_own_initializer_model_and_dataset(tmp_path) -> None:
    """The other three registries through the public API, trained together."""
    code = textwrap.dedent('''
        import numpy as np
        import torch
        from torch import nn
        from actlab import Initializer, register_dataset, register_init, register_model

        @register_init("half_normal")
        class HalfNormal(Initializer):
            uses_gain = True
            def __init__(self, scale: float = 0.5):
                self.scale = scale
            def init_weight(self, weight, gain):
                fan_in = weight[0].numel()
                nn.init.normal_(weight, std=self.scale * gain / fan_in ** 0.5)

        @register_model("tiny_net")
        def tiny_net(act, num_classes=10, in_channels=1, image_size=28, width=4):
            return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), act.build(width),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(width, num_classes))

        @register_dataset("stripes")
        def stripes(data_dir=None, size: int = 60):
            rng = np.random.default_rng(0)
            labels = rng.integers(0, 2, size)
            images = np.zeros((size, 8, 8), np.uint8)
            for i, label in enumerate(labels):
                images[i, :, ::2 if label else 1] = 255
            return images, labels, images[:20], labels[:20], ["even", "odd"]
        ''')
    study = ("name: own\nplugins: [acts.py]\nmodel: tiny_net\ninit: half_normal(scale=0.8)\n"
             "data: {name: stripes, options: {size: 80}}\ntrain: {epochs: 1, batch_size: 20}\n")
    path = write_study(tmp_path, plugin=code, study=study)
    result = runner.invoke(app, ["run", str(path), "--store", str(tmp_path / "a.db")])
    assert result.exit_code == 0, result.output
    with Store(tmp_path / "a.db") as store:
        (record,) = store.study("own").records()
    assert record["status"] == "completed"
    assert record["init"] == "half_normal(scale=0.8)"


def test_an_installed_package_offers_plugins_through_entry_points(tmp_path) -> None:
    site = tmp_path / "site"
    (site / "myacts-1.0.dist-info").mkdir(parents=True)
    (site / "myacts-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: myacts\nVersion: 1.0\n")
    (site / "myacts-1.0.dist-info" / "entry_points.txt").write_text(
        "[actlab.plugins]\nserf = myacts\n")
    (site / "myacts.py").write_text(SERF)
    env = {**os.environ, "PYTHONPATH": str(site), "ACTLAB_CACHE": str(tmp_path / "cache"),
           "COLUMNS": "200"}
    for _ in range(2):  # the second answers from the component catalog
        listed = subprocess.run([sys.executable, "-m", "actlab.cli", "list", "activations",
                                 "se*"], env=env, capture_output=True, text=True, check=True)
        assert "serf" in listed.stdout
    env.pop("PYTHONPATH")
    gone = subprocess.run([sys.executable, "-m", "actlab.cli", "list", "activations",
                           "se*"], env=env, capture_output=True, text=True, check=True)
    assert "serf" not in gone.stdout  # uninstalled: not remembered from the catalog


# -- the formula language -------------------------------------------------------------
def test_a_formula_is_the_function_it_writes() -> None:
    x = torch.linspace(-8, 8, 401).view(1, 1, -1)
    mish = resolve_act('expr("x * tanh(softplus(x))")').build(1)
    assert torch.allclose(mish(x), F.mish(x), atol=1e-6)
    swish = resolve_act('expr("a * x * sigmoid(b * x)", a=1.0, b=1.0, per_channel=true)'
                        ).build(3)
    assert {n: tuple(p.shape) for n, p in swish.named_parameters()} == {"a": (3,), "b": (3,)}
    image = torch.randn(2, 3, 4, 4)
    assert torch.allclose(swish(image), F.silu(image), atol=1e-6)
    elu = resolve_act({"name": "expr", "formula": "where(x > 0, x, a * (exp(x) - 1))",
                       "a": 1.0}).build()
    assert torch.allclose(elu(x), F.elu(x), atol=1e-6)
    assert resolve_act('expr("x*tanh(softplus(x))")').label != mish.spec.label  # the text


@pytest.mark.parametrize(("formula", "message"), [
    ("x.real", "attribute access"),
    ("x[0]", "indexing"),
    ("__import__('os')", "does not use x"),
    ("x * __import__('os')", "function '__import__' is not allowed"),
    ("exec(x)", "function 'exec' is not allowed"),
    ("lambda: x", "lambda"),
    ("x if x > 0 else 0", "use where(condition, a, b)"),
    ("y * x", "unknown name 'y'"),
    ("log(x)", "is not finite at x = -10"),
    ("1 / x", "is not finite at x = 0"),
    ("x + 'a'", "this constant (only numbers)"),
])
def test_a_formula_outside_the_language_is_refused(formula: str, message: str) -> None:
    with pytest.raises(FormulaError, match=re.escape(message)):
        resolve_act({"name": "expr", "formula": formula}).build()


# -- actlab check activation ------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n != "expr"])
def test_every_builtin_activation_passes_the_check(name: str) -> None:
    checks = check_activation(name, cost=False)
    assert verdict(checks) == "ready: every check passed", [c for c in checks if c.ok is False]


BROKEN = '''
import torch
from actlab import Activation, register_activation


class _Tanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 30, torch.full_like(x, float("nan")), torch.tanh(x))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - torch.tanh(x) ** 2)


@register_activation("broken")
class Broken(Activation):
    def forward(self, x):
        return _Tanh.apply(x)
'''


def test_check_names_what_is_wrong_with_a_broken_plugin(tmp_path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    result = runner.invoke(app, ["check", "activation", "broken", "--plugin",
                                 str(tmp_path / "broken.py"), "--no-cost"], terminal_width=200)
    assert result.exit_code == 1, result.output
    assert "f(x) is not finite at x = 31" in result.output
    assert re.search(r"FAIL\s+│ double backward", result.output)
    assert re.search(r"pass\s+│ gradient", result.output)
    assert "double backward" in result.output.split("not ready:")[1]


# -- the documented example --------------------------------------------------------------
def documented(kind: str) -> dict[str, str]:
    """docs/extending.md's blocks: each ``<!-- file: NAME -->`` block, and the tested
    bash block (under the key "commands")."""
    text = (ROOT / "docs" / "extending.md").read_text()
    blocks = {name: body for name, body in re.findall(
        r"<!-- file: (\S+) -->\s*```\w+\n(.*?)```", text, re.DOTALL)}
    match = re.search(r"<!-- tested: tests/test_plugins.py[^>]*-->\s*```bash\n(.*?)```",
                      text, re.DOTALL)
    assert match, "docs/extending.md lost its tested block"
    return blocks if kind == "files" else {"commands": match.group(1)}


def test_the_documented_files_are_the_examples() -> None:
    files = documented("files")
    assert set(files) == {"serf.py", "serf-study.yaml"}
    for name, body in files.items():
        assert (ROOT / "examples" / "serf" / name).read_text() == body


@pytest.mark.slow
def test_the_documented_serf_study_runs_from_its_own_folder(tmp_path) -> None:
    """The commands of docs/extending.md, as written, in a copy of examples/serf outside
    the repository: check, a --jobs 2 run and the report with SERF beside ReLU, Swish
    and Mish, its gain and theory rows and the plug-in's source."""
    folder = tmp_path / "serf"
    shutil.copytree(ROOT / "examples" / "serf", folder)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "COLUMNS": "200"}
    done = subprocess.run(["bash", "-e", "-c", documented("commands")["commands"]],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ready: every check passed" in done.stdout
    assert "10 completed" in done.stdout
    report = (folder / "results" / "reports" / "serf-vs-baselines" / "report.md").read_text()
    for act in ("relu", "silu", "mish", "serf", "expr(formula='x * erf(softplus(x))')"):
        assert f"| {act} |" in report
    assert "| serf | x * erf(ln(1 + exp(x)))" in report  # its theory catalog row
    assert "### serf.py (digest " in report
    serf = re.search(r"^\| serf \| \**([\d.]+ ± [\d.]+) \(n=2\)", report, re.MULTILINE)
    formula = re.search(r"^\| expr\(formula='x \* erf\(softplus\(x\)\)'\) \| "
                        r"\**([\d.]+ ± [\d.]+) \(n=2\)", report, re.MULTILINE)
    assert serf
    assert formula
    assert serf.group(1) == formula.group(1)  # one function, written twice
