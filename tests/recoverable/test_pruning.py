"""L1 filter pruning of a front part: which filters go, and that shapes stay consistent."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from obliviate import ObliviateError, create_model
from obliviate.recoverable import apply_pruning, prune_front, pruning_plan, split_network


def _convnet(width: int = 8):
    return create_model("convnet", input_shape=(1, 8, 8), num_classes=10, width=width)


@pytest.mark.parametrize("arch,shape,block", [("convnet", (1, 8, 8), 2), ("cnn", (1, 8, 8), 1),
                                               ("fc", (1, 8, 8), 1), ("hardtanh-mlp", (64,), 3)])
def test_split_composes_to_the_model(arch, shape, block):
    model = create_model(arch, input_shape=shape, num_classes=10).eval()
    front, back = split_network(model, block)
    x = torch.rand(5, *shape)
    assert torch.allclose(back(front(x)), model(x), atol=1e-6)


def test_split_rejects_a_block_out_of_range():
    with pytest.raises(ObliviateError, match="block must be between 1 and 3"):
        split_network(_convnet(), 4)


def test_the_lowest_l1_filters_are_dropped():
    model = _convnet()
    front, _ = split_network(model, 2)
    conv = front[0][1]  # first conv of block 1 (after the reshape)
    with torch.no_grad():
        for j in range(conv.out_channels):  # distinct L1 norms, in a shuffled order
            conv.weight[j].fill_(float((j * 5) % 8 + 1) / conv.in_channels)
    norms = conv.weight.abs().sum(dim=(1, 2, 3))
    plan = pruning_plan(front, 0.5)
    kept = plan["0.1"]
    assert len(kept) == 4
    assert sorted(kept) == kept
    assert set(kept) == set(torch.topk(norms, 4).indices.tolist())
    assert min(norms[kept]) > max(norms[[j for j in range(8) if j not in kept]])


def test_pruned_front_keeps_shapes_and_equals_zeroed_filters():
    model = _convnet().eval()
    front, back = split_network(model, 2)
    pruned = prune_front(front, 0.5)
    x = torch.rand(3, 1, 8, 8)
    assert pruned(x).shape == front(x).shape
    # the next layer lost the input kernels of the dropped maps
    first, second = pruned.layers[0][1], pruned.layers[1][0]
    assert first.out_channels == second.in_channels == second.weight.shape[1] == 4
    assert pruned.kept_parameters() < sum(p.numel() for p in front.parameters())
    # ReLU nets: pruning == zeroing the dropped filters (weights and biases) in the original
    zeroed = copy.deepcopy(front)
    for path, keep in pruned.plan.items():
        layer = zeroed.get_submodule(path)
        drop = [j for j in range(layer.out_channels) if j not in keep]
        with torch.no_grad():
            layer.weight[drop] = 0
            layer.bias[drop] = 0
    assert torch.allclose(pruned(x), zeroed(x), atol=1e-5)
    assert torch.allclose(back(pruned(x)), back(zeroed(x)), atol=1e-5)


def test_ratio_zero_is_an_exact_copy_and_bad_ratios_are_rejected():
    front, _ = split_network(_convnet().eval(), 2)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(prune_front(front, 0.0)(x), front(x))
    for ratio in (-0.1, 1.0):
        with pytest.raises(ObliviateError, match="pruning ratio"):
            prune_front(front, ratio)


def test_residual_blocks_prune_their_inner_convolutions():
    model = create_model("resnet18", input_shape=(3, 8, 8), num_classes=10).eval()
    front, back = split_network(model, 2)  # stem + layer1
    pruned = prune_front(front, 0.5)
    assert set(pruned.plan) == {"1.0.conv1", "1.1.conv1"}
    block = pruned.layers[1][0]
    assert block.conv1.out_channels == block.bn1.num_features == block.conv2.in_channels == 32
    assert block.conv2.out_channels == 64  # the residual output keeps its width
    x = torch.rand(2, 3, 8, 8)
    assert back(pruned(x)).shape == (2, 10)


def test_a_plan_naming_other_layers_is_rejected():
    front, _ = split_network(_convnet(), 2)
    with pytest.raises(ObliviateError, match="cannot be pruned"):
        apply_pruning(front, {"0.0": [0]})
    with pytest.raises(ObliviateError, match="invalid kept channels"):
        apply_pruning(front, {"0.1": [0, 99]})


def test_a_layer_before_a_flatten_keeps_its_filters():
    front = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 6),
                          nn.ReLU())  # fmt: skip
    plan = pruning_plan(front, 0.5)
    assert set(plan) == {"3"}
