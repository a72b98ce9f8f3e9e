"""Where a deep forget edits a model (:class:`FeatureLayer`) and how it reads that layer: its
inputs as rows, its weight as a matrix, and a residual block's view (:func:`residual_layer`).
The architectures name their layer with these (:meth:`obliviate.models.Classifier.feature_layer`);
:mod:`obliviate.deep` edits it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.errors import ObliviateError


@dataclass
class FeatureLayer:
    """Where a deep forget edits a model, and how a pre-activation change reaches the features.

    Attributes:
        name: dotted name of an ``nn.Linear`` or ``nn.Conv2d`` (zero padding, one group) whose
            output, through a monotone activation and pooling, gives the penultimate features.
        channel_lipschitz: per output channel, the largest change of a feature fed by that
            channel per unit change of the channel's pre-activation (sigmoid: 1/4, ReLU: 1, a
            batch norm in between: its scale).
        features_per_channel: penultimate features fed by each channel, channel-major (an
            average pool to 2x2: 4).
        nonnegative: the penultimate features are never negative (sigmoid, ReLU).
        residual: dotted name of the block whose *input* is added, unchanged (an identity
            shortcut), to ``output_scale`` times the layer's pre-activation plus a constant
            (a residual block's last convolution and batch norm); ``None`` for a plain layer.
            The redirect then moves the sum, not the branch alone: a shortcut that still
            carries the forget class would otherwise hand it to the features untouched.
        output_scale: per output channel, the signed factor from the pre-activation to the
            residual sum (batch norm in eval mode: ``weight / sqrt(running_var + eps)``).
    """

    name: str
    channel_lipschitz: torch.Tensor
    features_per_channel: int = 1
    nonnegative: bool = True
    residual: str | None = None
    output_scale: torch.Tensor | None = None

    def module(self, model: nn.Module) -> nn.Module:
        return model.get_submodule(self.name)

    def feature_bound(self, channel_bound: torch.Tensor) -> torch.Tensor:
        """Per-feature bound ``[..., d_feat]`` from a per-channel pre-activation bound."""
        lip = self.channel_lipschitz.to(channel_bound)
        return (channel_bound * lip).repeat_interleave(self.features_per_channel, dim=-1)


def has_identity_shortcut(block: nn.Module) -> bool:
    """``block`` is a residual block whose input is added unchanged (torchvision's
    ``BasicBlock`` and ``Bottleneck`` without ``downsample``); a module that is no such block
    (no ``downsample`` attribute) has none."""
    return getattr(block, "downsample", False) is None


def residual_layer(name: str, block: nn.Module, norm: nn.BatchNorm2d, *,
                   shortcut: bool = True) -> FeatureLayer:  # fmt: skip
    """The deep forget's view of convolution ``name``, the last of residual ``block``, followed
    by batch norm ``norm`` (in eval mode a per-channel scale ``weight / sqrt(running_var +
    eps)``, whose size is the layer's Lipschitz factor): the block is its shortcut when it adds
    its input unchanged and ``shortcut`` is set (:attr:`FeatureLayer.residual`); else the
    branch alone is the layer's."""
    scale = (norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)).cpu()
    if not (shortcut and has_identity_shortcut(block)):
        return FeatureLayer(name, scale.abs())
    return FeatureLayer(name, scale.abs(), residual=name.rsplit(".", 1)[0], output_scale=scale)


def layer_inputs(module: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The rows ``u`` that ``module`` multiplies by its weight: ``[n, d]`` for a linear layer,
    ``[n * positions, d]`` image patches for a convolution (with a trailing 1 when it has a
    bias)."""
    if isinstance(module, nn.Linear):
        rows = inputs.reshape(-1, module.in_features)
    elif isinstance(module, nn.Conv2d):
        patches = nn.functional.unfold(inputs, module.kernel_size, dilation=module.dilation,
                                       padding=module.padding, stride=module.stride)  # fmt: skip
        rows = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    else:  # pragma: no cover - guarded by check_layer
        raise ObliviateError(f"cannot edit a {type(module).__name__}")
    if module.bias is not None:
        rows = torch.cat([rows, torch.ones(len(rows), 1, dtype=rows.dtype, device=rows.device)], 1)
    return rows


def check_layer(module: nn.Module) -> None:
    """Raise unless ``module`` is a layer the edit understands."""
    if isinstance(module, nn.Linear):
        return
    if isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros" \
            and isinstance(module.padding, tuple):  # fmt: skip
        return
    raise ObliviateError(f"the deep forget edits an nn.Linear or a plain nn.Conv2d, not "
                         f"{type(module).__name__}")  # fmt: skip


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The layer's weight as ``[out, d]``, with the bias as the last column when it has one."""
    w = module.weight.reshape(module.weight.shape[0], -1)
    if module.bias is not None:
        w = torch.cat([w, module.bias[:, None]], 1)
    return w
