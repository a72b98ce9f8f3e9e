"""Readers of the real on-disk formats: IDX (MNIST family) and CIFAR-10 python batches."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import torch

from obliviate.errors import ObliviateError

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (plain or ``.gz``) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise ObliviateError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(IDX_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(dims)) if dims else 0
    if len(data) - offset < count * dtype.itemsize:
        raise ObliviateError(f"{path} is truncated: expected {count} values of {dims}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (stem, stem + ".gz"):
        for sub in (directory, directory / "raw"):
            if (sub / candidate).is_file():
                return sub / candidate
    return None


def _idx_in(directory: Path, folder: str) -> dict[str, tuple[Path, Path]] | None:
    """The IDX files under ``directory`` (flat, ``raw/``, or torchvision's ``folder/raw``)."""
    for base in (directory, directory / folder):
        found = {}
        for split, (images, labels) in IDX_FILES.items():
            image_path, label_path = _find(base, images), _find(base, labels)
            if image_path is None or label_path is None:
                break
            found[split] = (image_path, label_path)
        else:
            return found
    return None


def load_idx_dataset(
    folder: str,
    search: list[Path],
    *,
    download_root: Path | None,
    download: bool,
    hint: str,
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Find the four IDX files of an MNIST-like dataset and return ``(train, test)`` tensors.

    Inputs are scaled to [0, 1] with shape ``[n, 1, 28, 28]``. ``folder`` is torchvision's
    dataset class name (``MNIST``, ``FashionMNIST``), used for its download layout.
    """
    files = next((f for d in search if (f := _idx_in(d, folder)) is not None), None)
    if files is None and download:
        if download_root is None:
            raise ObliviateError("--download needs --data-dir to know where to put the files")
        import torchvision.datasets as tvd

        for train in (True, False):
            getattr(tvd, folder)(str(download_root), train=train, download=True)
        files = _idx_in(download_root, folder)
    if files is None:
        looked = ", ".join(str(d) for d in search) or "nowhere (no --data-dir)"
        raise ObliviateError(f"{folder} IDX files not found (looked in {looked}); {hint}")
    out = []
    for split in ("train", "test"):
        images, labels = (read_idx(p) for p in files[split])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ObliviateError(f"{files[split][0]}: images and labels do not match")
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        out.append((x, torch.from_numpy(labels.astype(np.int64))))
    return out[0], out[1]


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy's array reconstruction helpers."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("codecs", "encode"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise ObliviateError(f"CIFAR batch file refers to {module}.{name}: refusing to load it")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh:
        entry = _ArrayOnlyUnpickler(fh, encoding="latin1").load()
    data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    return data, labels


def load_cifar10_arrays(
    data_dir: Path, *, download: bool
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Read ``cifar-10-batches-py`` under ``data_dir`` (torchvision downloads it there)."""
    base = data_dir / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)]
    if not all((base / n).is_file() for n in names + ["test_batch"]) and download:
        import torchvision.datasets as tvd

        tvd.CIFAR10(str(data_dir), train=True, download=True)
    missing = [n for n in names + ["test_batch"] if not (base / n).is_file()]
    if missing:
        raise ObliviateError(
            f"CIFAR-10 batches {missing} not found in {base}; pass --download where the "
            "network allows, or put the extracted cifar-10-python.tar.gz there"
        )
    parts = [_read_cifar_batch(base / n) for n in names]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, _read_cifar_batch(base / "test_batch")
