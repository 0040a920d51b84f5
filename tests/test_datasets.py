"""CIFAR pickles, image folders, downloads, caches, corruptions and augmentation, on real
files in the official formats (written by the tests) and a real local HTTP server."""

import hashlib
import http.server
import io
import itertools
import os
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from actlab.data import DATASETS, DatasetError, DeviceData, load_dataset, make_splits
from actlab.data.augment import Augmentation
from actlab.data.corrupt import CORRUPTIONS, SEVERITY_PARAMETERS, corrupt, psnr
from actlab.data.files import Resource, download
from actlab.data.loader import channel_statistics, corrupted
from helpers import write_cifar_dir, write_image_folder

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_stand_in = pytest.mark.skipif(not (SHARED_DATA / "cifar10-jpeg.tar.gz").exists(),
                                    reason="needs ../shared/data/cifar10-jpeg.tar.gz")


# --- CIFAR ----------------------------------------------------------------------------

def test_cifar10_loads_the_official_pickle_layout(tmp_path) -> None:
    folder = write_cifar_dir(tmp_path, n_train_per_batch=20, n_test=30)
    data = load_dataset("cifar10", str(tmp_path))
    assert data.train_images.shape == (100, 3, 32, 32)
    assert data.test_images.shape == (30, 3, 32, 32)
    assert data.classes == tuple(f"class{i}" for i in range(10))
    # Channel-major rows: the first 1024 bytes of a row are the red plane.
    with (folder / "data_batch_1").open("rb") as handle:
        first = pickle.load(handle, encoding="bytes")[b"data"][0]
    assert torch.equal(data.train_images[0, 0].flatten(), torch.from_numpy(first[:1024]))
    # Pointing at the folder itself works too.
    assert len(load_dataset("cifar10", str(folder)).train_labels) == 100


def test_cifar100_fine_and_coarse_labels(tmp_path) -> None:
    write_cifar_dir(tmp_path, n_train_per_batch=40, n_test=10, hundred=True)
    fine = load_dataset("cifar100", str(tmp_path))
    coarse = load_dataset("cifar100", str(tmp_path), labels="coarse")
    assert fine.num_classes == 100
    assert coarse.num_classes == 20
    assert torch.equal(coarse.train_labels, fine.train_labels // 5)
    with pytest.raises(DatasetError, match="'fine' or 'coarse'"):
        load_dataset("cifar100", str(tmp_path), labels="both")


@pytest.mark.parametrize(("damage", "message"), [
    (lambda f: (f / "data_batch_3").write_bytes((f / "data_batch_3").read_bytes()[:500]),
     "data_batch_3 is truncated"),
    (lambda f: (f / "test_batch").unlink(), "test_batch is missing"),
    (lambda f: (f / "data_batch_2").write_bytes(pickle.dumps({b"labels": [1]})),
     "lacks the 'data' entry"),
    (lambda f: (f / "data_batch_1").write_bytes(pickle.dumps(
        {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})),
     r"expected uint8 \[N, 3072\]"),
])
def test_damaged_cifar_files_are_rejected_by_name(tmp_path, damage, message: str) -> None:
    damage(write_cifar_dir(tmp_path))
    with pytest.raises(DatasetError, match=message):
        load_dataset("cifar10", str(tmp_path))


def test_missing_cifar_offline_says_where_it_looked_and_how_to_provide(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", str(tmp_path / "empty"))
    text = str(info.value)
    assert "no cifar-10-batches-py/ in" in text
    assert "could not download" in text
    assert "cifar-10-python.tar.gz" in text
    assert "--data-dir" in text
    assert not list((tmp_path / "empty").glob("*.part"))


def test_local_cifar_archive_is_extracted(tmp_path) -> None:
    write_cifar_dir(tmp_path / "src")
    archive = tmp_path / "root" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    data = load_dataset("cifar10", str(tmp_path / "root"))
    assert len(data.train_labels) == 100
    assert (tmp_path / "root" / "cifar-10-batches-py" / "batches.meta").exists()
    assert not list((tmp_path / "root").glob(".*extracted*"))


# --- downloads --------------------------------------------------------------------------

@pytest.fixture
def file_server(tmp_path):
    """A real HTTP server on localhost serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_md5_and_is_atomic(tmp_path, file_server, monkeypatch) -> None:
    served, url = file_server
    payload = os.urandom(100_000)
    (served / "kriz").mkdir()
    (served / "kriz" / "blob.bin").write_bytes(payload)
    monkeypatch.setenv("ACTLAB_MIRROR", url)
    good = Resource("blob.bin", "https://www.cs.toronto.edu/kriz/blob.bin",
                    hashlib.md5(payload).hexdigest())
    path = download(good, tmp_path / "data")
    assert path.read_bytes() == payload
    bad = Resource("other.bin", "https://www.cs.toronto.edu/kriz/blob.bin", "0" * 32)
    with pytest.raises(DatasetError, match="expected 0000"):
        download(bad, tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["blob.bin"]


def test_cifar10_downloads_through_a_mirror(tmp_path, file_server, monkeypatch) -> None:
    served, url = file_server
    write_cifar_dir(tmp_path / "src")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as handle:
        handle.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    (served / "~kriz").mkdir()
    (served / "~kriz" / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    monkeypatch.setenv("ACTLAB_MIRROR", url)
    from actlab.data import cifar

    layout = cifar.CIFAR10.__class__(**{**cifar.CIFAR10.__dict__, "archive": Resource(
        "cifar-10-python.tar.gz", cifar.CIFAR10.archive.url,
        hashlib.md5(buffer.getvalue()).hexdigest())})
    monkeypatch.setattr(cifar, "CIFAR10", layout)
    for fresh in ("fresh", "fresh2"):  # an existing, empty data directory to download into
        (tmp_path / fresh).mkdir()
    data = load_dataset("cifar10", str(tmp_path / "fresh"))
    assert len(data.train_labels) == 100
    # The official checksum is what the real loader expects: a changed file is refused.
    monkeypatch.setattr(cifar, "CIFAR10", cifar.CIFAR10.__class__(
        **{**layout.__dict__, "archive": cifar.Resource(
            "cifar-10-python.tar.gz", layout.archive.url, "c58f30108f718f92721af3b95e74349a")}))
    with pytest.raises(DatasetError, match="MD5"):
        load_dataset("cifar10", str(tmp_path / "fresh2"))


# --- image folders ----------------------------------------------------------------------

def test_image_folder_decodes_resizes_and_caches(tmp_path) -> None:
    root = write_image_folder(tmp_path / "pets", per_class=3, size=(40, 30))
    data = load_dataset("imagefolder", path=str(root), image_size=24)
    assert data.train_images.shape == (9, 3, 24, 24)
    assert data.classes == ("cat", "dog", "frog")
    assert data.details["cache_hit"] is False
    assert data.train_images[:3, 0].float().mean() > data.train_images[:3, 1].float().mean()
    again = DATASETS.get("imagefolder")(path=str(root), image_size=24)
    assert again.details["cache_hit"] is True
    assert torch.equal(again.train_images, data.train_images)
    # A changed file invalidates the cache.
    (root / "train" / "cat" / "0000.png").touch()
    os.utime(root / "train" / "cat" / "0000.png", (1, 1))
    assert DATASETS.get("imagefolder")(path=str(root), image_size=24).details["cache_hit"] is False


def test_image_folder_relative_to_data_dir_with_val_split(tmp_path) -> None:
    write_image_folder(tmp_path / "root" / "tiny", test_name="val", size=(16, 16), suffix=".jpg")
    data = load_dataset("imagefolder", str(tmp_path / "root"), path="tiny")
    assert data.test_images.shape == (12, 3, 16, 16)


def test_image_folder_archive_is_extracted_once(tmp_path) -> None:
    write_image_folder(tmp_path / "src" / "shapes", size=(16, 16))
    archive = tmp_path / "shapes.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(tmp_path / "src" / "shapes", arcname="shapes")
    data = load_dataset("imagefolder", path=str(archive))
    assert data.train_images.shape == (12, 3, 16, 16)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda r: (r / "test" / "horse").mkdir(), "class folders the training split lacks: horse"),
    (lambda r: [p.unlink() for p in (r / "train" / "dog").iterdir()], "class 'dog' has no images"),
    (lambda r: (r / "train" / "cat" / "0001.png").write_bytes(b"not a png"), "cannot be decoded"),
    (lambda r: (r / "test").rename(r / "holdout"), "no test/ or val/"),
])
def test_broken_image_folders_fail_clearly(tmp_path, damage, message: str) -> None:
    root = write_image_folder(tmp_path / "pets", size=(16, 16))
    damage(root)
    with pytest.raises(DatasetError, match=message):
        load_dataset("imagefolder", path=str(root))


def test_mixed_sizes_need_image_size(tmp_path) -> None:
    root = write_image_folder(tmp_path / "pets", size=(16, 16))
    write_image_folder(tmp_path / "pets", classes=("cat",), per_class=1, size=(20, 20))
    (root / "train" / "cat" / "0000.png").rename(root / "train" / "cat" / "big.png")
    write_image_folder(tmp_path / "pets", classes=("cat",), per_class=1, size=(16, 16))
    with pytest.raises(DatasetError, match="set the dataset option image_size"):
        load_dataset("imagefolder", path=str(root))


def test_unknown_dataset_option_is_named() -> None:
    with pytest.raises(DatasetError, match=r"has no option 'size'; its options: .*image_size"):
        load_dataset("imagefolder", path="x", size=3)


@pytest.mark.slow
@needs_stand_in
def test_cifar10_jpeg_stand_in_loads_completely() -> None:
    data = load_dataset("cifar10_jpeg", str(SHARED_DATA))
    assert data.train_images.shape == (50_000, 3, 32, 32)
    assert data.test_images.shape == (10_000, 3, 32, 32)
    assert data.num_classes == 10
    assert data.train_labels.bincount().tolist() == [5000] * 10
    assert data.test_labels.bincount().tolist() == [1000] * 10
    mean, _ = channel_statistics(data.train_images)
    assert mean.tolist() == pytest.approx([0.491, 0.482, 0.447], abs=0.01)  # CIFAR-10's


# --- corruptions ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def natural_images() -> torch.Tensor:
    """Smooth, image-like uint8 data (blurred noise) so that blur and JPEG behave."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(12, 3, 32, 32, generator=generator)
    smooth = torch.nn.functional.avg_pool2d(noise, 5, stride=1, padding=2)
    return ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 200 + 20).to(torch.uint8)


@pytest.mark.parametrize("kind", sorted(SEVERITY_PARAMETERS))
def test_corruptions_are_seeded_in_range_and_monotone(kind: str, natural_images) -> None:
    outputs = [corrupt(natural_images, kind, seed=3, severity=s) for s in range(1, 6)]
    assert torch.equal(outputs[2], corrupt(natural_images, kind, seed=3, severity=3))
    for out in outputs:
        assert out.dtype == torch.uint8
        assert out.shape == natural_images.shape
    quality = [psnr(natural_images, out) for out in outputs]
    assert all(a >= b for a, b in itertools.pairwise(quality)), quality
    assert quality[0] > quality[-1]


def test_random_corruptions_depend_on_the_seed(natural_images) -> None:
    for kind in ("gaussian_noise", "shot_noise", "impulse_noise"):
        a = corrupt(natural_images, kind, seed=0, severity=3)
        assert not torch.equal(a, corrupt(natural_images, kind, seed=1, severity=3))


def test_psi_lower_is_noisier_and_expectation_is_kept(natural_images) -> None:
    quality = [psnr(natural_images, corrupt(natural_images, "psi", seed=0, psi=p))
               for p in (8, 16, 32, 64)]
    assert quality == sorted(quality)
    noisy = corrupt(natural_images, "shot_noise_psi", seed=0, psi=64).float()
    assert noisy.mean().item() == pytest.approx(natural_images.float().mean().item(), rel=0.02)


def test_every_corruption_has_a_definition() -> None:
    assert set(CORRUPTIONS) == {*SEVERITY_PARAMETERS, "shot_noise_psi"}
    with pytest.raises(ValueError, match="severity must be 1-5"):
        corrupt(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), "contrast", severity=6)


def test_brightness_keeps_hue_and_saturation() -> None:
    pixel = torch.tensor([[[[100]], [[50]], [[25]]]], dtype=torch.uint8)  # V = 100/255
    out = corrupt(pixel, "brightness", severity=5).float().flatten()
    expected = torch.tensor([100, 50, 25.0]) * (100 / 255 + 0.3) / (100 / 255)
    assert torch.allclose(out, expected.round(), atol=1)


def test_corrupted_dataset_applies_to_the_chosen_split() -> None:
    data = load_dataset("synthetic", train_size=50, test_size=20)
    only_test = corrupted(data, "gaussian_noise", {"severity": 5}, apply_to="test")
    assert torch.equal(only_test.train_images, data.train_images)
    assert not torch.equal(only_test.test_images, data.test_images)
    both = corrupted(data, "gaussian_noise", {"severity": 5}, apply_to="both")
    assert not torch.equal(both.train_images, data.train_images)


# --- augmentation -----------------------------------------------------------------------

def reference_crop_flip(images: torch.Tensor, padding: int, oy, ox, flips) -> torch.Tensor:
    """Per-sample loop: the straightforward reference."""
    out = []
    for image, y, x, flip in zip(images, oy.tolist(), ox.tolist(), flips.tolist(),
                                 strict=True):
        padded = torch.zeros(image.shape[0], image.shape[1] + 2 * padding,
                             image.shape[2] + 2 * padding, dtype=image.dtype)
        padded[:, padding:padding + image.shape[1], padding:padding + image.shape[2]] = image
        crop = padded[:, y:y + image.shape[1], x:x + image.shape[2]]
        out.append(crop.flip(-1) if flip else crop)
    return torch.stack(out)


def test_batched_crop_and_flip_equal_the_per_sample_reference() -> None:
    images = torch.randint(0, 256, (16, 3, 12, 10), dtype=torch.uint8)
    augmentation = Augmentation(crop_padding=3, flip=True)
    draw = augmentation.draw(16, torch.Generator().manual_seed(5))
    assert draw.flips.any()
    assert not draw.flips.all()
    expected = reference_crop_flip(images, 3, draw.offsets_y, draw.offsets_x, draw.flips)
    assert torch.equal(augmentation.apply_pixels(images, draw), expected)


def test_augmentation_is_seeded_and_only_for_training() -> None:
    data = load_dataset("synthetic", train_size=64, test_size=32, channels=3, image_size=16)
    splits = make_splits(data, val_fraction=0.25)
    plain = DeviceData(splits, torch.device("cpu"))
    augmented = DeviceData(splits, torch.device("cpu"),
                           augmentation=Augmentation(crop_padding=2, flip=True, rotation=10))

    def first_batch(source: DeviceData, seed: int) -> torch.Tensor:
        return next(source.train_batches(64, torch.Generator().manual_seed(seed)))[0]

    assert torch.equal(first_batch(augmented, 1), first_batch(augmented, 1))
    assert not torch.equal(first_batch(augmented, 1), first_batch(plain, 1))
    for split in (augmented.val, augmented.test):
        x_aug = torch.cat([x for x, _ in augmented.eval_batches(split, 100)])
        x_plain = torch.cat([x for x, _ in plain.eval_batches(split, 100)])
        assert torch.equal(x_aug, x_plain)


def test_given_normalization_is_used(tmp_path) -> None:
    data = load_dataset("synthetic", train_size=40, test_size=10)
    splits = make_splits(data, mean=[0.5], std=[0.25])
    assert splits.mean.tolist() == [0.5]
    assert splits.std.tolist() == [0.25]
    with pytest.raises(DatasetError, match="1 channel"):
        make_splits(data, mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2])


def test_channel_statistics_match_a_direct_computation() -> None:
    images = torch.randint(0, 256, (300, 3, 8, 8), dtype=torch.uint8)
    mean, std = channel_statistics(images, chunk=64)
    pixels = images.double() / 255
    assert torch.allclose(mean.double(), pixels.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.double(), pixels.std(dim=(0, 2, 3)), atol=1e-6)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
                    .exists(), reason="needs Debian's dataset-fashion-mnist package")
def test_fashion_mnist_is_found_in_debians_folder_beside_a_data_dir(tmp_path) -> None:
    """--data-dir for the CIFAR stand-in must not hide Fashion-MNIST's Debian package
    (af-wi-grid-cpu reads both)."""
    data = load_dataset("fashion_mnist", str(tmp_path), download=False)
    assert data.source == "/usr/share/datasets/fashion-mnist"
    assert len(data.train_labels) == 60000
