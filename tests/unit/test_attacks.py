"""The attacks of :mod:`obliviate.attacks` on constructions whose answers are known.

Most models here are hand-built: their penultimate features are the input (or a fixed map of
it) and their head is set by hand, so no training stands between the data and the answer.
The split tests put a forget class's training and test samples at different points, so that
an attack fitted (or scored) on the wrong split gets the opposite answer.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import obliviate
from obliviate import attacks
from obliviate.data import Dataset, Split
from obliviate.errors import ObliviateError
from obliviate.metrics import RelearnConfig, forget_error, relearn_probe
from obliviate.models import Classifier, create_model
from obliviate.training import predict


class Features(Classifier):
    """Penultimate features ``transform(x)`` (default: the input), a linear head set by hand;
    two blocks, so :func:`attacks.block_features` sees one earlier map."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 transform=None) -> None:  # fmt: skip
        super().__init__()
        self.transform = transform
        self.dim = weight.shape[1]
        self.classifier = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.classifier.weight.copy_(weight)
            self.classifier.bias.copy_(torch.zeros(weight.shape[0]) if bias is None else bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), self.dim)
        return x if self.transform is None else self.transform(x)

    def blocks(self) -> list[nn.Module]:
        return [nn.Flatten(), nn.ReLU()]  # not a pooling step: block1 is listed


def _split(points: torch.Tensor, labels: torch.Tensor, noise: float, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(points + noise * torch.randn(points.shape, generator=g), labels)


def _accuracy(model: nn.Module, split: Split, classes: list[int]) -> float:
    target = split.of_classes(classes)
    return 100.0 * float((predict(model, target.x) == target.y).float().mean())


# --- blobs: 4 well separated classes in 8 dimensions -----------------------------------------

C, D = 4, 8
CENTRES = 3.0 * torch.randn(C, D, generator=torch.Generator().manual_seed(7))


def blobs(per_class: int = 30) -> Dataset:
    y = torch.arange(C).repeat_interleave(per_class)
    return Dataset("blobs", _split(CENTRES[y], y, 0.5, 0), _split(CENTRES[y], y, 0.5, 1), C, (D,))


def test_block_features_lists_the_penultimate_and_every_earlier_block_pooled():
    convnet = create_model("convnet", input_shape=(1, 8, 8), num_classes=10).eval()
    maps = attacks.block_features(convnet)
    assert [name for name, _ in maps] == ["penultimate", "block2", "block1"]
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        shapes = [tuple(fn(x).shape) for _, fn in maps]
        assert shapes == [(3, 64), (3, 32), (3, 16)]
        inner = convnet.block2(convnet.block1(x))  # [3, 32, 2, 2]: average-pooled, not flattened
        assert torch.allclose(maps[1][1](x), inner.mean(dim=(2, 3)))
    fc = create_model("fc", input_shape=(1, 8, 8), num_classes=10)
    assert [name for name, _ in attacks.block_features(fc)] == ["penultimate"]  # no raw input


@pytest.mark.parametrize("arch", ["resnet18", "convnet", "cnn"])
def test_no_earlier_map_is_the_penultimate_features_again(arch):
    """A ResNet's last block is its global pooling: the map before it, pooled, is the
    penultimate features, so the attacker's "one block earlier" must start a block before."""
    kwargs = {"width": 2} if arch == "resnet18" else {"width": 4}
    model = create_model(arch, input_shape=(1, 8, 8), num_classes=3, **kwargs).eval()
    maps = attacks.block_features(model)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        last = model.features(x)
        for name, fn in maps[1:]:
            out = fn(x)
            assert out.shape != last.shape or not torch.allclose(out, last), name
    expected = {"resnet18": "block4", "convnet": "block2", "cnn": "block1"}[arch]
    assert (maps[1][0] if len(maps) > 1 else None) == expected


def test_kr_finds_a_class_whose_row_was_pushed_to_minus_infinity():
    data = blobs()
    bias = torch.zeros(C)
    bias[3] = -1e4
    model = Features(CENTRES.clone(), bias).eval()
    assert _accuracy(model, data.test, [3]) == 0.0
    for shots in (10, None):
        assert attacks.knowledge_retention(model, data.train, data.test, [3], shots=shots) > 90
    # the paper's RE starts from the forgotten head: a few steps cannot undo the bias
    probed = relearn_probe(model, data.train, RelearnConfig(steps=50, lr=0.01, batch_size=16))
    assert forget_error(predict(probed, data.test.x), data.test.y, [3]) == 100.0


def test_kr_is_at_chance_when_the_features_merge_the_class_with_another():
    data = blobs()
    shift = CENTRES[2] - CENTRES[3]

    def merge(x: torch.Tensor) -> torch.Tensor:  # inputs nearest to centre 3 land on class 2
        nearest = torch.cdist(x, CENTRES).argmin(1)
        return x + (nearest == 3).float().unsqueeze(1) * shift

    intact = Features(CENTRES.clone()).eval()
    merged = Features(CENTRES.clone(), transform=merge).eval()
    for shots in (10, None):
        assert attacks.knowledge_retention(intact, data.train, data.test, [2, 3], shots=shots) > 95
        # classes 2 and 3 now share one distribution: any head gets about half of them
        kr = attacks.knowledge_retention(merged, data.train, data.test, [2, 3], shots=shots)
        assert 30 < kr < 70, kr
        # the features are standardised: rescaling and shifting them changes nothing
        scale = torch.logspace(-2, 2, D)
        rescaled = Features(CENTRES.clone(), transform=lambda x: 3.0 + scale * merge(x)).eval()
        assert attacks.knowledge_retention(rescaled, data.train, data.test, [2, 3],
                                           shots=shots) == kr  # fmt: skip


def rotated(shift: bool) -> Dataset:
    """Class ``c``'s training samples at ``5 e_{c+1}``, its test samples at ``5 e_c``
    (``shift``) or also at ``5 e_{c+1}``."""
    y = torch.arange(C).repeat_interleave(20)
    eye = 5.0 * torch.eye(C)
    test_points = eye[y] if shift else eye[(y + 1) % C]
    return Dataset("rotated", _split(eye[(y + 1) % C], y, 0.05, 0), _split(test_points, y, 0.05, 1),
                   C, (C,))  # fmt: skip


def _splits(data: Dataset) -> tuple[Split, Split]:
    return data.train, data.test


@pytest.mark.parametrize("shots", [10, None])
def test_kr_fits_on_the_training_split_and_scores_on_the_test_split(shots):
    model = Features(torch.eye(C)).eval()
    # fitted on the training split, a test sample of c lies where the training samples of c - 1
    # are: KR 0. Fitted on the test split, or scored on the training split: 100.
    kr = attacks.knowledge_retention
    assert kr(model, *_splits(rotated(True)), [1, 3], shots=shots) == 0.0
    assert kr(model, *_splits(rotated(False)), [1, 3], shots=shots) == 100.0


def test_kr_trains_its_head_to_convergence():
    """Two classes told apart only by ``x1 - x0``, behind a shared nuisance ``u`` of large
    variance that both coordinates carry; the class means differ in ``x1`` alone. A head
    that stops near its first (gradient) step reads ``x1`` and is near chance; the converged
    logistic regression reads ``x1 - x0`` and is exact."""

    def make(seed: int) -> Split:
        u = 10.0 * torch.randn(50, generator=torch.Generator().manual_seed(seed))
        x = torch.cat([torch.stack([u, u - 1.0], 1), torch.stack([u, u + 1.0], 1)])
        return Split(x, torch.arange(2).repeat_interleave(50))

    model = Features(torch.eye(2)).eval()
    train, test = make(0), make(1)
    for shots in (20, None):
        assert attacks.knowledge_retention(model, train, test, [0, 1], shots=shots) == 100.0
    with pytest.warns(RuntimeWarning, match="before its loss converged"):
        assert attacks.knowledge_retention(model, train, test, [0, 1], shots=None, max_iter=1) < 80


def test_kr_is_deterministic_for_a_seed():
    data = blobs()
    model = Features(CENTRES.clone(), transform=lambda x: x + 2.0 * torch.sin(3 * x)).eval()
    runs = [attacks.knowledge_retention(model, data.train, data.test, [0, 3], shots=2, seed=5)
            for _ in range(2)]  # fmt: skip
    assert runs[0] == runs[1]


# --- Spotter: 4 classes in 6 dimensions; the forget class 3 lives in dimensions 4 and 5 -------


def spotter_data(test_dim: int) -> Dataset:
    """Kept class ``j`` at ``20 e_j``; the training samples of class 3 at ``20 e_4``, its test
    samples at ``20 e_{test_dim}``."""
    y = torch.arange(C).repeat_interleave(10)
    eye = 20.0 * torch.eye(6)
    train_at = torch.tensor([0, 1, 2, 4])[y]
    test_at = torch.tensor([0, 1, 2, test_dim])[y]
    return Dataset("spotter", _split(eye[train_at], y, 0.01, 0), _split(eye[test_at], y, 0.01, 1),
                   C, (6,))  # fmt: skip


def spotter_model(row: float, bias: float) -> Features:
    """Kept rows ``2 e_j``; the forget row ``row * e_4`` and its bias ``bias``."""
    weight = torch.zeros(C, 6)
    weight[[0, 1, 2], [0, 1, 2]] = 2.0
    weight[3, 4] = row
    return Features(weight, torch.tensor([0.0, 0.0, 0.0, bias])).eval()


def test_spotter_blends_the_prototype_into_the_forget_row():
    data = spotter_data(test_dim=4)
    # alpha 0.5: row -0.8 e_4 becomes 0.1 e_4 and bias -3 becomes -1.5: logit 2 - 1.5 > 0
    # (with the bias left at -3, or the row left as it was, the logit stays below 0)
    model = spotter_model(-0.8, -3.0)
    assert _accuracy(model, data.test, [3]) == 0.0
    assert attacks.spotter_attack(model, data.train, data.test, [3]) == 100.0
    # row -1.2 e_4 becomes -0.1 e_4: logit -2 < 0, the attack fails (it would not with alpha 1)
    assert attacks.spotter_attack(spotter_model(-1.2, 0.0), data.train, data.test, [3]) == 0.0
    assert attacks.spotter_attack(spotter_model(-1.2, 0.0), data.train, data.test, [3],
                                  alpha=1.0) == 100.0  # fmt: skip
    # "rows": the prototype is scaled to the kept rows' norm (2): row 1 - 0.6 > 0
    assert attacks.spotter_attack(spotter_model(-1.2, 0.0), data.train, data.test, [3],
                                  scale="rows") == 100.0  # fmt: skip
    assert float(model.classifier.weight.detach()[3, 4]) == pytest.approx(-0.8)  # untouched


def test_spotter_builds_prototypes_from_the_training_split_and_scores_on_the_test_split():
    # the test samples of class 3 sit at e_5, where the training prototype (e_4) gives nothing;
    # a prototype from the test split, or a score on the training split, would give 100
    data = spotter_data(test_dim=5)
    assert attacks.spotter_attack(spotter_model(-0.8, -3.0), data.train, data.test, [3]) == 0.0


# --- digits: a trained fc, its forgets, and the membership attack -----------------------------


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return obliviate.load_dataset("digits")


@pytest.fixture(scope="module")
def digits_fc(digits: Dataset) -> obliviate.ModelBundle:
    # 40 epochs: with 5 the model does not yet know class 3 (its accuracy there is 0)
    return obliviate.train(digits, "fc", config=obliviate.TrainConfig(epochs=40, lr=0.1),
                           progress=False)  # fmt: skip


def test_forget_class_mia_is_at_chance_between_two_halves_of_unseen_samples(digits, digits_fc):
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(digits.test), generator=g)
    half = len(order) // 2
    a, b = (Split(digits.test.x[i], digits.test.y[i]) for i in (order[:half], order[half:]))
    result = attacks.forget_class_mia(digits_fc.model, a, b, list(range(10)))
    assert result["n"] >= 250 and result["null_sd"] < 0.03
    assert abs(result["auc"] - 0.5) < 0.15, result
    assert abs(result["accuracy"] - 50.0) < 15, result


def _fit_tiny(train: Split, steps: int = 300) -> Classifier:
    """A small fc fitted on ``train`` with Adam, full batch, to a training loss near 0."""
    torch.manual_seed(0)
    model = create_model("fc", input_shape=(1, 8, 8), num_classes=10, hidden=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(train.x), train.y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_forget_class_mia_tells_memorised_samples_from_unseen_ones(digits):
    """Noisy digits (pixel noise 0.5, fixed per sample): a small fc fitted on 30 samples per
    class memorises them (test accuracy about 57 %), so its training samples of class 3 stand
    out; the same fc fitted without class 3 cannot tell them from the test samples."""
    g = torch.Generator().manual_seed(0)
    train, test = (Split(s.x + 0.5 * torch.randn(s.x.shape, generator=g), s.y)
                   for s in (digits.train, digits.test))  # fmt: skip
    tiny = train.per_class_subset(30, seed=0)
    memorised = attacks.forget_class_mia(_fit_tiny(tiny), tiny, test, [3])
    assert memorised["n"] == 30
    assert memorised["auc"] > 0.8 and memorised["accuracy"] > 65, memorised
    retrained = attacks.forget_class_mia(_fit_tiny(tiny.without_classes([3])), tiny, test, [3])
    assert abs(retrained["auc"] - 0.5) < 0.15, retrained


def test_relearn_from_reset_rows_undoes_a_head_pushed_to_minus_infinity():
    data = blobs()
    bias = torch.zeros(C)
    bias[3] = -1e4
    model = Features(CENTRES.clone(), bias).eval()
    kwargs = dict(shots=10, lr=0.01, max_steps=30)
    assert attacks.relearn_steps_fresh(model, data.train, data.test, [3], 90.0, start="as-is",
                                       **kwargs) is None  # fmt: skip
    steps = attacks.relearn_steps_fresh(model, data.train, data.test, [3], 90.0, **kwargs)
    assert steps is not None and steps <= 30
    assert attacks.relearn_steps_fresh(model, data.train, data.test, [3], 90.0,
                                       start="fresh-head", **kwargs) is not None  # fmt: skip
    assert float(model.classifier.bias.detach()[3]) == -1e4  # the model itself untouched


def test_relearn_from_reset_rows_is_no_slower_on_an_output_only_forget(digits, digits_fc):
    forgotten = obliviate.forget(digits_fc, [3], progress=False).model
    goal = 0.9 * _accuracy(digits_fc.model, digits.test, [3])
    assert goal > 50
    as_is = attacks.relearn_steps_fresh(forgotten, digits.train, digits.test, [3], goal,
                                        start="as-is")  # fmt: skip
    reset = attacks.relearn_steps_fresh(forgotten, digits.train, digits.test, [3], goal)
    assert as_is is not None and reset is not None and 0 < reset <= as_is, (reset, as_is)
    for start in ("reset-rows", "fresh-head", "as-is"):
        assert attacks.relearn_steps_fresh(forgotten, digits.train, digits.test, [3], 0.0,
                                           start=start) == 0  # fmt: skip
    with pytest.raises(ObliviateError):
        attacks.relearn_steps_fresh(forgotten, digits.train, digits.test, [3], goal, start="x")
