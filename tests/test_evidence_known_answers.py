"""The evidence measures on hand-built models and data whose answers are known in advance.

The data are one-hot points: in the *rotated* set, the training samples of class ``c`` sit at
``e_{c+1}`` and its test samples at ``e_c``, so anything fitted on the training split sends a
test sample of ``c`` to ``c - 1`` (prototype attack: 0 %, relearn probe: 100 % error), and
anything fitted on the test split gets it right. The model's features are its input, so no
trained model stands between the data and the answer (only the relearn probe trains, a linear
head on separable points).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from obliviate.data import Dataset, Split
from obliviate.evidence import EvidenceConfig, gather_evidence, measure, prototype_accuracy
from obliviate.metrics import RelearnConfig, mia_efficacy
from obliviate.models import Classifier

C = 4


class InputFeatures(Classifier):
    """Penultimate features = the input itself (or a fixed vector, ``constant``); a linear head
    set by hand. Two blocks, so the measures one block earlier read the input too (the second
    a ReLU, not a step that only pools: a map before such a step would be the penultimate
    features again, and the attacker's block maps leave it out)."""

    def __init__(self, head: torch.Tensor, *, constant: bool = False) -> None:
        super().__init__()
        self.constant = constant
        self.classifier = nn.Linear(C, C)
        with torch.no_grad():
            self.classifier.weight.copy_(head)
            self.classifier.bias.zero_()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), C)
        return torch.ones_like(x) if self.constant else x

    def blocks(self) -> list[nn.Module]:
        return [nn.Flatten(), nn.ReLU()]


def _points(centres: torch.Tensor, labels: torch.Tensor, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(centres + 0.05 * torch.randn(centres.shape, generator=g), labels)


def rotated(per_class: int = 20) -> Dataset:
    y = torch.arange(C).repeat_interleave(per_class)
    eye = 5.0 * torch.eye(C)
    return Dataset("rotated", _points(eye[(y + 1) % C], y, 0), _points(eye[y], y, 1), C, (C,))


FAST = EvidenceConfig(shots=(1, 10), relearn=RelearnConfig(steps=300, lr=0.1, batch_size=16),
                      relearn_max_steps=0, mia=False)  # fmt: skip


def test_prototype_attack_builds_its_prototypes_from_the_training_split():
    data = rotated()
    model = InputFeatures(torch.eye(C))
    for k in (1, 10):
        # fitted on the training split, every test sample of c goes to c - 1
        assert prototype_accuracy(model, data.train, data.test, [0], shots=k) == 0.0
        assert prototype_accuracy(model, data.train, data.test, [1, 2], shots=k) == 0.0
    # the same function, given the test split as the attacker's samples, gets them all
    assert prototype_accuracy(model, data.test, data.test, [0], shots=10) == 100.0


def test_measure_reads_the_training_split_for_prototypes_and_the_relearn_probe():
    data = rotated()
    model = InputFeatures(torch.eye(C))
    evidence = measure(model, data, [0], FAST, relearn_goal=None)
    assert evidence.forget_err == 0.0  # the head says c on the test samples of c
    assert evidence.proto == {1: 0.0, 10: 0.0}
    assert evidence.proto_early == {1: 0.0, 10: 0.0}
    # the head retrained on the training split learns c for e_{c+1}: every test sample of 0 is
    # then called 3 (trained on the test split, it would keep calling it 0: 0 % error)
    assert evidence.relearn_err == 100.0
    assert evidence.mia_efficacy is None and evidence.relearn_steps is None


def test_gather_evidence_reports_the_gaps_and_agreement_of_two_known_models():
    data = rotated()
    model = InputFeatures(torch.eye(C))
    # features that ignore the input: every prototype is the same, and the nearest one is
    # the first (torch.argmax takes the first maximum): class 0, so the attack gets 0 right
    head = torch.zeros(C, C)
    head[1] = 1.0  # a constant output: always class 1
    reference = InputFeatures(head, constant=True)
    config = EvidenceConfig(shots=(1, 10), relearn=RelearnConfig(steps=0), relearn_max_steps=0,
                            mia=False)  # fmt: skip
    report = gather_evidence(model, reference, data, [0], config=config)
    assert report.model.proto[10] == 0.0 and report.reference.proto[10] == 100.0
    assert report.gaps["proto_gap"] == -100.0
    assert report.gaps["relearn_gap"] is None and report.gaps["relearn_steps_ratio"] is None
    # the model says c on the test samples of c, the reference always 1
    assert report.agreement["agree_forget"] == 0.0
    assert report.agreement["agree_retain"] == pytest.approx(100.0 / 3)
    for key, classes in (("js_forget", [0]), ("js_retain", [1, 2, 3])):
        x = data.test.of_classes(classes).x
        p, q = torch.softmax(x.double(), 1), torch.softmax(head.double().sum(1), 0)[None, :]
        assert report.agreement[key] == pytest.approx(_js(p, q.expand_as(p)), rel=1e-4)


def _js(p: torch.Tensor, q: torch.Tensor) -> float:
    """Mean Jensen-Shannon divergence (nats) as entropies: H(m) - (H(p) + H(q)) / 2."""

    def entropy(r: torch.Tensor) -> torch.Tensor:
        return -(r * r.log()).sum(1)

    return float((entropy((p + q) / 2) - (entropy(p) + entropy(q)) / 2).mean())


def test_measure_runs_the_membership_attack_on_the_forget_training_samples():
    """Kept training samples are confident (members), test samples are not (non-members), and
    three of every four training samples of the forget class look like members: the attack
    calls the fourth a non-member, 25 %."""
    per_class = 16
    y = torch.arange(C).repeat_interleave(per_class)
    centres = 6.0 * torch.eye(C)[y]  # softmax ~ 0.99 on the own class
    looks_unseen = (y == 0) & (torch.arange(len(y)) % 4 == 0)
    centres[looks_unseen] = 0.0  # softmax 1/4 on every class
    train = _points(centres, y, 0)
    test = _points(torch.zeros(C * 8, C), torch.arange(C).repeat_interleave(8), 1)
    data = Dataset("members", train, test, C, (C,))
    model = InputFeatures(torch.eye(C))
    config = EvidenceConfig(shots=(1,), relearn=RelearnConfig(steps=0), relearn_max_steps=0,
                            mia=True)  # fmt: skip
    evidence = measure(model, data, [0], config, relearn_goal=None)
    assert evidence.mia_efficacy == 25.0

    def confidence(split: Split) -> torch.Tensor:  # softmax of the input at the own label
        return torch.softmax(split.x, 1)[torch.arange(len(split)), split.y]

    by_hand = mia_efficacy(confidence(train.without_classes([0])), confidence(test),
                           confidence(train.of_classes([0])), seed=config.seed)  # fmt: skip
    assert by_hand == evidence.mia_efficacy
    # the forget class's *test* samples as targets would all look unseen
    assert mia_efficacy(confidence(train.without_classes([0])), confidence(test),
                        confidence(test.of_classes([0])), seed=config.seed) == 100.0  # fmt: skip


def test_measure_fits_the_kr_probe_on_the_training_split_and_scores_the_test_split():
    """On the rotated set a head fitted on the training split sends every test sample of the
    forget class to the class before it (KR 0 %); fitted on the test split it would be right."""
    data = rotated()
    config = EvidenceConfig(shots=(1,), relearn=RelearnConfig(steps=0), relearn_max_steps=0,
                            mia=False, kr_shots=(10, None))  # fmt: skip
    evidence = measure(InputFeatures(torch.eye(C)), data, [0], config, relearn_goal=None)
    assert evidence.kr["penultimate"] == {"10": 0.0, "all": 0.0}
    assert evidence.flat()["kr_k10"] == 0.0 and evidence.flat()["kr_all"] == 0.0
    # the earlier block (the input again) is probed too, at k = 10
    assert evidence.kr["block1"] == {"10": 0.0}


def test_measure_wires_the_forget_class_mia_to_the_classes_training_and_test_samples(monkeypatch):
    import obliviate.evidence as evidence_module

    seen = {}

    def spy(model, train, test, classes, *, seed):
        seen.update(train=train, test=test, classes=list(classes), seed=seed)
        return {"auc": 0.75, "accuracy": 70.0, "n": 5}

    monkeypatch.setattr(evidence_module, "forget_class_mia", spy)
    data = rotated()
    config = EvidenceConfig(shots=(1,), relearn=RelearnConfig(steps=0), relearn_max_steps=0,
                            mia=True, kr_shots=(10,), kr_blocks=False, seed=3)  # fmt: skip
    evidence = measure(InputFeatures(torch.eye(C)), data, [2], config, relearn_goal=None)
    assert seen["train"] is data.train and seen["test"] is data.test
    assert seen["classes"] == [2] and seen["seed"] == 3
    assert evidence.flat()["mia_forget_auc"] == 0.75
