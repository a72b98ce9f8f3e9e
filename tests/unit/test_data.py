"""Dataset loaders, tested on small files written in the real formats."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

import obliviate
from obliviate import ObliviateError
from obliviate.data import CIFAR_MEAN, CIFAR_STD
from obliviate.data.files import read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise a uint8 array in the IDX format (magic 0x0000 08 ndim, big-endian dims)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist_like(directory, n_train=30, n_test=12, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return arrays


def test_digits_split_is_fixed_and_scaled(digits):
    again = obliviate.load_dataset("digits")
    assert torch.equal(digits.train.x, again.train.x) and torch.equal(digits.test.y, again.test.y)
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert len(digits.train) + len(digits.test) == 1797
    assert 0.0 <= digits.train.x.min() and digits.train.x.max() <= 1.0
    assert set(digits.test.y.tolist()) == set(range(10))


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_debian_style_flat_dir(tmp_path, gz):
    arrays = write_mnist_like(tmp_path, gz=gz)
    ds = obliviate.load_dataset("fashion-mnist", data_dir=tmp_path)
    assert ds.train.x.shape == (30, 1, 28, 28) and ds.test.x.shape == (12, 1, 28, 28)
    expected = torch.tensor(arrays["train-images-idx3-ubyte"][3] / 255.0, dtype=torch.float32)
    torch.testing.assert_close(ds.train.x[3, 0], expected)
    assert ds.train.y.tolist() == (np.arange(30) % 10).tolist()
    assert ds.class_names[0] == "T-shirt/top"


def test_mnist_reads_torchvision_layout(tmp_path):
    write_mnist_like(tmp_path / "MNIST" / "raw", gz=False)
    ds = obliviate.load_dataset("mnist", data_dir=tmp_path)
    assert len(ds.train) == 30 and ds.input_shape == (1, 28, 28)


def test_download_goes_through_torchvision(tmp_path, monkeypatch):
    calls = []

    class FakeFashionMNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            write_mnist_like(tmp_path / "FashionMNIST" / "raw", gz=False)

    monkeypatch.setattr("torchvision.datasets.FashionMNIST", FakeFashionMNIST)
    monkeypatch.setattr("obliviate.data.FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    ds = obliviate.load_dataset("fashion-mnist", data_dir=tmp_path, download=True)
    assert len(ds.test) == 12
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr("obliviate.data.FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    with pytest.raises(ObliviateError, match="apt-get install dataset-fashion-mnist"):
        obliviate.load_dataset("fashion-mnist", data_dir=tmp_path)
    with pytest.raises(ObliviateError, match="--data-dir"):
        obliviate.load_dataset("mnist")


def test_bad_idx_files_are_rejected(tmp_path):
    bad = tmp_path / "x-idx3-ubyte"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ObliviateError, match="magic"):
        read_idx(bad)
    short = tmp_path / "y-idx3-ubyte"
    short.write_bytes(idx_bytes(np.zeros((4, 28, 28)))[:-10])
    with pytest.raises(ObliviateError, match="truncated"):
        read_idx(short)


def write_cifar(directory, per_batch=6, seed=0):
    rng = np.random.default_rng(seed)
    base = directory / "cifar-10-batches-py"
    base.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        with open(base / name, "wb") as fh:
            pickle.dump({"batch_label": name, "data": data, "labels": labels}, fh, protocol=2)
        batches[name] = (data, labels)
    return batches


def test_cifar10_reads_python_batches_and_normalises(tmp_path):
    batches = write_cifar(tmp_path)
    ds = obliviate.load_dataset("cifar10", data_dir=tmp_path)
    assert ds.train.x.shape == (30, 3, 32, 32) and ds.test.x.shape == (6, 3, 32, 32)
    data, labels = batches["data_batch_2"]
    assert ds.train.y[6:12].tolist() == labels
    # pixel (c=1, h=0, w=5) of the first image of batch 2: channel-major layout
    raw = data[0].reshape(3, 32, 32)[1, 0, 5] / 255.0
    expected = (raw - CIFAR_MEAN[1]) / CIFAR_STD[1]
    assert ds.train.x[6, 1, 0, 5].item() == pytest.approx(expected, rel=1e-5)
    assert ds.train_augment is not None


def test_cifar_batch_with_foreign_objects_is_refused(tmp_path):
    write_cifar(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as fh:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": ObliviateError}, fh)
    with pytest.raises(ObliviateError, match="refusing"):
        obliviate.load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_missing_batches_error(tmp_path):
    with pytest.raises(ObliviateError, match="not found"):
        obliviate.load_dataset("cifar10", data_dir=tmp_path)


def test_unknown_dataset_lists_known():
    with pytest.raises(ObliviateError, match="known: cifar10, digits, fashion-mnist, mnist"):
        obliviate.load_dataset("imagenet")
