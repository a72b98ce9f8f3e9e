"""The method on every registered architecture, batch-norm included (ResNet-18)."""

import pytest
import torch

import obliviate
from obliviate.checkpoint import ModelBundle
from obliviate.codes import CodeConfig, MnemonicCodes
from obliviate.models import create_model, trainable_models


@pytest.mark.parametrize("arch", trainable_models())
def test_forget_changes_parameters_not_buffers_and_keeps_the_architecture(arch):
    torch.manual_seed(0)
    shape = (3, 16, 16)
    model = create_model(arch, input_shape=shape, num_classes=4).eval()
    codes = MnemonicCodes.generate(4, shape, CodeConfig(seed=1))
    bundle = ModelBundle(model, arch, 4, shape, "synthetic", codes=codes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = obliviate.forget(bundle, [1], device="cpu")
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
