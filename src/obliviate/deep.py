"""Deep (feature-level) forgetting: a closed-form edit of the last feature layer, from statistics
stored at training time, with a bound that verifies it without data.

A forget that lowers only the classifier rows leaves the features as they were, and whoever has
the weights and a few labelled samples gets the class back (the prototype attack and the relearn
probe of :mod:`obliviate.evidence`). A model retrained without the class maps that class's inputs
onto the kept classes it resembles. This module does the same in one step, in the weights of the
*last feature layer* ``a = W u + b`` (``u``: the layer's input, a flattened image patch for a
convolution; ``a``: its pre-activation):

redirect
    For each forget class ``c`` the mean pre-activation ``W m_c`` (``m_c``: class ``c``'s mean
    input, stored) is moved to ``t_c = sum_k pi_k W m_k``, a mixture of the kept classes' means
    weighted by where the original model sends class ``c``'s samples without it (``pi``: the
    mean over them of the softmax over the other classes, stored, renormalised over the kept
    ones: :meth:`LayerStatistics.mixture`). Among
    all changes ``dW`` with ``dW m_c = t_c - W m_c`` for every forget class, the one that moves
    the training inputs least (least ``sum_u |dW u|^2``, a ridge-regularised second moment ``A``
    of the inputs) is ``dW = D (V^T M)^{-1} V^T`` with ``V = A^{-1} M`` (one column ``v_c`` per
    forget class, stored in bfloat16: :mod:`obliviate.compact`; ``V^T M`` is taken with the stored
    ``V``, so ``dW M = D`` exactly whatever its rounding). Inputs unlike the forget classes'
    (small ``v_c . u``) barely move.

residual
    When the layer is a residual block's last (``FeatureLayer.residual``: a ResNet's), its
    output is added to the block's input, the shortcut, which carries the forget class past
    any edit of the branch. The targets are then the *sum's*: ``D`` also takes the gap between
    the kept mixture of the shortcut's per-class channel means and the forget class's
    (``LayerStatistics.skip_mean``), divided by the batch norm's scale. What it changes on the
    depth page's ResNet: ``docs/results/conv-edits.md`` (the ``redirect`` tables) and
    ``docs/results/depth.md``.

The stored statistics (:class:`LayerStatistics`) are aggregates, never samples: each class's mean
input, ``v_c`` per class, and the range of ``v_f . u`` over each class's training inputs. With
those ranges the change of every training sample's pre-activation is bounded, per class, without
data; the architecture's Lipschitz constant from the pre-activation to the penultimate features
(:meth:`~obliviate.models.Classifier.feature_layer`) carries it to the features and the logits.
:func:`obliviate.stats.transport` turns the file's output statistics into bounds that hold after
the edit, so the closed-form head step of :mod:`obliviate.calibration` still guarantees that
every training sample of the forget classes falls below a kept class, and
:func:`retain_drop_bound` bounds the kept classes' training accuracy lost against the
truncation oracle.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

from obliviate import compact
from obliviate.errors import ObliviateError
# the layer's definition and views, re-exported: the deep forget's public names
from obliviate.deep_layer import (  # noqa: F401
    FeatureLayer,
    check_layer,
    has_identity_shortcut,
    layer_inputs,
    residual_layer,
    weight_matrix,
)

#: Keys of the layer statistics in the model file (each required, besides one of the two
#: sources of the kept mixture below).
LAYER_KEYS = ("stats.layer.class_mean", "stats.layer.directions", "stats.layer.ranges",
              "stats.margin_quantiles", "stats.confusion")  # fmt: skip
#: Key of each class's mean softmax over the other classes (written since the mixture is taken
#: from it); files written before store the mean logits under :data:`LOGIT_KEY` instead.
OTHER_KEY = "stats.layer.other_probs"
LOGIT_KEY = "stats.logit_mean"
#: Key of the per-class means of a residual layer's shortcut (optional: absent in files written
#: before it was recorded, and for layers without an identity shortcut).
SKIP_KEY = "stats.layer.skip_mean"
#: Quantiles of each class's true-class margin kept for the retain bound.
QUANTILES = 128
#: Ridge added to the inputs' second moment, relative to its mean eigenvalue.
RIDGE = 1e-3
#: Elements of ``|W_y - W_k|`` that :func:`logit_bounds` makes at once (1 MiB of float32).
BOUND_BLOCK = 1 << 18
#: Per stored ``class_mean`` tensor (weakly held): the layer's mean pre-activations ``W m_c`` of
#: every class, with what they were computed from (:func:`_mean_preactivations`).
_MEAN_PREACTIVATIONS: WeakIdKeyDictionary = WeakIdKeyDictionary()


@dataclass
class LayerStatistics:
    """Aggregates of the training set at the last feature layer and the outputs (no sample).

    Attributes:
        layer: the edited layer's dotted name.
        class_mean: ``[C, d]`` each class's mean layer input ``m_c``.
        directions: ``[d, C]``, ``v_c = A^{-1} m_c`` per class (``A``: the ridge-regularised
            second moment of every training input of the layer).
        ranges: ``[C, C, 2]``, ``ranges[k, f]`` = (min, max) of ``v_f . u`` over the layer
            inputs ``u`` of class ``k``'s training samples.
        other_probs: ``[C, C]``, row ``c``: the mean over class ``c``'s training samples of
            the softmax over the *other* classes (its own logit left out; the diagonal is 0):
            where the model would send each sample of ``c`` without it, averaged.
        margin_quantiles: ``[C, QUANTILES + 1]`` the sorted true-class margins
            ``z_y - max_{k != y} z_k`` of each class, sampled at ``QUANTILES + 1`` ranks.
        confusion: ``[C, C]`` training predictions per (true, predicted) class; empty after a
            deep forget, which changes them.
        skip_mean: ``[C, out]`` each class's mean shortcut per output channel (the input of
            :attr:`FeatureLayer.residual`, averaged over positions and training samples), or
            ``None`` for a layer without a residual shortcut (or a file written before it
            was recorded: the redirect then moves the branch alone).
        logit_mean: ``[C, C]`` each class's mean logits, stored by files written before
            ``other_probs`` (``None`` otherwise); the kept mixture is then the softmax of these.
    """

    layer: str
    class_mean: torch.Tensor
    directions: torch.Tensor
    ranges: torch.Tensor
    other_probs: torch.Tensor | None
    margin_quantiles: torch.Tensor
    confusion: torch.Tensor
    skip_mean: torch.Tensor | None = None
    logit_mean: torch.Tensor | None = None

    def mixture(self, forget: list[int], retain: list[int]) -> torch.Tensor:
        """``[F, R]`` float64: the kept classes each forget class's samples are sent to, as
        weights summing to 1 per row: its mean softmax over the other classes restricted to
        the kept ones (``other_probs``), or, from a file that has only the mean logits, their
        softmax over the kept classes (flatter: the softmax of a mean is not the mean of the
        softmaxes). A row without mass is spread evenly."""
        if self.other_probs is None:
            assert self.logit_mean is not None
            return torch.softmax(self.logit_mean.double()[forget][:, retain], dim=1)
        rows = self.other_probs.double()[forget][:, retain].clamp_min(0.0)
        total = rows.sum(1, keepdim=True)
        even = torch.full_like(rows, 1.0 / max(len(retain), 1))
        return torch.where(total > 0, rows / total.clamp_min(1e-300), even)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors to store: the directions and ranges in bfloat16 where that holds them
        exactly (:mod:`obliviate.compact`); the means, mean logits, sorted margins and counts
        in float32."""
        values = (self.class_mean, self.directions, self.ranges, self.margin_quantiles,
                  self.confusion)  # fmt: skip
        out = {k: v.contiguous() for k, v in zip(LAYER_KEYS, values)}
        for key in LAYER_KEYS[1:3]:  # the directions and the ranges
            out[key] = compact.storable(out[key])
        for key, value in ((OTHER_KEY, self.other_probs), (LOGIT_KEY, self.logit_mean),
                           (SKIP_KEY, self.skip_mean)):  # fmt: skip
            if value is not None:
                out[key] = value.contiguous()
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], layer: str | None,
                     num_classes: int) -> LayerStatistics | None:  # fmt: skip
        """The statistics stored in a model file; ``None`` without them; raises when their
        shapes contradict each other or the class count."""
        if layer is None or not all(k in tensors for k in LAYER_KEYS) or \
                (OTHER_KEY not in tensors and LOGIT_KEY not in tensors):  # fmt: skip
            return None
        optional = {k: tensors[k].float() if k in tensors else None
                    for k in (OTHER_KEY, LOGIT_KEY, SKIP_KEY)}  # fmt: skip
        mean, directions, ranges, quantiles, confusion = (tensors[k].float() for k in LAYER_KEYS)
        out = cls(layer, mean, directions, ranges, optional[OTHER_KEY], quantiles, confusion,
                  skip_mean=optional[SKIP_KEY], logit_mean=optional[LOGIT_KEY])  # fmt: skip
        skip = out.skip_mean
        c, d = num_classes, out.class_mean.shape[-1]
        if skip is not None and (skip.dim() != 2 or skip.shape[0] != c):
            raise ObliviateError(f"the layer statistics skip_mean have shape {tuple(skip.shape)}, "
                                 f"expected ({c}, channels)")  # fmt: skip
        expected = {"class_mean": (c, d), "directions": (d, c), "ranges": (c, c, 2),
                    "other_probs": (c, c), "logit_mean": (c, c),
                    "margin_quantiles": (c, QUANTILES + 1)}  # fmt: skip
        for name, shape in expected.items():
            if getattr(out, name) is not None and tuple(getattr(out, name).shape) != shape:
                raise ObliviateError(f"the layer statistics {name} have shape "
                                     f"{tuple(getattr(out, name).shape)}, expected {shape}")  # fmt: skip
        if out.confusion.numel() and tuple(out.confusion.shape) != (c, c):
            raise ObliviateError("the layer statistics' confusion matrix does not fit the model")
        finite = [t for t in (out.class_mean, out.directions, out.other_probs, out.logit_mean,
                              out.ranges, out.confusion, skip) if t is not None]  # fmt: skip
        q = out.margin_quantiles  # +inf only in the rows of forgotten classes (checked on load)
        if not all(bool(torch.isfinite(t).all()) for t in finite) or \
                bool(torch.isnan(q).any()) or bool((q == float("-inf")).any()):  # fmt: skip
            raise ObliviateError("the layer statistics hold NaN or infinite values")
        if bool((out.confusion < 0).any()):
            raise ObliviateError("the layer statistics' confusion matrix has negative counts")
        if out.other_probs is not None and bool(((out.other_probs < 0) |
                                                 (out.other_probs > 1)).any()):  # fmt: skip
            raise ObliviateError("the layer statistics' mean probabilities lie outside [0, 1]")
        return out

    def without(self, classes: list[int] | tuple[int, ...]) -> LayerStatistics:
        """A copy with every entry about ``classes`` cleared (means, directions, ranges,
        logits, margins, confusion): a forgotten class leaves no per-class trace."""
        index = torch.tensor(list(classes), dtype=torch.long)
        out = dataclasses.replace(self, **{f.name: getattr(self, f.name).clone()  # no shared
                                           for f in dataclasses.fields(self)
                                           if isinstance(getattr(self, f.name), torch.Tensor)})
        out.class_mean[index] = 0.0
        out.directions[:, index] = 0.0
        out.ranges[index] = 0.0
        out.ranges[:, index] = 0.0
        for mixture in (out.other_probs, out.logit_mean):
            if mixture is not None:
                mixture[index] = 0.0
                mixture[:, index] = 0.0
        out.margin_quantiles[index] = float("inf")  # no sample: nothing at risk
        if out.confusion.numel():
            out.confusion[index] = 0.0
            out.confusion[:, index] = 0.0
        if out.skip_mean is not None:
            out.skip_mean[index] = 0.0
        return out


class _Accumulator:
    """Per-class sums and the second moment of a layer's inputs, in float64."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None
        self.moment: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None

    def add(self, rows: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        rows = rows.double()
        if self.sums is None:
            d = rows.shape[1]
            self.sums = torch.zeros(num_classes, d, dtype=torch.float64, device=rows.device)
            self.moment = torch.zeros(d, d, dtype=torch.float64, device=rows.device)
            self.counts = torch.zeros(num_classes, dtype=torch.float64, device=rows.device)
        self.sums.index_add_(0, labels, rows)
        self.counts += torch.bincount(labels, minlength=num_classes).double()
        self.moment += rows.T @ rows


def _inverse_times(moment: torch.Tensor, n: float, rhs: torch.Tensor) -> torch.Tensor:
    """``(moment / n + ridge)^{-1} rhs`` by a Cholesky factorisation (the matrix is symmetric
    positive definite with the ridge; ``d^3 / 3`` flops, 2-3 s for ResNet-18's 4608)."""
    a = moment / max(n, 1.0)
    d = a.shape[0]
    ridge = RIDGE * float(torch.trace(a)) / d
    factor = torch.linalg.cholesky(a + ridge * torch.eye(d, dtype=a.dtype, device=a.device))
    return torch.cholesky_solve(rhs, factor)


@torch.no_grad()
def record_layer_statistics(model: nn.Module, layer: FeatureLayer, x: torch.Tensor,
                            y: torch.Tensor, num_classes: int, *, batch_size: int = 512,
                            on_batch: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]
                            | None = None) -> LayerStatistics:  # fmt: skip
    """Two passes over the training inputs ``x``: the layer inputs' class means, second moment
    and the outputs, then the ranges of ``v_f . u`` per class (see :class:`LayerStatistics`).
    ``on_batch(features, logits, labels)`` sees every batch of the first pass (on the CPU), so
    a caller summarises the outputs without a pass of its own
    (:func:`obliviate.stats.record_statistics`)."""
    module = layer.module(model)
    check_layer(module)
    captured: list[torch.Tensor] = []
    hook = module.register_forward_hook(lambda _m, args, _o: captured.append(args[0]))
    shortcut: list[torch.Tensor] = []
    skip_sum = None
    if layer.residual is not None:  # the shortcut: the residual block's input, per channel
        skip_hook = model.get_submodule(layer.residual).register_forward_pre_hook(
            lambda _m, args: shortcut.append(args[0]))  # fmt: skip
        skip_sum = torch.zeros(num_classes, module.weight.shape[0], dtype=torch.float64)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    acc = _Accumulator()
    others_sum = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    confusion = torch.zeros(num_classes, num_classes)
    margins = []
    try:
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size]
            captured.clear()
            shortcut.clear()
            feats = model.features(xb)
            if skip_sum is not None:
                skip = shortcut[0]
                if skip.dim() != 4 or skip.shape[1] != skip_sum.shape[1]:
                    raise ObliviateError(f"block {layer.residual!r} does not take the "
                                         f"{skip_sum.shape[1]} channels its last layer gives; "
                                         "its shortcut is not the identity")  # fmt: skip
                skip_sum.index_add_(0, yb.cpu(), skip.mean((2, 3)).double().cpu())
            logits = model.classifier(feats).float().cpu()
            if on_batch is not None:
                on_batch(feats.float().cpu(), logits, yb.cpu())
            rows = layer_inputs(module, captured[0])
            per_sample = len(rows) // len(yb)
            acc.add(rows, yb.to(device).repeat_interleave(per_sample), num_classes)
            own_out = logits.double().scatter(1, yb[:, None], float("-inf"))
            others_sum.index_add_(0, yb, own_out.softmax(1).nan_to_num(0.0))  # own left out
            confusion.index_put_((yb, logits.argmax(1)), torch.ones(len(yb)), accumulate=True)
            own = logits.gather(1, yb[:, None]).squeeze(1)
            others = logits.scatter(1, yb[:, None], float("-inf")).max(1).values
            margins.append(own - others)
        if layer.residual is not None:  # the second pass needs no shortcut: no tensor kept
            skip_hook.remove()
        assert acc.sums is not None and acc.moment is not None and acc.counts is not None
        counts = acc.counts.clamp_min(1.0)
        class_mean = acc.sums / counts[:, None]
        # rounded to what the file stores before the ranges are taken with them (compact); the
        # means stay float32, so the edit still moves each mean exactly where it aims
        directions = compact.nearest(_inverse_times(acc.moment, float(acc.counts.sum()),
                                                    class_mean.T))  # [d, C]
        ranges = torch.zeros(num_classes, num_classes, 2, dtype=torch.float64, device=device)
        ranges[..., 0], ranges[..., 1] = float("inf"), float("-inf")
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size]
            captured.clear()
            model(xb)
            rows = layer_inputs(module, captured[0]).double()
            labels = yb.to(device).repeat_interleave(len(rows) // len(yb))
            proj = rows @ directions  # [rows, C]
            index = labels[:, None].expand_as(proj)
            lo = torch.full_like(ranges[..., 0], float("inf")).scatter_reduce(0, index, proj, "amin")
            hi = torch.full_like(ranges[..., 1], float("-inf")).scatter_reduce(0, index, proj, "amax")
            ranges[..., 0] = torch.minimum(ranges[..., 0], lo)
            ranges[..., 1] = torch.maximum(ranges[..., 1], hi)
    finally:
        hook.remove()
        if layer.residual is not None:
            skip_hook.remove()
        model.train(was_training)
    ranges = torch.where(torch.isfinite(ranges), ranges, torch.zeros_like(ranges))
    # stored in bfloat16: each range rounded outward from float64, so it still holds (compact);
    # the float32 below then holds those values exactly
    ranges = torch.stack([compact.downward(ranges[..., 0]), compact.upward(ranges[..., 1])], -1)
    margin = torch.cat(margins)
    quantiles = torch.full((num_classes, QUANTILES + 1), float("inf"))
    for c in range(num_classes):
        values = margin[y == c].sort().values
        if len(values):
            ranks = torch.linspace(0, len(values) - 1, QUANTILES + 1).floor().long()
            quantiles[c] = values[ranks]
    stats = LayerStatistics(
        layer=layer.name, class_mean=class_mean.float().cpu(),
        directions=directions.float().cpu(), ranges=ranges.float().cpu(),
        other_probs=(others_sum / acc.counts.cpu().clamp_min(1.0)[:, None]).float(),
        margin_quantiles=quantiles, confusion=confusion,
        skip_mean=(None if skip_sum is None else (skip_sum / torch.bincount(
            y.cpu(), minlength=num_classes).clamp_min(1)[:, None]).float()),  # per sample
    )  # fmt: skip
    return stats


@dataclass
class FeatureEdit:
    """A computed edit: ``delta = coef^T V^T`` (``[out, d]``, bias in the last column when
    present; made when first read, float32), the per-class bound on every channel's
    pre-activation change (``[C, out]``), and the targets' mixture weights per forget class (for
    the record). ``coef`` (``[F, out]``) and ``directions`` (``V``, ``[d, F]``) are float64.
    ``residual``: the targets are the residual sum's (:func:`_residual_shift`), not the
    branch's alone."""

    coef: torch.Tensor
    directions: torch.Tensor
    channel_bound: torch.Tensor
    mixture: dict[int, dict[int, float]]
    residual: bool = False

    @property
    def delta(self) -> torch.Tensor:
        """The change of the layer's weight matrix (a bound that fails needs none)."""
        return (self.coef.T @ self.directions.T).float()


def redirect(model: nn.Module, layer: FeatureLayer, stats: LayerStatistics, forget: list[int],
             retain: list[int], *, gamma: float = 1.0,
             weights_sha256: str | None = None) -> FeatureEdit:  # fmt: skip
    """The closed-form edit of the module doc, and its bound per class (see :class:`FeatureEdit`).

    ``weights_sha256``: the digest of ``model``'s weights as just checked (the statistics'
    binding); given, the layer's mean pre-activations ``W m_c`` are kept for later requests on
    the same weights and statistics (:func:`_mean_preactivations`)."""
    module = layer.module(model)
    check_layer(module)
    if _columns(module) != stats.class_mean.shape[1]:
        raise ObliviateError("the layer statistics do not fit the model's last feature layer")
    means = stats.class_mean.double()
    weights = stats.mixture(forget, retain)  # [F, R]
    # the move of the mean pre-activations W m_f to their targets sum_k pi_k W m_k
    if weights_sha256 is None:
        shift = gamma * _times_weight(module, weights @ means[retain] - means[forget])  # [F, out]
    else:
        moved = _mean_preactivations(module, layer.name, stats, weights_sha256)  # [C, out]
        shift = gamma * (weights @ moved[retain] - moved[forget])
    residual = _residual_shift(layer, stats, forget, retain, weights)
    if residual is not None:
        shift = shift + gamma * residual
    v = stats.directions[:, forget].double()  # [d, F]
    gram = means[forget] @ v  # [F, F]: m_f . v_g
    try:
        coef = torch.linalg.solve(gram, shift)  # [F, out]: (M^T V)^{-1} D^T, so delta M = D
    except RuntimeError:
        raise ObliviateError("the forget classes' mean inputs are linearly dependent at the last "
                             "feature layer; forget them one request at a time") from None
    # delta = coef^T V^T = D (V^T M)^{-1} V^T, [out, d]: made when applied (FeatureEdit.delta)
    reach = stats.ranges.double()[:, forget].abs().amax(-1)  # [C, F]: max |v_f . u| per class
    channel_bound = reach @ coef.abs()  # [C, out]
    mixture = {f: {k: p for k, p in zip(retain, row) if p >= 0.01}
               for f, row in zip(forget, weights.tolist())}  # fmt: skip
    return FeatureEdit(coef, v, channel_bound.float(), mixture, residual is not None)


def _residual_shift(layer: FeatureLayer, stats: LayerStatistics, forget: list[int],
                    retain: list[int], weights: torch.Tensor) -> torch.Tensor | None:  # fmt: skip
    """``[F, out]``: what the branch's mean pre-activation must move besides its own gap so that
    the residual *sum* (branch times ``output_scale`` plus shortcut) of each forget class lands
    on the mixture of the kept classes' sums: the shortcut's gap, divided by the scale. ``None``
    for a layer without a recorded shortcut. A channel whose scale is 0 cannot move its sum;
    it gets no share."""
    if layer.residual is None or layer.output_scale is None or stats.skip_mean is None:
        return None
    skip = stats.skip_mean.double()
    scale = layer.output_scale.double().cpu()
    if skip.shape[1] != len(scale):
        raise ObliviateError("the layer statistics' shortcut means do not fit the model's last "
                             "feature layer")  # fmt: skip
    gap = weights @ skip[retain] - skip[forget]  # [F, out]
    inverse = torch.where(scale.abs() > 1e-6, 1.0 / scale, torch.zeros_like(scale))
    return gap * inverse


def _mean_preactivations(module: nn.Module, name: str, stats: LayerStatistics,
                         weights_sha256: str) -> torch.Tensor:  # fmt: skip
    """``[C, out]`` float64: ``W m_c`` for every class (bias included), computed once per stored
    statistics and weights. Given again only for the same ``class_mean`` tensor, unchanged since
    (version counter), the same layer's same weight and bias tensors, unchanged since, and the
    same digest of the weights: the caller's check that they are the bytes the statistics were
    recorded on (:func:`obliviate.stats.stale_reason`)."""
    params = [module.weight] + ([module.bias] if module.bias is not None else [])
    key = (name, weights_sha256, stats.class_mean._version, tuple(p._version for p in params))
    kept = _MEAN_PREACTIVATIONS.get(stats.class_mean)
    if kept is not None and kept[0] == key and all(r() is p for r, p in zip(kept[1], params)):
        return kept[2]
    moved = _times_weight(module, stats.class_mean.double())
    _MEAN_PREACTIVATIONS[stats.class_mean] = (key, [weakref.ref(p) for p in params], moved)
    return moved


def _columns(module: nn.Module) -> int:
    """Columns of :func:`weight_matrix` (the bias's included)."""
    return module.weight[0].numel() + (module.bias is not None)


def _times_weight(module: nn.Module, rows: torch.Tensor) -> torch.Tensor:
    """``rows @ weight_matrix(module).T`` in float64 (``rows``: ``[n, d]`` float64), without
    building the float64 matrix: a layer's weights are the largest tensors a forget touches,
    and a copy of them costs more than the product (one page fault per 4 KiB of it)."""
    w = module.weight.detach().reshape(module.weight.shape[0], -1).cpu()
    k = w.shape[1]
    step = max(1, min(w.shape[0], (1 << 16) // k))  # output channels per block of <= 512 KiB
    block = torch.empty(step, k, dtype=torch.float64)  # one block, refilled
    out = torch.empty(len(rows), w.shape[0], dtype=torch.float64)
    for i in range(0, w.shape[0], step):
        n = min(step, w.shape[0] - i)
        block[:n].copy_(w[i : i + n])
        torch.mm(rows[:, :k], block[:n].T, out=out[:, i : i + n])
    if module.bias is not None:
        out += rows[:, k:] * module.bias.detach().cpu().double()
    return out


@torch.no_grad()
def apply_edit(model: nn.Module, layer: FeatureLayer, edit: FeatureEdit) -> None:
    """Add ``edit.delta`` to the layer's weight (and bias) in place."""
    module = layer.module(model)
    delta = edit.delta.to(module.weight.device, module.weight.dtype)
    if module.bias is not None:
        module.bias += delta[:, -1]
        delta = delta[:, :-1]
    module.weight += delta.reshape(module.weight.shape)


def logit_bounds(classifier: nn.Linear, feature_bound: torch.Tensor) -> torch.Tensor:
    """``[C, C]``: ``bound[y, k]`` bounds the change of ``z_y - z_k`` on class ``y``'s training
    samples, ``sum_i |W_yi - W_ki| * feature_bound[y, i]``; a block of rows ``y`` at a time
    (:data:`BOUND_BLOCK` elements of ``|W_y - W_k|`` at most)."""
    w = classifier.weight.detach().float().cpu()
    c, h = w.shape
    step = max(1, BOUND_BLOCK // max(1, c * h))
    out = torch.empty(c, c)
    for i in range(0, c, step):
        gaps = (w[i : i + step, None, :] - w[None, :, :]).abs_()  # [rows, C, H]
        torch.bmm(gaps, feature_bound[i : i + step, :, None].float(), out=out[i : i + step, :, None])
    return out


def retain_drop_bound(layer_stats: LayerStatistics, bounds: torch.Tensor, forget: list[int],
                      retain: list[int]) -> float | None:  # fmt: skip
    """Points of kept-class *training* accuracy that the edit can cost at most against the
    truncation oracle, or ``None`` when the statistics cannot tell (no confusion matrix).

    A sample of kept class ``y`` whose margin over every other class is at least ``B_y =
    max_k bounds[y, k]`` keeps its prediction (the forget rows only go down afterwards). So
    at most ``P(margin < B_y)`` of class ``y`` is wrong after the edit, read conservatively from
    the stored quantiles, while the oracle gets wrong at least the samples the model got wrong
    less those it sent to a forget class.
    """
    confusion = layer_stats.confusion
    if not confusion.numel():
        return None
    total, lost = 0.0, 0.0
    q = layer_stats.margin_quantiles
    # per class, as tensors at once (counts are whole numbers, exact in float32), then as floats
    counts = confusion.sum(1).tolist()
    right = confusion.diagonal().tolist()
    to_forget = confusion[:, forget].sum(1).tolist()
    b_all = bounds.amax(1)
    above_all = q >= b_all[:, None].to(q.dtype)  # [C, QUANTILES + 1]
    first = torch.where(above_all.any(1), above_all.int().argmax(1), -1).tolist()
    for y in retain:
        n = float(counts[y])
        if n == 0:
            continue
        # at most i/QUANTILES of the samples lie below the i-th stored rank (floor ranks)
        at_risk = 1.0 if first[y] < 0 else float(first[y]) / QUANTILES
        wrong_before = 1.0 - float(right[y]) / n
        sent_to_forget = float(to_forget[y]) / n
        lost += n * max(0.0, min(1.0, at_risk) - wrong_before + sent_to_forget)
        total += n
    return 100.0 * lost / total if total else 0.0

