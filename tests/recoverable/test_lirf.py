"""LIRF deposit and withdrawal on digits with the conv net: forgetting, recovery, the module
files and their provenance checks, bad class sets."""

from __future__ import annotations

import pytest
import torch

import obliviate
from obliviate import ObliviateError, TrainConfig
from obliviate.models import create_model
from obliviate.recoverable import (
    LIRFSettings,
    deposit_bundle,
    lirf_accuracy,
    load_module,
    save_module,
    withdraw,
)
from obliviate.recoverable.lirf import default_block, distillation, logit_matching
from obliviate.recoverable.pruning import split_network

# digits holds ~360 training images per deposit set, 3 steps per epoch: 100 epochs, not 20
FAST = LIRFSettings(epochs=100)


@pytest.fixture(scope="module")
def original(digits):
    torch.manual_seed(0)
    return obliviate.train(digits, "convnet", config=TrainConfig(epochs=30, lr=0.01),
                           codes=None, model_kwargs={"width": 16}, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def deposited(original, digits):
    return deposit_bundle(original, digits, [[0, 1]], FAST)


def _metrics(bundle, digits, classes):
    return lirf_accuracy(bundle.model, digits.test.x, digits.test.y, classes)


def test_deposit_forgets_and_withdraw_recovers(original, deposited, digits):
    target, modules, result = deposited
    before = _metrics(original, digits, [0, 1])
    after = _metrics(target, digits, [0, 1])
    back = _metrics(withdraw(target, modules), digits, [0, 1])
    assert before["dep_acc"] > 85 and before["pre_acc"] > 85
    assert after["dep_acc"] < 20
    assert after["pre_acc"] > before["pre_acc"] - 3
    assert back["dep_acc"] > before["dep_acc"] - 3
    assert back["pre_acc"] > before["pre_acc"] - 3
    assert after["h_mean"] > before["h_mean"]
    assert target.forgotten_classes == [0, 1]
    record = target.history[-1]
    assert record["method"] == "lirf-deposit" and record["modules"] == [modules[0].module_id]
    assert record["deposit_samples"] == int(torch.isin(digits.train.y, torch.tensor([0, 1])).sum())
    assert result.seconds > 0 and len(result.losses) == FAST.epochs


def test_the_original_is_left_untouched(original, digits):
    snapshot = {k: v.clone() for k, v in original.model.state_dict().items()}
    deposit_bundle(original, digits, [[2]], LIRFSettings(epochs=1))
    for k, v in original.model.state_dict().items():
        assert torch.equal(v, snapshot[k])


def test_withdraw_without_modules_is_the_target(deposited, digits):
    target, _, _ = deposited
    recovered = withdraw(target, [])
    x = digits.test.x
    assert torch.equal(recovered.model(x), target.model(x))
    assert recovered.forgotten_classes == target.forgotten_classes


def test_metrics_are_the_definitions():
    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.one_hot(x[:, 0].long(), 3).float()

    # predictions: [0, 1, 1, 2]; labels [0, 1, 2, 2]; deposited class 2
    x = torch.tensor([[0.0], [1.0], [1.0], [2.0]])
    y = torch.tensor([0, 1, 2, 2])
    m = lirf_accuracy(Fixed(), x, y, [2])
    assert m["pre_acc"] == 100 and m["dep_acc"] == 50 and m["avg_acc"] == 75
    assert m["h_mean"] == pytest.approx(2 * 100 * 50 / 150)


def test_module_files_round_trip_and_recovered_models_load(deposited, digits, tmp_path):
    target, modules, _ = deposited
    path = save_module(modules[0], tmp_path / "dep.safetensors")
    loaded = load_module(path)
    assert loaded.module_id == modules[0].module_id and loaded.classes == (0, 1)
    x = digits.test.x[:50]
    assert torch.equal(loaded(x), modules[0](x))
    recovered = withdraw(target, [loaded])
    obliviate.save(recovered, tmp_path / "rec.safetensors")
    again = obliviate.load(tmp_path / "rec.safetensors")
    assert torch.equal(again.model(x), recovered.model(x))
    assert again.forgotten_classes == []
    obliviate.save(target, tmp_path / "target.safetensors")  # ships without the module
    assert torch.equal(obliviate.load(tmp_path / "target.safetensors").model(x), target.model(x))


def test_an_altered_module_file_is_rejected(deposited, tmp_path):
    from obliviate.checkpoint import read_safetensors, write_safetensors

    _, modules, _ = deposited
    path = save_module(modules[0], tmp_path / "dep.safetensors")
    meta, tensors = read_safetensors(path, "deposit module")
    key = next(iter(tensors))
    tensors[key] = tensors[key] + 1
    write_safetensors(tensors, meta, tmp_path / "bad.safetensors")
    with pytest.raises(ObliviateError, match="altered"):
        load_module(tmp_path / "bad.safetensors")
    with pytest.raises(ObliviateError, match="not a LIRF deposit module"):
        load_module(obliviate.save(deposited[0], tmp_path / "t.safetensors"))
    with pytest.raises(ObliviateError, match="is a LIRF deposit module, not a model"):
        obliviate.load(path)


def test_modules_of_another_target_are_rejected(original, deposited, digits):
    target, modules, _ = deposited
    other, other_modules, _ = deposit_bundle(original, digits, [[3]], LIRFSettings(epochs=1))
    with pytest.raises(ObliviateError, match="was not deposited from this target"):
        withdraw(target, other_modules)
    with pytest.raises(ObliviateError, match="was not deposited from this target"):
        withdraw(other, modules)
    with pytest.raises(ObliviateError, match="holds no LIRF deposit"):
        withdraw(original, modules)
    with pytest.raises(ObliviateError, match="twice"):
        withdraw(target, [modules[0], modules[0]])


def test_a_target_changed_after_the_deposit_is_rejected(deposited):
    target, modules, _ = deposited
    changed = target.clone()
    with torch.no_grad():
        changed.model.classifier.bias += 1.0  # the back part the modules rely on
    with pytest.raises(ObliviateError, match="another back part"):
        withdraw(changed, modules)


def test_files_of_an_earlier_release_still_load_and_withdraw(deposited, digits, tmp_path):
    """Module ids and back-part digests written before the two-level weights digest are the
    one-level digest of an earlier release: still accepted for the same weights, refused for
    others."""
    import dataclasses

    from obliviate.checkpoint import read_safetensors, write_safetensors
    from obliviate.digest import legacy_weights_sha256
    from obliviate.recoverable.api import deposit_records

    target, modules, _ = deposited
    block = int(deposit_records(target)[0]["block"])
    old_back = legacy_weights_sha256(split_network(target.model, block)[1])
    old_id = legacy_weights_sha256(modules[0])[:16]
    meta, tensors = read_safetensors(save_module(modules[0], tmp_path / "dep.safetensors"),
                                     "deposit module")  # fmt: skip
    write_safetensors(tensors, {**meta, "module_id": old_id, "back_sha256": old_back},
                      tmp_path / "old.safetensors")  # fmt: skip
    module = load_module(tmp_path / "old.safetensors")
    assert module.module_id == old_id
    history = [dict(r, modules=[old_id if m == modules[0].module_id else m for m in r["modules"]],
                    back_sha256=old_back) if r.get("method") == "lirf-deposit" else r
               for r in target.history]  # fmt: skip
    old_target = dataclasses.replace(target.clone(), history=history)
    recovered = withdraw(old_target, [module])
    x = digits.test.x[:50]
    assert torch.equal(recovered.model(x), withdraw(target, [modules[0]]).model(x))
    with torch.no_grad():
        old_target.model.classifier.bias += 1.0  # the back part changed since
    with pytest.raises(ObliviateError, match="another back part"):
        withdraw(old_target, [module])
    tensors[next(iter(tensors))] += 1
    write_safetensors(tensors, {**meta, "module_id": old_id, "back_sha256": old_back},
                      tmp_path / "bad.safetensors")  # fmt: skip
    with pytest.raises(ObliviateError, match="altered"):
        load_module(tmp_path / "bad.safetensors")


def test_sequence_deposit_and_withdraw_in_any_order(original, digits):
    t1, (m1,), _ = deposit_bundle(original, digits, [[0]], LIRFSettings(epochs=2))
    t2, (m2,), _ = deposit_bundle(t1, digits, [[1]], LIRFSettings(epochs=2))
    assert t2.forgotten_classes == [0, 1]
    once = withdraw(t2, [m1, m2])
    forward = withdraw(withdraw(t2, [m1]), [m2])
    backward = withdraw(withdraw(t2, [m2]), [m1])
    x = digits.test.x
    assert torch.allclose(once.model(x), forward.model(x))
    assert torch.allclose(once.model(x), backward.model(x))
    assert withdraw(t2, [m1]).forgotten_classes == [1]
    with pytest.raises(ObliviateError, match="already withdrawn"):
        withdraw(forward, [m1])
    with pytest.raises(ObliviateError, match="already deposited"):
        deposit_bundle(t2, digits, [[1, 2]], LIRFSettings(epochs=1))
    with pytest.raises(ObliviateError, match="same block"):
        deposit_bundle(t2, digits, [[4]], LIRFSettings(epochs=1, block=1))


def test_deposit_once_into_several_modules(original, digits):
    target, modules, result = deposit_bundle(original, digits, [[0], [1]], LIRFSettings(epochs=2))
    assert [m.classes for m in modules] == [(0,), (1,)]
    assert result.record["classes"] == [[0], [1]]
    partial = withdraw(target, [modules[1]])
    assert partial.forgotten_classes == [0]


@pytest.mark.parametrize("sets,match", [
    ([[0], [0, 1]], "overlap"),
    ([[10]], "out of range"),
    ([[]], "non-empty"),
    ([list(range(10))], "nothing to preserve"),
])
def test_bad_class_sets(original, digits, sets, match):
    with pytest.raises(ObliviateError, match=match):
        deposit_bundle(original, digits, sets, LIRFSettings(epochs=1))


def test_bad_settings():
    with pytest.raises(ObliviateError, match="prune_ratio"):
        LIRFSettings(prune_ratio=1.0)
    with pytest.raises(ObliviateError, match="lambda_at"):
        LIRFSettings(lambda_at=-1)
    with pytest.raises(ObliviateError, match="logit_loss must be one of mse, kd"):
        LIRFSettings(logit_loss="l1")
    with pytest.raises(ObliviateError, match="random_labels"):
        LIRFSettings.from_strings({"random_labels": "deposited"})
    assert LIRFSettings.from_strings({"logit_loss": "kd", "epochs": "3"}) == LIRFSettings(
        logit_loss="kd", epochs=3)


def test_logit_matching_keeps_the_level_that_softmax_kd_ignores():
    teacher = torch.tensor([[2.0, 0.0, -1.0]])
    shifted = teacher - 5.0  # same softmax, every logit 5 lower
    assert float(distillation(shifted, teacher, 4.0)) < 1e-6
    assert float(logit_matching(shifted, teacher)) == pytest.approx(25.0)
    assert float(logit_matching(teacher, teacher)) == 0.0


@pytest.mark.parametrize("pool", ["preserved", "all"])
def test_random_labels_come_from_the_configured_pool(original, digits, pool, monkeypatch):
    seen: list[torch.Tensor] = []
    real = torch.nn.functional.cross_entropy

    def spy(logits, labels, *args, **kwargs):
        if not labels.requires_grad and labels.dtype == torch.long:
            seen.append(labels.clone())
        return real(logits, labels, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", spy)
    deposit_bundle(original, digits, [[0, 1]], LIRFSettings(epochs=1, random_labels=pool))
    # each step calls CE twice: random labels (L_kr), then the true labels (L_re)
    drawn = torch.cat(seen[0::2])
    assert set(torch.cat(seen[1::2]).tolist()) == {0, 1}
    if pool == "preserved":
        assert set(drawn.tolist()) == set(range(2, 10))
    else:
        assert {0, 1} <= set(drawn.tolist())


@pytest.mark.parametrize("arch,shape,block", [("convnet", (1, 8, 8), 3), ("cnn", (1, 8, 8), 2),
                                              ("resnet18", (3, 8, 8), 5)])  # fmt: skip
def test_the_default_split_leaves_only_the_head_with_weights_in_the_back(arch, shape, block):
    model = create_model(arch, input_shape=shape, num_classes=10)
    assert default_block(model) == block
    _, back = split_network(model, block)
    weighted = {id(p) for p in back.parameters()}
    assert weighted == {id(p) for p in model.classifier.parameters()}


def test_a_deposit_records_the_default_split(deposited):
    target, modules, result = deposited
    assert result.record["block"] == 3 and modules[0].info["block"] == 3


def test_the_target_carries_statistics_recorded_on_its_own_weights(original, deposited, digits):
    """The deposit retrains the target: statistics the original's file carried would describe
    other weights. The target's are recorded afresh, bound to its weights, hold for them
    (brute force over the training set) and say nothing about the deposited classes."""
    from obliviate.checkpoint import weights_sha256
    from obliviate.stats import record_statistics

    target, _, _ = deposited
    assert original.stats is not None
    assert target.stats.weights_sha256 == weights_sha256(target.model, reuse=False)
    truth = record_statistics(target.model, digits.train)
    kept = [c for c in range(10) if c not in (0, 1)]
    assert torch.allclose(target.stats.margin[kept][:, kept], truth.margin[kept][:, kept], atol=1e-4)
    assert bool(torch.isinf(target.stats.margin[[0, 1]]).all())
