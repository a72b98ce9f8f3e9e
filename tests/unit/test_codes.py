import pytest
import torch

from obliviate import CodeConfig, MnemonicCodes, ObliviateError


def test_generate_is_deterministic_uniform_and_shaped():
    a = MnemonicCodes.generate(10, (1, 28, 28), CodeConfig(seed=3))
    b = MnemonicCodes.generate(10, (1, 28, 28), CodeConfig(seed=3))
    c = MnemonicCodes.generate(10, (1, 28, 28), CodeConfig(seed=4))
    assert a.tensor.shape == (10, 1, 28, 28)
    assert torch.equal(a.tensor, b.tensor)
    assert not torch.equal(a.tensor, c.tensor)
    assert a.tensor.min() >= 0 and a.tensor.max() < 1
    # distinct classes get distinct codes
    assert not torch.allclose(a.tensor[0], a.tensor[1])


def test_replace_mode_replaces_with_label_code_at_rate_t_mix():
    codes = MnemonicCodes.generate(3, (2, 2), CodeConfig(mode="replace", t_mix=0.3))
    x = torch.full((20000, 2, 2), -1.0)
    y = torch.randint(0, 3, (20000,))
    out, y_out = codes.augment(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(y_out, y)
    replaced = (out != -1.0).all(dim=(1, 2))
    assert abs(replaced.float().mean().item() - 0.3) < 0.02
    assert torch.equal(out[replaced], codes.tensor[y[replaced]])
    assert (out[~replaced] == -1.0).all()


def test_mix_mode_trains_on_both_originals_and_mixtures():
    codes = MnemonicCodes.generate(2, (3,), CodeConfig(mode="mix", strength=0.9))
    x = torch.ones(4, 3)
    y = torch.tensor([0, 1, 0, 1])
    out, y_out = codes.augment(x, y)
    assert out.shape == (8, 3) and torch.equal(y_out, torch.cat([y, y]))
    assert torch.equal(out[:4], x)
    assert torch.allclose(out[4:], 0.1 * x + 0.9 * codes.tensor[y])


@pytest.mark.parametrize(
    "kwargs", [{"mode": "blend"}, {"t_mix": 1.5}, {"t_mix": -0.1}, {"strength": 2.0}]
)
def test_bad_code_config_is_a_user_error(kwargs):
    with pytest.raises(ObliviateError):
        CodeConfig(**kwargs)
