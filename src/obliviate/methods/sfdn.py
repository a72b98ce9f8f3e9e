"""Fisher forgetting (Golatkar, Achille & Soatto, "Eternal Sunshine of the Spotless Net", CVPR
2020; "SFDN" in the mnemonic paper).

The diagonal Fisher F_R of the retain set (the true Fisher, expectation over the model's own
predictions) says which weights the retain classes rely on. Every weight is resampled from a
Gaussian around its trained value with variance ``alpha / F_R``: weights the retain set does not
constrain receive large noise and lose what only the forget classes put there.

Reimplementation decisions (following the authors' notebook as reused by SSD's benchmark code):

- variance ``alpha * clamp(1 / (F_R + 1e-8), max=1e3)``; the classifier's rows are clamped at
  1e2 instead; a weight tensor uses the mean variance over its input dimension (dim 1);
- the classifier's rows of the forget classes are set to mean 0 and variance 1e-4 (their
  logits are silenced rather than perturbed: "forget-class logits handled as in the paper");
- the classifier's variance, and that of every 1-d parameter (biases, norm scales), is
  multiplied by 10;
- ``alpha = 1e-6``, the value SSD's reimplementation uses.

The Fisher is computed on every retain sample (as the authors do) unless ``max_samples`` caps
it; that is what makes the method slow on large data sets.
"""

from __future__ import annotations

import copy

import torch

from obliviate.fisher import expected_fisher
from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
    check_positive,
)
from obliviate.models import Classifier


def noise_variance(
    fisher: torch.Tensor, alpha: float, *, is_classifier: bool, forget_rows: list[int]
) -> torch.Tensor:
    """The variance of the Gaussian each weight is resampled from (see module docstring)."""
    var = (1.0 / (fisher + 1e-8)).clamp(max=1e3)
    if is_classifier:
        var = var.clamp(max=1e2)
    var = alpha * var
    if var.ndim > 1:
        var = var.mean(dim=1, keepdim=True).expand_as(fisher).clone()
    if is_classifier and forget_rows:
        var[forget_rows] = 1e-4
    if is_classifier or var.ndim == 1:
        var = var * 10
    return var


@METHODS.register("sfdn")
class FisherForgetting(UnlearningMethod):
    """Resample the weights with Fisher-shaped Gaussian noise from the retain set.

    Args:
        alpha: noise scale (variance ``alpha / F_R``).
        max_samples: use at most this many retain samples for the Fisher (``None``: all).
        chunk_size: samples per vectorised Fisher pass (memory: ``chunk_size * classes``
            gradients).
    """

    name = "sfdn"
    needs = frozenset({"retain"})
    summary = "Gaussian noise with variance alpha/F_retain; forget-class logits silenced"

    def __init__(
        self, *, alpha: float = 1e-6, max_samples: int | None = None, chunk_size: int = 8
    ) -> None:
        check_positive(alpha=alpha, max_samples=max_samples, chunk_size=chunk_size)
        self.alpha = alpha
        self.max_samples = max_samples
        self.chunk_size = chunk_size

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        retain = context.require("retain")
        x = retain.x
        generator = torch.Generator().manual_seed(context.seed)
        if self.max_samples is not None and len(x) > self.max_samples:
            x = x[torch.randperm(len(x), generator=generator)[: self.max_samples]]
        fisher = expected_fisher(model, x, chunk_size=self.chunk_size)
        out = copy.deepcopy(model)
        classifier_params = {f"classifier.{n}" for n, _ in out.classifier.named_parameters()}
        forget_rows = sorted(set(request.classes) | set(context.previously_forgotten))
        with torch.no_grad():
            for name, param in out.named_parameters():
                if name not in fisher:
                    continue
                is_classifier = name in classifier_params
                var = noise_variance(
                    fisher[name], self.alpha, is_classifier=is_classifier, forget_rows=forget_rows
                )
                mean = param.clone()
                if is_classifier:
                    mean[forget_rows] = 0.0
                noise = torch.randn(param.shape, generator=generator).to(param.device)
                param.copy_(mean + var.sqrt() * noise)
        return MethodOutput(model=out, details={"fisher_samples": len(x)})
