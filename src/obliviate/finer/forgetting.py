"""Hayase et al.'s selective forgetting: forgetting terms, the correction and remembering terms,
and the pattern losses, trained by the one training loop on ``D_f`` and ``D_f,clean`` only.

- ``L_RND(x) = ||f_theta(x) - f_eta(x)||^2`` with ``eta`` a randomly initialised copy (Eq. 1);
- ``L_RLD(x) = CE(f_theta(x), u)``, ``u`` uniform on a class subset, redrawn every batch (Eq. 3);
  the default subset is the classes outside the chosen ones ("RLD (1-9)" in their Table 2);
- truncation: predict the argmax over all classes but the removed ones (Eq. 4), no training;
- ``L_c = CE`` on ``D_f,clean`` (Eq. 5);
- ``R = (theta - theta_old)^T F(theta_old) (theta - theta_old)`` with the diagonal empirical
  Fisher computed once before forgetting (Eqs. 6-7). Eq. 7 averages over ``D_f ∪ D_r``; the
  paper's experiments used "the dataset except for the class 0", ``D_r``. Both are offered
  (:func:`pretraining_fisher`); ``D_r`` is the default: on Fashion-MNIST it scored the same or
  better (docs/results/finer-forgetting.md, "Which Fisher").

Pattern A minimises ``L_f + lambda_KL R`` (Eq. 8); patterns B and C minimise
``L_c + lambda_f L_f + lambda_KL R`` (Eq. 9) with SGD, momentum 0.9, 10 epochs.

Our additions (issue 25; the defaults leave the paper's loss exactly as above):

- ``lambda_other > 0`` adds to ``L_c`` a distillation of the old (pretrained) model's logits of
  the *other* classes on ``D_f,clean`` (:func:`other_logit_loss`): ``L_c`` may then raise the
  forgotten class's logit on those samples but not lower the rest, so the correction stops
  pulling every other class's logit down;
- ``term="clean-old"`` / ``term="clean-self"`` replace ``L_f`` by a distillation of each ``D_f``
  sample towards the output on its own untransformed copy in ``D_f,clean``
  (:func:`clean_distillation_loss`): the old model's output (the issue's candidate) or the
  current model's (gradient stopped), i.e. "the transform changes nothing", instead of random
  labels that also destroy ``D_f``'s own label (Pattern C asks to keep it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from obliviate.errors import ObliviateError
from obliviate.finer.splits import FinerData
from obliviate.fisher import diagonal_fisher, fisher_penalty
from obliviate.models import Classifier
from obliviate.training import TrainConfig, fit, predict

Pattern = Literal["A", "B", "C"]
ForgettingTerm = Literal["rld", "rnd", "clean-old", "clean-self"]
PATTERNS: tuple[str, ...] = ("A", "B", "C")
#: The forgetting terms: the paper's ``rld`` and ``rnd``; ours ``clean-old`` and ``clean-self``
#: (patterns B and C only; see the module docstring).
FORGETTING_TERMS: tuple[str, ...] = ("rld", "rnd", "clean-old", "clean-self")


def rnd_loss(model: nn.Module, random_model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Random network distillation: squared distance to a random network's outputs."""
    with torch.no_grad():
        target = random_model(x)
    return (model(x) - target).pow(2).sum(dim=1).mean()


def rld_loss(
    model: nn.Module, x: torch.Tensor, label_pool: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Random label distillation: CE to labels drawn uniformly from ``label_pool``."""
    pick = torch.randint(len(label_pool), (len(x),), generator=generator)
    return nn.functional.cross_entropy(model(x), label_pool[pick].to(x.device))


def clean_distillation_loss(
    model: nn.Module, x_forget: torch.Tensor, target_logits: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of ``model(x_forget)`` against the soft labels ``softmax(target_logits)``.

    ``target_logits`` are the outputs on the untransformed copies of ``x_forget`` (``D_f,clean``),
    so the loss is smallest when the transform no longer changes the output. It equals the KL
    divergence up to the targets' entropy, a constant.
    """
    target = torch.softmax(target_logits.detach(), dim=1)
    return -(target * torch.log_softmax(model(x_forget), dim=1)).sum(dim=1).mean()


def other_logit_loss(
    logits: torch.Tensor, old_logits: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """Mean squared distance between the logits of the classes ``keep`` and the old model's.

    The forgotten classes' logits are left free, so ``L_c`` can raise them; the others are held
    at the pretrained model's values on the same samples.
    """
    return (logits[:, keep] - old_logits[:, keep].detach()).pow(2).mean()


def truncated_predict(model: nn.Module, x: torch.Tensor, removed: list[int]) -> torch.Tensor:
    """Labels predicted while ignoring the ``removed`` classes' outputs (no training)."""
    preds = []
    for start in range(0, len(x), 1024):
        with torch.no_grad():
            logits = model(x[start : start + 1024].to(next(model.parameters()).device)).cpu()
        logits[:, removed] = float("-inf")
        preds.append(logits.argmax(dim=1))
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


@dataclass(frozen=True)
class ForgetSettings:
    """Hyperparameters of one selective-forgetting run.

    Defaults: the paper's Pattern A values (lr 1e-5, lambda_KL 1e5), SGD momentum 0.9,
    10 epochs; ``lambda_f`` weights ``L_f`` in patterns B and C (their Table S1 has the
    cross-validated values per dataset, transform and pattern).
    """

    pattern: Pattern = "A"
    term: ForgettingTerm = "rld"
    lr: float = 1e-5
    lambda_kl: float = 1e5
    lambda_f: float = 1.0
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    #: Ours: weight of :func:`other_logit_loss` on ``D_f,clean`` next to ``L_c`` (0: the paper).
    lambda_other: float = 0.0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ObliviateError(f"unknown pattern {self.pattern!r}; known: A, B, C")
        if self.term not in FORGETTING_TERMS:
            raise ObliviateError(f"unknown forgetting term {self.term!r}; known: "
                                 f"{', '.join(FORGETTING_TERMS)}")  # fmt: skip
        if not (self.lr > 0 and self.lambda_kl >= 0 and self.lambda_f >= 0
                and self.lambda_other >= 0):  # fmt: skip
            raise ObliviateError("lr must be > 0 and lambda_kl, lambda_f, lambda_other >= 0")
        if self.pattern == "A" and (self.term.startswith("clean") or self.lambda_other > 0):
            raise ObliviateError(
                "Pattern A has no D_f,clean to distil from (its D_f is untransformed): use "
                "term 'rld' or 'rnd' and lambda_other=0, or pattern B/C"
            )


#: Which samples the remembering term's Fisher is averaged over: ``retain`` = ``D_r`` (what the
#: paper's experiments did: "the dataset except for the class 0"), ``pretraining`` =
#: ``D_f ∪ D_r`` (its Eq. 7 as written).
FISHER_DATA: tuple[str, ...] = ("retain", "pretraining")


def pretraining_fisher(
    model: Classifier, data: FinerData, *, on: str = "retain"
) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the pretraining data (Eq. 7).

    Args:
        on: ``pretraining`` averages over ``D_f ∪ D_r`` (Eq. 7 as written); ``retain`` over
            ``D_r`` only, as the paper's experiments section describes. The D_f samples carry
            the transform, so with ``pretraining`` the remembering term also anchors the
            weights that read it.
    """
    if on not in FISHER_DATA:
        raise ObliviateError(f"the Fisher is computed on 'retain' or 'pretraining', got {on!r}")
    split = data.retain.train if on == "retain" else data.pretraining()
    (fisher,) = diagonal_fisher(model, split.x, split.y, [list(range(data.num_classes))],
                                floor=0.0)  # fmt: skip
    return fisher


def selective_forget(
    model: Classifier,
    data: FinerData,
    settings: ForgetSettings,
    *,
    fisher: dict[str, torch.Tensor] | None = None,
    forget_part: str = "train",
    progress: bool = False,
) -> Classifier:
    """A copy of ``model`` trained with the pattern's loss on ``D_f`` (and ``D_f,clean``).

    Args:
        model: the pretrained (poisoned) model; left untouched.
        data: the four sets; only ``D_f`` and ``D_f,clean`` (``forget_part`` split) are read.
        settings: pattern, forgetting term and hyperparameters.
        fisher: the pretraining Fisher, if already computed (it is the same for every run on
            one pretrained model); computed here otherwise.
    """
    device = next(model.parameters()).device
    fisher = fisher if fisher is not None else pretraining_fisher(model, data)
    forget = getattr(data.forget, forget_part)
    clean = getattr(data.forget_clean, forget_part)
    if len(forget) == 0:
        raise ObliviateError("D_f is empty: nothing to forget")
    out = copy.deepcopy(model)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(settings.seed)
    pool = torch.tensor([c for c in range(data.num_classes) if c not in data.classes])
    random_model = None
    if settings.term == "rnd":
        torch.manual_seed(settings.seed)
        random_model = copy.deepcopy(model)
        for module in random_model.modules():
            if hasattr(module, "reset_parameters") and module is not random_model:
                module.reset_parameters()
        random_model.eval()
    xf, xc = forget.x.to(device), clean.x.to(device)
    yc = clean.y.to(device)
    if settings.pattern != "A" and len(xf) != len(xc):
        raise ObliviateError(f"D_f has {len(xf)} samples and D_f,clean {len(xc)}; patterns B and "
                             "C need them paired (D_f = T(D_f,clean), same order)")  # fmt: skip
    old_logits = None
    if settings.lambda_other > 0 or settings.term == "clean-old":
        was_training = model.training
        model.eval()
        with torch.no_grad():
            old_logits = torch.cat([model(xc[i : i + 1024]) for i in range(0, len(xc), 1024)])
        model.train(was_training)
    keep = torch.tensor([c for c in range(data.num_classes) if c not in data.classes],
                        device=device)  # fmt: skip

    def objective(net: nn.Module, idx: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
        x_forget = xf[idx]
        # the paper's terms are computed in the paper's order (forgetting, then correction)
        if random_model is not None:
            forgetting = rnd_loss(net, random_model, x_forget)
        elif settings.term == "rld":
            forgetting = rld_loss(net, x_forget, pool, generator)
        remembering = settings.lambda_kl * fisher_penalty(net, anchor, fisher)
        if settings.pattern == "A":
            return forgetting + remembering
        clean_logits = net(xc[idx])
        if settings.term == "clean-old":
            forgetting = clean_distillation_loss(net, x_forget, old_logits[idx])
        elif settings.term == "clean-self":
            forgetting = clean_distillation_loss(net, x_forget, clean_logits)
        correction = nn.functional.cross_entropy(clean_logits, yc[idx])
        if settings.lambda_other > 0:
            correction = correction + settings.lambda_other * other_logit_loss(
                clean_logits, old_logits[idx], keep)  # fmt: skip
        return correction + settings.lambda_f * forgetting + remembering

    index = torch.arange(len(xf), device=device)
    fit(
        out, index, index,
        TrainConfig(epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
                    momentum=0.9, weight_decay=0.0, seed=settings.seed),
        objective=objective, description=f"pattern {settings.pattern} ({settings.term})",
        progress=progress,
    )  # fmt: skip
    return out


def accuracies(
    model: nn.Module, data: FinerData, *, part: str = "test", truncate: list[int] | None = None
) -> dict[str, float]:
    """Top-1 accuracy (0-1) on ``D_r``, ``D_f``, ``D_f,clean`` and ``D_r,extra``."""
    out = {}
    for name, sets in data.named().items():
        split = getattr(sets, part)
        if len(split) == 0:
            out[name] = float("nan")
            continue
        if truncate is not None:
            preds = truncated_predict(model, split.x, truncate)
        else:
            preds = predict(model, split.x)
        out[name] = float((preds == split.y).float().mean())
    return out
