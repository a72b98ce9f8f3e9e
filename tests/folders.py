"""Image folders in the layout ``--dataset folder:PATH`` reads, written by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image_folder(root: Path, per_class: int, classes: tuple[str, ...] = ("cat", "dog"),
                       size: int = 10) -> Path:  # fmt: skip
    """``root/{train,val}/CLASS/i.png``: ``per_class`` RGB images per class and split, class
    ``k`` brighter in channel ``k`` (so a model can tell them apart). Returns ``root``."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                pixels[..., k % 3] += 150
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root
