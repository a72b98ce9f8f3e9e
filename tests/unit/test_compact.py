"""The statistics stored in bfloat16 (obliviate.compact): every bound rounded outward and as
tight as bfloat16 allows, over whole families of floats; what a model file holds, and that a
saved and loaded model verifies the same forget."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open

import obliviate
from obliviate import compact

FLOATS = st.floats(min_value=-(2.0**127), max_value=2.0**127, allow_nan=False, width=32)
INF = float("inf")


def _one_step(b: torch.Tensor, side: float) -> torch.Tensor:
    return torch.nextafter(b.to(torch.bfloat16), torch.full_like(b, side, dtype=torch.bfloat16))


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS, min_size=1, max_size=40))
def test_upward_is_the_least_bfloat16_at_or_above(values):
    t = torch.tensor(values, dtype=torch.float32)
    up = compact.upward(t)
    assert up.dtype == torch.float32
    assert torch.equal(up.to(torch.bfloat16).float(), up)  # a bfloat16 number
    assert (up >= t).all()  # an upper bound stays one
    below = _one_step(up, -INF).float()
    assert (below < t).all()  # and no bfloat16 between: the tightest


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS, min_size=1, max_size=40))
def test_downward_is_the_greatest_bfloat16_at_or_below(values):
    t = torch.tensor(values, dtype=torch.float64)  # float64 too
    down = compact.downward(t)
    assert down.dtype == torch.float64
    assert torch.equal(down.to(torch.bfloat16).double(), down)
    assert (down <= t).all()
    above = _one_step(down, INF).double()
    assert (above > t).all()


def test_infinities_stay_and_bfloat16_numbers_do_not_move():
    t = torch.tensor([-INF, INF, 0.0, -0.0, 1.0, -2.5, 2.0**-130])
    for f in (compact.upward, compact.downward, compact.nearest):
        out = f(t)
        assert math.isinf(out[0]) and out[0] < 0 and math.isinf(out[1]) and out[1] > 0
        assert torch.equal(out[2:6], t[2:6])


def test_storable_is_bfloat16_only_when_that_holds_the_values_exactly():
    exact = torch.tensor([1.0, -0.5, 3.0])
    assert compact.storable(exact).dtype == torch.bfloat16
    old = torch.tensor([1.0, 0.1])  # a float32 file of before: kept as it is
    assert compact.storable(old).dtype == torch.float32 and compact.storable(old) is old
    counts = torch.tensor([257.0])  # not a bfloat16 number
    assert compact.storable(counts).dtype == torch.float32


def test_the_model_file_stores_the_bounds_in_bfloat16_and_loads_them_unchanged(
        digits_bundle, tmp_path):  # fmt: skip
    path = obliviate.save(digits_bundle, tmp_path / "m.safetensors")
    with safe_open(str(path), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys() if k.startswith("stats.")}
    half = {"stats.margin", "stats.feature_min", "stats.layer.directions", "stats.layer.ranges"}
    assert {k for k, v in dtypes.items() if v == "BF16"} == half, dtypes
    assert dtypes["stats.confusion"] == "F32" and dtypes["stats.layer.class_mean"] == "F32"
    loaded = obliviate.load(path)
    for name in ("margin", "feature_min"):
        assert torch.equal(getattr(loaded.stats, name), getattr(digits_bundle.stats, name))
    for name in ("directions", "ranges", "class_mean", "other_probs", "confusion"):
        assert torch.equal(getattr(loaded.stats.layer, name),
                           getattr(digits_bundle.stats.layer, name))  # fmt: skip
    # the same forget, verified the same way, from the file as from memory
    a = obliviate.forget(digits_bundle, [3], progress=False).history[-1]
    b = obliviate.forget(loaded, [3], progress=False).history[-1]
    assert a["verified"] and b["verified"] and a["strength"] == b["strength"]
    assert a["output_sha256"] == b["output_sha256"]
