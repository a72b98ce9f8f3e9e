"""What the deep forget promises, checked against the samples themselves: the forget side on a
hand-built model where the unedited statistics no longer hold after the edit, the kept side
against the unedited model's truncation oracle, and the kept-class bound where it is tight."""

from __future__ import annotations

import pytest
import torch

import obliviate
from obliviate.calibration import truncated_predictions
from obliviate.checkpoint import ModelBundle
from obliviate.codes import MnemonicCodes
from obliviate.data import Split
from obliviate.deep import retain_drop_bound
from obliviate.errors import GoalMissedWarning
from obliviate.models import create_model
from obliviate.stats import record_statistics

MARGIN = 2.0


def _bundle(model, train: Split, input_shape: tuple[int, ...], hidden: int) -> ModelBundle:
    """A hand-set fc model as a model file would hold it: codes and training statistics."""
    return ModelBundle(model=model.eval(), arch="fc", num_classes=3, input_shape=input_shape,
                       dataset="", arch_kwargs={"hidden": hidden},
                       codes=MnemonicCodes.generate(3, input_shape),
                       stats=record_statistics(model, train))  # fmt: skip


def _margins(logits: torch.Tensor, labels: torch.Tensor, retain: list[int]) -> torch.Tensor:
    """``z_y - max_{k in retain} z_k`` per sample, by hand."""
    own = logits.gather(1, labels[:, None]).squeeze(1)
    return own - logits[:, retain].max(1).values


def plane() -> tuple[ModelBundle, Split]:
    """Three classes in the plane, features = sigmoid of the input. Kept classes 1 and 2 sit
    at x2 = +-3 and are told apart by x2; class 0 sits at x1 = 3, and the kept logits grow with
    x1. The redirect moves class 0 onto the mean of the kept classes (x = 0), which lowers the
    kept logits there: class 0's training samples rise from 1.2 to about 3 nats above the best
    kept class, beyond what the unedited statistics say."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat_interleave(30)
    centres = torch.tensor([[3.0, 0.0], [0.0, 3.0], [0.0, -3.0]])[y]
    x = centres + 0.1 * torch.randn(centres.shape, generator=g)
    model = create_model("fc", input_shape=(2,), num_classes=3, hidden=2)
    with torch.no_grad():
        model.hidden.weight.copy_(torch.eye(2))
        model.hidden.bias.zero_()
        model.classifier.weight.copy_(torch.tensor([[0.0, 0.0], [4.0, 10.0], [4.0, -10.0]]))
        model.classifier.bias.copy_(torch.tensor([3.0, -7.0, 3.0]))
    train = Split(x, y)
    return _bundle(model, train, (2,), 2), train


def test_a_verified_data_free_deep_forget_puts_every_forget_training_sample_below_the_margin():
    bundle, train = plane()
    out = obliviate.forget(bundle, [0], depth="features", margin=MARGIN, progress=False)
    record = out.history[-1]
    assert record["verified"] is True and record["depth"] == "features"
    assert record["verification"]["checks"]["training_statistics"]["passed"]
    forget = train.of_classes([0])
    with torch.no_grad():
        after = _margins(out.model(forget.x), forget.y, [1, 2])
        # the edited model before its head step: its features, the original head
        edited = _margins(bundle.model.classifier(out.model.features(forget.x)), forget.y, [1, 2])
    # the guarantee, sample by sample
    assert float(after.max()) <= -MARGIN + 1e-4, float(after.max())
    # and why this model tests it: the unedited statistics no longer bound the edited model
    assert float(edited.max()) > bundle.stats.retained_margin(0, [1, 2]) + 1.0
    bound = record["verification"]["checks"]["training_statistics"]["classes"][0]["margin_bound"]
    assert bound >= float(edited.max())


def line() -> tuple[ModelBundle, Split]:
    """Three classes on a line, feature = sigmoid of the input: class 2 far left (x in [-6, -4]),
    class 1 just right of the 1/2 boundary (x in (0, 1]), class 0 at x = 3. Redirecting class
    0 onto class 1 drags class 1 across the boundary: the edit costs kept samples, and how many
    is known from the samples."""
    n = 128
    y = torch.arange(3).repeat_interleave(n)
    x = torch.cat([torch.linspace(2.9, 3.1, n), torch.linspace(0.01, 1.0, n),
                   torch.linspace(-6.0, -4.0, n)])[:, None]  # fmt: skip
    model = create_model("fc", input_shape=(1,), num_classes=3, hidden=1)
    t = float(torch.sigmoid(torch.tensor(2.0)))
    with torch.no_grad():  # z_1 - z_2 = 16 (h - 1/2), z_0 - z_1 = 2 (h - sigmoid(2))
        model.hidden.weight.fill_(1.0)
        model.hidden.bias.zero_()
        model.classifier.weight.copy_(torch.tensor([[10.0], [8.0], [-8.0]]))
        model.classifier.bias.copy_(torch.tensor([-4.0 - 2.0 * t, -4.0, 4.0]))
    train = Split(x, y)
    return _bundle(model, train, (1,), 1), train


def test_the_data_check_judges_the_kept_classes_against_the_unedited_models_oracle():
    """On :func:`line`, the edit costs every kept sample of class 1: measured against the
    unedited model's truncation oracle (100 %), the kept accuracy falls to 50 %; the edited
    model as its own oracle would see no loss."""
    bundle, train = line()
    with pytest.warns(GoalMissedWarning, match="data"):
        out = obliviate.forget(bundle, [0], data=train, depth="features", force=True,
                               retain_per_class=10_000, progress=False)  # fmt: skip
    check = out.history[-1]["verification"]["checks"]["data"]
    kept = train.without_classes([0])  # every kept training sample
    with torch.no_grad():
        oracle = truncated_predictions(bundle.model(kept.x), [1, 2])
        after = out.model(kept.x).argmax(1)
    oracle_acc = 100.0 * float((oracle == kept.y).float().mean())
    acc = 100.0 * float((after == kept.y).float().mean())
    assert check["retain_samples"] == len(kept)
    assert check["oracle_retain_accuracy"] == pytest.approx(oracle_acc, abs=1e-4)
    assert check["retain_accuracy"] == pytest.approx(acc, abs=1e-4)
    assert oracle_acc == 100.0 and acc <= 75.0
    assert check["passed"] is False and out.history[-1]["verified"] is False


@pytest.mark.parametrize("redirect, most", [(1.0, 1.0), (0.5, 1.25)])
def test_the_kept_class_bound_holds_and_is_tight_where_the_edit_costs_kept_samples(redirect,
                                                                                    most):
    """Measured: redirect 1 loses all of class 1 (50 points) and the bound says 50;
    redirect 0.5 loses 42.2 points and the bound says 50 (1.19 times)."""
    bundle, train = line()
    with pytest.warns(GoalMissedWarning, match="retain_bound"):
        out = obliviate.forget(bundle, [0], depth="features", redirect=redirect, force=True,
                               progress=False)  # fmt: skip
    record = out.history[-1]
    assert record["redirect"]["gamma"] == redirect
    bound = record["verification"]["checks"]["retain_bound"]["training_accuracy_drop_bound"]
    kept = train.without_classes([0])
    with torch.no_grad():
        oracle = truncated_predictions(bundle.model(kept.x), [1, 2])
        after = out.model(kept.x).argmax(1)
    drop = 100.0 * float((oracle == kept.y).float().mean() - (after == kept.y).float().mean())
    assert drop > 25.0  # the case is a real loss
    assert drop <= bound <= most * drop, (bound, drop)


@pytest.mark.parametrize("forget", [[3], [2, 4, 6]])
def test_the_kept_class_bound_is_the_worst_case_the_logit_bounds_allow(digits_bundle, digits,
                                                                       forget):  # fmt: skip
    """With every logit difference of a kept sample allowed to move by ``b``, an edit can push
    into another class (kept or forgotten: the head step need not pull it back) exactly the
    kept samples the oracle gets right whose margin over every other class is below ``b``.
    The bound, read from 128 stored quantiles per class, is that count, within 2 points."""
    retain = [c for c in range(10) if c not in forget]
    kept = digits.train.without_classes(forget)
    with torch.no_grad():
        z = digits_bundle.model(kept.x)
    own = z.gather(1, kept.y[:, None]).squeeze(1)
    margin = own - z.scatter(1, kept.y[:, None], float("-inf")).max(1).values
    oracle_right = truncated_predictions(z, retain) == kept.y
    for b in (0.5, 2.0, 4.0):
        worst = 100.0 * float((oracle_right & (margin < b)).float().mean())
        bound = retain_drop_bound(digits_bundle.stats.layer, b * (1 - torch.eye(10)), forget,
                                  retain)  # fmt: skip
        assert worst <= bound <= worst + 2.0, (b, bound, worst)
    assert worst > 20.0  # a bound four times too small would show
