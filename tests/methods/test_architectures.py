"""The method on every registered architecture, batch-norm included (ResNet-18)."""

import pytest
import torch

import obliviate
from obliviate.checkpoint import ModelBundle
from obliviate.codes import CodeConfig, MnemonicCodes
from obliviate.data import Split
from obliviate.errors import NotVerifiedError
from obliviate.models import create_model, trainable_models
from obliviate.stats import record_statistics


SHAPE = (3, 16, 16)


def untrained_bundle(arch: str) -> ModelBundle:
    """An untrained 4-class model of ``arch`` on 3x16x16 inputs, with codes."""
    torch.manual_seed(0)
    model = create_model(arch, input_shape=SHAPE, num_classes=4).eval()
    codes = MnemonicCodes.generate(4, SHAPE, CodeConfig(seed=1))
    return ModelBundle(model, arch, 4, SHAPE, "synthetic", codes=codes)


@pytest.mark.parametrize("arch", trainable_models())
def test_forget_changes_parameters_not_buffers_and_keeps_the_architecture(arch):
    bundle = untrained_bundle(arch)
    model, shape = bundle.model, SHAPE
    before = {k: v.clone() for k, v in model.state_dict().items()}
    l1, l2 = model.default_lambdas
    out = obliviate.forget(bundle, [1], device="cpu", lambda1=l1, lambda2=l2, force=True)
    assert type(out.model) is type(model)
    params = dict(model.named_parameters())
    changed = 0
    for name, value in out.model.state_dict().items():
        assert value.shape == before[name].shape
        assert torch.equal(model.state_dict()[name], before[name])  # input untouched
        if name in params:
            changed += int(not torch.equal(value, before[name]))
        else:
            assert torch.equal(value, before[name]), f"buffer {name} was modified"
    assert changed == len(params)
    assert (out.history[-1]["lambda1"], out.history[-1]["lambda2"]) == model.default_lambdas
    assert out.model(torch.rand(2, *shape)).shape == (2, 4)


@pytest.mark.parametrize("arch", trainable_models())
def test_calibrated_forget_moves_only_the_forget_row_on_every_architecture(arch):
    bundle = untrained_bundle(arch)
    model = bundle.model
    x, y = torch.rand(64, *SHAPE), torch.arange(4).repeat(16)
    bundle.stats = record_statistics(model, Split(x, y))
    try:
        out = obliviate.forget(bundle, [1], device="cpu")
    except NotVerifiedError as exc:  # hardtanh: features below zero, the statistics guarantee nothing
        assert bool((bundle.stats.feature_min[1] < 0).any())
        assert "below zero" in str(exc) and "--data" in str(exc)
        # the data calibrate it; an untrained model on random labels may fail the kept
        # classes' accuracy check (force keeps it), but the forget samples are forgotten
        out = obliviate.forget(bundle, [1], device="cpu", data=Split(x, y), force=True)
        assert out.history[-1]["verification"]["checks"]["data"]["forget_error"] == 100.0
    else:
        assert out.history[-1]["verified"] is True
    assert not (out.model(x).argmax(1)[y == 1] == 1).any()  # the statistics' guarantee
    for (name, before), (_, after) in zip(model.state_dict().items(),
                                          out.model.state_dict().items()):  # fmt: skip
        if name.startswith("classifier."):
            kept = [0, 2, 3]
            assert torch.equal(before[kept], after[kept]) and not torch.equal(before, after)
        else:
            assert torch.equal(before, after), name
