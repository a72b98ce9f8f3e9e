"""Hayase et al.'s transforms change exactly the pixels they should; the four data sets; the
paper's normalised hard-tanh MLP."""

from __future__ import annotations

import math

import pytest
import torch

from obliviate import ObliviateError
from obliviate.finer import PixelRange, build_finer_data
from obliviate.finer.transforms import color, line, line_area, tile, tile_corners
from obliviate.models import HardTanhMLP, NormalisedHardTanh, create_model

GREY = PixelRange(torch.tensor([0.0]), torch.tensor([1.0]))


def changed(before: torch.Tensor, after: torch.Tensor) -> set[tuple[int, int]]:
    diff = (before != after).any(dim=(0, 1))
    return {tuple(i) for i in torch.nonzero(diff).tolist()}


def test_line_sets_four_left_edge_pixels_in_the_middle():
    x = torch.full((2, 1, 28, 28), 0.3)
    out = line(x, GREY)
    assert changed(x, out) == {(12, 0), (13, 0), (14, 0), (15, 0)}
    assert (out[:, :, 12:16, 0] == 1.0).all()
    assert line_area(28) == (slice(12, 16), slice(0, 1))


def test_tile_sets_exactly_its_scattered_4x4_areas():
    x = torch.full((1, 1, 28, 28), 0.2)
    out = tile(x, GREY)
    corners = tile_corners(28, 28)
    assert corners == [(2, 2), (2, 18), (10, 10), (18, 2), (18, 18)]
    expected = {(t + i, l + j) for t, l in corners for i in range(4) for j in range(4)}
    assert changed(x, out) == expected
    assert (out[0, 0][tuple(zip(*expected))] == 1.0).all()


def test_color_moves_the_mean_into_blue_in_raw_pixel_terms():
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.5])
    pixels = PixelRange((0 - mean) / std, (1 - mean) / std)
    raw = torch.tensor([0.9, 0.3, 0.6]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    out = color((raw - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1), pixels)
    back = out * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    torch.testing.assert_close(back[0, :, 0, 0], torch.tensor([0.0, 0.0, 0.6]))


def test_none_changes_nothing(digits):
    data = build_finer_data(digits, [0], "none")
    assert torch.equal(data.forget.train.x, data.forget_clean.train.x)
    assert torch.equal(data.retain_extra.test.x, data.retain.test.x)


def test_bad_transform_input_is_a_clear_error():
    with pytest.raises(ObliviateError, match="3-channel"):
        color(torch.zeros(1, 1, 8, 8), GREY)
    with pytest.raises(ObliviateError, match="at least 8x8"):
        tile(torch.zeros(1, 1, 6, 6), GREY)
    with pytest.raises(ObliviateError, match="at least 4x1"):
        line(torch.zeros(1, 1, 3, 3), GREY)


def test_four_sets_from_digits(digits):
    data = build_finer_data(digits, [0], "tile")
    n0 = int((digits.train.y == 0).sum())
    assert len(data.forget.train) == len(data.forget_clean.train) == n0
    assert len(data.retain.train) == len(digits.train) - n0
    assert torch.equal(data.forget_clean.train.x, digits.train.of_classes([0]).x)
    assert not torch.equal(data.forget.train.x, data.forget_clean.train.x)
    assert torch.equal(data.retain_extra.test.y, data.retain.test.y)
    assert len(data.pretraining()) == len(digits.train)
    # on 8x8 digits the tile lattice has one tile: (2, 2)
    assert changed(data.retain.test.x, data.retain_extra.test.x) == {
        (2 + i, 2 + j) for i in range(4) for j in range(4)}


def test_custom_transform_and_bad_requests(digits):
    def invert(x, pixels):
        return pixels.column(pixels.high) - x

    data = build_finer_data(digits, [3], invert)
    assert data.transform == "invert"
    torch.testing.assert_close(data.forget.train.x, 1 - digits.train.of_classes([3]).x)
    with pytest.raises(ObliviateError, match="3-channel"):
        build_finer_data(digits, [0], "color")
    with pytest.raises(ObliviateError, match="unknown transform 'blur'"):
        build_finer_data(digits, [0], "blur")
    with pytest.raises(ObliviateError, match="out of range"):
        build_finer_data(digits, [10], "line")
    with pytest.raises(ObliviateError, match="stay clean"):
        build_finer_data(digits, list(range(10)), "line")
    with pytest.raises(ObliviateError, match="changed the batch shape"):
        build_finer_data(digits, [0], lambda x, p: x[:, :, :4])


def test_normalised_hard_tanh_as_the_paper_writes_it():
    act = NormalisedHardTanh()
    s, g = math.sqrt(0.125), 1.0013
    x = torch.tensor([0.0, 1.0, -2.0, 2.8, 2.9, -10.0])
    expected = torch.tensor([0.0, g, -2 * g, 2.8 * g, g, -g])  # |x| < 1/(s g) = 2.824...
    torch.testing.assert_close(act(x), expected)
    assert 1 / (s * g) == pytest.approx(2.8248, abs=1e-3)


def test_hardtanh_mlp_shape_and_initialisation():
    net = create_model("hardtanh-mlp", input_shape=(1, 8, 8), num_classes=10)
    assert isinstance(net, HardTanhMLP)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 10 and all(m.in_features == 64 for m in linears)
    for m in linears[:-1]:
        torch.testing.assert_close(m.weight @ m.weight.T, torch.eye(64), atol=1e-5, rtol=0)
        assert m.bias.abs().sum() == 0
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)) for m in net.modules())
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
