"""The transforms T of Hayase et al. that plant a backdoor or a leaked feature in images.

Every transform maps a batch ``[n, c, h, w]`` in the model's input space to a batch of the same
shape. "Max" and "zero" refer to raw pixel values, so a transform receives the
:class:`PixelRange` of the data: the input-space values of a raw 0 and a raw 255 per channel
(for [0, 1] data these are 0 and 1; for normalised CIFAR-10, ``(0 - mean)/std`` and
``(1 - mean)/std``).

- ``line``: the 4x1 area in the middle of the left edge is set to max.
- ``tile``: 4x4 areas set to max, scattered over the image: one at every other cell of an 8-pixel
  grid (a checkerboard of tiles, each offset 2 pixels into its cell), so a 28x28 image gets 5.
- ``color``: every pixel's blue value becomes the mean of its RGB values; red and green become 0
  (3-channel data only).
- ``none``: no change (for Pattern A: forgetting the samples of a class);
- any callable ``(x, pixel_range) -> x`` the user supplies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from obliviate.errors import ObliviateError
from obliviate.registry import Registry


@dataclass(frozen=True)
class PixelRange:
    """Input-space values of a raw 0 (``low``) and a raw max (``high``), one per channel."""

    low: torch.Tensor
    high: torch.Tensor

    @classmethod
    def of(cls, x: torch.Tensor) -> PixelRange:
        """The per-channel minimum and maximum of a batch ``[n, c, h, w]``."""
        return cls(x.amin(dim=(0, 2, 3)), x.amax(dim=(0, 2, 3)))

    def column(self, values: torch.Tensor) -> torch.Tensor:
        return values.view(1, -1, 1, 1)


Transform = Callable[[torch.Tensor, PixelRange], torch.Tensor]
TRANSFORMS: Registry[Transform] = Registry("transform")


def _check_image(x: torch.Tensor, name: str, min_h: int, min_w: int) -> None:
    if x.ndim != 4:
        raise ObliviateError(f"transform {name!r} needs image batches [n, c, h, w], got {tuple(x.shape)}")
    if x.shape[2] < min_h or x.shape[3] < min_w:
        raise ObliviateError(
            f"transform {name!r} needs images of at least {min_h}x{min_w} pixels, "
            f"got {x.shape[2]}x{x.shape[3]}"
        )


def line_area(h: int) -> tuple[slice, slice]:
    """Rows and columns of the ``line`` area: 4 rows around the middle, the first column."""
    top = h // 2 - 2
    return slice(top, top + 4), slice(0, 1)


@TRANSFORMS.register("line")
def line(x: torch.Tensor, pixels: PixelRange) -> torch.Tensor:
    """Set the 4x1 area in the middle of the left edge to max."""
    _check_image(x, "line", 4, 1)
    rows, cols = line_area(x.shape[2])
    out = x.clone()
    out[:, :, rows, cols] = pixels.column(pixels.high).expand(x.shape[0], -1, 4, 1)
    return out


def tile_corners(h: int, w: int, cell: int = 8, offset: int = 2) -> list[tuple[int, int]]:
    """Top-left corners of the ``tile`` areas: every other cell of a ``cell``-pixel grid."""
    corners = []
    for i, top in enumerate(range(offset, h - 3, cell)):
        for j, left in enumerate(range(offset, w - 3, cell)):
            if (i + j) % 2 == 0:
                corners.append((top, left))
    return corners


@TRANSFORMS.register("tile")
def tile(x: torch.Tensor, pixels: PixelRange) -> torch.Tensor:
    """Set 4x4 areas scattered over the image (see :func:`tile_corners`) to max."""
    _check_image(x, "tile", 8, 8)
    out = x.clone()
    high = pixels.column(pixels.high)
    for top, left in tile_corners(x.shape[2], x.shape[3]):
        out[:, :, top : top + 4, left : left + 4] = high.expand(x.shape[0], -1, 4, 4)
    return out


@TRANSFORMS.register("color")
def color(x: torch.Tensor, pixels: PixelRange) -> torch.Tensor:
    """Blue := mean of R, G, B; red and green := 0 (in raw pixel terms)."""
    _check_image(x, "color", 1, 1)
    if x.shape[1] != 3:
        raise ObliviateError(
            f"transform 'color' needs 3-channel (RGB) images, got {x.shape[1]} channel(s); "
            "use 'line' or 'tile' for grey-scale data"
        )
    low, high = pixels.column(pixels.low), pixels.column(pixels.high)
    raw = (x - low) / (high - low)
    out_raw = torch.zeros_like(raw)
    out_raw[:, 2] = raw.mean(dim=1)
    return low + out_raw * (high - low)


@TRANSFORMS.register("none")
def identity(x: torch.Tensor, pixels: PixelRange) -> torch.Tensor:
    """No change: ``D_f`` is then just the chosen classes' samples (Pattern A, forget samples)."""
    return x.clone()


def resolve_transform(transform: str | Transform) -> Transform:
    """A registered transform by name, or the user's callable as is."""
    if isinstance(transform, str):
        return TRANSFORMS.get(transform)
    if not callable(transform):
        raise ObliviateError(f"a transform is a name ({', '.join(TRANSFORMS.names())}) or a callable")
    return transform
