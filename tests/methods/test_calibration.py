"""The calibrated default of `mnemonic`: the strength solve, the statistics bound, verification,
refusal and --force, paper mode, and both code distributions."""

import json

import pytest
import torch

import obliviate
from obliviate import compact
from obliviate.calibration import apply_head, forget_margins, head_direction, required_strength
from obliviate.errors import NotVerifiedError
from obliviate.stats import record_statistics


def _direction(bundle, forget):
    model = bundle.model
    retain = [c for c in range(bundle.num_classes) if c not in forget]
    codes, labels = bundle.codes.tensor, bundle.codes.labels()
    with torch.no_grad():
        feats = model.features(codes)
        logits = model.classifier(feats)
    return model, retain, feats, logits, labels, head_direction(feats, logits, labels, forget, retain)


def test_required_strength_is_the_smallest_that_reaches_the_margin(digits_bundle, digits):
    forget = [3]
    model, retain, _, _, _, direction = _direction(digits_bundle, forget)
    x = digits.train.of_classes(forget).x
    with torch.no_grad():
        feats = model.features(x)
        logits = model.classifier(feats)
    s = required_strength(direction, 0, feats, logits, retain, margin=2.0)
    assert 0 < s < float("inf")
    margins = []
    for strength in (0.5 * s, 0.99 * s, s, 2 * s, 4 * s):
        head = torch.nn.Linear(feats.shape[1], 10)
        head.load_state_dict(model.classifier.state_dict())
        apply_head(head, direction, strength)
        with torch.no_grad():
            margins.append(float(forget_margins(head(feats), torch.full((len(x),), 3), retain).max()))
    assert margins == sorted(margins, reverse=True)  # monotone: stronger never forgets less
    assert margins[1] > -2.0 >= margins[2] - 1e-4  # s is where the margin is first reached
    assert margins[0] > 0  # half of it leaves samples recognised


def test_statistics_bound_every_training_sample(digits_bundle, digits):
    stats = digits_bundle.stats
    assert stats is not None and stats.samples == len(digits.train)
    with torch.no_grad():
        logits = digits_bundle.model(digits.train.x)
    for c in (0, 7):
        own = logits[digits.train.y == c]
        brute = (own[:, c:c + 1] - own).max(dim=0).values
        # a bound (never below the samples' maximum), and a tight one: that maximum rounded up
        # to the next bfloat16, as the file stores it (obliviate.compact)
        assert (stats.margin[c] >= brute - 1e-5).all()
        assert (stats.margin[c] <= compact.upward(brute + 1e-5)).all()
    again = record_statistics(digits_bundle.model, digits.train)
    assert torch.equal(again.margin, stats.margin)


def test_default_forgets_every_training_sample_and_keeps_retained_rows(digits_bundle, digits):
    out = obliviate.forget(digits_bundle, [2, 5], device="cpu")
    record = out.history[-1]
    assert record["mode"] == "calibrated" and record["verified"] is True
    assert set(record["verification"]["on"]) == {"codes", "training_statistics"}
    kept = [c for c in range(10) if c not in (2, 5)]
    forgotten = digits.train.of_classes([2, 5])
    with torch.no_grad():
        z = out.model(forgotten.x)
        z_codes = out.model(digits_bundle.codes.tensor[[2, 5]])
    # the guarantee, sample by sample: every training sample of 2 and 5, and their codes, sit
    # at least the margin (2 nats) below the best kept class
    own = z.gather(1, forgotten.y[:, None]).squeeze(1)
    assert float((own - z[:, kept].max(1).values).max()) <= -2.0 + 1e-4
    own_codes = z_codes[[0, 1], [2, 5]]
    assert float((own_codes - z_codes[:, kept].max(1).values).max()) <= -2.0 + 1e-4
    w0, w1 = digits_bundle.model.classifier.weight, out.model.classifier.weight
    assert torch.equal(w0[kept], w1[kept])
    assert all(torch.equal(a, b) for (n, a), (_, b) in zip(
        digits_bundle.model.named_parameters(), out.model.named_parameters()
    ) if not n.startswith("classifier"))  # fmt: skip
    assert out.stats is not None  # still describes the model: a second request can verify
    for c in (2, 5):  # but says nothing more about the forgotten classes' training data
        assert torch.isneginf(out.stats.margin[c]).all() and torch.isneginf(out.stats.margin[:, c]).all()
        assert not out.stats.feature_min[c].any()
    again = obliviate.forget(out, [7], device="cpu")
    assert again.history[-1]["verified"] is True


def test_calibration_is_deterministic(digits_bundle):
    a = obliviate.forget(digits_bundle, [4], device="cpu")
    b = obliviate.forget(digits_bundle, [4], device="cpu")
    assert a.history[-1]["strength"] == b.history[-1]["strength"]
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                  b.model.state_dict().values()))  # fmt: skip


def test_a_strength_above_the_bound_is_refused_and_force_keeps_it(digits_bundle):
    with pytest.raises(NotVerifiedError, match="max_strength"):
        obliviate.forget(digits_bundle, [1], device="cpu", max_strength=1e-4)
    out = obliviate.forget(digits_bundle, [1], device="cpu", max_strength=1e-4, force=True)
    assert out.history[-1]["verified"] is False
    assert out.history[-1]["strength"] == pytest.approx(1e-4)


def test_without_statistics_the_data_verifies(digits_bundle, digits):
    bare = digits_bundle.clone()
    bare.stats = None
    with pytest.raises(NotVerifiedError, match="no training statistics"):
        obliviate.forget(bare, [0], device="cpu")
    out = obliviate.forget(bare, [0], data=digits, device="cpu")
    check = out.history[-1]["verification"]["checks"]["data"]
    assert out.history[-1]["verified"] is True and check["forget_error"] == 100.0
    assert check["retain_accuracy"] >= check["oracle_retain_accuracy"] - 1.0


def test_paper_mode_without_data_is_refused_and_force_keeps_it(digits_bundle):
    """(Paper mode with data, verified or refused on that data: test_verification.py.)"""
    with pytest.raises(NotVerifiedError, match="paper mode"):
        obliviate.forget(digits_bundle, [0], lambda1=1e-3, lambda2=10.0, device="cpu")
    forced = obliviate.forget(digits_bundle, [0], lambda1=1e-3, lambda2=10.0, device="cpu",
                              force=True)  # fmt: skip
    record = forced.history[-1]
    assert record["mode"] == "paper" and record["verified"] is False
    assert (record["lambda1"], record["lambda2"]) == (1e-3, 10.0)
    assert forced.stats is None  # the feature extractor changed: the statistics are stale


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_both_code_distributions_train_and_forget(tiny_dataset, distribution):
    bundle = obliviate.train(
        tiny_dataset, "fc", config=obliviate.TrainConfig(epochs=30, lr=0.1, batch_size=32),
        codes=obliviate.CodeConfig(t_mix=0.2, distribution=distribution),
        model_kwargs={"hidden": 32}, progress=False,
    )  # fmt: skip
    codes = bundle.codes.tensor
    assert (codes.min() < 0) == (distribution == "normal")
    out = obliviate.forget(bundle, [1], device="cpu")
    assert out.history[-1]["verified"] is True
    preds = out.model(tiny_dataset.test.x).argmax(1)
    assert not (preds[tiny_dataset.test.y == 1] == 1).any()


def test_unknown_code_distribution_is_a_user_error():
    with pytest.raises(obliviate.ObliviateError, match="distribution"):
        obliviate.CodeConfig(distribution="laplace")


@pytest.fixture(scope="module")
def seed1_file(digits, tmp_path_factory):
    """The demo's digits model with training seed 1, where the demo's old fixed lambda misses."""
    bundle = obliviate.train(digits, "fc", config=obliviate.TrainConfig(epochs=40, lr=0.1, seed=1),
                             progress=False)  # fmt: skip  (codes: seed 0, as lambda_grid.py)
    path = tmp_path_factory.mktemp("seed1") / "m.safetensors"
    obliviate.save(bundle, path)
    return path


def test_cli_default_forgets_where_fixed_lambda_misses(cli, seed1_file, digits, tmp_path):
    out, report = tmp_path / "f.safetensors", tmp_path / "r.json"
    code, _, err = cli("forget", seed1_file, "--classes", "0", "--out", out, "--report", report)
    assert code == 0, err
    assert "verified: true" in err and "strength" in err
    assert json.loads(report.read_text())["verified"] is True
    assert obliviate.evaluate(obliviate.load(out), digits, [0], relearn_steps=0).forget_err >= 99.5

    paper = tmp_path / "p.safetensors"
    code, _, err = cli("forget", seed1_file, "--classes", "0", "--out", paper,
                       "--lambda1", "3e-3", "--lambda2", "10")  # fmt: skip
    assert code == 2 and not paper.exists()
    assert err.startswith("error: did not forget classes [0]") and err.count("\n") == 1
    code, _, err = cli("forget", seed1_file, "--classes", "0", "--out", paper,
                       "--lambda1", "3e-3", "--lambda2", "10", "--force")  # fmt: skip
    assert code == 0 and paper.exists() and "WARNING" in err and "verified: false" in err
    forced = obliviate.load(paper)
    assert forced.history[-1]["verified"] is False
    assert obliviate.evaluate(forced, digits, [0], relearn_steps=0).forget_err < 99.5


def test_cli_refusal_writes_nothing(cli, seed1_file, tmp_path):
    out, report = tmp_path / "f.safetensors", tmp_path / "r.json"
    code, _, err = cli("forget", seed1_file, "--classes", "0", "--out", out, "--report", report,
                       "--hp", "max_strength=1e-4")  # fmt: skip
    assert code == 2 and not out.exists() and not report.exists()
    assert "max_strength" in err and "--force" in err


def test_a_bound_that_guarantees_nothing_refuses_unless_data_verifies(digits_bundle, digits):
    """Features far below zero on the forget class: the statistics cannot vouch for any
    strength, so the data-free request is refused; with data, the data calibrate and verify."""
    odd = digits_bundle.clone()
    odd.stats.feature_min[6] = -10.0
    with pytest.raises(NotVerifiedError, match="below zero.*--data"):
        obliviate.forget(odd, [6], device="cpu")
    # the head step alone (depth output): a feature edit would carry non-negative minima
    out = obliviate.forget(odd, [6], data=digits, device="cpu", depth="output")
    record = out.history[-1]
    assert record["verified"] is True and record["verification"]["on"] == ["codes", "data"]
    assert record["strength_needed"]["training_statistics"] is None  # no finite strength


def test_result_shares_no_tensor_with_the_input(digits_bundle):
    out = obliviate.forget(digits_bundle, [3], device="cpu")

    def pointers(bundle):
        tensors = [*bundle.model.state_dict().values(), bundle.codes.tensor,
                   bundle.stats.margin, bundle.stats.feature_min]  # fmt: skip
        return {t.data_ptr() for t in tensors}

    assert not pointers(digits_bundle) & pointers(out)
