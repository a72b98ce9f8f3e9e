"""Pure metric functions and the evaluation suite of the paper (Sec. 4.1).

A_R   test accuracy on the retain classes (%)
FE    test error on the forget classes (%)
RE    forget-class test error after the relearn probe: everything but the final classifier
      layer frozen, the classifier trained ``relearn_steps`` steps on the full training set
      (forget classes included), SGD lr 0.01, momentum 0.9, batch 128 by default
S     (A_R + (FE + RE) / 2) / 2
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from obliviate.data import Dataset, Split
from obliviate.errors import ObliviateError
from obliviate.models import Classifier
from obliviate.training import TrainConfig, batched_eval, extract_features, fit, predict


def per_class_accuracy(
    preds: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> dict[int, float | None]:
    """Accuracy (%) of every class; ``None`` for a class with no sample."""
    out: dict[int, float | None] = {}
    for c in range(num_classes):
        mask = labels == c
        out[c] = 100.0 * (preds[mask] == c).float().mean().item() if mask.any() else None
    return out


def _accuracy(preds: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> float:
    if not mask.any():
        return math.nan
    return 100.0 * (preds[mask] == labels[mask]).float().mean().item()


def retain_accuracy(
    preds: torch.Tensor, labels: torch.Tensor, forget_classes: Sequence[int]
) -> float:
    """A_R: accuracy (%) over all samples whose class is not forgotten (NaN if none)."""
    mask = ~torch.isin(labels, torch.tensor(list(forget_classes), dtype=labels.dtype))
    return _accuracy(preds, labels, mask)


def forget_error(
    preds: torch.Tensor, labels: torch.Tensor, forget_classes: Sequence[int]
) -> float:
    """FE: error (%) over all samples of the forgotten classes (NaN if none)."""
    mask = torch.isin(labels, torch.tensor(list(forget_classes), dtype=labels.dtype))
    return 100.0 - _accuracy(preds, labels, mask)


def unlearning_score(retain_acc: float, forget_err: float, relearn_err: float) -> float:
    """S = (A_R + M) / 2 with M = (FE + RE) / 2 (paper Eqs. 8-9)."""
    return (retain_acc + (forget_err + relearn_err) / 2.0) / 2.0


@dataclass(frozen=True)
class RelearnConfig:
    """The relearn probe: ``steps`` SGD steps on the final classifier layer only."""

    steps: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ObliviateError(f"the relearn learning rate (relearn_lr) must be a positive "
                                 f"number, got {self.lr}",
                                 cli=f"the relearn learning rate (--relearn-lr) must be a positive "
                                     f"number, got {self.lr}")  # fmt: skip
        if self.batch_size < 1:
            raise ObliviateError(f"the relearn batch size must be >= 1, got {self.batch_size}")


def relearn_probe(model: Classifier, train: Split, config: RelearnConfig, *,
                  features: torch.Tensor | None = None) -> Classifier:  # fmt: skip
    """A copy of ``model`` whose final classifier layer was retrained on ``train``.

    Everything before the classifier is frozen (and in eval mode), so its features are
    computed once and the linear layer is trained on them: the same optimisation as training
    through the frozen network, without recomputing the frozen part every step. ``features``:
    ``model``'s penultimate features of ``train.x`` when the caller has them already.
    """
    probed = copy.deepcopy(model).eval()
    if features is None:
        features = extract_features(probed, train.x)
    head = probed.classifier
    device = next(head.parameters()).device
    fit(
        head,
        features.to(device),
        train.y.to(device),
        TrainConfig(
            steps=config.steps,
            batch_size=config.batch_size,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=0.0,
            seed=config.seed,
        ),
        description="relearn probe",
    )
    return probed.eval()


@dataclass(frozen=True)
class EvalReport:
    """The paper's metrics for one model. ``to_dict`` gives the JSON keys of the CLI."""

    retain_acc: float
    forget_err: float | None
    relearn_err: float | None
    score: float | None
    forget_seconds: float | None
    per_class_acc: dict[int, float | None]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["per_class_acc"] = {str(k): v for k, v in self.per_class_acc.items()}
        return out


def evaluate_model(
    model: Classifier,
    dataset: Dataset,
    forget_classes: Sequence[int],
    *,
    relearn: RelearnConfig | None = RelearnConfig(),
    forget_seconds: float | None = None,
) -> EvalReport:
    """Per-class test accuracy, A_R, FE, RE (when ``relearn`` is given) and S of ``model``.

    With no forget classes (a model that has forgotten nothing), ``retain_acc`` is the test
    accuracy over every class and FE, RE and S are ``None``.
    """
    forget_classes = sorted(set(int(c) for c in forget_classes))
    if not forget_classes:
        preds = predict(model, dataset.test.x)
        everything = torch.ones_like(dataset.test.y, dtype=torch.bool)
        return EvalReport(
            retain_acc=_accuracy(preds, dataset.test.y, everything), forget_err=None,
            relearn_err=None, score=None, forget_seconds=forget_seconds,
            per_class_acc=per_class_accuracy(preds, dataset.test.y, dataset.num_classes),
        )  # fmt: skip
    dataset.check_classes(forget_classes)
    if len(forget_classes) >= dataset.num_classes:
        raise ObliviateError("cannot evaluate with every class forgotten: no retain class left")
    labels = dataset.test.y
    preds = predict(model, dataset.test.x)
    retain_acc = retain_accuracy(preds, labels, forget_classes)
    forget_err = forget_error(preds, labels, forget_classes)
    if math.isnan(forget_err) or math.isnan(retain_acc):
        raise ObliviateError("the test split lacks samples of the forget or the retain classes")
    relearn_err = score = None
    if relearn is not None and relearn.steps > 0:
        probed = relearn_probe(model, dataset.train, relearn)
        relearn_err = forget_error(predict(probed, dataset.test.x), labels, forget_classes)
        score = unlearning_score(retain_acc, forget_err, relearn_err)
    return EvalReport(
        retain_acc=retain_acc,
        forget_err=forget_err,
        relearn_err=relearn_err,
        score=score,
        forget_seconds=forget_seconds,
        per_class_acc=per_class_accuracy(preds, labels, dataset.num_classes),
    )


def truncation_oracle(model: Classifier, dataset: Dataset, forget_classes: Sequence[int]) -> EvalReport:
    """The truncation oracle of ``model`` (the original, before forgetting) on the test split:
    its predictions with the forget classes' logits masked, so it predicts only kept classes.
    Its A_R is the yardstick of an output-layer forget; its FE is 100 by construction; RE and S
    are not defined for it (``None``)."""
    forget_classes = sorted(set(int(c) for c in forget_classes))
    dataset.check_classes(forget_classes)
    retain = [c for c in range(dataset.num_classes) if c not in forget_classes]
    if not forget_classes or not retain:
        raise ObliviateError("the truncation oracle needs some forget classes and some kept ones")
    index = torch.tensor(retain)
    preds = torch.cat(batched_eval(lambda xb: index[model(xb)[:, retain].argmax(dim=1).cpu()],
                                   model, dataset.test.x, 1024))  # fmt: skip
    labels = dataset.test.y
    return EvalReport(
        retain_acc=retain_accuracy(preds, labels, forget_classes),
        forget_err=forget_error(preds, labels, forget_classes), relearn_err=None, score=None,
        forget_seconds=None, per_class_acc=per_class_accuracy(preds, labels, dataset.num_classes),
    )  # fmt: skip


# --- metrics beyond the paper: membership inference and distance to a retrained reference ---


@torch.no_grad()
def true_class_confidence(model: Classifier, split: Split, *, batch_size: int = 1024) -> torch.Tensor:
    """Softmax probability the model gives each sample's own label (CPU tensor)."""
    logits = torch.cat(batched_eval(lambda xb: model(xb).cpu(), model, split.x, batch_size))
    return confidence_of(logits, split.y)


def confidence_of(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The softmax probability of each row's own label (CPU tensor)."""
    return logits.cpu().softmax(1).gather(1, labels.cpu().view(-1, 1)).squeeze(1)


def mia_efficacy(
    member_confidence: torch.Tensor,
    nonmember_confidence: torch.Tensor,
    target_confidence: torch.Tensor,
    *,
    max_per_side: int = 5000,
    seed: int = 0,
) -> float:
    """MIA-efficacy (%): how many target samples a membership attack calls non-members.

    An RBF support-vector classifier (scikit-learn ``SVC``, C=3, gamma="auto", the attack of
    the Unlearn-Sparse/SalUn code) is fitted on the true-class confidence of known members
    (label 1: retain training samples) and non-members (label 0: test samples), with equal
    counts (the smaller side, capped at ``max_per_side``, drawn with ``seed``); it is then
    applied to the target samples (the forget training samples). Higher means the forget set
    looks more like data the model never saw.
    """
    from sklearn.svm import SVC

    n = min(len(member_confidence), len(nonmember_confidence), max_per_side)
    if n == 0 or len(target_confidence) == 0:
        raise ObliviateError("MIA needs member, non-member and target samples")
    generator = torch.Generator().manual_seed(seed)
    members = member_confidence[torch.randperm(len(member_confidence), generator=generator)[:n]]
    nonmembers = nonmember_confidence[
        torch.randperm(len(nonmember_confidence), generator=generator)[:n]
    ]
    features = torch.cat([members, nonmembers]).double().view(-1, 1).numpy()
    labels = torch.cat([torch.ones(n), torch.zeros(n)]).numpy()
    attack = SVC(C=3, gamma="auto", kernel="rbf").fit(features, labels)
    predicted = attack.predict(target_confidence.double().view(-1, 1).numpy())
    return 100.0 * float((predicted == 0).mean())


@torch.no_grad()
def mean_kl_divergence(
    reference: Classifier, model: Classifier, x: torch.Tensor, *, batch_size: int = 1024
) -> float:
    """Mean ``KL(reference(x) || model(x))`` over the samples (nats); 0 for no sample."""
    if len(x) == 0:
        return 0.0
    ref = torch.cat(batched_eval(lambda b: reference(b).log_softmax(1).cpu(), reference, x,
                                 batch_size))  # fmt: skip
    out = torch.cat(batched_eval(lambda b: model(b).log_softmax(1).cpu(), model, x, batch_size))
    return float((ref.exp() * (ref - out)).sum()) / max(len(x), 1)
