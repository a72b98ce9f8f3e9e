"""copy_model gives what copy.deepcopy gives: checked against it on every registered architecture,
and on the modules it must hand to copy.deepcopy."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from obliviate import modelcopy
from obliviate.modelcopy import copy_model
from obliviate.models import create_model

ARCHS = {  # every registered trainable architecture, at a size that builds in milliseconds
    "fc": {}, "cnn": {}, "convnet": {}, "hardtanh-mlp": {}, "resnet18": {"width": 4},
}  # fmt: skip


def _fallbacks(monkeypatch) -> list[nn.Module]:
    """The models copy_model handed to copy.deepcopy, as they are handed."""
    seen: list[nn.Module] = []
    deepcopy = copy.deepcopy

    def spy(obj, memo=None):
        if isinstance(obj, nn.Module):
            seen.append(obj)
        return deepcopy(obj, memo)

    monkeypatch.setattr(modelcopy.copy, "deepcopy", spy)
    return seen


def _same_as_deepcopy(original: nn.Module, copied: nn.Module) -> None:
    expected = copy.deepcopy(original)
    pairs = list(zip(expected.modules(), copied.modules(), strict=True))
    for want, got in pairs:
        assert type(got) is type(want)
        assert got.__dict__.keys() == want.__dict__.keys()
        for key, value in want.__dict__.items():
            if key not in ("_parameters", "_buffers", "_modules"):
                assert getattr(got, key) == value, key
    want_state, got_state = expected.state_dict(), copied.state_dict()
    assert want_state.keys() == got_state.keys()
    for name, t in original.state_dict().items():
        assert torch.equal(got_state[name], t) and got_state[name].dtype == t.dtype
        assert got_state[name].data_ptr() != t.data_ptr()  # shares no tensor
    for (name, p), (_, q) in zip(original.named_parameters(), copied.named_parameters()):
        assert type(q) is nn.Parameter and q.requires_grad == p.requires_grad, name
        assert q.grad is None  # as copy.deepcopy gives a parameter


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_architecture_is_copied_as_deepcopy_copies_it_without_deepcopy(arch, monkeypatch):
    shape = (1, 8, 8) if arch != "fc" else (1, 4, 4)
    model = create_model(arch, input_shape=shape, num_classes=3, **ARCHS[arch])
    model.train(arch == "cnn")  # the training flag travels
    next(model.parameters()).requires_grad_(False)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    fallbacks = _fallbacks(monkeypatch)
    copied = copy_model(model)
    assert fallbacks == []  # the fast path, for every module of the registered models
    monkeypatch.undo()
    _same_as_deepcopy(model, copied)
    x = torch.randn(2, *shape)
    model.eval(), copied.eval()
    assert torch.equal(copied(x), model(x))
    with torch.no_grad():  # independent: a write to the copy leaves the original as it was
        before = model.classifier.weight.clone()
        copied.classifier.weight.add_(1.0)
    assert torch.equal(model.classifier.weight, before)


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)
        self.b.weight = self.a.weight
        self.same = self.a  # one module under two names
        self.register_buffer("scale", torch.ones(3))
        self.sizes = [3, 3]


def test_tied_parameters_and_shared_modules_stay_shared(monkeypatch):
    model = _Tied()
    fallbacks = _fallbacks(monkeypatch)
    copied = copy_model(model)
    assert fallbacks == []
    assert copied.b.weight is copied.a.weight and copied.same is copied.a
    assert copied.a.weight is not model.a.weight
    assert copied.sizes == [3, 3] and copied.sizes is not model.sizes  # a list of its own
    assert copied.scale.data_ptr() != model.scale.data_ptr()


class _Holder:
    def __init__(self) -> None:
        self.items = [torch.zeros(2)]


@pytest.mark.parametrize("kind", ["hook", "object", "dict", "tensor list", "parameter subclass"])
def test_what_it_does_not_know_goes_to_deepcopy(kind, monkeypatch):
    model = nn.Sequential(nn.Linear(3, 2))
    if kind == "hook":
        model[0].register_forward_hook(lambda *_: None)
    elif kind == "object":
        model[0].holder = _Holder()
    elif kind == "dict":
        model[0].extra = {"a": 1}
    elif kind == "tensor list":
        model[0].cache = [torch.zeros(2)]
    else:
        model[0].weight = type("Tagged", (nn.Parameter,), {})(torch.zeros(2, 3))
    fallbacks = _fallbacks(monkeypatch)
    copied = copy_model(model)
    assert fallbacks[:1] == [model]  # the whole model, by copy.deepcopy (then its parts)
    monkeypatch.undo()
    if kind == "hook":
        assert len(copied[0]._forward_hooks) == 1
    elif kind == "object":
        assert copied[0].holder is not model[0].holder
        assert copied[0].holder.items[0].data_ptr() != model[0].holder.items[0].data_ptr()
    elif kind == "dict":
        assert copied[0].extra == {"a": 1} and copied[0].extra is not model[0].extra
    elif kind == "tensor list":
        assert copied[0].cache[0].data_ptr() != model[0].cache[0].data_ptr()
    else:
        assert type(copied[0].weight) is type(model[0].weight)


def test_a_module_with_its_own_copy_protocol_goes_to_deepcopy(monkeypatch):
    class Custom(nn.Linear):
        def __deepcopy__(self, memo):
            out = nn.Linear(self.in_features, self.out_features)
            out.copied_by_hand = True
            return out

    model = nn.Sequential(Custom(3, 2))
    fallbacks = _fallbacks(monkeypatch)
    copied = copy_model(model)
    assert fallbacks[:1] == [model]
    assert copied[0].copied_by_hand is True
