"""Splitting a network at a block, and L1-norm filter pruning of its front part.

LIRF initialises a deposit module from the original network's front ``T_0^(-n)`` by the
ranking pruning of Li et al. ("Pruning filters for efficient convnets"): the filters of a layer
are ranked by the sum of their absolute weights, the lowest are dropped together with their
feature maps, and the next layer loses the input kernels that read those maps.

What is pruned
    - every ``Conv2d`` or ``Linear`` whose output reaches the next weight layer through
      channel-wise operations only (activations, pooling, dropout, batch norm, which is
      sliced with it); the next layer loses the matching input kernels;
    - the last weight layer of the front, when only channel-wise operations follow it: its
      pruned maps are returned as zeros at the split point, which is exactly what removing
      the next layer's input kernels does, while the back part stays shared and unchanged;
    - inside a residual block (torchvision ``BasicBlock``/``Bottleneck``) the inner
      convolutions, as Li et al. prune ResNets: the block's output keeps its width.
A layer followed by a reshape (``Flatten``) inside the front keeps all its filters.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import nn

from obliviate.errors import ObliviateError
from obliviate.models import Classifier, Reshape

WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def split_network(model: Classifier, block: int) -> tuple[nn.Sequential, nn.Sequential]:
    """``(front, back)`` = ``(T^(-n), T^(n-))``: the first ``block`` blocks, and the remaining
    blocks with the classifier. Both share their modules with ``model`` (no copies)."""
    blocks = model.blocks()
    if not 1 <= block <= len(blocks):
        raise ObliviateError(
            f"block must be between 1 and {len(blocks)} for {type(model).__name__} "
            f"(it has {len(blocks)} blocks), got {block}"
        )
    return nn.Sequential(*blocks[:block]), nn.Sequential(*blocks[block:], model.classifier)


def is_channelwise(module: nn.Module) -> bool:
    """Whether ``module`` acts on each channel (feature) separately, so that dropping a
    channel before it drops the same channel after it (norm layers are sliced along)."""
    if isinstance(module, NORMS):
        return True
    if isinstance(module, (nn.Flatten, Reshape, nn.Sequential, *WEIGHT_LAYERS)):
        return False
    if any(True for _ in module.parameters()):
        return False
    # parameter-free elementwise or spatial ops: activations, pooling, dropout, identity
    return isinstance(
        module,
        (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.ELU,
         nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout,
         nn.Dropout2d, nn.Identity),
    ) or type(module).__name__ == "NormalisedHardTanh"  # fmt: skip


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """The front's layers in order, descending into ``nn.Sequential`` only."""
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, path + ".")
        else:
            yield path, child


def _residual_pairs(block: nn.Module) -> list[tuple[str, str, str]]:
    """``(conv, norm, next_conv)`` attribute names prunable inside a residual block."""
    names = {n for n, _ in block.named_children()}
    if {"conv1", "bn1", "conv2", "bn2", "conv3"} <= names:  # Bottleneck
        return [("conv1", "bn1", "conv2"), ("conv2", "bn2", "conv3")]
    if {"conv1", "bn1", "conv2"} <= names:  # BasicBlock
        return [("conv1", "bn1", "conv2")]
    return []


def filter_l1_norms(layer: nn.Module) -> torch.Tensor:
    """``S_j = sum |K|`` of every output filter (conv) or neuron (linear) of ``layer``."""
    if not isinstance(layer, WEIGHT_LAYERS):
        raise ObliviateError(f"cannot rank the filters of {type(layer).__name__}")
    w = layer.weight.detach()
    return w.abs().reshape(w.shape[0], -1).sum(dim=1)


def _keep_count(total: int, ratio: float) -> int:
    return max(1, total - int(round(total * ratio)))


def pruning_plan(front: nn.Module, ratio: float) -> dict[str, list[int]]:
    """The output channels each prunable layer of ``front`` keeps: the ``1 - ratio`` share with
    the largest L1 norms (at least one), in their original order. Keys are module paths."""
    if not 0.0 <= ratio < 1.0:
        raise ObliviateError(f"the pruning ratio must be in [0, 1), got {ratio}")
    plan: dict[str, list[int]] = {}

    def keep(layer: nn.Module) -> list[int]:
        norms = filter_l1_norms(layer)
        top = torch.topk(norms, _keep_count(len(norms), ratio)).indices
        return sorted(int(i) for i in top)

    for path in prunable_layers(front):
        plan[path] = keep(front.get_submodule(path))
    return plan


def prunable_layers(front: nn.Module) -> list[str]:
    """Paths of the layers of ``front`` that pruning may shrink (see the module docstring)."""
    leaves = list(_leaves(front))
    paths: list[str] = []
    for i, (path, layer) in enumerate(leaves):
        if isinstance(layer, WEIGHT_LAYERS):
            rest = leaves[i + 1 :]
            j = next((k for k, (_, m) in enumerate(rest) if not is_channelwise(m)), None)
            if j is None or isinstance(rest[j][1], type(layer)):
                paths.append(path)
        else:
            paths += [f"{path}.{conv}" for conv, _, _ in _residual_pairs(layer)]
    return paths


def _slice_out(layer: nn.Module, keep: torch.Tensor) -> None:
    layer.weight = nn.Parameter(layer.weight.detach()[keep].clone())
    if getattr(layer, "bias", None) is not None:
        layer.bias = nn.Parameter(layer.bias.detach()[keep].clone())
    if isinstance(layer, nn.Conv2d):
        layer.out_channels = len(keep)
    elif isinstance(layer, nn.Linear):
        layer.out_features = len(keep)
    elif isinstance(layer, NORMS):
        layer.num_features = len(keep)
        for name in ("running_mean", "running_var"):
            if getattr(layer, name) is not None:
                setattr(layer, name, getattr(layer, name)[keep].clone())


def _slice_in(layer: nn.Module, keep: torch.Tensor) -> None:
    layer.weight = nn.Parameter(layer.weight.detach()[:, keep].clone())
    if isinstance(layer, nn.Conv2d):
        layer.in_channels = len(keep)
    else:
        layer.in_features = len(keep)


class PrunedFront(nn.Module):
    """A pruned copy of a front part ``T^(-n)`` whose output has the original width again.

    ``layers`` is the pruned network; when its last weight layer was pruned, ``forward``
    writes its kept maps at their original channel positions and zeros elsewhere, so the
    (unchanged) back part reads it as if those maps' input kernels had been removed.
    """

    def __init__(self, layers: nn.Module, plan: dict[str, list[int]], scatter: str | None,
                 width: int | None) -> None:  # fmt: skip
        super().__init__()
        self.layers = layers
        self.plan = {k: list(v) for k, v in plan.items()}
        self.scatter_from = scatter
        self.width = width
        index = torch.tensor(plan[scatter] if scatter else [], dtype=torch.long)
        self.register_buffer("scatter_index", index, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        if self.scatter_from is None:
            return y
        out = y.new_zeros(y.shape[0], self.width, *y.shape[2:])
        out[:, self.scatter_index] = y
        return out

    def kept_parameters(self) -> int:
        """Number of parameters after pruning."""
        return sum(p.numel() for p in self.parameters())


def apply_pruning(front: nn.Module, plan: dict[str, list[int]]) -> PrunedFront:
    """A pruned deep copy of ``front`` keeping ``plan[path]`` output channels of each layer."""
    layers = copy.deepcopy(front)
    allowed = prunable_layers(layers)
    unknown = sorted(set(plan) - set(allowed))
    if unknown:
        raise ObliviateError(f"the pruning plan names layers that cannot be pruned: {unknown}")
    leaves = list(_leaves(layers))
    scatter, width = None, None
    for path, keep_list in plan.items():
        layer = layers.get_submodule(path)
        total = layer.weight.shape[0]
        if not keep_list or len(set(keep_list)) != len(keep_list) or not all(
            0 <= k < total for k in keep_list
        ):
            raise ObliviateError(f"invalid kept channels for {path} (it has {total})")
        keep = torch.tensor(keep_list, dtype=torch.long)
        *parent_path, name = path.split(".")
        parent = layers.get_submodule(".".join(parent_path)) if parent_path else layers
        pairs = {conv: (norm, nxt) for conv, norm, nxt in _residual_pairs(parent)}
        _slice_out(layer, keep)
        if name in pairs and not isinstance(parent, nn.Sequential):
            norm, nxt = pairs[name]
            _slice_out(getattr(parent, norm), keep)
            _slice_in(getattr(parent, nxt), keep)
            continue
        i = next(k for k, (p, _) in enumerate(leaves) if p == path)
        consumer = None
        for _, module in leaves[i + 1 :]:
            if isinstance(module, NORMS):
                _slice_out(module, keep)
            elif isinstance(module, WEIGHT_LAYERS):
                consumer = module
                break
        if consumer is not None:
            _slice_in(consumer, keep)
        else:
            scatter, width = path, total
    return PrunedFront(layers, plan, scatter, width)


def prune_front(front: nn.Module, ratio: float) -> PrunedFront:
    """L1-norm filter pruning of ``front`` at ``ratio`` (the share of filters dropped)."""
    return apply_pruning(front, pruning_plan(front, ratio))
