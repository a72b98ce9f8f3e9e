"""Training statistics stored in bfloat16, half the bytes of float32, still sound.

A leaf module (it imports torch only). The statistics of a 1000-class ResNet-18 took 1.27
times its weights in float32; with the tensors below in bfloat16 (float32's range, 8 bits of
mantissa) they take 0.97 times (``scripts/scale.py``'s statistics line). Rounding must not make
a guarantee false, so each stored number is rounded the way its use allows:

* a number that *bounds* something is rounded outward: an upper bound (a margin, a range's
  maximum) up, a lower bound (a feature minimum, a range's minimum) down, to the next
  bfloat16 on that side when the nearest one falls inside. The bound is then a little looser
  and still true;
* the directions ``v_c`` of the deep edit are rounded to the nearest bfloat16 when they are
  recorded, before the ranges of ``v . u`` are taken with them;
* the class means and the kept mixture's mean probabilities (mean logits in older files) stay
  float32 (the edit moves each mean exactly onto its target, and the mixture weights are as
  computed), and so do the counts (the confusion matrix: counts above 256 are not whole
  numbers in bfloat16) and the sorted margins.

Files from before keep their float32 values: a direction that is not a bfloat16 number is
stored as it is (:func:`storable`), since its ranges were taken with it unrounded.
"""

from __future__ import annotations

import torch

STORED = torch.bfloat16


def nearest(t: torch.Tensor) -> torch.Tensor:
    """``t`` rounded to the nearest bfloat16, in ``t``'s dtype."""
    return t.to(STORED).to(t.dtype)


def upward(t: torch.Tensor) -> torch.Tensor:
    """The least bfloat16 ``>= t`` elementwise (infinities and NaN as they are), in ``t``'s
    dtype: for upper bounds."""
    return _outward(t, float("inf"))


def downward(t: torch.Tensor) -> torch.Tensor:
    """The greatest bfloat16 ``<= t`` elementwise, in ``t``'s dtype: for lower bounds."""
    return _outward(t, float("-inf"))


def _outward(t: torch.Tensor, side: float) -> torch.Tensor:
    if not t.is_floating_point() or t.dtype == STORED:
        return t
    b = t.to(STORED)
    back = b.to(t.dtype)
    wrong = back < t if side > 0 else back > t
    if bool(wrong.any()):
        b = torch.where(wrong, torch.nextafter(b, torch.full_like(b, side)), b)
    return b.to(t.dtype)


def storable(t: torch.Tensor) -> torch.Tensor:
    """``t`` as it goes into the file: bfloat16 when that holds it exactly, else as it is."""
    if t.is_floating_point() and t.dtype != STORED and t.numel():
        b = t.to(STORED)
        if torch.equal(b.to(t.dtype), t):
            return b
    return t
