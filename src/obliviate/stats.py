"""Training statistics kept in the model file: a few numbers per class, no sample.

At the end of training, :func:`record_statistics` passes the clean training set once through
the model and keeps two summaries:

``margin`` (``[C, C]``)
    ``margin[c, k]`` is the largest ``z_c(x) - z_k(x)`` over the training samples ``x`` of
    class ``c`` (``z``: logits). For any set ``R`` of classes to keep, ``min_{k in R}
    margin[c, k]`` bounds from above how far any training sample of ``c`` sits above the best
    kept class. A forget request that lowers class ``c``'s logit by more than that on every
    input has provably misclassified every training sample of ``c``.
``feature_min`` (``[C, d]``)
    the smallest value each penultimate feature takes on the training samples of each class.
    Lowering class ``c``'s classifier weights by ``w >= 0`` then lowers its logit on every
    training sample of ``c`` by at least ``w . feature_min[c]`` (plus the bias change), so the
    strength that provably forgets them is known without any sample.

Both describe the model they were computed on: any change of the feature extractor or of the
kept classes' rows makes them stale, and :func:`obliviate.forget` then drops them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.data import Split
from obliviate.deep import LayerStatistics, record_layer_statistics
from obliviate.errors import ObliviateError
from obliviate.models import Classifier
from obliviate.training import extract_features

MARGIN_KEY = "stats.margin"
FEATURE_MIN_KEY = "stats.feature_min"


@dataclass
class TrainingStatistics:
    """Per-class logit margins and per-feature minima of the training set (see module doc).

    Attributes:
        margin: ``[C, C]``; ``margin[c, k]`` = max over class-``c`` samples of ``z_c - z_k``
            (``-inf`` where class ``c`` had no sample).
        feature_min: ``[C, d]``; the minimum of each penultimate feature over the samples of
            each class (0 for a class without samples).
        samples: how many training samples they summarise.
    """

    margin: torch.Tensor
    feature_min: torch.Tensor
    samples: int
    #: aggregates at the last feature layer for the deep forget (:mod:`obliviate.deep`)
    layer: LayerStatistics | None = None

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors to store in the model file."""
        out = {MARGIN_KEY: self.margin.contiguous(), FEATURE_MIN_KEY: self.feature_min.contiguous()}
        if self.layer is not None:
            out.update(self.layer.tensors())
        return out

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, torch.Tensor], samples: int, *, layer: str | None = None,
        num_classes: int | None = None,
    ) -> TrainingStatistics | None:
        """The statistics stored in a model file, or ``None`` when it has none (the layer
        statistics too when ``layer`` names them)."""
        if MARGIN_KEY not in tensors or FEATURE_MIN_KEY not in tensors:
            return None
        if tensors[FEATURE_MIN_KEY].dim() != 2:
            return None
        margin = tensors[MARGIN_KEY].float()
        classes = num_classes if num_classes is not None else margin.shape[0]
        return cls(margin, tensors[FEATURE_MIN_KEY].float(), samples,
                   LayerStatistics.from_tensors(tensors, layer, classes))  # fmt: skip

    def without(self, classes: list[int] | tuple[int, ...]) -> TrainingStatistics:
        """A copy with what the statistics say about ``classes`` cleared (their margins to
        ``-inf``, their feature minima to 0): a forgotten class's training data leaves no trace
        in the file, and no later request reads those entries (a forgotten class is neither
        forgotten again nor kept)."""
        margin, feature_min = self.margin.clone(), self.feature_min.clone()
        index = torch.tensor(list(classes), dtype=torch.long)
        margin[index, :] = float("-inf")
        margin[:, index] = float("-inf")
        feature_min[index] = 0.0
        layer = self.layer.without(classes) if self.layer is not None else None
        return TrainingStatistics(margin, feature_min, self.samples, layer)

    def retained_margin(self, cls_: int, retain: list[int]) -> float:
        """Upper bound of ``z_c - max_{k in retain} z_k`` over the training samples of ``cls_``."""
        return float(self.margin[cls_, retain].min())


@torch.no_grad()
def record_statistics(model: Classifier, data: Split, *, batch_size: int = 1024) -> TrainingStatistics:
    """Summarise ``data`` (the clean training split) through ``model`` (see module doc)."""
    if len(data) == 0:
        raise ObliviateError("no training samples to compute the statistics from")
    layer = model.feature_layer() if hasattr(model, "feature_layer") else None
    if layer is not None:  # one pass gives the outputs' statistics and the layer's
        num_classes = model.classifier.out_features
        layer_stats, margin, feature_min = record_layer_statistics(
            model, layer, data.x, data.y, num_classes, batch_size=batch_size)  # fmt: skip
        return TrainingStatistics(margin=margin, feature_min=feature_min, samples=len(data),
                                  layer=layer_stats)  # fmt: skip
    feats = extract_features(model, data.x, batch_size=batch_size)
    logits = model.classifier(feats)
    device = logits.device
    y = data.y.to(device)
    num_classes = logits.shape[1]
    margin = torch.full((num_classes, num_classes), float("-inf"), device=device)
    own = logits.gather(1, y[:, None])
    diffs = own - logits  # [n, C]: z_y - z_k
    margin.scatter_reduce_(0, y[:, None].expand_as(diffs), diffs, "amax", include_self=True)
    feature_min = torch.full((num_classes, feats.shape[1]), float("inf"), device=device)
    feature_min.scatter_reduce_(0, y[:, None].expand_as(feats), feats, "amin", include_self=True)
    feature_min = torch.where(torch.isinf(feature_min), torch.zeros_like(feature_min), feature_min)
    return TrainingStatistics(margin=margin.cpu(), feature_min=feature_min.cpu(), samples=len(data))
