"""Per-sample diagonal Fisher information, computed in vectorised passes with ``torch.func``.

The diagonal (empirical) Fisher of a set of samples is the mean of the squared per-sample
gradients of the cross-entropy loss. Per-sample gradients come from ``vmap(grad(...))`` over
chunks of samples, so one code or one image costs one vectorised row, never a Python loop of
``backward`` calls. Models made only of linear layers (``fc``, ``hardtanh-mlp``) take an exact
shortcut: a linear layer's per-sample gradient is rank one, so the sum of its squares is one
matrix product per batch (see :class:`_RankOne`), tens to hundreds of times faster on a CPU.
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
    if not _diagonal_fisher_linear(model, inputs, labels, group_sets, sums, counts):
        _diagonal_fisher_vmap(model, inputs, labels, group_sets, sums, counts, chunk_size)
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


def _diagonal_fisher_linear(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    group_sets: list[torch.Tensor],
    sums: list[ParamDict],
    counts: list[int],
    batch_size: int = 512,
) -> bool:
    """Rank-one path of :func:`diagonal_fisher`; ``False`` (nothing added) if it does not apply."""
    layers = _linear_layers(model)
    if layers is None:
        return False
    was_training = model.training
    model.eval()
    rank_one = _RankOne(model, layers)
    partial = [{n: torch.zeros_like(t) for n, t in s.items()} for s in sums]
    partial_counts = [0 for _ in counts]
    try:
        for start in range(0, inputs.shape[0], batch_size):
            x, y = inputs[start : start + batch_size], labels[start : start + batch_size]
            logits = rank_one.forward(x)
            if logits is None:
                return False
            masks = [torch.isin(y, members) for members in group_sets]
            loss = nn.functional.cross_entropy(logits, y, reduction="sum")
            rank_one.add_squared_grads(loss, masks, partial)
            for gi, mask in enumerate(masks):
                partial_counts[gi] += int(mask.sum())
    finally:
        model.train(was_training)
    for gi, part in enumerate(partial):
        counts[gi] += partial_counts[gi]
        for name, value in part.items():
            sums[gi][name] += value
    return True


def _diagonal_fisher_vmap(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    group_sets: list[torch.Tensor],
    sums: list[ParamDict],
    counts: list[int],
    chunk_size: int,
) -> None:
    """Generic per-sample path of :func:`diagonal_fisher`."""
    for y, squared in per_sample_squared_grads(model, inputs, labels, chunk_size=chunk_size):
        for gi, members in enumerate(group_sets):
            mask = torch.isin(y, members)
            n = int(mask.sum())
            if n == 0:
                continue
            counts[gi] += n
            for name, sq in squared.items():
                sums[gi][name] += sq[mask].sum(dim=0)


def per_class_fisher(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> list[ParamDict]:
    """Diagonal Fisher of every class separately (used by the Fig. 2 overlap analysis)."""
    return diagonal_fisher(model, inputs, labels, [[c] for c in range(num_classes)])


def batch_gradient_importance(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 64
) -> ParamDict:
    """Mean over mini-batches of the squared mini-batch gradient of the cross-entropy.

    This is the importance estimate of Selective Synaptic Dampening (Foster et al. 2024): one
    backward pass per batch (the batch-mean loss), its gradient squared element-wise, averaged
    over the batches. It is cheaper than the per-sample Fisher and depends on ``batch_size``.
    The model is evaluated in eval mode and left unchanged.
    """
    if len(labels) == 0:
        raise ObliviateError("no samples were given to compute parameter importances")
    device = next(model.parameters()).device
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    sums = {n: torch.zeros_like(p) for n, p in params}
    was_training = model.training
    model.eval()
    batches = 0
    try:
        for start in range(0, len(labels), batch_size):
            x = inputs[start : start + batch_size].to(device)
            y = labels[start : start + batch_size].to(device)
            loss = nn.functional.cross_entropy(model(x), y)
            grads = torch.autograd.grad(loss, [p for _, p in params])
            for (name, _), g in zip(params, grads):
                sums[name] += g.pow(2)
            batches += 1
    finally:
        model.train(was_training)
    return {n: s / batches for n, s in sums.items()}


def expected_fisher(
    model: nn.Module, inputs: torch.Tensor, *, chunk_size: int = 8, batch_size: int = 512
) -> ParamDict:
    """Diagonal of the (true) Fisher information on ``inputs``.

    ``F = mean_x sum_y p(y|x) * (d CE(f(x), y) / d theta)^2``: the expectation is over the
    model's own predictive distribution, not the labels (the form Golatkar et al. 2020a use for
    Fisher forgetting).

    Two exact paths give the same numbers:

    * models whose parameters all sit in ``nn.Linear`` layers fed with ``[n, features]``
      inputs use the rank-one structure of a linear layer's per-sample gradient
      (``delta_n a_n^T``, so its square is ``delta_n^2 (a_n^2)^T``): one backward pass per class
      over a batch of ``batch_size`` samples, and a matrix product per layer;
    * any other model uses ``vmap(grad)`` per sample and class, ``chunk_size`` samples at a
      time (memory: ``chunk_size * num_classes`` gradients), which is far slower on a CPU.
    """
    if inputs.shape[0] == 0:
        raise ObliviateError("no samples were given to compute the Fisher information")
    was_training = model.training
    model.eval()
    try:
        fast = _expected_fisher_linear(model, inputs, batch_size)
        if fast is not None:
            return fast
        return _expected_fisher_vmap(model, inputs, chunk_size)
    finally:
        model.train(was_training)


def _linear_layers(model: nn.Module) -> dict[str, nn.Linear] | None:
    """The model's layers with trainable parameters, if every one of them is ``nn.Linear``."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    layers: dict[str, nn.Linear] = {}
    for name, module in model.named_modules():
        own = [f"{name}.{n}" if name else n for n, _ in module.named_parameters(recurse=False)]
        if not any(n in trainable for n in own):
            continue
        if not isinstance(module, nn.Linear):
            return None
        layers[name] = module
    return layers


class _RankOne:
    """Sums of squared per-sample gradients for all-linear models, without per-sample gradients.

    A linear layer's per-sample weight gradient is ``delta_n a_n^T`` (output error times input),
    so its square is ``delta_n^2 (a_n^2)^T`` and the sum over samples is one matrix product.
    One forward pass records every layer's input and output; each backward pass of a weighted
    loss sum gives every sample's ``delta``.
    """

    def __init__(self, model: nn.Module, layers: dict[str, nn.Linear]) -> None:
        self.model = model
        self.layers = layers
        self.seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor | None:
        """Logits of ``x``, or ``None`` when a layer sees non-2-D inputs (not rank one)."""
        self.seen.clear()
        handles = [m.register_forward_hook(self._remember(n)) for n, m in self.layers.items()]
        try:
            logits = self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        if any(a.ndim != 2 for a, _ in self.seen.values()):
            return None
        return logits

    def _remember(self, name: str):
        def hook(_module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            self.seen[name] = (args[0], output)

        return hook

    def add_squared_grads(
        self, loss: torch.Tensor, masks: list[torch.Tensor], sums: list[ParamDict]
    ) -> None:
        """Add ``sum over masked samples of (d loss_n / d theta)^2`` to each of ``sums``.

        ``loss`` must be a sum of per-sample terms of the last :meth:`forward` batch.
        """
        outputs = [self.seen[n][1] for n in self.layers]
        deltas = torch.autograd.grad(loss, outputs, retain_graph=True)
        for (name, layer), delta in zip(self.layers.items(), deltas):
            d2 = delta.detach().pow(2)
            a2 = self.seen[name][0].detach().pow(2)
            prefix = f"{name}." if name else ""
            for mask, target in zip(masks, sums):
                if layer.weight.requires_grad:
                    target[f"{prefix}weight"] += d2[mask].T @ a2[mask]
                if layer.bias is not None and layer.bias.requires_grad:
                    target[f"{prefix}bias"] += d2[mask].sum(dim=0)


def _expected_fisher_linear(
    model: nn.Module, inputs: torch.Tensor, batch_size: int
) -> ParamDict | None:
    """The rank-one fast path of :func:`expected_fisher`, or ``None`` if it does not apply."""
    layers = _linear_layers(model)
    if layers is None:
        return None
    device = next(model.parameters()).device
    rank_one = _RankOne(model, layers)
    sums = {n: torch.zeros_like(p) for n, p in model.named_parameters() if p.requires_grad}
    for start in range(0, inputs.shape[0], batch_size):
        x = inputs[start : start + batch_size].to(device)
        logits = rank_one.forward(x)
        if logits is None:
            return None
        prob = torch.softmax(logits, dim=1).detach()
        everyone = torch.ones(len(x), dtype=torch.bool, device=device)
        for y in range(logits.shape[1]):
            target = torch.full((len(x),), y, device=device)
            ce = nn.functional.cross_entropy(logits, target, reduction="none")
            # weighting each sample's loss by sqrt(p) weights its squared gradient by p
            rank_one.add_squared_grads((prob[:, y].sqrt() * ce).sum(), [everyone], [sums])
    return {n: s / inputs.shape[0] for n, s in sums.items()}


def _expected_fisher_vmap(model: nn.Module, inputs: torch.Tensor, chunk_size: int) -> ParamDict:
    """The generic per-sample path of :func:`expected_fisher`."""
    device = next(model.parameters()).device
    params = trainable_parameters(model)
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def loss_for_class(p: ParamDict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return nn.functional.cross_entropy(logits, y.unsqueeze(0))

    def sample_fisher(p: ParamDict, x: torch.Tensor, classes: torch.Tensor) -> ParamDict:
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        prob = torch.softmax(logits, dim=1)[0].detach()
        grads = vmap(grad(loss_for_class), in_dims=(None, None, 0))(p, x, classes)
        return {n: torch.tensordot(prob, g.pow(2), dims=1) for n, g in grads.items()}

    sums = {n: torch.zeros_like(p) for n, p in params.items()}
    per_sample = vmap(sample_fisher, in_dims=(None, 0, None))
    with torch.no_grad():
        num_classes = model(inputs[:1].to(device)).shape[1]
    classes = torch.arange(num_classes, device=device)
    for start in range(0, inputs.shape[0], chunk_size):
        x = inputs[start : start + chunk_size].to(device)
        for name, f in per_sample(params, x, classes).items():
            sums[name] += f.sum(dim=0)
    return {n: s / inputs.shape[0] for n, s in sums.items()}


def fisher_penalty(
    model: nn.Module, anchor: ParamDict, fisher: ParamDict
) -> torch.Tensor:
    """``sum_i F_i (theta_i - anchor_i)^2`` over the named parameters: the EWC term
    (Kirkpatrick et al. 2017; the remembering term R of Hayase et al.). Zero at the anchor."""
    total = torch.zeros((), device=next(model.parameters()).device)
    for name, param in model.named_parameters():
        if name in fisher:
            total = total + (fisher[name] * (param - anchor[name]).pow(2)).sum()
    return total
