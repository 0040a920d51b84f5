"""A corpus of bad study files and command lines: each exits non-zero with a message that
names the problem, and leaves an existing run store exactly as it was."""

import shutil

import pytest
from typer.testing import CliRunner

from actlab.cli import app
from helpers import TINY_STUDY, db_rows

runner = CliRunner()

GOOD = "name: bad\ndata: {name: synthetic, options: {train_size: 100, test_size: 20}}\n"
STUDIES = [
    # (study file text, words the message must contain)
    ("name: bad\nact: relu6x\n", "unknown activation 'relu6x'. Did you mean 'relu'"),
    ("name: bad\ngrid: {act: [relu, mishh]}\n", "unknown activation 'mishh'"),
    ("name: bad\ninit: hee\n", "unknown initializer 'hee'"),
    ("name: bad\nmodel: resnet9000\n", "unknown model 'resnet9000'"),
    ("name: bad\ndata: {name: imagenet21k}\n", "unknown dataset 'imagenet21k'"),
    ("name: bad\ntrain: {epochs: zero}\n", "train.epochs: Input should be a valid integer"),
    ("name: bad\ntrain: {epochs: 0}\n", "train.epochs: Input should be greater than 0"),
    ("name: bad\ntrain: {batch_size: 1}\n", "train.batch_size"),
    ("name: bad\ntrain: {optimizer: {name: lion}}\n", "unknown optimizer 'lion'"),
    ("name: bad\ntrain: {optimizer: {lr: -1}}\n", "train.optimizer.lr"),
    ("name: bad\ntrain: {optimizer: {momentum: 1.5}}\n", "train.optimizer.momentum"),
    ("name: bad\ntrain: {epoch: 3}\n", "train.epoch: unknown field"),
    ("name: bad\ntrain: {schedule: cosine(warmup=3)}\n", "has no option 'warmup'"),
    ("name: bad\ntrain: {schedule: 'step(every=0)'}\n", "every > 0"),
    ("name: bad\ntrain: {device: tpu}\n", "train.device"),
    ("name: bad\nlearning_rate: 3\n", "unknown top-level key(s) learning_rate"),
    ("name: bad\ngrid: {activation: [relu]}\n", "unknown grid axis 'activation'"),
    ("name: bad\ngrid: {act: []}\n", "grid axis 'act' has no values"),
    ("name: bad\ngrid: {act: [relu, ReLU]}\n", "same run"),
    ("name: bad\nseeds: 0\n", "seeds must be a positive count"),
    ("name: bad\nseed: 1\n", "use `seeds:`"),
    ("name: bad name!\n", "name: String should match pattern"),
    ("act: relu\n", "name: Field required"),
    ("name: bad\nact: leaky_relu(slope=\n", "cannot parse"),
    ("name: bad\ngrid: {act: [relu\n", "YAML syntax error at line 3"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    ("name: bad\ninit: fixup\n", "Models that support fixup"),
    ("name: bad\nmodel: resnet20\nmodel_options: {depth: 32}\n", "has no option 'depth'"),
    ("name: bad\ndata: {name: synthetic, options: {image_size: 16}}\n",
     "lenet5 needs images of at least 28x28"),
    ("name: bad\ntrain: {top_k: 20}\ndata: {name: cifar10}\n", "top_k is 20"),
    ("name: bad\ndata: {corruption: {kind: fog, severity: 1}}\n", "unknown corruption 'fog'"),
    ("name: bad\ndata: {corruption: {kind: psi}}\n", "needs psi"),
    ("name: bad\ndata: {augment: fancy}\n", "unknown augmentation preset 'fancy'"),
    ("name: bad\nzip: [{act: [relu, mish], init: [he_normal]}]\n", "same, non-zero number"),
    ("name: bad\nexclude: [{colour: red}]\n", "unknown exclude axis 'colour'"),
    ("name: bad\nextends: missing.yaml\n", "file not found"),
    ("name: bad\nmodel: lenet5\ndata: {name: mnist, data_dir: /nonexistent/data}\n",
     "the data directory /nonexistent/data does not exist"),
    ("name: bad\nact: relu\nact: tanh\n", "key 'act' is given twice (lines 2 and 3)"),
    ("name: bad\nseeds: 20000\n", "the plan has up to 20,000 runs, more than 10,000: pass --yes"),
    ("name: bad\ngrid: {act: [relu, tanh]}\nexclude: [{act: [relu, tanh]}]\n",
     "the plan is empty: `exclude` removes every cell"),
    ("name: bad\ndata: {name: imagefolder}\n", "needs the option `path`"),
    ("name: bad\ninit: 'lsuv(tol=5)'\n", "0 < tol < 1"),
    ("name: bad\ndata: {name: synthetic, options: {size: 3}}\n", "has no option 'size'"),
]


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory):
    """A store holding one finished study, to check that bad input never touches it."""
    folder = tmp_path_factory.mktemp("store")
    study = folder / "tiny.yaml"
    study.write_text(TINY_STUDY.format(name="tiny", epochs=1))
    result = runner.invoke(app, ["run", str(study), "--store", str(folder / "a.db"),
                                 "--threads", "1"])
    assert result.exit_code == 0, result.output
    return folder / "a.db"


def snapshot(db) -> list:
    return [db_rows(db, f"SELECT * FROM {table} ORDER BY 1, 2") for table in
            ("studies", "runs", "epochs", "params", "layers")]


@pytest.fixture
def store(tmp_path, finished_store):
    db = tmp_path / "a.db"
    shutil.copy(finished_store, db)
    return db


@pytest.mark.parametrize(("text", "message"), STUDIES)
def test_bad_study_files(tmp_path, store, text: str, message: str) -> None:
    before = snapshot(store)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["run", str(path), "--store", str(store), "--threads", "1"],
                           terminal_width=400)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert snapshot(store) == before


@pytest.mark.parametrize(("args", "message"), [
    (["run", "{dir}/missing.yaml"], "file not found"),
    (["run", "{dir}"], "cannot read the file"),
    (["run", "{dir}/good.yaml", "--store", "/proc/actlab/a.db"], "cannot open the run store"),
    (["run", "{dir}/good.yaml", "--jobs", "0"], "--jobs"),
    (["report", "nope"], "no study named 'nope'"),
    (["runs", "tiny", "-w", "colour=red"], "cannot filter on 'colour=red'"),
    (["export", "tiny", "-f", "xml"], "unknown format 'xml'"),
    (["list", "optimisers"], "cannot list 'optimisers'"),
    (["models", "show", "resnet20", "-o", "depth=3"], "has no option 'depth'"),
    (["data", "show", "synthetic", "--corruption", "contrast(severity=9)"], "severity must be"),
    (["lr-find", "--dataset", "synthetic", "--start", "1", "--end", "0.1"], "start_lr < end_lr"),
    (["train", "--optimizer", "lion", "--dataset", "synthetic"], "unknown optimizer 'lion'"),
    (["run", "{dir}/good.yaml", "--executor", "slurm"], "'slurm' is not one of"),
    (["run", "{dir}/good.yaml", "--executor", "serial", "--jobs", "2"],
     "--jobs needs the local executor"),
    (["run", "{dir}/good.yaml", "--executor", "ray", "--jobs", "2"],
     "use --cpus-per-run/--runs-per-gpu instead"),
    (["run", "{dir}/good.yaml", "--address", "auto"], "--address is for --executor ray"),
    (["run", "{dir}/good.yaml", "--runs-per-gpu", "0"], "--runs-per-gpu"),
    (["run", "{dir}/good.yaml", "--threads", "-1"], "Invalid value for '--threads'"),
    (["run", "{dir}/good.yaml", "--threads", "0"], "Invalid value for '--threads'"),
    (["train", "--dataset", "synthetic", "--threads", "0"], "Invalid value for '--threads'"),
    (["run", "{dir}/good.yaml", "--data-dir", "{dir}/missing"], "does not exist"),
    (["run", "{dir}/good.yaml", "--data-dir", "{dir}/good.yaml"], "is a file"),
    (["run", "{dir}/binary.yaml"], "not UTF-8 text (byte 0x80 at offset 0)"),
    (["run", "{dir}/good.yaml", "--executor", "ray", "--address", "127.0.0.1:1"],
     "cannot connect to the Ray cluster at '127.0.0.1:1'"),
    (["run", "{dir}/good.yaml", "--executor", "ray", "--address", "head-node"],
     "is not auto, host:port or ray://host:port"),
])
def test_bad_command_lines(tmp_path, store, args: list[str], message: str) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "binary.yaml").write_bytes(bytes(range(128, 256)) * 3)  # not text at all
    before = snapshot(store)
    args = [a.replace("{dir}", str(tmp_path)) for a in args]
    if args[0] in ("run", "report", "runs", "export", "train") and "--store" not in args:
        args += ["--store", str(store)]
    result = runner.invoke(app, args, terminal_width=400)
    assert result.exit_code != 0, result.output
    assert message in " ".join(result.output.split()), result.output
    assert snapshot(store) == before


