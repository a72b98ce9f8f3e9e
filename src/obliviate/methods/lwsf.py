"""Learning with Selective Forgetting (Shibata, Irie, Ikami & Mitsuzumi, IJCAI 2021), run as a
data-free unlearning method, as the mnemonic paper compares with it ("LwSF": data-free,
add-train).

LwSF learns new tasks while deleting chosen old classes without the old data: every class has
a mnemonic code; the codes of the classes to *keep* are rehearsed, those of the classes to
*delete* are not, and LwF distillation keeps the old model's outputs on the preserved classes
while flattening those of the deleted ones. Deletion comes from what is *not* preserved while
the network keeps training.

An unlearning request has no new task and (in the mnemonic paper's setting) no data, so the
training runs on the codes alone. Each step takes a batch of codes of all classes and
minimises

    lambda_lwf * T^2 * [KL(old || new) on the preserved logits + KL(uniform || new) on the
                        deleted logits]
    + lambda_keep * CE(codes of preserved classes) + lambda_ewc / 2 * sum F (theta - theta_old)^2

with the authors' loss weights (T = 2, lambda_lwf = 5, lambda_keep = 10, lambda_ewc = 100) and
their SGD (momentum 0.9, weight decay 5e-4, batch 128). As in their distillation, the logits
outside each part are zeroed before the softmax. The EWC Fisher is the empirical Fisher of the
preserved classes' codes (no data).

Our decisions (no official unlearning recipe exists): plain softmax cross-entropy instead of
their additive-margin softmax (our models have a linear head); 200 steps at lr 0.01. Step count
and learning rate are what trade retain accuracy for forgetting, since the forget classes fade
only as the network drifts: the authors' training lr 0.1 collapsed the Fashion-MNIST FC model
to chance (A_R 11 %) and left 34 % on digits, while lr 0.01 kept A_R at 84.7 % with FE 75 % on
Fashion-MNIST (seed 0) but does not forget on digits.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from obliviate.fisher import diagonal_fisher, fisher_penalty
from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
    check_non_negative,
    check_positive,
    model_device,
)
from obliviate.models import Classifier
from obliviate.training import TrainConfig, fit


def selective_distillation(
    new_logits: torch.Tensor, old_logits: torch.Tensor, deleted: torch.Tensor, temperature: float
) -> torch.Tensor:
    """LwSF's distillation: preserved logits follow the old model, deleted ones go uniform.

    ``deleted`` is a boolean mask over classes. Each part zeroes the other part's logits before
    the tempered softmax, as the authors' loss does.
    """
    t = temperature
    keep = ~deleted
    new_pres = new_logits * keep
    old_pres = old_logits * keep
    preserved = nn.functional.kl_div(
        nn.functional.log_softmax(new_pres / t, dim=1),
        nn.functional.softmax(old_pres / t, dim=1),
        reduction="batchmean",
    )
    new_del = new_logits * deleted
    uniform = torch.full_like(new_del, 1.0 / new_del.shape[1])
    flattened = nn.functional.kl_div(
        nn.functional.log_softmax(new_del / t, dim=1), uniform, reduction="batchmean"
    )
    return t * t * (preserved + flattened)


@METHODS.register("lwsf")
class LearningWithSelectiveForgetting(UnlearningMethod):
    """Rehearse the kept classes' codes, distil selectively, anchor with EWC (see module doc).

    Args:
        steps: SGD steps on batches of codes.
        lr: SGD learning rate.
        batch_size: codes per step (and preserved codes per keep term).
        temperature: distillation temperature T.
        lambda_lwf: weight of the selective distillation.
        lambda_keep: weight of the preserved-code classification.
        lambda_ewc: weight of the EWC penalty.
    """

    name = "lwsf"
    needs = frozenset({"codes"})
    summary = "LwSF: rehearse kept classes' codes, selective LwF, EWC (data-free)"

    def __init__(
        self,
        *,
        steps: int = 200,
        lr: float = 0.01,
        batch_size: int = 128,
        temperature: float = 2.0,
        lambda_lwf: float = 5.0,
        lambda_keep: float = 10.0,
        lambda_ewc: float = 100.0,
    ) -> None:
        check_positive(steps=steps, lr=lr, batch_size=batch_size, temperature=temperature)
        check_non_negative(lambda_lwf=lambda_lwf, lambda_keep=lambda_keep, lambda_ewc=lambda_ewc)
        self.steps = steps
        self.lr = lr
        self.batch_size = batch_size
        self.temperature = temperature
        self.lambda_lwf = lambda_lwf
        self.lambda_keep = lambda_keep
        self.lambda_ewc = lambda_ewc

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        assert context.codes is not None  # guaranteed by ``needs``
        device = model_device(model)
        codes = context.codes.tensor.to(device)
        keep_classes = torch.tensor(context.retain_classes(request), device=device)
        deleted = torch.ones(context.num_classes, dtype=torch.bool, device=device)
        deleted[keep_classes] = False
        old = copy.deepcopy(model).eval()
        for p in old.parameters():
            p.requires_grad_(False)
        anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
        (fisher,) = diagonal_fisher(
            model, codes[keep_classes], keep_classes, [keep_classes.tolist()]
        )

        def objective(net: nn.Module, index: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
            classes = index % context.num_classes  # a batch of codes of every class
            logits = net(codes[classes])
            with torch.no_grad():
                old_logits = old(codes[classes])
            loss = self.lambda_lwf * selective_distillation(
                logits, old_logits, deleted, self.temperature
            )
            keep = keep_classes[torch.randint(len(keep_classes), (len(index),), device=device)]
            loss = loss + self.lambda_keep * nn.functional.cross_entropy(net(codes[keep]), keep)
            return loss + self.lambda_ewc * 0.5 * fisher_penalty(net, anchor, fisher)

        out = copy.deepcopy(model)
        index = torch.arange(self.batch_size * context.num_classes, device=device)
        config = TrainConfig(
            steps=self.steps, lr=self.lr, batch_size=self.batch_size, seed=context.seed
        )
        losses = fit(
            out, index, index, config, objective=objective, description="LwSF (codes)",
            progress=context.progress,
        )  # fmt: skip
        return MethodOutput(model=out, details={"final_loss": losses[-1]})
