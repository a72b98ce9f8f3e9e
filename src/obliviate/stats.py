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

Both describe the weights they were computed on, and are bound to them: ``weights_sha256`` is
the SHA-256 of those weights (:func:`obliviate.digest.weights_sha256`), stored in the model
file beside them. Weights that changed since (fine-tuned in the caller's own loop, edited,
loaded from another checkpoint) no longer match it, and :func:`stale_reason` says so; the
data-free forget then refuses to verify from them (:func:`obliviate.forget`) until they are
recorded again (:func:`obliviate.record_statistics`, ``obliviate stats``). The package's own
edits carry them forward only where they provably still hold, and bind them to the new
weights.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch

from obliviate import compact
from obliviate.data import Split
from obliviate.deep import LayerStatistics, record_layer_statistics
from obliviate.digest import weights_sha256
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
    #: SHA-256 of the weights they describe (``None``: unknown, e.g. a file written before
    #: obliviate bound them, so nothing can vouch for them)
    weights_sha256: str | None = None

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors to store in the model file (bfloat16 where that holds them exactly)."""
        out = {MARGIN_KEY: compact.storable(self.margin.contiguous()),
               FEATURE_MIN_KEY: compact.storable(self.feature_min.contiguous())}
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
        return TrainingStatistics(margin, feature_min, self.samples, layer, self.weights_sha256)

    def bound_to(self, model: torch.nn.Module) -> TrainingStatistics:
        """A copy bound to ``model``'s weights: for statistics that provably hold for it (the
        output of an edit that carried them)."""
        return dataclasses.replace(self, weights_sha256=weights_sha256(model))

    def retained_margin(self, cls_: int, retain: list[int]) -> float:
        """Upper bound of ``z_c - max_{k in retain} z_k`` over the training samples of ``cls_``."""
        return float(self.margin[cls_, retain].min())


def stale_reason(stats: TrainingStatistics | None, digest: str) -> str | None:
    """Why ``stats`` cannot vouch for the weights whose SHA-256 is ``digest``, or ``None`` when
    they describe exactly those weights (or there are none)."""
    if stats is None or stats.weights_sha256 == digest:
        return None
    fix = ("record them again from the training data (obliviate stats MODEL --data DATASET "
           "--out NEW.safetensors; Python: obliviate.record_statistics(bundle, data)), or pass "
           "the training data (--data DATASET) to verify on it")
    if stats.weights_sha256 is None:
        return ("the model file's training statistics are not bound to any weights (written by "
                f"an older obliviate), so they cannot vouch for these; {fix}")
    return (f"the training statistics were recorded for other weights (sha256 "
            f"{stats.weights_sha256[:12]}…, the model's are {digest[:12]}…): fine-tuned, edited "
            f"or loaded from another checkpoint after training?; {fix}")


class OutputSummary:
    """The one place the output statistics are computed: ``margin[c, k]``, the largest
    ``z_c - z_k`` over the samples of class ``c``, and ``feature_min[c]``, the least value of
    each penultimate feature over them, accumulated batch by batch."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.margin = torch.full((num_classes, num_classes), float("-inf"))
        self.feature_min: torch.Tensor | None = None

    def add(self, features: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Fold in one batch (``[n, d]`` features, ``[n, C]`` logits, ``[n]`` labels)."""
        features, logits, labels = features.float().cpu(), logits.float().cpu(), labels.cpu()
        if self.feature_min is None:
            self.feature_min = torch.full((self.num_classes, features.shape[1]), float("inf"))
        index = labels[:, None]
        self.feature_min.scatter_reduce_(0, index.expand_as(features), features, "amin")
        diffs = logits.gather(1, index) - logits  # z_y - z_k
        self.margin.scatter_reduce_(0, index.expand_as(diffs), diffs, "amax")

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(margin, feature_min)``; a class without samples has margins ``-inf`` and feature
        minima 0."""
        if self.feature_min is None:
            raise ObliviateError("no training samples to compute the statistics from")
        floor = self.feature_min
        return self.margin, torch.where(torch.isinf(floor), torch.zeros_like(floor), floor)


@torch.no_grad()
def record_statistics(model: Classifier, data: Split, *, batch_size: int = 1024) -> TrainingStatistics:
    """Summarise ``data`` (the clean training split) through ``model`` (see module doc), bound
    to ``model``'s weights."""
    if len(data) == 0:
        raise ObliviateError("no training samples to compute the statistics from")
    num_classes = model.classifier.out_features
    summary = OutputSummary(num_classes)
    layer = model.feature_layer() if hasattr(model, "feature_layer") else None
    layer_stats = None
    if layer is not None:  # one pass gives the outputs' statistics and the layer's
        layer_stats = record_layer_statistics(model, layer, data.x, data.y, num_classes,
                                              batch_size=batch_size, on_batch=summary.add)  # fmt: skip
    else:
        feats = extract_features(model, data.x, batch_size=batch_size)
        summary.add(feats, model.classifier(feats), data.y)
    margin, feature_min = summary.result()
    # stored in bfloat16, rounded outward: the margins up, the minima down (compact)
    margin, feature_min = compact.upward(margin), compact.downward(feature_min)
    return TrainingStatistics(margin=margin, feature_min=feature_min, samples=len(data),
                              layer=layer_stats, weights_sha256=weights_sha256(model, reuse=False))  # fmt: skip


def transport(stats: TrainingStatistics, feature_bound: torch.Tensor, bounds: torch.Tensor,
              nonnegative: bool) -> TrainingStatistics:  # fmt: skip
    """Output statistics that still hold after an edit whose features move by at most
    ``feature_bound[c]`` and whose logit differences by ``bounds`` (see
    :func:`obliviate.deep.logit_bounds`): margins grow by the bound, feature minima shrink by
    it (not below 0 for non-negative features), margin quantiles shrink by each class's
    largest bound; the confusion matrix, which an edit changes, is dropped. They are bound to
    no weights until the caller binds them to the edited model (:meth:`TrainingStatistics.
    bound_to`)."""
    floor = stats.feature_min - feature_bound
    if nonnegative:
        floor = floor.clamp_min(0.0)
    layer = None
    if stats.layer is not None:
        layer = copy.deepcopy(stats.layer)
        layer.margin_quantiles = layer.margin_quantiles - bounds.amax(1, keepdim=True)
        layer.confusion = torch.empty(0)
    return TrainingStatistics(compact.upward(stats.margin + bounds), compact.downward(floor),
                              stats.samples, layer)  # fmt: skip
