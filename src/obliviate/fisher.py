"""Per-sample diagonal Fisher information, computed in vectorised passes with ``torch.func``.

The diagonal (empirical) Fisher of a set of samples is the mean of the squared per-sample
gradients of the cross-entropy loss. Per-sample gradients come from ``vmap(grad(...))`` over
chunks of samples, so one code or one image costs one vectorised row, never a Python loop of
``backward`` calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from obliviate.errors import ObliviateError

ParamDict = dict[str, torch.Tensor]

#: Added to every Fisher sum before dividing by the count, as the authors' code does
#: (their Fisher accumulators start at 1e-16), so that log-ratios never see an exact zero.
FISHER_FLOOR = 1e-16


def trainable_parameters(model: nn.Module) -> ParamDict:
    """Detached copies of the parameters that require grad, by name."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


_warmed_up = False


def warm_up() -> None:
    """Run ``vmap(grad(...))`` once on a scalar function.

    The first ``torch.func`` transform of a process spends about two seconds importing and
    initialising functorch; doing it here lets callers keep that out of timed sections.
    """
    global _warmed_up
    if not _warmed_up:
        vmap(grad(lambda t: (t * t).sum()))(torch.ones(2, 2))
        _warmed_up = True


def per_sample_squared_grads(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    chunk_size: int = 64,
) -> Iterable[tuple[torch.Tensor, ParamDict]]:
    """Yield ``(labels_chunk, {name: squared per-sample grads [n, *shape]})`` chunk by chunk.

    The model is evaluated in eval mode (batch-norm uses its running statistics), as in the
    authors' code. The model itself is not modified.
    """
    params = trainable_parameters(model)
    buffers = {name: b.detach() for name, b in model.named_buffers()}
    was_training = model.training
    model.eval()

    def sample_loss(p: ParamDict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return nn.functional.cross_entropy(logits, y.unsqueeze(0))

    per_sample_grad = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    try:
        for start in range(0, inputs.shape[0], chunk_size):
            x = inputs[start : start + chunk_size]
            y = labels[start : start + chunk_size]
            grads = per_sample_grad(params, x, y)
            yield y, {name: g.pow(2) for name, g in grads.items()}
    finally:
        model.train(was_training)


def diagonal_fisher(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    groups: Sequence[Sequence[int]],
    *,
    chunk_size: int = 64,
    floor: float = FISHER_FLOOR,
) -> list[ParamDict]:
    """Diagonal Fisher of each group of classes: ``(floor + sum of squared grads) / count``.

    Args:
        model: the classifier.
        inputs: samples (codes or images), shape ``[n, *input_shape]``.
        labels: their labels, shape ``[n]``.
        groups: class sets; the Fisher of a group averages over the samples whose label is in it.
        chunk_size: samples per vectorised pass (memory grows with it: one gradient per sample).
        floor: added before dividing, as the authors do.

    Returns:
        One ``{parameter name: Fisher tensor}`` per group.

    Raises:
        ObliviateError: a group has no sample, or a gradient is NaN/inf (the weights or the
            inputs are broken; forgetting would be meaningless).
    """
    device = next(model.parameters()).device
    inputs = inputs.to(device)
    labels = labels.to(device)
    group_sets = [torch.tensor(sorted(set(g)), device=device, dtype=labels.dtype) for g in groups]
    sums: list[ParamDict] = [
        {n: torch.full_like(p, floor) for n, p in trainable_parameters(model).items()}
        for _ in groups
    ]
    counts = [0 for _ in groups]
    for y, squared in per_sample_squared_grads(model, inputs, labels, chunk_size=chunk_size):
        for gi, members in enumerate(group_sets):
            mask = torch.isin(y, members)
            n = int(mask.sum())
            if n == 0:
                continue
            counts[gi] += n
            for name, sq in squared.items():
                sums[gi][name] += sq[mask].sum(dim=0)
    for gi, count in enumerate(counts):
        if count == 0:
            raise ObliviateError(
                f"no sample of classes {list(groups[gi])} was given to compute their Fisher"
            )
    fishers = [{n: s / counts[gi] for n, s in sums[gi].items()} for gi in range(len(groups))]
    for fisher in fishers:
        # a sum is NaN/inf iff some element is (or the values are ~1e38, equally broken)
        bad = [n for n, f in fisher.items() if not torch.isfinite(f.sum())]
        if bad:
            raise ObliviateError(
                f"the Fisher information is NaN/inf in {', '.join(bad[:3])}: the model's weights "
                "or inputs contain NaN/inf; check the model file (was training diverging?)"
            )
    return fishers


def per_class_fisher(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> list[ParamDict]:
    """Diagonal Fisher of every class separately (used by the Fig. 2 overlap analysis)."""
    return diagonal_fisher(model, inputs, labels, [[c] for c in range(num_classes)])
