"""Model registry: ``fc`` (the paper's FC net), ``cnn`` (small conv net), ``convnet`` (a
three-block VGG-style conv net), ``resnet18`` (CIFAR), ``hardtanh-mlp`` (Hayase et al.'s
10-layer MLP).

Every model exposes ``features(x)`` (everything up to the penultimate layer) and a final
``classifier`` (``nn.Linear``): the relearn probe of the evaluation trains only that layer.
``blocks()`` lists the feature extractor as consecutive blocks whose composition is
``features``: recoverable forgetting (LIRF) splits a network between two of them.
Each model class also carries ``default_lambdas``, the (lambda1, lambda2) the mnemonic method
uses when the caller gives none.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from obliviate.deep_layer import FeatureLayer, residual_layer
from obliviate.models.base import Classifier, Reshape
from obliviate.registry import Registry, keyword_defaults

#: the LIRF recover net ("lirf-recover") registers itself from obliviate.recoverable
MODELS: Registry[type[nn.Module]] = Registry("model", plugins=("obliviate.recoverable",))


@MODELS.register("fc")
class FullyConnected(Classifier):
    """The paper's FC model: flatten, ``Linear(d, 1000)``, sigmoid, ``Linear(1000, C)``.

    Default lambdas (1e-3, 10) are those of the official code's MNIST config.
    """

    default_lambdas = (1e-3, 10.0)

    def __init__(
        self, *, input_shape: tuple[int, ...], num_classes: int, hidden: int = 1000
    ) -> None:
        super().__init__()
        self.input_dim = math.prod(input_shape)
        self.hidden = nn.Linear(self.input_dim, hidden)
        self.classifier = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.hidden(x.reshape(x.shape[0], self.input_dim)))

    def blocks(self) -> list[nn.Module]:
        return [nn.Sequential(Reshape((self.input_dim,)), self.hidden, nn.Sigmoid())]

    def feature_layer(self) -> FeatureLayer:
        # sigmoid: slope at most 1/4
        return FeatureLayer("hidden", torch.full((self.hidden.out_features,), 0.25))


@MODELS.register("cnn")
class SmallCNN(Classifier):
    """A small conv net for fast tests: two 3x3 conv + ReLU + max-pool blocks, then a linear head."""

    default_lambdas = (1e-3, 10.0)

    def __init__(
        self, *, input_shape: tuple[int, ...], num_classes: int, width: int = 16
    ) -> None:
        super().__init__()
        channels = input_shape[0] if len(input_shape) == 3 else 1
        self.image_shape = (channels, *input_shape[-2:]) if len(input_shape) >= 2 else None
        if self.image_shape is None:
            raise ValueError("cnn needs image inputs of shape (C, H, W) or (H, W)")
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(2 * width * 4, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(x.shape[0], *self.image_shape))

    def blocks(self) -> list[nn.Module]:
        return [nn.Sequential(Reshape(self.image_shape), *self.body[:3]), self.body[3:]]

    def feature_layer(self) -> FeatureLayer:
        # ReLU then a 2x2 average pool: each channel feeds 4 features, slope at most 1
        conv = self.body[3]
        return FeatureLayer("body.3", torch.ones(conv.out_channels), features_per_channel=4)


@MODELS.register("convnet")
class ConvNet(Classifier):
    """A three-block conv net without normalisation layers, cheap enough for CPU runs of
    recoverable forgetting: ``conv-ReLU-maxpool`` (``width``), ``conv-ReLU-maxpool``
    (``2*width``), ``conv-ReLU-global average pool`` (``4*width``), then a linear head.
    Convolutions use He initialisation (without norm layers the default init stalls).
    """

    default_lambdas = (1e-3, 10.0)

    def __init__(
        self, *, input_shape: tuple[int, ...], num_classes: int, width: int = 16
    ) -> None:
        super().__init__()
        if len(input_shape) not in (2, 3):
            raise ValueError("convnet needs image inputs of shape (C, H, W) or (H, W)")
        channels = input_shape[0] if len(input_shape) == 3 else 1
        self.image_shape = (channels, *input_shape[-2:])
        w = width
        self.block1 = nn.Sequential(nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(),
                                    nn.MaxPool2d(2))  # fmt: skip
        self.block2 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(),
                                    nn.AdaptiveAvgPool2d(1), nn.Flatten())  # fmt: skip
        self.classifier = nn.Linear(4 * w, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.image_shape)
        return self.block3(self.block2(self.block1(x)))

    def blocks(self) -> list[nn.Module]:
        return [nn.Sequential(Reshape(self.image_shape), *self.block1), self.block2, self.block3]

    def feature_layer(self) -> FeatureLayer:
        # ReLU then a global average pool: slope at most 1
        return FeatureLayer("block3.0", torch.ones(self.block3[0].out_channels))


@MODELS.register("resnet18")
class CifarResNet18(Classifier):
    """ResNet-18, CIFAR variant: 3x3 stem conv with stride 1 and no max-pool (torchvision blocks).

    ``width``: channels of the stem and the first stage (the stages have ``width``,
    ``2*width``, ``4*width``, ``8*width``; 64 is the standard network, ``width=16`` has 1/16 of
    its weights and ``width=8`` 1/64). Batch norm throughout.

    Default lambdas (1e-5, 1e4) are those of the official code's CIFAR-10 config.
    """

    default_lambdas = (1e-5, 1e4)

    def __init__(self, *, input_shape: tuple[int, ...], num_classes: int, width: int = 64) -> None:
        super().__init__()
        from torchvision.models import resnet18
        from torchvision.models.resnet import BasicBlock

        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"resnet18 width must be a whole number >= 1, got {width!r}")
        net = resnet18(num_classes=num_classes)
        if width != 64:  # torchvision's stages at other widths, initialised as torchvision does
            net.inplanes = width
            net.bn1 = nn.BatchNorm2d(width)
            for i, stage in enumerate(("layer1", "layer2", "layer3", "layer4")):
                setattr(net, stage, net._make_layer(BasicBlock, width << i, 2,
                                                    stride=1 if i == 0 else 2))  # fmt: skip
            net.fc = nn.Linear(8 * width, num_classes)
            for module in net.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(module, nn.BatchNorm2d):
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)
        net.conv1 = nn.Conv2d(input_shape[0], width, kernel_size=3, stride=1, padding=1,
                              bias=False)  # fmt: skip
        net.maxpool = nn.Identity()
        self.classifier = net.fc
        net.fc = nn.Identity()
        self.backbone = net

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def blocks(self) -> list[nn.Module]:
        net = self.backbone
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        return [stem, net.layer1, net.layer2, net.layer3, net.layer4,
                nn.Sequential(net.avgpool, nn.Flatten())]  # fmt: skip

    def feature_layer(self) -> FeatureLayer:
        # the last block's second convolution, then batch norm (eval: a per-channel scale),
        # the residual sum, ReLU and a global average pool
        block = self.backbone.layer4[-1]
        return residual_layer("backbone.layer4.1.conv2", block, block.bn2)


#: The two readings of Hayase et al.'s activation (see :class:`NormalisedHardTanh`).
HARDTANH_VARIANTS: tuple[str, ...] = ("as-written", "continuous")


class NormalisedHardTanh(nn.Module):
    """Hayase et al.'s activation, ``g*x`` where ``s*g*|x| < 1``, in one of two readings:

    ``as-written``
        else ``g*sgn(x)``, exactly as their supplement writes it. The function then jumps at
        ``|x| = 1/(s g)``, from about ``2.83`` down to ``g``.
    ``continuous``
        else ``sgn(x)/s``: the hard tanh ``clamp(g*x, -1/s, 1/s)``, continuous and with the
        same slope ``g`` inside. ``scripts/finer_full.py`` trains both and compares them
        (docs/results/finer-forgetting.md, "Which activation").

    Defaults ``s^2 = 0.125``, ``g = 1.0013`` (their supplementary "Setting of Model", chosen for
    dynamical isometry).
    """

    def __init__(self, s_squared: float = 0.125, g: float = 1.0013,
                 variant: str = "as-written") -> None:  # fmt: skip
        super().__init__()
        if variant not in HARDTANH_VARIANTS:
            raise ValueError(f"activation must be one of {HARDTANH_VARIANTS}, got {variant!r}")
        self.s = math.sqrt(s_squared)
        self.g = g
        self.variant = variant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "continuous":
            return torch.clamp(self.g * x, -1.0 / self.s, 1.0 / self.s)
        inside = self.s * self.g * x.abs() < 1
        return torch.where(inside, self.g * x, self.g * torch.sign(x))


@MODELS.register("hardtanh-mlp")
class HardTanhMLP(Classifier):
    """The MLP of Hayase et al. (selective forgetting finer than samples): ``depth`` linear layers,
    every hidden layer as wide as the input, normalised hard-tanh activations, no
    normalisation layers, orthogonal weights and zero biases at initialisation."""

    default_lambdas = (1e-3, 10.0)

    def __init__(
        self,
        *,
        input_shape: tuple[int, ...],
        num_classes: int,
        depth: int = 10,
        s_squared: float = 0.125,
        g: float = 1.0013,
        activation: str = "as-written",
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("hardtanh-mlp needs depth >= 2 (hidden layers plus the classifier)")
        self.input_dim = math.prod(input_shape)
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.Linear(self.input_dim, self.input_dim),
                       NormalisedHardTanh(s_squared, g, activation)]  # fmt: skip
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(self.input_dim, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.orthogonal_(module.weight)
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(x.shape[0], self.input_dim))

    def blocks(self) -> list[nn.Module]:
        pairs = [self.body[i : i + 2] for i in range(0, len(self.body), 2)]
        return [nn.Sequential(Reshape((self.input_dim,)), *pairs[0]), *pairs[1:]]


def model_options(name: str) -> dict[str, Any]:
    """The constructor options of the registered architecture ``name`` and their defaults
    (``obliviate train --model-option KEY=VALUE``; ``model_kwargs`` of :func:`obliviate.train`)."""
    return {k: v for k, v in keyword_defaults(MODELS.get(name)).items()
            if k not in ("input_shape", "num_classes")}  # fmt: skip


def trainable_models() -> list[str]:
    """Names of the registered architectures that ``obliviate train`` can train."""
    return [n for n in MODELS.names() if getattr(MODELS.get(n), "trainable", True)]


def create_model(
    name: str, *, input_shape: tuple[int, ...], num_classes: int, **kwargs: Any
) -> Classifier:
    """Build the registered model ``name`` for inputs of ``input_shape`` and ``num_classes``;
    ``torchvision:NAME`` and ``timm:NAME`` build those libraries' architectures (random
    weights), wrapped (see :mod:`obliviate.models.external`)."""
    from obliviate.models.external import create_external, is_external

    if is_external(name):
        return create_external(name, input_shape=tuple(input_shape), num_classes=num_classes,
                               **kwargs)  # fmt: skip
    factory = MODELS.get(name)
    unknown = sorted(set(kwargs) - set(model_options(name)))
    if unknown:
        raise TypeError(f"{name} has no option {unknown[0]!r}; known: "
                        f"{', '.join(model_options(name)) or '(none)'}")  # fmt: skip
    return factory(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
