"""ERM-KTP's knowledge-transfer-and-prohibition step (Lin, Zhang, Li & Zhou, "ERM-KTP:
Knowledge-Level Machine Unlearning via Knowledge Transfer", CVPR 2023).

A student learns the original model's (teacher's) features on the retain set only, by mean
squared error, while its classifier is the teacher's with the forget classes' rows and biases
zeroed and frozen ("prohibition"): the student can never grow forget-class evidence, and what
it knows about the forget classes is only what transfers from the retain data.

Following the authors' code, the student's feature extractor starts from a fresh
initialisation (only the classifier is copied), it is trained with SGD lr 0.1 (momentum 0.9,
weight decay 5e-4, batch 256) and there is no classification loss. Our decisions:

- the ERM half (training with an entanglement-reduced mask layer) is not part of obliviate's
  training, so the teacher's pooled features are distilled unmasked (no forget-linked channels
  are zeroed), and only the penultimate features (``model.features``) are matched, since a
  generic classifier exposes no intermediate feature map;
- 30 epochs with a cosine schedule by default instead of the authors' 200 with step decays
  (the models here are far smaller; pass ``epochs`` to change it).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
    check_positive,
    model_device,
)
from obliviate.models import Classifier
from obliviate.training import TrainConfig, extract_features, fit


def prohibited_classifier(classifier: nn.Linear, classes: list[int]) -> nn.Linear:
    """A frozen copy of ``classifier`` whose rows and biases of ``classes`` are zero."""
    head = copy.deepcopy(classifier)
    with torch.no_grad():
        head.weight[classes] = 0.0
        if head.bias is not None:
            head.bias[classes] = 0.0
    for p in head.parameters():
        p.requires_grad_(False)
    return head


def feature_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Squared error summed over feature dimensions, averaged over the batch."""
    return (student - teacher).pow(2).flatten(1).sum(dim=1).mean()


@METHODS.register("erm-ktp")
class KnowledgeTransferProhibition(UnlearningMethod):
    """Distil the teacher's features into a fresh student on the retain set, forget rows zeroed.

    Args:
        epochs: passes over the retain set.
        lr: SGD learning rate (cosine-annealed).
        batch_size: samples per step.
        fresh_student: start the student's features from a fresh initialisation (the authors'
            choice); ``False`` starts from the teacher's weights (faster, forgets less).
    """

    name = "erm-ktp"
    needs = frozenset({"retain"})
    summary = "distil features on retain data into a student whose forget rows are zeroed"

    def __init__(
        self, *, epochs: int = 30, lr: float = 0.1, batch_size: int = 256, fresh_student: bool = True
    ) -> None:
        check_positive(epochs=epochs, lr=lr, batch_size=batch_size)
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.fresh_student = fresh_student

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        retain = context.require("retain")
        device = model_device(model)
        if self.fresh_student:
            assert context.fresh_model is not None  # always set by obliviate.forget
            student = context.fresh_model().to(device)
        else:
            student = copy.deepcopy(model)
        prohibited = sorted(set(request.classes) | set(context.previously_forgotten))
        student.classifier = prohibited_classifier(model.classifier, prohibited).to(device)
        x = retain.x.to(device)
        index = torch.arange(len(x), device=device)
        targets = extract_features(model, x)  # teacher features, computed once (no augmentation)
        augment = context.image_transform()

        def objective(net: nn.Module, idx: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
            xb = x[idx]
            if augment is not None:  # augmented views need the teacher on the same view
                xb, _ = augment(xb, _y, generator)
                with torch.no_grad():
                    target = model.features(xb)
            else:
                target = targets[idx]
            return feature_distance(net.features(xb), target)

        generator = torch.Generator().manual_seed(context.seed)
        model.eval()
        config = TrainConfig(
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, schedule="cosine",
            seed=context.seed,
        )  # fmt: skip
        losses = fit(
            student,
            index,
            index,
            config,
            objective=objective,
            parameters=[p for p in student.parameters() if p.requires_grad],
            description="ERM-KTP transfer",
            progress=context.progress,
        )
        for p in student.classifier.parameters():
            p.requires_grad_(True)
        return MethodOutput(model=student, details={"prohibited_classes": prohibited,
                                                    "epoch_losses": losses})
