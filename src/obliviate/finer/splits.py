"""The four data sets of Hayase et al.'s formulation, built from any registered dataset.

For chosen classes C and a transform T:

- ``D_r``: samples of the other classes, clean;
- ``D_f``: samples of the classes C with T applied (the poisoned / leaking data);
- ``D_f,clean``: the same samples of C without T;
- ``D_r,extra = T(D_r)``: the other classes with T applied (never used for training; it shows
  whether the model still reacts to T).

Each has a train and a test part. Pretraining uses ``D_r ∪ D_f``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.data import Dataset, Split
from obliviate.errors import ObliviateError
from obliviate.finer.transforms import PixelRange, Transform, resolve_transform


@dataclass(frozen=True)
class TrainTest:
    """A train part and a test part."""

    train: Split
    test: Split


@dataclass(frozen=True)
class FinerData:
    """``D_r``, ``D_f``, ``D_f,clean`` and ``D_r,extra`` of one dataset, class set and transform."""

    dataset: str
    classes: tuple[int, ...]
    transform: str
    num_classes: int
    input_shape: tuple[int, ...]
    retain: TrainTest
    forget: TrainTest
    forget_clean: TrainTest
    retain_extra: TrainTest

    def pretraining(self) -> Split:
        """``D_r ∪ D_f`` (train parts): what the poisoned model is trained on."""
        return Split(
            torch.cat([self.retain.train.x, self.forget.train.x]),
            torch.cat([self.retain.train.y, self.forget.train.y]),
        )

    def named(self) -> dict[str, TrainTest]:
        """The four sets by their paper names."""
        return {"D_r": self.retain, "D_f": self.forget, "D_f,clean": self.forget_clean,
                "D_r,extra": self.retain_extra}  # fmt: skip


def _apply(transform: Transform, split: Split, pixels: PixelRange) -> Split:
    x = split.x
    image = x if x.ndim == 4 else x.unsqueeze(1)
    out = transform(image, pixels)
    if out.shape != image.shape:
        raise ObliviateError(
            f"the transform changed the batch shape from {tuple(image.shape)} to {tuple(out.shape)}"
        )
    return Split(out.reshape(x.shape), split.y)


def build_finer_data(
    dataset: Dataset, classes: list[int] | tuple[int, ...], transform: str | Transform
) -> FinerData:
    """Split ``dataset`` into the four sets for ``classes`` and ``transform``.

    Raises:
        ObliviateError: empty or out-of-range classes, all classes chosen, or a transform that
            cannot apply to these images (too small, ``color`` on grey-scale).
    """
    classes = tuple(sorted({int(c) for c in classes}))
    if not classes:
        raise ObliviateError("give at least one class whose samples carry the transform")
    dataset.check_classes(classes)
    if len(classes) >= dataset.num_classes:
        raise ObliviateError("at least one class must stay clean (D_r would be empty)")
    fn = resolve_transform(transform)
    train_images = dataset.train.x if dataset.train.x.ndim == 4 else dataset.train.x.unsqueeze(1)
    pixels = PixelRange.of(train_images)
    parts: dict[str, dict[str, Split]] = {k: {} for k in ("retain", "forget", "clean", "extra")}
    for name, split in (("train", dataset.train), ("test", dataset.test)):
        retain = split.without_classes(classes)
        clean = split.of_classes(classes)
        parts["retain"][name] = retain
        parts["clean"][name] = clean
        parts["forget"][name] = _apply(fn, clean, pixels)
        parts["extra"][name] = _apply(fn, retain, pixels)
    return FinerData(
        dataset=dataset.name,
        classes=classes,
        transform=transform if isinstance(transform, str) else getattr(transform, "__name__", "custom"),
        num_classes=dataset.num_classes,
        input_shape=tuple(dataset.input_shape),
        retain=TrainTest(parts["retain"]["train"], parts["retain"]["test"]),
        forget=TrainTest(parts["forget"]["train"], parts["forget"]["test"]),
        forget_clean=TrainTest(parts["clean"]["train"], parts["clean"]["test"]),
        retain_extra=TrainTest(parts["extra"]["train"], parts["extra"]["test"]),
    )


def validation_folds(n: int, split: str, folds: int,
                     generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """``(kept, held)`` index pairs over ``n`` forget samples: one 80 / 20 split (``holdout``,
    the paper's) or ``folds`` near-equal folds (``kfold``)."""
    if split not in ("holdout", "kfold"):
        raise ObliviateError(f"split must be 'holdout' or 'kfold', got {split!r}")
    parts = 5 if split == "holdout" else folds
    if parts < 2 or n < parts:
        raise ObliviateError(f"D_f has {n} training samples; the search needs at least "
                             f"{max(parts, 2)} and at least 2 folds")  # fmt: skip
    order = torch.randperm(n, generator=generator)
    fold_index = [order[i::parts] for i in range(parts)]
    pairs = [(torch.cat([fold_index[j] for j in range(parts) if j != k]), fold_index[k])
             for k in range(parts)]  # fmt: skip
    return pairs[:1] if split == "holdout" else pairs
