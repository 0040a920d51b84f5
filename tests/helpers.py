"""Test helpers: writers for the official data formats and a tiny study file."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                                   reason="needs Debian's dataset-fashion-mnist package")


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, the format of MNIST and Fashion-MNIST."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                     *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_mnist_dir(directory: Path, n_train: int = 200, n_test: int = 50,
                    compress: bool = True) -> Path:
    """A small MNIST-format dataset: class-dependent images so it is learnable."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 50, size=(n, 28, 28))
        for i, label in enumerate(labels):
            images[i, label * 2:label * 2 + 6, :] = 250
        write_idx(directory / f"{split}-images-idx3-ubyte", images, compress)
        write_idx(directory / f"{split}-labels-idx1-ubyte", labels, compress)
    return directory


TINY_STUDY = """
name: {name}
model: lenet5
data:
  name: synthetic
  options: {{train_size: 300, test_size: 100, image_size: 28, channels: 1}}
train:
  epochs: {epochs}
  batch_size: 32
  optimizer: {{name: sgd, lr: 0.01}}
grid:
  act: [relu, tanh]
  init: [he_normal, xavier_normal]
seeds: 2
"""


def write_cifar_dir(root: Path, n_train_per_batch: int = 20, n_test: int = 30,
                    hundred: bool = False) -> Path:
    """Small CIFAR-10 (or -100) batches in the official pickle layout under ``root``."""
    import pickle

    rng = np.random.default_rng(0)
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True, exist_ok=True)
    classes = 100 if hundred else 10

    def batch(n: int, offset: int) -> dict:
        labels = [(i + offset) % classes for i in range(n)]
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        if hundred:
            return {b"data": data, b"fine_labels": labels,
                    b"coarse_labels": [label // 5 for label in labels]}
        return {b"data": data, b"labels": labels, b"batch_label": b"testing"}

    def dump(name: str, content: dict) -> None:
        with (folder / name).open("wb") as handle:
            pickle.dump(content, handle)

    if hundred:
        dump("train", batch(5 * n_train_per_batch, 0))
        dump("test", batch(n_test, 3))
        dump("meta", {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                      b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]})
    else:
        for index in range(1, 6):
            dump(f"data_batch_{index}", batch(n_train_per_batch, index))
        dump("test_batch", batch(n_test, 0))
        dump("batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)]})
    return folder


def write_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog", "frog"),
                       per_class: int = 4, size: tuple[int, int] = (40, 30),
                       test_name: str = "test", suffix: str = ".png") -> Path:
    """Real image files: train/<class>/*.png and test/<class>/*.png, class-coloured."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", test_name):
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 60, size=(size[1], size[0], 3), dtype=np.uint8)
                pixels[..., index % 3] += 150
                Image.fromarray(pixels).save(folder / f"{i:04d}{suffix}")
    return root


def db_rows(db: Path, query: str, *params: object) -> list[tuple]:
    """Rows of ``query`` on the SQLite file ``db`` (a fresh connection, closed after)."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def study_outcome(db) -> dict:
    """Per run of a store: its epoch curves and final metrics, timings left out (what two
    executions of one study on CPU must agree on exactly)."""
    curves: dict[str, list] = {}
    for run_id, *values in db_rows(db, "SELECT run_id, epoch, train_loss, train_acc, val_loss, "
                                       "val_acc, lr FROM epochs ORDER BY run_id, epoch"):
        curves.setdefault(run_id, []).append(tuple(values))
    finals = {}
    for run_id, final in db_rows(db, "SELECT run_id, final FROM runs"):
        metrics = json.loads(final)
        finals[run_id] = {k: v for k, v in metrics.items()
                          if k != "peak_memory_mb" and not k.startswith("seconds_to_")}
    return {"curves": curves, "finals": finals}


class Callbacks:
    """A run observer made of plain functions (any of them may be left out), for tests
    that only watch one kind of event."""

    def __init__(self, epoch=None, params=None, layers=None, checkpoint=None) -> None:
        self.epoch, self.params, self.layers, self.checkpoint = epoch, params, layers, checkpoint

    def epoch_finished(self, metrics) -> None:
        if self.epoch:
            self.epoch(metrics)

    def params_recorded(self, epoch: int, values) -> None:
        if self.params:
            self.params(epoch, values)

    def layers_recorded(self, epoch: int, values) -> None:
        if self.layers:
            self.layers(epoch, values)

    def checkpoint_written(self, epoch: int) -> None:
        if self.checkpoint:
            self.checkpoint(epoch)


class FakeTrainer:
    """Stands in for the executors' ``run_one`` (monkeypatched): one epoch whose
    validation and test accuracy ``metrics(spec)`` gives, every run counted in
    ``trained``; after ``stop_after`` runs it raises KeyboardInterrupt, as a kill between
    two runs would."""

    def __init__(self, stop_after: int | None = None) -> None:
        from collections import Counter

        self.trained: Counter[str] = Counter()
        self.stop_after = stop_after

    def metrics(self, spec) -> tuple[float, float]:
        """(validation accuracy, test accuracy) of ``spec``'s run."""
        raise NotImplementedError

    def __call__(self, spec, observer, checkpoint=None):
        from actlab.train.core import EpochMetrics, RunResult

        if self.stop_after is not None and sum(self.trained.values()) >= self.stop_after:
            raise KeyboardInterrupt
        self.trained[spec.run_id] += 1
        val, test = self.metrics(spec)
        metrics = EpochMetrics(epoch=1, train_loss=0.5, train_acc=0.8, val_loss=1 - val,
                               val_acc=val, lr=spec.train.optimizer.lr, epoch_time=0.01,
                               images_per_s=1e4, test_loss=1 - test, test_acc=test)
        observer.epoch_finished(metrics)
        return RunResult("completed", [metrics], final={"test_acc": test, "best_val_acc": val,
                                                         "test_loss": 1 - test})

