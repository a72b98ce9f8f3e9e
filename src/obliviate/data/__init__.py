"""Dataset registry and the tensors every other module works on.

Each registered loader returns a :class:`Dataset`: train and test tensors (float inputs in the
model's input space, long labels), the number of classes and the input shape. Real loaders are
kept real: IDX files for (Fashion-)MNIST, the python pickle batches for CIFAR-10, with
torchvision doing the download where the network allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from obliviate.data.files import (
    load_cifar10_arrays,
    load_idx_dataset,
)
from obliviate.data.folder import PREFIX as FOLDER_PREFIX
from obliviate.data.folder import FolderOptions, FolderSplits, flip_augment, read_image_folder, take
from obliviate.errors import ObliviateError
from obliviate.registry import Registry

__all__ = ["DATASETS", "Dataset", "Split", "load_dataset", "FASHION_MNIST_SYSTEM_DIR",
           "FolderOptions", "FOLDER_PREFIX"]

#: Where Debian's package ``dataset-fashion-mnist`` puts its files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (float, ``[n, *input_shape]``) and labels ``y`` (long, ``[n]``)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def of_classes(self, classes: list[int] | tuple[int, ...]) -> Split:
        """The samples whose label is in ``classes``."""
        mask = torch.isin(self.y, torch.as_tensor(list(classes), dtype=self.y.dtype))
        return Split(take(self.x, mask), self.y[mask])

    def without_classes(self, classes: list[int] | tuple[int, ...]) -> Split:
        """The samples whose label is not in ``classes``."""
        mask = ~torch.isin(self.y, torch.as_tensor(list(classes), dtype=self.y.dtype))
        return Split(take(self.x, mask), self.y[mask])

    def per_class_subset(self, per_class: int, seed: int = 0) -> Split:
        """At most ``per_class`` samples of every class, drawn with ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        keep = []
        for c in torch.unique(self.y).tolist():
            idx = torch.nonzero(self.y == c).flatten()
            keep.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
        index = torch.cat(keep).sort().values
        return Split(take(self.x, index), self.y[index])


BatchAugment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Dataset:
    """A classification dataset: train/test splits plus what a model needs to know about it."""

    name: str
    train: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()
    train_augment: BatchAugment | None = field(default=None, compare=False)
    #: settings that define the inputs (an image folder's resize, crop and normalisation),
    #: recorded in the model file so that later commands read the data the same way
    options: dict = field(default_factory=dict, compare=False)

    def check_classes(self, classes: list[int] | tuple[int, ...]) -> None:
        """Raise if a class index is outside ``0 .. num_classes - 1``."""
        bad = [c for c in classes if not 0 <= int(c) < self.num_classes]
        if bad:
            raise ObliviateError(
                f"class {bad[0]} is out of range for {self.name} "
                f"(classes are 0..{self.num_classes - 1})"
            )


DatasetLoader = Callable[..., Dataset]
DATASETS: Registry[DatasetLoader] = Registry("dataset")


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    options: dict | FolderOptions | None = None,
) -> Dataset:
    """Load the registered dataset ``name``, or an image folder ``folder:PATH``.

    Args:
        name: a name from ``DATASETS`` (``digits``, ``fashion-mnist``, ``mnist``, ``cifar10``)
            or ``folder:PATH`` (``PATH/train/CLASS/*``, ``PATH/val/CLASS/*`` or ``test/``).
        data_dir: where to look for (and download to) the files.
        download: let torchvision fetch missing files (needs network access).
        options: an image folder's :class:`~obliviate.data.folder.FolderOptions` (or their
            record, as a model file keeps it); ignored for registered datasets.

    Example:
        >>> ds = load_dataset("digits")
        >>> ds.input_shape, ds.num_classes
        ((1, 8, 8), 10)
    """
    if name.startswith(FOLDER_PREFIX):
        if not isinstance(options, FolderOptions):
            options = FolderOptions.from_record(options)
        return _folder_dataset(read_image_folder(name, options))
    loader = DATASETS.get(name)
    if data_dir is not None and not download and not Path(data_dir).is_dir():
        raise ObliviateError(f"data directory {data_dir} does not exist; give the folder that "
                             "holds the dataset's files (or --download to fetch them there)")  # fmt: skip
    return loader(data_dir=Path(data_dir) if data_dir else None, download=download)


@DATASETS.register("digits")
def _digits(data_dir: Path | None = None, download: bool = False) -> Dataset:
    """scikit-learn's bundled 8x8 digits, pixels scaled to [0, 1], fixed stratified 70/30 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.tensor(bunch.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(bunch.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        list(range(len(y))), test_size=0.3, random_state=0, stratify=bunch.target
    )
    train_index, test_index = torch.tensor(train_idx), torch.tensor(test_idx)
    return Dataset(
        name="digits",
        train=Split(x[train_index], y[train_index]),
        test=Split(x[test_index], y[test_index]),
        num_classes=10,
        input_shape=(1, 8, 8),
        class_names=tuple(str(i) for i in range(10)),
    )


FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


@DATASETS.register("fashion-mnist")
def _fashion_mnist(data_dir: Path | None = None, download: bool = False) -> Dataset:
    """Fashion-MNIST: ``data_dir``, then Debian's package dir, then a torchvision download."""
    search = [d for d in (data_dir, FASHION_MNIST_SYSTEM_DIR) if d is not None]
    train, test = load_idx_dataset(
        "FashionMNIST",
        search,
        download_root=data_dir,
        download=download,
        hint="install Debian's package (apt-get install dataset-fashion-mnist), pass "
        "--data-dir with the IDX files, or --download where the network allows",
    )
    return Dataset(
        "fashion-mnist", Split(*train), Split(*test), 10, (1, 28, 28), FASHION_CLASSES
    )


@DATASETS.register("mnist")
def _mnist(data_dir: Path | None = None, download: bool = False) -> Dataset:
    """MNIST from IDX files in ``data_dir`` (or downloaded there by torchvision)."""
    search = [d for d in (data_dir,) if d is not None]
    train, test = load_idx_dataset(
        "MNIST",
        search,
        download_root=data_dir,
        download=download,
        hint="pass --data-dir with the MNIST IDX files, or --download where the network allows",
    )
    names = tuple(str(i) for i in range(10))
    return Dataset("mnist", Split(*train), Split(*test), 10, (1, 28, 28), names)


CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def cifar_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (padding 4) and horizontal flip, per sample, on a batch tensor."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator).tolist()
    dy = torch.randint(0, 9, (n,), generator=generator).tolist()
    flip = (torch.rand(n, generator=generator) < 0.5).tolist()
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


@DATASETS.register("cifar10")
def _cifar10(data_dir: Path | None = None, download: bool = False) -> Dataset:
    """CIFAR-10 from the python batches, normalised with the official code's mean/std."""
    if data_dir is None:
        raise ObliviateError("cifar10 needs --data-dir (add --download to fetch it there)")
    (xtr, ytr), (xte, yte) = load_cifar10_arrays(data_dir, download=download)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)

    def to_tensor(images):  # uint8 [n, 32, 32, 3] -> normalised float [n, 3, 32, 32]
        return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 - mean) / std

    return Dataset(
        "cifar10",
        Split(to_tensor(xtr), torch.from_numpy(ytr).long()),
        Split(to_tensor(xte), torch.from_numpy(yte).long()),
        10,
        (3, 32, 32),
        CIFAR_CLASSES,
        train_augment=cifar_augment,
    )


def _folder_dataset(folder: FolderSplits) -> Dataset:
    """The :class:`Dataset` of an image folder's splits (:func:`~obliviate.data.folder.
    read_image_folder`): named after its path, its classes after the class folders, flipped
    at random while training."""
    return Dataset(
        name=folder.name,
        train=Split(*folder.train),
        test=Split(*folder.test),
        num_classes=len(folder.classes),
        input_shape=folder.input_shape,
        class_names=folder.classes,
        train_augment=flip_augment,
        options=folder.options.record(),
    )
