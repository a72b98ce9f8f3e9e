"""What every model is: :class:`Classifier` (``features`` then a linear ``classifier``) and the
small :class:`Reshape` layer; the registered architectures live in :mod:`obliviate.models`."""

from __future__ import annotations

import torch
from torch import nn

from obliviate.deep_layer import FeatureLayer
from obliviate.errors import ObliviateError


class Reshape(nn.Module):
    """Reshape each sample to ``shape`` (the batch dimension is kept)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Classifier(nn.Module):
    """Base of all registered models: ``forward = classifier(features(x))``."""

    #: (lambda1, lambda2) for the mnemonic method on this architecture.
    default_lambdas: tuple[float, float] = (1e-3, 10.0)
    #: False for architectures assembled by a command (the LIRF recover net), not trained.
    trainable: bool = True
    classifier: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def blocks(self) -> list[nn.Module]:
        """The feature extractor as consecutive blocks (shared modules, not copies):
        ``features(x)`` equals applying them in order to the raw input ``x``."""
        raise ObliviateError(
            f"{type(self).__name__} does not list its blocks, which recoverable forgetting (LIRF) "
            "splits the network at; use a registered architecture (obliviate list)"
        )

    def feature_layer(self) -> FeatureLayer | None:
        """The layer the deep forget edits (:mod:`obliviate.deep`) and how a change of its
        pre-activation reaches the penultimate features; ``None`` where that is not known
        (the deep forget is then unavailable)."""
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
