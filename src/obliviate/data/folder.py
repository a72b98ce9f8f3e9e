"""Image folders: ``--dataset folder:PATH`` with ``PATH/train/CLASS/*`` and ``PATH/val/CLASS/*``
(or ``test/``), read by torchvision's ``ImageFolder`` with the standard evaluation transforms
(resize, centre crop, to tensor, normalise).

A folder whose decoded images fit in ``max_memory_gib`` is decoded once into tensors, so every
method works on it. A larger one (ImageNet) stays on disk as :class:`ImageFiles`, a tensor-like
that decodes the images a batch asks for; training, retrofitting, evaluation and the data-free
forget stream through it, methods that need the whole training set in memory refuse it.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from obliviate.errors import ObliviateError

PREFIX = "folder:"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TEST_SPLITS = ("val", "test")


@dataclass(frozen=True)
class FolderOptions:
    """How images become model inputs.

    Attributes:
        image_size: side of the centre crop (the model's input is ``3 x size x size``).
        resize: the shorter side is resized to this before cropping (default
            ``round(image_size * 256 / 224)``, the ImageNet convention).
        mean, std: per-channel normalisation (default ImageNet's).
        max_memory_gib: decode the folder into memory when its tensors fit in this; else
            stream it from disk.
    """

    image_size: int = 224
    resize: int | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    max_memory_gib: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= int(self.image_size) <= 4096:
            raise ObliviateError(f"image size must be 1..4096 pixels, got {self.image_size}")
        if self.resize is not None and not self.image_size <= self.resize <= 8192:
            raise ObliviateError(f"resize ({self.resize}) must be at least the image size "
                                 f"({self.image_size})")  # fmt: skip
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ObliviateError("mean and std need three values each (RGB), std > 0, e.g. "
                                 "--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225")  # fmt: skip

    @property
    def resize_to(self) -> int:
        return self.resize or round(self.image_size * 256 / 224)

    def record(self) -> dict[str, Any]:
        """The settings that define the inputs, for the model file (not the memory limit)."""
        out = asdict(self)
        out.pop("max_memory_gib")
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any] | None, **override: Any) -> FolderOptions:
        settings = dict(record or {})
        settings.update({k: v for k, v in override.items() if v is not None})
        for key in ("mean", "std"):
            if key in settings:
                settings[key] = tuple(float(v) for v in settings[key])
        try:
            return cls(**settings)
        except TypeError as exc:
            raise ObliviateError(f"bad image-folder settings: {exc}") from None


class ImageFiles:
    """The images of an ``ImageFolder`` as a lazily decoded ``[n, 3, H, W]`` float tensor.

    Indexing with an int, a slice, a list or a tensor of indices (or a boolean mask) decodes
    those images and returns a real tensor; :meth:`subset` returns another ``ImageFiles``.
    Any other torch operation is refused with a message, never by decoding everything.
    """

    dtype = torch.float32
    device = torch.device("cpu")

    def __init__(self, folder: Any, indices: list[int], sample_shape: tuple[int, ...]) -> None:
        self._folder = folder
        self._indices = list(indices)
        self._sample_shape = tuple(sample_shape)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self._indices), *self._sample_shape))

    def __len__(self) -> int:
        return len(self._indices)

    def dim(self) -> int:
        return 1 + len(self._sample_shape)

    def _positions(self, index: Any) -> list[int]:
        if isinstance(index, slice):
            return list(range(len(self)))[index]
        if isinstance(index, torch.Tensor):
            if index.dtype == torch.bool:
                return torch.nonzero(index.cpu()).flatten().tolist()
            return index.cpu().flatten().tolist()
        return [int(i) for i in index]

    def _decode(self, position: int) -> torch.Tensor:
        index = self._indices[position]
        try:
            image, _ = self._folder[index]
        except (OSError, ValueError, SyntaxError) as exc:  # PIL: unidentified, truncated, broken
            path = self._folder.samples[index][0]
            reason = type(exc).__name__ if path in str(exc) else f"{type(exc).__name__}: {exc}"
            raise ObliviateError(f"cannot read the image {path} ({reason}); remove or replace "
                                 "the file") from None  # fmt: skip
        return image

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, int):
            return self._decode(index)
        positions = self._positions(index)
        if not positions:
            return torch.empty((0, *self._sample_shape))
        if len(positions) < 8:
            return torch.stack([self._decode(p) for p in positions])
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            return torch.stack(list(pool.map(self._decode, positions)))

    def subset(self, index: Any) -> ImageFiles:
        """The images at ``index`` (positions or a boolean mask), still on disk."""
        return ImageFiles(self._folder, [self._indices[p] for p in self._positions(index)],
                          self._sample_shape)  # fmt: skip

    def to(self, *args: Any, **kwargs: Any) -> ImageFiles:
        """Itself: images are decoded on the CPU, batch by batch, and moved by the caller."""
        return self

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001
        raise ObliviateError(
            f"{getattr(func, '__name__', func)} needs the whole image set in memory, but this "
            "image folder is read from disk batch by batch (it is larger than --max-memory-gib); "
            "use a method that streams (mnemonic, the default) or raise --max-memory-gib"
        )

    def __repr__(self) -> str:
        return f"ImageFiles(n={len(self)}, shape={self._sample_shape})"


def take(x: torch.Tensor | ImageFiles, index: Any) -> torch.Tensor | ImageFiles:
    """``x[index]`` that keeps an :class:`ImageFiles` on disk."""
    return x.subset(index) if isinstance(x, ImageFiles) else x[index]


def _transform(options: FolderOptions):
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(options.resize_to),
        transforms.CenterCrop(options.image_size),
        transforms.ToTensor(),
        transforms.Normalize(options.mean, options.std),
    ])  # fmt: skip


def _image_folder(root: Path, options: FolderOptions):
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(root), transform=_transform(options))
    except (FileNotFoundError, OSError) as exc:
        raise ObliviateError(f"{root}: {exc}; an image folder needs CLASS/IMAGE files, one "
                             "subfolder per class") from None  # fmt: skip


def flip_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Horizontal flip of a random half of the batch (the folder's training augmentation)."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


@dataclass
class FolderSplits:
    """What ``folder:PATH`` holds, read (see module doc): each split's inputs (decoded, or
    :class:`ImageFiles` read on demand) and labels, the class folders' names in label order,
    and the settings; :func:`obliviate.data.load_dataset` makes the ``Dataset`` of them."""

    name: str
    train: tuple[torch.Tensor | ImageFiles, torch.Tensor]
    test: tuple[torch.Tensor | ImageFiles, torch.Tensor]
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]
    options: FolderOptions


def read_image_folder(spec: str, options: FolderOptions | None = None) -> FolderSplits:
    """The splits of ``folder:PATH`` (see module doc).

    Raises:
        ObliviateError: the path is missing, has no ``train/`` or no ``val/``/``test/``, the
            splits list different classes, or a split has no image.
    """
    options = options or FolderOptions()
    root = Path(spec[len(PREFIX):] if spec.startswith(PREFIX) else spec).expanduser()
    if not root.is_dir():
        raise ObliviateError(f"image folder {root} does not exist; give --dataset folder:PATH "
                             "with PATH/train/CLASS/*.png and PATH/val/CLASS/*.png")  # fmt: skip
    train_dir = root / "train"
    test_dir = next((root / s for s in TEST_SPLITS if (root / s).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        missing = "train/" if not train_dir.is_dir() else "val/ (or test/)"
        raise ObliviateError(f"image folder {root} has no {missing} subfolder; it needs "
                             "PATH/train/CLASS/IMAGE and PATH/val/CLASS/IMAGE (or test/)")  # fmt: skip
    train = _image_folder(train_dir, options)
    test = _image_folder(test_dir, options)
    if train.classes != test.classes:
        only = sorted(set(train.classes) ^ set(test.classes))
        raise ObliviateError(f"{train_dir} and {test_dir} list different classes (e.g. "
                             f"{only[0]!r}); both splits need the same class subfolders")  # fmt: skip
    if len(train.classes) < 2:
        raise ObliviateError(f"{train_dir} has {len(train.classes)} class folder(s); a "
                             "classifier needs at least two")  # fmt: skip
    shape = (3, options.image_size, options.image_size)
    nbytes = (len(train) + len(test)) * math.prod(shape) * 4
    in_memory = nbytes <= options.max_memory_gib * 2**30

    def split(folder) -> tuple[torch.Tensor | ImageFiles, torch.Tensor]:
        x = ImageFiles(folder, list(range(len(folder))), shape)
        if in_memory:
            x = torch.cat([x[i : i + 256] for i in range(0, len(x), 256)])
        return x, torch.tensor(folder.targets, dtype=torch.long)

    return FolderSplits(name=f"{PREFIX}{root.resolve()}", train=split(train), test=split(test),
                        classes=tuple(train.classes), input_shape=shape, options=options)  # fmt: skip


__all__ = ["FolderOptions", "FolderSplits", "ImageFiles", "read_image_folder", "take",
           "flip_augment", "PREFIX"]
