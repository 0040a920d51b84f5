import gzip
import re

import numpy as np
import pytest
import torch

from actlab.data import DatasetError, DeviceData, load_dataset, make_splits
from actlab.data.idx import read_idx
from helpers import FASHION_DIR, needs_fashion, write_idx, write_mnist_dir


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress: bool) -> None:
    array = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28)).astype(np.uint8)
    path = write_idx(tmp_path / "images-idx3-ubyte", array, compress)
    np.testing.assert_array_equal(read_idx(path), array)


def test_mnist_loads_from_official_format(tmp_path) -> None:
    directory = write_mnist_dir(tmp_path / "mnist", n_train=120, n_test=30)
    data = load_dataset("mnist", str(directory))
    assert data.train_images.shape == (120, 1, 28, 28)
    assert data.train_images.dtype == torch.uint8
    assert data.test_labels.shape == (30,)
    assert data.num_classes == 10


def test_uncompressed_files_are_found_too(tmp_path) -> None:
    directory = write_mnist_dir(tmp_path / "raw", n_train=20, n_test=10, compress=False)
    assert len(load_dataset("fashion_mnist", str(directory)).train_labels) == 20


def test_wrong_magic_is_rejected(tmp_path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + b"\x00" * 20))
    with pytest.raises(DatasetError, match="not an IDX uint8 file: magic bytes 00000d03"):
        read_idx(path)


def test_truncated_data_is_rejected_with_its_path(tmp_path) -> None:
    path = write_idx(tmp_path / "t-idx3-ubyte", np.zeros((10, 28, 28), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=re.escape(str(path)) + ".*truncated or corrupt"):
        read_idx(path)


def test_labels_out_of_range_name_their_file(tmp_path) -> None:
    directory = write_mnist_dir(tmp_path / "mnist", n_train=20, n_test=10)
    write_idx(directory / "train-labels-idx1-ubyte", np.full(20, 42, dtype=np.uint8))
    with pytest.raises(DatasetError) as bad:
        load_dataset("mnist", str(tmp_path / "mnist"))
    assert f"{directory}/train-labels-idx1-ubyte.gz has label 42, outside 0..9" in str(bad.value)


def test_truncated_gzip_is_rejected(tmp_path) -> None:
    path = write_idx(tmp_path / "t-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DatasetError, match="truncated or not a valid gzip"):
        read_idx(path)


def test_missing_files_say_where_and_how(tmp_path, monkeypatch) -> None:
    import actlab.data.idx

    # without Debian's package too (it is looked at beside any data directory)
    monkeypatch.setattr(actlab.data.idx, "FASHION_SYSTEM_DIR", tmp_path / "no-debian")
    where = re.escape(str(tmp_path))
    with pytest.raises(DatasetError, match=f"not found in {where}.*apt-get install"):
        load_dataset("fashion_mnist", str(tmp_path))


def test_splits_are_seeded_disjoint_and_per_class() -> None:
    data = load_dataset("synthetic", train_size=1000, test_size=100)
    first = make_splits(data, val_fraction=0.2, train_per_class=50, split_seed=1)
    again = make_splits(data, val_fraction=0.2, train_per_class=50, split_seed=1)
    other = make_splits(data, val_fraction=0.2, train_per_class=50, split_seed=2)
    assert len(first.train) == 400
    assert len(first.val) == 100
    assert torch.equal(first.val.images, again.val.images)
    assert not torch.equal(first.val.images, other.val.images)
    train_rows = {tuple(r) for r in first.train.images.flatten(1).tolist()}
    val_rows = {tuple(r) for r in first.val.images.flatten(1).tolist()}
    assert not train_rows & val_rows
    counts = torch.bincount(torch.cat([first.train.labels, first.val.labels]))
    assert counts.tolist() == [50] * 10
    with pytest.raises(DatasetError, match="has only"):
        make_splits(data, train_per_class=500)


def test_batches_are_normalized_with_train_statistics() -> None:
    data = load_dataset("synthetic", channels=3, image_size=16, train_size=500)
    device_data = DeviceData(make_splits(data, val_fraction=0.0), torch.device("cpu"))
    batches = list(device_data.train_batches(64, torch.Generator().manual_seed(0)))
    x = torch.cat([b[0] for b in batches])
    assert x.shape == (500, 3, 16, 16)
    assert x.dtype == torch.float32
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    labels = torch.cat([b[1] for b in batches])
    assert sorted(labels.tolist()) == sorted(device_data.train.labels.tolist())


@needs_fashion
def test_fashion_mnist_from_the_debian_package() -> None:
    data = load_dataset("fashion_mnist")
    assert data.source == str(FASHION_DIR)
    assert data.train_images.shape == (60_000, 1, 28, 28)
    assert data.test_images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(data.train_labels).tolist() == [6000] * 10
