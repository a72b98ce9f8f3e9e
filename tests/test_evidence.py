"""Evidence of depth: the attacks read the features, a retrained model is its own reference, and
bad requests are refused before anything is written."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import obliviate
from obliviate import references
from obliviate.evidence import (
    EvidenceConfig,
    output_agreement,
    prototype_accuracy,
    relearn_steps,
)
from obliviate.metrics import RelearnConfig

FAST = EvidenceConfig(relearn=RelearnConfig(steps=100), relearn_max_steps=20, mia=False,
                      kr_shots=(10,), kr_blocks=False)
SCRIPT = Path(sys.executable).with_name("obliviate")


@pytest.fixture(scope="module")
def retrained_0(digits_bundle, digits):
    return references.retrained_reference(digits_bundle, [0], digits, cache_dir=None, progress=False)


def _nearest_prototype_accuracy(model, train, test, classes, shots, seed=0):
    """The prototype attack written out as loops: ``shots`` training samples per class (the
    attacker's draw), one mean of unit feature vectors per class, each test sample of
    ``classes`` to the prototype of largest cosine (%). The library's percentages are float32:
    compare to 1e-4, far below one sample."""
    subset = train.per_class_subset(shots, seed=seed)
    with torch.no_grad():
        train_feats, test_feats = model.features(subset.x), model.features(test.x)
    prototypes = {}
    for c in sorted(set(subset.y.tolist())):
        mean = sum(f / f.norm() for f, y in zip(train_feats, subset.y.tolist()) if y == c)
        prototypes[c] = mean / mean.norm()
    hits = total = 0
    for f, y in zip(test_feats, test.y.tolist()):
        if y in classes:
            total += 1
            hits += max(prototypes, key=lambda c: float(f @ prototypes[c]) / float(f.norm())) == y
    return 100.0 * hits / total


def test_a_head_only_forget_leaves_the_prototype_attack_where_it_was(digits_bundle, digits):
    forgotten = obliviate.forget(digits_bundle, [0], depth="output", progress=False)
    report = references.depth_evidence(forgotten, dataset=digits, original=digits_bundle, config=FAST)
    assert report.reference_kind == "original"
    assert report.model.forget_err == 100.0  # the output no longer says 0 ...
    for k in FAST.shots:  # ... but the attack finds it where the original's features put it
        expected = _nearest_prototype_accuracy(digits_bundle.model, digits.train, digits.test,
                                               [0], k)  # fmt: skip
        assert report.model.proto[k] == pytest.approx(expected, abs=1e-4)
        assert report.reference.proto[k] == pytest.approx(expected, abs=1e-4)
    assert report.gaps["proto_gap"] == 0.0
    assert report.model.proto[10] > 80.0  # and they still hold the class


def test_the_gaps_to_a_retrained_reference_are_the_attacks_on_each(digits_bundle, digits,
                                                                    retrained_0):  # fmt: skip
    forgotten = obliviate.forget(digits_bundle, [0], depth="output", progress=False)
    report = references.depth_evidence(forgotten, retrained_0, digits, original=digits_bundle,
                                config=FAST)  # fmt: skip
    mine = _nearest_prototype_accuracy(forgotten.model, digits.train, digits.test, [0], 10)
    theirs = _nearest_prototype_accuracy(retrained_0.model, digits.train, digits.test, [0], 10)
    assert report.model.proto[10] == pytest.approx(mine, abs=1e-4)
    assert report.reference.proto[10] == pytest.approx(theirs, abs=1e-4)
    assert report.gaps["proto_gap"] == pytest.approx(mine - theirs, abs=1e-4)
    assert report.original is not None and report.original.forget_err < 5.0
    # (the known-answer gaps, agreement and JS: test_evidence_known_answers.py)


def test_prototype_attack_reads_features_not_the_head(digits_bundle, digits):
    model = digits_bundle.model
    crippled = obliviate.ModelBundle.clone(digits_bundle).model
    with torch.no_grad():
        crippled.classifier.weight.zero_()
        crippled.classifier.bias.zero_()
    a = prototype_accuracy(model, digits.train, digits.test, [3], shots=10)
    b = prototype_accuracy(crippled, digits.train, digits.test, [3], shots=10)
    assert a == b == pytest.approx(_nearest_prototype_accuracy(model, digits.train, digits.test,
                                                               [3], 10), abs=1e-4)  # fmt: skip
    assert a > 80.0
    scrambled = obliviate.ModelBundle.clone(digits_bundle).model
    with torch.no_grad():  # features that no longer depend on the input: chance at best
        scrambled.hidden.weight.zero_()
    c = prototype_accuracy(scrambled, digits.train, digits.test, [3], shots=10)
    assert c < 20.0


def test_relearn_steps_counts_until_the_goal(digits_bundle, digits):
    model = digits_bundle.model
    assert relearn_steps(model, digits.train, digits.test, [0], 50.0, max_steps=5) == 0
    assert relearn_steps(model, digits.train, digits.test, [0], 101.0, max_steps=3) is None
    forgotten = obliviate.forget(digits_bundle, [0], depth="output", progress=False)
    steps = relearn_steps(forgotten.model, digits.train, digits.test, [0], 90.0, max_steps=200)
    assert steps is not None and steps > 0


def test_output_agreement_of_a_model_with_itself_and_with_another(digits_bundle, retrained_0,
                                                                  digits):  # fmt: skip
    x = digits.test.x
    agree, js = output_agreement(digits_bundle.model, digits_bundle.model, x)
    assert agree == 100.0 and js == pytest.approx(0.0, abs=1e-7)
    x0 = digits.test.of_classes([0]).x
    agree0, js0 = output_agreement(digits_bundle.model, retrained_0.model, x0)
    assert agree0 < 5.0 and js0 > 0.1  # the original says 0, the retrained model cannot


def test_references_are_cached_by_original_and_classes(digits_bundle, digits, tmp_path):
    first = references.retrained_reference(digits_bundle, [1], digits, cache_dir=tmp_path,
                                    progress=False)  # fmt: skip
    files = list(tmp_path.glob("retrained-*.safetensors"))
    assert len(files) == 1 and first.forgotten_classes == [1]
    again = references.retrained_reference(digits_bundle, [1], digits, cache_dir=tmp_path,
                                    progress=False)  # fmt: skip
    assert torch.equal(again.model.classifier.weight, first.model.classifier.weight)
    forgotten = obliviate.forget(digits_bundle, [1], depth="output", progress=False)
    # the forgotten model traces back to the same original: the same cached reference
    third = references.retrained_reference(forgotten, [1], digits, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("retrained-*.safetensors"))) == 1
    assert torch.equal(third.model.classifier.weight, first.model.classifier.weight)
    references.retrained_reference(digits_bundle, [2], digits, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("retrained-*.safetensors"))) == 2


def _run(*args, cwd):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)  # fmt: skip


def test_cli_evidence_refuses_bad_requests_and_writes_nothing(digits_bundle, retrained_0,
                                                              tmp_path):  # fmt: skip
    forgotten = obliviate.forget(digits_bundle, [0], depth="output", progress=False)
    obliviate.save(forgotten, tmp_path / "f.safetensors")
    obliviate.save(digits_bundle, tmp_path / "orig.safetensors")
    other = references.retrained_reference(digits_bundle, [1], cache_dir=tmp_path / "cache",
                                    progress=False)  # fmt: skip
    obliviate.save(other, tmp_path / "ref1.safetensors")
    cases = {
        "no reference": ["evidence", "f.safetensors", "--out", "r.json"],
        "a reference for other classes": ["evidence", "f.safetensors", "--reference",
                                          "ref1.safetensors", "--out", "r.json"],
        "nothing forgotten, no classes": ["evidence", "orig.safetensors", "--original",
                                          "orig.safetensors", "--out", "r.json"],
        "both --reference and --retrain": ["evidence", "f.safetensors", "--reference",
                                           "ref1.safetensors", "--retrain", "--out", "r.json"],
    }  # fmt: skip
    for name, args in cases.items():
        proc = _run(*args, cwd=tmp_path)
        assert proc.returncode == 2, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (name, proc.stderr)
        assert not (tmp_path / "r.json").exists(), name


def test_cli_evidence_against_the_original_writes_its_report(digits_bundle, tmp_path):
    forgotten = obliviate.forget(digits_bundle, [0], depth="output", progress=False)
    obliviate.save(forgotten, tmp_path / "f.safetensors")
    obliviate.save(digits_bundle, tmp_path / "orig.safetensors")
    proc = _run("evidence", "f.safetensors", "--original", "orig.safetensors", "--relearn-steps",
                "50", "--relearn-max-steps", "5", "--kr-shots", "10", "--out", "r.json", "--plot",
                "r.png",
                cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "ORIGINAL model" in proc.stdout and "prototype k=10: +0.00" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("depth: not shown deep")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["reference_kind"] == "original"
    # an output-only forget leaves the features as they were: the feature attacks read the same
    assert report["gaps"]["proto_gap"] == 0.0 and report["gaps"]["gap_kr_k10"] == 0.0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_a_model_with_a_forward_of_its_own_is_measured_by_its_forward(digits_bundle, digits):
    """The shared pass takes the logits from the head on the features only where that is the
    model's forward: a model that answers otherwise (a LIRF recover net) is read as it answers.
    Here the forward lifts class 0 above every class, so FE is 0 though the head forgets it."""
    from obliviate.evidence import measure

    forgotten = obliviate.forget(digits_bundle, [0], depth="output", progress=False).model

    class Lifted(type(forgotten)):
        def forward(self, x):
            out = super().forward(x).clone()
            out[:, 0] = out.max(1).values + 1.0
            return out

    lifted = copy.deepcopy(forgotten)
    lifted.__class__ = Lifted
    config = EvidenceConfig(relearn=RelearnConfig(steps=0), relearn_max_steps=0, mia=False,
                            kr_shots=(10,), kr_blocks=False)  # fmt: skip
    assert measure(forgotten, digits, [0], config, relearn_goal=None).forget_err == 100.0
    lifted_evidence = measure(lifted, digits, [0], config, relearn_goal=None)
    assert lifted_evidence.forget_err == 0.0
